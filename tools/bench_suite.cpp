// The workloads of `kiln bench`, each written once as C++ and run eagerly and traced.
#include "tools/bench_suite.h"

#include <cmath>
#include <cstring>

#include "kiln/kiln.h"

namespace kiln::tools {
namespace {

bool same(const Tensor& a, const Tensor& b, double tol) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  Tensor d = reduce_max(abs(cast(a, float64) - cast(b, float64)));
  return d.item<double>() <= tol;
}

// `reference(x, out)` computes the workload into a preallocated `out` with plain loops.
template <class F>
std::shared_ptr<Workload> unary(std::string name, std::string description, F f, Tensor x, double tol,
                                std::function<void(const Tensor&, Tensor&)> reference = {}) {
  auto w = std::make_shared<Workload>();
  w->name = name;
  w->description = std::move(description);
  auto fn = function(f, {.name = name, .arg_names = {"x"}, .backend = backend::BackendKind::Cpu});
  auto in = function(f, {.name = name, .arg_names = {"x"}, .backend = backend::BackendKind::Interpreter});
  w->eager = [f, x] { f(x); };
  w->graph = [fn, x] { fn(x); };
  w->interpreted = [in, x] { in(x); };
  w->concrete = [fn, x] { return fn.get_concrete_function(x); };
  Tensor expected = f(x);
  Tensor out = Tensor::empty(expected.shape(), expected.dtype());
  if (reference) w->reference = [reference, x, out]() mutable { reference(x, out); };
  w->agree = [f, fn, in, x, tol, reference, out]() mutable {
    Tensor e = f(x);
    bool ok = same(e, fn(x), tol) && same(e, in(x), tol);
    if (reference) {
      reference(x, out);
      ok &= same(e, out, tol);
    }
    return ok;
  };
  return w;
}

// power(x, 100) with plain loops: 100 int32 matmuls, i-k-j order, two buffers.
void power_loops(const Tensor& x, Tensor& out) {
  constexpr int n = 10;
  const int32_t* a = x.data<int32_t>();
  int32_t r[n * n], t[n * n];
  for (int i = 0; i < n * n; ++i) r[i] = i % (n + 1) == 0;
  for (int it = 0; it < 100; ++it) {
    for (int i = 0; i < n; ++i) {
      int32_t* row = t + i * n;
      for (int j = 0; j < n; ++j) row[j] = 0;
      for (int k = 0; k < n; ++k) {
        // wrapping products, as int32 matmul does
        uint32_t aik = uint32_t(a[i * n + k]);
        for (int j = 0; j < n; ++j) row[j] = int32_t(uint32_t(row[j]) + aik * uint32_t(r[k * n + j]));
      }
    }
    std::memcpy(r, t, sizeof r);
  }
  std::memcpy(out.mutable_raw_data(), r, sizeof r);
}

constexpr float kA = 1.5f, kB = -0.25f, kC = 2.0f;

// relu(x * a + b) * c in one pass, split across Kiln's threads.
void relu_affine_loop(const Tensor& x, Tensor& out) {
  const float* in = x.data<float>();
  float* o = static_cast<float*>(out.mutable_raw_data());
  parallel_for(x.num_elements(), 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float v = in[i] * kA + kB;
      o[i] = (v > 0.0f ? v : 0.0f) * kC;
    }
  });
}

}  // namespace

Tensor power(const Tensor& x, int n) {
  Tensor r = eye(10, x.dtype());
  for (int i = 0; i < n; ++i) r = matmul(x, r);
  return r;
}

Mlp::Mlp(const char* name, int64_t batch) {
  const int64_t dims[] = {784, 256, 256, 10};
  for (int l = 0; l < 3; ++l) {
    params.emplace_back(random::normal({dims[l], dims[l + 1]}, uint64_t(10 + l), 0.0, std::sqrt(2.0 / double(dims[l]))),
                        std::string(name) + "/w" + std::to_string(l));
    params.emplace_back(zeros({dims[l + 1]}), std::string(name) + "/b" + std::to_string(l));
  }
  x = random::normal({batch, dims[0]}, 1);
  onehot = one_hot(random::uniform({batch}, 2, 0, double(dims[3]), int32), dims[3]);
}

Mlp::Mlp(const Mlp& other, const std::string& name) {
  static const char* const kNames[] = {"w0", "b0", "w1", "b1", "w2", "b2"};
  for (size_t i = 0; i < other.params.size(); ++i)
    params.emplace_back(other.params[i].read_value(), name + "/" + kNames[i % 6]);
  x = other.x.to(current_device());
  onehot = other.onehot.to(current_device());
}

