// Shape and data-movement ops: transpose, expand_dims, squeeze, concat, split, tile,
// broadcast_to, pad, reverse, shape_of. Kernels copy bytes by element size (one instantiation
// per size, not per dtype) through the shared strided copy; pure relayouts become views.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/defs/shape_common.h"
#include "ops/kernels/cuda/kernels.h"

namespace kiln::ops {

// ---------------------------------------------------------------------------------------------
// Shared helpers

Tensor make_view(const Tensor& x, const Shape& shape, size_t byte_offset) {
  TensorImpl* src = x.impl();
  Ref<TensorImpl> t(new TensorImpl());
  t->dtype = src->dtype;
  t->shape = shape;
  t->numel = shape.num_elements();
  t->storage = src->storage;
  t->offset = src->offset + (t->numel == 0 ? 0 : byte_offset);
  t->device = src->device;
  return Tensor(std::move(t));
}

int64_t checked_mul(std::string_view op, int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail<InvalidArgument>(op, "dimension ", a, " * ", b, " overflows int64");
  return r;
}

int64_t checked_add(std::string_view op, int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail<InvalidArgument>(op, "dimension ", a, " + ", b, " overflows int64");
  return r;
}

CopyPlan make_copy_plan(std::span<const int64_t> dims, std::span<const int64_t> src_strides,
                        std::span<const int64_t> dst_strides) {
  CopyPlan p;
  // zero-size copies first: products of the other dims may not fit in int64
  for (int64_t d : dims)
    if (d == 0) return p;
  p.total = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = dims[i];
    p.total *= d;
    if (d == 1) continue;
    if (!p.dims.empty() && p.src.back() == src_strides[i] * d && p.dst.back() == dst_strides[i] * d) {
      p.dims.back() *= d;
      p.src.back() = src_strides[i];
      p.dst.back() = dst_strides[i];
      continue;
    }
    p.dims.push_back(d);
    p.src.push_back(src_strides[i]);
    p.dst.push_back(dst_strides[i]);
  }
  return p;
}

void parallel_memcpy(char* dst, const char* src, int64_t n) {
  if (n <= 0) return;
  parallel_for(n, kCopyGrainBytes, [&](int64_t b, int64_t e) { std::memcpy(dst + b, src + b, size_t(e - b)); });
}

namespace {

template <class E>
void copy_row_typed(int64_t n, const E* s, int64_t ss, E* d, int64_t ds) {
  if (ss == 0) {
    const E v = s[0];
    if (ds == 1)
      std::fill(d, d + n, v);
    else
      for (int64_t i = 0; i < n; ++i) d[i * ds] = v;
  } else if (ds == 1) {
    for (int64_t i = 0; i < n; ++i) d[i] = s[i * ss];
  } else {
    for (int64_t i = 0; i < n; ++i) d[i * ds] = s[i * ss];
  }
}

void copy_row(int64_t esize, int64_t n, const char* s, int64_t ss, char* d, int64_t ds) {
  if (ss == 1 && ds == 1) {
    std::memcpy(d, s, size_t(n * esize));
    return;
  }
  visit_elem_size(esize, [&](auto tag) {
    using E = decltype(tag);
    copy_row_typed(n, reinterpret_cast<const E*>(s), ss, reinterpret_cast<E*>(d), ds);
  });
}

// Odometer over the leading `outer` dims of a plan, tracking source and destination offsets.
struct Cursor {
  SmallVector<int64_t, 8> idx;
  int64_t src = 0, dst = 0;
  Cursor(const CopyPlan& p, int outer, int64_t linear) : idx(size_t(outer), 0) {
    for (int i = outer - 1; i >= 0; --i) {
      idx[i] = linear % p.dims[i];
      linear /= p.dims[i];
      src += idx[i] * p.src[i];
      dst += idx[i] * p.dst[i];
    }
  }
  void next(const CopyPlan& p) {
    for (int i = static_cast<int>(idx.size()) - 1; i >= 0; --i) {
      src += p.src[i];
      dst += p.dst[i];
      if (++idx[i] < p.dims[i]) return;
      src -= p.src[i] * p.dims[i];
      dst -= p.dst[i] * p.dims[i];
      idx[i] = 0;
    }
  }
};

// Tiles over the last two dims when the source's unit stride is on the second-to-last dim and
// the destination's on the last, so both sides stay in cache within a tile. Small tiles measured
// best here (power-of-two strides make larger tiles thrash a cache set).
template <class E>
void copy_tiled(const CopyPlan& p, const char* src, char* dst) {
  constexpr int64_t T = sizeof(E) >= 16 ? 8 : 16;
  const int r = p.rank();
  const int64_t A = p.dims[r - 2], B = p.dims[r - 1];
  const int64_t sb = p.src[r - 1], da = p.dst[r - 2];  // p.src[r - 2] == 1 and p.dst[r - 1] == 1
  const int64_t outer = p.total / (A * B);
  const int64_t a_tiles = (A + T - 1) / T;
  const int64_t grain = std::max<int64_t>(1, kCopyGrainBytes / (T * B * int64_t(sizeof(E))));
  parallel_for(outer * a_tiles, grain, [&](int64_t tb, int64_t te) {
    Cursor c(p, r - 2, tb / a_tiles);
    int64_t cur_outer = tb / a_tiles;
    for (int64_t t = tb; t < te; ++t) {
      if (t / a_tiles != cur_outer) {
        c.next(p);
        cur_outer = t / a_tiles;
      }
      const int64_t a0 = (t % a_tiles) * T, a1 = std::min(A, a0 + T);
      const E* s = reinterpret_cast<const E*>(src) + c.src;
      E* d = reinterpret_cast<E*>(dst) + c.dst;
      for (int64_t b0 = 0; b0 < B; b0 += T) {
        const int64_t b1 = std::min(B, b0 + T);
        for (int64_t a = a0; a < a1; ++a)
          for (int64_t b = b0; b < b1; ++b) d[a * da + b] = s[a + b * sb];
      }
    }
  });
}

}  // namespace

