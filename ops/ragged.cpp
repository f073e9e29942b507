// Ragged tensors, written with Kiln ops on (values, row_splits) so that gradients reach the values.
// Host reads of the row splits happen only where an output shape depends on them.
#include "ops/ragged.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <ostream>

#include "ops/dispatch.h"
#include "runtime/printing.h"
#include "runtime/string_tensor.h"

namespace kiln {
namespace {

Tensor i64_vector(const std::vector<int64_t>& v) { return kiln::constant(v, Shape{static_cast<int64_t>(v.size())}); }

// The row splits on the host; `op` names the caller in the error a symbolic tensor gives.
std::vector<int64_t> host_splits(const RaggedTensor& rt, std::string_view op) {
  if (rt.row_splits().is_symbolic())
    fail<InvalidArgument>(op, "needs the row splits' values, which a trace does not have");
  return rt.row_splits().to_vector<int64_t>();
}

void check_defined(std::string_view op, const RaggedTensor& rt) {
  if (!rt.defined()) fail<InvalidArgument>(op, "the ragged tensor is undefined");
}

// A scalar holding the lowest (max = false) or largest value of `dtype`: the identity of
// reduce_max / reduce_min.
Tensor extreme(DType dtype, bool lowest, std::string_view op) {
  if (is_complex(dtype) || dtype == DType::Bool || dtype == DType::String)
    fail<InvalidArgument>(op, "dtype ", dtype_name(dtype), " has no ordering");
  return visit_dtype(dtype, op, [&](auto tag) -> Tensor {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, Half>) {
      return scalar<T>(Half::from_bits(lowest ? 0xfbff : 0x7bff));
    } else if constexpr (std::is_same_v<T, BFloat16>) {
      return scalar<T>(BFloat16::from_bits(lowest ? 0xff7f : 0x7f7f));
    } else if constexpr (std::is_arithmetic_v<T>) {
      return scalar<T>(lowest ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max());
    } else {
      return Tensor();
    }
  });
}

// The zero of a dtype ("" for strings).
Tensor zero_of(DType dtype) {
  if (dtype == DType::String) {
    const std::string_view empty[] = {""};
    return make_string_tensor(Shape{}, empty);
  }
  return scalar_of(int64_t{0}, dtype, "ragged.to_tensor");
}

// Dense layout of the rows at `width` columns: for each (row, column) the position of its value
// (nvals where the row is shorter, pointing at an appended default), and whether it holds one.
std::pair<Tensor, Tensor> dense_layout(const RaggedTensor& rt, int64_t width) {
  const Tensor& splits = rt.row_splits();
  const int64_t n = splits.shape().dim(0);
  Tensor starts = splits.index({Slice(0, n - 1)});
  Tensor lengths = subtract(splits.index({Slice(1, n)}), starts);
  Tensor cols = expand_dims(range(int64_t{0}, width, 1, int64), 0);
  Tensor mask = less(cols, expand_dims(lengths, 1));
  Tensor pos = add(expand_dims(starts, 1), cols);
  const int64_t nvals = rt.values().shape().dim(0);
  return {where(mask, pos, scalar<int64_t>(nvals)), mask};
}

int64_t ragged_axis(std::string_view op, const RaggedTensor& rt, int64_t axis) {
  const int64_t a = normalize_axis(op, axis, rt.ndim());
  if (a > 1)
    fail<InvalidArgument>(op, "axis ", axis, " is a uniform inner axis; reduce the values with ragged::map_values");
  return a;
}

void check_same_splits(std::string_view op, const RaggedTensor& x, const RaggedTensor& y) {
  check_defined(op, x);
  check_defined(op, y);
  if (x.row_splits().is_same(y.row_splits())) return;
  const std::vector<int64_t> a = host_splits(x, op), b = host_splits(y, op);
  if (a != b) {
    auto str = [](const std::vector<int64_t>& v) { return i64_vector(v).numpy_string(); };
    fail<InvalidArgument>(op, "the operands have different row splits: ", str(a), " and ", str(b));
  }
}

void check_scalar(std::string_view op, const Tensor& t) {
  if (!t.defined()) fail<InvalidArgument>(op, "the dense operand is undefined (None)");
  if (t.ndim() != 0)
    fail<InvalidArgument>(op, "a dense operand must be a scalar to combine with a ragged tensor, got shape ",
                          t.shape().to_string());
}

// Python's nested-list form of one value (its inner dims), from row-major element `flat` on.
void nested(const Tensor& v, const Shape& inner, int64_t axis, int64_t& flat, std::string& out) {
  if (axis == inner.rank()) {
    out += element_repr(v, flat++);
    return;
  }
  out += '[';
  for (int64_t i = 0; i < inner.dim(size_t(axis)); ++i) {
    if (i) out += ", ";
    nested(v, inner, axis + 1, flat, out);
  }
  out += ']';
}

// `[v0, v1, ...]` for the values in rows [begin, end) of a values tensor.
void list_of(const Tensor& values, int64_t begin, int64_t end, std::string& out) {
  Shape inner;
  int64_t per_row = 1;
  for (int64_t a = 1; a < values.ndim(); ++a) {
    inner.push_back(values.shape().dim(size_t(a)));
    per_row *= values.shape().dim(size_t(a));
  }
  out += '[';
  for (int64_t r = begin; r < end; ++r) {
    if (r > begin) out += ", ";
    int64_t flat = r * per_row;
    nested(values, inner, 0, flat, out);
  }
  out += ']';
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// RaggedTensor

RaggedTensor RaggedTensor::from_row_splits(Tensor values, Tensor row_splits) {
  constexpr std::string_view op = "ragged.from_row_splits";
  if (!values.defined() || !row_splits.defined()) fail<InvalidArgument>(op, "values and row_splits must be defined");
  if (values.ndim() == 0) fail<InvalidArgument>(op, "values must have rank >= 1, got a scalar");
  if (row_splits.dtype() != DType::Int64)
    fail<InvalidArgument>(op, "row_splits must be int64, got ", dtype_name(row_splits.dtype()));
  if (row_splits.ndim() != 1 || row_splits.shape().dim(0) == 0)
    fail<InvalidArgument>(op, "row_splits must be a non-empty vector, got shape ", row_splits.shape().to_string());
  if (!row_splits.is_symbolic() && !values.is_symbolic()) {
    const int64_t n = row_splits.num_elements();
    const int64_t* sp = row_splits.data<int64_t>();
    if (sp[0] != 0) fail<InvalidArgument>(op, "row_splits must start at 0, got row_splits[0] = ", sp[0]);
    for (int64_t i = 1; i < n; ++i)
      if (sp[i] < sp[i - 1])
        fail<InvalidArgument>(op, "row_splits must not decrease, got row_splits[", i - 1, "] = ", sp[i - 1],
                              " and row_splits[", i, "] = ", sp[i]);
    if (sp[n - 1] != values.shape().dim(0))
      fail<InvalidArgument>(op, "row_splits end at ", sp[n - 1], " but values has ", values.shape().dim(0),
                            " rows (shape ", values.shape().to_string(), ")");
  }
  return RaggedTensor(std::move(values), std::move(row_splits));
}

RaggedTensor RaggedTensor::from_row_lengths(const Tensor& values, const Tensor& row_lengths) {
  constexpr std::string_view op = "ragged.from_row_lengths";
  if (!row_lengths.defined() || row_lengths.ndim() != 1 || !is_integer(row_lengths.dtype()))
    fail<InvalidArgument>(op, "row_lengths must be an integer vector");
  const std::vector<int64_t> lengths = cast(row_lengths, int64).to_vector<int64_t>();
  std::vector<int64_t> splits{0};
  for (size_t i = 0; i < lengths.size(); ++i) {
    if (lengths[i] < 0 || lengths[i] > std::numeric_limits<int64_t>::max() - splits.back())
      fail<InvalidArgument>(op, "row_lengths[", i, "] = ", lengths[i], " is negative or too large");
    splits.push_back(splits.back() + lengths[i]);
  }
  return from_row_splits(values, i64_vector(splits));
}

RaggedTensor RaggedTensor::from_tensor(const Tensor& dense, const std::vector<int64_t>& lengths) {
  constexpr std::string_view op = "ragged.from_tensor";
  if (!dense.defined() || dense.ndim() < 2)
    fail<InvalidArgument>(op, "the tensor must have rank >= 2, got shape ",
                          dense.defined() ? dense.shape().to_string() : "None");
  const int64_t rows = dense.shape().dim(0), cols = dense.shape().dim(1);
  if (static_cast<int64_t>(lengths.size()) != rows)
    fail<InvalidArgument>(op, "got ", lengths.size(), " lengths for ", rows, " rows");
  std::vector<int64_t> pick, splits{0};
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t len = lengths[size_t(r)];
    if (len < 0 || len > cols) fail<InvalidArgument>(op, "length ", len, " of row ", r, " is not in [0, ", cols, "]");
    for (int64_t c = 0; c < len; ++c) pick.push_back(r * cols + c);
    splits.push_back(splits.back() + len);
  }
  Shape flat = dense.shape();
  flat.erase(0);
  flat.mut(0) = rows * cols;
  Tensor values = gather(reshape(dense, flat), i64_vector(pick));
  return RaggedTensor(values, i64_vector(splits));
}

RaggedTensor RaggedTensor::from_tensor(const Tensor& dense, const std::optional<Tensor>& padding) {
  constexpr std::string_view op = "ragged.from_tensor";
  if (!dense.defined() || dense.ndim() < 2)
    fail<InvalidArgument>(op, "the tensor must have rank >= 2, got shape ",
                          dense.defined() ? dense.shape().to_string() : "None");
  const int64_t rows = dense.shape().dim(0), cols = dense.shape().dim(1);
  std::vector<int64_t> lengths(size_t(rows), cols);
  if (padding) {
    check_scalar(op, *padding);
    if (padding->dtype() != dense.dtype())
      fail<InvalidArgument>(op, "padding has dtype ", dtype_name(padding->dtype()), " but the tensor has dtype ",
                            dense.dtype());
    // an entry (an inner slice for rank > 2) is padding when every element equals the padding value
    Tensor is_pad;
    if (dense.dtype() == DType::String) {
      const std::string_view pad = string_at(*padding, 0);
      std::vector<uint8_t> flags(size_t(dense.num_elements()));
      for (int64_t i = 0; i < dense.num_elements(); ++i) flags[size_t(i)] = string_at(dense, i) == pad;
      Tensor b = Tensor::empty(dense.shape(), bool_);
      std::memcpy(b.mutable_raw_data(), flags.data(), flags.size());
      is_pad = b;
    } else {
      is_pad = equal(dense, *padding);
    }
    if (dense.ndim() > 2) {
      std::vector<int64_t> inner;
      for (int64_t a = 2; a < dense.ndim(); ++a) inner.push_back(a);
      is_pad = reduce_all(is_pad, inner);
    }
    const bool* p = is_pad.data<bool>();
    for (int64_t r = 0; r < rows; ++r) {
      int64_t len = cols;
      while (len > 0 && p[r * cols + len - 1]) --len;
      lengths[size_t(r)] = len;
    }
  }
  return from_tensor(dense, lengths);
}

int64_t RaggedTensor::nrows() const {
  check_defined("ragged.nrows", *this);
  return row_splits_.shape().dim(0) - 1;
}

Shape RaggedTensor::shape() const {
  check_defined("ragged.shape", *this);
  Shape s{nrows(), kUnknownDim};
  for (int64_t a = 1; a < values_.ndim(); ++a) s.push_back(values_.shape().dim(size_t(a)));
  return s;
}

Tensor RaggedTensor::row_lengths() const {
  check_defined("ragged.row_lengths", *this);
  const int64_t n = row_splits_.shape().dim(0);
  return subtract(row_splits_.index({Slice(1, n)}), row_splits_.index({Slice(0, n - 1)}));
}

Tensor RaggedTensor::value_rowids() const {
  check_defined("ragged.value_rowids", *this);
  return ops::apply1(ops::OpId::RaggedValueRowIds, {row_splits_, values_});
}

Tensor RaggedTensor::row(int64_t i) const {
  check_defined("ragged.row", *this);
  const int64_t n = nrows();
  if (i < -n || i >= n) fail<InvalidArgument>("ragged.row", "row ", i, " is out of range for ", n, " rows");
  if (i < 0) i += n;
  const std::vector<int64_t> sp = host_splits(*this, "ragged.row");
  return values_.index({Slice(sp[size_t(i)], sp[size_t(i) + 1])});
}

RaggedTensor RaggedTensor::with_values(Tensor values) const {
  check_defined("ragged.with_values", *this);
  return from_row_splits(std::move(values), row_splits_);
}

Tensor RaggedTensor::to_tensor(const std::optional<Tensor>& default_value, std::optional<int64_t> width) const {
  constexpr std::string_view op = "ragged.to_tensor";
  check_defined(op, *this);
  Tensor dflt = default_value ? *default_value : zero_of(dtype());
  check_scalar(op, dflt);
  if (dflt.dtype() != dtype())
    fail<InvalidArgument>(op, "default_value has dtype ", dtype_name(dflt.dtype()), " but the values have dtype ",
                          dtype_name(dtype()));
  int64_t w = 0;
  if (width) {
    if (*width < 0) fail<InvalidArgument>(op, "width must be non-negative, got ", *width);
    w = *width;
  } else {
    const std::vector<int64_t> sp = host_splits(*this, op);
    for (size_t i = 1; i < sp.size(); ++i) w = std::max(w, sp[i] - sp[i - 1]);
  }
  auto [pos, mask] = dense_layout(*this, w);
  // one default row after the values: padding positions gather it
  Shape one = values_.shape();
  one.mut(0) = 1;
  Shape scalar_shape;
  for (int64_t a = 0; a < one.rank(); ++a) scalar_shape.push_back(1);
  Tensor pad = broadcast_to(reshape(dflt, scalar_shape), one);
  return gather(kiln::concat({values_, pad}, 0), pos);
}

std::string RaggedTensor::to_list_string() const {
  check_defined("ragged.print", *this);
  const std::vector<int64_t> sp = host_splits(*this, "ragged.print");
  std::string s = "[";
  for (size_t r = 0; r + 1 < sp.size(); ++r) {
    if (r) s += ", ";
    list_of(values_, sp[r], sp[r + 1], s);
  }
  return s + "]";
}

std::string RaggedTensor::to_string() const {
  if (!defined()) return "None";
  if (values_.is_symbolic() || row_splits_.is_symbolic())
    return "kiln.RaggedTensor(values=" + values_.to_string() + ", row_splits=" + row_splits_.to_string() + ")";
  return "<kiln.RaggedTensor " + to_list_string() + ">";
}

std::ostream& operator<<(std::ostream& os, const RaggedTensor& rt) { return os << rt.to_string(); }

// ---------------------------------------------------------------------------------------------
// TensorOrRagged

const Tensor& TensorOrRagged::tensor() const {
  if (is_ragged())
    fail<InvalidArgument>("TensorOrRagged", "the result is a RaggedTensor (its input had rank 1); use it as one");
  return std::get<Tensor>(v_);
}

const RaggedTensor& TensorOrRagged::ragged() const {
  if (!is_ragged())
    fail<InvalidArgument>("TensorOrRagged", "the result is a dense Tensor (its input was a scalar); use it as one");
  return std::get<RaggedTensor>(v_);
}

std::string TensorOrRagged::to_string() const {
  return is_ragged() ? std::get<RaggedTensor>(v_).to_string() : std::get<Tensor>(v_).to_string();
}

std::ostream& operator<<(std::ostream& os, const TensorOrRagged& x) { return os << x.to_string(); }

// ---------------------------------------------------------------------------------------------
// kiln::ragged

namespace ragged {

RaggedTensor constant(const NestedList& rows, std::optional<DType> dtype) {
  constexpr std::string_view op = "ragged.constant";
  if (rows.kind() != NestedList::Kind::List)
    fail<InvalidArgument>(op, "expected a list of rows, got a scalar (use kiln::constant for dense values)");
  std::vector<NestedList> flat;
  std::vector<int64_t> splits{0};
  for (size_t r = 0; r < rows.items().size(); ++r) {
    const NestedList& row = rows.items()[r];
    if (row.kind() != NestedList::Kind::List)
      fail<InvalidArgument>(op, "row ", r, " is a scalar; every row must be a list (of scalars or equal-shaped lists)");
    for (const NestedList& v : row.items()) flat.push_back(v);
    splits.push_back(static_cast<int64_t>(flat.size()));
  }
  Tensor values;
  try {
    values = kiln::constant(NestedList::list(std::move(flat)), dtype);
  } catch (const InvalidArgument& e) {
    fail<InvalidArgument>(op, "the rows' values do not form one tensor: ", e.what());
  }
  if (values.ndim() == 0) values = reshape(values, {0});  // no values at all
  return RaggedTensor::from_row_splits(values, i64_vector(splits));
}

#define KILN_RAGGED_BINARY(FN)                                    \
  RaggedTensor FN(const RaggedTensor& x, const RaggedTensor& y) { \
    check_same_splits("ragged." #FN, x, y);                       \
    return x.with_values(kiln::FN(x.values(), y.values()));       \
  }
KILN_RAGGED_BINARY(add)
KILN_RAGGED_BINARY(subtract)
KILN_RAGGED_BINARY(multiply)
KILN_RAGGED_BINARY(divide)
#undef KILN_RAGGED_BINARY

Tensor reduce_sum(const RaggedTensor& x, std::optional<int64_t> axis) {
  check_defined("ragged.reduce_sum", x);
  if (!axis) return kiln::reduce_sum(x.values());
  if (ragged_axis("ragged.reduce_sum", x, *axis) == 1)
    return unsorted_segment_sum(x.values(), x.value_rowids(), x.nrows());
  return kiln::reduce_sum(x.to_tensor(), 0);
}

Tensor reduce_mean(const RaggedTensor& x, std::optional<int64_t> axis) {
  constexpr std::string_view op = "ragged.reduce_mean";
  check_defined(op, x);
  if (!axis) return kiln::reduce_mean(x.values());
  Tensor sum, count;
  if (ragged_axis(op, x, *axis) == 1) {
    sum = unsorted_segment_sum(x.values(), x.value_rowids(), x.nrows());
    count = x.row_lengths();
  } else {
    sum = kiln::reduce_sum(x.to_tensor(), 0);
    int64_t w = sum.shape().dim(0);
    count = kiln::reduce_sum(cast(dense_layout(x, w).second, int64), 0);
  }
  // counts broadcast over the inner dims of the values
  for (int64_t a = 1; a < sum.ndim(); ++a) count = expand_dims(count, -1);
  if (is_inexact(x.dtype())) return kiln::divide(sum, cast(count, x.dtype()));
  // integer means truncate, as TensorFlow's
  return cast(kiln::divide(cast(sum, float64), cast(count, float64)), x.dtype());
}

Tensor reduce_max(const RaggedTensor& x, std::optional<int64_t> axis) {
  check_defined("ragged.reduce_max", x);
  if (!axis) return kiln::reduce_max(x.values());
  const int64_t a = ragged_axis("ragged.reduce_max", x, *axis);
  return kiln::reduce_max(x.to_tensor(extreme(x.dtype(), true, "ragged.reduce_max")), a);
}

Tensor reduce_min(const RaggedTensor& x, std::optional<int64_t> axis) {
  check_defined("ragged.reduce_min", x);
  if (!axis) return kiln::reduce_min(x.values());
  const int64_t a = ragged_axis("ragged.reduce_min", x, *axis);
  return kiln::reduce_min(x.to_tensor(extreme(x.dtype(), false, "ragged.reduce_min")), a);
}

RaggedTensor concat(const std::vector<RaggedTensor>& xs, int64_t axis) {
  constexpr std::string_view op = "ragged.concat";
  if (xs.empty()) fail<InvalidArgument>(op, "needs at least one ragged tensor");
  for (const RaggedTensor& x : xs) check_defined(op, x);
  const int64_t a = normalize_axis(op, axis, xs[0].ndim());
  std::vector<Tensor> values;
  for (const RaggedTensor& x : xs) {
    if (x.ndim() != xs[0].ndim())
      fail<InvalidArgument>(op, "ragged tensors of ranks ", xs[0].ndim(), " and ", x.ndim(), " cannot be joined");
    values.push_back(x.values());
  }
  Tensor all = kiln::concat(values, 0);  // checks dtypes and inner shapes
  if (a == 0) {
    std::vector<Tensor> splits{xs[0].row_splits()};
    int64_t offset = xs[0].values().shape().dim(0);
    for (size_t k = 1; k < xs.size(); ++k) {
      const Tensor& sp = xs[k].row_splits();
      splits.push_back(kiln::add(sp.index({Slice(1, sp.shape().dim(0))}), scalar<int64_t>(offset)));
      offset += xs[k].values().shape().dim(0);
    }
    return RaggedTensor::from_row_splits(all, kiln::concat(splits, 0));
  }
  if (a != 1) fail<InvalidArgument>(op, "axis ", axis, " is a uniform inner axis; concatenate the values instead");
  const int64_t rows = xs[0].nrows();
  std::vector<std::vector<int64_t>> sps;
  std::vector<int64_t> base;
  int64_t offset = 0;
  for (const RaggedTensor& x : xs) {
    if (x.nrows() != rows)
      fail<InvalidArgument>(op, "concatenating along axis 1 needs the same number of rows, got ", rows, " and ",
                            x.nrows());
    sps.push_back(host_splits(x, op));
    base.push_back(offset);
    offset += x.values().shape().dim(0);
  }
  std::vector<int64_t> pick, splits{0};
  for (int64_t r = 0; r < rows; ++r) {
    for (size_t k = 0; k < xs.size(); ++k)
      for (int64_t j = sps[k][size_t(r)]; j < sps[k][size_t(r) + 1]; ++j) pick.push_back(base[k] + j);
    splits.push_back(static_cast<int64_t>(pick.size()));
  }
  return RaggedTensor::from_row_splits(gather(all, i64_vector(pick)), i64_vector(splits));
}

}  // namespace ragged

#define KILN_RAGGED_DENSE(OP, FN)                                    \
  RaggedTensor operator OP(const RaggedTensor& x, const Tensor& y) { \
    check_defined("ragged." #FN, x);                                 \
    check_scalar("ragged." #FN, y);                                  \
    return x.with_values(FN(x.values(), y));                         \
  }                                                                  \
  RaggedTensor operator OP(const Tensor& x, const RaggedTensor& y) { \
    check_defined("ragged." #FN, y);                                 \
    check_scalar("ragged." #FN, x);                                  \
    return y.with_values(FN(x, y.values()));                         \
  }
KILN_RAGGED_DENSE(+, add)
KILN_RAGGED_DENSE(-, subtract)
KILN_RAGGED_DENSE(*, multiply)
KILN_RAGGED_DENSE(/, divide)
#undef KILN_RAGGED_DENSE

}  // namespace kiln
