// Public wrappers for reshape, stop_gradient and matmul.
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace kiln {

using ops::apply1;
using ops::Attrs;
using ops::OpId;

Tensor reshape(const Tensor& x, const Shape& shape) {
  return apply1(OpId::Reshape, Attrs{{"shape", shape.as_list()}}, std::span<const Tensor>(&x, 1));
}

Tensor stop_gradient(const Tensor& x) { return apply1(OpId::StopGradient, {x}); }

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  return apply1(OpId::MatMul, {a, b}, Attrs{{"transpose_a", transpose_a}, {"transpose_b", transpose_b}});
}

}  // namespace kiln
