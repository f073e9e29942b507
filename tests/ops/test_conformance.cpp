// Op conformance driven by the registry (DESIGN.md §7): every op in ops::all_ops() runs for each
// of the 15 dtypes over several shapes (scalar, empty, 1-D, N-D, broadcasting, and sizes that
// take the parallel paths) and is compared with a plain-loop host reference: exact integer math
// with wrapping, double or complex<double> for floats. Dtypes an op does not accept must be
// rejected with InvalidArgument or Unimplemented. An op without an entry here fails the test.
// Tolerances per dtype are stated with kiln::testing::Tier in tests/support/op_cases.h. Every
// case also runs traced into a function (issue 4) and must give the eager op's results.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <cstring>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include "compiler/backend/cpu/plan.h"
#include "compiler/backend/cuda/cuda_backend.h"
#include "compiler/trace/function.h"
#include "ops/dispatch.h"
#include "ops/kernels/cuda/kernels.h"
#include "ops/kernels/cuda/source.h"
#include "ops/ops.h"
#include "runtime/printing.h"
#include "runtime/string_tensor.h"
#include "tests/support/op_cases.h"

using namespace kiln;
using namespace kiln::testing;
using ops::Attrs;

namespace {

using Outputs = std::vector<Tensor>;
using Refs = std::vector<Host>;
using C = std::complex<double>;
using I64s = std::vector<int64_t>;

/// One run of an op: its inputs, how to apply the op, and what it must give: reference outputs,
/// a property check, or an error. `body` applies the op to tensors standing for `inputs` (the
/// inputs themselves when run eagerly, a trace's parameters when traced into a function).
struct Case {
  std::string what;
  std::vector<Tensor> inputs;
  std::function<Outputs(std::span<const Tensor>)> body;
  std::function<Refs()> expect;
  std::function<void(const Outputs&)> check;
  Tier tier = Tier::Exact;
  /// What the op writes to std::cout (only print writes anything).
  std::string prints;
  /// When set, the op must throw InvalidArgument with exactly this message.
  std::string throws;

  Outputs run() const { return body(inputs); }
};

/// An op's entry: the dtype classes it accepts and its cases for one dtype, built for every
/// dtype (the cases of a dtype it does not accept must be rejected). Cases larger than kSmall
/// elements, which take the kernels' parallel paths, are built only when `big` is set.
struct OpSpec {
  unsigned accepts = 0;
  std::function<std::vector<Case>(const std::string& op, DType dt, bool big)> cases;
  /// When set, exactly these dtypes are accepted (ops that take one dtype of a class, e.g. int32).
  std::vector<DType> only = {};
  /// Cases on string inputs, for ops that accept string tensors (kStrings); they check their
  /// outputs with `check`, since Host holds no strings.
  std::function<std::vector<Case>()> string_cases = {};
};

constexpr int64_t kSmall = 1000;

// The dtypes that also run the large cases: one of each element size and dtype class. Every
// large case starts thread teams, which are slow on CI's two oversubscribed cores; the small
// cases run for every dtype.
bool runs_big_cases(DType d) {
  for (DType b : {bool_, int8, int32, uint64, float16, bfloat16, float32, complex128})
    if (b == d) return true;
  return false;
}

constexpr unsigned kB = 1, kS = 2, kU = 4, kF = 8, kC = 16;
constexpr unsigned kReal = kS | kU | kF, kNum = kS | kU | kF | kC, kAll = kB | kNum;

unsigned class_of(DType d) {
  if (d == DType::Bool) return kB;
  if (is_signed_integer(d)) return kS;
  if (is_unsigned_integer(d)) return kU;
  return is_floating(d) ? kF : kC;
}

Outputs run_op(const std::string& op, const Attrs& attrs, std::span<const Tensor> inputs) {
  ops::TensorList out = ops::apply(ops::op_def(op).id, attrs, inputs);
  return Outputs(out.begin(), out.end());
}

Case op_case(std::string what, const std::string& op, Attrs attrs, std::vector<Tensor> inputs,
             std::function<Refs()> expect, Tier tier = Tier::Exact) {
  Case c;
  c.what = std::move(what);
  c.inputs = std::move(inputs);
  c.body = [op, attrs](std::span<const Tensor> in) { return run_op(op, attrs, in); };
  c.expect = std::move(expect);
  c.tier = tier;
  return c;
}

std::string list_string(const I64s& v) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << ']';
  return os.str();
}

// Calls f(idx, flat) for every index of `s` in row-major order.
template <class F>
void for_each_index(const Shape& s, F&& f) {
  const int64_t n = s.num_elements();
  I64s idx(static_cast<size_t>(s.rank()), 0);
  for (int64_t k = 0; k < n; ++k) {
    f(static_cast<const I64s&>(idx), k);
    for (int64_t i = s.rank() - 1; i >= 0; --i) {
      if (++idx[size_t(i)] < s.dim(size_t(i))) break;
      idx[size_t(i)] = 0;
    }
  }
}

Num I(Int128 v) {
  Num n;
  n.i = v;
  n.z = static_cast<double>(v);
  return n;
}
Num R(C z) { return float_num(z); }
Num B(bool b) { return I(b ? 1 : 0); }

// Host inputs of a given integer dtype from explicit values.
Host index_host(DType dt, const Shape& s, const I64s& values) {
  Host h = make_host(dt, s);
  for (size_t k = 0; k < values.size(); ++k) h.v[k] = int_num(values[k], dt);
  return h;
}

// ---------------------------------------------------------------------------------------------
// Broadcasting (NumPy rules, restated)

