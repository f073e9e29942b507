// The CUDA backend (compiler/backend/cuda). Everywhere ([cuda-source]): the programs of a set
// of graphs (an elementwise chain, softmax, broadcasts and reductions, an MLP training step,
// cond/while, an elementwise chain per dtype) are generated and compiled with NVRTC for sm_90,
// which needs no GPU, and the lowering option it adds leaves the CPU plans alone. On a GPU
// ([.cuda], scripts/gpu_check.sh): the same graphs called with GPU inputs give the
// interpreter's results, update variables, and reuse their compiled program.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "compiler/backend/cpu/plan.h"
#include "compiler/backend/cuda/cuda_backend.h"
#include "compiler/ir/parser.h"
#include "kiln/kiln.h"
#include "ops/kernels/cuda/blas_lt.h"
#include "ops/kernels/cuda/kernels.h"
#include "ops/kernels/cuda/source.h"
#include "runtime/code_cache.h"
#include "runtime/cuda/cuda.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
namespace cpu = kiln::backend::cpu;
namespace gpu_backend = kiln::backend::cuda;

namespace {

const DType kChainDTypes[] = {DType::Bool,     DType::Int8,    DType::Int16,  DType::Int32,  DType::Int64,
                              DType::UInt8,    DType::UInt16,  DType::UInt32, DType::UInt64, DType::Float16,
                              DType::BFloat16, DType::Float32, DType::Float64};

FunctionOptions on(backend::BackendKind kind, std::string name) {
  FunctionOptions o;
  o.name = std::move(name);
  o.backend = kind;
  return o;
}

// ---- the graphs, shared by both halves --------------------------------------------------------

Tensor chain(Tensor x, Tensor a, Tensor b, Tensor c) { return relu(x * a + b) * c; }

Tensor softmax_fn(Tensor x) { return softmax(x, -1); }
Tensor softmax2_fn(Tensor x) { return softmax(softmax(x, -1) * 3.0f, -1); }

// a row broadcast into a [4, 5, 6] value, reduced over a contiguous run (a reduce step), over
// the outer axis with a mean, and over two separate axes (an eager GPU reduction)
Tensor broadcast_reduce(Tensor x, Tensor row) {
  Tensor y = exp(-abs(x + row)) * 2.0f;
  return reduce_sum(y, {1, 2}, true) + reduce_mean(y, {0}) - reduce_max(y, {0, 2}, true);
}

// integer and bool elementwise ops, a comparison and a cast; true division of integers gives a
// float, integer floordiv runs on the eager kernel (it checks for zero)
Tensor dtype_chain(Tensor x, Tensor y) {
  if (x.dtype() == DType::Bool) return logical_xor(logical_and(x, y), logical_not(x));
  Tensor s = x * y + x;
  Tensor picked = where(greater(s, y), s, y - x) + cast(equal(x, y), x.dtype());
  if (is_floating(x.dtype())) return relu(picked) + exp(-abs(x)) + sigmoid(y) - tanh(x * 0.5);
  return maximum(picked, abs(x)) - cast(cast(s, DType::Float32) * 0.5f, x.dtype());
}

// Fibonacci by while_loop (the body swaps its values), then a cond on the input's sum
Tensor fib(Tensor n, Tensor x) {
  std::vector<Tensor> r = while_loop([&](std::span<const Tensor> v) { return v[0] < n; },
                                     [](std::span<const Tensor> v) {
                                       return std::vector<Tensor>{v[0] + 1, v[2], v[1] + v[2]};
                                     },
                                     {constant(0), constant(0.0f), constant(1.0f)});
  return cond(
      reduce_sum(x) > 0.0f, [&] { return x * r[1]; }, [&] { return x - r[2]; });
}

Tensor mlp_loss(Tensor x, Tensor y, Tensor w1, Tensor b1, Tensor w2, Tensor b2) {
  Tensor h = tanh(matmul(x, w1) + b1);
  return reduce_mean(square(matmul(h, w2) + b2 - y));
}

// One SGD step on variables: the loss's gradients by a tape inside the trace, then assigns.
struct Mlp {
  std::optional<Variable> w1, b1, w2, b2;
  explicit Mlp(Device d) {
    DeviceScope scope(d);
    w1.emplace(random::normal({16, 32}, 13, 0.0, 0.2), "w1");
    b1.emplace(random::normal({32}, 14), "b1");
    w2.emplace(random::normal({32, 4}, 15, 0.0, 0.1), "w2");
    b2.emplace(random::normal({4}, 16), "b2");
  }
  Tensor step(Tensor x, Tensor y) {
    GradientTape tape;
    Tensor loss = mlp_loss(x, y, *w1, *b1, *w2, *b2);
    std::vector<Tensor> g = tape.gradient(loss, {*w1, *b1, *w2, *b2});
    w1->assign_sub(g[0] * 0.1f);
    b1->assign_sub(g[1] * 0.1f);
    w2->assign_sub(g[2] * 0.1f);
    b2->assign_sub(g[3] * 0.1f);
    return loss;
  }
};

// The walkthrough's power(x, 100): 99 chained matmuls of a small matrix.
Tensor power_fn(Tensor x) {
  Tensor y = x;
  for (int i = 1; i < 100; ++i) y = matmul(y, x);
  return y;
}

Tensor inputs_of(DType dt, const Shape& shape, uint64_t seed) {
  if (dt == DType::Bool) return greater(random::uniform(shape, seed), constant(0.5f));
  if (is_floating(dt)) return cast(random::uniform(shape, seed, -2, 2), dt);
  return cast(random::uniform(shape, seed, -40, 40), dt);
}

// ---- without a GPU ------------------------------------------------------------------------------

bool have_nvrtc() {
  std::string why;
  if (ops::cuda::nvrtc_available(why)) return true;
  WARN("NVRTC is not available, the CUDA programs are not compiled: " << why);
  return false;
}

// A graph and the plan the CUDA backend makes of it (the plan points into the graph).
struct Lowered {
  std::shared_ptr<const ir::Graph> graph;
  cpu::Plan plan;
  std::string to_string() const { return plan.to_string(); }
};

Lowered lowered(const ir::Graph& g, const cpu::LowerOptions& options = gpu_backend::lower_options()) {
  std::shared_ptr<const ir::Graph> own = g.clone();
  cpu::Plan plan = cpu::lower(*own, options);
  return {std::move(own), std::move(plan)};
}

// The CUDA backend's plan of a function's graph for these arguments.
template <class F, class... A>
Lowered plan_of(F f, const std::string& name, const A&... args) {
  auto fn = function(f, on(backend::BackendKind::Cpu, name));
  return lowered(fn.get_concrete_function(args...).graph());
}

// Compiles the plan's program for sm_90; returns its kernel count.
size_t compile(const Lowered& lowered) {
  const cpu::Plan& plan = lowered.plan;
  INFO(plan.to_string());
  const std::string source = gpu_backend::cuda_program_source(plan);
  try {
    ops::cuda::compile_cubin(source, "test_program", 90);
  } catch (const Internal& e) {
    FAIL_CHECK(e.what() << "\n" << source.substr(ops::cuda::gpu_prelude().size()));
  }
  return gpu_backend::kernel_steps(plan).size();
}

}  // namespace

