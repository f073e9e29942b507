// The GPU runtime. Without a GPU: every generated kernel compiles with NVRTC for sm_90 (no GPU
// needed), soft placement and copies report the missing GPU. With one ([.cuda], run by
// scripts/gpu_check.sh): placement, copies, the allocator, kernels against the CPU.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "ops/defs/elementwise_common.h"
#include "ops/kernels/cuda/kernels.h"
#include "ops/kernels/cuda/shape_source.h"
#include "ops/kernels/cuda/source.h"
#include "ops/ops.h"
#include "ops/variable.h"
#include "runtime/cuda/cuda.h"
#include "runtime/printing.h"
#include "tests/support/op_cases.h"

using namespace kiln;

namespace {

const DType kGpuDTypes[] = {DType::Bool,     DType::Int8,    DType::Int16,  DType::Int32,  DType::Int64,
                            DType::UInt8,    DType::UInt16,  DType::UInt32, DType::UInt64, DType::Float16,
                            DType::BFloat16, DType::Float32, DType::Float64};

// The output dtype the op infers for inputs of `dt`.
DType out_dtype(ops::OpId id, DType dt, int inputs) {
  const ops::OpDef& def = ops::op_def(id);
  std::vector<Tensor> in(size_t(inputs), Tensor::empty(Shape{0}, dt));
  return def.infer(def, ops::Attrs{}, in)[0].dtype;
}

// Every elementwise kernel of scalar_fn.def for every dtype it accepts, every cast and the
// integer/16-bit matmuls, as one program.
std::string all_kernels(int& count) {
  std::string src = ops::cuda::gpu_prelude();
  count = 0;
  auto add = [&](std::string k) {
    src += k;
    ++count;
  };
  auto name = [&] { return "k" + std::to_string(count); };
#define KILN_UNARY(Id, Fn, Classes, Rule)                        \
  for (DType dt : kGpuDTypes)                                    \
    if (ops::cuda::gpu_elementwise_supported(ops::OpId::Id, dt)) \
      add(ops::cuda::unary_kernel_source(ops::OpId::Id, dt, out_dtype(ops::OpId::Id, dt, 1), name()));
#define KILN_BINARY(Id, Fn, Classes, Rule, Traits, Kind)         \
  for (DType dt : kGpuDTypes)                                    \
    if (ops::cuda::gpu_elementwise_supported(ops::OpId::Id, dt)) \
      add(ops::cuda::binary_kernel_source(ops::OpId::Id, dt, out_dtype(ops::OpId::Id, dt, 2), name()));
#include "ops/scalar_fn.def"
#undef KILN_UNARY
#undef KILN_BINARY
  for (DType a : kGpuDTypes)
    for (DType b : kGpuDTypes) add(ops::cuda::cast_kernel_source(a, b, name()));
  for (DType dt : kGpuDTypes)
    if (dt != DType::Bool && dt != DType::Float32 && dt != DType::Float64)
      add(ops::cuda::matmul_kernel_source(dt, name()));
  for (ops::OpId op : {ops::OpId::ReduceSum, ops::OpId::ReduceMean, ops::OpId::ReduceProd, ops::OpId::ReduceMax,
                       ops::OpId::ReduceMin, ops::OpId::ReduceAny, ops::OpId::ReduceAll})
    for (DType dt : kGpuDTypes)
      if (ops::cuda::gpu_reduce_supported(op, dt)) {
        // a block per output, the two kernels of a split reduction, the two of a column one
        add(ops::cuda::reduce_kernel_source(op, dt, name()));
        add(ops::cuda::reduce_kernel_source(op, dt, name(), true));
        add(ops::cuda::reduce_join_kernel_source(op, dt, name()));
        add(ops::cuda::reduce_columns_kernel_source(op, dt, name()));
        add(ops::cuda::reduce_columns_join_kernel_source(op, dt, name()));
      }
  return src;
}

// Every kernel of the shape, indexing, creation and random ops (kernels_shape.cpp) as one
// program: the movement kernels per element size (every dtype, complex included, moves as one of
// them), the rest per op, dtype and index dtype the launchers use.
std::string all_shape_kernels(int& count) {
  namespace c = ops::cuda;
  std::string src = c::gpu_prelude();
  count = 0;
  auto add = [&](std::string k) {
    src += k;
    ++count;
  };
  auto name = [&] { return "s" + std::to_string(count); };
  const DType kIndex[] = {DType::Int32, DType::Int64, DType::UInt8};
  for (int64_t es : {1, 2, 4, 8, 16}) {
    REQUIRE(c::gpu_elem_size_supported(es));
    add(c::copy_kernel_source(es, name()));
    add(c::fill_kernel_source(es, name()));
    add(c::fill_from_kernel_source(es, name()));
    add(c::where_kernel_source(es, name()));
    for (DType it : kIndex) {
      if (it != DType::UInt8) add(c::gather_kernel_source(es, it, name()));
      add(c::one_hot_kernel_source(es, it, name()));
    }
  }
  for (DType it : kIndex) add(c::index_check_kernel_source(it, name()));
  for (DType dt : kGpuDTypes) {
    if (c::gpu_arg_supported(dt))
      for (bool mx : {true, false})
        for (DType o : {DType::Int32, DType::Int64}) add(c::arg_kernel_source(mx, dt, o, name()));
    if (c::gpu_segment_sum_supported(dt)) {
      for (DType it : {DType::Int32, DType::Int64}) add(c::segment_sum_kernel_source(dt, it, name()));
      add(c::segment_finish_kernel_source(dt, name()));
    }
    for (auto k :
         {c::IotaKind::RangeLike, c::IotaKind::IntRange, c::IotaKind::Range, c::IotaKind::Linspace, c::IotaKind::Eye})
      if (c::gpu_iota_supported(k, dt)) add(c::iota_kernel_source(k, dt, name()));
    for (bool normal : {false, true})
      if (c::gpu_random_supported(normal, dt)) add(c::random_kernel_source(normal, dt, name()));
  }
  return src;
}

}  // namespace