void run_copy(const CopyPlan& p, int64_t esize, const char* src, char* dst) {
  if (p.total == 0) return;
  const int r = p.rank();
  if (r == 0) {
    std::memcpy(dst, src, size_t(esize));
    return;
  }
  if (r >= 2 && p.dst[r - 1] == 1 && p.src[r - 1] != 1 && p.src[r - 1] != 0) {
    // the source's unit-stride dim, if any: moved next to the last dim, it makes a tiled copy
    for (int k = r - 2; k >= 0; --k) {
      if (p.src[k] != 1) continue;
      CopyPlan t = p;
      for (int j = k; j < r - 2; ++j) {
        std::swap(t.dims[j], t.dims[j + 1]);
        std::swap(t.src[j], t.src[j + 1]);
        std::swap(t.dst[j], t.dst[j + 1]);
      }
      visit_elem_size(esize, [&](auto tag) { copy_tiled<decltype(tag)>(t, src, dst); });
      return;
    }
  }
  const int64_t n = p.dims[r - 1], ss = p.src[r - 1], ds = p.dst[r - 1];
  const int64_t rows = p.total / n;
  if (rows == 1) {
    parallel_for(n, std::max<int64_t>(1, kCopyGrainBytes / esize), [&](int64_t b, int64_t e) {
      copy_row(esize, e - b, src + b * ss * esize, ss, dst + b * ds * esize, ds);
    });
    return;
  }
  const int64_t grain = std::max<int64_t>(1, kCopyGrainBytes / (n * esize));
  parallel_for(rows, grain, [&](int64_t rb, int64_t re) {
    Cursor c(p, r - 1, rb);
    for (int64_t row = rb; row < re; ++row) {
      copy_row(esize, n, src + c.src * esize, ss, dst + c.dst * esize, ds);
      c.next(p);
    }
  });
}

void fill_elements(char* dst, int64_t n, int64_t esize, const void* value) {
  if (n <= 0) return;
  visit_elem_size(esize, [&](auto tag) {
    using E = decltype(tag);
    E v;
    std::memcpy(&v, value, sizeof(E));
    E* d = reinterpret_cast<E*>(dst);
    parallel_for(n, std::max<int64_t>(1, kCopyGrainBytes / esize),
                 [&](int64_t b, int64_t e) { std::fill(d + b, d + e, v); });
  });
}

namespace {
template <class T>
bool fits_integer(double v) {
  if (!std::isfinite(v) || v != std::trunc(v)) return false;
  // 2^63 and 2^64 are exact doubles; compare with < so the cast below is always defined
  constexpr double hi = std::is_same_v<T, bool> ? 1.0
                        : sizeof(T) == 8        ? (std::is_signed_v<T> ? 9223372036854775808.0 : 18446744073709551616.0)
                                                : static_cast<double>(std::numeric_limits<T>::max()) + 1.0;
  constexpr double lo = std::is_same_v<T, bool> ? 0.0 : static_cast<double>(std::numeric_limits<T>::min());
  return v >= lo && (std::is_same_v<T, bool> ? v <= hi : v < hi);
}
}  // namespace