TEST_CASE("CUDA programs: an elementwise chain is one kernel of constants and prelude functors", "[cuda-source]") {
  Tensor x = random::normal({4, 3}, 1), a = constant(1.5f), b = random::normal({3}, 2), c = constant(2.0f);
  Lowered plan = plan_of(chain, "chain", x, a, b, c);
  CHECK(plan.to_string() == "loop [4, 3] {multiply, add, relu, multiply} stores 1\n");
  const std::string kernels = gpu_backend::program_kernels(plan.plan, "t");
  INFO(kernels);
  // dims and strides are constants; the bias broadcasts over the rows (stride 0 on dim 0)
  CHECK(kernels.find("extern \"C\" __global__ void t_k0(") != std::string::npos);
  CHECK(kernels.find("KILN_GRID_LOOP(i, 12LL)") != std::string::npos);
  CHECK(kernels.find("i1 = r % 3LL") != std::string::npos);
  CHECK(kernels.find("[i1 * 1LL]") != std::string::npos);
  CHECK(kernels.find("ReluFn()(") != std::string::npos);
  CHECK(kernels.find("MultiplyFn()(") != std::string::npos);
  if (have_nvrtc()) CHECK(compile(plan) == 1);
}

TEST_CASE("CUDA programs: contiguous 4-byte loops get a 4-wide twin", "[cuda-source]") {
  Tensor x = random::normal({64, 128}, 1), a = constant(1.5f), b = random::normal({128}, 2), c = constant(2.0f);
  Lowered plan = plan_of(chain, "chain", x, a, b, c);
  REQUIRE(plan.plan.steps.size() == 1);
  CHECK(gpu_backend::loop_vectorizable(plan.plan, plan.plan.steps[0].loop));
  const std::string kernels = gpu_backend::program_kernels(plan.plan, "t");
  INFO(kernels);
  CHECK(kernels.find("void t_k0_v4(") != std::string::npos);
  CHECK(kernels.find("kv4<float> L0 = *(const kv4<float>*)(p0 + ") != std::string::npos);
  if (have_nvrtc()) CHECK(compile(plan) == 1);
  // not 4-wide: 70 columns; a transposed operand; 8-byte elements
  CHECK_FALSE(gpu_backend::loop_vectorizable(
      plan_of(chain, "chain", random::normal({6, 70}, 1), a, random::normal({70}, 2), c).plan,
      plan_of(chain, "chain", random::normal({6, 70}, 1), a, random::normal({70}, 2), c).plan.steps[0].loop));
  Lowered t = plan_of([](Tensor m) { return transpose(m) * 2.0f; }, "t", random::normal({8, 8}, 3));
  CHECK_FALSE(gpu_backend::loop_vectorizable(t.plan, t.plan.steps[0].loop));
  Lowered d = plan_of([](Tensor m) { return m * 2.0; }, "d", random::normal({8, 8}, 3, 0.0, 1.0, float64));
  CHECK_FALSE(gpu_backend::loop_vectorizable(d.plan, d.plan.steps[0].loop));
}

TEST_CASE("CUDA programs: softmax, broadcasts and reductions keep reductions as steps", "[cuda-source]") {
  Tensor x = random::normal({8, 33}, 3);
  Lowered plan = plan_of(softmax_fn, "softmax", x);
  const std::string steps = plan.to_string();
  INFO(steps);
  CHECK(steps.find("reduce_max [8, 33, 1]") != std::string::npos);
  CHECK(steps.find("reduce_sum [8, 33, 1]") != std::string::npos);
  CHECK(steps.find("reduces") == std::string::npos);  // nothing fused into a loop
  Lowered br = plan_of(broadcast_reduce, "broadcast_reduce", random::normal({4, 5, 6}, 4), random::normal({6}, 5));
  INFO(br.to_string());
  CHECK(br.to_string().find("reduce_sum [4, 30, 1]") != std::string::npos);
  CHECK(br.to_string().find("reduce_mean [1, 4, 30]") != std::string::npos);
  CHECK(br.to_string().find("fallback reduce_max") != std::string::npos);
  if (!have_nvrtc()) return;
  CHECK(compile(plan) >= 4);
  CHECK(compile(br) >= 4);
}

TEST_CASE("CUDA programs: an MLP training step, by value_and_grad and with variables", "[cuda-source]") {
  if (!have_nvrtc()) return;
  Tensor x = random::normal({64, 16}, 11), y = random::normal({64, 4}, 12);
  std::vector<Tensor> p{random::normal({16, 32}, 13), random::normal({32}, 14), random::normal({32, 4}, 15),
                        random::normal({4}, 16)};
  auto vg = value_and_grad(mlp_loss, on(backend::BackendKind::Cpu, "mlp_vg"));
  Lowered plan = lowered(vg.get_concrete_function(x, y, p[0], p[1], p[2], p[3]).graph());
  CHECK(plan.to_string().find("matmul") != std::string::npos);
  CHECK(compile(plan) >= 3);
  Mlp mlp(kCPU);
  Lowered step = plan_of([&mlp](Tensor a, Tensor b) { return mlp.step(a, b); }, "mlp_step", x, y);
  CHECK(step.plan.assigns.size() == 4);
  CHECK(compile(step) >= 3);
  // the plan a GPU program uses when the step is too large for one block: row reductions in
  // their loops, the SGD updates as cuBLASLt epilogues
  cpu::LowerOptions second = gpu_backend::lower_options();
  second.fuse_reductions = true;
  second.row_reductions_only = true;
  second.epilogues = cpu::LowerOptions::Epilogues::Affine;
  auto step_fn = function([&mlp](Tensor a, Tensor b) { return mlp.step(a, b); }, on(backend::BackendKind::Cpu, "big"));
  Tensor xb = random::normal({2048, 16}, 11), yb = random::normal({2048, 4}, 12);
  Lowered big = lowered(step_fn.get_concrete_function(xb, yb).graph(), second);
  INFO(big.to_string());
  CHECK(big.to_string().find("reduces 1") != std::string::npos);
  CHECK(big.to_string().find("{scale, scale, add}") != std::string::npos);
  CHECK(compile(big) >= 3);
}