Shape bshape(const Shape& a, const Shape& b) {
  const int64_t r = std::max(a.rank(), b.rank());
  Shape out;
  for (int64_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.rank() ? 1 : a.dim(size_t(i - (r - a.rank())));
    const int64_t db = i < r - b.rank() ? 1 : b.dim(size_t(i - (r - b.rank())));
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

// The flat index into `in` of output index `idx` when `in` broadcasts to the output.
int64_t bsrc(const I64s& idx, const Shape& in) {
  const size_t off = idx.size() - size_t(in.rank());
  int64_t flat = 0;
  for (size_t i = 0; i < size_t(in.rank()); ++i) flat = flat * in.dim(i) + (in.dim(i) == 1 ? 0 : idx[off + i]);
  return flat;
}

// ---------------------------------------------------------------------------------------------
// Elementwise ops

enum class Out { Same, Bool, Real, Float };

// ops.h: comparisons give bool, abs of complex gives the real type, true division of integers
// gives float32 for 8/16-bit and float64 for 32/64-bit integers.
DType out_dtype(Out rule, DType in) {
  switch (rule) {
    case Out::Same:
      return in;
    case Out::Bool:
      return bool_;
    case Out::Real:
      return in == complex64 ? float32 : in == complex128 ? float64 : in;
    case Out::Float:
      if (!is_integer(in)) return in;
      return dtype_size(in) <= 2 ? float32 : float64;
  }
  return in;
}

using Fn1 = std::function<Num(const Num&, DType)>;
using Fn2 = std::function<Num(const Num&, const Num&, DType)>;

// Applies f to the real value (real floats) or the complex value.
template <class F>
Fn1 math1(F f) {
  return [f](const Num& x, DType d) { return is_complex(d) ? R(f(x.z)) : R(f(x.z.real())); };
}

const std::vector<Shape> kUnaryShapes = {{}, {0}, {7}, {2, 3, 4}, {3, 0, 2}, {130, 260}};

OpSpec unary(unsigned accepts, Out rule, Tier tier, Gen gen, Fn1 f) {
  return {accepts, [=](const std::string& op, DType dt, bool big) {
            std::vector<Case> cases;
            uint64_t seed = 1000;
            for (const Shape& s : kUnaryShapes) {
              if (!big && s.num_elements() > kSmall) continue;
              Host x = random_host(dt, s, seed++, gen);
              cases.push_back(op_case(
                  s.to_string(), op, {}, {from_host(x)},
                  [=] {
                    Host y = make_host(out_dtype(rule, dt), s);
                    for (int64_t k = 0; k < y.size(); ++k) y.v[k] = round_to(f(x.v[k], dt), y.dtype);
                    return Refs{y};
                  },
                  tier));
            }
            return cases;
          }};
}

struct Bin {
  Shape a, b;
};
const std::vector<Bin> kBinaryShapes = {{{}, {}},
                                        {{0}, {0}},
                                        {{7}, {7}},
                                        {{2, 3, 4}, {2, 3, 4}},
                                        {{3, 1}, {4}},
                                        {{}, {2, 3}},
                                        {{2, 3}, {}},
                                        {{2, 1, 3}, {5, 1}},
                                        {{0, 3}, {1, 3}},
                                        {{4, 1, 5}, {1, 3, 1}},
                                        {{130, 260}, {130, 260}},
                                        {{130, 1}, {1, 260}}};

OpSpec binary(unsigned accepts, Out rule, Tier tier, Gen gx, Gen gy, Fn2 f) {
  return {accepts, [=](const std::string& op, DType dt, bool big) {
            std::vector<Case> cases;
            uint64_t seed = 2000;
            for (const Bin& bs : kBinaryShapes) {
              if (!big && bshape(bs.a, bs.b).num_elements() > kSmall) continue;
              Host x = random_host(dt, bs.a, seed++, gx), y = random_host(dt, bs.b, seed++, gy);
              cases.push_back(op_case(
                  bs.a.to_string() + " vs " + bs.b.to_string(), op, {}, {from_host(x), from_host(y)},
                  [=] {
                    Host out = make_host(out_dtype(rule, dt), bshape(bs.a, bs.b));
                    for_each_index(out.shape, [&](const I64s& idx, int64_t k) {
                      out.v[k] = round_to(f(x.v[bsrc(idx, bs.a)], y.v[bsrc(idx, bs.b)], dt), out.dtype);
                    });
                    return Refs{out};
                  },
                  tier));
            }
            return cases;
          }};
}

// Binary references: fi takes exact integers (and bool); fr real doubles; f in num2 takes real
// doubles or complex values, whichever the dtype holds.
template <class FI, class FR>
Fn2 real2(FI fi, FR fr) {
  return [fi, fr](const Num& a, const Num& b, DType d) -> Num {
    if (!is_inexact(d)) return fi(a.i, b.i);
    return fr(a.z.real(), b.z.real());
  };
}
template <class FI, class F>
Fn2 num2(FI fi, F f) {
  return [fi, f](const Num& a, const Num& b, DType d) -> Num {
    if (!is_inexact(d)) return fi(a.i, b.i);
    if (is_complex(d)) return f(a.z, b.z);
    return f(a.z.real(), b.z.real());
  };
}

Int128 floor_div(Int128 a, Int128 b) {
  Int128 q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}
Int128 floor_mod(Int128 a, Int128 b) { return a - floor_div(a, b) * b; }
Int128 mul_wrap(Int128 a, Int128 b) { return static_cast<Int128>(static_cast<UInt128>(a) * static_cast<UInt128>(b)); }

// Rounds half to even, written out.
double round_half_even(double x) {
  if (!std::isfinite(x)) return x;
  const double f = std::floor(x), diff = x - f;
  if (diff < 0.5) return f;
  if (diff > 0.5) return f + 1;
  return std::fmod(f, 2.0) == 0 ? f : f + 1;
}

double nan_max(double a, double b) { return std::isnan(a) ? a : std::isnan(b) ? b : std::max(a, b); }
double nan_min(double a, double b) { return std::isnan(a) ? a : std::isnan(b) ? b : std::min(a, b); }

void add_elementwise(std::map<std::string, OpSpec>& t) {
  const Gen sp{.specials = true};
  auto neg = [](const Num& x, DType d) { return is_integer(d) ? I(-x.i) : R(-x.z); };
  t["negative"] = unary(kNum, Out::Same, Tier::Exact, sp, neg);
  t["abs"] = unary(kNum, Out::Real, Tier::Rounded, sp, [](const Num& x, DType d) {
    if (is_integer(d)) return I(x.i < 0 ? -x.i : x.i);
    return is_complex(d) ? R(std::abs(x.z)) : R(std::fabs(x.z.real()));
  });
  t["sign"] = unary(kNum, Out::Same, Tier::Rounded, sp, [](const Num& x, DType d) {
    if (is_integer(d)) return I((x.i > 0) - (x.i < 0));
    if (is_complex(d)) return R(x.z == C(0) ? C(0) : x.z / std::abs(x.z));
    const double v = x.z.real();
    return R(std::isnan(v) ? v : (v > 0) - (v < 0));
  });
  t["exp"] = unary(kF | kC, Out::Same, Tier::Approx, Gen{.lo = -5, .hi = 5, .specials = true},
                   math1([](auto v) { return std::exp(v); }));
  t["log"] = unary(kF | kC, Out::Same, Tier::Approx, Gen{.lo = 0.05, .hi = 10, .specials = true},
                   math1([](auto v) { return std::log(v); }));
  t["log1p"] = unary(kF | kC, Out::Same, Tier::Approx, Gen{.lo = -0.9, .hi = 5, .specials = true}, math1([](auto v) {
                       if constexpr (std::is_same_v<decltype(v), double>)
                         return std::log1p(v);
                       else
                         return std::log(1.0 + v);
                     }));
  t["sqrt"] = unary(kF | kC, Out::Same, Tier::Approx, Gen{.lo = 0, .hi = 10, .specials = true},
                    math1([](auto v) { return std::sqrt(v); }));
  t["rsqrt"] = unary(kF | kC, Out::Same, Tier::Approx, Gen{.lo = 0.05, .hi = 10, .specials = true},
                     math1([](auto v) { return 1.0 / std::sqrt(v); }));
  t["square"] = unary(kNum, Out::Same, Tier::Rounded, sp, [](const Num& x, DType d) {
    return is_integer(d) ? I(mul_wrap(x.i, x.i)) : is_complex(d) ? R(x.z * x.z) : R(x.z.real() * x.z.real());
  });
  t["sin"] = unary(kF | kC, Out::Same, Tier::Approx, Gen{.lo = -6, .hi = 6, .specials = true},
                   math1([](auto v) { return std::sin(v); }));
  t["cos"] = unary(kF | kC, Out::Same, Tier::Approx, Gen{.lo = -6, .hi = 6, .specials = true},
                   math1([](auto v) { return std::cos(v); }));
  // complex tan/tanh/sigmoid: parts within 1.2, away from the poles at pi/2 and i*pi/2
  const Gen near{.lo = -1.3, .hi = 1.3, .clo = -1.2, .chi = 1.2, .specials = true};
  t["tan"] = unary(kF | kC, Out::Same, Tier::Approx, near, math1([](auto v) { return std::tan(v); }));
  t["tanh"] = unary(kF | kC, Out::Same, Tier::Approx, Gen{.lo = -5, .hi = 5, .clo = -1.2, .chi = 1.2, .specials = true},
                    math1([](auto v) { return std::tanh(v); }));
  t["sigmoid"] =
      unary(kF | kC, Out::Same, Tier::Approx, Gen{.lo = -10, .hi = 10, .clo = -1.2, .chi = 1.2, .specials = true},
            math1([](auto v) { return 1.0 / (1.0 + std::exp(-v)); }));
  t["softplus"] = unary(kF, Out::Same, Tier::Approx, Gen{.lo = -20, .hi = 20, .specials = true},
                        [](const Num& x, DType) { return R(std::log1p(std::exp(x.z.real()))); });
  t["relu"] = unary(kReal, Out::Same, Tier::Exact, sp, [](const Num& x, DType d) {
    if (is_integer(d)) return I(std::max<Int128>(x.i, 0));
    const double v = x.z.real();
    return R(std::isnan(v) ? v : v > 0 ? v : 0.0);
  });
  t["floor"] = unary(kF, Out::Same, Tier::Exact, sp, [](const Num& x, DType) { return R(std::floor(x.z.real())); });
  t["ceil"] = unary(kF, Out::Same, Tier::Exact, sp, [](const Num& x, DType) { return R(std::ceil(x.z.real())); });
  t["round"] = unary(kF, Out::Same, Tier::Exact, Gen{.specials = true, .halves = true},
                     [](const Num& x, DType) { return R(round_half_even(x.z.real())); });
  t["logical_not"] = unary(kB, Out::Same, Tier::Exact, {}, [](const Num& x, DType) { return B(x.i == 0); });

  const Gen any{};
  t["add"] = binary(kNum, Out::Same, Tier::Rounded, sp, any,
                    num2([](Int128 a, Int128 b) { return I(a + b); }, [](auto a, auto b) { return R(a + b); }));
  t["subtract"] = binary(kNum, Out::Same, Tier::Rounded, sp, any,
                         num2([](Int128 a, Int128 b) { return I(a - b); }, [](auto a, auto b) { return R(a - b); }));
  t["multiply"] =
      binary(kNum, Out::Same, Tier::Rounded, sp, any,
             num2([](Int128 a, Int128 b) { return I(mul_wrap(a, b)); }, [](auto a, auto b) { return R(a * b); }));
  // divisors away from zero (integers: no zero at all)
  const Gen divisor{.lo = -4, .hi = 4, .clo = 0.5, .chi = 2, .min_abs = 0.5};
  t["divide"] = binary(kNum, Out::Float, Tier::Rounded, sp, divisor,
                       num2([](Int128 a, Int128 b) { return R(static_cast<double>(a) / static_cast<double>(b)); },
                            [](auto a, auto b) { return R(a / b); }));
  // small integer divisors, with -1 first so that min / -1 is covered (x's edges put min first)
  const Gen int_divisor{
      .lo = -4, .hi = 4, .int_full = false, .int_lo = -20, .int_hi = 20, .min_abs = 0.5, .first = {-1, -1, 1, -1, 3}};
  t["floordiv"] = binary(kReal, Out::Same, Tier::Rounded, sp, int_divisor,
                         real2([](Int128 a, Int128 b) { return I(floor_div(a, b)); },
                               [](double a, double b) { return R(std::floor(a / b)); }));
  t["mod"] = binary(kReal, Out::Same, Tier::Rounded, sp, int_divisor,
                    real2([](Int128 a, Int128 b) { return I(floor_mod(a, b)); },
                          [](double a, double b) {
                            double r = std::fmod(a, b);
                            if (r != 0 && ((r < 0) != (b < 0))) r += b;
                            return R(r);
                          }));
  t["pow"] = binary(kNum, Out::Same, Tier::Approx, Gen{.lo = 0.2, .hi = 3, .clo = 0.2, .chi = 2},
                    Gen{.lo = -3, .hi = 3, .clo = -1, .chi = 1, .int_full = false, .int_lo = 0, .int_hi = 20},
                    num2(
                        [](Int128 a, Int128 b) {
                          Int128 r = 1;
                          for (Int128 k = 0; k < b; ++k) r = mul_wrap(r, a);
                          return I(r);
                        },
                        [](auto a, auto b) { return R(std::pow(a, b)); }));
  t["maximum"] = binary(
      kReal, Out::Same, Tier::Exact, sp, any,
      real2([](Int128 a, Int128 b) { return I(std::max(a, b)); }, [](double a, double b) { return R(nan_max(a, b)); }));
  t["minimum"] = binary(
      kReal, Out::Same, Tier::Exact, sp, any,
      real2([](Int128 a, Int128 b) { return I(std::min(a, b)); }, [](double a, double b) { return R(nan_min(a, b)); }));
  // comparisons: small values with many ties (and NaN/inf first in x)
  const Gen cx{.lo = -2,
               .hi = 2,
               .clo = -1,
               .chi = 1,
               .int_full = false,
               .int_lo = -3,
               .int_hi = 3,
               .specials = true,
               .halves = true};
  const Gen cy{.lo = -2, .hi = 2, .clo = -1, .chi = 1, .int_full = false, .int_lo = -3, .int_hi = 3, .halves = true};
  t["equal"] = binary(kAll, Out::Bool, Tier::Exact, cx, cy,
                      num2([](Int128 a, Int128 b) { return B(a == b); }, [](auto a, auto b) { return B(a == b); }));
  t["not_equal"] = binary(kAll, Out::Bool, Tier::Exact, cx, cy,
                          num2([](Int128 a, Int128 b) { return B(a != b); }, [](auto a, auto b) { return B(a != b); }));
  t["less"] = binary(kReal, Out::Bool, Tier::Exact, cx, cy,
                     real2([](Int128 a, Int128 b) { return B(a < b); }, [](double a, double b) { return B(a < b); }));
  t["less_equal"] =
      binary(kReal, Out::Bool, Tier::Exact, cx, cy,
             real2([](Int128 a, Int128 b) { return B(a <= b); }, [](double a, double b) { return B(a <= b); }));
  t["greater"] =
      binary(kReal, Out::Bool, Tier::Exact, cx, cy,
             real2([](Int128 a, Int128 b) { return B(a > b); }, [](double a, double b) { return B(a > b); }));
  t["greater_equal"] =
      binary(kReal, Out::Bool, Tier::Exact, cx, cy,
             real2([](Int128 a, Int128 b) { return B(a >= b); }, [](double a, double b) { return B(a >= b); }));
  auto no_real = [](double, double) { return Num{}; };
  t["logical_and"] =
      binary(kB, Out::Same, Tier::Exact, any, any, real2([](Int128 a, Int128 b) { return B(a && b); }, no_real));
  t["logical_or"] =
      binary(kB, Out::Same, Tier::Exact, any, any, real2([](Int128 a, Int128 b) { return B(a || b); }, no_real));
  t["logical_xor"] = binary(kB, Out::Same, Tier::Exact, any, any,
                            real2([](Int128 a, Int128 b) { return B((a != 0) != (b != 0)); }, no_real));

  // where(cond, x, y): all three broadcast together
  struct Tri {
    Shape c, x, y;
  };
  const std::vector<Tri> tri = {{{}, {}, {}},
                                {{0}, {0}, {0}},
                                {{7}, {7}, {7}},
                                {{3, 1}, {4}, {}},
                                {{}, {2, 3}, {2, 3}},
                                {{2, 1, 3}, {5, 1}, {3}},
                                {{0, 3}, {1, 3}, {3}},
                                {{130, 260}, {130, 260}, {130, 260}},
                                {{130, 1}, {1, 260}, {260}}};
  t["where"] = {
      kAll, [tri](const std::string& op, DType dt, bool) {
        std::vector<Case> cases;
        uint64_t seed = 3000;
        for (const Tri& s : tri) {
          Host c = random_host(bool_, s.c, seed++), x = random_host(dt, s.x, seed++), y = random_host(dt, s.y, seed++);
          cases.push_back(op_case(s.c.to_string() + ", " + s.x.to_string() + ", " + s.y.to_string(), op, {},
                                  {from_host(c), from_host(x), from_host(y)}, [=] {
                                    Host out = make_host(dt, bshape(bshape(s.c, s.x), s.y));
                                    for_each_index(out.shape, [&](const I64s& idx, int64_t k) {
                                      out.v[k] = c.v[bsrc(idx, s.c)].i ? x.v[bsrc(idx, s.x)] : y.v[bsrc(idx, s.y)];
                                    });
                                    return Refs{out};
                                  }));
        }
        return cases;
      }};
}

// ---------------------------------------------------------------------------------------------
// cast: every pair of dtypes against ops.h's rules — floats to integers truncate toward zero and
// saturate (NaN to 0), integers to integers wrap, complex to real keeps the real part, anything
// to bool tests != 0; 16-bit floats round through float32 (as Eigen does).

int int_bits(DType d) { return 8 * dtype_size(d); }

Int128 float_to_int(double d, DType to) {
  if (std::isnan(d)) return 0;
  const double t = std::trunc(d);
  const double hi = std::ldexp(1.0, int_bits(to) - (is_signed_integer(to) ? 1 : 0));  // max + 1
  if (t >= hi) return int_max(to);
  if (t < static_cast<double>(int_min(to))) return int_min(to);
  return static_cast<Int128>(t);
}

// An integer of dtype `from` converted to V the way C++ converts int64/uint64.
template <class V>
V int_to(Int128 v, DType from) {
  return is_unsigned_integer(from) ? static_cast<V>(static_cast<uint64_t>(v)) : static_cast<V>(static_cast<int64_t>(v));
}

Num cast_num(const Num& x, DType from, DType to) {
  if (to == bool_) return B(is_inexact(from) ? x.z != C(0) : x.i != 0);
  if (!is_inexact(from)) {  // bool and integers
    if (is_integer(to)) return int_num(x.i, to);
    switch (to) {
      case DType::Float16:
        return R(static_cast<float>(Half(int_to<float>(x.i, from))));
      case DType::BFloat16:
        return R(static_cast<float>(BFloat16(int_to<float>(x.i, from))));
      case DType::Float32:
      case DType::Complex64:
        return R(as_float32(int_to<float>(x.i, from)));
      default:
        return R(int_to<double>(x.i, from));
    }
  }
  const double re = x.z.real(), im = is_complex(from) ? x.z.imag() : 0.0;
  if (is_integer(to)) return I(float_to_int(re, to));
  switch (to) {
    case DType::Float16:
      return R(static_cast<float>(Half(static_cast<float>(re))));
    case DType::BFloat16:
      return R(static_cast<float>(BFloat16(static_cast<float>(re))));
    case DType::Float32:
      return R(as_float32(re));
    case DType::Float64:
      return R(re);
    case DType::Complex64:
      return R({as_float32(re), as_float32(im)});
    default:
      return R({re, im});
  }
}

// Values of `src` that probe truncation, saturation, wrapping, rounding and NaN/inf.
Host cast_sources(DType src) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> reals = {0,
                                     -0.0,
                                     0.4,
                                     -0.4,
                                     0.5,
                                     -0.5,
                                     0.9999,
                                     1,
                                     -1,
                                     1.5,
                                     -1.5,
                                     2.5,
                                     -2.7,
                                     100.7,
                                     127.5,
                                     128,
                                     -128.9,
                                     -129,
                                     255.9,
                                     256,
                                     -300,
                                     32767.7,
                                     32768,
                                     -32769,
                                     65504,
                                     65519,
                                     65520,
                                     70000,
                                     -70000,
                                     2147483647.5,
                                     2147483648.0,
                                     -2147483649.0,
                                     4294967295.5,
                                     4294967296.0,
                                     16777217,
                                     1e10,
                                     -1e10,
                                     9.2e18,
                                     9223372036854775808.0,
                                     -9223372036854775808.0,
                                     -9.3e18,
                                     1.8e19,
                                     18446744073709551616.0,
                                     1e20,
                                     -1e20,
                                     3.4e38,
                                     1e300,
                                     1e-40,
                                     3e-8,
                                     inf,
                                     -inf,
                                     nan};
  const std::vector<Int128> ints = {0,
                                    1,
                                    -1,
                                    127,
                                    128,
                                    255,
                                    256,
                                    -129,
                                    -128,
                                    32767,
                                    32768,
                                    65535,
                                    65536,
                                    -32769,
                                    2147483647,
                                    2147483648LL,
                                    4294967295LL,
                                    4294967296LL,
                                    16777217,
                                    123456789,
                                    -987654321,
                                    (Int128(1) << 53) + 1,
                                    (Int128(1) << 62) + 12345,
                                    (Int128(1) << 63) - 1,
                                    -(Int128(1) << 63),
                                    (Int128(1) << 64) - 1,
                                    (Int128(1) << 63) + 777};
  const std::vector<double> imags = {0, 1.5, -2.25, 0, 1e-3};
  if (src == bool_) {
    Host h = make_host(src, {6});
    for (int64_t k = 0; k < 6; ++k) h.v[k] = B(k % 3 != 0);
    return h;
  }
  if (is_integer(src)) {
    Host h = make_host(src, {static_cast<int64_t>(ints.size()) + 2});
    h.v[0] = int_num(int_min(src), src);
    h.v[1] = int_num(int_max(src), src);
    for (size_t k = 0; k < ints.size(); ++k) h.v[k + 2] = int_num(ints[k], src);
    return h;
  }
  Host h = make_host(src, {static_cast<int64_t>(reals.size())});
  for (size_t k = 0; k < reals.size(); ++k) h.v[k] = round_to(R({reals[k], imags[k % imags.size()]}), src);
  return h;
}

OpSpec cast_spec() {
  return {kAll, [](const std::string& op, DType src, bool big) {
            std::vector<Case> cases;
            const Host vals = cast_sources(src);
            Host scalar = make_host(src, {});
            scalar.v[0] = vals.v[vals.size() - 1];
            const Host empty = make_host(src, {2, 0});
            const Host grid = random_host(src, {4, 5}, 4000, Gen{.lo = -300, .hi = 300});
            Host large;
            if (big) large = random_host(src, {33000}, 4001, Gen{.lo = -1e5, .hi = 1e5, .clo = -1e5, .chi = 1e5});
            for (DType to : kAllDTypes) {
              std::vector<const Host*> inputs = {&vals, &scalar, &empty, &grid};
              if (big && runs_big_cases(to)) inputs.push_back(&large);
              for (const Host* h : inputs) {
                const Host x = *h;
                cases.push_back(op_case(std::string("to ") + std::string(dtype_name(to)) + " " + x.shape.to_string(),
                                        op, Attrs{{"dtype", to}}, {from_host(x)}, [x, to] {
                                          Host y = make_host(to, x.shape);
                                          for (int64_t k = 0; k < y.size(); ++k) y.v[k] = cast_num(x.v[k], x.dtype, to);
                                          return Refs{y};
                                        }));
              }
            }
            return cases;
          }};
}

// ---------------------------------------------------------------------------------------------
// Reductions and argmax/argmin

enum class Red { Sum, Mean, Max, Min, Prod, Any, All };

struct RedCase {
  Shape shape;
  I64s axes;
  bool keepdims;
};

const std::vector<RedCase> kRedCases = {{{}, {}, false},
                                        {{7}, {0}, false},
                                        {{7}, {-1}, true},
                                        {{3, 4}, {1}, false},
                                        {{3, 4}, {0}, true},
                                        {{3, 4}, {0, 1}, false},
                                        {{2, 3, 4}, {0, 2}, false},
                                        {{2, 3, 4}, {-2}, true},
                                        {{2, 3, 4}, {}, false},
                                        {{2, 1, 3}, {1}, false},
                                        {{2, 3, 4}, {2, 0, 1}, true},
                                        {{0, 3}, {1}, false},
                                        {{2, 0}, {1}, false},
                                        {{0, 3}, {0}, true},
                                        {{2, 0, 3}, {0, 2}, false},
                                        {{3, 700}, {1}, false},
                                        {{4, 40, 130}, {1}, false},
                                        {{140000}, {0}, false},
                                        {{45000, 3}, {0}, false},
                                        {{5, 600, 7}, {0, 2}, true}};

std::vector<bool> reduced_mask(const Shape& s, const I64s& axes) {
  std::vector<bool> m(size_t(s.rank()), false);
  for (int64_t a : axes) m[size_t(a < 0 ? a + s.rank() : a)] = true;
  return m;
}

Host reduce_ref(const Host& x, const I64s& axes, bool keepdims, Red kind) {
  const Shape& s = x.shape;
  const auto red = reduced_mask(s, axes);
  Shape os;
  int64_t n = 1;
  for (int64_t i = 0; i < s.rank(); ++i) {
    if (!red[size_t(i)])
      os.push_back(s.dim(size_t(i)));
    else if (keepdims)
      os.push_back(1);
    if (red[size_t(i)]) n *= s.dim(size_t(i));
  }
  Shape kept;  // the output index space without kept size-1 dims
  for (int64_t i = 0; i < s.rank(); ++i)
    if (!red[size_t(i)]) kept.push_back(s.dim(size_t(i)));
  const DType d = x.dtype;
  const size_t m = size_t(kept.num_elements());
  std::vector<Int128> isum(m, 0);
  std::vector<UInt128> iprod(m, 1);
  std::vector<C> fsum(m, 0.0), fprod(m, 1.0);
  std::vector<double> abs_sum(m, 0.0);
  std::vector<Num> best(m);
  std::vector<bool> seen(m, false);
  for_each_index(s, [&](const I64s& idx, int64_t k) {
    int64_t o = 0;
    for (int64_t i = 0; i < s.rank(); ++i)
      if (!red[size_t(i)]) o = o * s.dim(size_t(i)) + idx[size_t(i)];
    const Num& v = x.v[size_t(k)];
    isum[o] += v.i;
    iprod[o] *= static_cast<UInt128>(v.i);
    fsum[o] += v.z;
    fprod[o] *= v.z;
    abs_sum[o] += std::abs(v.z);
    const bool better = is_inexact(d)
                            ? (kind == Red::Max ? v.z.real() > best[o].z.real() : v.z.real() < best[o].z.real())
                            : (kind == Red::Max ? v.i > best[o].i : v.i < best[o].i);
    if (!seen[o] || better) best[o] = v;
    seen[o] = true;
  });
  Host y = make_host(kind == Red::Any || kind == Red::All ? bool_ : d, os);
  if (kind == Red::Sum || kind == Red::Mean) y.scale.resize(m);
  for (size_t o = 0; o < m; ++o) {
    Num r;
    switch (kind) {
      case Red::Sum:
        r = is_inexact(d) ? R(fsum[o]) : I(isum[o]);
        y.scale[o] = abs_sum[o];
        break;
      case Red::Mean:
        // integers: the truncated mean of the exact sum; an empty mean is 0 (integers) or NaN
        if (is_inexact(d))
          r = n ? R(fsum[o] / static_cast<double>(n)) : R(C(NAN, is_complex(d) ? NAN : 0.0));
        else
          r = I(n ? isum[o] / n : 0);
        y.scale[o] = n ? abs_sum[o] / static_cast<double>(n) : 0;
        break;
      case Red::Prod:
        r = is_inexact(d) ? R(fprod[o]) : I(static_cast<Int128>(iprod[o]));
        break;
      case Red::Max:
      case Red::Min:
        r = best[o];
        break;
      case Red::Any:
        r = B(isum[o] != 0);
        break;
      case Red::All:
        r = B(isum[o] == n);
        break;
    }
    y.v[o] = round_to(r, y.dtype);
  }
  return y;
}

OpSpec reduce_spec(unsigned accepts, Red kind, Gen gen) {
  return {accepts, [=](const std::string& op, DType dt, bool big) {
            std::vector<Case> cases;
            uint64_t seed = 5000;
            for (const RedCase& rc : kRedCases) {
              if (!big && rc.shape.num_elements() > kSmall) continue;
              const auto red = reduced_mask(rc.shape, rc.axes);
              bool empty_axis = false;
              for (int64_t i = 0; i < rc.shape.rank(); ++i)
                empty_axis |= red[size_t(i)] && rc.shape.dim(size_t(i)) == 0;
              // max and min of an empty axis have no answer (an error, tested in test_bad_inputs)
              if ((kind == Red::Max || kind == Red::Min) && empty_axis) continue;
              // long products leave every dtype's range; they add nothing over the short ones
              if (kind == Red::Prod && rc.shape.num_elements() > 1000) continue;
              Host x = random_host(dt, rc.shape, seed++, gen);
              const bool exact = kind == Red::Max || kind == Red::Min || kind == Red::Any || kind == Red::All;
              cases.push_back(op_case(
                  rc.shape.to_string() + " axes " + list_string(rc.axes) + (rc.keepdims ? " keepdims" : ""), op,
                  Attrs{{"axes", rc.axes}, {"keepdims", rc.keepdims}}, {from_host(x)},
                  [=] { return Refs{reduce_ref(x, rc.axes, rc.keepdims, kind)}; }, exact ? Tier::Exact : Tier::Approx));
            }
            return cases;
          }};
}

// sum_to_like: the axes along which `like` broadcasts to x's shape (NumPy rules: x's leading
// axes that like lacks, and like's size-1 axes where x's size is not 1) summed away, keeping
// like's shape. The inverse of broadcast_like.
OpSpec sum_to_like_spec() {
  const Gen sums{.lo = -2, .hi = 2, .clo = -1, .chi = 1};
  return {kNum, [=](const std::string& op, DType dt, bool big) {
            const std::vector<std::pair<Shape, Shape>> ss = {{{}, {}},
                                                             {{2, 3}, {}},
                                                             {{2, 3}, {3}},
                                                             {{2, 3}, {2, 1}},
                                                             {{2, 3}, {1, 1}},
                                                             {{2, 3, 4}, {3, 1}},
                                                             {{4, 1, 3}, {1, 3}},
                                                             {{4, 1, 3}, {1, 1, 3}},
                                                             {{2, 3}, {2, 3}},
                                                             {{5}, {1}},
                                                             {{0, 3}, {3}},
                                                             {{2, 0}, {2, 1}},
                                                             {{0, 3}, {0, 3}},
                                                             {{2, 0, 3}, {0, 1}},
                                                             {{0}, {}},
                                                             {{200, 300}, {300}},
                                                             {{300, 200}, {300, 1}},
                                                             {{4, 40, 130}, {40, 1}},
                                                             {{140000}, {1}}};
            std::vector<Case> cases;
            uint64_t seed = 9500;
            for (size_t i = 0; i < ss.size(); ++i) {
              const Shape s = ss[i].first, like = ss[i].second;
              if (!big && s.num_elements() > kSmall) continue;
              I64s axes;
              const int64_t lead = s.rank() - like.rank();
              for (int64_t a = 0; a < s.rank(); ++a)
                if (a < lead || (like.dim(size_t(a - lead)) == 1 && s.dim(size_t(a)) != 1)) axes.push_back(a);
              Host x = random_host(dt, s, seed++, sums);
              const DType like_dt = i % 3 == 0 ? dt : i % 3 == 1 ? int32 : bool_;
              cases.push_back(op_case(
                  s.to_string() + " like " + like.to_string() + " (" + std::string(dtype_name(like_dt)) + ")", op, {},
                  {from_host(x), from_host(random_host(like_dt, like, seed++))},
                  [x, axes, like] {
                    Host y = reduce_ref(x, axes, true, Red::Sum);
                    y.shape = like;
                    return Refs{y};
                  },
                  Tier::Approx));
            }
            return cases;
          }};
}

Host arg_ref(const Host& x, int64_t axis, DType out_type, bool is_max) {
  const Shape& s = x.shape;
  if (axis < 0) axis += s.rank();
  Shape os;
  for (int64_t i = 0; i < s.rank(); ++i)
    if (i != axis) os.push_back(s.dim(size_t(i)));
  Host y = make_host(out_type, os);
  const int64_t n = s.dim(size_t(axis));
  for_each_index(os, [&](const I64s& o, int64_t k) {
    I64s idx(o.begin(), o.begin() + axis);
    idx.push_back(0);
    idx.insert(idx.end(), o.begin() + axis, o.end());
    int64_t best = 0;
    Num bv = x.v[size_t(ravel(idx, s))];
    for (int64_t j = 1; j < n; ++j) {
      idx[size_t(axis)] = j;
      const Num& v = x.v[size_t(ravel(idx, s))];
      const bool better = is_inexact(x.dtype) ? (is_max ? v.z.real() > bv.z.real() : v.z.real() < bv.z.real())
                                              : (is_max ? v.i > bv.i : v.i < bv.i);
      if (better) {
        best = j;
        bv = v;
      }
    }
    y.v[size_t(k)] = int_num(best, out_type);
  });
  return y;
}

OpSpec arg_spec(bool is_max) {
  struct ArgCase {
    Shape shape;
    int64_t axis;
    DType out;
  };
  const std::vector<ArgCase> arg_cases = {{{7}, 0, int64},        {{3, 4}, 1, int64},    {{3, 4}, 0, int32},
                                          {{3, 4}, -1, int32},    {{2, 3, 4}, 1, int64}, {{0, 3}, 1, int64},
                                          {{3, 600}, 1, int64},   {{700, 3}, 0, int32},  {{140000}, 0, int64},
                                          {{45000, 3}, 0, int64}, {{2, 1, 5}, -2, int32}};
  // many ties: the first index of the extreme value wins
  const Gen gen{.lo = -3, .hi = 3, .int_full = false, .int_lo = -5, .int_hi = 5, .halves = true};
  return {kB | kReal, [=](const std::string& op, DType dt, bool big) {
            std::vector<Case> cases;
            uint64_t seed = 6000;
            for (const ArgCase& ac : arg_cases) {
              if (!big && ac.shape.num_elements() > kSmall) continue;
              Host x = random_host(dt, ac.shape, seed++, gen);
              cases.push_back(op_case(
                  ac.shape.to_string() + " axis " + std::to_string(ac.axis) + " " + std::string(dtype_name(ac.out)), op,
                  Attrs{{"axis", ac.axis}, {"output_type", ac.out}}, {from_host(x)},
                  [=] { return Refs{arg_ref(x, ac.axis, ac.out, is_max)}; }));
            }
            return cases;
          }};
}

// ---------------------------------------------------------------------------------------------
// matmul

Host matmul_ref(const Host& a, const Host& b, bool ta, bool tb) {
  const Shape &sa = a.shape, &sb = b.shape;
  const int64_t ra = sa.rank(), rb = sb.rank();
  const int64_t M = ta ? sa.dim(size_t(ra - 1)) : sa.dim(size_t(ra - 2));
  const int64_t K = ta ? sa.dim(size_t(ra - 2)) : sa.dim(size_t(ra - 1));
  const int64_t N = tb ? sb.dim(size_t(rb - 2)) : sb.dim(size_t(rb - 1));
  const Shape ba(std::span<const int64_t>(sa.dims().data(), size_t(ra - 2)));
  const Shape bb(std::span<const int64_t>(sb.dims().data(), size_t(rb - 2)));
  const Shape batch = bshape(ba, bb);
  Shape os = batch;
  os.push_back(M);
  os.push_back(N);
  Host y = make_host(a.dtype, os);
  y.scale.resize(size_t(y.size()));
  for_each_index(batch, [&](const I64s& bi, int64_t bk) {
    const int64_t oa = bsrc(bi, ba) * M * K, ob = bsrc(bi, bb) * K * N, oc = bk * M * N;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        UInt128 iacc = 0;
        C facc = 0;
        double scale = 0;
        for (int64_t k = 0; k < K; ++k) {
          const Num& x = a.v[size_t(oa + (ta ? k * M + i : i * K + k))];
          const Num& w = b.v[size_t(ob + (tb ? j * K + k : k * N + j))];
          iacc += static_cast<UInt128>(x.i) * static_cast<UInt128>(w.i);
          facc += x.z * w.z;
          scale += std::abs(x.z) * std::abs(w.z);
        }
        const size_t o = size_t(oc + i * N + j);
        y.v[o] = round_to(is_inexact(a.dtype) ? R(facc) : I(static_cast<Int128>(iacc)), a.dtype);
        y.scale[o] = scale;
      }
  });
  return y;
}

