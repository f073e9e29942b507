// Tensor shapes: a short list of dimension sizes kept inline (no heap for rank <= 6).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <span>
#include <string>
#include <vector>

#include "runtime/small_vector.h"

namespace kiln {

/// A dimension whose size is not known (only in traced graphs and TensorSpecs; eager shapes
/// are always fully known).
inline constexpr int64_t kUnknownDim = -1;

/// The dimension sizes of a tensor. Prints like TensorFlow: `(3, 2)`, `(3,)`, `()`.
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::span<const int64_t> dims) : dims_(dims) {}
  explicit Shape(const std::vector<int64_t>& dims) : dims_(dims.begin(), dims.end()) {}

  int64_t rank() const { return static_cast<int64_t>(dims_.size()); }
  /// Size of axis `i`; negative `i` counts from the end. Throws OutOfRange for a bad axis.
  int64_t operator[](int64_t i) const;
  int64_t& mut(size_t i) { return dims_[i]; }
  int64_t dim(size_t i) const { return dims_[i]; }
  /// Product of the dims (1 for a scalar). Throws InvalidArgument if it overflows int64 or a
  /// dim is negative.
  int64_t num_elements() const;
  /// True when every dim is known (non-negative).
  bool is_fully_defined() const;
  std::vector<int64_t> as_list() const { return {dims_.begin(), dims_.end()}; }
  std::span<const int64_t> dims() const { return dims_; }
  const int64_t* begin() const { return dims_.begin(); }
  const int64_t* end() const { return dims_.end(); }
  void push_back(int64_t d) { dims_.push_back(d); }
  void insert(size_t pos, int64_t d) { dims_.insert(dims_.begin() + pos, d); }
  void erase(size_t pos) { dims_.erase(dims_.begin() + pos); }
  void resize(size_t n, int64_t v = 1) { dims_.resize(n, v); }
  /// "(3, 2)" as TensorFlow prints TensorShape; unknown dims print as None.
  std::string to_string() const;
  /// "[3, 2]", the list form used in error messages (dims printed as given, -1 included).
  std::string to_list_string() const;

  friend bool operator==(const Shape& a, const Shape& b) { return a.dims_ == b.dims_; }

 private:
  SmallVector<int64_t, 6> dims_;
};

std::ostream& operator<<(std::ostream& os, const Shape& s);

/// "[1, 0]": the multi-index of row-major position `flat` in `shape` ("" for a scalar); for
/// error messages that name an element.
std::string multi_index_string(int64_t flat, const Shape& shape);

/// Row-major strides in elements.
SmallVector<int64_t, 6> contiguous_strides(const Shape& s);

/// Normalizes `axis` for a tensor of `rank` (negative counts from the end); throws
/// InvalidArgument naming `op` when it is out of range.
int64_t normalize_axis(std::string_view op, int64_t axis, int64_t rank);

/// NumPy broadcasting of two shapes; throws InvalidArgument naming `op` and both shapes.
Shape broadcast_shapes(std::string_view op, const Shape& a, const Shape& b);

}  // namespace kiln
