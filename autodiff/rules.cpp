// Gradient rules for the primitives, written with Kiln's ops (DESIGN.md §4): the same code runs on
// an eager tape, under a trace, and again when an outer tape differentiates a backward pass.
#include "autodiff/rules.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <numeric>

#include "autodiff/graph_grad.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace kiln::autodiff {
namespace {

using ops::OpId;
using Grads = std::vector<Tensor>;

// A scalar of x's dtype.
Tensor c(const Tensor& like, double v) { return scalar_of(std::complex<double>(v), like.dtype(), "gradient"); }

bool differentiable(const Tensor& t) { return is_inexact(t.dtype()); }

// g * f(x) for the unary elementwise ops, each as TensorFlow defines it.
Grads unary(const GradContext& k) {
  const Tensor &x = k.inputs[0], &y = k.outputs[0], &g = k.grads[0];
  if (!differentiable(x)) return {Tensor()};
  switch (k.def.id) {
    case OpId::Negative:
      return {negative(g)};
    case OpId::Abs:
      return {g * sign(x)};
    case OpId::Sign:
      return {zeros_like(x)};
    case OpId::Exp:
      return {g * y};
    case OpId::Log:
      return {g / x};
    case OpId::Log1p:
      return {g / (x + c(x, 1))};
    case OpId::Sqrt:
      return {g / (y * c(y, 2))};
    case OpId::Rsqrt:
      return {g * y * y * y * c(y, -0.5)};
    case OpId::Square:
      return {g * x * c(x, 2)};
    case OpId::Sin:
      return {g * cos(x)};
    case OpId::Cos:
      return {negative(g) * sin(x)};
    case OpId::Tan:
      return {g * (c(y, 1) + y * y)};
    case OpId::Tanh:
      return {g * (c(y, 1) - y * y)};
    case OpId::Sigmoid:
      return {g * y * (c(y, 1) - y)};
    case OpId::Softplus:
      return {g * sigmoid(x)};
    case OpId::Relu:
      return {where(x > c(x, 0), g, zeros_like(g))};
    case OpId::Floor:
    case OpId::Ceil:
    case OpId::Round:
      return {Tensor()};
    default:
      return {Tensor()};
  }
}

Grads binary(const GradContext& k) {
  const Tensor &x = k.inputs[0], &y = k.inputs[1], &z = k.outputs[0], &g = k.grads[0];
  if (!differentiable(x)) return {Tensor(), Tensor()};
  Tensor gx, gy;
  switch (k.def.id) {
    case OpId::Add:
      gx = g, gy = g;
      break;
    case OpId::Subtract:
      gx = g, gy = negative(g);
      break;
    case OpId::Multiply:
      gx = g * y, gy = g * x;
      break;
    case OpId::Divide:
      gx = g / y, gy = negative(g) * x / (y * y);
      break;
    case OpId::Mod:
      gx = g, gy = negative(g) * floordiv(x, y);
      break;
    case OpId::Pow: {
      gx = g * y * pow(x, y - c(y, 1));
      // d/dy x^y = x^y log x, taken as 0 where x <= 0 (as TensorFlow)
      Tensor pos = x > c(x, 0);
      Tensor safe_x = where(pos, x, ones_like(x));
      gy = g * where(pos, z * log(safe_x), zeros_like(z));
      break;
    }
    case OpId::Maximum: {
      Tensor mask = x >= y;  // ties go to x, as TensorFlow
      gx = where(mask, g, zeros_like(g)), gy = where(mask, zeros_like(g), g);
      break;
    }
    case OpId::Minimum: {
      Tensor mask = x <= y;
      gx = where(mask, g, zeros_like(g)), gy = where(mask, zeros_like(g), g);
      break;
    }
    default:
      return {Tensor(), Tensor()};
  }
  return {unbroadcast(gx, x), unbroadcast(gy, y)};
}

Grads where_grad(const GradContext& k) {
  const Tensor &cond = k.inputs[0], &x = k.inputs[1], &y = k.inputs[2], &g = k.grads[0];
  if (!differentiable(x)) return {Tensor(), Tensor(), Tensor()};
  Tensor zero = zeros_like(g);
  return {Tensor(), unbroadcast(where(cond, g, zero), x), unbroadcast(where(cond, zero, g), y)};
}

Grads cast_grad(const GradContext& k) {
  const Tensor& x = k.inputs[0];
  if (!differentiable(x) || !differentiable(k.outputs[0])) return {Tensor()};
  Tensor g = k.grads[0];
  // complex -> real keeps the real part; its gradient is real, converted back
  return {cast(g, x.dtype())};
}

// The reduced axes of a reduction, and the keepdims shape of its output.
std::pair<std::vector<int64_t>, Shape> reduced(const GradContext& k) {
  const std::vector<int64_t>& axes = k.attrs.get_ints("axes");
  Shape keep = k.inputs[0].shape();
  for (int64_t a : axes) keep.mut(static_cast<size_t>(a)) = 1;
  return {axes, keep};
}

// A reduction's result with its reduced axes kept as size 1 (also for unknown dims, by
// inserting the axes rather than reshaping).
Tensor with_kept_axes(const Tensor& r, const std::vector<int64_t>& axes, const Shape& keep, bool keepdims) {
  if (keepdims) return r;
  if (keep.is_fully_defined()) return reshape(r, keep);
  Tensor out = r;
  std::vector<int64_t> sorted = axes;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t a : sorted) out = expand_dims(out, a);
  return out;
}

