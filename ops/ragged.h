// Ragged tensors: rows of different lengths, stored as a flat `values` tensor and int64
// `row_splits` (row i is values[row_splits[i]:row_splits[i+1]]). A RaggedTensor is a plain pair
// of Tensors and every operation on it is written with Kiln ops, so gradients flow to `values`.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "ops/ops.h"

namespace kiln {

/// A tensor whose axis 1 has rows of different lengths (TensorFlow's tf.RaggedTensor with one
/// ragged dimension). Its shape is (nrows, None, inner dims...). `values` has any dtype (strings
/// included) and rank >= 1; `row_splits` is an int64 vector of nrows + 1 offsets into it.
class RaggedTensor {
 public:
  /// An undefined ragged tensor (`defined()` is false).
  RaggedTensor() = default;

  /// The ragged tensor whose row i is values[row_splits[i]:row_splits[i+1]]. Throws
  /// InvalidArgument naming `ragged.from_row_splits` and the offending split when the splits are
  /// not an int64 vector that starts at 0, never decreases and ends at values.shape[0], or when
  /// values is a scalar. Symbolic splits (inside a trace) are checked by the ops that read them.
  static RaggedTensor from_row_splits(Tensor values, Tensor row_splits);
  /// Rows of the given lengths (an integer vector of non-negative values summing to
  /// values.shape[0]); throws InvalidArgument otherwise.
  static RaggedTensor from_row_lengths(const Tensor& values, const Tensor& row_lengths);
  /// The rows of a dense tensor of rank >= 2. With `padding` (a scalar of the tensor's dtype),
  /// trailing entries equal to it are dropped from each row, as TensorFlow's from_tensor.
  static RaggedTensor from_tensor(const Tensor& dense, const std::optional<Tensor>& padding = std::nullopt);
  /// The first lengths[i] entries of each row i of a dense tensor of rank >= 2; throws
  /// InvalidArgument for a wrong count of lengths or a length outside [0, columns].
  static RaggedTensor from_tensor(const Tensor& dense, const std::vector<int64_t>& lengths);

  bool defined() const { return values_.defined(); }
  /// The flat values (all rows concatenated).
  const Tensor& values() const { return values_; }
  /// The int64 row splits, nrows + 1 of them.
  const Tensor& row_splits() const { return row_splits_; }
  DType dtype() const { return values_.dtype(); }
  /// The number of rows.
  int64_t nrows() const;
  /// (nrows, None, values.shape[1:]...): the ragged axis is unknown (kUnknownDim, printed None).
  Shape shape() const;
  /// The rank: 2 + the rank of the values' inner dims.
  int64_t ndim() const { return values_.ndim() + 1; }
  /// The length of each row (int64 vector).
  Tensor row_lengths() const;
  /// The row of each value (int64 vector of values.shape[0] entries).
  Tensor value_rowids() const;
  /// Row i as a dense tensor (negative i counts from the end); throws InvalidArgument when i is
  /// out of range.
  Tensor row(int64_t i) const;
  /// The same row structure around new values (which must have as many rows as values()).
  RaggedTensor with_values(Tensor values) const;

  /// A dense tensor of shape (nrows, width, inner...) where `width` defaults to the longest row
  /// (rows longer than an explicit width are truncated), padded with `default_value` (a scalar
  /// of the values' dtype; zero, False or "" when not given). Differentiable with respect to the
  /// values. Without `width` the row lengths are read, so it cannot run inside a trace.
  Tensor to_tensor(const std::optional<Tensor>& default_value = std::nullopt,
                   std::optional<int64_t> width = std::nullopt) const;

  /// `[[0, 1, 2, 3], [4, 5]]`: the values as nested Python lists.
  std::string to_list_string() const;
  /// `<kiln.RaggedTensor [[0, 1, 2, 3], [4, 5]]>`, as TensorFlow prints it.
  std::string to_string() const;

