// Tests of the CPU backend (compiler/backend/cpu): which nodes fuse into one loop or a matmul's
// epilogue (plans written from IR text), native results against the interpreter on random
// graphs and on each matmul post-op, shapes specialized per call, variables, errors from
// fallback kernels, and the code caches.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "compiler/backend/cpu/code_cache.h"
#include "compiler/backend/cpu/plan.h"
#include "compiler/ir/parser.h"
#include "kiln/kiln.h"
#include "tests/support/op_cases.h"
#include "tests/support/temp_dir.h"

using namespace kiln;

namespace {

std::string plan_of(const std::string& text, const backend::cpu::LowerOptions& options = {}) {
  return backend::cpu::lower(*ir::parse_graph(text), options).to_string();
}

// Checks a native result against the interpreter's at the Approx tier; `scale` holds each
// element's magnitude (sums of |terms|), which widens the tolerance as for accumulations.
void check_approx(const Tensor& got, const Tensor& want, const Tensor& scale) {
  kiln::testing::Host w = kiln::testing::to_host(want);
  for (const kiln::testing::Num& v : kiln::testing::to_host(scale).v) w.scale.push_back(std::abs(v.z.real()));
  CHECK(kiln::testing::compare(kiln::testing::to_host(got), w, kiln::testing::Tier::Approx) == "");
}

// max |a - b| / (1 + |b|) over all elements, in float64
double rel_diff(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return 1e30;
  if (a.num_elements() == 0) return 0;
  Tensor x = cast(a, float64), y = cast(b, float64);
  return reduce_max(abs(x - y) / (abs(y) + 1.0)).item<double>();
}

FunctionOptions on(backend::BackendKind kind, std::string name = "f") {
  FunctionOptions o;
  o.name = std::move(name);
  o.backend = kind;
  return o;
}

}  // namespace

TEST_CASE("fusion: an elementwise chain is one loop, a matmul ends it, its epilogue starts the next", "[cpu]") {
  std::string plan = plan_of(R"(kiln.ir 1
graph @f(%x: f32[4, 3], %w: f32[3, 5], %b: f32[5]) {
  %a = multiply(%x, %x) : f32[4, 3]
  %c = add(%a, %x) : f32[4, 3]
  %m = matmul(%c, %w) {transpose_a = false, transpose_b = false} : f32[4, 5]
  %y = add(%m, %b) : f32[4, 5]
  %z = relu(%y) : f32[4, 5]
  return %z
}
)");
  // [4, 3] collapses to 12 elements; the bias broadcast over rows keeps [4, 5] two loops deep
  CHECK(plan ==
        "loop [12] {multiply, add} stores 1\n"
        "matmul 1x4x5x3 inline\n"
        "loop [4, 5] {add, relu} stores 1\n");
}

