// Host copies of tensors, seeded inputs and tolerant comparison for the op conformance tests.
#include "tests/support/op_cases.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace kiln::testing {

const std::vector<DType> kAllDTypes = {bool_,  int8,    int16,    int32,   int64,   uint8,     uint16,    uint32,
                                       uint64, float16, bfloat16, float32, float64, complex64, complex128};

namespace {

int int_bits(DType d) { return 8 * dtype_size(d); }

std::string int128_string(Int128 v) {
  if (v == 0) return "0";
  const bool neg = v < 0;
  UInt128 u = neg ? UInt128(0) - static_cast<UInt128>(v) : static_cast<UInt128>(v);
  std::string s;
  while (u) {
    s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  }
  return neg ? "-" + s : s;
}

}  // namespace

Int128 int_min(DType d) {
  if (d == DType::Bool || is_unsigned_integer(d)) return 0;
  return -(Int128(1) << (int_bits(d) - 1));
}

Int128 int_max(DType d) {
  if (d == DType::Bool) return 1;
  if (is_unsigned_integer(d)) return (Int128(1) << int_bits(d)) - 1;
  return (Int128(1) << (int_bits(d) - 1)) - 1;
}

Num int_num(Int128 v, DType d) {
  // a caller building cases for every dtype may ask for a float one: the value, as a float
  if (!is_signed_integer(d) && !is_unsigned_integer(d) && d != DType::Bool)
    return float_num(std::complex<double>(static_cast<double>(v)));
  Num n;
  if (d == DType::Bool) {
    n.i = v != 0;
  } else {
    const int bits = int_bits(d);
    UInt128 u = static_cast<UInt128>(v) & ((UInt128(1) << bits) - 1);
    Int128 r = static_cast<Int128>(u);
    if (is_signed_integer(d) && ((u >> (bits - 1)) & 1)) r -= Int128(1) << bits;
    n.i = r;
  }
  n.z = static_cast<double>(n.i);
  return n;
}

Num float_num(std::complex<double> z) {
  Num n;
  n.z = z;
  return n;
}

double as_float32(double x) { return as_float32(static_cast<float>(x)); }

double as_float32(float x) {
  volatile float f = x;
  return f;
}

Num round_to(const Num& x, DType d) {
  if (d == DType::Bool) return int_num(x.i != 0 || x.z != std::complex<double>(0), d);
  if (is_integer(d)) return int_num(x.i, d);
  const double re = x.z.real(), im = x.z.imag();
  switch (d) {
    case DType::Float16:
      return float_num(static_cast<float>(Half(static_cast<float>(re))));
    case DType::BFloat16:
      return float_num(static_cast<float>(BFloat16(static_cast<float>(re))));
    case DType::Float32:
      return float_num(as_float32(re));
    case DType::Float64:
      return float_num(re);
    case DType::Complex64:
      return float_num({as_float32(re), as_float32(im)});
    default:
      return float_num(x.z);
  }
}

Host make_host(DType dtype, const Shape& shape) {
  Host h;
  h.dtype = dtype;
  h.shape = shape;
  h.v.resize(static_cast<size_t>(shape.num_elements()));
  return h;
}

Host to_host(const Tensor& t) {
  Host h = make_host(t.dtype(), t.shape());
  visit_dtype(t.dtype(), "to_host", [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(t.raw_data());
    for (size_t k = 0; k < h.v.size(); ++k) {
      Num& n = h.v[k];
      if constexpr (std::is_same_v<T, bool>) {
        n = int_num(p[k] ? 1 : 0, DType::Bool);
      } else if constexpr (std::is_integral_v<T>) {
        n.i = p[k];
        n.z = static_cast<double>(p[k]);
      } else if constexpr (is_complex_v<T>) {
        n.z = {static_cast<double>(p[k].real()), static_cast<double>(p[k].imag())};
      } else if constexpr (std::is_floating_point_v<T>) {
        n.z = static_cast<double>(p[k]);
      } else {
        n.z = static_cast<double>(static_cast<float>(p[k]));  // float16, bfloat16
      }
    }
  });
  return h;
}