// broadcast_to(g, x's shape), also when x's shape is known only at run time.
Tensor broadcast_as(const Tensor& g, const Tensor& x) {
  return x.shape().is_fully_defined() ? broadcast_to(g, x.shape()) : broadcast_like(g, x);
}

// The number of elements of `x` per element of `y`, as a scalar of x's dtype.
Tensor elements_per(const Tensor& x, const Tensor& y) {
  if (x.shape().is_fully_defined() && y.shape().is_fully_defined())
    return c(x, static_cast<double>(std::max<int64_t>(x.num_elements(), 1)) /
                    static_cast<double>(std::max<int64_t>(y.num_elements(), 1)));
  Tensor nx = reduce_prod(shape_of(x, int64)), ny = reduce_prod(shape_of(y, int64));
  return cast(maximum(nx, ones_like(nx)), x.dtype()) / cast(maximum(ny, ones_like(ny)), x.dtype());
}

Grads reduce_grad(const GradContext& k) {
  const Tensor &x = k.inputs[0], &y = k.outputs[0];
  if (!differentiable(x)) return {Tensor()};
  auto [axes, keep] = reduced(k);
  const bool keepdims = k.attrs.get_bool("keepdims");
  Tensor g = with_kept_axes(k.grads[0], axes, keep, keepdims);
  switch (k.def.id) {
    case OpId::ReduceSum:
      return {broadcast_as(g, x)};
    case OpId::ReduceMean:
      return {broadcast_as(g, x) / elements_per(x, y)};
    case OpId::ReduceMax:
    case OpId::ReduceMin: {
      // the gradient is shared equally among the elements equal to the extreme value
      Tensor mask = cast(equal(x, with_kept_axes(y, axes, keep, keepdims)), x.dtype());
      Tensor count = reduce_sum(mask, axes, true);
      return {mask / count * g};
    }
    case OpId::ReduceProd: {
      // product of the other elements, exact with zeros: no zero -> prod / x; exactly one zero
      // -> the product of the rest at the zero, 0 elsewhere; two or more zeros -> 0
      Tensor is_zero = equal(x, zeros_like(x));
      Tensor zeros_count = reduce_sum(cast(is_zero, x.dtype()), axes, true);
      Tensor safe = where(is_zero, ones_like(x), x);
      Tensor prod_nonzero = reduce_prod(safe, axes, true);
      Tensor none = broadcast_to(equal(zeros_count, zeros_like(zeros_count)), x.shape());
      Tensor one = broadcast_to(equal(zeros_count, ones_like(zeros_count)), x.shape());
      Tensor others = where(none, prod_nonzero / safe,
                            where(logical_and(one, is_zero), broadcast_to(prod_nonzero, x.shape()), zeros_like(x)));
      return {others * g};
    }
    default:
      return {Tensor()};
  }
}