TEST_CASE("CUDA programs: a small graph is one single-block kernel", "[cuda-source]") {
  for (DType dt : {float32, int32}) {
    INFO(dtype_name(dt));
    Lowered power = plan_of(power_fn, "power", inputs_of(dt, {10, 10}, 7));
    const gpu_backend::BlockProgram bp = gpu_backend::block_program(power.plan);
    REQUIRE(bp.eligible);
    CHECK(power.plan.steps.size() == 99);
    CHECK(bp.threads == 128);      // 100 outputs a matmul
    CHECK(bp.shared_arena);        // the intermediates in shared memory
    CHECK(bp.params.size() == 2);  // x and the result
    const std::string src = gpu_backend::block_program_source(power.plan, bp, "kiln_block");
    size_t syncs = 0;
    for (size_t p = src.find("__syncthreads();"); p != std::string::npos; p = src.find("__syncthreads();", p + 1))
      ++syncs;
    CHECK(syncs == 99);
    if (have_nvrtc()) ops::cuda::compile_cubin(ops::cuda::gpu_prelude() + src, "power", 90);
  }
  // loops and reductions together
  Lowered sm = plan_of(softmax_fn, "softmax", random::normal({8, 33}, 3));
  const gpu_backend::BlockProgram bp = gpu_backend::block_program(sm.plan);
  CHECK(bp.eligible);
  if (have_nvrtc())
    ops::cuda::compile_cubin(ops::cuda::gpu_prelude() + gpu_backend::block_program_source(sm.plan, bp, "k"), "sm", 90);
  // not small: 21,000 elements a step; an eager fallback; cond/while
  CHECK_FALSE(gpu_backend::block_program(plan_of(chain, "chain", random::normal({300, 70}, 1), constant(1.5f),
                                                 random::normal({70}, 2), constant(2.0f))
                                             .plan)
                  .eligible);
  CHECK_FALSE(gpu_backend::block_program(
                  plan_of(broadcast_reduce, "br", random::normal({4, 5, 6}, 4), random::normal({6}, 5)).plan)
                  .eligible);
  CHECK_FALSE(gpu_backend::block_program(plan_of(fib, "fib", constant(3), constant({1.0f, 2.0f})).plan).eligible);
}

TEST_CASE("CUDA programs: cond and while steps nest their kernels", "[cuda-source]") {
  Lowered plan = plan_of(fib, "fib", constant(3), constant({1.0f, 2.0f}));
  INFO(plan.to_string());
  CHECK(plan.plan.fallbacks.empty());
  CHECK(plan.to_string().find("while cond:") != std::string::npos);
  CHECK(plan.to_string().find("cond then:") != std::string::npos);
  if (have_nvrtc()) CHECK(compile(plan) >= 5);
}

TEST_CASE("CUDA programs: an elementwise chain of every dtype compiles", "[cuda-source]") {
  if (!have_nvrtc()) return;
  for (DType dt : kChainDTypes) {
    INFO(dtype_name(dt));
    Tensor x = inputs_of(dt, {3, 4}, 7), y = inputs_of(dt, {4}, 8);
    Lowered plan = plan_of(dtype_chain, std::string("chain_") + std::string(dtype_name(dt)), x, y);
    const size_t kernels = compile(plan);
    // the 16-bit floats run on the eager GPU kernels; every other dtype has fused loops
    if (dt != DType::Float16 && dt != DType::BFloat16) CHECK(kernels >= 1);
  }
  // casts between every pair of the dtypes loops compute in
  const DType natives[] = {DType::Bool,   DType::Int8,   DType::Int16,  DType::Int32,   DType::Int64,  DType::UInt8,
                           DType::UInt16, DType::UInt32, DType::UInt64, DType::Float32, DType::Float64};
  std::string text = "kiln.ir 1\ngraph @casts(%x: f64[5]) {\n";
  int k = 0;
  for (DType a : natives) {
    const std::string from = "%a" + std::to_string(k);
    const std::string ta(ir::dtype_short_name(a));
    text += "  " + from + " = cast(%x) {dtype = " + ta + "} : " + ta + "[5]\n";
    for (DType b : natives) {
      const std::string tb(ir::dtype_short_name(b));
      text += "  %c" + std::to_string(k++) + " = cast(" + from + ") {dtype = " + tb + "} : " + tb + "[5]\n";
    }
  }
  text += "  return";
  for (int i = 0; i < k; ++i) text += std::string(i ? "," : "") + " %c" + std::to_string(i);
  text += "\n}\n";
  Lowered casts = lowered(*ir::parse_graph(text));
  CHECK(compile(casts) >= 1);
}

TEST_CASE("CUDA programs: what has no kernel is an Internal error, NVRTC's log included", "[cuda-source]") {
  // a reduction over a leading axis fused into a loop (the CPU lowering) has no GPU kernel
  auto fn = function([](Tensor x) { return reduce_sum(exp(x), {0}); }, on(backend::BackendKind::Cpu, "fused"));
  Lowered fused = lowered(fn.get_concrete_function(random::normal({2, 3}, 1)).graph(), cpu::LowerOptions{});
  CHECK_THROWS_AS(gpu_backend::cuda_program_source(fused.plan), Internal);
  if (!have_nvrtc()) return;
  Lowered plan = plan_of(chain, "chain", random::normal({4, 3}, 1), constant(1.5f), constant(0.5f), constant(2.0f));
  const std::string broken =
      gpu_backend::cuda_program_source(plan.plan) + "extern \"C\" __global__ void k() { nope(); }\n";
  try {
    ops::cuda::compile_cubin(broken, "broken", 90);
    FAIL("a broken program must not compile");
  } catch (const Internal& e) {
    const std::string what = e.what();
    CHECK(what.find("NVRTC could not compile broken") != std::string::npos);
    CHECK(what.find("nope") != std::string::npos);  // the log names the undefined identifier
  }
}