void scalar_to_bytes(std::string_view op, std::string_view what, double v, DType dtype, unsigned char out[16]) {
  std::memset(out, 0, 16);
  visit_dtype(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    T t{};
    if constexpr (std::is_integral_v<T>) {
      if (!fits_integer<T>(v))
        fail<InvalidArgument>(op, what, " ", v, " is not exactly representable as ", dtype_name(dtype));
      if constexpr (std::is_same_v<T, bool>)
        t = v != 0;
      else
        t = static_cast<T>(v);
    } else if constexpr (is_complex_v<T>) {
      using R = typename T::value_type;
      if (std::isfinite(v) && std::isinf(static_cast<R>(v)))
        fail<InvalidArgument>(op, what, " ", v, " overflows ", dtype_name(dtype));
      t = T(static_cast<R>(v), R(0));
    } else {
      t = static_cast<T>(v);
      // float16, bfloat16 and float32 all widen to float exactly; float64 cannot overflow
      if constexpr (!std::is_same_v<T, double>)
        if (std::isfinite(v) && std::isinf(static_cast<float>(t)))
          fail<InvalidArgument>(op, what, " ", v, " overflows ", dtype_name(dtype));
    }
    std::memcpy(out, &t, sizeof(T));
  });
}

namespace {

// Row-major element strides of a shape with at least one element.
SmallVector<int64_t, 8> strides_of(const Shape& s) {
  SmallVector<int64_t, 8> st(size_t(s.rank()), 1);
  for (int64_t i = s.rank() - 2; i >= 0; --i) st[i] = st[i + 1] * s.dim(size_t(i + 1));
  return st;
}

const char* src_bytes(const Tensor& t) { return static_cast<const char*>(t.raw_data()); }
char* dst_bytes(Tensor& t) { return static_cast<char*>(t.mutable_raw_data()); }

// Copies `src` into a fresh output through `plan`, or makes the output a view when the plan is
// one contiguous run starting at `src_offset` elements. On either device: the kernels that
// only plan a copy (transpose, tile, broadcast_to, reverse) are their ops' GPU kernels too.
void copy_or_view(KernelContext& ctx, const Tensor& src, const CopyPlan& plan, int64_t src_offset) {
  const int64_t es = dtype_size(src.dtype());
  if (plan.contiguous()) {
    ctx.set_output(0, make_view(src, ctx.types[0].shape, size_t(src_offset * es)));
    return;
  }
  Tensor& out = ctx.output(0);
  if (src.device().type == DeviceType::GPU)
    cuda::copy_plan_on_device(ctx.def, out.device().index, plan, es,
                              static_cast<const char*>(src.device_data()) + src_offset * es,
                              const_cast<void*>(out.device_data()));
  else
    run_copy(plan, es, src_bytes(src) + src_offset * es, dst_bytes(out));
}

std::string list_string(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

void check_not_string(const OpDef& def, const Tensor& x) {
  if (x.dtype() == DType::String) fail<InvalidArgument>(def.name, "string tensors are not supported");
}

// ---------------------------------------------------------------------------------------------
// transpose

SmallVector<int64_t, 8> normalized_perm(const OpDef& def, const std::vector<int64_t>& perm, int64_t rank) {
  if (static_cast<int64_t>(perm.size()) != rank)
    fail<InvalidArgument>(def.name, "perm ", list_string(perm), " has ", perm.size(), " entries but x has rank ", rank);
  SmallVector<int64_t, 8> p(size_t(rank), 0);
  SmallVector<bool, 8> seen(size_t(rank), false);
  for (int64_t i = 0; i < rank; ++i) {
    int64_t a = perm[size_t(i)];
    if (a < -rank || a >= rank || seen[size_t(a < 0 ? a + rank : a)])
      fail<InvalidArgument>(def.name, "perm ", list_string(perm), " is not a permutation of the axes of a rank-", rank,
                            " tensor");
    a = a < 0 ? a + rank : a;
    seen[size_t(a)] = true;
    p[size_t(i)] = a;
  }
  return p;
}

TypeList infer_transpose(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Shape& s = in[0].shape();
  auto p = normalized_perm(def, attrs.get_ints("perm"), s.rank());
  Shape out;
  for (int64_t a : p) out.push_back(s.dim(size_t(a)));
  return {TensorType{in[0].dtype(), out}};
}

void kernel_transpose(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  if (x.num_elements() == 0) {
    ctx.output(0);
    return;
  }
  auto p = normalized_perm(ctx.def, ctx.attrs.get_ints("perm"), x.ndim());
  auto in_st = strides_of(x.shape());
  const Shape& os = ctx.types[0].shape;
  auto out_st = strides_of(os);
  SmallVector<int64_t, 8> src(size_t(x.ndim()));
  for (size_t i = 0; i < src.size(); ++i) src[i] = in_st[size_t(p[i])];
  copy_or_view(ctx, x, make_copy_plan(os.dims(), src, out_st), 0);
}

// ---------------------------------------------------------------------------------------------
// expand_dims, squeeze (views)

TypeList infer_expand_dims(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Shape& s = in[0].shape();
  int64_t axis = attrs.get_int("axis");
  if (axis < -s.rank() - 1 || axis > s.rank())
    fail<InvalidArgument>(def.name, "axis ", axis, " is out of range for a tensor of rank ", s.rank(), " (expected [",
                          -s.rank() - 1, ", ", s.rank(), "])");
  if (axis < 0) axis += s.rank() + 1;
  Shape out = s;
  out.insert(size_t(axis), 1);
  return {TensorType{in[0].dtype(), out}};
}

void kernel_view(KernelContext& ctx) { ctx.set_output(0, make_view(ctx.inputs[0], ctx.types[0].shape)); }

TypeList infer_squeeze(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Shape& s = in[0].shape();
  const auto& axes = attrs.get_ints("axes");
  SmallVector<bool, 8> drop(size_t(s.rank()), false);
  if (axes.empty()) {
    // unknown dims are kept: they are not known to be 1
    for (int64_t i = 0; i < s.rank(); ++i) drop[size_t(i)] = s.dim(size_t(i)) == 1;
  } else {
    for (int64_t a : axes) {
      int64_t ax = normalize_axis(def.name, a, s.rank());
      if (drop[size_t(ax)])
        fail<InvalidArgument>(def.name, "axis ", a, " is listed more than once in ", list_string(axes));
      int64_t d = s.dim(size_t(ax));
      if (d != 1 && d >= 0)  // unknown (or a trace's symbolic) dims are checked when known
        fail<InvalidArgument>(def.name, "cannot squeeze axis ", a, " of size ", d, " (shape ", s.to_string(),
                              "): only axes of size 1 can be squeezed");
      drop[size_t(ax)] = true;
    }
  }
  Shape out;
  for (int64_t i = 0; i < s.rank(); ++i)
    if (!drop[size_t(i)]) out.push_back(s.dim(size_t(i)));
  return {TensorType{in[0].dtype(), out}};
}

// ---------------------------------------------------------------------------------------------
// concat

TypeList infer_concat(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  if (in.empty()) fail<InvalidArgument>(def.name, "needs at least one input tensor");
  const Tensor& x0 = in[0];
  const int64_t r = x0.ndim();
  if (r == 0) fail<InvalidArgument>(def.name, "cannot concatenate scalars (rank-0 tensors); use stack");
  const int64_t axis = normalize_axis(def.name, attrs.get_int("axis"), r);
  Shape out = x0.shape();
  for (size_t k = 1; k < in.size(); ++k) {
    const Tensor& x = in[k];
    if (x.dtype() != x0.dtype())
      fail<InvalidArgument>(def.name, "input ", k, " has dtype ", dtype_name(x.dtype()), " but input 0 has dtype ",
                            dtype_name(x0.dtype()), "; all inputs must have the same dtype");
    if (x.ndim() != r)
      fail<InvalidArgument>(def.name, "input ", k, " has rank ", x.ndim(), " (shape ", x.shape().to_string(),
                            ") but input 0 has rank ", r, " (shape ", x0.shape().to_string(), ")");
    for (int64_t i = 0; i < r; ++i) {
      int64_t a = out.dim(size_t(i)), b = x.shape().dim(size_t(i));
      if (i == axis) {
        out.mut(size_t(i)) = (a < 0 || b < 0) ? kUnknownDim : checked_add(def.name, a, b);
      } else if (a != b) {
        if (a >= 0 && b >= 0)
          fail<InvalidArgument>(def.name, "input ", k, " has shape ", x.shape().to_string(), " but input 0 has shape ",
                                x0.shape().to_string(), "; dims must match except on axis ", axis);
        if (a < 0) out.mut(size_t(i)) = b;
      }
    }
  }
  if (out.is_fully_defined()) checked_nbytes(def.name, out, x0.dtype());
  return {TensorType{x0.dtype(), out}};
}

void kernel_concat(KernelContext& ctx) {
  const auto& in = ctx.inputs;
  const Shape& os = ctx.types[0].shape;
  if (in.size() == 1) {
    ctx.set_output(0, make_view(in[0], os));
    return;
  }
  Tensor& out = ctx.output(0);
  const int64_t total = out.num_elements();
  if (total == 0) return;
  const int64_t axis = normalize_axis(ctx.def.name, ctx.attrs.get_int("axis"), os.rank());
  const int64_t es = dtype_size(out.dtype());
  const int64_t outer = dims_product(os, 0, axis);
  const int64_t row = total / outer * es;  // output bytes per outer index
  SmallVector<int64_t, 8> chunk(in.size());
  SmallVector<const char*, 8> srcs(in.size());
  for (size_t k = 0; k < in.size(); ++k) {
    chunk[k] = in[k].num_elements() / outer * es;
    srcs[k] = chunk[k] ? src_bytes(in[k]) : nullptr;
  }
  char* dst = dst_bytes(out);
  if (outer == 1) {
    int64_t off = 0;
    for (size_t k = 0; k < in.size(); ++k) {
      parallel_memcpy(dst + off, srcs[k], chunk[k]);
      off += chunk[k];
    }
    return;
  }
  parallel_for(outer, std::max<int64_t>(1, kCopyGrainBytes / row), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      char* d = dst + o * row;
      for (size_t k = 0; k < in.size(); ++k) {
        if (chunk[k]) std::memcpy(d, srcs[k] + o * chunk[k], size_t(chunk[k]));
        d += chunk[k];
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// split

// The sizes of the parts along an axis of size `dim` (kUnknownDim when it cannot be known yet).
SmallVector<int64_t, 8> split_sizes(const OpDef& def, const Attrs& attrs, int64_t dim) {
  SmallVector<int64_t, 8> sizes;
  if (attrs.has("num")) {
    const int64_t num = attrs.get_int("num");
    if (num < 1) fail<InvalidArgument>(def.name, "num must be >= 1, got ", num);
    // each part is a tensor with its own output type: a bound keeps infer from allocating one
    // type per part for absurd counts (a hostile graph's split of a huge axis)
    constexpr int64_t kMaxParts = int64_t{1} << 16;
    if (num > kMaxParts)
      fail<InvalidArgument>(def.name, "num ", num, " is more parts than split makes (at most ", kMaxParts, ")");
    if (dim >= 0 && dim % num != 0)
      fail<InvalidArgument>(def.name, "cannot split an axis of size ", dim, " into ", num, " equal parts");
    return SmallVector<int64_t, 8>(size_t(num), dim < 0 ? kUnknownDim : dim / num);
  }
  const auto& req = attrs.get_ints("sizes");
  if (req.empty()) fail<InvalidArgument>(def.name, "sizes must not be empty");
  int64_t known = 0, inferred = -1;
  for (size_t i = 0; i < req.size(); ++i) {
    const int64_t s = req[i];
    if (s == -1) {
      if (inferred >= 0) fail<InvalidArgument>(def.name, "sizes ", list_string(req), " has more than one -1");
      inferred = int64_t(i);
    } else if (s < 0) {
      fail<InvalidArgument>(def.name, "sizes ", list_string(req), " has a negative size ", s);
    } else {
      known = checked_add(def.name, known, s);
    }
  }
  sizes = SmallVector<int64_t, 8>(req.begin(), req.end());
  if (dim < 0) return sizes;  // the -1 entry stays unknown
  if (inferred >= 0 ? known > dim : known != dim)
    fail<InvalidArgument>(def.name, "sizes ", list_string(req), " do not sum to the size ", dim, " of the axis");
  if (inferred >= 0) sizes[size_t(inferred)] = dim - known;
  return sizes;
}

TypeList infer_split(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor& x = in[0];
  if (x.ndim() == 0) fail<InvalidArgument>(def.name, "cannot split a scalar (rank-0 tensor)");
  const int64_t axis = normalize_axis(def.name, attrs.get_int("axis"), x.ndim());
  auto sizes = split_sizes(def, attrs, x.shape().dim(size_t(axis)));
  TypeList out;
  for (int64_t s : sizes) {
    Shape sh = x.shape();
    sh.mut(size_t(axis)) = s;
    out.push_back(TensorType{x.dtype(), sh});
  }
  return out;
}

void kernel_split(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  const int64_t axis = normalize_axis(ctx.def.name, ctx.attrs.get_int("axis"), x.ndim());
  const int64_t es = dtype_size(x.dtype());
  const size_t n = ctx.types.size();
  if (x.num_elements() == 0) {
    for (size_t k = 0; k < n; ++k) ctx.output(k);
    return;
  }
  const int64_t outer = dims_product(x.shape(), 0, axis);
  const int64_t row = x.num_elements() / outer * es;
  const char* src = src_bytes(x);
  int64_t off = 0;  // bytes into a row of x
  for (size_t k = 0; k < n; ++k) {
    const int64_t chunk = ctx.types[k].shape.num_elements() / outer * es;
    if (outer == 1) {
      // a contiguous piece of x: share its storage
      ctx.set_output(k, make_view(x, ctx.types[k].shape, size_t(off)));
    } else {
      char* dst = dst_bytes(ctx.output(k));
      if (chunk)
        parallel_for(outer, std::max<int64_t>(1, kCopyGrainBytes / chunk), [&](int64_t b, int64_t e) {
          for (int64_t o = b; o < e; ++o) std::memcpy(dst + o * chunk, src + o * row + off, size_t(chunk));
        });
    }
    off += chunk;
  }
}

// ---------------------------------------------------------------------------------------------
// tile

TypeList infer_tile(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor& x = in[0];
  const auto& m = attrs.get_ints("multiples");
  if (static_cast<int64_t>(m.size()) != x.ndim())
    fail<InvalidArgument>(def.name, "multiples ", list_string(m), " has ", m.size(), " entries but x has rank ",
                          x.ndim(), " (shape ", x.shape().to_string(), ")");
  Shape out;
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] < 0) fail<InvalidArgument>(def.name, "multiples ", list_string(m), " has a negative entry ", m[i]);
    const int64_t d = x.shape().dim(i);
    out.push_back(d < 0 ? kUnknownDim : checked_mul(def.name, d, m[i]));
  }
  if (out.is_fully_defined()) checked_nbytes(def.name, out, x.dtype());
  return {TensorType{x.dtype(), out}};
}

void kernel_tile(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  const Shape& os = ctx.types[0].shape;
  if (os.num_elements() == 0) {
    ctx.output(0);
    return;
  }
  // output index (i_k) = (m_k, d_k) pairs: a broadcast over a new outer dim per axis
  const auto& m = ctx.attrs.get_ints("multiples");
  auto xs = strides_of(x.shape());
  SmallVector<int64_t, 16> dims, src, dst;
  for (size_t i = 0; i < m.size(); ++i) {
    dims.push_back(m[i]);
    src.push_back(0);
    dims.push_back(x.shape().dim(i));
    src.push_back(xs[i]);
  }
  dst.resize(dims.size());
  int64_t acc = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    dst[i] = acc;
    acc *= dims[i];
  }
  copy_or_view(ctx, x, make_copy_plan(dims, src, dst), 0);
}

// ---------------------------------------------------------------------------------------------
// broadcast_to

TypeList infer_broadcast_to(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor& x = in[0];
  Shape target(attrs.get_ints("shape"));
  const Shape& s = x.shape();
  for (int64_t d : target)
    if (d < 0) fail<InvalidArgument>(def.name, "target shape ", target.to_list_string(), " has a negative dimension");
  const int64_t off = target.rank() - s.rank();
  bool ok = off >= 0;
  for (int64_t i = 0; ok && i < s.rank(); ++i) {
    const int64_t d = s.dim(size_t(i)), t = target.dim(size_t(i + off));
    ok = d == t || d == 1 || d < 0;  // unknown, or a symbolic dim of a trace
  }
  if (!ok)
    fail<InvalidArgument>(def.name, "cannot broadcast a tensor of shape ", s.to_list_string(), " to shape ",
                          target.to_list_string());
  checked_nbytes(def.name, target, x.dtype());
  return {TensorType{x.dtype(), target}};
}

void kernel_broadcast_to(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  const Shape& os = ctx.types[0].shape;
  if (os.num_elements() == 0) {
    ctx.output(0);
    return;
  }
  const int64_t off = os.rank() - x.ndim();
  auto xs = strides_of(x.shape());
  SmallVector<int64_t, 8> src(size_t(os.rank()), 0);
  for (int64_t i = 0; i < x.ndim(); ++i) src[size_t(i + off)] = x.shape().dim(size_t(i)) == 1 ? 0 : xs[size_t(i)];
  copy_or_view(ctx, x, make_copy_plan(os.dims(), src, strides_of(os)), 0);
}

// ---------------------------------------------------------------------------------------------
// pad

TypeList infer_pad(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor& x = in[0];
  check_not_string(def, x);
  const auto& p = attrs.get_ints("paddings");
  if (static_cast<int64_t>(p.size()) != 2 * x.ndim())
    fail<InvalidArgument>(def.name, "paddings has ", p.size() / 2, " (before, after) pairs but x has rank ", x.ndim(),
                          " (shape ", x.shape().to_string(), ")");
  unsigned char value[16];
  scalar_to_bytes(def.name, "constant_value", attrs.get_float("constant_value"), x.dtype(), value);
  Shape out;
  for (int64_t i = 0; i < x.ndim(); ++i) {
    const int64_t b = p[size_t(2 * i)], a = p[size_t(2 * i + 1)];
    if (b < 0 || a < 0)
      fail<InvalidArgument>(def.name, "paddings for axis ", i, " are (", b, ", ", a, "); they must be non-negative");
    const int64_t d = x.shape().dim(size_t(i));
    out.push_back(d < 0 ? kUnknownDim : checked_add(def.name, checked_add(def.name, d, b), a));
  }
  if (out.is_fully_defined()) checked_nbytes(def.name, out, x.dtype());
  return {TensorType{x.dtype(), out}};
}

void kernel_pad(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  const Shape& os = ctx.types[0].shape;
  const auto& p = ctx.attrs.get_ints("paddings");
  if (std::all_of(p.begin(), p.end(), [](int64_t v) { return v == 0; })) {
    ctx.set_output(0, make_view(x, os));
    return;
  }
  Tensor& out = ctx.output(0);
  if (out.num_elements() == 0) return;
  const int64_t es = dtype_size(x.dtype());
  unsigned char value[16];
  scalar_to_bytes(ctx.def.name, "constant_value", ctx.attrs.get_float("constant_value"), x.dtype(), value);
  char* dst = dst_bytes(out);
  fill_elements(dst, out.num_elements(), es, value);
  if (x.num_elements() == 0) return;
  auto ost = strides_of(os);
  int64_t base = 0;
  for (int64_t i = 0; i < x.ndim(); ++i) base += p[size_t(2 * i)] * ost[size_t(i)];
  run_copy(make_copy_plan(x.shape().dims(), strides_of(x.shape()), ost), es, src_bytes(x), dst + base * es);
}

// ---------------------------------------------------------------------------------------------
// reverse

SmallVector<bool, 8> reversed_axes(const OpDef& def, const std::vector<int64_t>& axes, int64_t rank) {
  SmallVector<bool, 8> rev(size_t(rank), false);
  for (int64_t a : axes) {
    int64_t ax = normalize_axis(def.name, a, rank);
    if (rev[size_t(ax)])
      fail<InvalidArgument>(def.name, "axis ", a, " is listed more than once in ", list_string(axes));
    rev[size_t(ax)] = true;
  }
  return rev;
}

TypeList infer_reverse(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  reversed_axes(def, attrs.get_ints("axes"), in[0].ndim());
  return {TensorType{in[0].dtype(), in[0].shape()}};
}

void kernel_reverse(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  if (x.num_elements() == 0) {
    ctx.output(0);
    return;
  }
  auto rev = reversed_axes(ctx.def, ctx.attrs.get_ints("axes"), x.ndim());
  auto st = strides_of(x.shape());
  SmallVector<int64_t, 8> src(st.begin(), st.end());
  int64_t base = 0;
  for (int64_t i = 0; i < x.ndim(); ++i)
    if (rev[size_t(i)]) {
      base += (x.shape().dim(size_t(i)) - 1) * st[size_t(i)];
      src[size_t(i)] = -st[size_t(i)];
    }
  copy_or_view(ctx, x, make_copy_plan(x.shape().dims(), src, st), base);
}

// ---------------------------------------------------------------------------------------------
// shape_of

TypeList infer_shape_of(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const DType t = attrs.get_type("out_type");
  if (t != DType::Int32 && t != DType::Int64)
    fail<InvalidArgument>(def.name, "out_type must be int32 or int64, got ", dtype_name(t));
  if (t == DType::Int32)
    for (int64_t d : in[0].shape())
      if (d > std::numeric_limits<int32_t>::max())
        fail<InvalidArgument>(def.name, "dimension ", d, " of shape ", in[0].shape().to_string(),
                              " does not fit in int32; use out_type int64");
  return {TensorType{t, Shape{in[0].ndim()}}};
}

void kernel_shape_of(KernelContext& ctx) {
  const Shape& s = ctx.inputs[0].shape();
  Tensor& out = ctx.output(0);
  if (out.dtype() == DType::Int32) {
    auto* p = static_cast<int32_t*>(out.mutable_raw_data());
    for (int64_t i = 0; i < s.rank(); ++i) p[i] = static_cast<int32_t>(s.dim(size_t(i)));
  } else {
    auto* p = static_cast<int64_t*>(out.mutable_raw_data());
    for (int64_t i = 0; i < s.rank(); ++i) p[i] = s.dim(size_t(i));
  }
}

constexpr uint32_t kMovement = kDifferentiable;

}  // namespace