Grads matmul_grad(const GradContext& k) {
  const Tensor &a = k.inputs[0], &b = k.inputs[1], &g = k.grads[0];
  if (!differentiable(a)) return {Tensor(), Tensor()};
  bool ta = k.attrs.get_bool("transpose_a"), tb = k.attrs.get_bool("transpose_b");
  Tensor ga, gb;
  if (!ta && !tb)
    ga = matmul(g, b, false, true), gb = matmul(a, g, true, false);
  else if (!ta && tb)
    ga = matmul(g, b), gb = matmul(g, a, true, false);
  else if (ta && !tb)
    ga = matmul(b, g, false, true), gb = matmul(a, g);
  else
    ga = matmul(b, g, true, true), gb = matmul(g, a, true, true);
  return {unbroadcast(ga, a), unbroadcast(gb, b)};
}

// Convolution and pooling, as TensorFlow's _Conv2DGrad, _MaxPoolGrad and _AvgPoolGrad. The
// backprop ops are linear in each operand, so their own rules are the other two ops of the trio,
// which closes the set under differentiation (any order). Input shapes go to the backprop ops
// as attributes; a batch or channel dim unknown at trace time stays -1 and is read from the
// operands when the op runs.
std::vector<int64_t> spatial_attr(const GradContext& k, const char* name) { return k.attrs.get_ints(name); }

// A shape for a size attribute: unknown and symbolic dims (traces number symbols below -1) as -1.
Shape static_shape(const Tensor& t) {
  Shape s = t.shape();
  for (int64_t i = 0; i < s.rank(); ++i)
    if (s.dim(size_t(i)) < 0) s.mut(size_t(i)) = kUnknownDim;
  return s;
}

Grads conv2d_grad(const GradContext& k) {
  const Tensor &x = k.inputs[0], &f = k.inputs[1], &g = k.grads[0];
  if (!differentiable(x)) return {Tensor(), Tensor()};
  const auto s = spatial_attr(k, "strides"), d = spatial_attr(k, "dilations");
  const std::string& p = k.attrs.get_string("padding");
  return {conv2d_backprop_input(static_shape(x), f, g, s, p, d),
          conv2d_backprop_filter(x, static_shape(f), g, s, p, d)};
}

// inputs (filter, out_backprop): d/d filter pairs the incoming gradient (an input gradient) with
// out_backprop; d/d out_backprop is the forward convolution of it.
Grads conv2d_backprop_input_grad(const GradContext& k) {
  const Tensor &f = k.inputs[0], &dy = k.inputs[1], &g = k.grads[0];
  if (!differentiable(f)) return {Tensor(), Tensor()};
  const auto s = spatial_attr(k, "strides"), d = spatial_attr(k, "dilations");
  const std::string& p = k.attrs.get_string("padding");
  return {conv2d_backprop_filter(g, static_shape(f), dy, s, p, d), conv2d(g, f, s, p, d)};
}

// inputs (input, out_backprop), the incoming gradient has the filter's shape
Grads conv2d_backprop_filter_grad(const GradContext& k) {
  const Tensor &x = k.inputs[0], &dy = k.inputs[1], &g = k.grads[0];
  if (!differentiable(x)) return {Tensor(), Tensor()};
  const auto s = spatial_attr(k, "strides"), d = spatial_attr(k, "dilations");
  const std::string& p = k.attrs.get_string("padding");
  return {conv2d_backprop_input(static_shape(x), g, dy, s, p, d), conv2d(x, g, s, p, d)};
}

Grads max_pool2d_grad_rule(const GradContext& k) {
  const Tensor &x = k.inputs[0], &g = k.grads[0];
  if (!differentiable(x)) return {Tensor()};
  return {max_pool2d_grad(x, g, spatial_attr(k, "ksize"), spatial_attr(k, "strides"), k.attrs.get_string("padding"))};
}

