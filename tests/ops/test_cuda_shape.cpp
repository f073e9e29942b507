// The GPU kernels of the shape, indexing, creation and random ops ([.cuda]: they need a GPU,
// scripts/gpu_check.sh runs them). Each case calls the op's cuda_kernel itself on GPU copies of
// the inputs (so a fallback to the CPU would fail the case instead of hiding) and compares with
// the CPU kernel: every output bit for bit, except the float sums of unsorted_segment_sum (atomic
// adds in any order: float32/float64 within 1e-4 and the 16-bit floats within 5e-2, relative to
// max(1, |x|)) and random_normal (the device's log/sin/cos: within 1e-6, a few float32 ULPs);
// bad indices must raise the CPU's errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "ops/dispatch.h"
#include "ops/ops.h"
#include "runtime/cuda/cuda.h"

using namespace kiln;

namespace {

const Device kGpu{DeviceType::GPU, 0};

const DType kMoveDTypes[] = {DType::Bool,     DType::Int8,    DType::Int16,   DType::Int32,     DType::Int64,
                             DType::UInt8,    DType::UInt16,  DType::UInt32,  DType::UInt64,    DType::Float16,
                             DType::BFloat16, DType::Float32, DType::Float64, DType::Complex64, DType::Complex128};
const DType kRealDTypes[] = {DType::Int8,    DType::Int16,    DType::Int32,   DType::Int64,
                             DType::UInt8,   DType::UInt16,   DType::UInt32,  DType::UInt64,
                             DType::Float16, DType::BFloat16, DType::Float32, DType::Float64};

void require_gpu() {
  if (gpu_count() == 0) FAIL("[.cuda] tests need a GPU: " << cuda::unavailable_reason());
}

// Values of `dt` with some variety (negative values wrap for unsigned dtypes, as casts do).
Tensor sample(const Shape& shape, DType dt, uint64_t seed = 1) {
  return cast(random::uniform(shape, seed, -20, 20, DType::Float64), dt);
}

// The outputs of op's CPU kernel on host inputs.
ops::TensorList on_cpu(ops::OpId id, const ops::Attrs& attrs, const std::vector<Tensor>& in) {
  const ops::OpDef& def = ops::op_def(id);
  ops::TypeList types = def.infer(def, attrs, in);
  DeviceScope cpu(kCPU);
  return ops::execute_eager(def, attrs, in, types);
}

// The outputs of op's GPU kernel (called directly: no fallback) on GPU copies of `in`.
ops::TensorList on_gpu(ops::OpId id, const ops::Attrs& attrs, const std::vector<Tensor>& in) {
  const ops::OpDef& def = ops::op_def(id);
  REQUIRE(def.cuda_kernel != nullptr);
  std::vector<Tensor> g;
  for (const Tensor& t : in) g.push_back(t.to(kGpu));
  ops::TypeList types = def.infer(def, attrs, g);
  DeviceScope scope(kGpu);
  ops::TensorList out(types.size());
  ops::KernelContext ctx{def, attrs, g, types, out};
  def.cuda_kernel(ctx);
  return out;
}

// "" when `got` (GPU) matches `want` (CPU): bit for bit, or within `rel` for floats.
std::string mismatch(const Tensor& got, const Tensor& want, double rel) {
  if (got.device() != kGpu) return "the output is not on the GPU";
  Tensor g = got.to(kCPU);
  if (g.dtype() != want.dtype() || !(g.shape() == want.shape()))
    return "got " + std::string(dtype_name(g.dtype())) + " " + g.shape().to_string() + ", want " +
           std::string(dtype_name(want.dtype())) + " " + want.shape().to_string();
  if (rel == 0 || !is_floating(want.dtype())) {
    if (want.nbytes() == 0 || std::memcmp(g.raw_data(), want.raw_data(), want.nbytes()) == 0) return "";
    return "the bytes differ: got " + g.to_string() + ", want " + want.to_string();
  }
  const std::vector<double> a = cast(g, DType::Float64).to_vector<double>(),
                            b = cast(want, DType::Float64).to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (!(std::abs(a[i] - b[i]) <= rel * std::max(1.0, std::abs(b[i]))))
      return "element " + std::to_string(i) + ": got " + std::to_string(a[i]) + ", want " + std::to_string(b[i]);
  }
  return "";
}