TEST_CASE("lowering: reductions fuse into loops unless fuse_reductions is off", "[cuda-source]") {
  const char* text = R"(kiln.ir 1
graph @f(%x: f32[4, 6]) {
  %e = exp(%x) : f32[4, 6]
  %s = reduce_sum(%e) {axes = [1], keepdims = false} : f32[4]
  return %s
}
)";
  auto g = ir::parse_graph(text);
  cpu::LowerOptions fused;
  fused.fuse_reductions = true;
  // the default (the CPU backend's) is unchanged: the reduction joins exp's loop
  CHECK(cpu::lower(*g).to_string() == "loop [4, 6] {exp, reduce_sum} stores 0 reduces 1\n");
  CHECK(cpu::lower(*g, fused).to_string() == cpu::lower(*g).to_string());
  CHECK(cpu::lower(*g, gpu_backend::lower_options()).to_string() == "loop [24] {exp} stores 1\nreduce_sum [4, 6, 1]\n");
}

TEST_CASE("lowering: row reductions join their loop when row_reductions_only is on", "[cuda-source]") {
  const char* text = R"(kiln.ir 1
graph @f(%x: f32[4, 6]) {
  %e = exp(%x) : f32[4, 6]
  %r = reduce_sum(%e) {axes = [1], keepdims = false} : f32[4]
  %c = reduce_max(%e) {axes = [0], keepdims = false} : f32[6]
  return %r, %c
}
)";
  auto g = ir::parse_graph(text);
  cpu::LowerOptions rows = gpu_backend::lower_options();
  rows.fuse_reductions = true;
  rows.row_reductions_only = true;
  // the sum over the rows joins exp's loop; the max over the leading axis stays a step
  const cpu::Plan plan = cpu::lower(*g, rows);
  CHECK(plan.to_string() == "loop [4, 6] {exp, reduce_sum} stores 1 reduces 1\nreduce_max [1, 4, 6]\n");
  auto rr = cpu::row_reduction(plan.steps[0].loop);
  REQUIRE(rr);
  CHECK((rr->rows == 4 && rr->length == 6));
  CHECK_FALSE(cpu::row_reduction(cpu::LoopStep{}));  // no reductions, no rows
  // the kernels compile for sm_90, for every reduction and accumulator type the loop may hold
  if (!have_nvrtc()) return;
  CHECK(compile(lowered(*g, rows)) == 2);
  for (DType dt : {float32, float16, bfloat16, float64, int32, int64, uint8}) {
    INFO(dtype_name(dt));
    auto f = [](Tensor x) {
      Tensor y = x * x;
      return reduce_sum(y, {1}) + reduce_max(y, {1}) - reduce_min(y, {1}) + reduce_prod(x, {1}) +
             (is_floating(x.dtype()) ? reduce_mean(y, {1}) : reduce_sum(x, {1}));
    };
    auto fn = function(f, on(backend::BackendKind::Cpu, "rows"));
    Lowered l = lowered(fn.get_concrete_function(inputs_of(dt, {40, 33}, 1)).graph(), rows);
    CHECK(l.to_string().find("reduces") != std::string::npos);
    compile(l);
  }
}

// The matmul epilogues the CUDA backend hands cuBLASLt (Epilogues::Affine).
Tensor dense(Tensor x, Tensor w, Tensor b) { return matmul(x, w) + b; }
Tensor dense_relu(Tensor x, Tensor w, Tensor b) { return relu(matmul(x, w) + b); }
Tensor residual(Tensor x, Tensor w, Tensor r) { return (matmul(x, w, false, true) + r) * 0.5f; }
// an SGD update of w by the gradient x^T g
Tensor sgd(Tensor x, Tensor g, Tensor w) { return w - 0.01f * matmul(x, g, true); }

TEST_CASE("lowering: affine matmul epilogues for cuBLASLt", "[cuda-source]") {
  cpu::LowerOptions affine = gpu_backend::lower_options();
  affine.epilogues = cpu::LowerOptions::Epilogues::Affine;
  auto plan = [&](auto f, const std::vector<Tensor>& in) {
    auto fn = function(f, on(backend::BackendKind::Cpu, "epilogue"));
    return lowered(fn.get_concrete_function(in[0], in[1], in[2]).graph(), affine);
  };
  auto epilogue = [](const Lowered& l) -> const cpu::MatMulStep& {
    INFO(l.to_string());
    REQUIRE(l.plan.steps.size() == 1);
    REQUIRE(l.plan.steps[0].kind == cpu::Step::Kind::MatMul);
    return l.plan.steps[0].matmul;
  };
  Tensor x = random::normal({64, 32}, 1), w = random::normal({32, 16}, 2);
  {
    // small or large, a bias fuses (the CPU's oneDNN epilogues start at 64K elements)
    Lowered l = plan(dense, {x, w, random::normal({16}, 3)});
    CHECK(l.to_string() == "matmul 1x64x16x32 inline {bias}\n");
    auto form = cpu::affine_epilogue(epilogue(l).epilogue);
    REQUIRE(form);
    CHECK((form->alpha == 1 && form->beta == 0 && form->add < 0 && form->bias >= 0));
  }
  {
    // (x w^T + r) / 2: alpha and beta 0.5
    Lowered l = plan(residual, {x, random::normal({16, 32}, 2), random::normal({64, 16}, 3)});
    CHECK(l.to_string() == "matmul 1x64x16x32 inline {add, scale}\n");
    auto form = cpu::affine_epilogue(epilogue(l).epilogue);
    REQUIRE(form);
    CHECK((form->alpha == 0.5f && form->beta == 0.5f && form->add >= 0 && form->bias < 0));
  }
  {
    // w - 0.01 x^T g: alpha -0.01, beta 1, C = w
    Lowered l = plan(sgd, {x, random::normal({64, 16}, 2), random::normal({32, 16}, 3)});
    CHECK(l.to_string() == "matmul 1x32x16x64 inline {scale, scale, add}\n");
    auto form = cpu::affine_epilogue(epilogue(l).epilogue);
    REQUIRE(form);
    CHECK((form->alpha == -0.01f && form->beta == 1 && form->add >= 0));
  }
  // a relu stays a loop: cuBLASLt's relu would turn NaN into 0 where Kiln's keeps it
  CHECK(plan(dense_relu, {x, w, random::normal({16}, 3)}).to_string() ==
        "matmul 1x64x16x32 inline\nloop [64, 16] {add, relu} stores 1\n");
  // rows of a batch against one matrix are one matmul of 192 rows, with its bias
  CHECK(plan(dense, {random::normal({3, 64, 32}, 1), w, random::normal({16}, 3)}).to_string() ==
        "matmul 1x192x16x32 inline {bias}\n");
  // a bias over the batches of a batched matmul stays a loop (one bias vector a matrix here)
  CHECK(plan(dense, {random::normal({3, 64, 32}, 1), random::normal({3, 32, 16}, 2), random::normal({16}, 3)})
            .to_string() == "matmul 3x64x16x32 inline\nloop [192, 16] {add} stores 1\n");
  // what the form cannot say
  using K = cpu::PostOp::Kind;
  const std::vector<cpu::PostOp> bias_then_scale{{K::Bias, 1, 1}, {K::Scale, -1, 2}},
      two_adds{{K::Add, 1, 1}, {K::Add, 2, 1}}, activation{{K::Tanh, -1, 1}};
  CHECK_FALSE(cpu::affine_epilogue(bias_then_scale));
  CHECK_FALSE(cpu::affine_epilogue(two_adds));
  CHECK_FALSE(cpu::affine_epilogue(activation));
  // the CPU backend's plans are unchanged
  auto cpu_fn = function(dense, on(backend::BackendKind::Cpu, "epilogue"));
  CHECK(cpu::lower(cpu_fn.get_concrete_function(x, w, random::normal({16}, 3)).graph()).to_string() ==
        "matmul 1x64x16x32 library\nloop [64, 16] {add} stores 1\n");
}

