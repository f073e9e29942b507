// Tests of the CPU backend (compiler/backend/cpu): which nodes fuse into one loop or a matmul's
// epilogue (plans written from IR text), native results against the interpreter on random
// graphs and on each matmul post-op, shapes specialized per call, variables, errors from
// fallback kernels, and the code caches.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "compiler/backend/cpu/codegen.h"
#include "compiler/backend/cpu/plan.h"
#include "compiler/ir/parser.h"
#include "kiln/kiln.h"
#include "runtime/code_cache.h"
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
  off.epilogues = backend::cpu::LowerOptions::Epilogues::None;
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
  code_cache::clear_memory();
  CHECK(source() == "compiled");
  CHECK(source() == "memory");
  code_cache::clear_memory();
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
  code_cache::clear_memory();
  CHECK(source() == "compiled");  // checksum mismatch: ignored and rewritten
  code_cache::clear_memory();
  CHECK(source() == "disk");
  // a folder others may write is not trusted
  ::chmod(dir.c_str(), 0777);
  code_cache::clear_memory();
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

// ---- vector math ------------------------------------------------------------------------------

namespace {

// x's position in the order of T's values (-0 and +0 share one): two values are that many ULP
// steps apart.
template <class T>
int64_t ordinal(T x) {
  using I = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  const I b = std::bit_cast<I>(x);
  return b < 0 ? int64_t(std::numeric_limits<I>::min()) - int64_t(b) : int64_t(b);
}

// |got - exact| in ULPs of T at `exact` (subnormal ULPs below T's normal range).
template <class T>
long double ulp_error(T got, long double exact) {
  constexpr int kLowest = std::numeric_limits<T>::min_exponent - std::numeric_limits<T>::digits;
  int e = kLowest + std::numeric_limits<T>::digits;
  if (exact != 0) std::frexp(exact, &e);
  return std::fabs(static_cast<long double>(got) - exact) /
         std::ldexp(1.0L, std::max(e - std::numeric_limits<T>::digits, kLowest));
}

// One function under test: the op, its long double reference and its inputs.
struct MathCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;  // unary ops ignore the second
  std::function<long double(long double, long double)> exact;
  // (x, y) pairs over the function's interesting ranges, from a generator and T's exponent range
  std::function<std::pair<long double, long double>(std::mt19937_64&, int lo, int hi)> input;
  std::vector<std::pair<double, double>> specials;  // compared with the eager kernel, bit for bit
};

long double uniform(std::mt19937_64& rng, long double lo, long double hi) {
  return lo + (hi - lo) * static_cast<long double>(rng() >> 11) * 0x1p-53L;
}
// 2^u, u uniform in [lo, hi): magnitudes spread evenly over the exponent range
long double logspace(std::mt19937_64& rng, long double lo, long double hi) { return std::exp2(uniform(rng, lo, hi)); }
long double sign(std::mt19937_64& rng, long double x) { return rng() % 2 ? x : -x; }

const double kInf = std::numeric_limits<double>::infinity(), kNan = std::numeric_limits<double>::quiet_NaN();

// NaN, infinities and zeros, and `extra`: inputs whose results C99 defines exactly
std::vector<std::pair<double, double>> unary_specials(std::initializer_list<double> extra) {
  std::vector<std::pair<double, double>> s;
  for (double x : {kNan, -kNan, kInf, -kInf, 0.0, -0.0}) s.push_back({x, 0.0});
  for (double x : extra) s.push_back({x, 0.0});
  return s;
}

