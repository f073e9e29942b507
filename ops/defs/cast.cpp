// The cast op: conversion between every pair of numeric dtypes and bool, with TensorFlow's
// rules and no undefined behaviour (floats to integers saturate, NaN becomes 0).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "ops/defs/elementwise_common.h"
#include "ops/kernels/cpu/loops.h"

namespace kiln::ops {
namespace {

template <class T>
inline constexpr bool is_half_v = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

constexpr double pow2(int n) {
  double r = 1;
  while (n-- > 0) r *= 2;
  return r;
}

// A floating value to an integer type: truncation toward zero, saturating at the type's range,
// NaN to 0. The range is checked first because an out-of-range conversion is undefined.
template <class To>
To float_to_int(double d) {
  if constexpr (std::numeric_limits<To>::digits < 53) {
    // the range ends are exact in double: clamp without branches (the loop vectorizes)
    constexpr double lo = static_cast<double>(std::numeric_limits<To>::min());
    constexpr double hi = static_cast<double>(std::numeric_limits<To>::max());
    const double c = d != d ? 0.0 : std::min(std::max(d, lo), hi);
    return static_cast<To>(c);
  } else {
    constexpr double hi = pow2(std::numeric_limits<To>::digits);  // max + 1, exact in double
    if (std::isnan(d)) return To(0);
    if (d >= hi) return std::numeric_limits<To>::max();
    if constexpr (std::is_signed_v<To>) {
      if (d <= -hi) return std::numeric_limits<To>::min();  // -hi is min, exactly
    } else {
      if (d <= -1.0) return To(0);
    }
    return static_cast<To>(d);
  }
}

template <class To, class From>
To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (is_complex_v<From>) {
    if constexpr (is_complex_v<To>) {
      using V = typename To::value_type;
      return To(static_cast<V>(v.real()), static_cast<V>(v.imag()));
    } else if constexpr (std::is_same_v<To, bool>) {
      return v.real() != 0 || v.imag() != 0;
    } else {
      return convert<To>(v.real());  // the imaginary part is dropped, as in TensorFlow
    }
  } else if constexpr (is_half_v<From>) {
    return convert<To>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<From, bool>) {
    if constexpr (is_complex_v<To>)
      return To(v ? 1 : 0, 0);
    else if constexpr (is_half_v<To>)
      return To(v ? 1.0f : 0.0f);
    else
      return static_cast<To>(v ? 1 : 0);
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (is_complex_v<To>) {
    using V = typename To::value_type;
    return To(static_cast<V>(v), V(0));
  } else if constexpr (is_half_v<To>) {
    return To(static_cast<float>(v));  // int64 and float64 round through float, as Eigen does
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
    return float_to_int<To>(static_cast<double>(v));
  } else {
    return static_cast<To>(v);  // integer to integer wraps (well defined since C++20)
  }
}

TypeList infer_cast(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const DType from = in[0].dtype(), to = attrs.get_type("dtype");
  if (from == DType::String || to == DType::String)
    fail<Unimplemented>(def.name, "casting ", dtype_name(from), " to ", dtype_name(to), " is not supported");
  return {TensorType{to, in[0].shape()}};
}

void kernel_cast(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  Tensor& y = ctx.output(0);
  if (x.num_elements() == 0) return;
  if (x.dtype() == y.dtype()) {
    std::memcpy(y.mutable_raw_data(), x.raw_data(), x.nbytes());
    return;
  }
  visit_dtype(x.dtype(), ctx.def.name, [&](auto from_tag) {
    using From = decltype(from_tag);
    visit_dtype(y.dtype(), ctx.def.name, [&](auto to_tag) {
      using To = decltype(to_tag);
      const From* src = static_cast<const From*>(x.raw_data());
      To* dst = static_cast<To*>(y.mutable_raw_data());
      parallel_for(x.num_elements(), cpu::kParallelGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) dst[i] = convert<To>(src[i]);
      });
    });
  });
}

}  // namespace

OpDef define_Cast() {
  OpDef d;
  d.traits = kElementwise | kFusible | kDifferentiable;
  d.num_inputs = 1;
  d.attrs = {{"dtype", AttrKind::Type}};
  d.infer = infer_cast;
  d.cpu_kernel = kernel_cast;
  return d;
}

}  // namespace kiln::ops