// ---- with a GPU ---------------------------------------------------------------------------------

namespace {

const Device kGPU{DeviceType::GPU, 0};

void require_gpu() {
  if (gpu_count() == 0) FAIL("[.cuda] tests need a GPU: " << cuda::unavailable_reason());
}

// `got` (on the GPU) against `want` (the interpreter's, on the CPU): integers and bools exactly,
// floats within `tol` relative to 1 + |want|.
void check_same(const Tensor& got, const Tensor& want, double tol = 1e-5) {
  CHECK(got.device() == kGPU);
  Tensor g = got.to(kCPU);
  REQUIRE(g.dtype() == want.dtype());
  REQUIRE(g.shape() == want.shape());
  if (g.num_elements() == 0) return;
  if (!is_floating(g.dtype())) {
    CHECK(std::memcmp(g.raw_data(), want.raw_data(), g.nbytes()) == 0);
    return;
  }
  Tensor a = cast(g, float64), b = cast(want, float64);
  const double diff = reduce_max(abs(a - b) / (abs(b) + 1.0)).item<double>();
  CHECK(diff <= tol);
}

std::vector<Tensor> to_gpu(std::vector<Tensor> ts) {
  for (Tensor& t : ts) t = t.to(kGPU);
  return ts;
}

}  // namespace

TEST_CASE("CUDA backend: the graphs on GPU inputs give the interpreter's results", "[.cuda]") {
  require_gpu();
  {
    auto native = function(chain, on(backend::BackendKind::Cpu, "chain"));
    auto interp = function(chain, on(backend::BackendKind::Interpreter, "chain"));
    std::vector<Tensor> in{random::normal({300, 70}, 1), constant(1.5f), random::normal({70}, 2), constant(2.0f)};
    std::vector<Tensor> g = to_gpu(in);
    const uint64_t before = gpu_backend::programs_compiled();
    check_same(native(g[0], g[1], g[2], g[3]), interp(in[0], in[1], in[2], in[3]));
    CHECK(gpu_backend::programs_compiled() == before + 1);
    // called again, with the same shapes: the same program
    for (int i = 0; i < 3; ++i) check_same(native(g[0], g[1], g[2], g[3]), interp(in[0], in[1], in[2], in[3]));
    CHECK(gpu_backend::programs_compiled() == before + 1);
    // the CPU call of the same function still runs natively on the CPU
    CHECK(native(in[0], in[1], in[2], in[3]).device() == kCPU);
  }
  {
    auto native = function(softmax_fn, on(backend::BackendKind::Cpu, "softmax"));
    auto interp = function(softmax_fn, on(backend::BackendKind::Interpreter, "softmax"));
    for (const Shape& s : {Shape{8, 33}, Shape{3, 1000}, Shape{1, 1}}) {
      Tensor x = random::normal(s, 3) * 4.0f;
      check_same(native(x.to(kGPU)), interp(x));
    }
  }
  {
    auto native = function(broadcast_reduce, on(backend::BackendKind::Cpu, "broadcast_reduce"));
    auto interp = function(broadcast_reduce, on(backend::BackendKind::Interpreter, "broadcast_reduce"));
    Tensor x = random::normal({4, 5, 6}, 4), row = random::normal({6}, 5);
    check_same(native(x.to(kGPU), row.to(kGPU)), interp(x, row));
  }
  {
    auto native = function(fib, on(backend::BackendKind::Cpu, "fib"));
    auto interp = function(fib, on(backend::BackendKind::Interpreter, "fib"));
    for (int n : {0, 1, 2, 10}) {
      for (float sign : {1.0f, -1.0f}) {
        Tensor x = constant({sign * 1.0f, sign * 2.0f});
        check_same(native(constant(n).to(kGPU), x.to(kGPU)), interp(constant(n), x), 0.0);
      }
    }
  }
}

TEST_CASE("CUDA backend: 4-wide loop kernels, and the scalar kernel for unaligned views", "[.cuda]") {
  require_gpu();
  auto native = function(chain, on(backend::BackendKind::Cpu, "chain"));
  auto interp = function(chain, on(backend::BackendKind::Interpreter, "chain"));
  Tensor x = random::normal({4097}, 1), a = constant(1.5f), b = random::normal({4096}, 2), c = constant(2.0f);
  // elements 1..4096: a view starting 4 bytes past a 16-byte boundary, which takes the scalar
  // kernel; then an aligned tensor, which takes the 4-wide one
  Tensor view = x.to(kGPU).index({Slice(1, None)});
  REQUIRE(reinterpret_cast<uintptr_t>(view.device_data()) % 16 == 4);
  check_same(native(view, a.to(kGPU), b.to(kGPU), c.to(kGPU)), interp(x.index({Slice(1, None)}), a, b, c));
  Tensor aligned = random::normal({4096}, 5);
  REQUIRE(reinterpret_cast<uintptr_t>(aligned.to(kGPU).device_data()) % 16 == 0);
  check_same(native(aligned.to(kGPU), a.to(kGPU), b.to(kGPU), c.to(kGPU)), interp(aligned, a, b, c));
}