OpSpec matmul_spec() {
  struct MM {
    Shape a, b;
    bool ta, tb;
  };
  const std::vector<MM> mm = {{{2, 3}, {3, 4}, false, false},          {{3, 2}, {3, 4}, true, false},
                              {{2, 3}, {4, 3}, false, true},           {{3, 2}, {4, 3}, true, true},
                              {{1, 1}, {1, 1}, false, false},          {{2, 2, 3}, {2, 3, 4}, false, false},
                              {{3, 1, 2, 3}, {4, 3, 5}, false, false}, {{2, 5, 3}, {3, 4}, false, false},
                              {{2, 0}, {0, 3}, false, false},          {{0, 3}, {3, 2}, false, false},
                              {{2, 3, 0}, {2, 0, 5}, false, false},    {{33, 70}, {70, 40}, false, false},
                              {{70, 33}, {40, 70}, true, true},        {{2, 65, 20}, {20, 17}, false, false}};
  const Gen gen{.lo = -1, .hi = 1, .clo = -1, .chi = 1};
  return {kNum, [=](const std::string& op, DType dt, bool big) {
            std::vector<Case> cases;
            uint64_t seed = 7000;
            for (const MM& m : mm) {
              if (!big && std::max(m.a.num_elements(), m.b.num_elements()) > kSmall) continue;
              Host a = random_host(dt, m.a, seed++, gen), b = random_host(dt, m.b, seed++, gen);
              cases.push_back(op_case(
                  m.a.to_string() + (m.ta ? "^T" : "") + " x " + m.b.to_string() + (m.tb ? "^T" : ""), op,
                  Attrs{{"transpose_a", m.ta}, {"transpose_b", m.tb}}, {from_host(a), from_host(b)},
                  [=] { return Refs{matmul_ref(a, b, m.ta, m.tb)}; }, Tier::Approx));
            }
            return cases;
          }};
}

// ---------------------------------------------------------------------------------------------
// Convolution and pooling (NHWC), restated from TensorFlow's definitions

// One spatial axis: output size and padding before the first window (SAME: ceil(in / stride)
// outputs, half the padding before; VALID: windows inside the input).
struct Win {
  int64_t out, pad;
};
Win win(int64_t in, int64_t taps, int64_t stride, int64_t dilation, bool same) {
  const int64_t window = (taps - 1) * dilation + 1;
  if (!same) return {(in - window) / stride + 1, 0};
  const int64_t out = (in + stride - 1) / stride;
  return {out, std::max<int64_t>((out - 1) * stride + window - in, 0) / 2};
}

struct ConvGeo {
  int64_t n, h, w, c, kh, kw, o, sh, sw, dh, dw;
  Win y, x;
};

ConvGeo conv_geo(const Shape& x, const Shape& f, const I64s& s, const I64s& d, bool same) {
  ConvGeo g{x.dim(0), x.dim(1), x.dim(2), x.dim(3), f.dim(0), f.dim(1), f.dim(3), s[0], s[1], d[0], d[1], {}, {}};
  g.y = win(g.h, g.kh, g.sh, g.dh, same);
  g.x = win(g.w, g.kw, g.sw, g.dw, same);
  return g;
}

// Calls term(x_flat, f_flat, y_flat) for every product x * f that conv2d sums into y.
template <class F>
void conv_terms(const ConvGeo& g, F&& term) {
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t oy = 0; oy < g.y.out; ++oy)
      for (int64_t ox = 0; ox < g.x.out; ++ox)
        for (int64_t ky = 0; ky < g.kh; ++ky)
          for (int64_t kx = 0; kx < g.kw; ++kx) {
            const int64_t iy = oy * g.sh - g.y.pad + ky * g.dh, ix = ox * g.sw - g.x.pad + kx * g.dw;
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
            for (int64_t c = 0; c < g.c; ++c)
              for (int64_t o = 0; o < g.o; ++o)
                term(((n * g.h + iy) * g.w + ix) * g.c + c, ((ky * g.kw + kx) * g.c + c) * g.o + o,
                     ((n * g.y.out + oy) * g.x.out + ox) * g.o + o);
          }
}

// Sums a * b into out[k] over the terms that `pick` selects, with the sum of |a * b| as scale.
enum class ConvOut { Y, DX, DF };
Host conv_sum(const ConvGeo& g, ConvOut which, const Host& a, const Host& b, DType dt, const Shape& out_shape) {
  Host y = make_host(dt, out_shape);
  std::vector<C> acc(size_t(y.size()));
  y.scale.assign(size_t(y.size()), 0.0);
  conv_terms(g, [&](int64_t xi, int64_t fi, int64_t yi) {
    // forward: a = x, b = f; backprop input: a = f, b = dy; backprop filter: a = x, b = dy
    const C p = which == ConvOut::Y    ? a.v[size_t(xi)].z * b.v[size_t(fi)].z
                : which == ConvOut::DX ? a.v[size_t(fi)].z * b.v[size_t(yi)].z
                                       : a.v[size_t(xi)].z * b.v[size_t(yi)].z;
    const int64_t k = which == ConvOut::Y ? yi : which == ConvOut::DX ? xi : fi;
    acc[size_t(k)] += p;
    y.scale[size_t(k)] += std::abs(p);
  });
  for (int64_t k = 0; k < y.size(); ++k) y.v[size_t(k)] = round_to(R(acc[size_t(k)]), dt);
  return y;
}

Shape conv_out_shape(const ConvGeo& g) { return {g.n, g.y.out, g.x.out, g.o}; }

struct ConvCase {
  Shape x, f;
  I64s strides, dilations;
  std::string padding;
};

const std::vector<ConvCase>& conv_cases() {
  static const std::vector<ConvCase> cs = {
      {{1, 5, 5, 1}, {3, 3, 1, 1}, {1, 1}, {1, 1}, "VALID"},  {{2, 5, 6, 3}, {3, 2, 3, 4}, {1, 1}, {1, 1}, "SAME"},
      {{2, 7, 6, 2}, {3, 3, 2, 3}, {2, 2}, {1, 1}, "SAME"},   {{1, 7, 7, 2}, {2, 3, 2, 2}, {2, 3}, {1, 1}, "VALID"},
      {{1, 8, 7, 2}, {3, 3, 2, 2}, {1, 1}, {2, 2}, "SAME"},   {{2, 9, 8, 1}, {2, 2, 1, 3}, {1, 2}, {2, 3}, "VALID"},
      {{1, 2, 2, 1}, {5, 5, 1, 2}, {1, 1}, {1, 1}, "SAME"},   {{0, 4, 4, 2}, {3, 3, 2, 2}, {1, 1}, {1, 1}, "SAME"},
      {{1, 4, 4, 0}, {3, 3, 0, 2}, {1, 1}, {1, 1}, "SAME"},   {{1, 4, 4, 2}, {3, 3, 2, 0}, {1, 1}, {1, 1}, "SAME"},
      {{1, 0, 3, 1}, {1, 1, 1, 1}, {1, 1}, {1, 1}, "SAME"},   {{2, 16, 16, 8}, {3, 3, 8, 8}, {1, 1}, {1, 1}, "SAME"},
      {{1, 20, 20, 4}, {5, 5, 4, 6}, {2, 2}, {1, 1}, "VALID"}};
  return cs;
}

std::string conv_what(const ConvCase& c) {
  return c.x.to_string() + " * " + c.f.to_string() + " strides " + list_string(c.strides) + " dilations " +
         list_string(c.dilations) + " " + c.padding;
}

Attrs conv_case_attrs(const ConvCase& c) {
  return Attrs{{"strides", c.strides}, {"padding", c.padding}, {"dilations", c.dilations}};
}

// conv2d and its two backprops over the same geometries; `which` picks the op.
OpSpec conv_spec(ConvOut which) {
  const Gen gen{.lo = -1, .hi = 1};
  return {kF, [=](const std::string& op, DType dt, bool big) {
            std::vector<Case> cases;
            uint64_t seed = 9100 + 100 * uint64_t(which);
            for (const ConvCase& c : conv_cases()) {
              const ConvGeo g = conv_geo(c.x, c.f, c.strides, c.dilations, c.padding == "SAME");
              const Shape ys = conv_out_shape(g);
              if (!big && std::max({c.x.num_elements(), ys.num_elements(), c.f.num_elements()}) > kSmall) continue;
              Attrs attrs = conv_case_attrs(c);
              if (which == ConvOut::Y) {
                Host x = random_host(dt, c.x, seed++, gen), f = random_host(dt, c.f, seed++, gen);
                cases.push_back(op_case(
                    conv_what(c), op, attrs, {from_host(x), from_host(f)},
                    [=] { return Refs{conv_sum(g, which, x, f, dt, ys)}; }, Tier::Approx));
              } else if (which == ConvOut::DX) {
                Host f = random_host(dt, c.f, seed++, gen), dy = random_host(dt, ys, seed++, gen);
                // batch and channels may be left to the operands
                attrs.set("input_sizes", seed % 2 ? c.x.as_list() : I64s{-1, c.x.dim(1), c.x.dim(2), -1});
                cases.push_back(op_case(
                    conv_what(c), op, attrs, {from_host(f), from_host(dy)},
                    [=] { return Refs{conv_sum(g, which, f, dy, dt, c.x)}; }, Tier::Approx));
              } else {
                Host x = random_host(dt, c.x, seed++, gen), dy = random_host(dt, ys, seed++, gen);
                attrs.set("filter_sizes", seed % 2 ? c.f.as_list() : I64s{c.f.dim(0), c.f.dim(1), -1, -1});
                cases.push_back(op_case(
                    conv_what(c), op, attrs, {from_host(x), from_host(dy)},
                    [=] { return Refs{conv_sum(g, which, x, dy, dt, c.f)}; }, Tier::Approx));
              }
            }
            return cases;
          }};
}

struct PoolCase {
  Shape x;
  I64s ksize, strides;
  std::string padding;
};

const std::vector<PoolCase>& pool_cases() {
  static const std::vector<PoolCase> cs = {
      {{1, 4, 4, 1}, {2, 2}, {2, 2}, "VALID"},  {{2, 5, 5, 3}, {3, 3}, {2, 2}, "SAME"},
      {{1, 5, 7, 2}, {2, 3}, {1, 2}, "VALID"},  {{2, 6, 5, 2}, {3, 3}, {1, 1}, "SAME"},
      {{1, 3, 3, 1}, {5, 5}, {1, 1}, "SAME"},   {{1, 3, 4, 1}, {100, 1}, {1, 1}, "SAME"},
      {{0, 4, 4, 2}, {2, 2}, {2, 2}, "VALID"},  {{1, 4, 4, 0}, {2, 2}, {2, 2}, "SAME"},
      {{1, 0, 4, 2}, {2, 2}, {1, 1}, "SAME"},   {{2, 32, 32, 4}, {3, 3}, {2, 2}, "SAME"},
      {{1, 40, 30, 3}, {2, 2}, {2, 2}, "VALID"}};
  return cs;
}

struct PoolGeo {
  int64_t n, h, w, c, kh, kw, sh, sw;
  Win y, x;
};
PoolGeo pool_geo(const PoolCase& p) {
  const bool same = p.padding == "SAME";
  PoolGeo g{p.x.dim(0), p.x.dim(1), p.x.dim(2), p.x.dim(3), p.ksize[0], p.ksize[1], p.strides[0], p.strides[1], {}, {}};
  g.y = win(g.h, g.kh, g.sh, 1, same);
  g.x = win(g.w, g.kw, g.sw, 1, same);
  return g;
}
Shape pool_out_shape(const PoolGeo& g) { return {g.n, g.y.out, g.x.out, g.c}; }

