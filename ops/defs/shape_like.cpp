// broadcast_like, reshape_like, sum_to_like and range_like: shape ops that take the target shape
// from a tensor at run time, so graphs with unknown dims (a symbolic batch) can be differentiated
// and can number their elements. The first three run the static ops' kernels with the run-time
// shape.
#include <limits>

#include "ops/dispatch.h"
#include "ops/kernels/cpu/loops.h"
#include "ops/op_def.h"

namespace kiln::ops {
namespace {

// Dims are compatible when equal, or when either is unknown (checked again at run time).
bool compatible(int64_t a, int64_t b) { return a == b || a < 0 || b < 0; }

[[noreturn]] void incompatible(const OpDef& def, const char* what, const Shape& x, const Shape& like) {
  fail<InvalidArgument>(def.name, "cannot ", what, " shape ", x.to_list_string(), " to the shape of like, ",
                        like.to_list_string());
}

TypeList infer_broadcast_like(const OpDef& def, const Attrs&, std::span<const Tensor> in) {
  const Shape &x = in[0].shape(), &like = in[1].shape();
  if (x.rank() > like.rank()) incompatible(def, "broadcast", x, like);
  const int64_t lead = like.rank() - x.rank();
  for (int64_t i = 0; i < x.rank(); ++i) {
    int64_t d = x.dim(size_t(i));
    if (d != 1 && !compatible(d, like.dim(size_t(i + lead)))) incompatible(def, "broadcast", x, like);
  }
  return {TensorType{in[0].dtype(), like}};
}

// Each kernel checks its inputs again: a function traced with x's dims unknown and like's known
// has a static output type, so the interpreter runs the kernel without calling infer.
void kernel_broadcast_like(KernelContext& ctx) {
  infer_broadcast_like(ctx.def, ctx.attrs, ctx.inputs);
  const OpDef& b = op_def(OpId::BroadcastTo);
  Attrs attrs{{"shape", ctx.inputs[1].shape().as_list()}};
  TypeList types = b.infer(b, attrs, ctx.inputs.first(1));
  ctx.set_output(0, execute_eager(b, attrs, ctx.inputs.first(1), types)[0]);
}

TypeList infer_reshape_like(const OpDef& def, const Attrs&, std::span<const Tensor> in) {
  const Shape &x = in[0].shape(), &like = in[1].shape();
  if (x.is_fully_defined() && like.is_fully_defined() && x.num_elements() != like.num_elements())
    fail<InvalidArgument>(def.name, "cannot reshape a tensor with ", x.num_elements(),
                          " elements to the shape of like, ", like.to_list_string());
  return {TensorType{in[0].dtype(), like}};
}

void kernel_reshape_like(KernelContext& ctx) {
  infer_reshape_like(ctx.def, ctx.attrs, ctx.inputs);
  const OpDef& r = op_def(OpId::Reshape);
  Attrs attrs{{"shape", ctx.inputs[1].shape().as_list()}};
  TypeList types = r.infer(r, attrs, ctx.inputs.first(1));
  ctx.set_output(0, execute_eager(r, attrs, ctx.inputs.first(1), types)[0]);
}

TypeList infer_sum_to_like(const OpDef& def, const Attrs&, std::span<const Tensor> in) {
  const Shape &x = in[0].shape(), &like = in[1].shape();
  if (like.rank() > x.rank()) incompatible(def, "sum", x, like);
  const int64_t lead = x.rank() - like.rank();
  for (int64_t i = 0; i < like.rank(); ++i) {
    int64_t d = like.dim(size_t(i));
    if (d != 1 && !compatible(d, x.dim(size_t(i + lead)))) incompatible(def, "sum", x, like);
  }
  if (in[0].dtype() == DType::Bool || in[0].dtype() == DType::String)
    fail<InvalidArgument>(def.name, "cannot sum a tensor of dtype ", dtype_name(in[0].dtype()));
  return {TensorType{in[0].dtype(), like}};
}

void kernel_sum_to_like(KernelContext& ctx) {
  infer_sum_to_like(ctx.def, ctx.attrs, ctx.inputs);
  const Tensor& x = ctx.inputs[0];
  const Shape& like = ctx.inputs[1].shape();
  const int64_t lead = x.ndim() - like.rank();
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < x.ndim(); ++i)
    if (i < lead || (like.dim(size_t(i - lead)) == 1 && x.shape().dim(size_t(i)) != 1)) axes.push_back(i);
  Tensor summed = x;
  if (!axes.empty()) {
    const OpDef& s = op_def(OpId::ReduceSum);
    Attrs attrs{{"axes", axes}, {"keepdims", true}};
    TypeList types = s.infer(s, attrs, ctx.inputs.first(1));
    summed = execute_eager(s, attrs, ctx.inputs.first(1), types)[0];
  }
  const OpDef& r = op_def(OpId::Reshape);
  Attrs attrs{{"shape", like.as_list()}};
  TypeList types = r.infer(r, attrs, std::span<const Tensor>(&summed, 1));
  ctx.set_output(0, execute_eager(r, attrs, std::span<const Tensor>(&summed, 1), types)[0]);
}

// The axis of range_like, made non-negative.
int64_t range_axis(const OpDef& def, const Attrs& attrs, const Shape& like) {
  const int64_t axis = attrs.get_int("axis"), r = like.rank();
  if (axis < -r || axis >= r)
    fail<InvalidArgument>(def.name, "axis ", axis, " is out of range for the shape of like, ", like.to_list_string(),
                          " (rank ", r, ")");
  return axis < 0 ? axis + r : axis;
}

TypeList infer_range_like(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Shape& like = in[0].shape();
  const int64_t axis = range_axis(def, attrs, like);
  const DType t = attrs.get_type("dtype");
  if (t != DType::Int32 && t != DType::Int64)
    fail<InvalidArgument>(def.name, "dtype must be int32 or int64, got ", dtype_name(t));
  if (t == DType::Int32 && like.dim(size_t(axis)) > std::numeric_limits<int32_t>::max())
    fail<InvalidArgument>(def.name, "axis ", axis, " of the shape of like, ", like.to_list_string(),
                          ", has more indices than int32 holds; use dtype int64");
  return {TensorType{t, like}};
}

// out[..., i, ...] = i along the axis: rows of `inner` equal values, `n` of them per outer index.
template <class T>
void fill_range(T* out, int64_t outer, int64_t n, int64_t inner) {
  parallel_for(outer * n, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(inner, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t row = b; row < e; ++row) std::fill_n(out + row * inner, inner, static_cast<T>(row % n));
               });
}

