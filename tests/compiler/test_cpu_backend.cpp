// Tests of the CPU backend (compiler/backend/cpu): which nodes fuse into one loop (plans
// written from IR text), native results against the interpreter on random graphs, shapes
// specialized per call, variables, errors from fallback kernels, and the code caches.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "compiler/backend/cpu/code_cache.h"
#include "compiler/backend/cpu/plan.h"
#include "compiler/ir/parser.h"
#include "kiln/kiln.h"
#include "tests/support/temp_dir.h"

using namespace kiln;

namespace {

std::string plan_of(const std::string& text) { return backend::cpu::lower(*ir::parse_graph(text)).to_string(); }

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