TEST_CASE("fusion: a large matmul takes the loop that only finishes its result as its epilogue", "[cpu]") {
  // 256x256x64 is a library (oneDNN) matmul; the loop adding the bias and applying relu
  // becomes its epilogue
  const std::string mlp_layer = R"(kiln.ir 1
graph @f(%x: f32[256, 64], %w: f32[64, 256], %b: f32[256]) {
  %m = matmul(%x, %w) {transpose_a = false, transpose_b = false} : f32[256, 256]
  %y = add(%m, %b) : f32[256, 256]
  %z = relu(%y) : f32[256, 256]
  return %z
}
)";
  CHECK(plan_of(mlp_layer) == "matmul 1x256x256x64 library {bias, relu}\n");
  // switched off: the epilogue is a loop after the matmul
  backend::cpu::LowerOptions off;
  off.fuse_epilogues = false;
  const std::string unfused =
      "matmul 1x256x256x64 library\n"
      "loop [256, 256] {add, relu} stores 1\n";
  CHECK(plan_of(mlp_layer, off) == unfused);
  // a relu needs a per-call scan of A and B (NaN must reach it as NaN): with k = 128 the scan
  // would cost about what fusing saves, so only the tanh layer fuses
  CHECK(plan_of(R"(kiln.ir 1
graph @f(%x: f32[256, 128], %w: f32[128, 256], %b: f32[256]) {
  %m = matmul(%x, %w) {transpose_a = false, transpose_b = false} : f32[256, 256]
  %y = add(%m, %b) : f32[256, 256]
  %z = relu(%y) : f32[256, 256]
  %n = matmul(%x, %w) {transpose_a = false, transpose_b = false} : f32[256, 256]
  %u = add(%n, %b) : f32[256, 256]
  %t = tanh(%u) : f32[256, 256]
  return %z, %t
}
)") == "matmul 1x256x256x128 library\n"
       "loop [256, 256] {add, relu} stores 1\n"
       "matmul 1x256x256x128 library {bias, tanh}\n");
  // the matmul's result is also an output (as a value the backward pass reads would be): the
  // product must be stored as it is, so nothing fuses
  CHECK(plan_of(R"(kiln.ir 1
graph @f(%x: f32[256, 64], %w: f32[64, 256], %b: f32[256]) {
  %m = matmul(%x, %w) {transpose_a = false, transpose_b = false} : f32[256, 256]
  %y = add(%m, %b) : f32[256, 256]
  %z = relu(%y) : f32[256, 256]
  return %z, %m
}
)") == unfused);
  // the loop does more than finish the product (a reduction of the biased value, the square of
  // another input): fusing would save no pass over the result, so the loop stays
  CHECK(plan_of(R"(kiln.ir 1
graph @f(%x: f32[256, 64], %w: f32[64, 256], %b: f32[1, 256]) {
  %m = matmul(%x, %w) {transpose_a = false, transpose_b = false} : f32[256, 256]
  %y = add(%b, %m) : f32[256, 256]
  %z = relu(%y) : f32[256, 256]
  %s = reduce_sum(%y) {axes = [1], keepdims = false} : f32[256]
  return %z, %s
}
)") == "matmul 1x256x256x64 library\n"
       "loop [256, 256] {add, relu, reduce_sum} stores 1 reduces 1\n");
  CHECK(plan_of(R"(kiln.ir 1
graph @f(%x: f32[256, 128], %w: f32[128, 256], %r: f32[256, 256]) {
  %m = matmul(%x, %w) {transpose_a = false, transpose_b = false} : f32[256, 256]
  %r2 = multiply(%r, %r) : f32[256, 256]
  %y = add(%m, %r2) : f32[256, 256]
  return %y
}
)") == "matmul 1x256x256x128 library\n"
       "loop [65536] {multiply, add} stores 1\n");
  // transposed operands; a same-shape add (residual), a scale by a scalar constant, a bias
  // computed after the product, tanh: the matmul moves to the loop's place, after the bias
  CHECK(plan_of(R"(kiln.ir 1
graph @f(%x: f32[128, 256], %w: f32[256, 128], %r: f32[256, 256], %b: f32[256]) {
  %m = matmul(%x, %w) {transpose_a = true, transpose_b = true} : f32[256, 256]
  %b2 = multiply(%b, %b) : f32[256]
  %y = add(%m, %r) : f32[256, 256]
  %c = constant : f32[] = 0.5
  %s = multiply(%y, %c) : f32[256, 256]
  %u = add(%s, %b2) : f32[256, 256]
  %t = tanh(%u) : f32[256, 256]
  return %t
}
)") == "loop [256] {multiply} stores 1\n"
       "matmul 1x256x256x128 library {add, scale, bias, tanh}\n");
  // not post-ops: a bias that broadcasts along rows ([256, 1]), a non-constant scale
  CHECK(plan_of(R"(kiln.ir 1
graph @f(%x: f32[256, 128], %w: f32[128, 256], %b: f32[256, 1], %k: f32[]) {
  %m = matmul(%x, %w) {transpose_a = false, transpose_b = false} : f32[256, 256]
  %y = add(%m, %b) : f32[256, 256]
  %n = matmul(%x, %w) {transpose_a = false, transpose_b = false} : f32[256, 256]
  %z = multiply(%n, %k) : f32[256, 256]
  return %y, %z
}
)") == "matmul 1x256x256x128 library\n"
       "loop [256, 256] {add} stores 1\n"
       "matmul 1x256x256x128 library\n"
       "loop [65536] {multiply} stores 1\n");
  // results under 64K elements stay in cache, where a loop costs less than post-ops; float64
  // matmuls are generated inline
  CHECK(plan_of(R"(kiln.ir 1
graph @f(%x: f32[64, 128], %w: f32[128, 64], %b: f32[64]) {
  %m = matmul(%x, %w) {transpose_a = false, transpose_b = false} : f32[64, 64]
  %y = add(%m, %b) : f32[64, 64]
  return %y
}
)") == "matmul 1x64x64x128 library\n"
       "loop [64, 64] {add} stores 1\n");
  CHECK(plan_of(R"(kiln.ir 1
graph @f(%x: f64[256, 128], %w: f64[128, 256], %b: f64[256]) {
  %m = matmul(%x, %w) {transpose_a = false, transpose_b = false} : f64[256, 256]
  %y = add(%m, %b) : f64[256, 256]
  return %y
}
)") == "matmul 1x256x256x128 inline\n"
       "loop [256, 256] {add} stores 1\n");
}

