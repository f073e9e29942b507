// Helpers for the registry-driven op tests: host copies of tensors that hold integers exactly
// and floating values as double, seeded inputs, rounding to a dtype, and tolerant comparison.
#pragma once

#include <complex>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/ops.h"

namespace kiln::testing {

__extension__ using Int128 = __int128;
__extension__ using UInt128 = unsigned __int128;

/// bool and the 14 numeric dtypes (every dtype but string), in dtype.def order.
extern const std::vector<DType> kAllDTypes;

/// One element on the host. Bool and integer values live exactly in `i` (with `z` holding the
/// same value as a double, for references that need it); floating and complex values in `z`.
struct Num {
  Int128 i = 0;
  std::complex<double> z;
};

/// A tensor copied to the host. `scale`, when set on an expected value, is a per-element
/// magnitude that widens the tolerance of sums and dot products (sum of |terms|).
struct Host {
  DType dtype = DType::Float32;
  Shape shape;
  std::vector<Num> v;
  std::vector<double> scale;
  int64_t size() const { return static_cast<int64_t>(v.size()); }
};

/// A zero-filled host tensor.
Host make_host(DType dtype, const Shape& shape);
/// Copies a tensor's elements to the host.
Host to_host(const Tensor& t);
/// A new tensor holding the host values (which must already fit the dtype, e.g. via round_to).
Tensor from_host(const Host& h);

/// An integer value of `dtype` (wrapped modulo 2^bits, as two's complement for signed types).
Num int_num(Int128 v, DType dtype);
/// A real or complex value.
Num float_num(std::complex<double> z);
/// `x` rounded to what `dtype` can hold: integers wrap, bool becomes 0/1 (from a nonzero
/// test), floats round to nearest (16-bit floats through float32, as Kiln and Eigen do).
Num round_to(const Num& x, DType dtype);
/// `x` rounded to float32 and widened back. The value passes through a volatile float: GCC 12.2
/// at -O2/-O3 drops such round trips when it vectorizes a pair of them (the two parts of a
/// complex value), which would make references silently skip the rounding.
double as_float32(double x);
double as_float32(float x);
/// The smallest and largest value of an integer dtype (0 and 1 for bool).
Int128 int_min(DType dtype);
Int128 int_max(DType dtype);

/// How inputs are drawn: kiln::random::uniform in [lo, hi) as float64 (seeded), converted on the
/// host. Integers use the dtype's full range unless `int_full` is false (then [int_lo, int_hi),
/// clamped to the dtype), with its extreme values placed first when `int_edges`. Bool values
/// are fair coin flips.
struct Gen {
  double lo = -10, hi = 10;            // real floats
  double clo = -2, chi = 2;            // both parts of complex values
  bool int_full = true;                // integers over the whole range of the dtype
  double int_lo = -100, int_hi = 100;  // otherwise this range
  bool int_edges = true;               // min, max, 0, -1, 1 first (full range only)
  bool specials = false;               // NaN, inf, -inf, -0.0 first (real floats)
  bool halves = false;                 // floats (both parts) rounded to multiples of 0.5: ties
  double min_abs = 0;                  // nonzero: values with |v| < min_abs move away from zero
  std::vector<double> first = {};      // values placed first (after the above; integers clamp)
};

/// Seeded random values of `dtype` and `shape` drawn as `g` says.
Host random_host(DType dtype, const Shape& shape, uint64_t seed, const Gen& g = {});

/// Comparison strictness.
///   Exact:   bit-for-bit value equality (NaN matches NaN); used for integer and bool results
///            always, and for floating results that involve no rounding (max, floor, copies).
///   Rounded: one correctly rounded operation, possibly rounded twice (float16/bfloat16 compute
///            in float32): float16 1e-3, bfloat16 8e-3, float32 2.5e-7, float64 5e-16 relative;
///            complex64 1e-6, complex128 2e-15 (complex products round each part).
///   Approx:  library transcendental functions and accumulations: float16 1e-2, bfloat16 2e-2,
///            float32 / complex64 1e-5, float64 / complex128 1e-12 relative.
/// Each has an absolute floor near zero of about the dtype's resolution there (float16 1e-3,
/// bfloat16 1e-2, float32 1e-6, float64 1e-12 for Approx; the smallest subnormal for Rounded).
enum class Tier { Exact, Rounded, Approx };

/// A value matches when |actual - expected| <= atol + rtol * |expected|.
struct Tolerance {
  double rtol = 0, atol = 0;
};
/// The tolerance of `tier` for results of `dtype` (zero for integers, bool and Exact).
Tolerance tolerance(DType dtype, Tier tier);

/// Returns "" when `actual` matches `expected` (dtype, shape and values), else a description of
/// the first mismatches. `expected.scale` (if set) replaces |expected| as the magnitude that
/// the relative tolerance applies to when it is larger.
std::string compare(const Host& actual, const Host& expected, Tier tier);

/// Row-major multi-index helpers.
std::vector<int64_t> unravel(int64_t flat, const Shape& shape);
int64_t ravel(const std::vector<int64_t>& idx, const Shape& shape);

/// The printed form of one element, for failure messages.
std::string num_string(const Num& x, DType dtype);

}  // namespace kiln::testing