TEST_CASE("every generated GPU kernel of the shape, index, creation and random ops compiles", "[cuda-source]") {
  std::string why;
  if (!ops::cuda::nvrtc_available(why)) {
    WARN("NVRTC is not available, the GPU kernel sources are not compiled: " << why);
    return;
  }
  int count = 0;
  const std::string src = all_shape_kernels(count);
  CHECK(count > 150);
  std::string cubin;
  REQUIRE_NOTHROW(cubin = ops::cuda::compile_cubin(src, "kiln_all_shape_kernels", 90));
  CHECK(cubin.size() > 1000);
  // every op listed in docs/gpu.md as running on the GPU has a kernel
  for (ops::OpId op : {ops::OpId::Reshape,       ops::OpId::ExpandDims,  ops::OpId::Squeeze,
                       ops::OpId::ReshapeLike,   ops::OpId::BroadcastTo, ops::OpId::BroadcastLike,
                       ops::OpId::StopGradient,  ops::OpId::ShapeOf,     ops::OpId::Where,
                       ops::OpId::ArgMax,        ops::OpId::ArgMin,      ops::OpId::Transpose,
                       ops::OpId::Concat,        ops::OpId::Split,       ops::OpId::Tile,
                       ops::OpId::Pad,           ops::OpId::Reverse,     ops::OpId::StridedSlice,
                       ops::OpId::OneHot,        ops::OpId::Gather,      ops::OpId::UnsortedSegmentSum,
                       ops::OpId::SumToLike,     ops::OpId::RangeLike,   ops::OpId::Fill,
                       ops::OpId::Range,         ops::OpId::Eye,         ops::OpId::Linspace,
                       ops::OpId::RandomUniform, ops::OpId::RandomNormal}) {
    INFO(ops::op_def(op).name);
    CHECK((ops::op_def(op).cuda_kernel != nullptr) == cuda::built_with_cuda());
  }
}

TEST_CASE("every generated GPU kernel compiles with NVRTC for sm_90", "[cuda-source]") {
  std::string why;
  if (!ops::cuda::nvrtc_available(why)) {
    WARN("NVRTC is not available, the GPU kernel sources are not compiled: " << why);
    return;
  }
  int count = 0;
  const std::string src = all_kernels(count);
  CHECK(count > 300);
  std::string cubin;
  REQUIRE_NOTHROW(cubin = ops::cuda::compile_cubin(src, "kiln_all_kernels", 90));
  CHECK(cubin.size() > 1000);
  // a broken kernel is reported with NVRTC's log, as an Internal error
  CHECK_THROWS_AS(ops::cuda::compile_cubin(
                      ops::cuda::gpu_prelude() + "extern \"C\" __global__ void k() { undefined_fn(); }", "broken", 90),
                  Internal);
}

