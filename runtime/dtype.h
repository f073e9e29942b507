// Element types (the X-macro list in dtype.def), their C++ types, and the dtype dispatch helper.
#pragma once

#include <complex>
#include <cstdint>
#include <iosfwd>
#include <string_view>
#include <type_traits>

#include "runtime/half.h"

namespace kiln {

using complex64_t = std::complex<float>;
using complex128_t = std::complex<double>;

/// An element type. `String` is reserved for string tensors (composite-tensor work).
enum class DType : uint8_t {
#define KILN_DTYPE(E, n, s, T) E,
#include "runtime/dtype.def"
#undef KILN_DTYPE
  String,
};

inline constexpr int kNumNumericDTypes = static_cast<int>(DType::String);

// Short names, as in TensorFlow (`kiln::float32`).
#define KILN_DTYPE(E, n, s, T) inline constexpr DType n = DType::E;
#include "runtime/dtype.def"
#undef KILN_DTYPE
inline constexpr DType string = DType::String;

/// "float32", "int32", ... ; "string" for DType::String.
std::string_view dtype_name(DType d);
/// Bytes per element (0 for String).
int dtype_size(DType d);
/// Parses a name written by dtype_name; throws InvalidArgument on an unknown name.
DType dtype_from_name(std::string_view name);
std::ostream& operator<<(std::ostream& os, DType d);

constexpr bool is_floating(DType d) {
  return d == DType::Float16 || d == DType::BFloat16 || d == DType::Float32 || d == DType::Float64;
}
constexpr bool is_complex(DType d) { return d == DType::Complex64 || d == DType::Complex128; }
constexpr bool is_signed_integer(DType d) {
  return d == DType::Int8 || d == DType::Int16 || d == DType::Int32 || d == DType::Int64;
}
constexpr bool is_unsigned_integer(DType d) {
  return d == DType::UInt8 || d == DType::UInt16 || d == DType::UInt32 || d == DType::UInt64;
}
constexpr bool is_integer(DType d) { return is_signed_integer(d) || is_unsigned_integer(d); }
/// Floating or complex: the types gradients flow through.
constexpr bool is_inexact(DType d) { return is_floating(d) || is_complex(d); }
constexpr bool is_numeric(DType d) { return d != DType::Bool && d != DType::String; }
/// The real type of a complex dtype (complex64 -> float32); identity otherwise.
constexpr DType real_dtype(DType d) {
  return d == DType::Complex64 ? DType::Float32 : d == DType::Complex128 ? DType::Float64 : d;
}

/// Maps a C++ element type to its DType.
template <class T>
struct dtype_of;
#define KILN_DTYPE(E, n, s, T)               \
  template <>                                \
  struct dtype_of<T> {                       \
    static constexpr DType value = DType::E; \
  };
#include "runtime/dtype.def"
#undef KILN_DTYPE
template <class T>
inline constexpr DType dtype_v = dtype_of<T>::value;

/// Maps a DType to its C++ element type.
template <DType D>
struct cpp_type;
#define KILN_DTYPE(E, n, s, T) \
  template <>                  \
  struct cpp_type<DType::E> {  \
    using type = T;            \
  };
#include "runtime/dtype.def"
#undef KILN_DTYPE
template <DType D>
using cpp_type_t = typename cpp_type<D>::type;

template <class T>
struct is_complex_type : std::false_type {};
template <class T>
struct is_complex_type<std::complex<T>> : std::true_type {};
template <class T>
inline constexpr bool is_complex_v = is_complex_type<T>::value;

[[noreturn]] void throw_unsupported_dtype(std::string_view op, DType d);

/// Calls `f(T{})` with the C++ type of `d` (a value of that type as a tag). Throws
/// Unimplemented naming `op` for String.
template <class F>
decltype(auto) visit_dtype(DType d, std::string_view op, F&& f) {
  switch (d) {
#define KILN_DTYPE(E, n, s, T) \
  case DType::E:               \
    return f(T{});
#include "runtime/dtype.def"
#undef KILN_DTYPE
    default:
      throw_unsupported_dtype(op, d);
  }
}

}  // namespace kiln