TEST_CASE("matmul epilogues: each post-op kind equals the interpreter", "[cpu]") {
  // a library matmul with a result of 80K elements, k small enough for relu epilogues
  const int64_t m = 256, n = 320, k = 64;
  Tensor a = random::normal({m, k}, 1), at = transpose(a), b = random::normal({k, n}, 2), bt = transpose(b);
  Tensor bias = random::normal({n}, 3), bias_row = reshape(bias, {1, n}), r = random::normal({m, n}, 4);
  Tensor a3 = random::normal({3, m, k}, 5), r3 = random::normal({3, m, n}, 6);
  // each case: the function, its inputs, the post-ops it must fuse, and per element the sum of
  // |terms| (the tolerance's scale)
  struct Case {
    std::string name;
    std::function<Tensor(Tensor, Tensor, Tensor)> f;
    std::vector<Tensor> in;
    std::string epilogue;
    Tensor scale;
  };
  Tensor mag = matmul(abs(a), abs(b));
  // a NaN in A makes its row of the product NaN, which every post-op keeps (oneDNN's relu would
  // give 0); huge values overflow to infinities whose sums are NaN
  std::vector<float> av = a.to_vector<float>();
  av[size_t(3 * k + 5)] = std::numeric_limits<float>::quiet_NaN();
  Tensor a_nan = constant(av, {m, k});
  for (int64_t j = 0; j < k; ++j) av[size_t(7 * k + j)] = 3e38f;
  Tensor a_huge = constant(av, {m, k});
  std::vector<Case> cases = {
      {"NaN row, bias relu",
       [](Tensor x, Tensor w, Tensor c) { return relu(matmul(x, w) + c); },
       {a_nan, b, bias},
       "{bias, relu}",
       matmul(abs(a_nan), abs(b)) + abs(bias)},
      {"overflow, residual, relu",
       [](Tensor x, Tensor w, Tensor c) { return relu(matmul(x, w) + c); },
       {a_huge, b, r},
       "{add, relu}",
       matmul(abs(a_huge), abs(b)) + abs(r)},
      {"NaN row, residual, sigmoid",
       [](Tensor x, Tensor w, Tensor c) { return sigmoid(matmul(x, w) + c); },
       {a_nan, b, r},
       "{add, sigmoid}",
       matmul(abs(a_nan), abs(b)) + abs(r)},
      {"NaN row, scale, tanh",
       [](Tensor x, Tensor w, Tensor c) { return tanh(matmul(x, w) * 0.25f) + c; },
       {a_nan, b, r},
       "{scale, tanh, add}",
       matmul(abs(a_nan), abs(b)) + abs(r)},
      {"bias relu",
       [](Tensor x, Tensor w, Tensor c) { return relu(matmul(x, w) + c); },
       {a, b, bias},
       "{bias, relu}",
       mag + abs(bias)},
      {"transpose_a, [1, n] bias, tanh",
       [](Tensor x, Tensor w, Tensor c) { return tanh(c + matmul(x, w, true, false)); },
       {at, b, bias_row},
       "{bias, tanh}",
       mag + abs(bias)},
      {"transpose_b, scale, sigmoid",
       [](Tensor x, Tensor w, Tensor c) { return sigmoid(matmul(x, w, false, true) * 0.5f) + c; },
       {a, bt, r},
       "{scale, sigmoid, add}",
       mag + abs(r)},
      {"both transposed, residual add",
       [](Tensor x, Tensor w, Tensor c) { return matmul(x, w, true, true) + c; },
       {at, bt, r},
       "{add}",
       mag + abs(r)},
      {"bias, add, scale, relu",
       [&bias](Tensor x, Tensor w, Tensor c) { return relu((matmul(x, w) + bias + c) * -2.0f); },
       {a, b, r},
       "{bias, add, scale, relu}",
       (mag + abs(bias) + abs(r)) * 2.0f},
      {"batched, residual, relu",
       [](Tensor x, Tensor w, Tensor c) { return relu(matmul(x, w) + c); },
       {a3, b, r3},
       "{add, relu}",
       matmul(abs(a3), abs(b)) + abs(r3)},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    auto native = function(c.f, on(backend::BackendKind::Cpu, "epilogue"));
    auto interp = function(c.f, on(backend::BackendKind::Interpreter, "epilogue"));
    auto cf = native.get_concrete_function(c.in[0], c.in[1], c.in[2]);
    CHECK(backend::cpu::lower(cf.graph()).to_string().find("library " + c.epilogue) != std::string::npos);
    check_approx(native(c.in[0], c.in[1], c.in[2]), interp(c.in[0], c.in[1], c.in[2]), c.scale);
  }
}

