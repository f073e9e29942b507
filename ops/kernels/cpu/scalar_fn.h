// The scalar functions behind elementwise ops (ops/scalar_fn.def). Each functor computes in
// `compute_t<T>` (float for the 16-bit floats) and never triggers undefined behaviour: signed
// integer arithmetic wraps as two's complement, as TensorFlow's does.
#pragma once

#include <bit>
#include <cmath>
#include <complex>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "runtime/dtype.h"

namespace kiln::cpu {

template <class T>
struct compute_type {
  using type = T;
};
template <>
struct compute_type<Half> {
  using type = float;
};
template <>
struct compute_type<BFloat16> {
  using type = float;
};
template <class T>
using compute_t = typename compute_type<T>::type;

template <class T>
inline constexpr bool is_signed_int_v = std::is_integral_v<T>&& std::is_signed_v<T> && !std::is_same_v<T, bool>;
template <class T>
inline constexpr bool is_unsigned_int_v = std::is_integral_v<T>&& std::is_unsigned_v<T> && !std::is_same_v<T, bool>;
template <class T>
inline constexpr bool is_int_v = is_signed_int_v<T> || is_unsigned_int_v<T>;
template <class T>
inline constexpr bool is_real_float_v = std::is_floating_point_v<T>;

/// The type sums and products accumulate in: float for the 16-bit floats, and for integers an
/// unsigned type at least as wide as `unsigned`, where wrapping is defined (the conversion back
/// to T is modular).
template <class T>
struct Accumulator {
  using type = compute_t<T>;
};
template <class T>
requires is_int_v<T>
struct Accumulator<T> {
  using type = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;
};
template <class T>
using acc_t = typename Accumulator<T>::type;

// Wrapping integer arithmetic (no signed-overflow UB).
template <class T>
inline T wrap_add(T a, T b) {
  if constexpr (is_signed_int_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    return static_cast<T>(a + b);
  }
}
template <class T>
inline T wrap_sub(T a, T b) {
  if constexpr (is_signed_int_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) - static_cast<U>(b)));
  } else {
    return static_cast<T>(a - b);
  }
}
template <class T>
inline T wrap_mul(T a, T b) {
  if constexpr (is_int_v<T>) {
    // promote through the wider unsigned type so that u16*u16 does not overflow int
    using U = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
  } else {
    return a * b;
  }
}