// Runs op on the CPU and on the GPU and compares every output (and the error, if any).
void check_op(ops::OpId id, const ops::Attrs& attrs, const std::vector<Tensor>& in, double rel = 0) {
  std::string cpu_error, gpu_error;
  ops::TensorList want, got;
  try {
    want = on_cpu(id, attrs, in);
  } catch (const InvalidArgument& e) {
    cpu_error = e.what();
  }
  try {
    got = on_gpu(id, attrs, in);
  } catch (const InvalidArgument& e) {
    gpu_error = e.what();
  }
  CHECK(gpu_error == cpu_error);
  if (!cpu_error.empty() || !gpu_error.empty()) return;
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const std::string diff = mismatch(got[i], want[i], rel);
    INFO("output " << i << ": " << diff);
    CHECK(diff.empty());
  }
}

using Ints = std::vector<int64_t>;

}  // namespace

TEST_CASE("GPU: views alias device memory", "[.cuda]") {
  require_gpu();
  Tensor x = sample({2, 3, 4}, DType::Float32).to(kGpu);
  for (ops::OpId id : {ops::OpId::Reshape, ops::OpId::ExpandDims, ops::OpId::Squeeze, ops::OpId::StopGradient}) {
    ops::Attrs attrs = id == ops::OpId::Reshape      ? ops::Attrs{{"shape", Ints{4, -1}}}
                       : id == ops::OpId::ExpandDims ? ops::Attrs{{"axis", int64_t{1}}}
                       : id == ops::OpId::Squeeze    ? ops::Attrs{{"axes", Ints{}}}
                                                     : ops::Attrs{};
    ops::TensorList out = on_gpu(id, attrs, {x});
    INFO(ops::op_def(id).name);
    CHECK(out[0].device() == kGpu);
    CHECK(out[0].device_data() == x.device_data());
  }
  // a contiguous slice, split and transpose of size-1 dims are views too
  CHECK(x.index({1}).device_data() != nullptr);
  {
    DeviceScope gpu(kGpu);
    Tensor row = x.index({1});
    CHECK(static_cast<const char*>(row.device_data()) == static_cast<const char*>(x.device_data()) + 12 * 4);
  }
}

TEST_CASE("GPU: view ops, reshape_like and shape_of match the CPU", "[.cuda]") {
  require_gpu();
  for (DType dt : kMoveDTypes) {
    INFO(dtype_name(dt));
    check_op(ops::OpId::Reshape, {{"shape", Ints{6, 4}}}, {sample({2, 3, 4}, dt)});
    check_op(ops::OpId::Reshape, {{"shape", Ints{3, 0}}}, {sample({0, 3}, dt)});
    check_op(ops::OpId::Reshape, {{"shape", Ints{1, 1}}}, {sample({}, dt)});
    check_op(ops::OpId::ExpandDims, {{"axis", int64_t{-1}}}, {sample({3}, dt)});
    check_op(ops::OpId::Squeeze, {{"axes", Ints{0}}}, {sample({1, 5}, dt)});
    check_op(ops::OpId::StopGradient, {}, {sample({}, dt)});
    check_op(ops::OpId::ReshapeLike, {}, {sample({2, 6}, dt), sample({3, 4}, DType::Int32)});
    check_op(ops::OpId::ShapeOf, {{"out_type", DType::Int64}}, {sample({2, 0, 3}, dt)});
  }
  check_op(ops::OpId::ReshapeLike, {}, {sample({2, 6}, DType::Float32), sample({5}, DType::Float32)});  // error
}

