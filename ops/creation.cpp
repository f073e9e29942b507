// Tensor creation: nested C++ lists with TensorFlow's dtype inference, scalars converted exactly to a
// requested dtype, and the creation ops (fill, eye, range, linspace, random) through the dispatcher.
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "ops/dispatch.h"
#include "ops/ops.h"
#include "runtime/string_tensor.h"

namespace kiln {
namespace {

struct ListInfo {
  Shape shape;
  bool any_bool = false, any_int = false, any_float = false, any_complex = false, any_u64 = false;
  bool any_string = false;
  int64_t min_int = 0, max_int = 0;
};

// Walks the nested list, checking that it is rectangular and collecting what dtype it needs.
void scan(const NestedList& l, size_t depth, ListInfo& info, bool& shape_set) {
  if (l.kind() == NestedList::Kind::List) {
    int64_t n = static_cast<int64_t>(l.items().size());
    if (!shape_set) {
      if (info.shape.rank() == static_cast<int64_t>(depth)) info.shape.push_back(n);
    }
    if (static_cast<int64_t>(depth) >= info.shape.rank() || info.shape.dim(depth) != n)
      fail<InvalidArgument>("constant", "can't convert a non-rectangular nested list to a tensor (a list of length ", n,
                            " at depth ", depth, " where shape ", info.shape.to_list_string(), " was expected); ",
                            "use kiln::ragged::constant for ragged data");
    if (n == 0) {
      shape_set = true;
      return;
    }
    for (const NestedList& it : l.items()) scan(it, depth + 1, info, shape_set);
    return;
  }
  // a scalar: its depth fixes the rank
  if (!shape_set) shape_set = true;
  if (static_cast<int64_t>(depth) != info.shape.rank())
    fail<InvalidArgument>("constant", "can't convert a non-rectangular nested list to a tensor (a scalar at depth ",
                          depth, " where shape ", info.shape.to_list_string(), " was expected)");
  switch (l.kind()) {
    case NestedList::Kind::Bool:
      info.any_bool = true;
      break;
    case NestedList::Kind::Int:
      if (!info.any_int) info.min_int = info.max_int = l.as_int();
      info.any_int = true;
      info.any_u64 |= l.is_u64();
      info.min_int = std::min(info.min_int, l.as_int());
      info.max_int = std::max(info.max_int, l.as_int());
      break;
    case NestedList::Kind::Float:
      info.any_float = true;
      break;
    case NestedList::Kind::Complex:
      info.any_complex = true;
      break;
    case NestedList::Kind::String:
      info.any_string = true;
      break;
    case NestedList::Kind::List:
      break;
  }
}

template <class T>
bool exactly_representable(std::complex<double> v) {
  if constexpr (is_complex_v<T>) {
    return true;
  } else {
    if (v.imag() != 0) return false;
    double r = v.real();
    if constexpr (std::is_same_v<T, bool>) {
      return r == 0 || r == 1;
    } else if constexpr (std::is_integral_v<T>) {
      if (std::isnan(r) || r != std::trunc(r)) return false;
      // max()+1 is a power of two and exact as a double; comparing with `<` keeps 2^63 (which
      // rounds from INT64_MAX) out, so the static_cast that follows is always defined
      const double upper = std::ldexp(1.0, std::numeric_limits<T>::digits);
      return r >= static_cast<double>(std::numeric_limits<T>::min()) && r < upper;
    } else {
      return true;  // floats: rounding is the usual conversion
    }
  }
}

template <class T>
T convert(std::complex<double> v) {
  if constexpr (is_complex_v<T>)
    return T(static_cast<typename T::value_type>(v.real()), static_cast<typename T::value_type>(v.imag()));
  else if constexpr (std::is_same_v<T, bool>)
    return v.real() != 0;
  else
    return static_cast<T>(v.real());
}

template <class T>
T convert_int(int64_t v) {
  if constexpr (is_complex_v<T>)
    return T(static_cast<typename T::value_type>(v));
  else if constexpr (std::is_same_v<T, bool>)
    return v != 0;
  else
    return static_cast<T>(v);
}

template <class T>
bool int_representable(int64_t v) {
  if constexpr (std::is_same_v<T, bool>)
    return v == 0 || v == 1;
  else if constexpr (std::is_integral_v<T>) {
    if constexpr (std::is_unsigned_v<T>) {
      return v >= 0 && static_cast<uint64_t>(v) <= std::numeric_limits<T>::max();
    } else {
      return v >= std::numeric_limits<T>::min() && v <= std::numeric_limits<T>::max();
    }
  } else
    return true;
}

void fill_values(const NestedList& l, DType dtype, char*& out, bool strict) {
  if (l.kind() == NestedList::Kind::List) {
    for (const NestedList& it : l.items()) fill_values(it, dtype, out, strict);
    return;
  }
  visit_dtype(dtype, "constant", [&](auto tag) {
    using T = decltype(tag);
    T v;
    if (l.kind() == NestedList::Kind::Int || l.kind() == NestedList::Kind::Bool) {
      if (l.is_u64() && std::is_same_v<T, uint64_t>) {
        v = static_cast<T>(static_cast<uint64_t>(l.as_int()));
      } else {
        if (strict && l.kind() == NestedList::Kind::Int && !int_representable<T>(l.as_int()))
          fail<InvalidArgument>("constant", "value ", l.as_int(), " cannot be converted to ", dtype_name(dtype));
        v = convert_int<T>(l.as_int());
      }
    } else {
      if (strict && !exactly_representable<T>(l.as_complex()))
        fail<InvalidArgument>("constant", "value ", l.as_complex().real(), " cannot be converted to ",
                              dtype_name(dtype));
      v = convert<T>(l.as_complex());
    }
    std::memcpy(out, &v, sizeof(T));
    out += sizeof(T);
  });
}

void collect_strings(const NestedList& l, std::vector<std::string_view>& out) {
  if (l.kind() == NestedList::Kind::List) {
    for (const NestedList& it : l.items()) collect_strings(it, out);
    return;
  }
  out.push_back(l.as_string());
}

}  // namespace

Tensor constant(const NestedList& values, std::optional<DType> dtype) {
  ListInfo info;
  bool shape_set = false;
  scan(values, 0, info, shape_set);
  if (info.any_string || (dtype && *dtype == DType::String)) {
    if (info.any_bool || info.any_int || info.any_float || info.any_complex) {
      if (info.any_string) fail<InvalidArgument>("constant", "a nested list mixes strings and other values");
      fail<InvalidArgument>("constant", "numeric values cannot make a string tensor");
    }
    if (dtype && *dtype != DType::String)
      fail<InvalidArgument>("constant", "strings cannot be converted to ", dtype_name(*dtype),
                            " (use kiln::strings::to_number)");
    std::vector<std::string_view> strs;
    collect_strings(values, strs);
    return make_string_tensor(info.shape, strs);
  }
  DType dt;
  if (dtype) {
    dt = *dtype;
    if (dt == DType::String) fail<InvalidArgument>("constant", "numeric values cannot make a string tensor");
    if (info.any_complex && !is_complex(dt))
      fail<InvalidArgument>("constant", "complex values cannot be converted to ", dtype_name(dt));
  } else {
    if (info.any_bool && (info.any_int || info.any_float || info.any_complex))
      fail<InvalidArgument>("constant", "a nested list mixes bools and numbers; pass a dtype");
    if (info.any_complex)
      dt = DType::Complex128;
    else if (info.any_float)
      dt = DType::Float32;
    else if (info.any_int) {
      if (info.any_u64 && info.min_int < 0)
        dt = DType::UInt64;
      else if (info.min_int >= INT32_MIN && info.max_int <= INT32_MAX)
        dt = DType::Int32;
      else
        dt = DType::Int64;
    } else if (info.any_bool)
      dt = DType::Bool;
    else
      dt = DType::Float32;  // empty list, as TensorFlow
  }
  Tensor t = Tensor::empty(info.shape, dt);
  char* out = static_cast<char*>(t.mutable_raw_data());
  fill_values(values, dt, out, /*strict=*/true);
  return t;
}

Tensor scalar_of(std::complex<double> value, DType dtype, std::string_view op) {
  Tensor t = Tensor::empty(Shape{}, dtype);
  visit_dtype(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    if (!exactly_representable<T>(value)) {
      if (value.imag() != 0)
        fail<InvalidArgument>(op, "cannot convert (", value.real(), "+", value.imag(), "j) to a tensor of dtype ",
                              dtype_name(dtype));
      fail<InvalidArgument>(op, "cannot convert ", value.real(), " to a tensor of dtype ", dtype_name(dtype));
    }
    *static_cast<T*>(t.mutable_raw_data()) = convert<T>(value);
  });
  return t;
}