// Calls f(out_flat, inputs) with the flat input positions of each output's window (inside the
// input, row-major).
template <class F>
void pool_windows(const PoolGeo& g, F&& f) {
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t oy = 0; oy < g.y.out; ++oy)
      for (int64_t ox = 0; ox < g.x.out; ++ox)
        for (int64_t c = 0; c < g.c; ++c) {
          I64s in;
          for (int64_t ky = 0; ky < g.kh; ++ky)
            for (int64_t kx = 0; kx < g.kw; ++kx) {
              const int64_t iy = oy * g.sh - g.y.pad + ky, ix = ox * g.sw - g.x.pad + kx;
              if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) in.push_back(((n * g.h + iy) * g.w + ix) * g.c + c);
            }
          f(((n * g.y.out + oy) * g.x.out + ox) * g.c + c, in);
        }
}

// The position of a window's maximum: the first one, or the first NaN.
int64_t max_position(const Host& x, const I64s& in) {
  const bool fl = is_floating(x.dtype);
  int64_t best = in[0];
  for (int64_t k : in) {
    const Num &v = x.v[size_t(k)], &b = x.v[size_t(best)];
    const bool better =
        fl ? (v.z.real() > b.z.real() || (std::isnan(v.z.real()) && !std::isnan(b.z.real()))) : v.i > b.i;
    if (better) best = k;
  }
  return best;
}

enum class Pool { Max, Avg, MaxGrad, MaxGradGrad, AvgGrad };

OpSpec pool_spec(Pool kind) {
  const unsigned accepts = kind == Pool::Max ? kReal : kF;
  return {accepts, [=](const std::string& op, DType dt, bool big) {
            std::vector<Case> cases;
            uint64_t seed = 9600 + 100 * uint64_t(kind);
            for (const PoolCase& p : pool_cases()) {
              const PoolGeo g = pool_geo(p);
              const Shape ys = pool_out_shape(g);
              if (!big && p.x.num_elements() > kSmall) continue;
              Attrs attrs{{"ksize", p.ksize}, {"strides", p.strides}, {"padding", p.padding}};
              const std::string what = p.x.to_string() + " ksize " + list_string(p.ksize) + " strides " +
                                       list_string(p.strides) + " " + p.padding;
              // NaN and infinities first where the result is a pick (max pooling)
              const Gen gx = kind == Pool::Max ? Gen{.specials = true} : Gen{};
              Host x = random_host(dt, p.x, seed++, gx);
              if (kind == Pool::Max || kind == Pool::Avg) {
                cases.push_back(op_case(
                    what, op, attrs, {from_host(x)},
                    [=] {
                      Host y = make_host(dt, ys);
                      y.scale.assign(size_t(y.size()), 0.0);
                      pool_windows(g, [&](int64_t o, const I64s& in) {
                        if (kind == Pool::Max) {
                          y.v[size_t(o)] = x.v[size_t(max_position(x, in))];
                          return;
                        }
                        C s = 0;
                        for (int64_t k : in) s += x.v[size_t(k)].z, y.scale[size_t(o)] += std::abs(x.v[size_t(k)].z);
                        y.v[size_t(o)] = round_to(R(s / double(in.size())), dt);
                        y.scale[size_t(o)] /= double(in.size());
                      });
                      return Refs{y};
                    },
                    kind == Pool::Max ? Tier::Exact : Tier::Approx));
              } else if (kind == Pool::MaxGrad) {
                Host dy = random_host(dt, ys, seed++);
                cases.push_back(op_case(
                    what, op, attrs, {from_host(x), from_host(dy)},
                    [=] {
                      Host dx = make_host(dt, p.x);
                      std::vector<double> acc(size_t(dx.size()), 0.0);
                      dx.scale.assign(size_t(dx.size()), 0.0);
                      pool_windows(g, [&](int64_t o, const I64s& in) {
                        const size_t k = size_t(max_position(x, in));
                        acc[k] += dy.v[size_t(o)].z.real();
                        dx.scale[k] += std::abs(dy.v[size_t(o)].z.real());
                      });
                      for (size_t k = 0; k < acc.size(); ++k) dx.v[k] = round_to(R(acc[k]), dt);
                      return Refs{dx};
                    },
                    Tier::Approx));
              } else if (kind == Pool::MaxGradGrad) {
                Host gg = random_host(dt, p.x, seed++);
                cases.push_back(op_case(what, op, attrs, {from_host(x), from_host(gg)}, [=] {
                  Host y = make_host(dt, ys);
                  pool_windows(g,
                               [&](int64_t o, const I64s& in) { y.v[size_t(o)] = gg.v[size_t(max_position(x, in))]; });
                  return Refs{y};
                }));
              } else {
                Host dy = random_host(dt, ys, seed++);
                attrs.set("input_sizes", seed % 2 ? p.x.as_list() : I64s{-1, p.x.dim(1), p.x.dim(2), -1});
                cases.push_back(op_case(
                    what, op, attrs, {from_host(dy)},
                    [=] {
                      Host dx = make_host(dt, p.x);
                      std::vector<double> acc(size_t(dx.size()), 0.0);
                      dx.scale.assign(size_t(dx.size()), 0.0);
                      pool_windows(g, [&](int64_t o, const I64s& in) {
                        for (int64_t k : in) {
                          acc[size_t(k)] += dy.v[size_t(o)].z.real() / double(in.size());
                          dx.scale[size_t(k)] += std::abs(dy.v[size_t(o)].z.real()) / double(in.size());
                        }
                      });
                      for (size_t k = 0; k < acc.size(); ++k) dx.v[k] = round_to(R(acc[k]), dt);
                      return Refs{dx};
                    },
                    Tier::Approx));
              }
            }
            return cases;
          }};
}

// ---------------------------------------------------------------------------------------------
// Shapes and data movement: every dtype, exact copies

// A case whose single output holds x's values in a new shape.
Host relabel(const Host& x, const Shape& s) {
  Host y = x;
  y.shape = s;
  return y;
}

OpSpec movement(std::function<std::vector<Case>(const std::string&, DType, bool)> f) { return {kAll, std::move(f)}; }

Host transpose_ref(const Host& x, const I64s& perm) {
  const int64_t r = x.shape.rank();
  I64s p(perm);
  for (int64_t& a : p) a = a < 0 ? a + r : a;
  Shape os;
  for (int64_t a : p) os.push_back(x.shape.dim(size_t(a)));
  Host y = make_host(x.dtype, os);
  for_each_index(os, [&](const I64s& o, int64_t k) {
    I64s in(static_cast<size_t>(r));
    for (int64_t i = 0; i < r; ++i) in[size_t(p[size_t(i)])] = o[size_t(i)];
    y.v[size_t(k)] = x.v[size_t(ravel(in, x.shape))];
  });
  return y;
}

Host concat_ref(const std::vector<Host>& xs, int64_t axis) {
  const int64_t r = xs[0].shape.rank();
  if (axis < 0) axis += r;
  Shape os = xs[0].shape;
  int64_t total = 0;
  for (const Host& x : xs) total += x.shape.dim(size_t(axis));
  os.mut(size_t(axis)) = total;
  Host y = make_host(xs[0].dtype, os);
  for_each_index(os, [&](const I64s& o, int64_t k) {
    I64s idx = o;
    size_t which = 0;
    while (idx[size_t(axis)] >= xs[which].shape.dim(size_t(axis)))
      idx[size_t(axis)] -= xs[which++].shape.dim(size_t(axis));
    y.v[size_t(k)] = xs[which].v[size_t(ravel(idx, xs[which].shape))];
  });
  return y;
}

Refs split_ref(const Host& x, I64s sizes, int64_t axis) {
  if (axis < 0) axis += x.shape.rank();
  int64_t known = 0;
  for (int64_t s : sizes) known += s == -1 ? 0 : s;
  for (int64_t& s : sizes)
    if (s == -1) s = x.shape.dim(size_t(axis)) - known;
  Refs out;
  int64_t start = 0;
  for (int64_t s : sizes) {
    Shape os = x.shape;
    os.mut(size_t(axis)) = s;
    Host y = make_host(x.dtype, os);
    for_each_index(os, [&](const I64s& o, int64_t k) {
      I64s idx = o;
      idx[size_t(axis)] += start;
      y.v[size_t(k)] = x.v[size_t(ravel(idx, x.shape))];
    });
    out.push_back(y);
    start += s;
  }
  return out;
}

Host tile_ref(const Host& x, const I64s& m) {
  Shape os;
  for (size_t i = 0; i < m.size(); ++i) os.push_back(x.shape.dim(i) * m[i]);
  Host y = make_host(x.dtype, os);
  for_each_index(os, [&](const I64s& o, int64_t k) {
    I64s idx = o;
    for (size_t i = 0; i < idx.size(); ++i) idx[i] %= x.shape.dim(i);
    y.v[size_t(k)] = x.v[size_t(ravel(idx, x.shape))];
  });
  return y;
}

Host broadcast_ref(const Host& x, const Shape& to) {
  Host y = make_host(x.dtype, to);
  for_each_index(to, [&](const I64s& o, int64_t k) { y.v[size_t(k)] = x.v[size_t(bsrc(o, x.shape))]; });
  return y;
}

Host pad_ref(const Host& x, const I64s& p, double value) {
  Shape os;
  for (int64_t i = 0; i < x.shape.rank(); ++i)
    os.push_back(x.shape.dim(size_t(i)) + p[size_t(2 * i)] + p[size_t(2 * i + 1)]);
  Host y = make_host(x.dtype, os);
  const Num fill = round_to(is_inexact(x.dtype) ? R(value) : I(static_cast<Int128>(value)), x.dtype);
  for_each_index(os, [&](const I64s& o, int64_t k) {
    I64s idx = o;
    bool inside = true;
    for (size_t i = 0; i < idx.size(); ++i) {
      idx[i] -= p[2 * i];
      inside &= idx[i] >= 0 && idx[i] < x.shape.dim(i);
    }
    y.v[size_t(k)] = inside ? x.v[size_t(ravel(idx, x.shape))] : fill;
  });
  return y;
}

Host reverse_ref(const Host& x, const I64s& axes) {
  const auto rev = reduced_mask(x.shape, axes);
  Host y = make_host(x.dtype, x.shape);
  for_each_index(x.shape, [&](const I64s& o, int64_t k) {
    I64s idx = o;
    for (size_t i = 0; i < idx.size(); ++i)
      if (rev[i]) idx[i] = x.shape.dim(i) - 1 - idx[i];
    y.v[size_t(k)] = x.v[size_t(ravel(idx, x.shape))];
  });
  return y;
}

Host gather_ref(const Host& p, const Host& ind, int64_t axis, int64_t bd) {
  const int64_t pr = p.shape.rank(), ir = ind.shape.rank();
  if (axis < 0) axis += pr;
  if (bd < 0) bd += ir;
  Shape os;
  for (int64_t i = 0; i < axis; ++i) os.push_back(p.shape.dim(size_t(i)));
  for (int64_t i = bd; i < ir; ++i) os.push_back(ind.shape.dim(size_t(i)));
  for (int64_t i = axis + 1; i < pr; ++i) os.push_back(p.shape.dim(size_t(i)));
  Host y = make_host(p.dtype, os);
  for_each_index(os, [&](const I64s& o, int64_t k) {
    I64s ii(static_cast<size_t>(ir)), pi(static_cast<size_t>(pr));
    for (int64_t j = 0; j < bd; ++j) ii[size_t(j)] = o[size_t(j)];
    for (int64_t j = bd; j < ir; ++j) ii[size_t(j)] = o[size_t(axis + j - bd)];
    for (int64_t j = 0; j < axis; ++j) pi[size_t(j)] = o[size_t(j)];
    pi[size_t(axis)] = static_cast<int64_t>(ind.v[size_t(ravel(ii, ind.shape))].i);
    for (int64_t j = axis + 1; j < pr; ++j) pi[size_t(j)] = o[size_t(axis + (ir - bd) + (j - axis - 1))];
    y.v[size_t(k)] = p.v[size_t(ravel(pi, p.shape))];
  });
  return y;
}

// unsorted_segment_sum: exact integer sums (wrapped to the dtype), double or complex sums for
// floats, with the sum of magnitudes as the tolerance's scale.
Host segment_sum_ref(const Host& data, const Host& ids, int64_t n) {
  Shape os{n};
  for (int64_t i = ids.shape.rank(); i < data.shape.rank(); ++i) os.push_back(data.shape.dim(size_t(i)));
  const size_t m = size_t(os.num_elements());
  const int64_t inner = n ? int64_t(m) / n : 0;
  std::vector<Int128> isum(m, 0);
  std::vector<C> fsum(m, 0.0);
  Host y = make_host(data.dtype, os);
  y.scale.assign(m, 0.0);
  for (int64_t r = 0; r < ids.size(); ++r) {
    const int64_t s = static_cast<int64_t>(ids.v[size_t(r)].i);
    for (int64_t j = 0; j < inner; ++j) {
      const Num& v = data.v[size_t(r * inner + j)];
      const size_t o = size_t(s * inner + j);
      isum[o] += v.i;
      fsum[o] += v.z;
      y.scale[o] += std::abs(v.z);
    }
  }
  for (size_t o = 0; o < m; ++o) y.v[o] = round_to(is_inexact(data.dtype) ? R(fsum[o]) : I(isum[o]), data.dtype);
  return y;
}

Host one_hot_ref(const Host& ind, int64_t depth, int64_t axis, DType dt, double on, double off) {
  const int64_t r = ind.shape.rank();
  if (axis == -1) axis = r;
  Shape os = ind.shape;
  os.insert(size_t(axis), depth);
  Host y = make_host(dt, os);
  auto val = [&](double v) { return round_to(is_inexact(dt) ? R(v) : I(static_cast<Int128>(v)), dt); };
  for_each_index(os, [&](const I64s& o, int64_t k) {
    I64s ii = o;
    ii.erase(ii.begin() + axis);
    y.v[size_t(k)] = ind.v[size_t(ravel(ii, ind.shape))].i == o[size_t(axis)] ? val(on) : val(off);
  });
  return y;
}

// Python's slice.indices(d), listed.
I64s slice_indices(const Slice& sl, int64_t d) {
  const int64_t step = sl.step;
  const int64_t* start = std::get_if<int64_t>(&sl.start);
  const int64_t* stop = std::get_if<int64_t>(&sl.stop);
  int64_t b, e;
  if (step > 0) {
    b = !start ? 0 : *start < 0 ? std::max<int64_t>(*start + d, 0) : std::min(*start, d);
    e = !stop ? d : *stop < 0 ? std::max<int64_t>(*stop + d, 0) : std::min(*stop, d);
  } else {
    b = !start ? d - 1 : *start < 0 ? std::max<int64_t>(*start + d, -1) : std::min(*start, d - 1);
    e = !stop ? -1 : *stop < 0 ? std::max<int64_t>(*stop + d, -1) : std::min(*stop, d - 1);
  }
  I64s out;
  for (int64_t i = b; step > 0 ? i < e : i > e; i += step) out.push_back(i);
  return out;
}

// NumPy basic indexing, restated: per input axis the selected positions, in order.
Host index_ref(const Host& x, const std::vector<IndexItem>& items) {
  const int64_t r = x.shape.rank();
  int64_t consumed = 0;
  for (const IndexItem& it : items)
    consumed += std::holds_alternative<int64_t>(it.v) || std::holds_alternative<Slice>(it.v);
  std::vector<I64s> sel(static_cast<size_t>(r));
  Shape os;
  int64_t axis = 0;
  auto full = [&] {
    const int64_t d = x.shape.dim(size_t(axis));
    for (int64_t i = 0; i < d; ++i) sel[size_t(axis)].push_back(i);
    os.push_back(d);
    ++axis;
  };
  for (const IndexItem& it : items) {
    if (const int64_t* k = std::get_if<int64_t>(&it.v)) {
      const int64_t d = x.shape.dim(size_t(axis));
      sel[size_t(axis++)] = {*k < 0 ? *k + d : *k};
    } else if (const Slice* sl = std::get_if<Slice>(&it.v)) {
      sel[size_t(axis)] = slice_indices(*sl, x.shape.dim(size_t(axis)));
      os.push_back(static_cast<int64_t>(sel[size_t(axis)].size()));
      ++axis;
    } else if (std::holds_alternative<NewAxis_t>(it.v)) {
      os.push_back(1);
    } else {
      for (int64_t j = 0; j < r - consumed; ++j) full();
    }
  }
  while (axis < r) full();
  Host y = make_host(x.dtype, os);
  Shape counts;
  for (const I64s& s : sel) counts.push_back(static_cast<int64_t>(s.size()));
  for_each_index(counts, [&](const I64s& c, int64_t k) {
    I64s idx(static_cast<size_t>(r));
    for (int64_t i = 0; i < r; ++i) idx[size_t(i)] = sel[size_t(i)][size_t(c[size_t(i)])];
    y.v[size_t(k)] = x.v[size_t(ravel(idx, x.shape))];
  });
  return y;
}

std::string items_string(const std::vector<IndexItem>& items) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < items.size(); ++i) {
    os << (i ? ", " : "");
    const auto& v = items[i].v;
    if (const int64_t* k = std::get_if<int64_t>(&v)) {
      os << *k;
    } else if (const Slice* s = std::get_if<Slice>(&v)) {
      if (const int64_t* b = std::get_if<int64_t>(&s->start)) os << *b;
      os << ':';
      if (const int64_t* e = std::get_if<int64_t>(&s->stop)) os << *e;
      os << ':' << s->step;
    } else {
      os << (std::holds_alternative<NewAxis_t>(v) ? "newaxis" : "...");
    }
  }
  os << ']';
  return os.str();
}

