// Shape arithmetic: element counts with overflow checks, axis normalization, broadcasting.
#include "runtime/shape.h"

#include <ostream>
#include <sstream>

#include "runtime/errors.h"

namespace kiln {

int64_t Shape::operator[](int64_t i) const {
  int64_t r = rank();
  if (i < -r || i >= r) fail<OutOfRange>("shape", "index ", i, " is out of range for shape ", to_string());
  return dims_[static_cast<size_t>(i < 0 ? i + r : i)];
}

int64_t Shape::num_elements() const {
  int64_t n = 1;
  for (int64_t d : dims_) {
    if (d < 0) fail<InvalidArgument>("shape", "shape ", to_list_string(), " has a negative or unknown dimension");
    if (d != 0 && n > INT64_MAX / d) {
      // keep scanning for a zero dim: a shape with a zero has zero elements
      bool has_zero = false;
      for (int64_t e : dims_) has_zero |= (e == 0);
      if (has_zero) return 0;
      fail<InvalidArgument>("shape", "the element count of shape ", to_list_string(), " overflows int64");
    }
    n *= d;
  }
  return n;
}

bool Shape::is_fully_defined() const {
  for (int64_t d : dims_)
    if (d < 0) return false;
  return true;
}

std::string Shape::to_string() const {
  std::string s = "(";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ", ";
    s += dims_[i] < 0 ? std::string("None") : std::to_string(dims_[i]);
  }
  if (dims_.size() == 1) s += ",";
  return s + ")";
}

std::string Shape::to_list_string() const {
  std::string s = "[";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[i]);  // raw values: error messages show exactly what was passed
  }
  return s + "]";
}

std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.to_string(); }

std::string multi_index_string(int64_t flat, const Shape& shape) {
  if (shape.rank() == 0) return "";
  SmallVector<int64_t, 8> idx(size_t(shape.rank()), 0);
  for (int64_t i = shape.rank() - 1; i >= 0; --i) {
    idx[size_t(i)] = flat % shape.dim(size_t(i));
    flat /= shape.dim(size_t(i));
  }
  std::string s = "[";
  for (size_t i = 0; i < idx.size(); ++i) s += (i ? ", " : "") + std::to_string(idx[i]);
  return s + "]";
}

SmallVector<int64_t, 6> contiguous_strides(const Shape& s) {
  SmallVector<int64_t, 6> st(static_cast<size_t>(s.rank()), 1);
  // a shape with a zero dim can have dims whose product overflows; its strides are never used
  // to address memory, so saturate instead of overflowing
  for (int64_t i = s.rank() - 2; i >= 0; --i)
    if (__builtin_mul_overflow(st[i + 1], s.dim(i + 1), &st[i])) st[i] = INT64_MAX;
  return st;
}

int64_t normalize_axis(std::string_view op, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    fail<InvalidArgument>(op, "axis ", axis, " is out of range for a tensor of rank ", rank, " (expected [", -rank,
                          ", ", rank, "))");
  return axis < 0 ? axis + rank : axis;
}

Shape broadcast_shapes(std::string_view op, const Shape& a, const Shape& b) {
  if (a == b) return a;
  int64_t r = std::max(a.rank(), b.rank());
  Shape out;
  out.resize(static_cast<size_t>(r));
  for (int64_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.rank() ? 1 : a.dim(i - (r - a.rank()));
    int64_t db = i < r - b.rank() ? 1 : b.dim(i - (r - b.rank()));
    int64_t d;
    if (da == db)
      d = da;
    else if (da == 1)
      d = db;
    else if (db == 1)
      d = da;
    else if (da < 0 || db < 0)
      d = da < 0 ? db : da;  // unknown dims (tracing) unify with the known one
    else
      fail<InvalidArgument>(op, "incompatible shapes for broadcasting: ", a.to_list_string(), " and ",
                            b.to_list_string());
    out.mut(i) = d;
  }
  return out;
}

}  // namespace kiln