TEST_CASE("GPU: broadcast_to, broadcast_like, transpose, tile, reverse match the CPU", "[.cuda]") {
  require_gpu();
  for (DType dt : kMoveDTypes) {
    INFO(dtype_name(dt));
    check_op(ops::OpId::BroadcastTo, {{"shape", Ints{2, 3, 4}}}, {sample({3, 1}, dt)});
    check_op(ops::OpId::BroadcastTo, {{"shape", Ints{2, 2}}}, {sample({}, dt)});
    check_op(ops::OpId::BroadcastTo, {{"shape", Ints{0, 5}}}, {sample({1}, dt)});
    check_op(ops::OpId::BroadcastTo, {{"shape", Ints{2, 3}}}, {sample({2, 3}, dt)});
    check_op(ops::OpId::BroadcastLike, {}, {sample({1, 4}, dt), sample({3, 4}, DType::Float32)});
    check_op(ops::OpId::Transpose, {{"perm", Ints{2, 0, 1}}}, {sample({2, 3, 4}, dt)});
    check_op(ops::OpId::Transpose, {{"perm", Ints{1, 0}}}, {sample({17, 33}, dt)});
    check_op(ops::OpId::Transpose, {{"perm", Ints{1, 0}}}, {sample({0, 3}, dt)});
    check_op(ops::OpId::Transpose, {{"perm", Ints{}}}, {sample({}, dt)});
    check_op(ops::OpId::Tile, {{"multiples", Ints{2, 1, 3}}}, {sample({2, 3, 2}, dt)});
    check_op(ops::OpId::Tile, {{"multiples", Ints{0, 2}}}, {sample({2, 3}, dt)});
    check_op(ops::OpId::Reverse, {{"axes", Ints{0, -1}}}, {sample({3, 4, 5}, dt)});
    check_op(ops::OpId::Reverse, {{"axes", Ints{}}}, {sample({}, dt)});
  }
}

TEST_CASE("GPU: concat, split, pad, strided_slice match the CPU", "[.cuda]") {
  require_gpu();
  for (DType dt : kMoveDTypes) {
    INFO(dtype_name(dt));
    check_op(ops::OpId::Concat, {{"axis", int64_t{1}}},
             {sample({2, 3}, dt, 1), sample({2, 0}, dt), sample({2, 5}, dt, 2)});
    check_op(ops::OpId::Concat, {{"axis", int64_t{0}}}, {sample({2, 3}, dt, 1), sample({4, 3}, dt, 2)});
    check_op(ops::OpId::Concat, {{"axis", int64_t{0}}}, {sample({2, 3}, dt, 1)});
    check_op(ops::OpId::Split, {{"axis", int64_t{1}}, {"num", int64_t{3}}}, {sample({2, 6}, dt)});
    check_op(ops::OpId::Split, {{"axis", int64_t{0}}, {"sizes", Ints{1, -1, 0}}}, {sample({4, 3}, dt)});
    check_op(ops::OpId::Split, {{"axis", int64_t{0}}, {"num", int64_t{2}}}, {sample({0, 3}, dt)});
    if (!is_complex(dt)) {
      check_op(ops::OpId::Pad, {{"paddings", Ints{1, 2, 0, 3}}, {"constant_value", 1.0}}, {sample({2, 3}, dt)});
      check_op(ops::OpId::Pad, {{"paddings", Ints{0, 0}}, {"constant_value", 0.0}}, {sample({4}, dt)});
      check_op(ops::OpId::Pad, {{"paddings", Ints{2, 1}}, {"constant_value", 0.0}}, {sample({0}, dt)});
    }
    check_op(ops::OpId::StridedSlice,
             {{"begin", Ints{1, 0}}, {"end", Ints{4, 5}}, {"strides", Ints{2, -1}}, {"end_mask", int64_t{2}}},
             {sample({5, 6}, dt)});
    check_op(ops::OpId::StridedSlice,
             {{"begin", Ints{2}}, {"end", Ints{3}}, {"strides", Ints{1}}, {"shrink_axis_mask", int64_t{1}}},
             {sample({5, 6}, dt)});
    check_op(ops::OpId::StridedSlice,
             {{"begin", Ints{0, 0}},
              {"end", Ints{0, 0}},
              {"strides", Ints{1, 3}},
              {"begin_mask", int64_t{3}},
              {"end_mask", int64_t{3}},
              {"new_axis_mask", int64_t{0}}},
             {sample({4, 7}, dt)});
    check_op(ops::OpId::StridedSlice, {{"begin", Ints{3}}, {"end", Ints{1}}, {"strides", Ints{1}}}, {sample({5}, dt)});
  }
}

