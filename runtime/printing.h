// Printing tensors the way TensorFlow does, through NumPy's layout rules: alignment, float
// formatting (positional or scientific), line wrapping at 75 columns and `...` summarization.
#pragma once

#include <string>

#include "runtime/tensor.h"

namespace kiln {

/// NumPy's `str(array)`: `[[1. 2.]\n [3. 4.]]`; a 0-d tensor prints its scalar (`10.0`, `4`,
/// `True`). Undefined tensors print `None`.
std::string numpy_str(const Tensor& t);
/// NumPy's `repr` of the value as TensorFlow shows it inside a variable: `array([[1., 2.],\n
/// [3., 4.]], dtype=float32)`; a 0-d tensor prints its scalar (`1`).
std::string numpy_repr(const Tensor& t);
/// `kiln.Tensor(<numpy_str>, shape=(3,), dtype=float32)`, with a newline after the opening
/// parenthesis when the values span several lines, as TensorFlow prints.
std::string format_tensor(const Tensor& t);

/// Python's repr of element `i` (row-major) of `t.numpy().tolist()`: `3`, `True`, `0.5`,
/// `0.10000000149011612` (a float32 widened to a Python float), `(1+2j)`, `b'text'`. Used by
/// the composite tensors' printers (`<kiln.RaggedTensor [[1, 2], [3]]>`). Throws OutOfRange
/// for `i` outside the tensor.
std::string element_repr(const Tensor& t, int64_t i);

/// Print options, as NumPy's set_printoptions (process-wide).
struct PrintOptions {
  int linewidth = 75;
  int64_t threshold = 1000;  // more elements than this are summarized
  int edgeitems = 3;
  int precision = 8;
};
PrintOptions get_print_options();
void set_print_options(const PrintOptions& options);

}  // namespace kiln