OpDef define_Transpose() {
  OpDef d;
  d.traits = kMovement | kView | kStringsByIndex;
  d.attrs = {{"perm", AttrKind::Ints}};
  d.infer = infer_transpose;
  d.cpu_kernel = kernel_transpose;
  d.cuda_kernel = kernel_transpose;  // copy_or_view copies on either device
  return d;
}

OpDef define_ExpandDims() {
  OpDef d;
  d.traits = kMovement | kView | kStrings;  // a view: string storage does not depend on the shape
  d.attrs = {{"axis", AttrKind::Int}};
  d.infer = infer_expand_dims;
  d.cpu_kernel = kernel_view;
  return d;
}

OpDef define_Squeeze() {
  OpDef d;
  d.traits = kMovement | kView | kStrings;  // a view: string storage does not depend on the shape
  d.attrs = {{"axes", AttrKind::Ints}};
  d.infer = infer_squeeze;
  d.cpu_kernel = kernel_view;
  return d;
}

OpDef define_Concat() {
  OpDef d;
  d.traits = kMovement | kVariadic | kView | kStringsByIndex;
  d.num_inputs = -1;
  d.attrs = {{"axis", AttrKind::Int}};
  d.infer = infer_concat;
  d.cpu_kernel = kernel_concat;
  return d;
}

