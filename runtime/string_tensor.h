// String tensors: byte strings of any length stored as offsets into a byte heap (DESIGN.md §2).
// A string tensor's storage holds int64 offsets[numel + 1] followed by the bytes of every element.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tensor.h"

namespace kiln {

/// A string tensor of `shape` holding `values` in row-major order. Throws InvalidArgument when
/// the number of values differs from the shape's element count or the bytes are too many to
/// allocate.
Tensor make_string_tensor(const Shape& shape, std::span<const std::string_view> values);
Tensor make_string_tensor(const Shape& shape, std::span<const std::string> values);

/// Element `i` (row-major position) of a string tensor, as a view into its storage (valid while
/// the tensor lives). Throws InvalidArgument for a tensor that is not a string tensor and
/// OutOfRange for `i` outside [0, num_elements).
std::string_view string_at(const Tensor& t, int64_t i);

/// Every element of a string tensor, in row-major order (Tensor::to_vector<std::string>).
std::vector<std::string> string_values(const Tensor& t);

/// Builds a string tensor one element at a time, writing each element's bytes once into a
/// growing heap; `finish` copies the heap into the tensor's storage.
class StringTensorBuilder {
 public:
  StringTensorBuilder() { offsets_.push_back(0); }
  /// Reserves room for `n` elements and `bytes` bytes.
  void reserve(size_t n, size_t bytes) {
    offsets_.reserve(n + 1);
    heap_.reserve(bytes);
  }
  /// Appends one element.
  void add(std::string_view s) {
    heap_.append(s);
    offsets_.push_back(static_cast<int64_t>(heap_.size()));
  }
  /// Appends bytes to the element being built; `end_element` closes it.
  void append(std::string_view s) { heap_.append(s); }
  void append(char c) { heap_.push_back(c); }
  void end_element() { offsets_.push_back(static_cast<int64_t>(heap_.size())); }
  /// Elements added so far.
  int64_t size() const { return static_cast<int64_t>(offsets_.size()) - 1; }
  /// The tensor of `shape`, whose element count must equal size(); throws InvalidArgument
  /// naming `op` otherwise.
  Tensor finish(const Shape& shape, std::string_view op = "string_tensor") const;

 private:
  std::vector<int64_t> offsets_;
  std::string heap_;
};

/// Python's repr of a byte string: `b'Gray wolf'`, with `\xe3`-style escapes for bytes outside
/// printable ASCII, `\n`, `\r`, `\t`, `\\`, and double quotes when the text holds a single quote
/// but no double quote.
std::string bytes_repr(std::string_view s);

}  // namespace kiln