TEST_CASE("CUDA backend: an elementwise chain of every dtype, and integer division by zero", "[.cuda]") {
  require_gpu();
  for (DType dt : kChainDTypes) {
    INFO(dtype_name(dt));
    auto native = function(dtype_chain, on(backend::BackendKind::Cpu, "chain"));
    auto interp = function(dtype_chain, on(backend::BackendKind::Interpreter, "chain"));
    Tensor x = inputs_of(dt, {37, 41}, 7), y = inputs_of(dt, {41}, 8);
    const double tol = dt == DType::Float16 || dt == DType::BFloat16 ? 1e-2 : 1e-5;
    check_same(native(x.to(kGPU), y.to(kGPU)), interp(x, y), tol);
  }
  auto div = function([](Tensor x, Tensor y) { return floordiv(x * 2, y) + 1; }, on(backend::BackendKind::Cpu, "div"));
  Tensor x = constant({1, 2, 3}), y = constant({1, 0, 1});
  try {
    (void)div(x.to(kGPU), y.to(kGPU));
    FAIL("division by zero must throw");
  } catch (const InvalidArgument& e) {
    CHECK(std::string(e.what()) == "[floordiv] integer division by zero");
  }
  check_same(div(x.to(kGPU), constant({1, 2, 3}).to(kGPU)), constant({3, 3, 3}), 0.0);
}

TEST_CASE("CUDA backend: an MLP training step updates variables on the GPU and on the CPU", "[.cuda]") {
  require_gpu();
  Tensor x = random::normal({64, 16}, 11), y = random::normal({64, 4}, 12);
  for (Device d : {kGPU, kCPU}) {
    INFO("variables on " << d.to_string());
    Mlp ref_copy(kCPU), m(d);  // the reference: the interpreter on the CPU
    auto ref_fn = function([&ref_copy](Tensor a, Tensor b) { return ref_copy.step(a, b); },
                           on(backend::BackendKind::Interpreter, "ref_step"));
    auto step = function([&m](Tensor a, Tensor b) { return m.step(a, b); }, on(backend::BackendKind::Cpu, "step"));
    for (int i = 0; i < 3; ++i) check_same(step(x.to(kGPU), y.to(kGPU)), ref_fn(x, y), 1e-4);
    CHECK(m.w1->device() == d);  // the variables stay where they live
    for (auto [v, r] :
         {std::pair{&m.w1, &ref_copy.w1}, {&m.b1, &ref_copy.b1}, {&m.w2, &ref_copy.w2}, {&m.b2, &ref_copy.b2}})
      check_same((*v)->read_value().to(kGPU), (*r)->read_value(), 1e-4);
  }
  // value_and_grad's graph on GPU inputs
  std::vector<Tensor> p{random::normal({16, 32}, 13), random::normal({32}, 14), random::normal({32, 4}, 15),
                        random::normal({4}, 16)};
  auto vg = value_and_grad(mlp_loss, on(backend::BackendKind::Cpu, "mlp_vg"));
  auto vg_ref = value_and_grad(mlp_loss, on(backend::BackendKind::Interpreter, "mlp_vg"));
  std::vector<Tensor> g = to_gpu(p);
  auto [l, grads] = vg(x.to(kGPU), y.to(kGPU), g[0], g[1], g[2], g[3]);
  auto [l_ref, grads_ref] = vg_ref(x, y, p[0], p[1], p[2], p[3]);
  check_same(l, l_ref, 1e-4);
  REQUIRE(grads.size() == grads_ref.size());
  for (size_t i = 0; i < grads.size(); ++i) check_same(grads[i], grads_ref[i], 1e-4);
}

TEST_CASE("CUDA backend: unknown dims compile one program per shape", "[.cuda]") {
  require_gpu();
  auto f = [](Tensor x) { return reduce_sum(relu(x * 2.0f - 1.0f), {1}) + reduce_mean(x); };
  FunctionOptions o = on(backend::BackendKind::Cpu, "batched");
  o.input_signature = std::vector<TensorSpec>{TensorSpec({-1, 3}, float32)};
  auto native = function(f, o);
  const uint64_t before = gpu_backend::programs_compiled();
  for (int64_t b = 1; b <= 4; ++b) {
    Tensor x = random::normal({b, 3}, uint64_t(b));
    check_same(native(x.to(kGPU)), f(x));
    check_same(native(x.to(kGPU)), f(x));  // the second call reuses the specialization
  }
  CHECK(gpu_backend::programs_compiled() == before + 4);
  CHECK(native.tracing_count() == 1);
}