OpDef define_Split() {
  OpDef d;
  d.traits = kMovement | kView | kStringsByIndex;
  d.attrs = {{"axis", AttrKind::Int}, {"num", AttrKind::Int, false}, {"sizes", AttrKind::Ints, false}};
  d.infer = infer_split;
  d.cpu_kernel = kernel_split;
  return d;
}

OpDef define_Tile() {
  OpDef d;
  d.traits = kMovement | kView | kStringsByIndex;
  d.attrs = {{"multiples", AttrKind::Ints}};
  d.infer = infer_tile;
  d.cpu_kernel = kernel_tile;
  d.cuda_kernel = kernel_tile;  // copy_or_view copies on either device
  return d;
}

OpDef define_BroadcastTo() {
  OpDef d;
  d.traits = kMovement | kView | kStringsByIndex;
  d.attrs = {{"shape", AttrKind::Ints}};
  d.infer = infer_broadcast_to;
  d.cpu_kernel = kernel_broadcast_to;
  d.cuda_kernel = kernel_broadcast_to;  // copy_or_view copies on either device
  return d;
}

OpDef define_Pad() {
  OpDef d;
  d.traits = kMovement | kView;
  d.attrs = {{"paddings", AttrKind::Ints}, {"constant_value", AttrKind::Float}};
  d.infer = infer_pad;
  d.cpu_kernel = kernel_pad;
  return d;
}

OpDef define_Reverse() {
  OpDef d;
  d.traits = kMovement | kView | kStringsByIndex;
  d.attrs = {{"axes", AttrKind::Ints}};
  d.infer = infer_reverse;
  d.cpu_kernel = kernel_reverse;
  d.cuda_kernel = kernel_reverse;  // copy_or_view copies on either device
  return d;
}

OpDef define_ShapeOf() {
  OpDef d;
  d.traits = kStrings;  // reads only the shape
  d.attrs = {{"out_type", AttrKind::Type}};
  d.infer = infer_shape_of;
  d.cpu_kernel = kernel_shape_of;
  return d;
}

}  // namespace kiln::ops
