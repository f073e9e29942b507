// Public shape and data-movement op functions: thin wrappers over ops::apply, plus the stack,
// rank and size composites.
#include <limits>

#include "ops/dispatch.h"
#include "ops/ops.h"

namespace kiln {

using ops::apply;
using ops::apply1;
using ops::Attrs;
using ops::OpId;

Tensor transpose(const Tensor& x, std::vector<int64_t> perm) {
  if (perm.empty() && x.defined())
    for (int64_t i = x.ndim() - 1; i >= 0; --i) perm.push_back(i);
  return apply1(OpId::Transpose, {x}, {{"perm", std::move(perm)}});
}

Tensor expand_dims(const Tensor& x, int64_t axis) { return apply1(OpId::ExpandDims, {x}, {{"axis", axis}}); }

Tensor squeeze(const Tensor& x, Axes axes) {
  return apply1(OpId::Squeeze, {x}, {{"axes", axes.axes.value_or(std::vector<int64_t>{})}});
}

Tensor concat(const std::vector<Tensor>& xs, int64_t axis) { return apply1(OpId::Concat, Attrs{{"axis", axis}}, xs); }

Tensor stack(const std::vector<Tensor>& xs, int64_t axis) {
  if (xs.empty()) fail<InvalidArgument>("stack", "needs at least one tensor");
  for (size_t k = 0; k < xs.size(); ++k)
    if (!xs[k].defined()) fail<InvalidArgument>("stack", "input ", k, " is undefined (None)");
  const Shape& s0 = xs[0].shape();
  for (size_t k = 1; k < xs.size(); ++k) {
    const Shape& s = xs[k].shape();
    bool same = s.rank() == s0.rank();
    for (int64_t i = 0; same && i < s.rank(); ++i)
      same = s.dim(size_t(i)) == s0.dim(size_t(i)) || s.dim(size_t(i)) < 0 || s0.dim(size_t(i)) < 0;
    if (!same)
      fail<InvalidArgument>("stack", "input ", k, " has shape ", s.to_string(), " but input 0 has shape ",
                            s0.to_string(), "; all inputs must have the same shape");
  }
  const int64_t r = s0.rank();
  if (axis < -r - 1 || axis > r)
    fail<InvalidArgument>("stack", "axis ", axis, " is out of range for stacking tensors of rank ", r, " (expected [",
                          -r - 1, ", ", r, "])");
  const int64_t a = axis < 0 ? axis + r + 1 : axis;
  std::vector<Tensor> parts;
  parts.reserve(xs.size());
  for (const Tensor& x : xs) parts.push_back(expand_dims(x, a));
  return concat(parts, a);
}

std::vector<Tensor> split(const Tensor& x, int64_t num, int64_t axis) {
  ops::TensorList out = apply(OpId::Split, Attrs{{"num", num}, {"axis", axis}}, std::span<const Tensor>(&x, 1));
  return std::vector<Tensor>(std::make_move_iterator(out.begin()), std::make_move_iterator(out.end()));
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis) {
  ops::TensorList out = apply(OpId::Split, Attrs{{"sizes", sizes}, {"axis", axis}}, std::span<const Tensor>(&x, 1));
  return std::vector<Tensor>(std::make_move_iterator(out.begin()), std::make_move_iterator(out.end()));
}

Tensor tile(const Tensor& x, std::vector<int64_t> multiples) {
  return apply1(OpId::Tile, {x}, {{"multiples", std::move(multiples)}});
}

Tensor broadcast_like(const Tensor& x, const Tensor& like) { return apply1(OpId::BroadcastLike, {x, like}); }
Tensor reshape_like(const Tensor& x, const Tensor& like) { return apply1(OpId::ReshapeLike, {x, like}); }
Tensor sum_to_like(const Tensor& x, const Tensor& like) { return apply1(OpId::SumToLike, {x, like}); }
Tensor range_like(const Tensor& like, int64_t axis, DType dtype) {
  return apply1(OpId::RangeLike, {like}, {{"axis", axis}, {"dtype", dtype}});
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  return apply1(OpId::BroadcastTo, {x}, {{"shape", shape.as_list()}});
}

Tensor pad(const Tensor& x, const std::vector<std::pair<int64_t, int64_t>>& paddings, double constant_value) {
  std::vector<int64_t> flat;
  flat.reserve(paddings.size() * 2);
  for (auto [b, a] : paddings) {
    flat.push_back(b);
    flat.push_back(a);
  }
  return apply1(OpId::Pad, {x}, {{"paddings", std::move(flat)}, {"constant_value", constant_value}});
}

Tensor gather(const Tensor& params, const Tensor& indices, int64_t axis, int64_t batch_dims) {
  return apply1(OpId::Gather, {params, indices}, {{"axis", axis}, {"batch_dims", batch_dims}});
}

Tensor unsorted_segment_sum(const Tensor& data, const Tensor& segment_ids, int64_t num_segments) {
  return apply1(OpId::UnsortedSegmentSum, {data, segment_ids}, {{"num_segments", num_segments}});
}

Tensor one_hot(const Tensor& indices, int64_t depth, double on_value, double off_value, int64_t axis, DType dtype) {
  return apply1(OpId::OneHot, {indices},
                {{"depth", depth}, {"on_value", on_value}, {"off_value", off_value}, {"axis", axis}, {"dtype", dtype}});
}

Tensor reverse(const Tensor& x, Axes axes) {
  std::vector<int64_t> list;
  if (axes.axes)
    list = std::move(*axes.axes);
  else if (x.defined())
    for (int64_t i = 0; i < x.ndim(); ++i) list.push_back(i);
  return apply1(OpId::Reverse, {x}, {{"axes", std::move(list)}});
}

Tensor shape_of(const Tensor& x, DType out_type) { return apply1(OpId::ShapeOf, {x}, {{"out_type", out_type}}); }

Tensor rank(const Tensor& x) {
  if (!x.defined()) fail<InvalidArgument>("rank", "the tensor is undefined (None)");
  return scalar(static_cast<int32_t>(x.ndim()));
}

Tensor size(const Tensor& x, DType out_type) {
  if (!x.defined()) fail<InvalidArgument>("size", "the tensor is undefined (None)");
  if (out_type != int32 && out_type != int64)
    fail<InvalidArgument>("size", "out_type must be int32 or int64, got ", dtype_name(out_type));
  if (x.shape().is_fully_defined()) {
    const int64_t n = x.shape().num_elements();
    if (out_type == int32 && n > std::numeric_limits<int32_t>::max())
      fail<InvalidArgument>("size", "the tensor has ", n, " elements, which does not fit in int32; use out_type int64");
    return out_type == int32 ? scalar(static_cast<int32_t>(n)) : scalar(n);
  }
  // unknown dims (tracing): the product of the run-time shape
  Tensor dims = shape_of(x, out_type);
  Tensor n = dims.index({0});
  for (int64_t i = 1; i < x.ndim(); ++i) n = multiply(n, dims.index({i}));
  return n;
}

}  // namespace kiln
