// Sparse tensors, written with Kiln ops on (indices, values, dense_shape): scatters are
// unsorted_segment_sum and gathers are gather, so gradients reach the values. The index structure
// (which entries meet where) is worked out on the host where an output shape depends on it.
#include "ops/sparse.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <ostream>

#include "runtime/string_tensor.h"

namespace kiln {
namespace {

Tensor i64_tensor(const std::vector<int64_t>& v, const Shape& s) { return kiln::constant(v, s); }

void check_defined(std::string_view op, const SparseTensor& sp) {
  if (!sp.defined()) fail<InvalidArgument>(op, "the sparse tensor is undefined");
}

std::string index_string(const int64_t* row, int64_t rank) {
  std::string s = "[";
  for (int64_t j = 0; j < rank; ++j) s += (j ? ", " : "") + std::to_string(row[j]);
  return s + "]";
}

// Row-major strides of `shape`, in elements.
std::vector<int64_t> strides_of(const Shape& shape) {
  std::vector<int64_t> st(size_t(shape.rank()), 1);
  for (int64_t a = shape.rank() - 2; a >= 0; --a) st[size_t(a)] = st[size_t(a) + 1] * shape.dim(size_t(a) + 1);
  return st;
}

// The row-major position of every entry in a dense tensor of sp's shape, as an int64 vector,
// computed with ops (so it traces): sum over the index columns of index * stride.
Tensor flat_ids(const SparseTensor& sp, const std::vector<int64_t>& strides) {
  const int64_t rank = static_cast<int64_t>(strides.size());
  if (rank == 0) return zeros({sp.nnz()}, int64);
  return reduce_sum(multiply(sp.indices(), i64_tensor(strides, Shape{rank})), 1);
}

// The positions on the host (sp is concrete here).
std::vector<int64_t> host_flat_ids(const SparseTensor& sp) {
  const std::vector<int64_t> st = strides_of(sp.shape());
  const int64_t rank = sp.shape().rank();
  const int64_t* idx = sp.indices().data<int64_t>();
  std::vector<int64_t> out(size_t(sp.nnz()), 0);
  for (int64_t k = 0; k < sp.nnz(); ++k)
    for (int64_t j = 0; j < rank; ++j) out[size_t(k)] += idx[k * rank + j] * st[size_t(j)];
  return out;
}

Tensor zero_of(DType dtype) {
  if (dtype == DType::String) {
    const std::string_view empty[] = {""};
    return make_string_tensor(Shape{}, empty);
  }
  return scalar_of(int64_t{0}, dtype, "sparse.to_dense");
}

void check_concrete(std::string_view op, const SparseTensor& sp) {
  if (sp.indices().is_symbolic() || sp.dense_shape().is_symbolic())
    fail<InvalidArgument>(op, "needs the indices' values, which a trace does not have");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// SparseTensor

SparseTensor::SparseTensor(Tensor indices, Tensor values, Tensor dense_shape)
    : indices_(std::move(indices)), values_(std::move(values)), dense_shape_(std::move(dense_shape)) {
  constexpr std::string_view op = "SparseTensor";
  if (!indices_.defined() || !values_.defined() || !dense_shape_.defined())
    fail<InvalidArgument>(op, "indices, values and dense_shape must all be defined");
  if (indices_.dtype() != DType::Int64)
    fail<InvalidArgument>(op, "indices must be int64, got ", dtype_name(indices_.dtype()));
  if (dense_shape_.dtype() != DType::Int64)
    fail<InvalidArgument>(op, "dense_shape must be int64, got ", dtype_name(dense_shape_.dtype()));
  if (indices_.ndim() != 2)
    fail<InvalidArgument>(op, "indices must be a matrix [N, rank], got shape ", indices_.shape().to_string());
  if (values_.ndim() != 1)
    fail<InvalidArgument>(op, "values must be a vector [N], got shape ", values_.shape().to_string());
  if (dense_shape_.ndim() != 1)
    fail<InvalidArgument>(op, "dense_shape must be a vector, got shape ", dense_shape_.shape().to_string());
  const int64_t n = indices_.shape().dim(0), rank = indices_.shape().dim(1);
  if (n >= 0 && values_.shape().dim(0) >= 0 && n != values_.shape().dim(0))
    fail<InvalidArgument>(op, "indices has ", n, " entries but values has ", values_.shape().dim(0));
  if (rank >= 0 && dense_shape_.shape().dim(0) >= 0 && rank != dense_shape_.shape().dim(0))
    fail<InvalidArgument>(op, "indices have ", rank, " columns but dense_shape has rank ", dense_shape_.shape().dim(0));
  if (dense_shape_.is_symbolic()) {
    for (int64_t a = 0; a < dense_shape_.shape().dim(0); ++a) shape_.push_back(kUnknownDim);
    return;
  }
  const std::vector<int64_t> dims = dense_shape_.to_vector<int64_t>();
  int64_t numel = 1;
  for (int64_t d : dims) {
    if (d < 0) fail<InvalidArgument>(op, "dense_shape ", Shape(dims).to_list_string(), " has a negative dimension");
    if (__builtin_mul_overflow(numel, d, &numel))
      fail<InvalidArgument>(op, "the element count of dense_shape ", Shape(dims).to_list_string(), " overflows int64");
  }
  shape_ = Shape(dims);
  if (indices_.is_symbolic()) return;
  // every index in bounds, and each one after the previous in row-major order
  const int64_t* idx = indices_.data<int64_t>();
  for (int64_t k = 0; k < n; ++k) {
    const int64_t* row = idx + k * rank;
    for (int64_t j = 0; j < rank; ++j)
      if (row[j] < 0 || row[j] >= dims[size_t(j)])
        fail<InvalidArgument>(op, "index ", index_string(row, rank), " (entry ", k,
                              ") is out of bounds for dense_shape ", shape_.to_list_string());
    if (k == 0) continue;
    const int64_t* prev = row - rank;
    const int c = std::lexicographical_compare(prev, prev + rank, row, row + rank)   ? -1
                  : std::lexicographical_compare(row, row + rank, prev, prev + rank) ? 1
                                                                                     : 0;
    if (c == 0) fail<InvalidArgument>(op, "index ", index_string(row, rank), " (entry ", k, ") repeats entry ", k - 1);
    if (c > 0)
      fail<InvalidArgument>(op, "index ", index_string(row, rank), " (entry ", k, ") comes before entry ", k - 1, " ",
                            index_string(prev, rank), " in row-major order; sort with kiln::sparse::reorder");
  }
}

namespace {
Tensor indices_from_list(const NestedList& indices, int64_t rank) {
  if (indices.kind() == NestedList::Kind::List && indices.items().empty()) return zeros({0, rank}, int64);
  Tensor t = kiln::constant(indices);
  if (!is_integer(t.dtype()))
    fail<InvalidArgument>("SparseTensor", "indices must be integers, got dtype ", dtype_name(t.dtype()));
  return cast(t, int64);
}
}  // namespace

SparseTensor::SparseTensor(const NestedList& indices, const NestedList& values, const std::vector<int64_t>& dense_shape)
    : SparseTensor(indices_from_list(indices, static_cast<int64_t>(dense_shape.size())), kiln::constant(values),
                   i64_tensor(dense_shape, Shape{static_cast<int64_t>(dense_shape.size())})) {}

SparseTensor SparseTensor::with_values(Tensor values) const {
  check_defined("sparse.with_values", *this);
  return SparseTensor(indices_, std::move(values), dense_shape_);
}

std::string SparseTensor::to_string() const {
  if (!defined()) return "None";
  return "SparseTensor(indices=" + indices_.to_string() + ", values=" + values_.to_string() +
         ", dense_shape=" + dense_shape_.to_string() + ")";
}

std::ostream& operator<<(std::ostream& os, const SparseTensor& sp) { return os << sp.to_string(); }

// ---------------------------------------------------------------------------------------------
// kiln::sparse

namespace sparse {

SparseTensor reorder(const Tensor& indices, const Tensor& values, const Tensor& dense_shape) {
  constexpr std::string_view op = "sparse.reorder";
  if (!indices.defined() || indices.dtype() != DType::Int64 || indices.ndim() != 2)
    fail<InvalidArgument>(op, "indices must be an int64 matrix [N, rank]");
  if (!values.defined() || values.ndim() != 1 || values.shape().dim(0) != indices.shape().dim(0))
    fail<InvalidArgument>(op, "values must be a vector with one entry per index row");
  const int64_t n = indices.shape().dim(0), rank = indices.shape().dim(1);
  const int64_t* idx = indices.data<int64_t>();
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
    return std::lexicographical_compare(idx + a * rank, idx + (a + 1) * rank, idx + b * rank, idx + (b + 1) * rank);
  });
  Tensor p = i64_tensor(perm, Shape{n});
  return SparseTensor(gather(indices, p), gather(values, p), dense_shape);
}

Tensor to_dense(const SparseTensor& sp, const std::optional<Tensor>& default_value) {
  constexpr std::string_view op = "sparse.to_dense";
  check_defined(op, sp);
  if (default_value) {
    if (!default_value->defined() || default_value->ndim() != 0)
      fail<InvalidArgument>(op, "default_value must be a scalar");
    if (default_value->dtype() != sp.dtype())
      fail<InvalidArgument>(op, "default_value has dtype ", dtype_name(default_value->dtype()),
                            " but the values have dtype ", dtype_name(sp.dtype()));
  }
  const Shape& shape = sp.shape();
  if (!shape.is_fully_defined()) fail<InvalidArgument>(op, "the dense shape must be known");
  const int64_t numel = shape.num_elements();
  const DType dt = sp.dtype();
  if (dt == DType::Bool || dt == DType::String) {
    // no sums for these: each dense position picks its entry, or the default appended after them
    check_concrete(op, sp);
    checked_nbytes(op, shape, DType::Int64);
    std::vector<int64_t> pick(size_t(numel), sp.nnz());
    const std::vector<int64_t> ids = host_flat_ids(sp);
    for (size_t k = 0; k < ids.size(); ++k) pick[size_t(ids[k])] = static_cast<int64_t>(k);
    Tensor dflt = default_value ? *default_value : zero_of(dt);
    return gather(concat({sp.values(), reshape(dflt, {1})}, 0), i64_tensor(pick, shape));
  }
  Tensor ids = flat_ids(sp, strides_of(shape));
  Tensor dense = reshape(unsorted_segment_sum(sp.values(), ids, numel), shape);
  if (!default_value) return dense;
  Tensor hit = unsorted_segment_sum(ones({sp.nnz()}, int32), ids, numel);
  return where(reshape(greater(hit, scalar<int32_t>(0)), shape), dense, *default_value);
}

SparseTensor from_dense(const Tensor& dense) {
  constexpr std::string_view op = "sparse.from_dense";
  if (!dense.defined()) fail<InvalidArgument>(op, "the tensor is undefined (None)");
  if (dense.is_symbolic()) fail<InvalidArgument>(op, "needs the tensor's values, which a trace does not have");
  const int64_t numel = dense.num_elements(), rank = dense.ndim();
  std::vector<int64_t> keep;
  if (dense.dtype() == DType::String) {
    for (int64_t i = 0; i < numel; ++i)
      if (!string_at(dense, i).empty()) keep.push_back(i);
  } else {
    Tensor nz = dense.dtype() == DType::Bool ? dense : not_equal(dense, zero_of(dense.dtype()));
    const bool* p = nz.data<bool>();
    for (int64_t i = 0; i < numel; ++i)
      if (p[i]) keep.push_back(i);
  }
  const std::vector<int64_t> st = strides_of(dense.shape());
  std::vector<int64_t> idx;
  idx.reserve(keep.size() * size_t(rank));
  for (int64_t f : keep)
    for (int64_t a = 0; a < rank; ++a) idx.push_back(f / st[size_t(a)] % dense.shape().dim(size_t(a)));
  const auto n = static_cast<int64_t>(keep.size());
  Tensor values = gather(reshape(dense, {numel}), i64_tensor(keep, Shape{n}));
  return SparseTensor(i64_tensor(idx, Shape{n, rank}), values, i64_tensor(dense.shape().as_list(), Shape{rank}));
}

SparseTensor add(const SparseTensor& a, const SparseTensor& b) {
  constexpr std::string_view op = "sparse.add";
  check_defined(op, a);
  check_defined(op, b);
  if (!(a.shape() == b.shape()))
    fail<InvalidArgument>(op, "the operands have dense shapes ", a.shape().to_list_string(), " and ",
                          b.shape().to_list_string());
  if (a.dtype() != b.dtype())
    fail<InvalidArgument>(op, "the operands have dtypes ", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  if (!is_numeric(a.dtype())) fail<InvalidArgument>(op, "values of dtype ", dtype_name(a.dtype()), " cannot be added");
  check_concrete(op, a);
  check_concrete(op, b);
  // both index lists are sorted: merge them, each entry summing into its output position
  const std::vector<int64_t> fa = host_flat_ids(a), fb = host_flat_ids(b);
  const int64_t rank = a.shape().rank();
  const int64_t* ia = a.indices().data<int64_t>();
  const int64_t* ib = b.indices().data<int64_t>();
  std::vector<int64_t> seg(fa.size() + fb.size()), idx;
  size_t i = 0, j = 0;
  int64_t out = 0;
  while (i < fa.size() || j < fb.size()) {
    const bool take_a = j == fb.size() || (i < fa.size() && fa[i] <= fb[j]);
    const bool take_b = i == fa.size() || (j < fb.size() && fb[j] <= fa[i]);
    const int64_t* row = take_a ? ia + i * size_t(rank) : ib + j * size_t(rank);
    idx.insert(idx.end(), row, row + rank);
    if (take_a) seg[i++] = out;
    if (take_b) seg[fa.size() + j++] = out;
    ++out;
  }
  Tensor values = unsorted_segment_sum(concat({a.values(), b.values()}, 0),
                                       i64_tensor(seg, Shape{static_cast<int64_t>(seg.size())}), out);
  return SparseTensor(i64_tensor(idx, Shape{out, rank}), values, a.dense_shape());
}

Tensor add(const SparseTensor& a, const Tensor& b) {
  check_defined("sparse.add", a);
  return kiln::add(to_dense(a), b);
}

Tensor reduce_sum(const SparseTensor& sp, Axes axes, bool keepdims) {
  constexpr std::string_view op = "sparse.reduce_sum";
  check_defined(op, sp);
  const Shape& shape = sp.shape();
  const int64_t rank = shape.rank();
  std::vector<bool> reduced(size_t(rank), !axes.axes.has_value());
  if (axes.axes)
    for (int64_t a : *axes.axes) {
      const int64_t n = normalize_axis(op, a, rank);
      if (reduced[size_t(n)]) fail<InvalidArgument>(op, "axis ", a, " is listed more than once");
      reduced[size_t(n)] = true;
    }
  if (!shape.is_fully_defined()) fail<InvalidArgument>(op, "the dense shape must be known");
  Shape out;
  for (int64_t a = 0; a < rank; ++a)
    if (!reduced[size_t(a)]) out.push_back(shape.dim(size_t(a)));
  // strides over the kept axes; reduced axes contribute nothing to an entry's output position
  const std::vector<int64_t> kept_st = strides_of(out);
  std::vector<int64_t> st(size_t(rank), 0);
  for (int64_t a = 0, k = 0; a < rank; ++a)
    if (!reduced[size_t(a)]) st[size_t(a)] = kept_st[size_t(k++)];
  Tensor sums = unsorted_segment_sum(sp.values(), flat_ids(sp, st), out.num_elements());
  Shape final_shape;
  for (int64_t a = 0; a < rank; ++a)
    if (!reduced[size_t(a)] || keepdims) final_shape.push_back(reduced[size_t(a)] ? 1 : shape.dim(size_t(a)));
  return reshape(sums, final_shape);
}

Tensor matmul(const SparseTensor& a, const Tensor& b, bool adjoint_a, bool adjoint_b) {
  constexpr std::string_view op = "sparse.matmul";
  check_defined(op, a);
  if (!b.defined()) fail<InvalidArgument>(op, "the dense operand is undefined (None)");
  if (a.shape().rank() != 2 || b.ndim() != 2)
    fail<InvalidArgument>(op, "needs a sparse matrix and a dense matrix, got dense shapes ", a.shape().to_string(),
                          " and ", b.shape().to_string());
  if (a.dtype() != b.dtype())
    fail<InvalidArgument>(op, "the sparse values have dtype ", dtype_name(a.dtype()),
                          " but the dense matrix has dtype ", dtype_name(b.dtype()));
  if ((adjoint_a || adjoint_b) && is_complex(a.dtype()))
    fail<InvalidArgument>(op, "adjoints of complex matrices are not supported");
  const int64_t m = a.shape().dim(adjoint_a ? 1 : 0), k = a.shape().dim(adjoint_a ? 0 : 1);
  Tensor bb = adjoint_b ? transpose(b) : b;
  if (bb.shape().dim(0) != k)
    fail<InvalidArgument>(op, "inner dimensions differ: the sparse matrix is ", m, " x ", k, " and the dense one ",
                          bb.shape().dim(0), " x ", bb.shape().dim(1));
  // each entry (r, c, v) adds v * b[c, :] to output row r
  Tensor rows = a.indices().index({Slice(), adjoint_a ? 1 : 0});
  Tensor cols = a.indices().index({Slice(), adjoint_a ? 0 : 1});
  Tensor scaled = multiply(gather(bb, cols), expand_dims(a.values(), 1));
  return unsorted_segment_sum(scaled, rows, m);
}

}  // namespace sparse
}  // namespace kiln
