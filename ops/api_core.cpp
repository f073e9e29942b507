// Public wrappers for reshape, stop_gradient, matmul, print and assert.
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

void print(std::string message, std::span<const Tensor> tensors) {
  ops::apply(ops::OpId::Print, {{"message", std::move(message)}}, tensors);
}

void debugging::assert_true(const Tensor& condition, std::string message) {
  ops::apply(ops::OpId::Assert, {{"message", std::move(message)}}, std::span<const Tensor>(&condition, 1));
}

}  // namespace kiln