TEST_CASE("CUDA backend: small graphs are one kernel, larger ones replay a CUDA graph", "[.cuda]") {
  require_gpu();
  for (DType dt : {float32, int32}) {
    INFO(dtype_name(dt));
    auto native = function(power_fn, on(backend::BackendKind::Cpu, "power"));
    auto interp = function(power_fn, on(backend::BackendKind::Interpreter, "power"));
    // float entries small enough that the 100th power stays finite; integers wrap alike
    Tensor x = dt == float32 ? random::uniform({10, 10}, 7, -0.3, 0.3) : inputs_of(dt, {10, 10}, 7);
    const uint64_t blocks = gpu_backend::block_programs();
    for (int i = 0; i < 3; ++i) check_same(native(x.to(kGPU)), interp(x), 1e-4);
    CHECK(gpu_backend::block_programs() == blocks + 1);
  }
  {
    // a softmax of a softmax of 21,000 elements: four kernels (a reduce_max, then loops with
    // the row reductions joined), captured on the second call and replayed
    auto native = function(softmax2_fn, on(backend::BackendKind::Cpu, "softmax2"));
    auto interp = function(softmax2_fn, on(backend::BackendKind::Interpreter, "softmax2"));
    const uint64_t captured = gpu_backend::graphs_captured(), replays = gpu_backend::graph_replays();
    for (uint64_t i = 0; i < 4; ++i) {
      // new values every call: the replay reads this call's arguments
      Tensor x = random::normal({300, 70}, 20 + i) * 3.0f;
      check_same(native(x.to(kGPU)), interp(x));
    }
    CHECK(gpu_backend::graphs_captured() == captured + 1);
    CHECK(gpu_backend::graph_replays() == replays + 3);
    // two threads calling the replaying function: each gets its own results
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    for (uint64_t t = 0; t < 2; ++t)
      threads.emplace_back([&, t] {
        for (uint64_t i = 0; i < 4; ++i) {
          Tensor x = random::normal({300, 70}, 100 * t + i);
          Tensor got = native(x.to(kGPU)).to(kCPU);
          if (reduce_max(abs(got - softmax2_fn(x))).item<float>() > 1e-6f) ++wrong;
        }
      });
    for (auto& th : threads) th.join();
    CHECK(wrong == 0);
    // one kernel over 21,000 elements: nothing to gain from a graph, no capture
    auto chained = function(chain, on(backend::BackendKind::Cpu, "chain"));
    const uint64_t before = gpu_backend::graphs_captured();
    std::vector<Tensor> in =
        to_gpu({random::normal({300, 70}, 1), constant(1.5f), random::normal({70}, 2), constant(2.0f)});
    for (int i = 0; i < 3; ++i) (void)chained(in[0], in[1], in[2], in[3]);
    CHECK(gpu_backend::graphs_captured() == before);
  }
  {
    // a training step too large for one block, replayed: the variables move on every call
    Tensor x = random::normal({2048, 16}, 11), y = random::normal({2048, 4}, 12);
    Mlp ref_copy(kCPU), m(kGPU);
    auto ref_fn = function([&ref_copy](Tensor a, Tensor b) { return ref_copy.step(a, b); },
                           on(backend::BackendKind::Interpreter, "ref_step"));
    auto step = function([&m](Tensor a, Tensor b) { return m.step(a, b); }, on(backend::BackendKind::Cpu, "step"));
    const uint64_t captured = gpu_backend::graphs_captured(), lts = ops::cuda::lt_matmuls_planned();
    for (int i = 0; i < 4; ++i) check_same(step(x.to(kGPU), y.to(kGPU)), ref_fn(x, y), 1e-4);
    CHECK(gpu_backend::graphs_captured() == captured + 1);
    // the SGD updates of w1 and w2 are the epilogues of their gradients' cuBLASLt matmuls
    CHECK(ops::cuda::lt_matmuls_planned() == lts + 2);
    for (auto [v, r] :
         {std::pair{&m.w1, &ref_copy.w1}, {&m.b1, &ref_copy.b1}, {&m.w2, &ref_copy.w2}, {&m.b2, &ref_copy.b2}})
      check_same((*v)->read_value(), (*r)->read_value(), 1e-4);
  }
}

TEST_CASE("CUDA backend: cuBLASLt runs matmul epilogues and 16-bit float matmuls", "[.cuda]") {
  require_gpu();
  // 256 x 128 inputs: too large for a block program, so the matmuls are library calls
  Tensor x = random::normal({256, 128}, 1), w = random::normal({128, 96}, 2), b = random::normal({96}, 3);
  auto run = [&](auto f, const std::vector<Tensor>& in, int64_t planned) {
    auto native = function(f, on(backend::BackendKind::Cpu, "epilogue"));
    auto interp = function(f, on(backend::BackendKind::Interpreter, "epilogue"));
    const uint64_t before = ops::cuda::lt_matmuls_planned();
    std::vector<Tensor> g = to_gpu(in);
    for (int i = 0; i < 2; ++i) check_same(native(g[0], g[1], g[2]), interp(in[0], in[1], in[2]), 1e-4);
    CHECK(ops::cuda::lt_matmuls_planned() == before + uint64_t(planned));
  };
  run(dense, {x, w, b}, 1);
  run(residual, {x, random::normal({96, 128}, 4), random::normal({256, 96}, 5)}, 1);
  run(sgd, {x, random::normal({256, 96}, 6), w}, 1);
  run(dense_relu, {x, w, b}, 0);  // a relu: no epilogue
  // a batched residual: (x_i w^T + r_i) / 2 for 3 matrices
  run(residual, {random::normal({3, 256, 128}, 7), random::normal({96, 128}, 8), random::normal({3, 256, 96}, 9)}, 1);
  {
    // a bias 4 bytes past a 16-byte boundary: the algorithm for float-aligned operands
    auto native = function(dense, on(backend::BackendKind::Cpu, "epilogue"));
    Tensor wide = random::normal({97}, 10);
    Tensor view = wide.to(kGPU).index({Slice(1, None)});
    REQUIRE(reinterpret_cast<uintptr_t>(view.device_data()) % 16 == 4);
    check_same(native(x.to(kGPU), w.to(kGPU), view), dense(x, w, wide.index({Slice(1, None)})), 1e-4);
  }
  for (DType dt : {float16, bfloat16}) {
    // 16-bit float matmuls run on cuBLASLt (float32 sums, like the CPU), eagerly and compiled,
    // once per shape; a B operand 2 bytes off a 16-byte boundary takes the element-aligned algorithm
    INFO(dtype_name(dt));
    Tensor a = cast(random::normal({64, 40}, 11), dt), wide = cast(random::normal({40 * 24 + 1}, 12), dt);
    Tensor bv = reshape(wide.to(kGPU).index({Slice(1, None)}), {40, 24});
    REQUIRE(reinterpret_cast<uintptr_t>(bv.device_data()) % 16 == 2);
    Tensor b = reshape(wide.index({Slice(1, None)}), {40, 24});
    const uint64_t before = ops::cuda::lt_matmuls_planned();
    const double tol = dt == float16 ? 2e-3 : 1e-2;
    for (int i = 0; i < 2; ++i) check_same(matmul(a.to(kGPU), bv), matmul(a, b), tol);
    check_same(matmul(a.to(kGPU), a.to(kGPU), true, false), matmul(a, a, true, false), tol);
    CHECK(ops::cuda::lt_matmuls_planned() == before + 2);
  }
  {
    // NaN in the product: the relu that stays a loop keeps it, as on the CPU
    auto native = function(dense_relu, on(backend::BackendKind::Cpu, "epilogue"));
    Tensor xn = where(equal(range_like(x, 0, int32), constant(5)), constant(NAN), x);
    Tensor out = native(xn.to(kGPU), w.to(kGPU), b.to(kGPU)).to(kCPU);
    const float* p = out.data<float>();
    int64_t nans = 0;
    for (int64_t i = 0; i < out.num_elements(); ++i) nans += std::isnan(p[i]) ? 1 : 0;
    CHECK(nans == 96);  // row 5, every column
  }
}