TEST_CASE("matmul epilogues: an MLP training step equals eager", "[cpu]") {
  // two layers (64 -> 256 -> 16, batch 256): the first layer's matmul takes its bias and tanh as
  // post-ops (the backward pass reads only the stored activation)
  Tensor x = random::normal({256, 64}, 11), y = random::normal({256, 16}, 12);
  auto loss = [](Tensor x, Tensor y, Tensor w1, Tensor b1, Tensor w2, Tensor b2) {
    Tensor h = tanh(matmul(x, w1) + b1);
    return reduce_mean(square(matmul(h, w2) + b2 - y));
  };
  auto vg = value_and_grad(loss, on(backend::BackendKind::Cpu, "mlp_step"));
  std::vector<Tensor> traced{random::normal({64, 256}, 13, 0.0, 0.2), random::normal({256}, 14),
                             random::normal({256, 16}, 15, 0.0, 0.1), random::normal({16}, 16)};
  std::vector<Tensor> eager = traced;
  std::string plan =
      backend::cpu::lower(vg.get_concrete_function(x, y, traced[0], traced[1], traced[2], traced[3]).graph())
          .to_string();
  INFO(plan);
  CHECK(plan.find("library {bias, tanh}") != std::string::npos);
  for (int step = 0; step < 3; ++step) {
    auto [l, g] = vg(x, y, traced[0], traced[1], traced[2], traced[3]);
    GradientTape tape;
    for (const Tensor& p : eager) tape.watch(p);
    Tensor le = loss(x, y, eager[0], eager[1], eager[2], eager[3]);
    std::vector<Tensor> ge = tape.gradient(le, {eager[0], eager[1], eager[2], eager[3]});
    CHECK(l.item<float>() == Approx(le.item<float>()).epsilon(1e-5));
    REQUIRE(g.size() == 6);
    for (size_t i = 0; i < 4; ++i) {
      INFO("step " << step << ", parameter " << i);
      CHECK(rel_diff(g[i + 2], ge[i]) <= 1e-5);
      traced[i] = traced[i] - 0.1f * g[i + 2];
      eager[i] = eager[i] - 0.1f * ge[i];
    }
  }
  for (size_t i = 0; i < 4; ++i) CHECK(rel_diff(traced[i], eager[i]) <= 1e-5);
}