 private:
  RaggedTensor(Tensor values, Tensor row_splits) : values_(std::move(values)), row_splits_(std::move(row_splits)) {}
  Tensor values_;
  Tensor row_splits_;
};

std::ostream& operator<<(std::ostream& os, const RaggedTensor& rt);

/// The result of an op that gives a dense tensor for some inputs and a ragged one for others
/// (strings::split gives a vector for a scalar and a RaggedTensor for a vector). Converts
/// implicitly to whichever it holds; asking for the other throws InvalidArgument.
class TensorOrRagged {
 public:
  TensorOrRagged(Tensor t) : v_(std::move(t)) {}        // NOLINT
  TensorOrRagged(RaggedTensor r) : v_(std::move(r)) {}  // NOLINT
  bool is_ragged() const { return std::holds_alternative<RaggedTensor>(v_); }
  /// The dense tensor; throws InvalidArgument when the result is ragged.
  const Tensor& tensor() const;
  /// The ragged tensor; throws InvalidArgument when the result is dense.
  const RaggedTensor& ragged() const;
  operator Tensor() const { return tensor(); }        // NOLINT
  operator RaggedTensor() const { return ragged(); }  // NOLINT
  std::string to_string() const;

 private:
  std::variant<Tensor, RaggedTensor> v_;
};

std::ostream& operator<<(std::ostream& os, const TensorOrRagged& x);

namespace ragged {

/// A ragged tensor from a list of rows of different lengths, e.g.
/// `ragged::constant({{0, 1, 2, 3}, {4, 5}, {6, 7, 8}, {9}})` (int32, shape (4, None)). Each row
/// is a list of scalars (or of equal-shaped lists, which become the values' inner dims); the
/// dtype is inferred over all rows as kiln::constant does, or converted to `dtype`. Throws
/// InvalidArgument for a scalar where a row is expected or rows with different inner shapes.
RaggedTensor constant(const NestedList& rows, std::optional<DType> dtype = std::nullopt);

/// Applies an elementwise function to the values, keeping the row structure:
/// `map_values([](const Tensor& v) { return v * 2; }, rt)`.
template <class F>
RaggedTensor map_values(F&& fn, const RaggedTensor& rt) {
  return rt.with_values(fn(rt.values()));
}

/// Elementwise arithmetic. Two ragged operands must have the same row splits; a dense operand
/// must be a scalar (it broadcasts over every value). Throws InvalidArgument otherwise.
RaggedTensor add(const RaggedTensor& x, const RaggedTensor& y);
RaggedTensor subtract(const RaggedTensor& x, const RaggedTensor& y);
RaggedTensor multiply(const RaggedTensor& x, const RaggedTensor& y);
RaggedTensor divide(const RaggedTensor& x, const RaggedTensor& y);

/// Reductions. `axis` nullopt reduces everything to a scalar; axis 1 (the ragged axis) reduces
/// each row (empty rows give 0 for sum, NaN for a floating mean, the dtype's lowest value for
/// max and its largest for min, as TensorFlow); axis 0 reduces down the columns, giving the
/// longest row's length. Other axes throw InvalidArgument (use map_values for inner axes).
Tensor reduce_sum(const RaggedTensor& x, std::optional<int64_t> axis = std::nullopt);
Tensor reduce_mean(const RaggedTensor& x, std::optional<int64_t> axis = std::nullopt);
Tensor reduce_max(const RaggedTensor& x, std::optional<int64_t> axis = std::nullopt);
Tensor reduce_min(const RaggedTensor& x, std::optional<int64_t> axis = std::nullopt);

/// Concatenation: axis 0 stacks the rows of every input; axis 1 joins row i of every input into
/// one row (all inputs must have the same number of rows). Dtypes and inner shapes must match.
RaggedTensor concat(const std::vector<RaggedTensor>& xs, int64_t axis = 0);

}  // namespace ragged

#define KILN_RAGGED_OPERATOR(OP, FN)                                                                         \
  inline RaggedTensor operator OP(const RaggedTensor& x, const RaggedTensor& y) { return ragged::FN(x, y); } \
  RaggedTensor operator OP(const RaggedTensor& x, const Tensor& y);                                          \
  RaggedTensor operator OP(const Tensor& x, const RaggedTensor& y);                                          \
  template <detail::Scalar T>                                                                                \
  RaggedTensor operator OP(const RaggedTensor& x, T y) {                                                     \
    return x OP detail::scalar_for(x.values(), y, #FN);                                                      \
  }                                                                                                          \
  template <detail::Scalar T>                                                                                \
  RaggedTensor operator OP(T x, const RaggedTensor& y) {                                                     \
    return detail::scalar_for(y.values(), x, #FN) OP y;                                                      \
  }
KILN_RAGGED_OPERATOR(+, add)
KILN_RAGGED_OPERATOR(-, subtract)
KILN_RAGGED_OPERATOR(*, multiply)
KILN_RAGGED_OPERATOR(/, divide)
#undef KILN_RAGGED_OPERATOR

}  // namespace kiln