Tensor from_host(const Host& h) {
  Tensor t = Tensor::empty(h.shape, h.dtype);
  visit_dtype(h.dtype, "from_host", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(t.mutable_raw_data());
    for (size_t k = 0; k < h.v.size(); ++k) {
      const Num& n = h.v[k];
      if constexpr (std::is_same_v<T, bool>) {
        p[k] = n.i != 0;
      } else if constexpr (std::is_integral_v<T>) {
        p[k] = static_cast<T>(n.i);
      } else if constexpr (is_complex_v<T>) {
        using V = typename T::value_type;
        p[k] = T(static_cast<V>(n.z.real()), static_cast<V>(n.z.imag()));
      } else if constexpr (std::is_floating_point_v<T>) {
        p[k] = static_cast<T>(n.z.real());
      } else {
        p[k] = T(static_cast<float>(n.z.real()));
      }
    }
  });
  return t;
}

Host random_host(DType dtype, const Shape& shape, uint64_t seed, const Gen& g) {
  Host h = make_host(dtype, shape);
  const int64_t n = h.size();
  if (dtype == DType::Bool) {
    Host u = to_host(random::uniform(shape, seed, 0.0, 1.0, float64));
    for (int64_t k = 0; k < n; ++k) h.v[k] = int_num(u.v[k].z.real() < 0.5, dtype);
    return h;
  }
  if (is_integer(dtype)) {
    const double lo_t = static_cast<double>(int_min(dtype)), hi_t = static_cast<double>(int_max(dtype));
    const double lo = g.int_full ? lo_t : std::max(g.int_lo, lo_t);
    const double hi = g.int_full ? hi_t : std::min(g.int_hi, hi_t);
    Host u = to_host(random::uniform(shape, seed, lo, hi, float64));
    for (int64_t k = 0; k < n; ++k) {
      const double d = std::trunc(u.v[k].z.real());
      Int128 v = d >= hi_t ? int_max(dtype) : d <= lo_t ? int_min(dtype) : static_cast<Int128>(d);
      h.v[k] = int_num(v, dtype);
    }
    if (g.int_full && g.int_edges) {
      const Int128 edges[] = {int_min(dtype), int_max(dtype), 0, 1, -1};
      const int64_t count = is_signed_integer(dtype) ? 5 : 4;
      for (int64_t k = 0; k < std::min(n, count); ++k) h.v[k] = int_num(edges[k], dtype);
    }
    for (int64_t k = 0; k < std::min<int64_t>(n, static_cast<int64_t>(g.first.size())); ++k) {
      const double d = std::trunc(g.first[k]);
      h.v[k] = int_num(d >= hi_t ? int_max(dtype) : d <= lo_t ? int_min(dtype) : static_cast<Int128>(d), dtype);
    }
    if (g.min_abs > 0)
      for (Num& x : h.v)
        if (x.i == 0) x = int_num(1, dtype);
    return h;
  }
  const bool cplx = is_complex(dtype);
  Host re = to_host(random::uniform(shape, seed, cplx ? g.clo : g.lo, cplx ? g.chi : g.hi, float64));
  Host im;
  if (cplx) im = to_host(random::uniform(shape, seed + 1000003, g.clo, g.chi, float64));
  for (int64_t k = 0; k < n; ++k) {
    double r = re.v[k].z.real(), i = cplx ? im.v[k].z.real() : 0.0;
    if (g.halves) {
      r = std::round(2 * r) / 2;
      i = std::round(2 * i) / 2;
    }
    if (g.min_abs > 0 && std::fabs(r) < g.min_abs) r = r < 0 ? r - g.min_abs : r + g.min_abs;
    h.v[k] = round_to(float_num({r, i}), dtype);
  }
  if (g.specials && !cplx) {
    const double inf = std::numeric_limits<double>::infinity();
    const double sp[] = {std::numeric_limits<double>::quiet_NaN(), inf, -inf, -0.0};
    for (int64_t k = 0; k < std::min<int64_t>(n, 4); ++k) h.v[k] = round_to(float_num(sp[k]), dtype);
  }
  for (int64_t k = 0; k < std::min<int64_t>(n, static_cast<int64_t>(g.first.size())); ++k)
    h.v[k] = round_to(float_num(g.first[k]), dtype);
  return h;
}