Tensor scalar_of(int64_t value, DType dtype, std::string_view op) {
  Tensor t = Tensor::empty(Shape{}, dtype);
  visit_dtype(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    if (!int_representable<T>(value))
      fail<InvalidArgument>(op, "cannot convert ", value, " to a tensor of dtype ", dtype_name(dtype));
    *static_cast<T*>(t.mutable_raw_data()) = convert_int<T>(value);
  });
  return t;
}

// ---------------------------------------------------------------------------------------------
// Creation ops through the dispatcher (so traces record them as nodes).

using ops::apply1;
using ops::Attrs;
using ops::OpId;

Tensor fill(const Shape& shape, const Tensor& value) {
  return apply1(OpId::Fill, Attrs{{"shape", shape.as_list()}}, std::span<const Tensor>(&value, 1));
}
Tensor zeros(const Shape& shape, DType dtype) { return fill(shape, scalar_of(int64_t{0}, dtype, "zeros")); }
Tensor ones(const Shape& shape, DType dtype) { return fill(shape, scalar_of(int64_t{1}, dtype, "ones")); }
// with unknown dims (in a graph) the shape comes from x at run time
Tensor zeros_like(const Tensor& x) {
  return x.shape().is_fully_defined() ? zeros(x.shape(), x.dtype()) : broadcast_like(zeros({}, x.dtype()), x);
}
Tensor ones_like(const Tensor& x) {
  return x.shape().is_fully_defined() ? ones(x.shape(), x.dtype()) : broadcast_like(ones({}, x.dtype()), x);
}