TEST_CASE("GPU: where, one_hot, fill and the creation ops match the CPU", "[.cuda]") {
  require_gpu();
  Tensor cond = greater(sample({3, 1, 4}, DType::Float32, 9), constant(0.0f));
  for (DType dt : kMoveDTypes) {
    INFO(dtype_name(dt));
    check_op(ops::OpId::Where, {}, {cond, sample({2, 4}, dt, 1), sample({3, 2, 1}, dt, 2)});
    check_op(ops::OpId::Where, {}, {cond, sample({3, 1, 4}, dt, 1), sample({3, 1, 4}, dt, 2)});
    check_op(ops::OpId::Where, {}, {cast(constant(1.0), DType::Bool), sample({}, dt, 1), sample({}, dt, 2)});
    check_op(ops::OpId::Fill, {{"shape", Ints{3, 5}}}, {sample({}, dt)});
    check_op(ops::OpId::Fill, {{"shape", Ints{0}}}, {sample({}, dt)});
    for (DType it : {DType::Int32, DType::Int64, DType::UInt8}) {
      Tensor idx = cast(constant(std::vector<int64_t>{0, 2, -1, 5, 1, 3}, Shape{2, 3}), it);
      check_op(ops::OpId::OneHot,
               {{"depth", int64_t{4}}, {"on_value", 1.0}, {"off_value", 0.0}, {"axis", int64_t{-1}}, {"dtype", dt}},
               {idx});
      check_op(ops::OpId::OneHot,
               {{"depth", int64_t{3}}, {"on_value", 1.0}, {"off_value", 0.0}, {"axis", int64_t{0}}, {"dtype", dt}},
               {idx});
    }
    if (!is_complex(dt)) {
      check_op(ops::OpId::Eye, {{"num_rows", int64_t{3}}, {"num_columns", int64_t{5}}, {"dtype", dt}}, {});
      check_op(ops::OpId::Eye, {{"num_rows", int64_t{0}}, {"num_columns", int64_t{2}}, {"dtype", dt}}, {});
    }
  }
  for (DType dt : kRealDTypes) {
    INFO(dtype_name(dt));
    if (is_integer(dt)) {
      check_op(ops::OpId::Range, {{"start", 3.0}, {"limit", 40.0}, {"delta", 3.0}, {"dtype", dt}}, {});
      if (is_signed_integer(dt))
        check_op(ops::OpId::Range, {{"start", 5.0}, {"limit", -6.0}, {"delta", -2.0}, {"dtype", dt}}, {});
    } else {
      check_op(ops::OpId::Range, {{"start", -1.5}, {"limit", 7.3}, {"delta", 0.1}, {"dtype", dt}}, {});
      check_op(ops::OpId::Linspace, {{"start", -1.0}, {"stop", 2.7}, {"num", int64_t{77}}, {"dtype", dt}}, {});
      check_op(ops::OpId::Linspace, {{"start", 4.0}, {"stop", 2.7}, {"num", int64_t{1}}, {"dtype", dt}}, {});
      check_op(ops::OpId::Linspace, {{"start", 4.0}, {"stop", 2.7}, {"num", int64_t{0}}, {"dtype", dt}}, {});
    }
  }
  for (DType t : {DType::Int32, DType::Int64}) {
    check_op(ops::OpId::RangeLike, {{"axis", int64_t{1}}, {"dtype", t}}, {sample({3, 4, 2}, DType::Float32)});
    check_op(ops::OpId::RangeLike, {{"axis", int64_t{-1}}, {"dtype", t}}, {sample({0, 4}, DType::Float32)});
  }
}