// max_pool2d_grad(input, grad) and max_pool2d_grad_grad(input, grad) are linear in grad and
// piecewise constant in input (the positions of the maxima), whose gradient is zero.
Grads max_pool2d_grad_grad_rule(const GradContext& k) {
  const Tensor &x = k.inputs[0], &g = k.grads[0];
  const auto ks = spatial_attr(k, "ksize"), s = spatial_attr(k, "strides");
  const std::string& p = k.attrs.get_string("padding");
  if (k.def.id == OpId::MaxPool2DGrad) return {zeros_like(x), max_pool2d_grad_grad(x, g, ks, s, p)};
  return {zeros_like(x), max_pool2d_grad(x, g, ks, s, p)};
}

Grads avg_pool2d_grad_rule(const GradContext& k) {
  const Tensor &x = k.inputs[0], &g = k.grads[0];
  if (!differentiable(x)) return {Tensor()};
  return {avg_pool2d_grad(static_shape(x), g, spatial_attr(k, "ksize"), spatial_attr(k, "strides"),
                          k.attrs.get_string("padding"))};
}

Grads avg_pool2d_grad_grad_rule(const GradContext& k) {
  return {avg_pool2d(k.grads[0], spatial_attr(k, "ksize"), spatial_attr(k, "strides"), k.attrs.get_string("padding"))};
}

Grads reshape_like_input(const GradContext& k) {
  if (!differentiable(k.inputs[0])) return {Tensor()};
  const Tensor& x = k.inputs[0];
  return {x.shape().is_fully_defined() ? reshape(k.grads[0], x.shape()) : reshape_like(k.grads[0], x)};
}

Grads transpose_grad(const GradContext& k) {
  const std::vector<int64_t>& perm = k.attrs.get_ints("perm");
  std::vector<int64_t> inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
  return {transpose(k.grads[0], inv)};
}

Grads broadcast_grad(const GradContext& k) { return {unbroadcast(k.grads[0], k.inputs[0])}; }

// broadcast_like, reshape_like and sum_to_like: the like operand gets no gradient
Grads broadcast_like_grad(const GradContext& k) { return {sum_to_like(k.grads[0], k.inputs[0]), Tensor()}; }
Grads reshape_like_grad(const GradContext& k) { return {reshape_like(k.grads[0], k.inputs[0]), Tensor()}; }
Grads sum_to_like_grad(const GradContext& k) { return {broadcast_like(k.grads[0], k.inputs[0]), Tensor()}; }

Grads concat_grad(const GradContext& k) {
  int64_t axis = k.attrs.get_int("axis");
  int64_t rank = k.inputs[0].ndim();
  if (axis < 0) axis += rank;
  std::vector<int64_t> sizes;
  for (const Tensor& t : k.inputs) sizes.push_back(t.shape().dim(axis));
  if (k.inputs.size() == 1) return {k.grads[0]};
  std::vector<Tensor> parts = split(k.grads[0], sizes, axis);
  Grads out;
  for (size_t i = 0; i < k.inputs.size(); ++i) out.push_back(differentiable(k.inputs[i]) ? parts[i] : Tensor());
  return out;
}

Grads split_grad(const GradContext& k) {
  int64_t axis = k.attrs.get_int("axis");
  return {concat(std::vector<Tensor>(k.grads.begin(), k.grads.end()), axis)};
}

Grads tile_grad(const GradContext& k) {
  // view the gradient as [m0, d0, m1, d1, ...] and sum over the multiples
  const Tensor& x = k.inputs[0];
  const std::vector<int64_t>& mult = k.attrs.get_ints("multiples");
  Shape split_shape;
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < x.ndim(); ++i) {
    axes.push_back(static_cast<int64_t>(split_shape.rank()));
    split_shape.push_back(mult[static_cast<size_t>(i)]);
    split_shape.push_back(x.shape().dim(i));
  }
  if (x.ndim() == 0) return {k.grads[0]};
  return {reshape(reduce_sum(reshape(k.grads[0], split_shape), axes), x.shape())};
}

Grads pad_grad(const GradContext& k) {
  const Tensor& x = k.inputs[0];
  const std::vector<int64_t>& p = k.attrs.get_ints("paddings");
  std::vector<IndexItem> items;
  for (int64_t i = 0; i < x.ndim(); ++i) {
    int64_t before = p[static_cast<size_t>(2 * i)];
    items.emplace_back(Slice(before, before + x.shape().dim(i)));
  }
  return {k.grads[0].index(std::span<const IndexItem>(items))};
}

