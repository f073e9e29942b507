// softmax and log_softmax: composites of reduce_max, reduce_sum, exp and log (no kernel, no
// gradient rule of their own). Subtracting the maximum first keeps exp from overflowing; the
// results do not depend on the shift, so its gradient is stopped (the tape and traced
// backward graphs then skip a path whose contributions sum to zero).
#include "ops/ops.h"

namespace kiln {
namespace {

// Checks the dtype and normalizes the axis; returns false when the axis is empty, in which
// case the result is the (empty) input itself.
bool check_softmax_args(std::string_view op, const Tensor& x, int64_t& axis) {
  if (!x.defined()) fail<InvalidArgument>(op, "input is undefined (None)");
  if (!is_floating(x.dtype()))
    fail<InvalidArgument>(op, "x has dtype ", dtype_name(x.dtype()), ", but ", op,
                          " needs a floating dtype (float16, bfloat16, float32 or float64)");
  axis = normalize_axis(op, axis, x.ndim());
  return x.shape().dim(static_cast<size_t>(axis)) != 0;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) {
  if (!check_softmax_args("softmax", x, axis)) return x;
  Tensor e = exp(x - stop_gradient(reduce_max(x, axis, /*keepdims=*/true)));
  return e / reduce_sum(e, axis, /*keepdims=*/true);
}

Tensor log_softmax(const Tensor& x, int64_t axis) {
  if (!check_softmax_args("log_softmax", x, axis)) return x;
  Tensor shifted = x - stop_gradient(reduce_max(x, axis, /*keepdims=*/true));
  return shifted - log(reduce_sum(exp(shifted), axis, /*keepdims=*/true));
}

}  // namespace kiln