TEST_CASE("GPU: argmax and argmin match the CPU, ties and NaNs included", "[.cuda]") {
  require_gpu();
  for (DType dt : kRealDTypes) {
    INFO(dtype_name(dt));
    // few distinct values: many ties
    Tensor x = cast(random::uniform({5, 300, 3}, 4, -3, 3, DType::Int32), dt);
    for (ops::OpId id : {ops::OpId::ArgMax, ops::OpId::ArgMin})
      for (int64_t axis : {0, 1, 2, -1})
        for (DType ot : {DType::Int32, DType::Int64}) {
          check_op(id, {{"axis", axis}, {"output_type", ot}}, {x});
          check_op(id, {{"axis", int64_t{0}}, {"output_type", ot}}, {sample({7}, dt)});
          check_op(id, {{"axis", int64_t{1}}, {"output_type", ot}}, {sample({0, 4}, dt)});
        }
  }
  Tensor b = greater(sample({4, 9}, DType::Float32), constant(5.0f));
  check_op(ops::OpId::ArgMax, {{"axis", int64_t{1}}, {"output_type", DType::Int64}}, {b});
  check_op(ops::OpId::ArgMin, {{"axis", int64_t{0}}, {"output_type", DType::Int64}}, {b});
  const float nan = std::nanf("");
  Tensor f = constant(std::vector<float>{1, nan, 3, nan, 3, 1, -1, 2, 2}, Shape{3, 3});
  for (DType dt : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16})
    for (ops::OpId id : {ops::OpId::ArgMax, ops::OpId::ArgMin})
      for (int64_t axis : {0, 1}) check_op(id, {{"axis", axis}, {"output_type", DType::Int32}}, {cast(f, dt)});
  // an axis of size 0 is rejected by infer on both devices
  check_op(ops::OpId::ArgMax, {{"axis", int64_t{0}}, {"output_type", DType::Int32}}, {sample({0, 3}, DType::Float32)});
}

TEST_CASE("GPU: gather and unsorted_segment_sum match the CPU, bad indices included", "[.cuda]") {
  require_gpu();
  for (DType dt : kMoveDTypes) {
    INFO(dtype_name(dt));
    for (DType it : {DType::Int32, DType::Int64}) {
      Tensor idx = cast(constant(std::vector<int64_t>{2, 0, 1, 2, 2}, Shape{5}), it);
      check_op(ops::OpId::Gather, {{"axis", int64_t{0}}, {"batch_dims", int64_t{0}}}, {sample({3, 4}, dt), idx});
      check_op(ops::OpId::Gather, {{"axis", int64_t{1}}, {"batch_dims", int64_t{0}}},
               {sample({2, 3, 4}, dt), reshape(idx, {5, 1})});
      check_op(ops::OpId::Gather, {{"axis", int64_t{1}}, {"batch_dims", int64_t{1}}},
               {sample({2, 3, 4}, dt), cast(constant(std::vector<int64_t>{2, 0, 1, 1}, Shape{2, 2}), it)});
      check_op(ops::OpId::Gather, {{"axis", int64_t{0}}, {"batch_dims", int64_t{0}}},
               {sample({3}, dt), cast(constant(std::vector<int64_t>{}, Shape{0}), it)});
      check_op(ops::OpId::Gather, {{"axis", int64_t{0}}, {"batch_dims", int64_t{0}}},
               {sample({3}, dt), cast(constant(std::vector<int64_t>{1}, Shape{}), it)});
      // bad indices: the CPU's error, naming the first bad position (also with an empty output)
      check_op(ops::OpId::Gather, {{"axis", int64_t{0}}, {"batch_dims", int64_t{0}}},
               {sample({3, 2}, dt), cast(constant(std::vector<int64_t>{0, 3, -1, 7}, Shape{2, 2}), it)});
      check_op(ops::OpId::Gather, {{"axis", int64_t{0}}, {"batch_dims", int64_t{0}}},
               {sample({3, 0}, dt), cast(constant(std::vector<int64_t>{1, -2}, Shape{2}), it)});
    }
  }
  for (DType dt : kRealDTypes) {
    INFO(dtype_name(dt));
    const double rel = is_floating(dt) ? (dtype_size(dt) == 2 ? 5e-2 : 1e-4) : 0;
    for (DType it : {DType::Int32, DType::Int64}) {
      Tensor ids = cast(random::uniform({40}, 3, 0, 6, DType::Int32), it);
      check_op(ops::OpId::UnsortedSegmentSum, {{"num_segments", int64_t{7}}}, {sample({40, 3}, dt), ids}, rel);
      check_op(ops::OpId::UnsortedSegmentSum, {{"num_segments", int64_t{6}}}, {sample({40}, dt), ids}, rel);
      check_op(ops::OpId::UnsortedSegmentSum, {{"num_segments", int64_t{0}}},
               {sample({0, 2}, dt), cast(constant(std::vector<int64_t>{}, Shape{0}), it)}, rel);
      check_op(ops::OpId::UnsortedSegmentSum, {{"num_segments", int64_t{3}}},
               {sample({4, 2}, dt), cast(constant(std::vector<int64_t>{0, 2, 3, 1}, Shape{4}), it)});
    }
  }
  // integer sums wrap as on the CPU
  Tensor big = constant(std::vector<int8_t>{100, 100, 100, -128}, Shape{4});
  check_op(ops::OpId::UnsortedSegmentSum, {{"num_segments", int64_t{1}}},
           {big, constant(std::vector<int32_t>{0, 0, 0, 0}, Shape{4})});
}