void kernel_range_like(KernelContext& ctx) {
  infer_range_like(ctx.def, ctx.attrs, ctx.inputs);
  const Shape& like = ctx.inputs[0].shape();
  const size_t axis = size_t(range_axis(ctx.def, ctx.attrs, like));
  const DType t = ctx.attrs.get_type("dtype");
  Tensor out = Tensor::empty(like, t, ctx.device());
  if (like.num_elements() > 0) {
    int64_t outer = 1, inner = 1;
    for (size_t i = 0; i < axis; ++i) outer *= like.dim(i);
    for (size_t i = axis + 1; i < size_t(like.rank()); ++i) inner *= like.dim(i);
    if (t == DType::Int32)
      fill_range(static_cast<int32_t*>(out.mutable_raw_data()), outer, like.dim(axis), inner);
    else
      fill_range(static_cast<int64_t*>(out.mutable_raw_data()), outer, like.dim(axis), inner);
  }
  ctx.set_output(0, std::move(out));
}

OpDef like_op(InferFn infer, KernelFn kernel) {
  OpDef d;
  d.traits = kDifferentiable | kView;
  d.num_inputs = 2;
  d.infer = infer;
  d.cpu_kernel = kernel;
  d.cuda_kernel = kernel;  // each runs other ops (broadcast_to, reduce_sum, reshape) or views: any device
  return d;
}

}  // namespace

OpDef define_BroadcastLike() { return like_op(infer_broadcast_like, kernel_broadcast_like); }
OpDef define_ReshapeLike() { return like_op(infer_reshape_like, kernel_reshape_like); }
OpDef define_SumToLike() { return like_op(infer_sum_to_like, kernel_sum_to_like); }
OpDef define_RangeLike() {
  OpDef d;
  d.traits = kStrings;  // reads only the shape; integer indices have no gradient
  d.attrs = {{"axis", AttrKind::Int}, {"dtype", AttrKind::Type}};
  d.infer = infer_range_like;
  d.cpu_kernel = kernel_range_like;
  return d;
}

}  // namespace kiln::ops