void add_movement(std::map<std::string, OpSpec>& t) {
  t["reshape"] = movement([](const std::string& op, DType dt, bool big) {
    struct R_ {
      Shape in;
      I64s to;
      Shape out;
    };
    const std::vector<R_> rs = {{{2, 3, 4}, {4, -1}, {4, 6}}, {{6}, {2, 3}, {2, 3}},
                                {{}, {1, 1}, {1, 1}},         {{1}, {}, {}},
                                {{0, 3}, {3, 0}, {3, 0}},     {{2, 3}, {-1}, {6}},
                                {{0, 3}, {-1, 3}, {0, 3}},    {{120, 300}, {300, -1, 2}, {300, 60, 2}}};
    std::vector<Case> cases;
    uint64_t seed = 8000;
    for (const R_& r : rs) {
      if (!big && r.in.num_elements() > kSmall) continue;
      Host x = random_host(dt, r.in, seed++);
      cases.push_back(op_case(r.in.to_string() + " to " + list_string(r.to), op, Attrs{{"shape", r.to}}, {from_host(x)},
                              [x, out = r.out] { return Refs{relabel(x, out)}; }));
    }
    return cases;
  });
  t["transpose"] = movement([](const std::string& op, DType dt, bool big) {
    const std::vector<std::pair<Shape, I64s>> ts = {{{}, {}},
                                                    {{5}, {0}},
                                                    {{3, 5}, {1, 0}},
                                                    {{2, 3, 4}, {2, 0, 1}},
                                                    {{2, 3, 4}, {-1, 0, 1}},
                                                    {{0, 2}, {1, 0}},
                                                    {{2, 1, 3, 2}, {3, 1, 0, 2}},
                                                    {{64, 70}, {1, 0}},
                                                    {{4, 33, 17}, {0, 2, 1}},
                                                    {{3, 4, 5}, {0, 1, 2}}};
    std::vector<Case> cases;
    uint64_t seed = 8100;
    for (const auto& e : ts) {
      const Shape s = e.first;
      const I64s perm = e.second;
      if (!big && s.num_elements() > kSmall) continue;
      Host x = random_host(dt, s, seed++);
      cases.push_back(op_case(s.to_string() + " perm " + list_string(perm), op, Attrs{{"perm", perm}}, {from_host(x)},
                              [x, perm] { return Refs{transpose_ref(x, perm)}; }));
    }
    return cases;
  });
  t["expand_dims"] = movement([](const std::string& op, DType dt, bool big) {
    const std::vector<std::pair<Shape, int64_t>> es = {{{}, 0},      {{}, -1},     {{3}, 1},   {{2, 3}, 1},
                                                       {{2, 3}, -1}, {{2, 3}, -3}, {{0, 2}, 0}};
    std::vector<Case> cases;
    uint64_t seed = 8200;
    for (const auto& e : es) {
      const Shape s = e.first;
      const int64_t axis = e.second;
      Host x = random_host(dt, s, seed++);
      Shape out = s;
      out.insert(size_t(axis < 0 ? axis + s.rank() + 1 : axis), 1);
      cases.push_back(op_case(s.to_string() + " axis " + std::to_string(axis), op, Attrs{{"axis", axis}},
                              {from_host(x)}, [x, out] { return Refs{relabel(x, out)}; }));
    }
    return cases;
  });
  t["squeeze"] = movement([](const std::string& op, DType dt, bool big) {
    struct Q {
      Shape in;
      I64s axes;
      Shape out;
    };
    const std::vector<Q> qs = {{{1, 3, 1, 2}, {}, {3, 2}},
                               {{1, 3, 1, 2}, {0}, {3, 1, 2}},
                               {{1, 3, 1, 2}, {-2, 0}, {3, 2}},
                               {{}, {}, {}},
                               {{0, 1}, {1}, {0}},
                               {{1, 1}, {}, {}},
                               {{2, 3}, {}, {2, 3}}};
    std::vector<Case> cases;
    uint64_t seed = 8300;
    for (const Q& q : qs) {
      Host x = random_host(dt, q.in, seed++);
      cases.push_back(op_case(q.in.to_string() + " axes " + list_string(q.axes), op, Attrs{{"axes", q.axes}},
                              {from_host(x)}, [x, out = q.out] { return Refs{relabel(x, out)}; }));
    }
    return cases;
  });
  t["concat"] = movement([](const std::string& op, DType dt, bool big) {
    struct Cc {
      std::vector<Shape> in;
      int64_t axis;
    };
    const std::vector<Cc> cs = {
        {{{2, 3}, {1, 3}, {4, 3}}, 0},          {{{2, 1}, {2, 0}, {2, 3}}, 1}, {{{2, 2, 1}, {2, 2, 2}, {2, 2, 3}}, -1},
        {{{0, 2}, {0, 2}, {0, 2}}, 1},          {{{3}, {0}, {5}}, 0},          {{{100, 200}, {100, 50}, {100, 300}}, 1},
        {{{300, 100}, {1, 100}, {200, 100}}, 0}};
    std::vector<Case> cases;
    uint64_t seed = 8400;
    for (const Cc& c : cs) {
      if (!big && c.in[0].num_elements() > kSmall) continue;
      std::vector<Host> xs;
      std::vector<Tensor> ts;
      std::string what;
      for (const Shape& s : c.in) {
        xs.push_back(random_host(dt, s, seed++));
        ts.push_back(from_host(xs.back()));
        what += s.to_string() + " ";
      }
      cases.push_back(op_case(what + "axis " + std::to_string(c.axis), op, Attrs{{"axis", c.axis}}, ts,
                              [xs, axis = c.axis] { return Refs{concat_ref(xs, axis)}; }));
    }
    return cases;
  });
  t["split"] = movement([](const std::string& op, DType dt, bool big) {
    struct Sp {
      Shape in;
      int64_t num;  // 0: use sizes
      I64s sizes;
      int64_t axis;
    };
    const std::vector<Sp> ss = {
        {{6, 2}, 3, {}, 0},    {{2, 5}, 0, {1, -1, 2}, 1},        {{0}, 3, {}, 0},      {{2, 3}, 0, {0, 2, 1}, -1},
        {{3, 4, 6}, 3, {}, 2}, {{300, 200}, 0, {100, 50, 50}, 1}, {{600, 70}, 3, {}, 0}};
    std::vector<Case> cases;
    uint64_t seed = 8500;
    for (const Sp& s : ss) {
      if (!big && s.in.num_elements() > kSmall) continue;
      Host x = random_host(dt, s.in, seed++);
      Attrs a{{"axis", s.axis}};
      I64s sizes = s.sizes;
      if (s.num) {
        a.set("num", s.num);
        sizes.assign(size_t(s.num), s.in.dim(size_t(s.axis < 0 ? s.axis + s.in.rank() : s.axis)) / s.num);
      } else {
        a.set("sizes", s.sizes);
      }
      cases.push_back(op_case(s.in.to_string() +
                                  (s.num ? " num " + std::to_string(s.num) : " sizes " + list_string(s.sizes)) +
                                  " axis " + std::to_string(s.axis),
                              op, a, {from_host(x)}, [x, sizes, axis = s.axis] { return split_ref(x, sizes, axis); }));
    }
    return cases;
  });
  t["tile"] = movement([](const std::string& op, DType dt, bool big) {
    const std::vector<std::pair<Shape, I64s>> ts = {
        {{2, 3}, {2, 1}}, {{3}, {0}},           {{}, {}},  {{1, 2, 1}, {3, 1, 2}},
        {{2, 0}, {2, 3}}, {{100, 300}, {1, 2}}, {{3}, {1}}};
    std::vector<Case> cases;
    uint64_t seed = 8600;
    for (const auto& e : ts) {
      const Shape s = e.first;
      const I64s m = e.second;
      if (!big && s.num_elements() > kSmall) continue;
      Host x = random_host(dt, s, seed++);
      cases.push_back(op_case(s.to_string() + " x " + list_string(m), op, Attrs{{"multiples", m}}, {from_host(x)},
                              [x, m] { return Refs{tile_ref(x, m)}; }));
    }
    return cases;
  });
  t["broadcast_to"] = movement([](const std::string& op, DType dt, bool big) {
    const std::vector<std::pair<Shape, Shape>> bs = {{{3, 1}, {2, 3, 4}}, {{}, {2, 2}},     {{3}, {3}},
                                                     {{1}, {0}},          {{2, 1}, {2, 0}}, {{1, 300}, {200, 300}}};
    std::vector<Case> cases;
    uint64_t seed = 8700;
    for (const auto& e : bs) {
      const Shape s = e.first, to = e.second;
      if (!big && to.num_elements() > kSmall) continue;
      Host x = random_host(dt, s, seed++);
      cases.push_back(op_case(s.to_string() + " to " + to.to_string(), op, Attrs{{"shape", to.as_list()}},
                              {from_host(x)}, [x, to] { return Refs{broadcast_ref(x, to)}; }));
    }
    return cases;
  });
  // the _like ops take the target shape from a second tensor, whose values and dtype are never
  // read: `like` alternates between a tensor of x's dtype and an int32 or bool one
  t["broadcast_like"] = movement([](const std::string& op, DType dt, bool big) {
    const std::vector<std::pair<Shape, Shape>> bs = {{{}, {}},
                                                     {{}, {2, 2}},
                                                     {{3}, {3}},
                                                     {{3, 1}, {2, 3, 4}},
                                                     {{1}, {0}},
                                                     {{2, 1}, {2, 0}},
                                                     {{0, 3}, {2, 0, 3}},
                                                     {{}, {0}},
                                                     {{2, 1, 3}, {4, 2, 5, 3}},
                                                     {{1, 1}, {1, 1}},
                                                     {{1, 300}, {200, 300}},
                                                     {{250, 1}, {2, 250, 130}}};
    std::vector<Case> cases;
    uint64_t seed = 9300;
    for (size_t i = 0; i < bs.size(); ++i) {
      const Shape s = bs[i].first, to = bs[i].second;
      if (!big && to.num_elements() > kSmall) continue;
      Host x = random_host(dt, s, seed++);
      const DType like_dt = i % 3 == 0 ? dt : i % 3 == 1 ? int32 : bool_;
      cases.push_back(op_case(s.to_string() + " like " + to.to_string() + " (" + std::string(dtype_name(like_dt)) + ")",
                              op, {}, {from_host(x), from_host(random_host(like_dt, to, seed++))},
                              [x, to] { return Refs{broadcast_ref(x, to)}; }));
    }
    return cases;
  });
  t["reshape_like"] = movement([](const std::string& op, DType dt, bool big) {
    const std::vector<std::pair<Shape, Shape>> rs = {
        {{2, 3, 4}, {4, 6}},       {{6}, {2, 3}}, {{}, {1, 1}},  {{1}, {}},        {{}, {}},
        {{0, 3}, {3, 0}},          {{0, 3}, {0}}, {{2, 3}, {6}}, {{1, 5, 1}, {5}}, {{2, 3}, {2, 3}},
        {{120, 300}, {300, 60, 2}}};
    std::vector<Case> cases;
    uint64_t seed = 9400;
    for (size_t i = 0; i < rs.size(); ++i) {
      const Shape s = rs[i].first, to = rs[i].second;
      if (!big && s.num_elements() > kSmall) continue;
      Host x = random_host(dt, s, seed++);
      const DType like_dt = i % 3 == 0 ? dt : i % 3 == 1 ? int32 : bool_;
      cases.push_back(op_case(s.to_string() + " like " + to.to_string() + " (" + std::string(dtype_name(like_dt)) + ")",
                              op, {}, {from_host(x), from_host(random_host(like_dt, to, seed++))},
                              [x, to] { return Refs{relabel(x, to)}; }));
    }
    return cases;
  });
  t["pad"] = movement([](const std::string& op, DType dt, bool big) {
    struct P {
      Shape in;
      I64s pads;
      double value;
    };
    const std::vector<P> ps = {{{2, 3}, {1, 2, 0, 1}, 0},          {{}, {}, 0},
                               {{0, 2}, {1, 1, 2, 0}, 1},          {{3}, {0, 0}, 0},
                               {{2, 2, 2}, {0, 1, 1, 0, 2, 2}, 1}, {{200, 150}, {3, 4, 5, 6}, 0}};
    std::vector<Case> cases;
    uint64_t seed = 8800;
    for (const P& p : ps) {
      if (!big && p.in.num_elements() > kSmall) continue;
      Host x = random_host(dt, p.in, seed++);
      cases.push_back(op_case(p.in.to_string() + " pads " + list_string(p.pads) + " value " + std::to_string(p.value),
                              op, Attrs{{"paddings", p.pads}, {"constant_value", p.value}}, {from_host(x)},
                              [x, p] { return Refs{pad_ref(x, p.pads, p.value)}; }));
    }
    return cases;
  });
  t["gather"] = movement([](const std::string& op, DType dt, bool big) {
    struct G {
      Shape params;
      DType itype;
      Shape ishape;
      I64s values;  // empty: random in range
      int64_t axis, batch_dims;
    };
    const std::vector<G> gs = {{{5, 3}, int32, {4}, {4, 0, 2, 2}, 0, 0},
                               {{2, 4, 3}, int64, {2, 2}, {3, 0, 1, 1}, 1, 0},
                               {{3, 4}, int32, {3, 2}, {0, 3, 1, 1, 2, 0}, 1, 1},
                               {{6}, int32, {}, {5}, 0, 0},
                               {{4, 3}, int64, {0}, {}, 0, 0},
                               {{6}, int64, {2, 3}, {5, 4, 3, 0, 1, 2}, -1, 0},
                               {{2, 3, 4}, int32, {2, 5}, {}, -1, 1},
                               {{1000, 40}, int64, {3000}, {}, 0, 0},
                               {{40000}, int32, {50000}, {}, 0, 0}};
    std::vector<Case> cases;
    uint64_t seed = 8900;
    for (const G& g : gs) {
      if (!big && std::max(g.params.num_elements(), g.ishape.num_elements()) > kSmall) continue;
      Host p = random_host(dt, g.params, seed++);
      const int64_t n = g.params.dim(size_t(g.axis < 0 ? g.axis + g.params.rank() : g.axis));
      Host ind = g.values.empty() ? random_host(g.itype, g.ishape, seed++,
                                                Gen{.int_full = false, .int_lo = 0, .int_hi = static_cast<double>(n)})
                                  : index_host(g.itype, g.ishape, g.values);
      cases.push_back(op_case(g.params.to_string() + " at " + std::string(dtype_name(g.itype)) + g.ishape.to_string() +
                                  " axis " + std::to_string(g.axis) + " batch_dims " + std::to_string(g.batch_dims),
                              op, Attrs{{"axis", g.axis}, {"batch_dims", g.batch_dims}}, {from_host(p), from_host(ind)},
                              [p, ind, g] { return Refs{gather_ref(p, ind, g.axis, g.batch_dims)}; }));
    }
    return cases;
  });
  // unsorted_segment_sum: numeric dtypes; wide rows (600 columns) take several column blocks
  t["unsorted_segment_sum"] = {
      kNum, [](const std::string& op, DType dt, bool big) {
        struct S {
          Shape data;
          DType itype;
          Shape ishape;
          I64s values;  // empty: random in [0, n)
          int64_t n;
        };
        const std::vector<S> ss = {{{6}, int32, {6}, {0, 2, 0, 1, 2, 2}, 4},
                                   {{5, 3}, int64, {5}, {}, 4},
                                   {{2, 3, 4}, int32, {2, 3}, {}, 5},
                                   {{3, 2}, int32, {3, 2}, {1, 1, 0, 1, 0, 0}, 2},
                                   {{}, int64, {}, {1}, 3},
                                   {{0, 3}, int32, {0}, {}, 3},
                                   {{4, 0}, int64, {4}, {1, 0, 1, 1}, 2},
                                   {{0, 2}, int32, {0}, {}, 0},
                                   {{3000, 40}, int64, {3000}, {}, 100},
                                   {{50000}, int32, {50000}, {}, 1000},
                                   {{200, 600}, int32, {200}, {}, 3}};
        std::vector<Case> cases;
        uint64_t seed = 8950;
        for (const S& s : ss) {
          if (!big && s.data.num_elements() > kSmall) continue;
          Host data = random_host(dt, s.data, seed++);
          Host ids = s.values.empty()
                         ? random_host(s.itype, s.ishape, seed++,
                                       Gen{.int_full = false, .int_lo = 0, .int_hi = static_cast<double>(s.n)})
                         : index_host(s.itype, s.ishape, s.values);
          cases.push_back(op_case(
              s.data.to_string() + " by " + std::string(dtype_name(s.itype)) + s.ishape.to_string() + " into " +
                  std::to_string(s.n),
              op, Attrs{{"num_segments", s.n}}, {from_host(data), from_host(ids)},
              [data, ids, n = s.n] { return Refs{segment_sum_ref(data, ids, n)}; }, Tier::Approx));
        }
        return cases;
      }};
  // one_hot: the dtype under test is the output's (the `dtype` attribute)
  t["one_hot"] = movement([](const std::string& op, DType dt, bool big) {
    struct O {
      DType itype;
      Shape ishape;
      I64s values;
      int64_t depth, axis;
    };
    const std::vector<O> os = {{int32, {5}, {0, 2, -1, 4, 1}, 4, -1},
                               {int64, {2, 3}, {2, 0, 1, 1, 3, 0}, 3, 0},
                               {uint8, {3}, {0, 1, 200}, 5, 0},
                               {int32, {0}, {}, 3, -1},
                               {int64, {}, {2}, 4, -1},
                               {int32, {3}, {0, 1, 2}, 0, -1},
                               {int32, {2, 2}, {1, 0, 0, 1}, 2, 1}};
    const double on = dt == bool_ ? 1 : 5, off = dt == bool_ ? 0 : is_unsigned_integer(dt) ? 2 : -2;
    std::vector<Case> cases;
    for (const O& o : os) {
      Host ind = index_host(o.itype, o.ishape, o.values);
      cases.push_back(
          op_case(std::string(dtype_name(o.itype)) + o.ishape.to_string() + " depth " + std::to_string(o.depth) +
                      " axis " + std::to_string(o.axis),
                  op, Attrs{{"depth", o.depth}, {"on_value", on}, {"off_value", off}, {"axis", o.axis}, {"dtype", dt}},
                  {from_host(ind)}, [=] { return Refs{one_hot_ref(ind, o.depth, o.axis, dt, on, off)}; }));
    }
    return cases;
  });
  t["reverse"] = movement([](const std::string& op, DType dt, bool big) {
    const std::vector<std::pair<Shape, I64s>> rs = {{{2, 3}, {0}},       {{2, 3}, {1}}, {{2, 3}, {0, 1}},
                                                    {{2, 3}, {-1}},      {{}, {}},      {{0, 3}, {0}},
                                                    {{2, 3, 4}, {0, 2}}, {{5}, {}},     {{200, 300}, {1}}};
    std::vector<Case> cases;
    uint64_t seed = 9000;
    for (const auto& e : rs) {
      const Shape s = e.first;
      const I64s axes = e.second;
      if (!big && s.num_elements() > kSmall) continue;
      Host x = random_host(dt, s, seed++);
      cases.push_back(op_case(s.to_string() + " axes " + list_string(axes), op, Attrs{{"axes", axes}}, {from_host(x)},
                              [x, axes] { return Refs{reverse_ref(x, axes)}; }));
    }
    return cases;
  });
  // strided_slice through Tensor::index, against NumPy's basic indexing
  t["strided_slice"] = movement([](const std::string&, DType dt, bool big) {
    const std::vector<std::pair<Shape, std::vector<IndexItem>>> is = {
        {{4, 5}, {Slice(1, 3), Slice(None, None, 2)}},
        {{4, 5}, {-1}},
        {{4, 5}, {Ellipsis, NewAxis, 1}},
        {{4, 5}, {Slice(None, None, -1)}},
        {{4, 5}, {Slice(10, -10, -3)}},
        {{4, 5}, {1, 2}},
        {{4, 5}, {Slice(-2, None), Slice(1, -1)}},
        {{4, 5}, {Slice(3, 1)}},
        {{3, 4, 5}, {1, Slice(), Slice(4, 0, -2)}},
        {{3, 4, 5}, {Ellipsis, 0}},
        {{3, 4, 5}, {NewAxis, Slice(), Ellipsis, Slice(None, None, 3)}},
        {{}, {}},
        {{}, {NewAxis}},
        {{}, {Ellipsis}},
        {{0, 3}, {Slice(), 1}},
        {{7}, {Slice(2, 3)}},
        {{300, 200}, {Slice(1, None, 2), Slice(None, None, -3)}}};
    std::vector<Case> cases;
    uint64_t seed = 9100;
    for (const auto& e : is) {
      const Shape s = e.first;
      const std::vector<IndexItem> items = e.second;
      if (!big && s.num_elements() > kSmall) continue;
      Host x = random_host(dt, s, seed++);
      Tensor xt = from_host(x);
      Case c;
      c.what = s.to_string() + items_string(items);
      c.inputs = {xt};
      c.body = [items](std::span<const Tensor> in) {
        return Outputs{in[0].index(std::span<const IndexItem>(items.data(), items.size()))};
      };
      c.expect = [x, items] { return Refs{index_ref(x, items)}; };
      cases.push_back(c);
    }
    return cases;
  });
  t["stop_gradient"] = movement([](const std::string& op, DType dt, bool big) {
    std::vector<Case> cases;
    uint64_t seed = 9250;
    for (const Shape& s : {Shape{}, Shape{0}, Shape{2, 3, 4}, Shape{150, 300}}) {
      if (!big && s.num_elements() > kSmall) continue;
      Host x = random_host(dt, s, seed++);
      cases.push_back(op_case(s.to_string(), op, {}, {from_host(x)}, [x] { return Refs{x}; }));
    }
    return cases;
  });
  t["shape_of"] = movement([](const std::string& op, DType dt, bool big) {
    const std::vector<Shape> ss = {{}, {0}, {2, 3, 4}, {1, 0, 7}, {5}};
    std::vector<Case> cases;
    uint64_t seed = 9200;
    for (const Shape& s : ss)
      for (DType out : {int32, int64}) {
        Host x = random_host(dt, s, seed++);
        cases.push_back(op_case(s.to_string() + " " + std::string(dtype_name(out)), op, Attrs{{"out_type", out}},
                                {from_host(x)}, [s, out] {
                                  Host y = make_host(out, {s.rank()});
                                  for (int64_t i = 0; i < s.rank(); ++i)
                                    y.v[size_t(i)] = int_num(s.dim(size_t(i)), out);
                                  return Refs{y};
                                }));
      }
    return cases;
  });
  // range_like reads only like's shape: each element's index along the axis
  t["range_like"] = movement([](const std::string& op, DType dt, bool big) {
    const std::vector<std::pair<Shape, int64_t>> rs = {{{5}, 0},        {{0}, 0},        {{2, 3, 4}, 1},
                                                       {{2, 3, 4}, -1}, {{2, 0, 3}, 2},  {{1, 7}, 0},
                                                       {{3, 2}, -2},    {{300, 200}, 0}, {{4, 50000}, 1}};
    std::vector<Case> cases;
    uint64_t seed = 9230;
    for (const auto& [s, axis] : rs)
      for (DType out : {int32, int64}) {
        if (!big && s.num_elements() > kSmall) continue;
        Host x = random_host(dt, s, seed++);
        cases.push_back(op_case(s.to_string() + " axis " + std::to_string(axis) + " " + std::string(dtype_name(out)),
                                op, Attrs{{"axis", axis}, {"dtype", out}}, {from_host(x)}, [s, axis, out] {
                                  Host y = make_host(out, s);
                                  const size_t a = size_t(axis < 0 ? axis + s.rank() : axis);
                                  for_each_index(
                                      s, [&](const I64s& idx, int64_t k) { y.v[size_t(k)] = int_num(idx[a], out); });
                                  return Refs{y};
                                }));
      }
    return cases;
  });
}