Tensor Mlp::step(const Tensor& xb, const Tensor& yb) const {
  GradientTape tape;
  Tensor h = xb;
  for (size_t l = 0; l < 3; ++l) {
    h = matmul(h, params[2 * l]) + params[2 * l + 1];
    if (l < 2) h = relu(h);
  }
  Tensor loss = -reduce_mean(reduce_sum(yb * log_softmax(h), 1));
  std::vector<Source> sources(params.begin(), params.end());
  std::vector<Tensor> grads = tape.gradient(loss, sources);
  for (size_t i = 0; i < params.size(); ++i) params[i].assign_sub(0.01f * grads[i]);
  return loss;
}

namespace {

std::shared_ptr<Workload> mlp_step() {
  auto w = std::make_shared<Workload>();
  w->name = "mlp_train_step";
  w->description = "MLP 784-256-256-10 training step (tape + SGD), batch 64, float32";
  // two copies with equal weights: one steps eagerly, one as a graph
  auto eager = std::make_shared<Mlp>("eager");
  auto graphed = std::make_shared<Mlp>("graph");
  auto fn = function([graphed](Tensor x, Tensor y) { return graphed->step(x, y); },
                     {.name = "mlp_train_step", .arg_names = {"x", "y"}});
  auto interpreted = std::make_shared<Mlp>("interpreted");
  auto in = function([interpreted](Tensor x, Tensor y) { return interpreted->step(x, y); },
                     {.name = "mlp_train_step", .arg_names = {"x", "y"}, .backend = backend::BackendKind::Interpreter});
  w->eager = [eager] { eager->step(eager->x, eager->onehot); };
  w->graph = [fn, graphed] { fn(graphed->x, graphed->onehot); };
  w->interpreted = [in, interpreted] { in(interpreted->x, interpreted->onehot); };
  w->concrete = [fn, graphed] { return fn.get_concrete_function(graphed->x, graphed->onehot); };
  w->agree = [eager, graphed, fn, interpreted, in] {
    Tensor a = eager->step(eager->x, eager->onehot), b = fn(graphed->x, graphed->onehot),
           c = in(interpreted->x, interpreted->onehot);
    bool ok = same(a, b, 1e-5) && same(a, c, 1e-5);
    for (size_t i = 0; i < eager->params.size(); ++i)
      ok &= same(eager->params[i].read_value(), graphed->params[i].read_value(), 1e-5) &&
            same(eager->params[i].read_value(), interpreted->params[i].read_value(), 1e-5);
    return ok;
  };
  return w;
}

}  // namespace

std::vector<std::shared_ptr<Workload>> make_suite() {
  std::vector<std::shared_ptr<Workload>> s;
  s.push_back(unary(
      "trivial", "x + 1 on a scalar: the cost of a cache-hit call", [](Tensor x) { return x + 1.0f; }, constant(1.0f),
      0));
  s.push_back(unary(
      "node_overhead", "100 chained scalar adds: graph time / 100 is the cost of one interpreted node",
      [](Tensor x) {
        for (int i = 0; i < 100; ++i) x = x + x;
        return x;
      },
      constant(1e-30f), 0));
  s.push_back(unary(
      "power", "power(x, 100): 100 matmuls of a 10x10 int32 matrix (the walkthrough)",
      [](Tensor x) { return power(x, 100); }, random::uniform({10, 10}, 7, -1, 2, int32), 0, power_loops));
  s.push_back(unary(
      "elementwise_chain", "tanh(x * 2 + 1) * x - x / 3 + exp(-x * x): 10 ops on 1000 float32",
      [](Tensor x) { return tanh(x * 2.0f + 1.0f) * x - x / 3.0f + exp(-(x * x)); }, random::normal({1000}, 3), 1e-6));
  s.push_back(unary(
      "relu_affine_4m", "relu(x * a + b) * c on 4M float32 (a, b, c scalars)",
      // the hand loop may contract x * a + b into one FMA (one rounding less): 1e-5, not 0
      [](Tensor x) { return relu(x * kA + kB) * kC; }, random::normal({int64_t(1) << 22}, 5), 1e-5, relu_affine_loop));
  s.push_back(mlp_step());
  return s;
}

}  // namespace kiln::tools