std::vector<MathCase> math_cases() {
  auto unary = [](const char* name, Tensor (*op)(const Tensor&), long double (*exact)(long double), auto input,
                  std::initializer_list<double> specials = {}) {
    return MathCase{name, [op](const Tensor& x, const Tensor&) { return op(x); },
                    [exact](long double x, long double) { return exact(x); },
                    [input](std::mt19937_64& r, int lo, int hi) {
                      return std::pair{input(r, lo, hi), 0.0L};
                    },
                    unary_specials(specials)};
  };
  std::vector<MathCase> cases;
  // log: positive magnitudes over the whole range (subnormals included), values near 1
  cases.push_back(unary(
      "log", &log, &logl,
      [](std::mt19937_64& r, int lo, int hi) { return r() % 4 ? logspace(r, lo, hi) : 1 + uniform(r, -1e-3L, 1e-3L); },
      {1.0, -1.0, -2.0, -1e300, -0x1p-1074}));
  // log1p: tiny and large magnitudes of both signs above -1, values near -1
  cases.push_back(unary("log1p", &log1p, &log1pl,
                        [](std::mt19937_64& r, int lo, int hi) {
                          switch (r() % 4) {
                            case 0:
                              return -logspace(r, lo, 0);
                            case 1:
                              return -1 + logspace(r, -52, -1);
                            default:
                              return logspace(r, lo, hi);
                          }
                        },
                        {-1.0, -2.0, -1e300}));
  // sin, cos: tiny to huge magnitudes (range reduction), and the usual range
  auto trig = [](std::mt19937_64& r, int lo, int hi) {
    return sign(r, r() % 2 ? logspace(r, lo, hi) : uniform(r, 0, 10));
  };
  cases.push_back(unary("sin", &sin, &sinl, trig));
  cases.push_back(unary("cos", &cos, &cosl, trig));
  // tan: also the values nearest its poles, (k + 1/2) pi
  cases.push_back(unary("tan", &tan, &tanl, [trig](std::mt19937_64& r, int lo, int hi) {
    return r() % 4 ? trig(r, lo, hi)
                   : (static_cast<long double>(r() % 2000) - 1000 + 0.5L) * 3.14159265358979323846264L;
  }));
  cases.push_back(unary(
      "tanh", &tanh, &tanhl,
      [](std::mt19937_64& r, int lo, int hi) { return sign(r, r() % 4 ? logspace(r, lo, 5) : uniform(r, 0, 10)); },
      {1e300, -1e300}));
  // exp: results from overflow down to subnormal and zero
  cases.push_back(unary("exp", &exp, &expl,
                        [](std::mt19937_64& r, int lo, int hi) {
                          return r() % 4 ? uniform(r, (lo - 2) * 0.6931471805599453L, (hi + 1) * 0.6931471805599453L)
                                         : sign(r, logspace(r, lo, 0));
                        },
                        {1e300, -1e300}));
  // pow: positive bases with results over the whole range, negative bases with integer
  // exponents, exponents near zero
  MathCase pow_case{"pow",
                    [](const Tensor& x, const Tensor& y) { return pow(x, y); },
                    [](long double x, long double y) { return powl(x, y); },
                    [](std::mt19937_64& r, int lo, int hi) {
                      switch (r() % 4) {
                        case 0:
                          return std::pair{-logspace(r, -10, 10), static_cast<long double>(int(r() % 41) - 20)};
                        case 1:
                          return std::pair{logspace(r, lo, hi), sign(r, logspace(r, -30, 0))};
                        default: {
                          long double x = logspace(r, -20, 20), l = std::log2(x);
                          return std::pair{x, uniform(r, lo / std::fabs(l), hi / std::fabs(l))};
                        }
                      }
                    },
                    {}};
  // a special base (NaN, infinity, zero, one) or exponent (NaN, infinity, zero), or a negative
  // base with a fractional exponent (NaN)
  const double grid[] = {kNan, kInf, -kInf, 0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, 1e300, -1e300};
  auto special = [](double v) { return std::isnan(v) || std::isinf(v) || v == 0; };
  for (double x : grid)
    for (double y : grid)
      if (special(x) || special(y) || std::fabs(x) == 1 || (x < 0 && y != std::floor(y)))
        pow_case.specials.push_back({x, y});
  cases.push_back(pow_case);
  return cases;
}

struct UlpStats {
  long double max_ulps = 0;  // |got - exact| in ULPs
  int64_t max_steps = 0;     // steps from the correctly rounded value
  std::string worst;         // the input of max_ulps
  std::string special_mismatches;
};

