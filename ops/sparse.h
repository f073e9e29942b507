// Sparse tensors: the nonzero entries of a dense shape as int64 `indices` [N, rank], `values` [N]
// and int64 `dense_shape` [rank] (TensorFlow's COO layout). A SparseTensor is a plain triple of
// Tensors and its operations are written with Kiln ops, so gradients flow to `values`.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "ops/ops.h"

namespace kiln {

/// A sparse tensor in canonical form: indices in bounds, in row-major order, without repeats.
class SparseTensor {
 public:
  /// An undefined sparse tensor (`defined()` is false).
  SparseTensor() = default;
  /// Validates and wraps the three tensors: `indices` int64 [N, rank], `values` [N] of any dtype,
  /// `dense_shape` int64 [rank] of non-negative dims. Throws InvalidArgument (naming
  /// "SparseTensor", the entry and the dense shape) for an index out of bounds, indices out of
  /// row-major order or repeated (sparse::reorder sorts them), or mismatched sizes and dtypes.
  /// Symbolic tensors (inside a trace) are checked only for their static shapes.
  SparseTensor(Tensor indices, Tensor values, Tensor dense_shape);
  /// From C++ lists, as TensorFlow's `SparseTensor(indices=[[0, 0], [1, 2]], values=[1, 2],
  /// dense_shape=[3, 4])`: indices become int64 and values infer their dtype as kiln::constant.
  SparseTensor(const NestedList& indices, const NestedList& values, const std::vector<int64_t>& dense_shape);

  bool defined() const { return values_.defined(); }
  const Tensor& indices() const { return indices_; }
  const Tensor& values() const { return values_; }
  const Tensor& dense_shape() const { return dense_shape_; }
  DType dtype() const { return values_.dtype(); }
  /// The dense shape as a Shape (read from dense_shape).
  const Shape& shape() const { return shape_; }
  /// The number of stored entries.
  int64_t nnz() const { return values_.shape().dim(0); }
  /// The same indices around new values (one per entry, as values()).
  SparseTensor with_values(Tensor values) const;

  /// `SparseTensor(indices=kiln.Tensor(...), values=kiln.Tensor(...), dense_shape=kiln.Tensor(...))`.
  std::string to_string() const;

 private:
  Tensor indices_, values_, dense_shape_;
  Shape shape_;
};

std::ostream& operator<<(std::ostream& os, const SparseTensor& sp);

namespace sparse {

using kiln::SparseTensor;

/// Sorts indices (with their values) into row-major order and builds the SparseTensor; repeated
/// or out-of-bounds indices still throw InvalidArgument.
SparseTensor reorder(const Tensor& indices, const Tensor& values, const Tensor& dense_shape);
/// The dense tensor, with `default_value` (a scalar of the values' dtype; zero, False or "" when
/// not given) where no entry is stored. Differentiable with respect to the values.
Tensor to_dense(const SparseTensor& sp, const std::optional<Tensor>& default_value = std::nullopt);
/// The entries of a dense tensor that are not zero (False, "" for strings), in row-major order.
/// Differentiable with respect to the dense tensor's kept entries.
SparseTensor from_dense(const Tensor& dense);
/// The sum of two sparse tensors of the same dense shape and dtype: entries at the same index
/// add, the others are kept. Differentiable with respect to both values.
SparseTensor add(const SparseTensor& a, const SparseTensor& b);
/// A sparse tensor plus a dense one (broadcast as kiln::add), giving a dense tensor.
Tensor add(const SparseTensor& a, const Tensor& b);
/// Sums the entries over `axes` (all of them by default, giving a scalar) as a dense tensor;
/// `keepdims` keeps reduced axes with size 1. Throws InvalidArgument for an axis out of range.
Tensor reduce_sum(const SparseTensor& sp, Axes axes = {}, bool keepdims = false);
/// The product of a sparse matrix [M, K] and a dense matrix [K, N] (each transposed first when
/// its adjoint flag is set; real dtypes only then), a dense [M, N]. Differentiable with respect
/// to the sparse values and the dense matrix. Throws InvalidArgument for ranks other than 2,
/// mismatched inner dims or dtypes.
Tensor matmul(const SparseTensor& a, const Tensor& b, bool adjoint_a = false, bool adjoint_b = false);

}  // namespace sparse
}  // namespace kiln