TEST_CASE("without a GPU, placement falls back to the CPU and copies say why", "[device]") {
  if (gpu_count() > 0) return;  // the [.cuda] tests cover machines with one
  CHECK(!cuda::unavailable_reason().empty());
  {
    DeviceScope gpu("GPU:0");
    CHECK(gpu.placed() == kCPU);
    Tensor t = add(constant(std::vector<float>{1, 2}, Shape{2}), constant(std::vector<float>{3, 4}, Shape{2}));
    CHECK(t.device() == kCPU);
  }
  Tensor t = constant(std::vector<float>{1, 2, 3}, Shape{3});
  try {
    (void)t.to(Device::parse("GPU:0"));
    FAIL("copying to a missing GPU must throw");
  } catch (const InvalidArgument& e) {
    CHECK(std::string(e.what()).find("[to] no GPU is available") == 0);
  }
  CHECK(t.to(kCPU).device() == kCPU);
}

// ---- with a GPU ----------------------------------------------------------------------------

namespace {
const Device kGPU{DeviceType::GPU, 0};

void require_gpu() {
  if (gpu_count() == 0) FAIL("[.cuda] tests need a GPU: " << cuda::unavailable_reason());
}

std::vector<float> host_floats(const Tensor& t) {
  Tensor h = t.to(kCPU);
  return std::vector<float>(h.data<float>(), h.data<float>() + h.num_elements());
}
}  // namespace

TEST_CASE("GPU: the walkthrough's placement example", "[.cuda]") {
  require_gpu();
  std::optional<Variable> a, b;
  {
    DeviceScope cpu("CPU:0");
    a.emplace(constant(std::vector<float>{1, 2, 3, 4, 5, 6}, Shape{2, 3}));
    b.emplace(constant(std::vector<float>{1, 2, 3}, Shape{1, 3}));
  }
  Tensor k;
  {
    DeviceScope gpu("GPU:0");
    CHECK(gpu.placed() == kGPU);
    k = multiply(*a, *b);
  }
  CHECK(k.device() == kGPU);
  CHECK(format_tensor(k) == "kiln.Tensor(\n[[ 1.  4.  9.]\n [ 4. 10. 18.]], shape=(2, 3), dtype=float32)");
  Tensor c = matmul(constant(std::vector<float>{1, 2, 3, 4, 5, 6}, Shape{2, 3}).to(kGPU),
                    constant(std::vector<float>{1, 2, 3, 4, 5, 6}, Shape{3, 2}).to(kGPU));
  CHECK(c.device() == kGPU);
  CHECK(host_floats(c) == std::vector<float>{22, 28, 49, 64});
}

TEST_CASE("GPU: copies round-trip every dtype and the allocator reuses blocks", "[.cuda]") {
  require_gpu();
  for (DType dt : kGpuDTypes) {
    INFO(dtype_name(dt));
    Tensor x = cast(constant(std::vector<double>{0, 1, -2, 3.5, 100, -7}, Shape{2, 3}), dt);
    Tensor back = x.to(kGPU).to(kCPU);
    CHECK(back.dtype() == dt);
    CHECK(std::memcmp(back.raw_data(), x.raw_data(), x.nbytes()) == 0);
  }
  Tensor g = constant(std::vector<float>(1000, 1.0f), Shape{1000}).to(kGPU);
  CHECK_THROWS_AS(g.raw_data(), InvalidArgument);  // device memory is not host memory
  cuda::MemoryStats before = cuda::memory_stats(0);
  for (int i = 0; i < 10; ++i) (void)add(g, g);
  cuda::MemoryStats after = cuda::memory_stats(0);
  CHECK(after.hits >= before.hits + 9);
  CHECK_THROWS_AS(g.to(Device{DeviceType::GPU, 99}), InvalidArgument);
}

TEST_CASE("GPU: matmul through cuBLAS and the integer kernel agree with the CPU", "[.cuda]") {
  require_gpu();
  for (DType dt : {DType::Float32, DType::Float64, DType::Int32, DType::Float16}) {
    INFO(dtype_name(dt));
    for (auto [ta, tb] : {std::pair{false, false}, {true, false}, {false, true}, {true, true}}) {
      Tensor a = cast(random::uniform(Shape{3, 70, 50}, 1, -2, 2), dt);
      Tensor b = cast(random::uniform(Shape{50, 40}, 2, -2, 2), dt);
      if (ta) a = transpose(a, {0, 2, 1});
      if (tb) b = transpose(b);
      Tensor cpu = matmul(a, b, ta, tb);
      Tensor gpu = matmul(a.to(kGPU), b.to(kGPU), ta, tb);
      CHECK(gpu.device() == kGPU);
      Tensor diff = reduce_max(abs(subtract(cast(gpu.to(kCPU), DType::Float64), cast(cpu, DType::Float64))));
      CHECK(diff.item<double>() <= (dt == DType::Float16 ? 0.5 : 1e-3));
    }
  }
}