/// exp for float32 without a library call, so loops over it vectorize: Cephes' range reduction
/// (x = m ln2 + r) and degree-6 polynomial, as Eigen and XLA use; within 2 ulp of std::exp over
/// the whole range, exact at 0, inf above 88.7228317 (where float32 overflows), 0 below -103.97, NaN in -> NaN out.
inline float exp_f32(float x) {
  // plain compares (not fmin/fmax) so the loop vectorizes; NaN is replaced here (the int
  // conversion below must not see it) and restored at the end
  float xc = x != x ? 0.0f : x;
  xc = xc < -103.97f ? -103.97f : xc;
  xc = xc > 88.72283172607421875f ? 88.72283172607421875f : xc;
  const float m = std::floor(xc * 1.44269504088896341f + 0.5f);
  float r = std::fma(m, -0.693359375f, xc);
  r = std::fma(m, 2.12194440e-4f, r);
  const float r2 = r * r;
  float p = std::fma(1.9875691500e-4f, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  const float y = std::fma(p, r2, r + 1.0f);
  // y * 2^m in two steps, so that m in [-150, 128] never leaves the exponent range
  const int32_t mi = static_cast<int32_t>(m);
  const int32_t m1 = mi / 2, m2 = mi - m1;
  const float s1 = std::bit_cast<float>((m1 + 127) << 23), s2 = std::bit_cast<float>((m2 + 127) << 23);
  float out = y * s1 * s2;
  out = x > 88.72283172607421875f ? std::numeric_limits<float>::infinity() : out;
  out = x < -103.97f ? 0.0f : out;
  return x != x ? x : out;
}

struct NegativeFn {
  template <class T>
  T operator()(T x) const {
    if constexpr (is_int_v<T>)
      return wrap_sub(T(0), x);
    else
      return -x;
  }
};
struct AbsFn {
  template <class T>
  auto operator()(T x) const {
    if constexpr (is_complex_v<T>)
      return std::abs(x);
    else if constexpr (is_unsigned_int_v<T>)
      return x;
    else if constexpr (is_signed_int_v<T>)
      return x < 0 ? wrap_sub(T(0), x) : x;
    else
      return std::fabs(x);
  }
};
struct SignFn {
  template <class T>
  T operator()(T x) const {
    if constexpr (is_complex_v<T>) {
      auto a = std::abs(x);
      return a == 0 ? T(0) : x / a;
    } else if constexpr (is_unsigned_int_v<T>) {
      return x > 0 ? T(1) : T(0);
    } else if constexpr (is_int_v<T>) {
      return static_cast<T>((x > 0) - (x < 0));
    } else {
      return std::isnan(x) ? x : static_cast<T>((x > 0) - (x < 0));
    }
  }
};
struct ExpFn {
  template <class T>
  T operator()(T x) const {
    if constexpr (std::is_same_v<T, float>)
      return exp_f32(x);
    else
      return std::exp(x);
  }
};
struct LogFn {
  template <class T>
  T operator()(T x) const {
    return std::log(x);
  }
};
struct Log1pFn {
  template <class T>
  T operator()(T x) const {
    if constexpr (is_complex_v<T>)
      return std::log(T(1) + x);
    else
      return std::log1p(x);
  }
};
struct SqrtFn {
  template <class T>
  T operator()(T x) const {
    return std::sqrt(x);
  }
};
struct RsqrtFn {
  template <class T>
  T operator()(T x) const {
    return T(1) / std::sqrt(x);
  }
};
struct SquareFn {
  template <class T>
  T operator()(T x) const {
    return wrap_mul(x, x);
  }
};
struct SinFn {
  template <class T>
  T operator()(T x) const {
    return std::sin(x);
  }
};
struct CosFn {
  template <class T>
  T operator()(T x) const {
    return std::cos(x);
  }
};
struct TanFn {
  template <class T>
  T operator()(T x) const {
    return std::tan(x);
  }
};
struct TanhFn {
  template <class T>
  T operator()(T x) const {
    return std::tanh(x);
  }
};
struct SigmoidFn {
  template <class T>
  T operator()(T x) const {
    if constexpr (is_complex_v<T>)
      return T(1) / (T(1) + std::exp(-x));
    else {
      // stable for large |x|: exp never overflows
      if (x >= 0) return T(1) / (T(1) + std::exp(-x));
      T e = std::exp(x);
      return e / (T(1) + e);
    }
  }
};
struct SoftplusFn {
  template <class T>
  T operator()(T x) const {
    // log(1 + e^x) = max(x, 0) + log1p(e^-|x|)
    return (x > 0 ? x : T(0)) + std::log1p(std::exp(-std::fabs(x)));
  }
};
struct ReluFn {
  template <class T>
  T operator()(T x) const {
    if constexpr (is_real_float_v<T>)
      return x > T(0) ? x : (std::isnan(x) ? x : T(0));
    else
      return x > T(0) ? x : T(0);
  }
};
struct FloorFn {
  template <class T>
  T operator()(T x) const {
    return std::floor(x);
  }
};
struct CeilFn {
  template <class T>
  T operator()(T x) const {
    return std::ceil(x);
  }
};
struct RoundFn {
  template <class T>
  T operator()(T x) const {
    return std::nearbyint(x);
  }  // default rounding mode: half to even
};
struct LogicalNotFn {
  bool operator()(bool x) const { return !x; }
};

struct AddFn {
  template <class T>
  T operator()(T a, T b) const {
    return wrap_add(a, b);
  }
};
struct SubtractFn {
  template <class T>
  T operator()(T a, T b) const {
    return wrap_sub(a, b);
  }
};
struct MultiplyFn {
  template <class T>
  T operator()(T a, T b) const {
    return wrap_mul(a, b);
  }
};
struct DivideFn {  // inputs already converted to the output's float type
  template <class T>
  T operator()(T a, T b) const {
    return a / b;
  }
};
struct FloorDivFn {
  template <class T>
  T operator()(T a, T b) const {
    if constexpr (is_signed_int_v<T>) {
      if (b == -1) return wrap_sub(T(0), a);  // avoids INT_MIN / -1
      T q = static_cast<T>(a / b);
      return (a % b != 0 && ((a < 0) != (b < 0))) ? static_cast<T>(q - 1) : q;
    } else if constexpr (is_unsigned_int_v<T>) {
      return static_cast<T>(a / b);
    } else {
      return std::floor(a / b);
    }
  }
};
struct ModFn {
  template <class T>
  T operator()(T a, T b) const {
    if constexpr (is_signed_int_v<T>) {
      if (b == -1) return T(0);
      T r = static_cast<T>(a % b);
      return (r != 0 && ((r < 0) != (b < 0))) ? static_cast<T>(r + b) : r;
    } else if constexpr (is_unsigned_int_v<T>) {
      return static_cast<T>(a % b);
    } else {
      T r = std::fmod(a, b);
      return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
    }
  }
};
struct PowFn {
  template <class T>
  T operator()(T a, T b) const {
    if constexpr (is_int_v<T>) {
      // exponentiation by squaring with wrapping (negative exponents are rejected earlier)
      T r = 1;
      T base = a;
      auto e = static_cast<std::make_unsigned_t<T>>(b);
      while (e) {
        if (e & 1) r = wrap_mul(r, base);
        base = wrap_mul(base, base);
        e >>= 1;
      }
      return r;
    } else {
      return std::pow(a, b);
    }
  }
};
struct MaximumFn {  // NaN propagates, as in TensorFlow
  template <class T>
  T operator()(T a, T b) const {
    if constexpr (is_real_float_v<T>) {
      if (std::isnan(a)) return a;
      if (std::isnan(b)) return b;
    }
    return a < b ? b : a;
  }
};
struct MinimumFn {
  template <class T>
  T operator()(T a, T b) const {
    if constexpr (is_real_float_v<T>) {
      if (std::isnan(a)) return a;
      if (std::isnan(b)) return b;
    }
    return b < a ? b : a;
  }
};
struct EqualFn {
  template <class T>
  bool operator()(T a, T b) const {
    return a == b;
  }
};
struct NotEqualFn {
  template <class T>
  bool operator()(T a, T b) const {
    return a != b;
  }
};
struct LessFn {
  template <class T>
  bool operator()(T a, T b) const {
    return a < b;
  }
};
struct LessEqualFn {
  template <class T>
  bool operator()(T a, T b) const {
    return a <= b;
  }
};
struct GreaterFn {
  template <class T>
  bool operator()(T a, T b) const {
    return a > b;
  }
};
struct GreaterEqualFn {
  template <class T>
  bool operator()(T a, T b) const {
    return a >= b;
  }
};
struct LogicalAndFn {
  bool operator()(bool a, bool b) const { return a && b; }
};
struct LogicalOrFn {
  bool operator()(bool a, bool b) const { return a || b; }
};
struct LogicalXorFn {
  bool operator()(bool a, bool b) const { return a != b; }
};

}  // namespace kiln::cpu
