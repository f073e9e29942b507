// Indexing ops: gather, one_hot and strided_slice (TensorFlow semantics), and Tensor::index,
// which translates NumPy-style index items into one strided_slice.
#include <algorithm>
#include <bit>
#include <string>

#include "ops/defs/shape_common.h"
#include "ops/dispatch.h"

namespace kiln::ops {
namespace {

const char* src_bytes(const Tensor& t) { return static_cast<const char*>(t.raw_data()); }
char* dst_bytes(Tensor& t) { return static_cast<char*>(t.mutable_raw_data()); }

SmallVector<int64_t, 8> strides_of(const Shape& s) {
  SmallVector<int64_t, 8> st(size_t(s.rank()), 1);
  for (int64_t i = s.rank() - 2; i >= 0; --i) st[i] = st[i + 1] * s.dim(size_t(i + 1));
  return st;
}

// Reads integer index `i` of an int32, int64 or uint8 tensor as int64.
template <class F>
void visit_index_type(const Tensor& t, std::string_view op, F&& f) {
  switch (t.dtype()) {
    case DType::Int32:
      return f(static_cast<const int32_t*>(t.raw_data()));
    case DType::Int64:
      return f(static_cast<const int64_t*>(t.raw_data()));
    case DType::UInt8:
      return f(static_cast<const uint8_t*>(t.raw_data()));
    default:
      fail<Internal>(op, "unexpected index dtype ", dtype_name(t.dtype()));
  }
}

// ---------------------------------------------------------------------------------------------
// gather

struct GatherDims {
  int64_t axis, batch_dims;
};

GatherDims gather_dims(const OpDef& def, const Attrs& attrs, const Tensor& params, const Tensor& indices) {
  const int64_t pr = params.ndim(), ir = indices.ndim();
  int64_t bd = attrs.get_int("batch_dims");
  if (bd < -ir || bd > ir)
    fail<InvalidArgument>(def.name, "batch_dims ", bd, " is out of range for indices of rank ", ir, " (expected [", -ir,
                          ", ", ir, "])");
  if (bd < 0) bd += ir;
  if (pr == 0) fail<InvalidArgument>(def.name, "params must have rank >= 1, got a scalar");
  const int64_t axis = normalize_axis(def.name, attrs.get_int("axis"), pr);
  if (bd > axis) fail<InvalidArgument>(def.name, "batch_dims ", bd, " must be <= axis ", axis);
  return {axis, bd};
}

TypeList infer_gather(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor &params = in[0], &indices = in[1];
  if (indices.dtype() != DType::Int32 && indices.dtype() != DType::Int64)
    fail<InvalidArgument>(def.name, "indices must be int32 or int64, got ", dtype_name(indices.dtype()));
  auto [axis, bd] = gather_dims(def, attrs, params, indices);
  const Shape &ps = params.shape(), &is = indices.shape();
  for (int64_t i = 0; i < bd; ++i) {
    const int64_t a = ps.dim(size_t(i)), b = is.dim(size_t(i));
    if (a != b && a >= 0 && b >= 0)
      fail<InvalidArgument>(def.name, "params shape ", ps.to_string(), " and indices shape ", is.to_string(),
                            " must agree on the first ", bd, " (batch) dims");
  }
  Shape out;
  for (int64_t i = 0; i < axis; ++i) out.push_back(ps.dim(size_t(i)));
  for (int64_t i = bd; i < is.rank(); ++i) out.push_back(is.dim(size_t(i)));
  for (int64_t i = axis + 1; i < ps.rank(); ++i) out.push_back(ps.dim(size_t(i)));
  if (out.is_fully_defined()) checked_nbytes(def.name, out, params.dtype());
  return {TensorType{params.dtype(), out}};
}

void kernel_gather(KernelContext& ctx) {
  const Tensor &params = ctx.inputs[0], &indices = ctx.inputs[1];
  auto [axis, bd] = gather_dims(ctx.def, ctx.attrs, params, indices);
  const Shape& ps = params.shape();
  const int64_t n = ps.dim(size_t(axis));
  // validate every index before touching params, so a bad index never reads memory
  visit_index_type(indices, ctx.def.name, [&](auto* idx) {
    const int64_t count = indices.num_elements();
    for (int64_t i = 0; i < count; ++i) {
      const int64_t v = static_cast<int64_t>(idx[i]);
      if (v < 0 || v >= n)
        fail<InvalidArgument>(ctx.def.name, "indices", multi_index_string(i, indices.shape()), " = ", v,
                              " is not in [0, ", n, ") (axis ", axis, " of params with shape ", ps.to_string(), ")");
    }
  });
  Tensor& out = ctx.output(0);
  if (out.num_elements() == 0) return;
  // out (B, O, I, inner) = params (B, O, N, inner) at indices (B, I)
  const int64_t es = dtype_size(params.dtype());
  const int64_t B = dims_product(ps, 0, bd), O = dims_product(ps, bd, axis);
  const int64_t inner = dims_product(ps, axis + 1, ps.rank());
  const int64_t I = indices.num_elements() / B;
  const int64_t inner_bytes = inner * es;
  const char* src = src_bytes(params);
  char* dst = dst_bytes(out);
  visit_index_type(indices, ctx.def.name, [&](auto* idx) {
    if (inner == 1) {
      // single elements: a typed loop, dispatched once
      visit_elem_size(es, [&](auto tag) {
        using E = decltype(tag);
        const E* s = reinterpret_cast<const E*>(src);
        E* d = reinterpret_cast<E*>(dst);
        parallel_for(B * O * I, std::max<int64_t>(1, kCopyGrainBytes / es), [&](int64_t rb, int64_t re) {
          // walk (bo, i) without a division per element
          int64_t bo = rb / I, i = rb % I;
          for (int64_t row = rb; row < re;) {
            const int64_t m = std::min(I - i, re - row);
            const E* srow = s + bo * n;
            const auto* irow = idx + bo / O * I + i;
            E* drow = d + row;
            for (int64_t j = 0; j < m; ++j) drow[j] = srow[static_cast<int64_t>(irow[j])];
            row += m;
            i = 0;
            ++bo;
          }
        });
      });
      return;
    }
    parallel_for(B * O * I, std::max<int64_t>(1, kCopyGrainBytes / inner_bytes), [&](int64_t rb, int64_t re) {
      for (int64_t row = rb; row < re; ++row) {
        const int64_t i = row % I, bo = row / I;
        const int64_t k = static_cast<int64_t>(idx[bo / O * I + i]);
        std::memcpy(dst + row * inner_bytes, src + (bo * n + k) * inner_bytes, size_t(inner_bytes));
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// one_hot

int64_t one_hot_axis(const OpDef& def, const Attrs& attrs, int64_t rank) {
  const int64_t axis = attrs.get_int("axis");
  if (axis == -1) return rank;
  if (axis < 0 || axis > rank)
    fail<InvalidArgument>(def.name, "axis ", axis, " must be -1 or in [0, ", rank, "] for indices of rank ", rank);
  return axis;
}

TypeList infer_one_hot(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor& indices = in[0];
  const DType it = indices.dtype();
  if (it != DType::Int32 && it != DType::Int64 && it != DType::UInt8)
    fail<InvalidArgument>(def.name, "indices must be int32, int64 or uint8, got ", dtype_name(it));
  const int64_t depth = attrs.get_int("depth");
  if (depth < 0) fail<InvalidArgument>(def.name, "depth must be non-negative, got ", depth);
  const DType dt = attrs.get_type("dtype");
  if (dt == DType::String) fail<InvalidArgument>(def.name, "dtype string is not supported");
  unsigned char v[16];
  scalar_to_bytes(def.name, "on_value", attrs.get_float("on_value"), dt, v);
  scalar_to_bytes(def.name, "off_value", attrs.get_float("off_value"), dt, v);
  const int64_t axis = one_hot_axis(def, attrs, indices.ndim());
  Shape out = indices.shape();
  out.insert(size_t(axis), depth);
  if (out.is_fully_defined()) checked_nbytes(def.name, out, dt);
  return {TensorType{dt, out}};
}

void kernel_one_hot(KernelContext& ctx) {
  const Tensor& indices = ctx.inputs[0];
  Tensor& out = ctx.output(0);
  if (out.num_elements() == 0) return;
  const DType dt = out.dtype();
  const int64_t es = dtype_size(dt);
  unsigned char on[16], off[16];
  scalar_to_bytes(ctx.def.name, "on_value", ctx.attrs.get_float("on_value"), dt, on);
  scalar_to_bytes(ctx.def.name, "off_value", ctx.attrs.get_float("off_value"), dt, off);
  char* dst = dst_bytes(out);
  fill_elements(dst, out.num_elements(), es, off);
  const int64_t depth = ctx.attrs.get_int("depth");
  const int64_t axis = one_hot_axis(ctx.def, ctx.attrs, indices.ndim());
  // out (outer, depth, inner) from indices (outer, inner)
  const int64_t outer = dims_product(indices.shape(), 0, axis);
  const int64_t inner = indices.num_elements() / outer;
  visit_index_type(indices, ctx.def.name, [&](auto* idx) {
    parallel_for(outer * inner, kCopyGrainBytes, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        const int64_t k = static_cast<int64_t>(idx[p]);
        if (k < 0 || k >= depth) continue;
        const int64_t o = p / inner, i = p % inner;
        std::memcpy(dst + ((o * depth + k) * inner + i) * es, on, size_t(es));
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// strided_slice (TensorFlow's ValidateStridedSliceOp, restated)

constexpr int64_t kNewAxisDim = -1, kShrinkDim = -2;

}  // namespace

SliceSpec make_slice_spec(const OpDef& def, const Attrs& attrs, const Shape& in) {
  const auto& b = attrs.get_ints("begin");
  const auto& e = attrs.get_ints("end");
  const auto& s = attrs.get_ints("strides");
  if (b.size() != e.size() || b.size() != s.size())
    fail<InvalidArgument>(def.name, "begin, end and strides must have the same length, got ", b.size(), ", ", e.size(),
                          " and ", s.size());
  const int n = static_cast<int>(b.size());
  if (n > 62) fail<InvalidArgument>(def.name, "a slice spec has at most 62 entries, got ", n);
  auto bits = [&](const char* name) {
    return static_cast<uint64_t>(attrs.get_int_or(name, 0)) & ((uint64_t{1} << n) - 1);
  };
  const uint64_t begin_mask = bits("begin_mask"), end_mask = bits("end_mask"), new_axis_mask = bits("new_axis_mask"),
                 shrink_mask = bits("shrink_axis_mask");
  uint64_t ellipsis_mask = bits("ellipsis_mask");
  if (std::popcount(ellipsis_mask) > 1)
    fail<InvalidArgument>(def.name, "the slice spec has more than one ellipsis (ellipsis_mask ", ellipsis_mask, ")");
  int sparse_dims = n;
  int new_axes_after_ellipsis = 0;
  bool ellipsis_seen = false;
  for (int i = 0; i < n; ++i) {
    if (ellipsis_seen && ((new_axis_mask >> i) & 1)) ++new_axes_after_ellipsis;
    if ((ellipsis_mask >> i) & 1) ellipsis_seen = true;
  }
  if (!ellipsis_seen) ellipsis_mask |= uint64_t{1} << sparse_dims++;  // implicit trailing ellipsis

  // the dense spec: one entry per input dim
  const int64_t r = in.rank();
  SliceSpec spec;
  spec.begin.resize(size_t(r), 0);
  spec.stride.resize(size_t(r), 1);
  spec.size.resize(size_t(r), 0);
  SmallVector<int64_t, 8> end(size_t(r), 0);
  SmallVector<bool, 8> bm(size_t(r), false), em(size_t(r), false), shrink(size_t(r), false);
  SmallVector<int64_t, 8> gather;  // final dims: an input dim, kNewAxisDim or kShrinkDim
  int64_t full = 0;
  for (int i = 0; i < sparse_dims; ++i) {
    if ((ellipsis_mask >> i) & 1) {
      const int64_t next = std::min<int64_t>(r - (sparse_dims - i) + 1 + new_axes_after_ellipsis, r);
      for (; full < next; ++full) {
        bm[size_t(full)] = em[size_t(full)] = true;
        gather.push_back(full);
      }
    } else if ((new_axis_mask >> i) & 1) {
      gather.push_back(kNewAxisDim);
    } else {
      if (full == r)
        fail<InvalidArgument>(def.name, "the slice spec indexes more axes than the input has (shape ", in.to_string(),
                              ")");
      spec.begin[size_t(full)] = b[size_t(i)];
      end[size_t(full)] = e[size_t(i)];
      spec.stride[size_t(full)] = s[size_t(i)];
      bm[size_t(full)] = (begin_mask >> i) & 1;
      em[size_t(full)] = (end_mask >> i) & 1;
      shrink[size_t(full)] = (shrink_mask >> i) & 1;
      gather.push_back(shrink[size_t(full)] ? kShrinkDim : full);
      ++full;
    }
  }

  for (int64_t i = 0; i < r; ++i) {
    const size_t k = size_t(i);
    const int64_t dim = in.dim(k), stride = spec.stride[k];
    if (stride == 0) fail<InvalidArgument>(def.name, "the stride for axis ", i, " must be non-zero");
    if (shrink[k] && stride < 0)
      fail<InvalidArgument>(def.name, "a shrunk (integer-indexed) axis ", i, " needs a positive stride, got ", stride);
    if (dim < 0) {  // unknown while tracing
      spec.size[k] = shrink[k] ? 1 : kUnknownDim;
      continue;
    }
    int64_t begin = spec.begin[k];
    if (shrink[k]) {
      const int64_t fwd = begin < 0 ? dim + begin : begin;
      if (fwd < 0 || fwd >= dim)
        fail<InvalidArgument>(def.name, "index ", begin, " is out of range for axis ", i, " with size ", dim);
      spec.begin[k] = fwd;
      spec.stride[k] = 1;
      spec.size[k] = 1;
      continue;
    }
    // Python's clamping: [0, dim] going forward, [-1, dim - 1] going backward
    const int64_t lo = stride > 0 ? 0 : -1, hi = stride > 0 ? dim : dim - 1;
    auto canonical = [&](int64_t x, bool masked, bool is_end) {
      if (masked) return (stride > 0) != is_end ? lo : hi;
      const int64_t fwd = x < 0 ? dim + x : x;
      return std::clamp(fwd, lo, hi);
    };
    begin = canonical(begin, bm[k], false);
    const int64_t stop = canonical(end[k], em[k], true);
    const int64_t len = stop - begin;
    spec.begin[k] = begin;
    if (len == 0 || ((len < 0) != (stride < 0)))
      spec.size[k] = 0;
    else
      spec.size[k] = len / stride + (len % stride != 0 ? 1 : 0);
  }
  for (int64_t g : gather) {
    if (g == kNewAxisDim)
      spec.out.push_back(1);
    else if (g != kShrinkDim)
      spec.out.push_back(spec.size[size_t(g)]);
  }
  return spec;
}

namespace {

TypeList infer_strided_slice(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  return {TensorType{in[0].dtype(), make_slice_spec(def, attrs, in[0].shape()).out}};
}

void kernel_strided_slice(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  SliceSpec spec = make_slice_spec(ctx.def, ctx.attrs, x.shape());
  if (spec.out.num_elements() == 0) {
    ctx.output(0);
    return;
  }
  const int64_t r = x.ndim();
  auto st = strides_of(x.shape());
  SmallVector<int64_t, 8> src(size_t(r), 0);
  int64_t base = 0;
  for (int64_t i = 0; i < r; ++i) {
    const size_t k = size_t(i);
    base += spec.begin[k] * st[k];
    // a step only matters where it is taken (a dim of size 1 may have a huge step)
    if (spec.size[k] > 1) src[k] = spec.stride[k] * st[k];
  }
  Shape proc(std::span<const int64_t>(spec.size.data(), spec.size.size()));
  CopyPlan plan = make_copy_plan(proc.dims(), src, strides_of(proc));
  const int64_t es = dtype_size(x.dtype());
  if (plan.contiguous()) {
    ctx.set_output(0, make_view(x, ctx.types[0].shape, size_t(base * es)));
    return;
  }
  Tensor& out = ctx.output(0);
  run_copy(plan, es, src_bytes(x) + base * es, dst_bytes(out));
}

}  // namespace

OpDef define_Gather() {
  OpDef d;
  d.traits = kDifferentiable | kStringsByIndex;
  d.num_inputs = 2;
  d.attrs = {{"axis", AttrKind::Int}, {"batch_dims", AttrKind::Int}};
  d.infer = infer_gather;
  d.cpu_kernel = kernel_gather;
  return d;
}

OpDef define_OneHot() {
  OpDef d;
  d.attrs = {{"depth", AttrKind::Int},
             {"on_value", AttrKind::Float},
             {"off_value", AttrKind::Float},
             {"axis", AttrKind::Int},
             {"dtype", AttrKind::Type}};
  d.infer = infer_one_hot;
  d.cpu_kernel = kernel_one_hot;
  return d;
}

OpDef define_StridedSlice() {
  OpDef d;
  d.traits = kDifferentiable | kView | kStringsByIndex;
  d.attrs = {{"begin", AttrKind::Ints},
             {"end", AttrKind::Ints},
             {"strides", AttrKind::Ints},
             {"begin_mask", AttrKind::Int, false},
             {"end_mask", AttrKind::Int, false},
             {"ellipsis_mask", AttrKind::Int, false},
             {"new_axis_mask", AttrKind::Int, false},
             {"shrink_axis_mask", AttrKind::Int, false}};
  d.infer = infer_strided_slice;
  d.cpu_kernel = kernel_strided_slice;
  return d;
}

}  // namespace kiln::ops

// ---------------------------------------------------------------------------------------------
// Tensor::index

namespace kiln {

Tensor Tensor::index(std::initializer_list<IndexItem> items) const {
  return index(std::span<const IndexItem>(items.begin(), items.size()));
}

Tensor Tensor::index(std::span<const IndexItem> items) const {
  const Shape& shape = this->shape();  // throws for an undefined tensor
  const int64_t rank = shape.rank();
  int64_t consumed = 0, ellipses = 0;
  for (const IndexItem& it : items) {
    if (std::holds_alternative<int64_t>(it.v) || std::holds_alternative<Slice>(it.v))
      ++consumed;
    else if (std::holds_alternative<Ellipsis_t>(it.v))
      ++ellipses;
  }
  if (ellipses > 1) fail<InvalidArgument>("index", "an index can only have a single ellipsis, got ", ellipses);
  if (consumed > rank)
    fail<InvalidArgument>("index", "too many indices for a tensor of rank ", rank, " (shape ", shape.to_string(),
                          "): ", consumed, " were given");
  if (items.size() > 62) fail<InvalidArgument>("index", "at most 62 index items are supported, got ", items.size());

  std::vector<int64_t> begin, end, strides;
  int64_t begin_mask = 0, end_mask = 0, ellipsis_mask = 0, new_axis_mask = 0, shrink_mask = 0;
  int64_t axis = 0;  // the input axis the next item applies to
  for (size_t i = 0; i < items.size(); ++i) {
    const int64_t bit = int64_t{1} << i;
    int64_t b = 0, e = 0, s = 1;
    const auto& v = items[i].v;
    if (const int64_t* k = std::get_if<int64_t>(&v)) {
      const int64_t dim = shape.dim(size_t(axis));
      b = *k;
      if (dim >= 0) {
        if (b < -dim || b >= dim)
          fail<InvalidArgument>("index", "index ", b, " is out of range for axis ", axis, " with size ", dim);
        if (b < 0) b += dim;
        e = b + 1;
      }
      shrink_mask |= bit;
      ++axis;
    } else if (const Slice* sl = std::get_if<Slice>(&v)) {
      if (sl->step == 0) fail<InvalidArgument>("index", "slice step cannot be zero");
      s = sl->step;
      if (const int64_t* x = std::get_if<int64_t>(&sl->start))
        b = *x;
      else
        begin_mask |= bit;
      if (const int64_t* x = std::get_if<int64_t>(&sl->stop))
        e = *x;
      else
        end_mask |= bit;
      ++axis;
    } else if (std::holds_alternative<NewAxis_t>(v)) {
      new_axis_mask |= bit;
    } else {
      ellipsis_mask |= bit;
      axis += rank - consumed;
    }
    begin.push_back(b);
    end.push_back(e);
    strides.push_back(s);
  }
  ops::Attrs attrs{{"begin", std::move(begin)},      {"end", std::move(end)},          {"strides", std::move(strides)},
                   {"begin_mask", begin_mask},       {"end_mask", end_mask},           {"ellipsis_mask", ellipsis_mask},
                   {"new_axis_mask", new_axis_mask}, {"shrink_axis_mask", shrink_mask}};
  return ops::apply1(ops::OpId::StridedSlice, {*this}, attrs);
}

}  // namespace kiln