// ---------------------------------------------------------------------------------------------
// Control and I/O ops

// A concrete function of x and y returning x + y, x * y (logical or and and for bool) and x
// itself (an output that is a parameter).
Ref<trace::ConcreteState> sum_and_product(DType dt, const Shape& a, const Shape& b) {
  return trace::trace_concrete("sum_and_product", {TensorSpec(a, dt, "x"), TensorSpec(b, dt, "y")},
                               [dt](std::span<const Tensor> in) -> std::vector<Tensor> {
                                 const Tensor &x = in[0], &y = in[1];
                                 if (dt == bool_) return {logical_or(x, y), logical_and(x, y), x};
                                 return {add(x, y), multiply(x, y), x};
                               });
}

// call: runs a traced function as one op; its inputs are the function's tensor arguments (these
// functions capture no variables, whose values would follow them).
OpSpec call_spec() {
  return {kAll, [](const std::string& op, DType dt, bool big) {
            std::vector<Case> cases;
            uint64_t seed = 9500;
            const std::vector<Bin> shapes = {
                {{}, {}}, {{0}, {0}}, {{7}, {7}}, {{2, 3, 4}, {2, 3, 4}}, {{3, 1}, {4}}, {{130, 260}, {130, 260}}};
            for (const Bin& bs : shapes) {
              if (!big && bshape(bs.a, bs.b).num_elements() > kSmall) continue;
              const Host x = random_host(dt, bs.a, seed++), y = random_host(dt, bs.b, seed++);
              const Attrs attrs{{"function", ops::ObjectRef(sum_and_product(dt, bs.a, bs.b))}};
              cases.push_back(op_case(
                  bs.a.to_string() + " vs " + bs.b.to_string(), op, attrs, {from_host(x), from_host(y)},
                  [=] {
                    Host sum = make_host(dt, bshape(bs.a, bs.b)), prod = sum;
                    for_each_index(sum.shape, [&](const I64s& idx, int64_t k) {
                      const Num &a = x.v[bsrc(idx, bs.a)], &b = y.v[bsrc(idx, bs.b)];
                      if (dt == bool_) {
                        sum.v[k] = B(a.i || b.i);
                        prod.v[k] = B(a.i && b.i);
                      } else if (is_integer(dt)) {
                        sum.v[k] = round_to(I(a.i + b.i), dt);
                        prod.v[k] = round_to(I(mul_wrap(a.i, b.i)), dt);
                      } else {
                        sum.v[k] = round_to(R(a.z + b.z), dt);
                        prod.v[k] = round_to(R(is_complex(dt) ? a.z * b.z : C(a.z.real() * b.z.real())), dt);
                      }
                    });
                    return Refs{sum, prod, x};
                  },
                  Tier::Rounded));
            }
            // a function of no arguments: its result is a constant of the graph
            const auto ones_fn = trace::trace_concrete("ones", {}, [dt](std::span<const Tensor>) {
              return std::vector<Tensor>{ones({2, 3}, dt)};
            });
            cases.push_back(op_case("no arguments", op, Attrs{{"function", ops::ObjectRef(ones_fn)}}, {}, [dt] {
              Host y = make_host(dt, {2, 3});
              for (Num& v : y.v) v = round_to(I(1), dt);
              return Refs{y};
            }));
            return cases;
          }};
}

// print: "<message> <values of each tensor>" and a newline on std::cout, and no outputs.
OpSpec print_spec() {
  return {kAll, [](const std::string& op, DType dt, bool) {
            struct P {
              std::string what, message;
              std::vector<Shape> shapes;
            };
            const std::vector<P> ps = {{"a message and a scalar", "x =", {{}}},
                                       {"no message, two tensors", "", {{7}, {2, 3}}},
                                       {"an empty tensor", "empty:", {{3, 0, 2}}},
                                       {"a message only", "just text", {}},
                                       {"three tensors", "values", {{2, 2, 2}, {}, {1}}}};
            std::vector<Case> cases;
            uint64_t seed = 9600;
            for (const P& p : ps) {
              std::vector<Tensor> inputs;
              std::string text = p.message;
              for (const Shape& s : p.shapes) {
                inputs.push_back(from_host(random_host(dt, s, seed++)));
                text += (text.empty() ? "" : " ") + numpy_str(inputs.back());
              }
              Case c = op_case(p.what, op, Attrs{{"message", p.message}}, inputs, [] { return Refs{}; });
              c.prints = text + "\n";
              cases.push_back(std::move(c));
            }
            return cases;
          }};
}

// assert: passes when every element is true; otherwise the message names the first false element.
OpSpec assert_spec() {
  return {kB, [](const std::string& op, DType dt, bool big) {
            std::vector<Case> cases;
            const Attrs attrs{{"message", std::string("values must be positive")}};
            for (const Shape& s : {Shape{}, Shape{0}, Shape{7}, Shape{2, 3}, Shape{130, 260}}) {
              if (!big && s.num_elements() > kSmall) continue;
              Host yes = make_host(dt, s);
              for (Num& v : yes.v) v = round_to(I(1), dt);
              cases.push_back(op_case("all true " + s.to_string(), op, attrs, {from_host(yes)}, [] { return Refs{}; }));
            }
            if (dt != bool_) return cases;
            const std::vector<std::tuple<Shape, I64s, std::string>> fails = {
                {{}, {0}, ""}, {{4}, {1, 0, 1, 0}, " at index [1]"}, {{2, 3}, {1, 1, 1, 1, 1, 0}, " at index [1, 2]"}};
            for (const auto& [s, values, where] : fails) {
              Case c = op_case("false " + s.to_string(), op, attrs, {from_host(index_host(bool_, s, values))},
                               [] { return Refs{}; });
              c.throws = "[assert] values must be positive (condition false" + where + ")";
              cases.push_back(std::move(c));
            }
            return cases;
          }};
}

// ---------------------------------------------------------------------------------------------
// Creation ops

Attrs random_attrs(bool uniform, const Shape& s, DType dt, int64_t seed, int64_t offset, double a, double b) {
  return Attrs{{"shape", s.as_list()},
               {"dtype", dt},
               {"seed", seed},
               {"offset", offset},
               {uniform ? "minval" : "mean", a},
               {uniform ? "maxval" : "stddev", b}};
}

// Random ops are checked by property: dtype and shape, values in range, the same seed and
// offset giving the same values and another seed or offset other values, and the sample mean
// and spread.
OpSpec random_spec(bool uniform) {
  return {uniform ? kReal : kF, [uniform](const std::string& op, DType dt, bool) {
            std::vector<Case> cases;
            double a, b;  // [minval, maxval) or (mean, stddev)
            if (!uniform) {
              a = 1.5;
              b = 2;
            } else if (is_unsigned_integer(dt)) {
              a = 3;
              b = 15;
            } else if (is_integer(dt)) {
              a = -5;
              b = 7;
            } else {
              a = -2;
              b = 3;
            }
            for (const Shape& s : {Shape{}, Shape{0}, Shape{7}, Shape{100, 100}}) {
              const Attrs attrs = random_attrs(uniform, s, dt, 42, 0, a, b);
              Case c;
              c.what = s.to_string();
              c.body = [op, attrs](std::span<const Tensor>) { return run_op(op, attrs, {}); };
              c.check = [=](const Outputs& out) {
                CHECK(out.size() == 1);
                if (out.size() != 1) return;
                CHECK(out[0].dtype() == dt);
                CHECK(out[0].shape() == s);
                const Host h = to_host(out[0]);
                CHECK(compare(to_host(run_op(op, attrs, {})[0]), h, Tier::Exact).empty());
                const int64_t n = h.size();
                if (n >= 7) {
                  for (const Attrs& other :
                       {random_attrs(uniform, s, dt, 43, 0, a, b), random_attrs(uniform, s, dt, 42, 1, a, b)}) {
                    const Host g = to_host(run_op(op, other, {})[0]);
                    int64_t same = 0;
                    for (int64_t k = 0; k < n; ++k) same += g.v[size_t(k)].z == h.v[size_t(k)].z;
                    CHECK(same < (n + 1) / 2);
                  }
                }
                double sum = 0, sq = 0;
                bool in_range = true;
                std::vector<bool> hit(is_integer(dt) ? size_t(b - a) : 0, false);
                for (const Num& v : h.v) {
                  const double x = v.z.real();
                  sum += x;
                  sq += x * x;
                  if (uniform)
                    in_range &= x >= a && x < b;
                  else
                    in_range &= std::isfinite(x);
                  if (!hit.empty() && x >= a && x < b) hit[size_t(x - a)] = true;
                }
                CHECK(in_range);
                if (n >= 10000) {
                  const double mean = sum / double(n), sd = std::sqrt(std::max(0.0, sq / double(n) - mean * mean));
                  CAPTURE(mean, sd);
                  if (!uniform) {
                    CHECK(std::fabs(mean - a) < 0.1);
                    CHECK(std::fabs(sd - b) < 0.1 * b);
                  } else if (is_integer(dt)) {
                    CHECK(std::fabs(mean - (a + b - 1) / 2) < 0.15);
                    CHECK(std::all_of(hit.begin(), hit.end(), [](bool x) { return x; }));
                  } else {
                    CHECK(std::fabs(mean - (a + b) / 2) < 0.1);
                    CHECK(std::fabs(sd - (b - a) / std::sqrt(12.0)) < 0.05 * (b - a));
                  }
                }
              };
              cases.push_back(c);
            }
            return cases;
          }};
}

void add_creation(std::map<std::string, OpSpec>& t) {
  t["fill"] = {kAll, [](const std::string& op, DType dt, bool big) {
                 std::vector<Case> cases;
                 uint64_t seed = 9300;
                 for (const Shape& s : {Shape{}, Shape{0}, Shape{2, 3}, Shape{3, 0, 2}, Shape{150, 300}}) {
                   if (!big && s.num_elements() > kSmall) continue;
                   Host v = random_host(dt, {}, seed++);
                   cases.push_back(op_case(s.to_string(), op, Attrs{{"shape", s.as_list()}}, {from_host(v)}, [v, s] {
                     Host y = make_host(v.dtype, s);
                     for (Num& x : y.v) x = v.v[0];
                     return Refs{y};
                   }));
                 }
                 return cases;
               }};
  t["range"] = {kReal, [](const std::string& op, DType dt, bool big) {
                  std::vector<std::array<double, 3>> rs;
                  if (is_unsigned_integer(dt))
                    rs = {{2, 40, 5}, {20, 3, -4}, {3, 3, 1}, {0, 1, 1}, {7, 100, 7}};
                  else
                    rs = {{-5, 17, 3}, {10, -3, -2}, {3, 3, 1}, {0, 1, 1}, {-100, 20, 9}};
                  if (is_floating(dt)) {
                    rs.push_back({0.5, 3.7, 0.3});
                    rs.push_back({-1.25, 2, 0.25});
                    rs.push_back({2, -1, -0.75});
                  }
                  if (big && dtype_size(dt) >= 4) rs.push_back({0, 40000, 1});
                  std::vector<Case> cases;
                  for (const auto& r : rs) {
                    const double start = r[0], limit = r[1], delta = r[2];
                    std::ostringstream what;
                    what << start << ", " << limit << ", " << delta;
                    cases.push_back(op_case(
                        what.str(), op, Attrs{{"start", start}, {"limit", limit}, {"delta", delta}, {"dtype", dt}}, {},
                        [=] {
                          std::vector<Num> vals;
                          for (int64_t k = 0;; ++k) {
                            const double v = start + static_cast<double>(k) * delta;
                            if (delta > 0 ? v >= limit : v <= limit) break;
                            vals.push_back(is_integer(dt) ? int_num(static_cast<Int128>(v), dt) : round_to(R(v), dt));
                          }
                          Host y = make_host(dt, {static_cast<int64_t>(vals.size())});
                          y.v = vals;
                          y.scale.assign(vals.size(), std::fabs(start) + std::fabs(limit));
                          return Refs{y};
                        },
                        Tier::Rounded));
                  }
                  return cases;
                }};
  t["linspace"] = {kF | kC, [](const std::string& op, DType dt, bool big) {
                     const std::vector<std::tuple<double, double, int64_t>> ls = {
                         {0, 1, 5}, {-2.5, 7, 4}, {3, 9, 1}, {2, 5, 0}, {1, -1, 7}, {0, 1, 50000}};
                     std::vector<Case> cases;
                     for (const auto& l : ls) {
                       const double start = std::get<0>(l), stop = std::get<1>(l);
                       const int64_t num = std::get<2>(l);
                       if (!big && num > kSmall) continue;
                       std::ostringstream what;
                       what << start << ", " << stop << ", " << num;
                       cases.push_back(op_case(
                           what.str(), op, Attrs{{"start", start}, {"stop", stop}, {"num", num}, {"dtype", dt}}, {},
                           [=] {
                             Host y = make_host(dt, {num});
                             // start + k * step: rounding errors scale with the ends
                             y.scale.assign(size_t(num), std::max(std::fabs(start), std::fabs(stop)));
                             for (int64_t k = 0; k < num; ++k) {
                               const double v = k == num - 1 && num > 1
                                                    ? stop
                                                    : start + double(k) * (stop - start) / double(num - 1);
                               y.v[size_t(k)] = round_to(R(num == 1 ? start : v), dt);
                             }
                             return Refs{y};
                           },
                           Tier::Rounded));
                     }
                     return cases;
                   }};
  t["eye"] = {kAll, [](const std::string& op, DType dt, bool big) {
                std::vector<Case> cases;
                for (const auto& rc : std::vector<std::pair<int64_t, int64_t>>{
                         {3, 3}, {2, 4}, {4, 2}, {0, 0}, {0, 3}, {3, 0}, {1, 1}, {200, 300}}) {
                  const int64_t r = rc.first, c = rc.second;
                  if (!big && r * c > kSmall) continue;
                  cases.push_back(op_case(std::to_string(r) + " x " + std::to_string(c), op,
                                          Attrs{{"num_rows", r}, {"num_columns", c}, {"dtype", dt}}, {}, [=] {
                                            Host y = make_host(dt, {r, c});
                                            for (int64_t i = 0; i < std::min(r, c); ++i)
                                              y.v[size_t(i * c + i)] = round_to(I(1), dt);
                                            for (Num& x : y.v) x = round_to(x, dt);
                                            return Refs{y};
                                          }));
                }
                return cases;
              }};
  t["random_normal"] = random_spec(false);
  t["random_uniform"] = random_spec(true);
}