Grads reverse_grad(const GradContext& k) { return {reverse(k.grads[0], k.attrs.get_ints("axes"))}; }

Grads fill_grad(const GradContext& k) {
  if (!differentiable(k.inputs[0])) return {Tensor()};
  return {reduce_sum(k.grads[0])};
}

Grads stop(const GradContext& k) { return Grads(k.inputs.size()); }

// Gather's gradient scatters g back with a segment sum, as TensorFlow's _GatherV2Grad: view
// params as [B, O, N, inner] (batch dims, the dims before `axis`, the gathered axis, the rest)
// and g as [B, O, J, inner]; move O behind J so that each of the B * J index rows owns one
// [O, inner] slice, offset each batch's indices by b * N, and sum into B * N segments.
Grads gather_grad(const GradContext& k) {
  const Tensor &params = k.inputs[0], &indices = k.inputs[1], &g = k.grads[0];
  if (!differentiable(params)) return {Tensor(), Tensor()};
  const Shape& ps = params.shape();
  int64_t axis = k.attrs.get_int("axis"), bd = k.attrs.get_int("batch_dims");
  if (axis < 0) axis += ps.rank();
  if (bd < 0) bd += indices.ndim();
  const int64_t n = ps.dim(static_cast<size_t>(axis));
  if (axis == 0 && bd == 0) return {unsorted_segment_sum(g, indices, n), Tensor()};
  if (params.num_elements() == 0 || g.num_elements() == 0) return {zeros_like(params), Tensor()};
  auto product = [&](int64_t b, int64_t e) {
    int64_t p = 1;
    for (int64_t i = b; i < e; ++i) p *= ps.dim(static_cast<size_t>(i));
    return p;
  };
  const int64_t batch = product(0, bd), outer = product(bd, axis), inner = product(axis + 1, ps.rank());
  const int64_t per_batch = indices.num_elements() / batch;
  Tensor values = reshape(g, {batch, outer, per_batch, inner});
  if (outer > 1) values = transpose(values, {0, 2, 1, 3});
  Tensor ids = reshape(indices, {batch, per_batch});
  // int64 offsets: b * N can exceed int32 even when every index fits
  if (batch > 1) ids = cast(ids, int64) + reshape(range(0, batch * n, n, int64), {batch, 1});
  Tensor sums = unsorted_segment_sum(reshape(values, {batch * per_batch, outer, inner}),
                                     reshape(ids, {batch * per_batch}), batch * n);
  Tensor grad = reshape(sums, {batch, n, outer, inner});
  if (outer > 1) grad = transpose(grad, {0, 2, 1, 3});
  return {reshape(grad, ps), Tensor()};
}

// The gradient of a slice: slice the flat positions of x exactly as x was sliced, then scatter
// g to those positions (a slice selects each element at most once, so the sum is a scatter).
Grads strided_slice_grad(const GradContext& k) {
  const Tensor& x = k.inputs[0];
  if (!differentiable(x)) return {Tensor()};
  const int64_t n = x.num_elements();
  Tensor positions = reshape(range(0, n, 1, int64), x.shape());
  Tensor picked = ops::apply1(OpId::StridedSlice, k.attrs, std::span<const Tensor>(&positions, 1));
  return {reshape(unsorted_segment_sum(reshape(k.grads[0], {-1}), reshape(picked, {-1}), n), x.shape())};
}

Grads segment_sum_grad(const GradContext& k) {
  if (!differentiable(k.inputs[0])) return {Tensor(), Tensor()};
  return {gather(k.grads[0], k.inputs[1]), Tensor()};
}

// Atomic entries so that ScopedRuleOverride can swap a rule while other threads read the table.
using RuleTable = std::array<std::atomic<GradFn>, ops::kNumOps>;