// Runs `c` compiled and eagerly on n random inputs and the specials (each specials list tiled,
// so that it runs through the vector loop too) and measures the compiled results.
template <class T>
UlpStats measure_math(const MathCase& c, int n, size_t* fallbacks) {
  constexpr int lo = std::numeric_limits<T>::min_exponent - std::numeric_limits<T>::digits;
  constexpr int hi = std::numeric_limits<T>::max_exponent;
  std::mt19937_64 rng(20260301);
  std::vector<T> xs, ys;
  for (int i = 0; i < n; ++i) {
    auto [x, y] = c.input(rng, lo, hi);
    xs.push_back(static_cast<T>(x));
    ys.push_back(static_cast<T>(y));
  }
  const size_t random_count = xs.size();
  for (int rep = 0; rep < 8; ++rep)
    for (auto [x, y] : c.specials) {
      xs.push_back(static_cast<T>(x));
      ys.push_back(static_cast<T>(y));
    }
  const Shape shape{int64_t(xs.size())};
  Tensor x = constant(xs, shape), y = constant(ys, shape);
  auto f = function([&c](Tensor a, Tensor b) { return c.op(a, b); },
                    on(backend::BackendKind::Cpu, std::string("math_") + c.name));
  const std::vector<T> got = f(x, y).template to_vector<T>(), eager = c.op(x, y).template to_vector<T>();
  *fallbacks = f.get_concrete_function(x, y).stats().codegen.fallbacks;
  UlpStats s;
  for (size_t i = 0; i < random_count; ++i) {
    const long double exact = c.exact(xs[i], ys[i]);
    if (std::isnan(exact)) {
      if (!std::isnan(got[i])) s.max_steps = std::max<int64_t>(s.max_steps, 1 << 30);
      continue;
    }
    const T rounded = static_cast<T>(exact);
    s.max_steps =
        std::max(s.max_steps, int64_t(std::min<long double>(
                                  std::fabs(static_cast<long double>(ordinal(got[i])) - ordinal(rounded)), 1 << 30)));
    if (std::isfinite(rounded) && std::isfinite(got[i])) {
      long double u = ulp_error(got[i], exact);
      if (u > s.max_ulps) {
        s.max_ulps = u;
        std::ostringstream os;
        os.precision(std::numeric_limits<T>::max_digits10);
        os << xs[i] << ", " << ys[i] << " -> " << got[i] << " (exact " << double(exact) << ")";
        s.worst = os.str();
      }
    }
  }
  for (size_t i = random_count; i < xs.size(); ++i) {
    const bool same =
        std::isnan(eager[i]) ? std::isnan(got[i]) : std::bit_cast<T>(got[i]) == std::bit_cast<T>(eager[i]);
    if (!same) {
      std::ostringstream os;
      os << c.name << "(" << xs[i] << ", " << ys[i] << "): compiled " << got[i] << ", eager " << eager[i] << "\n";
      s.special_mismatches += os.str();
    }
  }
  return s;
}

}  // namespace

TEST_CASE("vector math: within 1 ULP of the exact value, specials as the eager kernels", "[cpu][vmath]") {
  for (const MathCase& c : math_cases()) {
    for (DType dt : {float32, float64}) {
      INFO(c.name << " " << dtype_name(dt));
      // float32 exp is the eager kernel's own polynomial and tanh a rational function (below)
      if (dt == float32 && (std::string(c.name) == "exp" || std::string(c.name) == "tanh")) continue;
      size_t fallbacks = 1;
      UlpStats s =
          dt == float32 ? measure_math<float>(c, 1 << 16, &fallbacks) : measure_math<double>(c, 1 << 16, &fallbacks);
      INFO("max " << double(s.max_ulps) << " ULP at " << s.worst << "; " << s.max_steps
                  << " step(s) from the correctly rounded value");
      CHECK(fallbacks == 0);
      CHECK(s.special_mismatches == "");
      CHECK(s.max_steps <= 1);
      CHECK(s.max_ulps <= 1.0L);
    }
  }
}