// ---------------------------------------------------------------------------------------------
// Strings. Ops on string inputs accept no numeric dtype: each dtype's case feeds a numeric tensor
// and must be rejected; their behaviour on strings is in string_cases.

using Strs = std::vector<std::string>;

Tensor strs(const Shape& s, const Strs& v) { return make_string_tensor(s, v); }

// A case whose outputs must be string tensors (or int tensors) equal to the expected ones.
Case string_case(std::string what, const std::string& op, Attrs attrs, std::vector<Tensor> inputs,
                 std::vector<std::function<void(const Tensor&)>> checks) {
  Case c;
  c.what = std::move(what);
  c.inputs = std::move(inputs);
  c.body = [op, attrs](std::span<const Tensor> in) { return run_op(op, attrs, {in.begin(), in.end()}); };
  c.check = [checks](const Outputs& out) {
    REQUIRE(out.size() == checks.size());
    for (size_t i = 0; i < out.size(); ++i) checks[i](out[i]);
  };
  return c;
}

std::function<void(const Tensor&)> is_strings(Shape shape, Strs want) {
  return [shape, want](const Tensor& t) {
    CHECK(t.dtype() == DType::String);
    CHECK(t.shape() == shape);
    if (t.dtype() == DType::String) CHECK(t.to_vector<std::string>() == want);
  };
}

std::function<void(const Tensor&)> is_i64(I64s want) {
  return [want](const Tensor& t) {
    CHECK(t.dtype() == DType::Int64);
    CHECK(t.shape() == Shape{static_cast<int64_t>(want.size())});
    if (t.dtype() == DType::Int64) CHECK(t.to_vector<int64_t>() == want);
  };
}

template <class T>
std::function<void(const Tensor&)> is_values(Shape shape, std::vector<T> want) {
  return [shape, want](const Tensor& t) {
    CHECK(t.dtype() == dtype_v<T>);
    CHECK(t.shape() == shape);
    if (t.dtype() == dtype_v<T>) CHECK(t.to_vector<T>() == want);
  };
}

// The numeric-input case every string op must reject.
std::vector<Case> numeric_input(const std::string& op, DType dt, int inputs, Attrs attrs = {}) {
  std::vector<Tensor> in;
  for (int i = 0; i < inputs; ++i) in.push_back(from_host(random_host(dt, {3}, 17)));
  return {op_case("numeric input", op, attrs, in, [] { return Refs{}; })};
}

OpSpec string_only(int inputs, Attrs attrs, std::function<std::vector<Case>()> string_cases) {
  return {0,
          [inputs, attrs](const std::string& op, DType dt, bool) { return numeric_input(op, dt, inputs, attrs); },
          {},
          std::move(string_cases)};
}

void add_strings(std::map<std::string, OpSpec>& t) {
  t["string_split"] = string_only(1, {}, [] {
    const std::string op = "string_split";
    return std::vector<Case>{
        string_case("scalar on whitespace", op, {}, {strs({}, {" a  b\tc "})},
                    {is_strings({3}, {"a", "b", "c"}), is_i64({0, 3})}),
        string_case("vector on ','", op, Attrs{{"sep", std::string(",")}}, {strs({3}, {"a,,b", "", "c"})},
                    {is_strings({5}, {"a", "", "b", "", "c"}), is_i64({0, 3, 4, 5})}),
        string_case("maxsplit 1", op, Attrs{{"maxsplit", int64_t{1}}}, {strs({2}, {"a b c", "d"})},
                    {is_strings({3}, {"a", "b c", "d"}), is_i64({0, 2, 3})}),
        string_case("empty vector", op, {}, {strs({0}, {})}, {is_strings({0}, {}), is_i64({0})}),
        string_case("multi-byte separator", op, Attrs{{"sep", std::string("<>")}}, {strs({}, {"1<>2<>"})},
                    {is_strings({3}, {"1", "2", ""}), is_i64({0, 3})})};
  });
  t["string_bytes_split"] = string_only(1, {}, [] {
    const std::string op = "string_bytes_split";
    return std::vector<Case>{
        string_case("scalar", op, {}, {strs({}, {"Duck"})}, {is_strings({4}, {"D", "u", "c", "k"}), is_i64({0, 4})}),
        string_case("vector with an empty string", op, {}, {strs({2}, {"", "\xff"})},
                    {is_strings({1}, {"\xff"}), is_i64({0, 0, 1})})};
  });
  t["string_length"] = string_only(1, {}, [] {
    const std::string op = "string_length";
    return std::vector<Case>{
        string_case("bytes", op, {}, {strs({2, 2}, {"", "a", "アヒル", "🦆"})},
                    {is_values<int32_t>({2, 2}, {0, 1, 9, 4})}),
        string_case("characters", op, Attrs{{"unit", std::string("UTF8_CHAR")}},
                    {strs({3}, {"アヒル", "🦆", "a\xff"})}, {is_values<int32_t>({3}, {3, 1, 2})}),
        string_case("scalar", op, {}, {strs({}, {"abc"})}, {is_values<int32_t>({}, {3})})};
  });
  t["string_join"] = string_only(2, {}, [] {
    const std::string op = "string_join";
    return std::vector<Case>{
        string_case("two vectors", op, Attrs{{"separator", std::string(" ")}},
                    {strs({2}, {"a", "b"}), strs({2}, {"c", "d"})}, {is_strings({2}, {"a c", "b d"})}),
        string_case("broadcast scalar and column", op, {},
                    {strs({2, 1}, {"x", "y"}), strs({}, {"!"}), strs({2}, {"1", "2"})},
                    {is_strings({2, 2}, {"x!1", "x!2", "y!1", "y!2"})}),
        string_case("one input", op, {}, {strs({1}, {"z"})}, {is_strings({1}, {"z"})}),
        string_case("empty", op, {}, {strs({0}, {}), strs({}, {"q"})}, {is_strings({0}, {})})};
  });
  t["string_substr"] = string_only(1, Attrs{{"pos", int64_t{0}}, {"len", int64_t{1}}}, [] {
    const std::string op = "string_substr";
    return std::vector<Case>{
        string_case("bytes", op, Attrs{{"pos", int64_t{1}}, {"len", int64_t{2}}}, {strs({3}, {"abcd", "xy", "k"})},
                    {is_strings({3}, {"bc", "y", ""})}),
        string_case("negative pos", op, Attrs{{"pos", int64_t{-2}}, {"len", int64_t{5}}}, {strs({}, {"hello"})},
                    {is_strings({}, {"lo"})}),
        string_case("characters", op,
                    Attrs{{"pos", int64_t{1}}, {"len", int64_t{2}}, {"unit", std::string("UTF8_CHAR")}},
                    {strs({1}, {"アヒル 🦆"})}, {is_strings({1}, {"ヒル"})})};
  });
  t["string_lower"] = string_only(1, {}, [] {
    return std::vector<Case>{
        string_case("mixed", "string_lower", {}, {strs({2}, {"AbC", "É1"})}, {is_strings({2}, {"abc", "É1"})})};
  });
  t["string_upper"] = string_only(1, {}, [] {
    return std::vector<Case>{
        string_case("mixed", "string_upper", {}, {strs({2}, {"AbC", "é1"})}, {is_strings({2}, {"ABC", "é1"})})};
  });
  t["unicode_split"] = string_only(1, {}, [] {
    const std::string op = "unicode_split";
    return std::vector<Case>{
        string_case("scalar", op, {}, {strs({}, {"aé🦆"})}, {is_strings({3}, {"a", "é", "🦆"}), is_i64({0, 3})}),
        string_case("invalid bytes replaced", op, {}, {strs({2}, {"\xff", ""})},
                    {is_strings({1}, {"\xef\xbf\xbd"}), is_i64({0, 1, 1})}),
        string_case("invalid bytes ignored", op, Attrs{{"errors", std::string("ignore")}}, {strs({}, {"a\xe3\x82"})},
                    {is_strings({1}, {"a"}), is_i64({0, 1})})};
  });
  t["unicode_decode"] = string_only(1, {}, [] {
    const std::string op = "unicode_decode";
    auto i32 = [](std::vector<int32_t> v) { return is_values<int32_t>({static_cast<int64_t>(v.size())}, v); };
    return std::vector<Case>{
        string_case("walkthrough", op, {}, {strs({}, {"アヒル 🦆"})},
                    {i32({12450, 12498, 12523, 32, 129414}), is_i64({0, 5})}),
        string_case("vector with invalid bytes", op, {}, {strs({2}, {"a\xc0\xaf", "\xf4\x90\x80\x80"})},
                    {i32({97, 0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD}), is_i64({0, 3, 7})}),
        string_case("replacement char", op, Attrs{{"replacement_char", int64_t{63}}}, {strs({}, {"\xed\xa0\x80"})},
                    {i32({63, 63, 63}), is_i64({0, 3})})};
  });
  // to_number: the dtype under test is out_type
  t["string_to_number"] = {kS | kF,
                           [](const std::string& op, DType dt, bool) {
                             // every dtype builds a case (the rejected ones must fail): only integer
                             // dtypes take the integer path
                             const bool fl = !is_signed_integer(dt) && !is_unsigned_integer(dt) && dt != DType::Bool;
                             const Strs text = fl ? Strs{"1.5", " -0.25", "1e3", "+7"} : Strs{"0", "-42", " 17 ", "+7"};
                             const std::vector<double> want =
                                 fl ? std::vector<double>{1.5, -0.25, 1000, 7} : std::vector<double>{0, -42, 17, 7};
                             Host h = make_host(dt, {2, 2});
                             for (size_t k = 0; k < 4; ++k)
                               h.v[k] = fl ? round_to(float_num(want[k]), dt) : int_num(Int128(want[k]), dt);
                             return std::vector<Case>{op_case("2x2", op, Attrs{{"out_type", dt}}, {strs({2, 2}, text)},
                                                              [h] { return Refs{h}; })};
                           },
                           {float32, float64, int32, int64},
                           [] {
                             return std::vector<Case>{string_case(
                                 "inf and nan", "string_to_number", Attrs{{"out_type", float64}},
                                 {strs({2}, {"-inf", "1e400"})}, {is_values<double>({2}, {-INFINITY, INFINITY})})};
                           }};
  // decode_raw: the dtype under test is out_type; the bytes come from a random tensor of it
  t["decode_raw"] = {kAll, [](const std::string& op, DType dt, bool) {
                       std::vector<Case> cases;
                       uint64_t seed = 9100;
                       for (const Shape& s : std::vector<Shape>{{3}, {2, 4}, {1, 5}, {2, 0}}) {
                         Host h = random_host(dt, s, seed++);
                         Tensor x = from_host(h);
                         const int64_t rows = s.rank() == 1 ? 1 : s.dim(0);
                         const int64_t per = rows ? x.num_elements() / rows : 0;
                         Strs bytes;
                         const char* p = static_cast<const char*>(x.raw_data());
                         for (int64_t r = 0; r < rows; ++r)
                           bytes.emplace_back(p + r * per * dtype_size(dt), size_t(per * dtype_size(dt)));
                         Shape in_shape = s.rank() == 1 ? Shape{} : Shape{rows};
                         cases.push_back(op_case(s.to_string(), op, Attrs{{"out_type", dt}}, {strs(in_shape, bytes)},
                                                 [h] { return Refs{h}; }));
                       }
                       return cases;
                     }};
  // unicode_encode: int32 code points and int64 row splits
  t["unicode_encode"] = {kS,
                         [](const std::string& op, DType dt, bool) {
                           Host cps = index_host(dt, {5}, {104, 233, 0x1F986, 0x110000, 0xD800});
                           Tensor splits = constant(std::vector<int64_t>{0, 2, 2, 5}, {4});
                           Case c = op_case("3 rows", op, {}, {from_host(cps), splits}, [] { return Refs{}; });
                           auto want = is_strings({3}, {"hé", "", "🦆\xef\xbf\xbd\xef\xbf\xbd"});
                           c.check = [want](const Outputs& out) {
                             REQUIRE(out.size() == 1);
                             want(out[0]);
                           };
                           return std::vector<Case>{c};
                         },
                         {int32}};
  // ragged_value_rowids: int64 row splits, and the values they split (only their count is read)
  t["ragged_value_rowids"] = {
      kS | kU,
      [](const std::string& op, DType dt, bool) {
        std::vector<Case> cases;
        const std::vector<std::pair<I64s, I64s>> ss = {
            {{0, 2, 2, 5}, {0, 0, 2, 2, 2}}, {{0}, {}}, {{0, 0, 0}, {}}, {{0, 1}, {0}}};
        for (const auto& [sp, ids] : ss) {
          const auto nvals = static_cast<int64_t>(ids.size());
          Host in = index_host(dt, {static_cast<int64_t>(sp.size())}, sp);
          Host want = index_host(int64, {nvals}, ids);
          cases.push_back(op_case(list_string(sp), op, {}, {from_host(in), zeros({nvals, 2}, float32)},
                                  [want] { return Refs{want}; }));
        }
        return cases;
      },
      {int64}};
}

const std::map<std::string, OpSpec>& spec_table() {
  static const std::map<std::string, OpSpec> table = [] {
    std::map<std::string, OpSpec> t;
    add_elementwise(t);
    t["cast"] = cast_spec();
    const Gen sums{.lo = -2, .hi = 2, .clo = -1, .chi = 1};
    const Gen prods{.lo = -0.45, .hi = 0.45, .clo = -0.7, .chi = 0.7, .min_abs = 0.8};  // |x| in [0.8, 1.25)
    t["reduce_sum"] = reduce_spec(kNum, Red::Sum, sums);
    t["reduce_mean"] = reduce_spec(kNum, Red::Mean, sums);
    t["reduce_max"] = reduce_spec(kReal, Red::Max, {});
    t["reduce_min"] = reduce_spec(kReal, Red::Min, {});
    t["reduce_prod"] = reduce_spec(kNum, Red::Prod, prods);
    t["reduce_any"] = reduce_spec(kB, Red::Any, {});
    t["reduce_all"] = reduce_spec(kB, Red::All, {});
    t["sum_to_like"] = sum_to_like_spec();
    t["argmax"] = arg_spec(true);
    t["argmin"] = arg_spec(false);
    t["matmul"] = matmul_spec();
    t["conv2d"] = conv_spec(ConvOut::Y);
    t["conv2d_backprop_input"] = conv_spec(ConvOut::DX);
    t["conv2d_backprop_filter"] = conv_spec(ConvOut::DF);
    t["max_pool2d"] = pool_spec(Pool::Max);
    t["avg_pool2d"] = pool_spec(Pool::Avg);
    t["max_pool2d_grad"] = pool_spec(Pool::MaxGrad);
    t["max_pool2d_grad_grad"] = pool_spec(Pool::MaxGradGrad);
    t["avg_pool2d_grad"] = pool_spec(Pool::AvgGrad);
    add_movement(t);
    t["call"] = call_spec();
    t["print"] = print_spec();
    t["assert"] = assert_spec();
    add_creation(t);
    add_strings(t);
    return t;
  }();
  return table;
}

// Sends std::cout to a string while it lives.
class CoutCapture {
 public:
  CoutCapture() : old_(std::cout.rdbuf(buf_.rdbuf())) {}
  ~CoutCapture() { std::cout.rdbuf(old_); }
  CoutCapture(const CoutCapture&) = delete;
  CoutCapture& operator=(const CoutCapture&) = delete;
  std::string text() const { return buf_.str(); }

 private:
  std::ostringstream buf_;
  std::streambuf* old_;
};

/// What one run gave: the outputs, what it printed, and the message of what it threw.
struct Outcome {
  Outputs out;
  std::string printed;
  std::string error;  // "" when nothing was thrown
  bool invalid_argument = false;
};

Outcome outcome_of(const std::function<Outputs()>& f) {
  Outcome o;
  CoutCapture capture;
  try {
    o.out = f();
  } catch (const InvalidArgument& e) {
    o.error = e.what();
    o.invalid_argument = true;
  } catch (const std::exception& e) {
    o.error = e.what();
  }
  o.printed = capture.text();
  return o;
}

