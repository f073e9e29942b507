// Helpers shared by elementwise op definitions: dtype classes and their checks.
#pragma once

#include <string_view>

#include "ops/op_def.h"

namespace kiln::ops {

// dtype classes used by scalar_fn.def
inline constexpr unsigned B = 1, S = 2, U = 4, F = 8, C = 16;

constexpr unsigned dtype_class(DType d) {
  if (d == DType::Bool) return B;
  if (is_signed_integer(d)) return S;
  if (is_unsigned_integer(d)) return U;
  if (is_floating(d)) return F;
  if (is_complex(d)) return C;
  return 0;
}

template <class T>
constexpr unsigned dtype_class_of() {
  return dtype_class(dtype_v<T>);
}

/// "bool, int*, uint*, float*, complex*" for the classes in `mask`.
std::string describe_classes(unsigned mask);

/// Throws InvalidArgument if `d` is not in `mask`.
void check_dtype_class(std::string_view op, std::string_view what, DType d, unsigned mask);

/// Throws InvalidArgument naming both dtypes if they differ.
void check_same_dtype(std::string_view op, const Tensor& x, const Tensor& y);

}  // namespace kiln::ops
