// Public reduction, argmax/argmin and cast functions: thin wrappers over ops::apply that
// normalize axes so that the recorded attributes are canonical.
#include "ops/defs/reduce.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace kiln {

namespace {

using ops::OpId;

// The attribute `axes` holds the normalized, sorted axes (all of them for the default Axes{}).
Tensor reduce(OpId id, const Tensor& x, const Axes& axes, bool keepdims) {
  const Tensor inputs[] = {x};
  ops::Attrs attrs;
  std::vector<int64_t> list;
  if (x.defined()) {  // an undefined input is reported by apply
    const int64_t rank = x.ndim();
    if (axes.axes) {
      list = ops::normalize_reduction_axes(ops::op_def(id).name, *axes.axes, rank);
    } else {
      for (int64_t i = 0; i < rank; ++i) list.push_back(i);
    }
  }
  attrs.set("axes", std::move(list));
  attrs.set("keepdims", keepdims);
  return ops::apply1(id, attrs, inputs);
}

Tensor arg(OpId id, const Tensor& x, int64_t axis, DType output_type) {
  const Tensor inputs[] = {x};
  if (x.defined()) axis = normalize_axis(ops::op_def(id).name, axis, x.ndim());
  return ops::apply1(id, ops::Attrs{{"axis", axis}, {"output_type", output_type}}, inputs);
}

}  // namespace

Tensor reduce_sum(const Tensor& x, Axes axes, bool keepdims) { return reduce(OpId::ReduceSum, x, axes, keepdims); }
Tensor reduce_mean(const Tensor& x, Axes axes, bool keepdims) { return reduce(OpId::ReduceMean, x, axes, keepdims); }
Tensor reduce_max(const Tensor& x, Axes axes, bool keepdims) { return reduce(OpId::ReduceMax, x, axes, keepdims); }
Tensor reduce_min(const Tensor& x, Axes axes, bool keepdims) { return reduce(OpId::ReduceMin, x, axes, keepdims); }
Tensor reduce_prod(const Tensor& x, Axes axes, bool keepdims) { return reduce(OpId::ReduceProd, x, axes, keepdims); }
Tensor reduce_any(const Tensor& x, Axes axes, bool keepdims) { return reduce(OpId::ReduceAny, x, axes, keepdims); }
Tensor reduce_all(const Tensor& x, Axes axes, bool keepdims) { return reduce(OpId::ReduceAll, x, axes, keepdims); }

Tensor argmax(const Tensor& x, int64_t axis, DType output_type) { return arg(OpId::ArgMax, x, axis, output_type); }
Tensor argmin(const Tensor& x, int64_t axis, DType output_type) { return arg(OpId::ArgMin, x, axis, output_type); }

Tensor cast(const Tensor& x, DType dtype) {
  if (x.defined() && x.dtype() == dtype) return x;  // nothing to convert: the same tensor, no copy
  return ops::apply1(OpId::Cast, {x}, ops::Attrs{{"dtype", dtype}});
}

}  // namespace kiln
