// DType names and sizes.
#include "runtime/dtype.h"

#include <ostream>

#include "runtime/errors.h"

namespace kiln {

std::string_view dtype_name(DType d) {
  switch (d) {
#define KILN_DTYPE(E, n, s, T) \
  case DType::E:               \
    return s;
#include "runtime/dtype.def"
#undef KILN_DTYPE
    case DType::String:
      return "string";
  }
  return "unknown";
}

int dtype_size(DType d) {
  switch (d) {
#define KILN_DTYPE(E, n, s, T) \
  case DType::E:               \
    return sizeof(T);
#include "runtime/dtype.def"
#undef KILN_DTYPE
    case DType::String:
      return 0;
  }
  return 0;
}

DType dtype_from_name(std::string_view name) {
#define KILN_DTYPE(E, n, s, T) \
  if (name == s) return DType::E;
#include "runtime/dtype.def"
#undef KILN_DTYPE
  if (name == "string") return DType::String;
  fail<InvalidArgument>("dtype", "unknown dtype name '", name, "'");
}

std::ostream& operator<<(std::ostream& os, DType d) { return os << dtype_name(d); }

void throw_unsupported_dtype(std::string_view op, DType d) {
  fail<Unimplemented>(op, "dtype ", dtype_name(d), " is not supported");
}

}  // namespace kiln