TEST_CASE("GPU: reductions spread over blocks: rows, split, columns", "[.cuda]") {
  require_gpu();
  using Kind = ops::cuda::ReducePlan::Kind;
  auto plan = [](std::vector<long long> out_dims, std::vector<long long> out_strides, long long reduced,
                 long long red_stride) {
    ops::cuda::ReduceLayout r;
    long long outputs = 1;
    for (size_t i = 0; i < out_dims.size(); ++i) {
      r.out_dims[i] = out_dims[i];
      r.out_strides[i] = out_strides[i];
      outputs *= out_dims[i];
    }
    r.rank_out = int(out_dims.size());
    r.red_dims[0] = reduced;
    r.red_strides[0] = red_stride;
    r.rank_red = 1;
    r.count = reduced;
    return ops::cuda::reduce_plan(outputs, r);
  };
  // a whole tensor, and 3 rows of 100,000: split; 264 rows, or short rows: a block per row
  CHECK(plan({}, {}, 300000, 1).kind == Kind::Split);
  CHECK(plan({3}, {100000}, 100000, 1).kind == Kind::Split);
  CHECK(plan({264}, {300000}, 300000, 1).kind == Kind::Rows);
  CHECK(plan({1000}, {70}, 70, 1).kind == Kind::Rows);
  // over the batch of [4096, 256] (a bias gradient) and [5, 300, 40]: columns, in chunks
  const ops::cuda::ReducePlan bias = plan({256}, {1}, 4096, 256);
  CHECK((bias.kind == Kind::Columns && bias.splits > 1 && bias.inner == 256 && bias.outer == 1));
  CHECK(plan({5, 40}, {12000, 1}, 300, 40).kind == Kind::Columns);
  CHECK(plan({5, 16}, {4800, 1}, 300, 16).kind == Kind::Rows);  // fewer than 32 columns
  {
    // columns against the CPU: sums, a NaN-propagating max (one NaN, in column 1000 % 256), a
    // mean over the middle axis, for float32, float16 and int64
    auto same = [](const Tensor& gpu, const Tensor& cpu, double tol) {
      CHECK(gpu.device() == kGPU);
      Tensor g = cast(gpu.to(kCPU), DType::Float64), c = cast(cpu, DType::Float64);
      Tensor g_nan = not_equal(g, g), c_nan = not_equal(c, c);
      CHECK(reduce_all(equal(g_nan, c_nan)).item<bool>());
      Tensor diff = where(c_nan, zeros_like(c), abs(g - c) / (abs(c) + 1.0));
      CHECK(reduce_max(diff).item<double>() <= tol);
    };
    Tensor x = random::normal({4096, 256}, 8);
    x = where(equal(range_like(x, 0, DType::Int32) * 256 + range_like(x, 1, DType::Int32), constant(1000)),
              constant(NAN), x);
    for (DType dt : {DType::Float32, DType::Float16, DType::Int64}) {
      INFO(dtype_name(dt));
      Tensor xd = dt == DType::Int64 ? cast(where(not_equal(x, x), constant(0.0f), x) * 10.0f, dt) : cast(x, dt);
      Tensor g = xd.to(kGPU);
      const double tol = dt == DType::Float16 ? 2e-2 : 1e-5;
      same(reduce_sum(g, {0}), reduce_sum(xd, {0}), tol);
      same(reduce_max(g, {0}), reduce_max(xd, {0}), tol);
      same(reduce_mean(reshape(g, {4, 1024, 256}), {1}), reduce_mean(reshape(xd, {4, 1024, 256}), {1}), tol);
    }
  }
  for (DType dt : {DType::Float32, DType::Float16, DType::Int32, DType::Int64}) {
    INFO(dtype_name(dt));
    Tensor x = cast(random::uniform(Shape{3, 100000}, 5, -3, 3), dt);
    const double tol = dt == DType::Float16 ? 2e-2 : 1e-5;
    auto same = [&](const Tensor& gpu, const Tensor& cpu) {
      CHECK(gpu.device() == kGPU);
      Tensor g = cast(gpu.to(kCPU), DType::Float64), c = cast(cpu, DType::Float64);
      CHECK(reduce_max(abs(g - c) / (abs(c) + 1.0)).item<double>() <= tol);
    };
    Tensor g = x.to(kGPU);
    same(reduce_sum(g), reduce_sum(x));
    same(reduce_max(g, {1}), reduce_max(x, {1}));
    same(reduce_min(g, {0}), reduce_min(x, {0}));
    same(reduce_mean(g, {1}), reduce_mean(x, {1}));
    same(reduce_sum(reshape(g, {300000, 1}), {0}), reduce_sum(reshape(x, {300000, 1}), {0}));
  }
  // NaN anywhere in the split output makes it NaN, as on the CPU
  Tensor y = random::normal({300000}, 6);
  y = where(equal(range_like(y, 0, DType::Int32), constant(123456)), constant(NAN), y);
  CHECK(std::isnan(reduce_max(y.to(kGPU)).to(kCPU).item<float>()));
  CHECK(std::isnan(reduce_sum(y.to(kGPU)).to(kCPU).item<float>()));
  // booleans
  Tensor b = greater(random::uniform({200000}, 7), constant(0.99999f));
  CHECK(reduce_any(b.to(kGPU)).to(kCPU).item<bool>() == reduce_any(b).item<bool>());
  CHECK(reduce_all(b.to(kGPU)).to(kCPU).item<bool>() == reduce_all(b).item<bool>());
}