Tolerance tolerance(DType d, Tier tier) {
  if (tier == Tier::Exact || !is_inexact(d)) return {};
  if (tier == Tier::Rounded) {
    switch (d) {
      case DType::Float16:
        return {1e-3, 6e-8};
      case DType::BFloat16:
        return {8e-3, 1e-38};
      case DType::Float32:
        return {2.5e-7, 1e-44};
      case DType::Float64:
        return {5e-16, 1e-300};
      case DType::Complex64:
        return {1e-6, 1e-44};
      default:
        return {2e-15, 1e-300};
    }
  }
  switch (d) {
    case DType::Float16:
      return {1e-2, 1e-3};
    case DType::BFloat16:
      return {2e-2, 1e-2};
    case DType::Float32:
    case DType::Complex64:
      return {1e-5, 1e-6};
    default:
      return {1e-12, 1e-12};
  }
}

std::string num_string(const Num& x, DType d) {
  if (!is_inexact(d)) return int128_string(x.i);
  char buf[96];
  if (is_complex(d))
    std::snprintf(buf, sizeof(buf), "(%.17g%+.17gj)", x.z.real(), x.z.imag());
  else
    std::snprintf(buf, sizeof(buf), "%.17g", x.z.real());
  return buf;
}

std::string compare(const Host& actual, const Host& expected, Tier tier) {
  std::ostringstream os;
  if (actual.dtype != expected.dtype) {
    os << "dtype " << dtype_name(actual.dtype) << ", expected " << dtype_name(expected.dtype);
    return os.str();
  }
  if (!(actual.shape == expected.shape)) {
    os << "shape " << actual.shape.to_string() << ", expected " << expected.shape.to_string();
    return os.str();
  }
  const DType d = expected.dtype;
  const Tolerance tol = tolerance(d, tier);
  int64_t bad = 0;
  for (int64_t k = 0; k < expected.size(); ++k) {
    const Num &a = actual.v[k], &e = expected.v[k];
    bool ok;
    if (!is_inexact(d)) {
      ok = a.i == e.i;
    } else {
      const bool a_nan = std::isnan(a.z.real()) || std::isnan(a.z.imag());
      const bool e_nan = std::isnan(e.z.real()) || std::isnan(e.z.imag());
      const bool any_inf =
          std::isinf(a.z.real()) || std::isinf(a.z.imag()) || std::isinf(e.z.real()) || std::isinf(e.z.imag());
      if (a_nan || e_nan) {
        ok = a_nan && e_nan;
      } else if (tier == Tier::Exact || any_inf) {
        ok = a.z == e.z;
      } else {
        double mag = std::abs(e.z);
        if (!expected.scale.empty()) mag = std::max(mag, expected.scale[k]);
        ok = std::abs(a.z - e.z) <= tol.atol + tol.rtol * mag;
      }
    }
    if (!ok && ++bad <= 4) {
      os << (bad > 1 ? "; " : "") << "at ";
      const auto idx = unravel(k, expected.shape);
      os << '[';
      for (size_t j = 0; j < idx.size(); ++j) os << (j ? ", " : "") << idx[j];
      os << "] got " << num_string(a, d) << ", expected " << num_string(e, d);
    }
  }
  if (bad == 0) return "";
  std::ostringstream head;
  head << bad << " of " << expected.size() << " elements differ (rtol " << tol.rtol << ", atol " << tol.atol
       << "): " << os.str();
  return head.str();
}

std::vector<int64_t> unravel(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(static_cast<size_t>(shape.rank()), 0);
  for (int64_t i = shape.rank() - 1; i >= 0; --i) {
    const int64_t d = shape.dim(static_cast<size_t>(i));
    idx[static_cast<size_t>(i)] = d ? flat % d : 0;
    flat = d ? flat / d : 0;
  }
  return idx;
}

int64_t ravel(const std::vector<int64_t>& idx, const Shape& shape) {
  int64_t flat = 0;
  for (size_t i = 0; i < idx.size(); ++i) flat = flat * shape.dim(i) + idx[i];
  return flat;
}

}  // namespace kiln::testing