TEST_CASE("fusion: a reduction joins its input's loop and ends it", "[cpu]") {
  // softmax: the sum fuses into exp's loop, which must finish before the division can use the
  // sum, so the division starts a new loop reading exp's stored value
  std::string plan = plan_of(R"(kiln.ir 1
graph @f(%x: f32[4, 3]) {
  %e = exp(%x) : f32[4, 3]
  %s = reduce_sum(%e) {axes = [1], keepdims = true} : f32[4, 1]
  %y = divide(%e, %s) : f32[4, 3]
  return %y
}
)");
  CHECK(plan ==
        "loop [4, 3] {exp, reduce_sum} stores 1 reduces 1\n"
        "loop [4, 3] {divide} stores 1\n");
  // a reduction of a stored value (here a graph input) is a reduction step of its own
  CHECK(plan_of(R"(kiln.ir 1
graph @f(%x: f32[4, 3]) {
  %s = reduce_max(%x) {axes = [0], keepdims = false} : f32[3]
  return %s
}
)") == "reduce_max [1, 4, 3]\n");
}

TEST_CASE("fusion: ops over different shapes do not fuse; views and casts do", "[cpu]") {
  std::string plan = plan_of(R"(kiln.ir 1
graph @f(%x: f32[3], %y: f32[2, 3], %i: i32[6]) {
  %a = add(%x, %x) : f32[3]
  %b = multiply(%y, %a) : f32[2, 3]
  %r = reshape(%b) {shape = [6]} : f32[6]
  %f = cast(%i) {dtype = f32} : f32[6]
  %s = subtract(%r, %f) : f32[6]
  %t = transpose(%y) {perm = [1, 0]} : f32[3, 2]
  return %s, %t
}
)");
  // a is stored for the [2, 3] loop (loaded with a broadcast stride); the reshape is a view of
  // b's buffer, so subtract reads it there; the cast fuses with subtract; transpose is a loop
  // with a strided load
  CHECK(plan ==
        "loop [3] {add} stores 1\n"
        "loop [2, 3] {multiply} stores 1\n"
        "loop [6] {cast, subtract} stores 1\n"
        "loop [3, 2] {transpose} stores 1\n");
}

TEST_CASE("fusion: unsupported nodes fall back to their eager kernels, listed", "[cpu]") {
  backend::cpu::Plan plan = backend::cpu::lower(*ir::parse_graph(R"(kiln.ir 1
graph @f(%x: c64[4], %i: i32[2]) {
  %y = add(%x, %x) : c64[4]
  %g = gather(%x, %i) {axis = 0, batch_dims = 0} : c64[2]
  return %y, %g
}
)"));
  CHECK(plan.fallbacks == std::vector<std::string>{"add (complex64)", "gather (complex64)"});
}

TEST_CASE("random graphs: native code equals the interpreter", "[cpu]") {
  // random DAGs of elementwise, broadcast, reduction, reshape, transpose, cast and matmul ops
  // on small float32 tensors, each traced twice (CPU backend, interpreter) and run on the same
  // inputs
  const uint32_t base = 20261126;
  const int cases = 150;
  for (int c = 0; c < cases; ++c) {
    uint32_t seed = base + uint32_t(c);
    INFO("seed " << seed << " (case " << c << ")");
    auto program = [seed](Tensor x, Tensor y) {
      std::mt19937 rng(seed);
      auto pick = [&](size_t n) { return size_t(rng() % n); };
      std::vector<Tensor> pool{x, y};
      int steps = 3 + int(pick(10));
      for (int s = 0; s < steps; ++s) {
        Tensor a = pool[pick(pool.size())];
        Tensor b = pool[pick(pool.size())];
        Tensor out;
        switch (pick(12)) {
          case 0:
            out = tanh(a);
            break;
          case 1:
            out = exp(-square(a));
            break;
          case 2:
            out = relu(a) - sigmoid(a);
            break;
          case 3:
          case 4:
            // binary ops broadcast when one side is a row or a scalar of the other
            if (a.shape() == b.shape() || b.ndim() == 0)
              out = pick(2) ? a * b + a : maximum(a, b) - minimum(a, b) / 2.0f;
            else
              out = a + reduce_mean(b);
            break;
          case 5:
            out = a.ndim() ? reduce_sum(a, {int64_t(pick(size_t(a.ndim())))}, pick(2) == 0) : a;
            break;
          case 6:
            out = a.ndim() == 2 ? a + reduce_max(a, {1}, true) : abs(a);
            break;
          case 7:
            out = reshape(a, {a.num_elements()});
            break;
          case 8:
            out = a.ndim() == 2 ? transpose(a) : floor(a * 3.0f);
            break;
          case 9:
            out = cast(cast(a * 4.0f, int32), float32) + where(a > 0.0f, a, -a);
            break;
          case 10:
            if (a.ndim() == 2 && b.ndim() == 2 && a.shape().dim(1) == b.shape().dim(0))
              out = matmul(a, b);
            else if (a.ndim() == 2 && b.ndim() == 2 && a.shape().dim(1) == b.shape().dim(1))
              out = matmul(a, b, false, true);
            else
              out = a * 0.5f;
            break;
          default:
            out = a.ndim() == 2 ? a + reduce_mean(a, {0}) : a - 1.0f;
            break;
        }
        pool.push_back(out);
      }
      return pool.back();
    };
    std::mt19937 rng(seed);
    int64_t n = 1 + int64_t(rng() % 9), m = 1 + int64_t(rng() % 9);
    Tensor x = random::normal({n, m}, seed), y = random::normal({m, n}, seed + 1);
    auto native = function(program, on(backend::BackendKind::Cpu, "random"));
    auto interp = function(program, on(backend::BackendKind::Interpreter, "random"));
    Tensor got = native(x, y), want = interp(x, y);
    REQUIRE(native.get_concrete_function(x, y).stats().backend == "cpu");
    CHECK(rel_diff(got, want) <= 1e-5);
  }
}

TEST_CASE("unknown dims: one native specialization per shape, the interpreter after eight", "[cpu]") {
  auto f = [](Tensor x) { return reduce_sum(relu(x * 2.0f - 1.0f), {1}) + reduce_mean(x); };
  FunctionOptions o = on(backend::BackendKind::Cpu, "batched");
  o.input_signature = std::vector<TensorSpec>{TensorSpec({-1, 3}, float32)};
  auto native = function(f, o);
  for (int64_t b = 1; b <= 12; ++b) {
    Tensor x = random::normal({b, 3}, uint64_t(b));
    CHECK(rel_diff(native(x), f(x)) <= 1e-6);
    CHECK(rel_diff(native(x), f(x)) <= 1e-6);  // the second call reuses the specialization
  }
  CHECK(native.tracing_count() == 1);
}

TEST_CASE("variables: reads after an assign see it, values are written back once the call succeeds", "[cpu]") {
  Variable v(constant({1.0f, 2.0f, 3.0f}), "v");
  auto step = function(
      [&v](Tensor x) {
        v.assign_add(x);
        Tensor seen = v.read_value() * 2.0f;
        v.assign(seen);
        return seen + v.read_value();
      },
      on(backend::BackendKind::Cpu, "step"));
  Tensor out = step(constant({1.0f, 1.0f, 1.0f}));
  CHECK(out.to_vector<float>() == std::vector<float>{8, 12, 16});
  CHECK(v.read_value().to_vector<float>() == std::vector<float>{4, 6, 8});
  step(constant({0.0f, 0.0f, 0.0f}));
  CHECK(v.read_value().to_vector<float>() == std::vector<float>{8, 12, 16});
}

TEST_CASE("errors in fallback kernels surface as the eager op's typed error", "[cpu]") {
  auto f = function([](Tensor x, Tensor i) { return gather(exp(x), i) + 1.0f; }, on(backend::BackendKind::Cpu));
  Tensor x = constant({1.0f, 2.0f});
  CHECK(rel_diff(f(x, constant({1})), gather(exp(x), constant({1})) + 1.0f) <= 1e-6);
  CHECK_THROWS_AS(f(x, constant({5})), InvalidArgument);
  // the function still works afterwards
  CHECK(f(x, constant({0})).shape() == Shape({1}));
}

TEST_CASE("the interpreter backend is a choice of the function", "[cpu]") {
  auto f = [](Tensor x) { return x * x; };
  auto a = function(f, on(backend::BackendKind::Interpreter));
  auto b = function(f, on(backend::BackendKind::Cpu));
  Tensor x = constant({3.0f});
  CHECK(a.get_concrete_function(x).stats().backend == "interpreter");
  CHECK(b.get_concrete_function(x).stats().backend == "cpu");
  CHECK(a(x).item<float>() == 9.0f);
  CHECK(b(x).item<float>() == 9.0f);
}

TEST_CASE("code cache: memory, then a trusted disk folder; damaged entries are recompiled", "[cpu]") {
  testing::TempDir tmp("kiln_code_cache");
  std::string dir = tmp.file("cache");
  ::setenv("KILN_CACHE_DIR", dir.c_str(), 1);
  auto body = [](Tensor x) { return tanh(x) * 3.5f + 0.25f; };  // a graph no other test builds
  Tensor x = random::normal({7, 3}, 99);
  auto source = [&] {
    auto f = function(body, on(backend::BackendKind::Cpu, "cached"));
    Tensor got = f(x);
    CHECK(rel_diff(got, body(x)) <= 1e-6);
    return f.get_concrete_function(x).stats().codegen.code_source;
  };
  backend::cpu::clear_memory_cache();
  CHECK(source() == "compiled");
  CHECK(source() == "memory");
  backend::cpu::clear_memory_cache();
  CHECK(source() == "disk");
  // the folder holds one entry; flip a byte in its code
  std::vector<std::filesystem::path> entries;
  for (const auto& e : std::filesystem::directory_iterator(dir)) entries.push_back(e.path());
  REQUIRE(entries.size() == 1);
  {
    std::fstream f(entries[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-20, std::ios::end);
    f.put('\x5a');
  }
  backend::cpu::clear_memory_cache();
  CHECK(source() == "compiled");  // checksum mismatch: ignored and rewritten
  backend::cpu::clear_memory_cache();
  CHECK(source() == "disk");
  // a folder others may write is not trusted
  ::chmod(dir.c_str(), 0777);
  backend::cpu::clear_memory_cache();
  CHECK(source() == "compiled");
  ::unsetenv("KILN_CACHE_DIR");
}

TEST_CASE("cond and while_loop compile to basic blocks, not fallbacks", "[cpu]") {
  // Fibonacci: the body swaps its loop values (b, a + b), which must not overwrite a before it
  // is read; the cond picks a branch per call
  auto fib = [](Tensor n, Tensor x) {
    std::vector<Tensor> r = while_loop([&](std::span<const Tensor> v) { return v[0] < n; },
                                       [](std::span<const Tensor> v) {
                                         return std::vector<Tensor>{v[0] + 1, v[2], v[1] + v[2]};
                                       },
                                       {constant(0), constant(0.0f), constant(1.0f)});
    return cond(
        reduce_sum(x) > 0.0f, [&] { return x * r[1]; }, [&] { return x - r[2]; });
  };
  auto native = function(fib, on(backend::BackendKind::Cpu, "fib"));
  auto interp = function(fib, on(backend::BackendKind::Interpreter, "fib"));
  for (int n : {0, 1, 2, 10}) {
    for (float sign : {1.0f, -1.0f}) {
      Tensor x = constant({sign * 1.0f, sign * 2.0f});
      CHECK(rel_diff(native(constant(n), x), interp(constant(n), x)) == 0.0);
    }
  }
  CHECK(native(constant(10), constant({1.0f, 1.0f})).to_vector<float>() == std::vector<float>{55, 55});
  const auto& st = native.get_concrete_function(constant(3), constant({1.0f, 2.0f})).stats().codegen;
  CHECK(st.fallbacks == 0);
}

TEST_CASE("threads: matmuls with epilogues run on many threads at once", "[cpu][threads]") {
  // one oneDNN primitive per step, its scratchpad in each call's arena
  auto f = [](Tensor x, Tensor w, Tensor b) { return relu(matmul(x, w) + b); };
  auto shared = function(f, on(backend::BackendKind::Cpu, "layer"));
  Tensor w = random::normal({64, 256}, 50), b = random::normal({256}, 51);
  std::vector<Tensor> inputs, expected;
  for (int i = 0; i < 4; ++i) {
    inputs.push_back(random::normal({256, 64}, uint64_t(52 + i)));
    expected.push_back(f(inputs.back(), w, b));
  }
  CHECK(rel_diff(shared(inputs[0], w, b), expected[0]) <= 1e-5);
  CHECK(backend::cpu::lower(shared.get_concrete_function(inputs[0], w, b).graph()).to_string() ==
        "matmul 1x256x256x64 library {bias, relu}\n");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        size_t k = size_t(t + i) % inputs.size();
        if (rel_diff(shared(inputs[k], w, b), expected[k]) > 1e-5) ++wrong;
      }
    });
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
}

TEST_CASE("threads: compiled functions and their per-shape specializations from many threads", "[cpu][threads]") {
  // eight threads call one function with an unknown batch dim at six batch sizes: the first
  // call of each size compiles a specialization while other threads run others
  auto f = [](Tensor x) { return reduce_sum(tanh(x * 2.0f) + 1.0f, {1}); };
  FunctionOptions o = on(backend::BackendKind::Cpu, "shared");
  o.input_signature = std::vector<TensorSpec>{TensorSpec({-1, 5}, float32)};
  auto shared = function(f, o);
  std::vector<Tensor> inputs, expected;
  for (int64_t b = 1; b <= 6; ++b) {
    inputs.push_back(random::normal({b, 5}, uint64_t(40 + b)));
    expected.push_back(f(inputs.back()));
  }
  // traced once up front: concurrent first calls at different shapes of one input_signature can
  // each trace (the function cache's alias keys); the specializations below still compile
  // concurrently
  CHECK(rel_diff(shared(inputs[0]), expected[0]) <= 1e-6);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        size_t k = size_t(t + i) % inputs.size();
        if (rel_diff(shared(inputs[k]), expected[k]) > 1e-6) ++wrong;
      }
    });
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
  CHECK(shared.tracing_count() == 1);
}