TEST_CASE("GPU: errors and ops without a GPU kernel", "[.cuda]") {
  require_gpu();
  Tensor a = constant(std::vector<int32_t>{1, 2, 3}, Shape{3}).to(kGPU),
         z = constant(std::vector<int32_t>{1, 0, 1}, Shape{3}).to(kGPU);
  try {
    (void)floordiv(a, z);
    FAIL("division by zero must throw");
  } catch (const InvalidArgument& e) {
    CHECK(std::string(e.what()) == "[floordiv] integer division by zero");
  }
  // complex arithmetic has no GPU kernel: it runs on the CPU, and its result comes back to the GPU
  Tensor c = cast(constant(std::vector<float>{1, 2, 3}, Shape{3}), DType::Complex64);
  Tensor s = negative(c.to(kGPU));
  CHECK(s.device() == kGPU);
  Tensor want = negative(c), got = s.to(kCPU);
  CHECK(std::memcmp(got.raw_data(), want.raw_data(), want.nbytes()) == 0);
}

TEST_CASE("GPU: variables live on the device of their scope and assignments stay there", "[.cuda]") {
  require_gpu();
  std::optional<Variable> v;
  {
    DeviceScope gpu("GPU:0");
    v.emplace(constant(std::vector<float>{1, 2, 3}, Shape{3}));
  }
  CHECK(v->device() == kGPU);
  CHECK(v->read_value().device() == kGPU);
  v->assign(constant(std::vector<float>{4, 5, 6}, Shape{3}));  // a host value is copied over
  CHECK(v->read_value().device() == kGPU);
  CHECK(host_floats(*v) == std::vector<float>{4, 5, 6});
  v->assign_add(constant(std::vector<float>{1, 1, 1}, Shape{3}).to(kGPU));
  CHECK(host_floats(*v) == std::vector<float>{5, 6, 7});
}

TEST_CASE("GPU: traced functions and gradients run on the GPU", "[.cuda]") {
  require_gpu();
  auto f = function([](Tensor x, Tensor w) { return relu(matmul(x, w) + 1.0f); });
  Tensor x = random::normal({4, 8}, 1), w = random::normal({8, 3}, 2);
  Tensor on_cpu = f(x, w);
  Tensor on_gpu = f(x.to(kGPU), w.to(kGPU));
  CHECK(on_gpu.device() == kGPU);
  std::vector<float> a = host_floats(on_cpu), b = host_floats(on_gpu);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(b[i] == Approx(a[i]).margin(1e-5));

  auto grad_of = [&](Device d) {
    std::optional<Variable> wv;
    {
      DeviceScope scope(d);
      wv.emplace(w);
    }
    GradientTape tape;
    Tensor loss = reduce_mean(square(matmul(x.to(d), *wv)));
    return host_floats(tape.gradient(loss, *wv));
  };
  std::vector<float> gc = grad_of(kCPU), gg = grad_of(kGPU);
  REQUIRE(gc.size() == gg.size());
  for (size_t i = 0; i < gc.size(); ++i) CHECK(gg[i] == Approx(gc[i]).margin(1e-5));
}