void run_case(const std::string& op, DType dt, const Case& c) {
  INFO("op " << op << ", dtype " << dtype_name(dt) << ", case " << c.what);
  const Outcome r = outcome_of([&c] { return c.run(); });
  CHECK(r.printed == c.prints);
  if (!c.throws.empty()) {
    INFO("must throw InvalidArgument: " << c.throws);
    CHECK(r.invalid_argument);
    CHECK(r.error == c.throws);
    return;
  }
  if (!r.error.empty()) {
    FAIL_CHECK("threw: " << r.error);
    return;
  }
  const Outputs& out = r.out;
  if (c.check) {
    c.check(out);
    return;
  }
  const Refs want = c.expect();
  CHECK(out.size() == want.size());
  if (out.size() != want.size()) return;
  for (size_t i = 0; i < out.size(); ++i) {
    const std::string diff = compare(to_host(out[i]), want[i], c.tier);
    INFO("output " << i << ": " << diff);
    CHECK(diff.empty());
  }
}

// "" when `f` throws InvalidArgument or Unimplemented naming the op, else what went wrong.
std::string rejection_problem(const std::string& op, const std::function<void()>& f) {
  try {
    f();
    return "it was accepted";
  } catch (const InvalidArgument& e) {
    if (std::string_view(e.what()).starts_with("[" + op + "]")) return "";
    return std::string("the message does not start with [") + op + "]: " + e.what();
  } catch (const Unimplemented& e) {
    if (std::string_view(e.what()).starts_with("[" + op + "]")) return "";
    return std::string("the message does not start with [") + op + "]: " + e.what();
  } catch (const std::exception& e) {
    return std::string("threw something other than InvalidArgument or Unimplemented: ") + e.what();
  }
}

void check_rejected(const std::string& op, DType dt, const Case& c) {
  INFO("op " << op << " must reject dtype " << dtype_name(dt) << " (case " << c.what << ")");
  const std::string problem = rejection_problem(op, [&c] { c.run(); });
  INFO(problem);
  CHECK(problem.empty());
}

// ---------------------------------------------------------------------------------------------
// Traced ops (issue 4): each case's op traced into a concrete function whose parameters are the
// case's inputs, run on the same inputs, against the eager op.

/// How closely a traced op's floating results must match the eager op's. Traced functions run
/// as code generated by the CPU backend (compiler/backend/cpu), which sums matmul products and
/// reductions in its own order and calls libm where the eager kernels use their own
/// approximations, so floats agree to the Approx tier (tests/support/op_cases.h); the
/// interpreter backend matches bit for bit. Integer and bool results are always compared bit
/// for bit.
constexpr Tier kTracedFloatTier = Tier::Approx;

// "" when a traced output matches the eager one (see kTracedFloatTier), else the difference.
std::string traced_mismatch(const Tensor& traced, const Tensor& eager) {
  if (traced.dtype() != eager.dtype() || !(traced.shape() == eager.shape()))
    return std::string("traced: ") + std::string(dtype_name(traced.dtype())) + " " + traced.shape().to_string() +
           ", eager: " + std::string(dtype_name(eager.dtype())) + " " + eager.shape().to_string();
  if (kTracedFloatTier != Tier::Exact && is_inexact(eager.dtype()))
    return compare(to_host(traced), to_host(eager), kTracedFloatTier);
  const size_t n = eager.nbytes();
  if (n == 0 || std::memcmp(traced.raw_data(), eager.raw_data(), n) == 0) return "";
  // the host comparison names the elements (it sees no difference between 0.0 and -0.0 or
  // between NaN payloads, which the bytes do)
  return "the bytes differ; " + compare(to_host(traced), to_host(eager), Tier::Exact);
}

std::vector<TensorSpec> specs_of(const std::vector<Tensor>& inputs) {
  std::vector<TensorSpec> specs;
  for (const Tensor& t : inputs) specs.push_back(TensorSpec::from_tensor(t));
  return specs;
}

// `unknown_dims`: every dim of every input is traced as unknown (-1), so the backend compiles a
// specialization when the function runs (the CPU backend) or infers shapes per call.
Ref<trace::ConcreteState> trace_case(const std::string& op, const Case& c, bool unknown_dims = false) {
  std::vector<TensorSpec> specs = specs_of(c.inputs);
  if (unknown_dims)
    for (TensorSpec& s : specs)
      for (int64_t d = 0; d < s.shape.rank(); ++d) s.shape.mut(size_t(d)) = -1;
  return trace::trace_concrete(op, specs, [&c](std::span<const Tensor> in) { return c.body(in); });
}

// Runs the case eagerly and traced: the same outputs (dtype, shape, values), the same printed
// text, the same error (an assert that fails throws when the function runs, not when it traces).
void run_traced(const std::string& op, DType dt, const Case& c, bool unknown_dims = false) {
  INFO("op " << op << " traced" << (unknown_dims ? " with unknown dims" : "") << ", dtype " << dtype_name(dt)
             << ", case " << c.what);
  Ref<trace::ConcreteState> cs;
  try {
    cs = trace_case(op, c, unknown_dims);
  } catch (const InvalidArgument& e) {
    // some ops need a dim known when tracing (a nested function with a fixed signature); that
    // is a typed refusal, not a wrong answer
    if (unknown_dims) return;
    FAIL_CHECK("tracing threw: " << e.what());
    return;
  } catch (const std::exception& e) {
    FAIL_CHECK("tracing threw: " << e.what());
    return;
  }
  const ConcreteFunction f(cs);
  const Outcome eager = outcome_of([&c] { return c.run(); });
  const Outcome traced = outcome_of([&] { return f(c.inputs); });
  CHECK(traced.printed == eager.printed);
  CHECK(traced.error == eager.error);
  if (!eager.error.empty() || !traced.error.empty()) return;
  CHECK(traced.out.size() == eager.out.size());
  for (size_t i = 0; i < traced.out.size() && i < eager.out.size(); ++i) {
    const std::string diff = traced_mismatch(traced.out[i], eager.out[i]);
    INFO("output " << i << ": " << diff);
    CHECK(diff.empty());
  }
}

// A dtype the op does not accept is rejected while tracing, as it is eagerly.
void check_traced_rejected(const std::string& op, DType dt, const Case& c) {
  INFO("op " << op << " traced must reject dtype " << dtype_name(dt) << " (case " << c.what << ")");
  const std::string problem = rejection_problem(op, [&] { trace_case(op, c); });
  INFO(problem);
  CHECK(problem.empty());
}

}  // namespace

namespace {
// Copies of `ts` on `device` (undefined and string tensors stay where they are).
Outputs on_device(std::span<const Tensor> ts, Device device) {
  Outputs out;
  for (const Tensor& t : ts) out.push_back(t.defined() && t.dtype() != DType::String ? t.to(device) : t);
  return out;
}

// A GPU run printed, threw and returned what the reference run did (floats at the traced tier).
void check_same_outcome(const Outcome& got, const Outcome& want) {
  CHECK(got.printed == want.printed);
  CHECK(got.error == want.error);
  if (!want.error.empty() || !got.error.empty()) return;
  REQUIRE(got.out.size() == want.out.size());
  for (size_t i = 0; i < want.out.size(); ++i) {
    if (!want.out[i].defined()) continue;
    const std::string diff = traced_mismatch(got.out[i], want.out[i]);
    INFO("output " << i << ": " << diff);
    CHECK(diff.empty());
  }
}

// Ops whose float results are sums that the GPU adds in another order than the CPU (a tree in
// a thread block, atomics): they may differ by a few roundings of the terms' magnitudes, which
// cancellation makes large next to the result itself.
const std::set<std::string> kSumsInAnyOrder = {"reduce_sum", "reduce_mean", "sum_to_like", "matmul",
                                               "unsorted_segment_sum"};

// `got` against `want` for a case of kSumsInAnyOrder: the relative tolerance applies to the sum
// of the terms' magnitudes (the same op on the inputs' absolute values) where that is larger.
void check_same_sums(const Case& c, const Outcome& got, const Outcome& want) {
  std::vector<Tensor> magnitudes;
  for (const Tensor& t : c.inputs) magnitudes.push_back(is_floating(t.dtype()) ? abs(t) : t);
  const Outputs scale = c.body(magnitudes);
  REQUIRE(got.out.size() == want.out.size());
  for (size_t i = 0; i < want.out.size(); ++i) {
    if (!want.out[i].defined()) continue;
    Host expected = to_host(want.out[i]);
    const Host s = to_host(scale[i]);
    for (const Num& v : s.v) expected.scale.push_back(std::abs(v.z));
    const std::string diff = compare(to_host(got.out[i]), expected, kTracedFloatTier);
    INFO("output " << i << " (tolerance relative to the sum of the terms' magnitudes): " << diff);
    CHECK(diff.empty());
  }
}

// Whether `spec`'s op accepts inputs of `dt`.
bool accepts(const OpSpec& spec, DType dt) {
  return spec.only.empty() ? (spec.accepts & class_of(dt)) != 0
                           : std::find(spec.only.begin(), spec.only.end(), dt) != spec.only.end();
}
}  // namespace

TEST_CASE("every registered op has a conformance entry", "[conformance]") {
  const auto& table = spec_table();
  for (const ops::OpDef& def : ops::all_ops())
    if (!table.count(std::string(def.name)))
      FAIL_CHECK("op '" << def.name << "' has no conformance entry: add one to tests/ops/test_conformance.cpp");
  for (const auto& [name, spec] : table) {
    bool registered = false;
    for (const ops::OpDef& def : ops::all_ops()) registered |= def.name == name;
    if (!registered) FAIL_CHECK("conformance entry '" << name << "' names no registered op");
  }
}

TEST_CASE("every op matches its reference for each dtype it accepts and rejects the others", "[conformance]") {
  const auto& table = spec_table();
  for (const ops::OpDef& def : ops::all_ops()) {
    const std::string op(def.name);
    auto it = table.find(op);
    if (it == table.end()) {
      FAIL_CHECK("op '" << op << "' has no conformance entry");
      continue;
    }
    const OpSpec& spec = it->second;
    for (DType dt : kAllDTypes) {
      const bool accepted = accepts(spec, dt);
      const std::vector<Case> cases = it->second.cases(op, dt, accepted && runs_big_cases(dt));
      for (const Case& c : cases) {
        if (accepted)
          run_case(op, dt, c);
        else
          check_rejected(op, dt, c);
      }
    }
  }
}

// Every case of every op, traced: function(op) gives the eager op's results on the cases' seeded
// random inputs (issue 4). No op is skipped. Only the small cases run: the large ones take the
// same kernels' parallel paths, which the eager test covers. Random ops are compared in full,
// not only by dtype and shape: their values are a function of their seed and offset attributes,
// so the traced op must give the eager op's values. print must print the same text (it has no
// outputs), and an assert that fails must throw the same error when the function runs.
TEST_CASE("every op traced into a function gives the eager op's results", "[conformance][traced]") {
  const auto& table = spec_table();
  for (const ops::OpDef& def : ops::all_ops()) {
    const std::string op(def.name);
    auto it = table.find(op);
    if (it == table.end()) continue;  // reported by the tests above
    const OpSpec& spec = it->second;
    for (DType dt : kAllDTypes) {
      const bool accepted = accepts(spec, dt);
      for (const Case& c : spec.cases(op, dt, false)) {
        if (accepted)
          run_traced(op, dt, c);
        else
          check_traced_rejected(op, dt, c);
      }
    }
  }
}

// The same with every input dim unknown when tracing: the CPU backend compiles the graph for the
// shapes it runs with (docs/cpu_backend.md), which must agree with eager as well.
TEST_CASE("every op traced with unknown dims gives the eager op's results", "[conformance][traced]") {
  const auto& table = spec_table();
  for (const ops::OpDef& def : ops::all_ops()) {
    const std::string op(def.name);
    auto it = table.find(op);
    if (it == table.end()) continue;
    const OpSpec& spec = it->second;
    for (DType dt : kAllDTypes) {
      const bool accepted = accepts(spec, dt);
      if (!accepted) continue;
      for (const Case& c : spec.cases(op, dt, false)) run_traced(op, dt, c, /*unknown_dims=*/true);
    }
  }
}

TEST_CASE("every op that takes string tensors matches its reference on strings", "[conformance][strings]") {
  const auto& table = spec_table();
  for (const ops::OpDef& def : ops::all_ops()) {
    if (!def.has(ops::kStrings)) continue;
    auto it = table.find(std::string(def.name));
    if (it == table.end()) continue;  // reported by the test above
    // the movement ops (reshape, shape_of...) are covered in tests/ops/test_strings.cpp
    if (!it->second.string_cases) continue;
    for (const Case& c : it->second.string_cases()) {
      run_case(std::string(def.name), DType::String, c);
      run_traced(std::string(def.name), DType::String, c);  // string ops trace and run in graphs
    }
  }
}

// Every case of every op on the GPU ([.cuda], scripts/gpu_check.sh): inputs copied to GPU:0 and
// the op run in a GPU scope gives the CPU's results (floats at the traced tier) and the same
// errors. Ops without a GPU kernel run on the CPU through dispatch, so every op is covered.
TEST_CASE("every op on the GPU gives the CPU's results", "[.cuda]") {
  if (gpu_count() == 0) FAIL("no GPU");
  const Device gpu{DeviceType::GPU, 0};
  const auto& table = spec_table();
  for (const ops::OpDef& def : ops::all_ops()) {
    const std::string op(def.name);
    auto it = table.find(op);
    if (it == table.end()) continue;
    const OpSpec& spec = it->second;
    for (DType dt : kAllDTypes) {
      if (!accepts(spec, dt)) continue;
      for (const Case& c : spec.cases(op, dt, runs_big_cases(dt))) {
        INFO("op " << op << " dtype " << dtype_name(dt) << " case " << c.what);
        const Outcome cpu = outcome_of([&c] { return c.run(); });
        const Outcome on_gpu = outcome_of([&] {
          const std::vector<Tensor> in = on_device(c.inputs, gpu);
          DeviceScope scope(gpu);
          return on_device(c.body(in), kCPU);
        });
        if (kSumsInAnyOrder.count(op) && is_floating(dt) && cpu.error.empty() && on_gpu.error.empty()) {
          check_same_sums(c, on_gpu, cpu);
          continue;
        }
        check_same_outcome(on_gpu, cpu);
      }
    }
  }
}

// The CUDA backend's program of every traced case (compiler/backend/cuda): generated from the
// graph's plan and compiled with NVRTC for sm_90, which needs no GPU. Kernels that come out the
// same (the same op, dtype and shape) are compiled once, all in one program.
TEST_CASE("every op's traced graph has a CUDA program that compiles", "[cuda-source]") {
  std::string why;
  if (!ops::cuda::nvrtc_available(why)) {
    WARN("NVRTC is not available, the CUDA programs are not compiled: " << why);
    return;
  }
  const auto& table = spec_table();
  std::set<std::string> seen;
  std::string program = ops::cuda::gpu_prelude();
  size_t graphs = 0;
  for (const ops::OpDef& def : ops::all_ops()) {
    const std::string op(def.name);
    auto it = table.find(op);
    if (it == table.end()) continue;
    const OpSpec& spec = it->second;
    for (DType dt : kAllDTypes) {
      if (!accepts(spec, dt)) continue;
      for (const Case& c : spec.cases(op, dt, false)) {
        INFO("op " << op << " dtype " << dtype_name(dt) << " case " << c.what);
        Ref<trace::ConcreteState> cs;
        try {
          cs = trace_case(op, c);
        } catch (const std::exception&) {
          continue;  // the traced tests above report it
        }
        if (!backend::cpu::is_static(*cs->optimized)) continue;
        ++graphs;
        std::string kernels;
        try {
          kernels = backend::cuda::program_kernels(backend::cpu::lower(*cs->optimized, backend::cuda::lower_options()),
                                                   "kernel");
        } catch (const Internal& e) {
          FAIL_CHECK(e.what());
          continue;
        }
        // one kernel per `extern "C"`, its name the text up to the first '('
        for (size_t at = kernels.find("extern \"C\""); at != std::string::npos;) {
          const size_t next = kernels.find("extern \"C\"", at + 1);
          std::string k = kernels.substr(at, next == std::string::npos ? std::string::npos : next - at);
          const size_t name = k.find("void ") + 5, paren = k.find('(');
          k.replace(name, paren - name, "NAME");
          if (seen.insert(k).second) {
            k.replace(name, 4, "k" + std::to_string(seen.size()));
            program += k;
          }
          at = next;
        }
      }
    }
  }
  INFO(graphs << " graphs, " << seen.size() << " distinct kernels");
  CHECK(graphs > 1000);
  CHECK(seen.size() > 100);
  try {
    ops::cuda::compile_cubin(program, "conformance", 90);
  } catch (const Internal& e) {
    FAIL_CHECK(e.what());
  }
}

// The first case of every op and dtype traced and called with its inputs on GPU:0 ([.cuda]):
// the CUDA backend's program (its kernels, and the eager GPU ops of its fallbacks) gives the
// CPU's eager results (floats at the traced tier), the same printed text and the same errors.
// One case per op and dtype keeps it to about 300 NVRTC compiles.
TEST_CASE("every op traced and called on the GPU gives the eager results", "[.cuda]") {
  if (gpu_count() == 0) FAIL("no GPU");
  const Device gpu{DeviceType::GPU, 0};
  const auto& table = spec_table();
  for (const ops::OpDef& def : ops::all_ops()) {
    const std::string op(def.name);
    auto it = table.find(op);
    if (it == table.end()) continue;
    const OpSpec& spec = it->second;
    for (DType dt : kAllDTypes) {
      if (!accepts(spec, dt)) continue;
      const std::vector<Case> cases = spec.cases(op, dt, false);
      if (cases.empty()) continue;
      const Case& c = cases.front();
      INFO("op " << op << " traced on the GPU, dtype " << dtype_name(dt) << ", case " << c.what);
      Ref<trace::ConcreteState> cs;
      try {
        cs = trace_case(op, c);
      } catch (const std::exception&) {
        continue;  // the traced tests on the CPU report it
      }
      const ConcreteFunction f(cs);
      const Outcome eager = outcome_of([&c] { return c.run(); });
      const Outcome on_gpu = outcome_of([&] { return on_device(f(on_device(c.inputs, gpu)), kCPU); });
      check_same_outcome(on_gpu, eager);
    }
  }
}