TEST_CASE("vector math: float32 exp is the eager polynomial (1.5 ULP), tanh a rational function (7 ULP)",
          "[cpu][vmath]") {
  std::mt19937_64 rng(20260302);
  std::vector<float> xs;
  for (int i = 0; i < (1 << 20); ++i)
    xs.push_back(float(rng() % 4 ? uniform(rng, -110, 95) : sign(rng, logspace(rng, -149, 7))));
  for (double v : {kNan, kInf, -kInf, 0.0, -0.0, 1e30, -1e30}) xs.push_back(float(v));
  Tensor x = constant(xs, Shape{int64_t(xs.size())});
  auto fexp = function([](Tensor a) { return exp(a); }, on(backend::BackendKind::Cpu, "exp_f32"));
  auto ftanh = function([](Tensor a) { return tanh(a); }, on(backend::BackendKind::Cpu, "tanh_f32"));
  const std::vector<float> e = fexp(x).to_vector<float>(), eager = exp(x).to_vector<float>();
  const std::vector<float> t = ftanh(x).to_vector<float>(), eager_t = tanh(x).to_vector<float>();
  size_t exp_differ = 0;
  long double worst = 0, worst_exp = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    exp_differ += std::bit_cast<uint32_t>(e[i]) != std::bit_cast<uint32_t>(eager[i]) && !std::isnan(e[i]);
    if (std::isfinite(e[i]) && std::isfinite(xs[i])) worst_exp = std::max(worst_exp, ulp_error(e[i], expl(xs[i])));
    if (std::isnan(xs[i]) || std::isinf(xs[i])) {
      CHECK(std::isnan(t[i]) == std::isnan(eager_t[i]));
      if (!std::isnan(t[i])) CHECK(t[i] == eager_t[i]);
    } else {
      worst = std::max(worst, ulp_error(t[i], tanhl(xs[i])));
    }
  }
  CHECK(exp_differ == 0);
  CHECK(worst_exp <= 1.5L);  // 1.24 ULP measured
  CHECK(worst <= 7.0L);      // 6.4 ULP measured, just below 1 (an absolute error under 4e-7)
}

TEST_CASE("vector math: loops call the vector functions at the full vector width", "[cpu][vmath]") {
  const bool avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2");
  if (!avx512 && !avx2) return;  // scalar libm: nothing to see
  for (const char* dt : {"f32", "f64"}) {
    INFO(dt);
    std::string t = std::string(dt) + "[4096]";
    auto graph = ir::parse_graph("kiln.ir 1\ngraph @f(%x: " + t + ", %y: " + t + ") {\n  %a = log(%x) : " + t +
                                 "\n  %b = sin(%a) : " + t + "\n  %c = pow(%b, %y) : " + t +
                                 "\n  %d = log1p(%c) : " + t + "\n  return %d\n}\n");
    backend::cpu::Plan plan = backend::cpu::lower(*graph);
    REQUIRE(plan.to_string() == "loop [4096] {log, sin, pow, log1p} stores 1\n");
    REQUIRE(plan.fallbacks.empty());
    // the functions of the optimized module but the internal ones of the vector math
    std::string ir = backend::cpu::optimized_ir(plan, "f"), code;
    for (size_t at = ir.find("\ndefine "); at != std::string::npos; at = ir.find("\ndefine ", at + 1)) {
      size_t end = ir.find("\n}\n", at);
      std::string fn = ir.substr(at, end - at);
      if (fn.substr(0, fn.find('\n', 1)).find("@kiln.vm.") == std::string::npos) code += fn;
    }
    REQUIRE(!code.empty());
    const bool f32 = std::string(dt) == "f32";
    const std::string isa = avx512 ? "avx512f" : "avx2";
    const std::string lanes = std::to_string((f32 ? 8 : 4) * (avx512 ? 2 : 1));
    for (const char* fn : {"log", "pow"}) {
      std::string want = "@Sleef_" + std::string(fn) + (f32 ? "f" : "d") + lanes + "_u10" + isa + "(";
      CHECK_THAT(code, Catch::Contains(want));
    }
    // sin and log1p through internal functions that pass tiny arguments through
    for (const char* fn : {"sin", "log1p"}) {
      std::string want = "@kiln.vm." + std::string(fn) + (f32 ? "f" : "d") + ".x" + lanes + "(";
      CHECK_THAT(code, Catch::Contains(want));
    }
  }
}