void build_table(RuleTable& t) {
  for (auto& f : t) f.store(nullptr, std::memory_order_relaxed);  // std::atomic starts uninitialized
  auto set = [&](OpId id, GradFn f) { t[static_cast<size_t>(id)].store(f, std::memory_order_relaxed); };
  for (OpId id : {OpId::Negative, OpId::Abs, OpId::Sign, OpId::Exp, OpId::Log, OpId::Log1p, OpId::Sqrt, OpId::Rsqrt,
                  OpId::Square, OpId::Sin, OpId::Cos, OpId::Tan, OpId::Tanh, OpId::Sigmoid, OpId::Softplus, OpId::Relu,
                  OpId::Floor, OpId::Ceil, OpId::Round})
    set(id, unary);
  for (OpId id :
       {OpId::Add, OpId::Subtract, OpId::Multiply, OpId::Divide, OpId::Mod, OpId::Pow, OpId::Maximum, OpId::Minimum})
    set(id, binary);
  set(OpId::FloorDiv, stop);
  set(OpId::Where, where_grad);
  set(OpId::Cast, cast_grad);
  for (OpId id : {OpId::ReduceSum, OpId::ReduceMean, OpId::ReduceMax, OpId::ReduceMin, OpId::ReduceProd})
    set(id, reduce_grad);
  set(OpId::MatMul, matmul_grad);
  set(OpId::Conv2D, conv2d_grad);
  set(OpId::Conv2DBackpropInput, conv2d_backprop_input_grad);
  set(OpId::Conv2DBackpropFilter, conv2d_backprop_filter_grad);
  set(OpId::MaxPool2D, max_pool2d_grad_rule);
  for (OpId id : {OpId::MaxPool2DGrad, OpId::MaxPool2DGradGrad}) set(id, max_pool2d_grad_grad_rule);
  set(OpId::AvgPool2D, avg_pool2d_grad_rule);
  set(OpId::AvgPool2DGrad, avg_pool2d_grad_grad_rule);
  for (OpId id : {OpId::Reshape, OpId::ExpandDims, OpId::Squeeze}) set(id, reshape_like_input);
  set(OpId::Transpose, transpose_grad);
  set(OpId::BroadcastTo, broadcast_grad);
  set(OpId::Concat, concat_grad);
  set(OpId::Split, split_grad);
  set(OpId::Tile, tile_grad);
  set(OpId::Pad, pad_grad);
  set(OpId::Reverse, reverse_grad);
  set(OpId::Fill, fill_grad);
  set(OpId::Gather, gather_grad);
  set(OpId::StridedSlice, strided_slice_grad);
  set(OpId::UnsortedSegmentSum, segment_sum_grad);
  set(OpId::Call, call_grad);
  set(OpId::BroadcastLike, broadcast_like_grad);
  set(OpId::ReshapeLike, reshape_like_grad);
  set(OpId::SumToLike, sum_to_like_grad);
}

RuleTable& rule_table() {
  struct Rules {
    RuleTable table;
    Rules() { build_table(table); }
  };
  static Rules rules;
  return rules.table;
}

}  // namespace

GradFn grad_rule(ops::OpId id) { return rule_table()[static_cast<size_t>(id)].load(std::memory_order_acquire); }

ScopedRuleOverride::ScopedRuleOverride(ops::OpId id, GradFn fn)
    : id_(id), previous_(rule_table()[static_cast<size_t>(id)].exchange(fn, std::memory_order_acq_rel)) {}

ScopedRuleOverride::~ScopedRuleOverride() {
  rule_table()[static_cast<size_t>(id_)].store(previous_, std::memory_order_release);
}

bool is_non_differentiable(ops::OpId id) { return !ops::op_def(id).has(ops::kDifferentiable); }

Tensor unbroadcast(const Tensor& g, const Tensor& like) {
  if (g.shape().is_fully_defined() && like.shape().is_fully_defined()) return unbroadcast(g, like.shape());
  return sum_to_like(g, like);
}

Tensor unbroadcast(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.ndim() - shape.rank();
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < g.ndim(); ++i)
    if (i < lead || (shape.dim(i - lead) == 1 && g.shape().dim(i) != 1)) axes.push_back(i);
  return reshape(axes.empty() ? g : reduce_sum(g, axes, true), shape);
}

}  // namespace kiln::autodiff