TEST_CASE("CUDA backend: row reductions run in their loop's kernel, a block per row", "[.cuda]") {
  require_gpu();
  auto f = [](Tensor x) {
    Tensor y = x * x;
    Tensor out = reduce_sum(y, {-1}) + reduce_max(y, {-1}) - reduce_min(y, {-1});
    return is_floating(x.dtype()) ? out + reduce_mean(abs(x), {-1}) + reduce_max(exp(x * 0.1), {-1}) : out;
  };
  // rows shorter and longer than a block, more rows than blocks would hold alone
  for (DType dt : {float32, float16, int32, int64}) {
    for (const Shape& shape : {Shape{500, 77}, Shape{3, 3000}, Shape{3000, 3}}) {
      INFO(dtype_name(dt) << " " << shape.to_string());
      auto native = function(f, on(backend::BackendKind::Cpu, "rows"));
      auto interp = function(f, on(backend::BackendKind::Interpreter, "rows"));
      Tensor x = inputs_of(dt, shape, 3);
      const double tol = dt == float16 ? 2e-2 : 1e-5;
      for (int i = 0; i < 2; ++i) check_same(native(x.to(kGPU)), interp(x), tol);
    }
  }
  // NaN in a row: that row's max is NaN, as on the CPU
  auto native = function(f, on(backend::BackendKind::Cpu, "rows"));
  Tensor x = random::normal({500, 77}, 4);
  x = where(equal(range_like(x, 0, int32), constant(7)), constant(NAN), x);
  Tensor got = native(x.to(kGPU)).to(kCPU);
  const float* p = got.data<float>();
  for (int64_t r = 0; r < 500; ++r) CHECK(std::isnan(p[r]) == (r == 7));
}

TEST_CASE("CUDA backend: a whole-tensor reduction is split over many blocks", "[.cuda]") {
  require_gpu();
  // 100,000 elements to one: a reduction step of its own (not the exp's loop, which would be
  // one block), its partials in the program's scratch; replayed from a CUDA graph as well
  auto f = [](Tensor x) { return reduce_sum(exp(x * 0.01f)) + reduce_max(x * 2.0f); };
  ::setenv("KILN_CUDA_GRAPHS", "1", 1);
  auto native = function(f, on(backend::BackendKind::Cpu, "split"));
  auto interp = function(f, on(backend::BackendKind::Interpreter, "split"));
  const uint64_t replays = gpu_backend::graph_replays();
  for (uint64_t i = 0; i < 3; ++i) {
    Tensor x = random::normal({200, 500}, 40 + i);
    check_same(native(x.to(kGPU)), interp(x), 1e-5);
  }
  ::unsetenv("KILN_CUDA_GRAPHS");
  CHECK(gpu_backend::graph_replays() == replays + 2);  // captured on the second call
  cpu::LowerOptions second = gpu_backend::lower_options();
  second.fuse_reductions = true;
  second.row_reductions_only = true;
  second.split_rows = ops::cuda::kReduceSplitMaxOutputs;
  second.split_length = ops::cuda::kReduceSplitMinCount;
  const std::string plan =
      lowered(native.get_concrete_function(random::normal({200, 500}, 1)).graph(), second).to_string();
  INFO(plan);
  CHECK(plan.find("reduces") == std::string::npos);
}

TEST_CASE("CUDA backend: the step profile times each step of a call", "[.cuda]") {
  require_gpu();
  struct Profiling {
    Profiling() { gpu_backend::set_profiling(true); }
    ~Profiling() { gpu_backend::set_profiling(false); }
  } profiling;
  (void)gpu_backend::profile_report();  // empty it
  auto native = function(softmax_fn, on(backend::BackendKind::Cpu, "softmax"));
  auto interp = function(softmax_fn, on(backend::BackendKind::Interpreter, "softmax"));
  auto power = function(power_fn, on(backend::BackendKind::Cpu, "power"));
  const uint64_t replays = gpu_backend::graph_replays();
  for (uint64_t i = 0; i < 3; ++i) {
    Tensor x = random::normal({300, 70}, 30 + i);
    check_same(native(x.to(kGPU)), interp(x));  // profiled calls give the same results
  }
  Tensor p = random::uniform({10, 10}, 7, -0.3, 0.3);
  check_same(power(p.to(kGPU)), power_fn(p), 1e-4);
  CHECK(gpu_backend::graph_replays() == replays);  // the steps ran one by one
  const std::string report = gpu_backend::profile_report();
  INFO(report);
  // a header, softmax's three steps (the sum joins the exp's loop) and power's single kernel
  CHECK(std::count(report.begin(), report.end(), '\n') == 5);
  CHECK(report.find("softmax: reduce_max [300, 70, 1]") != std::string::npos);
  CHECK(report.find("softmax: loop [300, 70] {subtract, exp, reduce_sum} stores 1 reduces 1") != std::string::npos);
  CHECK(report.find("power: block program (99 steps)") != std::string::npos);
  CHECK(gpu_backend::profile_report().empty());
}

TEST_CASE("CUDA backend: programs come from the code cache, in memory and on disk", "[.cuda]") {
  require_gpu();
  testing::TempDir tmp("kiln_cuda_cache");
  const std::string dir = tmp.file("cache");
  ::setenv("KILN_CACHE_DIR", dir.c_str(), 1);
  auto body = [](Tensor x) { return sin(x) * 2.5f - 0.75f; };  // a graph no other test builds
  Tensor x = random::normal({5, 7}, 77);
  auto run = [&] {
    auto f = function(body, on(backend::BackendKind::Cpu, "cached_gpu"));  // a new function each time
    check_same(f(x.to(kGPU)), body(x), 1e-5);
  };
  code_cache::clear_memory();
  const uint64_t compiles = ops::cuda::nvrtc_compiles(), built = gpu_backend::programs_compiled();
  run();
  CHECK(ops::cuda::nvrtc_compiles() == compiles + 1);
  run();  // from memory
  code_cache::clear_memory();
  run();  // from the disk
  CHECK(ops::cuda::nvrtc_compiles() == compiles + 1);
  CHECK(gpu_backend::programs_compiled() == built + 3);
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    entries += e.path().filename().string().ends_with(".cuda.kobj");
  CHECK(entries == 1);
  ::unsetenv("KILN_CACHE_DIR");
}