Tensor eye(int64_t num_rows, DType dtype) { return eye(num_rows, num_rows, dtype); }
Tensor eye(int64_t num_rows, int64_t num_cols, DType dtype) {
  return apply1(OpId::Eye, Attrs{{"num_rows", num_rows}, {"num_columns", num_cols}, {"dtype", dtype}}, {});
}

Tensor range(Number start, Number limit, Number delta, std::optional<DType> dtype) {
  DType dt = dtype ? *dtype : (start.is_float || limit.is_float || delta.is_float) ? DType::Float32 : DType::Int32;
  return apply1(OpId::Range,
                Attrs{{"start", start.value}, {"limit", limit.value}, {"delta", delta.value}, {"dtype", dt}}, {});
}
Tensor range(Number limit) { return range(limit.is_float ? Number(0.0) : Number(0), limit, 1); }

Tensor linspace(double start, double stop, int64_t num, DType dtype) {
  return apply1(OpId::Linspace, Attrs{{"start", start}, {"stop", stop}, {"num", num}, {"dtype", dtype}}, {});
}

namespace random {
namespace {
// The global generator: a seed and a counter of Philox blocks handed out so far.
std::atomic<uint64_t> g_seed{std::random_device{}()};
std::atomic<uint64_t> g_offset{0};

// A seeded op is a pure function of its attributes. An unseeded op takes a fresh 2^64-block
// stream (the offset is Philox's high counter words) when it runs: eagerly that is now; in a
// traced graph it is on every call, so the attributes say -1, -1.
std::pair<int64_t, int64_t> next_stream(std::optional<uint64_t> seed) {
  if (seed) return {static_cast<int64_t>(*seed), 0};
  if (ops::tracing()) return {-1, -1};
  auto [s, off] = next_global_stream();
  return {static_cast<int64_t>(s), static_cast<int64_t>(off)};
}
}  // namespace

std::pair<uint64_t, uint64_t> next_global_stream() { return {g_seed.load(), g_offset.fetch_add(1) + 1}; }

void set_seed(uint64_t seed) {
  g_seed = seed;
  g_offset = 0;
}

Tensor normal(const Shape& shape, std::optional<uint64_t> seed, double mean, double stddev, DType dtype) {
  auto [s, off] = next_stream(seed);
  return apply1(OpId::RandomNormal,
                Attrs{{"shape", shape.as_list()},
                      {"dtype", dtype},
                      {"seed", s},
                      {"offset", off},
                      {"mean", mean},
                      {"stddev", stddev}},
                {});
}

Tensor uniform(const Shape& shape, std::optional<uint64_t> seed, double minval, double maxval, DType dtype) {
  auto [s, off] = next_stream(seed);
  return apply1(OpId::RandomUniform,
                Attrs{{"shape", shape.as_list()},
                      {"dtype", dtype},
                      {"seed", s},
                      {"offset", off},
                      {"minval", minval},
                      {"maxval", maxval}},
                {});
}
}  // namespace random

}  // namespace kiln
