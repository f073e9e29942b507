// Public elementwise op functions: thin wrappers over ops::apply, plus the `clip` composite.
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace kiln {

using ops::apply1;
using ops::OpId;

#define KILN_UNARY_API(fn, Id) \
  Tensor fn(const Tensor& x) { return apply1(OpId::Id, {x}); }
#define KILN_BINARY_API(fn, Id) \
  Tensor fn(const Tensor& x, const Tensor& y) { return apply1(OpId::Id, {x, y}); }

KILN_UNARY_API(negative, Negative)
KILN_UNARY_API(abs, Abs)
KILN_UNARY_API(sign, Sign)
KILN_UNARY_API(exp, Exp)
KILN_UNARY_API(log, Log)
KILN_UNARY_API(log1p, Log1p)
KILN_UNARY_API(sqrt, Sqrt)
KILN_UNARY_API(rsqrt, Rsqrt)
KILN_UNARY_API(square, Square)
KILN_UNARY_API(sin, Sin)
KILN_UNARY_API(cos, Cos)
KILN_UNARY_API(tan, Tan)
KILN_UNARY_API(tanh, Tanh)
KILN_UNARY_API(sigmoid, Sigmoid)
KILN_UNARY_API(softplus, Softplus)
KILN_UNARY_API(relu, Relu)
KILN_UNARY_API(floor, Floor)
KILN_UNARY_API(ceil, Ceil)
KILN_UNARY_API(round, Round)
KILN_UNARY_API(logical_not, LogicalNot)
KILN_BINARY_API(add, Add)
KILN_BINARY_API(subtract, Subtract)
KILN_BINARY_API(multiply, Multiply)
KILN_BINARY_API(divide, Divide)
KILN_BINARY_API(floordiv, FloorDiv)
KILN_BINARY_API(mod, Mod)
KILN_BINARY_API(pow, Pow)
KILN_BINARY_API(maximum, Maximum)
KILN_BINARY_API(minimum, Minimum)
KILN_BINARY_API(equal, Equal)
KILN_BINARY_API(not_equal, NotEqual)
KILN_BINARY_API(less, Less)
KILN_BINARY_API(less_equal, LessEqual)
KILN_BINARY_API(greater, Greater)
KILN_BINARY_API(greater_equal, GreaterEqual)
KILN_BINARY_API(logical_and, LogicalAnd)
KILN_BINARY_API(logical_or, LogicalOr)
KILN_BINARY_API(logical_xor, LogicalXor)
#undef KILN_UNARY_API
#undef KILN_BINARY_API

Tensor where(const Tensor& cond, const Tensor& x, const Tensor& y) { return apply1(OpId::Where, {cond, x, y}); }

Tensor clip(const Tensor& x, const Tensor& lo, const Tensor& hi) { return minimum(maximum(x, lo), hi); }

Tensor clip(const Tensor& x, double lo, double hi) {
  if (lo > hi) fail<InvalidArgument>("clip", "clip_value_min ", lo, " is greater than clip_value_max ", hi);
  return clip(x, scalar_of(std::complex<double>(lo), x.dtype(), "clip"),
              scalar_of(std::complex<double>(hi), x.dtype(), "clip"));
}

}  // namespace kiln