TEST_CASE("GPU: sum_to_like runs the GPU reduction", "[.cuda]") {
  require_gpu();
  for (DType dt : {DType::Int32, DType::Float32, DType::Float64}) {
    check_op(ops::OpId::SumToLike, {}, {sample({2, 3, 4}, dt), sample({3, 1}, dt)}, 1e-6);
    check_op(ops::OpId::SumToLike, {}, {sample({2, 3}, dt), sample({2, 3}, dt)});
  }
}

TEST_CASE("GPU: random ops give the CPU's numbers and advance the global generator alike", "[.cuda]") {
  require_gpu();
  for (DType dt : kRealDTypes) {
    INFO(dtype_name(dt));
    const double lo = is_integer(dt) && !is_signed_integer(dt) ? 3 : -7, hi = 100;
    for (int64_t n : {0, 1, 7, 1000})
      check_op(ops::OpId::RandomUniform,
               {{"shape", Ints{n}},
                {"dtype", dt},
                {"seed", int64_t{42}},
                {"offset", int64_t{3}},
                {"minval", lo},
                {"maxval", hi}},
               {});
    if (is_floating(dt))
      for (int64_t n : {1, 7, 1000})
        check_op(ops::OpId::RandomNormal,
                 {{"shape", Ints{n}},
                  {"dtype", dt},
                  {"seed", int64_t{5}},
                  {"offset", int64_t{0}},
                  {"mean", 1.5},
                  {"stddev", 2.0}},
                 {}, dtype_size(dt) == 2 ? 1e-2 : 1e-6);
  }
  // unseeded draws use the global generator's next stream, once per op, on either device
  for (bool normal : {false, true}) {
    const ops::OpId id = normal ? ops::OpId::RandomNormal : ops::OpId::RandomUniform;
    const ops::Attrs attrs{
        {"shape", Ints{3, 5}},   {"dtype", DType::Float32},         {"seed", int64_t{-1}},
        {"offset", int64_t{-1}}, {normal ? "mean" : "minval", 0.0}, {normal ? "stddev" : "maxval", 1.0}};
    random::set_seed(11);
    ops::TensorList c1 = on_cpu(id, attrs, {}), c2 = on_cpu(id, attrs, {});
    random::set_seed(11);
    ops::TensorList g1 = on_gpu(id, attrs, {}), g2 = on_gpu(id, attrs, {});
    CHECK(mismatch(g1[0], c1[0], normal ? 1e-6 : 0) == "");
    CHECK(mismatch(g2[0], c2[0], normal ? 1e-6 : 0) == "");
    CHECK(mismatch(g2[0], c1[0], normal ? 1e-6 : 0) != "");
  }
}
