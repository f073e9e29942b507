// Reductions (reduce_sum, reduce_mean, reduce_max, reduce_min, reduce_prod, reduce_any,
// reduce_all) and argmax/argmin: attribute checks, inference and CPU kernels.
//
// Kernels view the input as (outer, reduced, inner): the reduced axes, after dropping size-1
// dims and merging neighbours, must form one block; otherwise the input is first copied with
// the reduced axes moved last. Rows (inner == 1) and columns (inner > 1) have their own loops.
// Floating sums and products are pairwise: float32 accumulates in float32 (in vector lanes,
// then a tree), float16/bfloat16 in float, so the rounding error grows with log(n), not n.
// Work is split into tasks whose boundaries depend only on the shape, so results do not depend
// on the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "ops/defs/elementwise_common.h"
#include "ops/defs/reduce.h"
#include "ops/kernels/cpu/loops.h"
#include "ops/kernels/cpu/scalar_fn.h"

// Packs of 32 or 64 bytes pass between functions here; every such function has internal
// linkage, so GCC's note that their ABI depends on AVX being enabled does not apply.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace kiln::ops {

namespace {

std::string list_string(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace

std::vector<int64_t> normalize_reduction_axes(std::string_view op, const std::vector<int64_t>& axes, int64_t rank) {
  std::vector<int64_t> out;
  out.reserve(axes.size());
  for (int64_t a : axes) {
    if (a < -rank || a >= rank)
      fail<InvalidArgument>(op, "axis ", a, " in axes ", list_string(axes), " is out of range for a tensor of rank ",
                            rank, " (expected [", -rank, ", ", rank, "))");
    out.push_back(a < 0 ? a + rank : a);
  }
  std::sort(out.begin(), out.end());
  auto dup = std::adjacent_find(out.begin(), out.end());
  if (dup != out.end()) fail<InvalidArgument>(op, "axes ", list_string(axes), " name axis ", *dup, " more than once");
  return out;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Inference

enum class EmptyAxis { Identity, Error };

template <unsigned Classes, bool ToBool, EmptyAxis Empty>
TypeList infer_reduce(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor& x = in[0];
  check_dtype_class(def.name, "x", x.dtype(), Classes);
  const Shape& s = x.shape();
  std::vector<int64_t> axes = normalize_reduction_axes(def.name, attrs.get_ints("axes"), s.rank());
  const bool keepdims = attrs.get_bool("keepdims");
  std::vector<bool> reduced(static_cast<size_t>(s.rank()), false);
  for (int64_t a : axes) {
    reduced[a] = true;
    // max and min have no identity, so an empty reduced axis has no answer
    if (Empty == EmptyAxis::Error && s.dim(a) == 0)
      fail<InvalidArgument>(def.name, "cannot reduce over axis ", a, " of size 0 (input shape ", s.to_list_string(),
                            "): ", def.name, " of an empty axis has no identity");
  }
  Shape out;
  for (int64_t i = 0; i < s.rank(); ++i) {
    if (!reduced[i])
      out.push_back(s.dim(i));
    else if (keepdims)
      out.push_back(1);
  }
  return {TensorType{ToBool ? DType::Bool : x.dtype(), out}};
}

TypeList infer_arg(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor& x = in[0];
  check_dtype_class(def.name, "x", x.dtype(), B | S | U | F);
  const DType ot = attrs.get_type("output_type");
  if (ot != DType::Int32 && ot != DType::Int64)
    fail<InvalidArgument>(def.name, "output_type must be int32 or int64, got ", dtype_name(ot));
  const Shape& s = x.shape();
  const int64_t axis = normalize_axis(def.name, attrs.get_int("axis"), s.rank());
  const int64_t n = s.dim(axis);
  if (n == 0)
    fail<InvalidArgument>(def.name, "cannot take ", def.name, " over axis ", axis, " of size 0 (input shape ",
                          s.to_list_string(), ")");
  if (ot == DType::Int32 && n > std::numeric_limits<int32_t>::max())
    fail<InvalidArgument>(def.name, "axis ", axis, " has ", n, " elements, too many for output_type int32");
  Shape out;
  for (int64_t i = 0; i < s.rank(); ++i)
    if (i != axis) out.push_back(s.dim(i));
  return {TensorType{ot, out}};
}

// ---------------------------------------------------------------------------------------------
// Reducers: load an element into the accumulator type A, merge two accumulators (an
// associative operation, written once for scalars and for GCC vector packs of A), and finalize
// the accumulator of `n` elements into the output.

__extension__ using Int128 = __int128;
__extension__ using UInt128 = unsigned __int128;

template <class T>
using float_acc_t = cpu::compute_t<T>;  // float for float16/bfloat16, T otherwise

template <class T>
struct SumR {
  using A = cpu::acc_t<T>;  // wraps for integers, float for 16-bit floats
  using Out = T;
  static A init() { return A(0); }
  static A load(T v) { return static_cast<A>(v); }
  template <class V>
  static V merge(V a, V b) {
    return a + b;
  }
  static T finalize(A a, int64_t) { return static_cast<T>(a); }
};

template <class T>
struct ProdR {
  using A = cpu::acc_t<T>;  // wraps for integers, float for 16-bit floats
  using Out = T;
  static A init() { return A(1); }
  static A load(T v) { return static_cast<A>(v); }
  template <class V>
  static V merge(V a, V b) {
    return a * b;
  }
  static T finalize(A a, int64_t) { return static_cast<T>(a); }
};

// Integer means accumulate in a wider type so the sum does not wrap before the division
// (uint64 for narrower types, holding the two's complement sum; 128 bits for 64-bit types). The
// mean of an empty axis is NaN for inexact types and 0 for integers (as TensorFlow).
template <class T>
struct MeanAccType {
  using type = float_acc_t<T>;
};
template <class T>
requires cpu::is_int_v<T>
struct MeanAccType<T> {
  using type =
      std::conditional_t<sizeof(T) == 8, std::conditional_t<cpu::is_signed_int_v<T>, Int128, UInt128>, uint64_t>;
};

template <class T>
struct MeanR {
  using A = typename MeanAccType<T>::type;
  using Out = T;
  static A init() { return A(0); }
  static A load(T v) { return static_cast<A>(v); }
  template <class V>
  static V merge(V a, V b) {
    return a + b;
  }
  static T finalize(A a, int64_t n) {
    if constexpr (cpu::is_int_v<T>) {
      if (n == 0) return T(0);
      // division truncates toward zero; the quotient lies in T's range
      if constexpr (cpu::is_signed_int_v<T> && sizeof(T) < 8)
        return static_cast<T>(static_cast<int64_t>(a) / n);
      else
        return static_cast<T>(a / static_cast<A>(n));
    } else if constexpr (is_complex_v<A>) {
      using V = typename A::value_type;
      if (n == 0) return T(std::numeric_limits<V>::quiet_NaN(), std::numeric_limits<V>::quiet_NaN());
      return static_cast<T>(a / static_cast<V>(n));
    } else {
      if (n == 0) return static_cast<T>(std::numeric_limits<A>::quiet_NaN());
      return static_cast<T>(a / static_cast<A>(n));
    }
  }
};

// NaN propagates: once the accumulator is NaN it stays NaN, and a NaN element replaces it.
// (For packs, comparisons give lane masks and `?:` selects per lane.)
template <class T, bool IsMax>
struct ExtremeR {
  using A = float_acc_t<T>;
  using Out = T;
  static A init() {
    if constexpr (std::is_floating_point_v<A>)
      return IsMax ? -std::numeric_limits<A>::infinity() : std::numeric_limits<A>::infinity();
    else
      return IsMax ? std::numeric_limits<A>::lowest() : std::numeric_limits<A>::max();
  }
  static A load(T v) { return static_cast<A>(v); }
  template <class V>
  static V merge(V a, V b) {
    if constexpr (std::is_floating_point_v<A>) {
      if constexpr (IsMax)
        return ((b > a) | (b != b)) ? b : a;
      else
        return ((b < a) | (b != b)) ? b : a;
    } else {
      if constexpr (IsMax)
        return (b > a) ? b : a;
      else
        return (b < a) ? b : a;
    }
  }
  static T finalize(A a, int64_t) { return static_cast<T>(a); }
};
template <class T>
using MaxR = ExtremeR<T, true>;
template <class T>
using MinR = ExtremeR<T, false>;

// any/all accumulate 0/1 bytes so that they pack like numbers.
template <class T>
struct AnyR {
  using A = uint8_t;
  using Out = bool;
  static A init() { return 0; }
  static A load(T v) { return v ? 1 : 0; }
  template <class V>
  static V merge(V a, V b) {
    return a | b;
  }
  static bool finalize(A a, int64_t) { return a != 0; }
};

template <class T>
struct AllR {
  using A = uint8_t;
  using Out = bool;
  static A init() { return 1; }
  static A load(T v) { return v ? 1 : 0; }
  template <class V>
  static V merge(V a, V b) {
    return a & b;
  }
  static bool finalize(A a, int64_t) { return a != 0; }
};

// ---------------------------------------------------------------------------------------------
// The (outer, reduced, inner) view and its split into tasks.

struct View {
  int64_t outer = 1, red = 1, inner = 1;
};

// Tasks cover (outer row, inner tile, block of the reduced dim). The reduced dim is split into
// blocks only when there are few outputs, so that a full reduction still uses every thread;
// the partial results of the blocks are then merged in order.
struct Split {
  int64_t nblk = 1, rb = 0;      // blocks of the reduced dim and their length
  int64_t ntiles = 1, tile = 1;  // tiles of the inner dim and their width
  int64_t tasks(const View& v) const { return v.outer * ntiles * nblk; }
};

// Inner elements per column task: 2 KiB of accumulators (a buffer per pairwise level lives on
// the stack), and at least 64.
template <class A>
inline constexpr int64_t kTile = std::max<int64_t>(64, 2048 / static_cast<int64_t>(sizeof(A)));
constexpr int64_t kArgTile = 512;
constexpr int64_t kBlockElems = 1 << 16;  // minimum elements per reduced-dim block
constexpr int64_t kMaxBlocks = 64;
constexpr int64_t kFewOutputs = 4096;

Split make_split(const View& v, int64_t max_tile) {
  Split s;
  s.tile = v.inner == 1 ? 1 : std::min(max_tile, v.inner);
  s.ntiles = (v.inner + s.tile - 1) / s.tile;
  s.rb = v.red;
  const int64_t outputs = v.outer * v.inner;
  if (outputs <= kFewOutputs && v.red > 1) {
    const int64_t want = std::min<int64_t>(kMaxBlocks, v.red * s.tile / kBlockElems);
    if (want > 1) {
      s.rb = (v.red + want - 1) / want;
      s.nblk = (v.red + s.rb - 1) / s.rb;
    }
  }
  return s;
}

// Runs body(outer, tile, block) over all tasks, spread over threads.
template <class Body>
void for_each_task(const View& v, const Split& s, Body&& body) {
  const int64_t work = std::max<int64_t>(1, s.rb * s.tile);
  const int64_t grain = std::max<int64_t>(1, cpu::kParallelGrain / work);
  parallel_for(s.tasks(v), grain, [&](int64_t b, int64_t e) {
    if (s.nblk == 1 && s.ntiles == 1) {  // one task per outer row: no index arithmetic
      for (int64_t o = b; o < e; ++o) body(o, int64_t{0}, int64_t{0});
      return;
    }
    for (int64_t t = b; t < e; ++t) {
      const int64_t blk = t % s.nblk;
      const int64_t rest = t / s.nblk;
      body(rest / s.ntiles, rest % s.ntiles, blk);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Pairwise loops

// A GCC vector of kLanes accumulators. Written out explicitly because GCC 12 neither
// vectorizes interleaved float accumulators by itself nor, at -O3 with 512-bit vectors,
// compiles the int32 version correctly (it miscombines the lanes of its own reduction).
constexpr int kLanes = 8;
template <class A>
struct PackOf {
  typedef A type __attribute__((vector_size(kLanes * sizeof(A))));
};
template <class A>
using Pack = typename PackOf<A>::type;
template <class A>
inline constexpr bool kPackable = (std::is_integral_v<A> || std::is_floating_point_v<A>)&&!std::is_same_v<A, bool> &&
                                  !std::is_same_v<A, Int128> && !std::is_same_v<A, UInt128>;

constexpr int kPacks = 4;          // independent packs, to hide the latency of each merge
constexpr int64_t kRowBase = 512;  // elements reduced directly (16 per lane)
constexpr int64_t kColBase = 32;   // rows reduced directly in a column tile

template <class R, class T>
Pack<typename R::A> load_pack(const T* p) {
  using A = typename R::A;
  Pack<A> x;
  if constexpr (std::is_same_v<A, T> || (std::is_integral_v<A> && std::is_integral_v<T> && sizeof(A) == sizeof(T))) {
    std::memcpy(&x, p, sizeof(x));  // same bits (int32 -> uint32 is modular; bools are 0/1 bytes)
  } else if constexpr (std::is_arithmetic_v<T>) {
    Pack<T> t;
    std::memcpy(&t, p, sizeof(t));
    x = __builtin_convertvector(t, Pack<A>);
  } else {
    for (int k = 0; k < kLanes; ++k) x[k] = R::load(p[k]);
  }
  return x;
}

template <class R, class A>
A merge_lanes(const A* l) {
  return R::merge(R::merge(R::merge(l[0], l[1]), R::merge(l[2], l[3])),
                  R::merge(R::merge(l[4], l[5]), R::merge(l[6], l[7])));
}

// The reduction of p[0, n), pairwise above kRowBase elements.
template <class R, class T>
typename R::A reduce_row(const T* p, int64_t n) {
  using A = typename R::A;
  if (n > kRowBase) {
    const int64_t half = (n / 2) & ~int64_t{kLanes * kPacks - 1};
    return R::merge(reduce_row<R>(p, half), reduce_row<R>(p + half, n - half));
  }
  int64_t i = 0;
  A r;
  if constexpr (kPackable<A>) {
    using V = Pack<A>;
    V acc[kPacks];
    for (V& a : acc) a = V{} + R::init();
    for (; i + kLanes * kPacks <= n; i += kLanes * kPacks)
      for (int k = 0; k < kPacks; ++k) acc[k] = R::merge(acc[k], load_pack<R>(p + i + k * kLanes));
    V v = R::merge(R::merge(acc[0], acc[1]), R::merge(acc[2], acc[3]));
    for (; i + kLanes <= n; i += kLanes) v = R::merge(v, load_pack<R>(p + i));
    A lanes[kLanes];
    std::memcpy(lanes, &v, sizeof(v));
    r = merge_lanes<R>(lanes);
  } else {
    A acc[kLanes];
    for (A& a : acc) a = R::init();
    for (; i + kLanes <= n; i += kLanes)
      for (int k = 0; k < kLanes; ++k) acc[k] = R::merge(acc[k], R::load(p[i + k]));
    r = merge_lanes<R>(acc);
  }
  for (; i < n; ++i) r = R::merge(r, R::load(p[i]));
  return r;
}

// acc[j] = reduction of p[r * stride + j] over r in [0, rows), for j < w (w <= kTile<A>).
template <class R, class T>
void reduce_cols(const T* p, int64_t rows, int64_t stride, int64_t w, typename R::A* acc) {
  using A = typename R::A;
  if (rows <= kColBase) {
    for (int64_t j = 0; j < w; ++j) acc[j] = R::init();
    for (int64_t r = 0; r < rows; ++r) {
      const T* q = p + r * stride;
      for (int64_t j = 0; j < w; ++j) acc[j] = R::merge(acc[j], R::load(q[j]));
    }
    return;
  }
  const int64_t half = rows / 2;
  reduce_cols<R>(p, half, stride, w, acc);
  A tmp[kTile<A>];
  reduce_cols<R>(p + half * stride, rows - half, stride, w, tmp);
  for (int64_t j = 0; j < w; ++j) acc[j] = R::merge(acc[j], tmp[j]);
}

// Reduces a non-empty input (red >= 1).
template <class R, class T>
void run_reduce(const View& v, const T* x, typename R::Out* out) {
  using A = typename R::A;
  const Split s = make_split(v, kTile<A>);
  const int64_t no = v.outer * v.inner;
  if (s.nblk == 1) {
    for_each_task(v, s, [&](int64_t o, int64_t t, int64_t) {
      if (v.inner == 1) {
        out[o] = R::finalize(reduce_row<R>(x + o * v.red, v.red), v.red);
        return;
      }
      const int64_t j0 = t * s.tile, w = std::min(s.tile, v.inner - j0);
      A acc[kTile<A>];
      reduce_cols<R>(x + o * v.red * v.inner + j0, v.red, v.inner, w, acc);
      for (int64_t j = 0; j < w; ++j) out[o * v.inner + j0 + j] = R::finalize(acc[j], v.red);
    });
    return;
  }
  // partial[(o * nblk + b) * inner + j]: the result of block b
  std::unique_ptr<A[]> partial(new A[static_cast<size_t>(no * s.nblk)]);
  for_each_task(v, s, [&](int64_t o, int64_t t, int64_t b) {
    const int64_t r0 = b * s.rb, rows = std::min(s.rb, v.red - r0);
    A* dst = partial.get() + (o * s.nblk + b) * v.inner;
    if (v.inner == 1) {
      dst[0] = reduce_row<R>(x + o * v.red + r0, rows);
      return;
    }
    const int64_t j0 = t * s.tile, w = std::min(s.tile, v.inner - j0);
    reduce_cols<R>(x + (o * v.red + r0) * v.inner + j0, rows, v.inner, w, dst + j0);
  });
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t j = 0; j < v.inner; ++j) {
      A a = partial[static_cast<size_t>(o * s.nblk * v.inner + j)];
      for (int64_t b = 1; b < s.nblk; ++b)
        a = R::merge(a, partial[static_cast<size_t>((o * s.nblk + b) * v.inner + j)]);
      out[o * v.inner + j] = R::finalize(a, v.red);
    }
}

// ---------------------------------------------------------------------------------------------
// Bringing the reduced axes together

// Copies `src` (dims `dims`, row-major) into `dst` with its axes in the order `perm`.
template <class T>
void permute_copy(const T* src, T* dst, const std::vector<int64_t>& dims, const std::vector<int64_t>& perm) {
  const size_t m = dims.size();
  std::vector<int64_t> src_stride(m), d(m), st(m);
  int64_t acc = 1;
  for (size_t i = m; i-- > 0;) {
    src_stride[i] = acc;
    acc *= dims[i];
  }
  for (size_t k = 0; k < m; ++k) {
    d[k] = dims[perm[k]];
    st[k] = src_stride[perm[k]];
  }
  const int64_t n = d[m - 1], sl = st[m - 1], rows = acc / n;
  parallel_for(rows, std::max<int64_t>(1, cpu::kParallelGrain / n), [&](int64_t rb, int64_t re) {
    std::vector<int64_t> idx(m, 0);
    int64_t rem = rb, off = 0;
    for (size_t i = m - 1; i-- > 0;) {
      idx[i] = rem % d[i];
      rem /= d[i];
      off += idx[i] * st[i];
    }
    for (int64_t row = rb; row < re; ++row) {
      T* out = dst + row * n;
      for (int64_t j = 0; j < n; ++j) out[j] = src[off + j * sl];
      for (size_t i = m - 1; i-- > 0;) {
        off += st[i];
        if (++idx[i] < d[i]) break;
        off -= idx[i] * st[i];
        idx[i] = 0;
      }
    }
  });
}

// Groups of neighbouring dims of one kind (reduced or kept), size-1 dims dropped. The input
// must be non-empty.
struct Groups {
  std::vector<int64_t> dims;
  std::vector<bool> reduced;
};

Groups group_dims(const Shape& s, const std::vector<int64_t>& axes) {
  Groups g;
  std::vector<bool> is_red(static_cast<size_t>(s.rank()), false);
  for (int64_t a : axes) is_red[a] = true;
  for (int64_t i = 0; i < s.rank(); ++i) {
    if (s.dim(i) == 1) continue;
    if (!g.dims.empty() && g.reduced.back() == is_red[i]) {
      g.dims.back() *= s.dim(i);
    } else {
      g.dims.push_back(s.dim(i));
      g.reduced.push_back(is_red[i]);
    }
  }
  return g;
}

// Returns the view of `x` reduced over `axes`; `data` points at x's elements, or at a permuted
// copy held in `scratch` when the reduced axes are not one block.
template <class T>
View make_view(const Tensor& x, const std::vector<int64_t>& axes, const T*& data, Tensor& scratch) {
  data = static_cast<const T*>(x.raw_data());
  const Groups g = group_dims(x.shape(), axes);
  const int64_t nred = std::count(g.reduced.begin(), g.reduced.end(), true);
  View v;
  if (nred <= 1) {
    bool seen = false;
    for (size_t i = 0; i < g.dims.size(); ++i) {
      if (g.reduced[i]) {
        v.red = g.dims[i];
        seen = true;
      } else {
        (seen ? v.inner : v.outer) *= g.dims[i];
      }
    }
    return v;
  }
  std::vector<int64_t> perm;
  for (size_t i = 0; i < g.dims.size(); ++i)
    if (!g.reduced[i]) {
      perm.push_back(static_cast<int64_t>(i));
      v.outer *= g.dims[i];
    }
  for (size_t i = 0; i < g.dims.size(); ++i)
    if (g.reduced[i]) {
      perm.push_back(static_cast<int64_t>(i));
      v.red *= g.dims[i];
    }
  scratch = Tensor::empty(Shape{x.num_elements()}, x.dtype());
  T* dst = static_cast<T*>(scratch.mutable_raw_data());
  permute_copy(data, dst, g.dims, perm);
  data = dst;
  return v;
}

// ---------------------------------------------------------------------------------------------
// Reduction kernels

template <template <class> class R, unsigned Classes>
void kernel_reduce(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  const std::vector<int64_t> axes = normalize_reduction_axes(ctx.def.name, ctx.attrs.get_ints("axes"), x.ndim());
  Tensor& out = ctx.output(0);
  visit_dtype(x.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr ((dtype_class_of<T>() & Classes) != 0) {
      using Red = R<T>;
      using Out = typename Red::Out;
      Out* o = static_cast<Out*>(out.mutable_raw_data());
      if (out.num_elements() == 0) return;
      if (x.num_elements() == 0) {  // every output reduces an empty set
        int64_t n = 1;
        for (int64_t a : axes) n *= x.shape().dim(a);
        std::fill(o, o + out.num_elements(), Red::finalize(Red::init(), n));
        return;
      }
      const T* data = nullptr;
      Tensor scratch;
      const View v = make_view<T>(x, axes, data, scratch);
      run_reduce<Red>(v, data, o);
    }
  });
}

constexpr unsigned kNumeric = S | U | F | C;
constexpr unsigned kReal = S | U | F;

template <template <class> class R, unsigned Classes, bool ToBool, EmptyAxis Empty>
OpDef define_reduce() {
  OpDef d;
  d.traits = ToBool ? 0u : kDifferentiable;  // any/all have no gradient
  d.num_inputs = 1;
  d.attrs = {{"axes", AttrKind::Ints}, {"keepdims", AttrKind::Bool}};
  d.infer = infer_reduce<Classes, ToBool, Empty>;
  d.cpu_kernel = kernel_reduce<R, Classes>;
  return d;
}

// ---------------------------------------------------------------------------------------------
// argmax / argmin: the first index of the extreme value; a NaN counts as the extreme (the first
// NaN wins), as NumPy does.

template <class C, bool IsMax>
inline bool replaces(C v, C best) {
  if constexpr (std::is_floating_point_v<C>) {
    if (best != best) return false;
    if (v != v) return true;
  }
  return IsMax ? v > best : v < best;
}

// Columns (inner > 1): one pass keeping the best value and index of each column.
template <class T, class I, bool IsMax>
void run_arg(const View& v, const T* x, I* out) {
  using C = cpu::compute_t<T>;
  const Split s = make_split(v, kArgTile);
  const int64_t no = v.outer * v.inner;
  // Per (output, block): the best value and its index; blocks are merged in order, so an
  // earlier index wins ties.
  const size_t npart = static_cast<size_t>(s.nblk == 1 ? 0 : no * s.nblk);
  std::unique_ptr<C[]> best_v(new C[npart]);
  std::unique_ptr<int64_t[]> best_i(new int64_t[npart]);
  for_each_task(v, s, [&](int64_t o, int64_t t, int64_t b) {
    const int64_t r0 = b * s.rb, rows = std::min(s.rb, v.red - r0);
    const int64_t j0 = t * s.tile, w = std::min(s.tile, v.inner - j0);
    const T* p = x + (o * v.red + r0) * v.inner + j0;
    C bv[kArgTile];
    int64_t bi[kArgTile];
    for (int64_t j = 0; j < w; ++j) {
      bv[j] = static_cast<C>(p[j]);
      bi[j] = r0;
    }
    for (int64_t r = 1; r < rows; ++r) {
      const T* q = p + r * v.inner;
      for (int64_t j = 0; j < w; ++j) {
        const C c = static_cast<C>(q[j]);
        if (replaces<C, IsMax>(c, bv[j])) {
          bv[j] = c;
          bi[j] = r0 + r;
        }
      }
    }
    if (s.nblk == 1) {
      for (int64_t j = 0; j < w; ++j) out[o * v.inner + j0 + j] = static_cast<I>(bi[j]);
      return;
    }
    for (int64_t j = 0; j < w; ++j) {
      const size_t k = static_cast<size_t>((o * s.nblk + b) * v.inner + j0 + j);
      best_v[k] = bv[j];
      best_i[k] = bi[j];
    }
  });
  if (s.nblk == 1) return;
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t j = 0; j < v.inner; ++j) {
      size_t k = static_cast<size_t>(o * s.nblk * v.inner + j);
      C bv = best_v[k];
      int64_t bi = best_i[k];
      for (int64_t b = 1; b < s.nblk; ++b) {
        k = static_cast<size_t>((o * s.nblk + b) * v.inner + j);
        if (replaces<C, IsMax>(best_v[k], bv)) {
          bv = best_v[k];
          bi = best_i[k];
        }
      }
      out[o * v.inner + j] = static_cast<I>(bi);
    }
}

// Rows (inner == 1): find each row's extreme with the vectorized reduction, then the first
// position that holds it (the first NaN when the extreme is NaN).
template <class T, class I, bool IsMax>
void run_arg_rows(const View& v, const T* x, I* out) {
  using R = ExtremeR<T, IsMax>;
  using C = typename R::A;
  std::unique_ptr<T[]> ext(new T[static_cast<size_t>(v.outer)]);
  run_reduce<R>(v, x, ext.get());
  const Split s = make_split(v, 1);
  std::unique_ptr<int64_t[]> first(new int64_t[static_cast<size_t>(v.outer * s.nblk)]);
  for_each_task(v, s, [&](int64_t o, int64_t, int64_t b) {
    const int64_t r0 = b * s.rb, rows = std::min(s.rb, v.red - r0);
    const T* p = x + o * v.red + r0;
    const C m = static_cast<C>(ext[o]);
    int64_t found = -1;
    if constexpr (std::is_floating_point_v<C>) {
      if (m != m) {
        for (int64_t i = 0; i < rows && found < 0; ++i)
          if (static_cast<C>(p[i]) != static_cast<C>(p[i])) found = r0 + i;
        first[o * s.nblk + b] = found;
        return;
      }
    }
    for (int64_t i = 0; i < rows && found < 0; ++i)
      if (static_cast<C>(p[i]) == m) found = r0 + i;
    first[o * s.nblk + b] = found;
  });
  for (int64_t o = 0; o < v.outer; ++o) {
    int64_t idx = 0;
    for (int64_t b = 0; b < s.nblk; ++b)
      if (first[o * s.nblk + b] >= 0) {
        idx = first[o * s.nblk + b];
        break;
      }
    out[o] = static_cast<I>(idx);
  }
}

template <bool IsMax>
void kernel_arg(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  const Shape& s = x.shape();
  const int64_t axis = normalize_axis(ctx.def.name, ctx.attrs.get_int("axis"), s.rank());
  Tensor& out = ctx.output(0);
  if (out.num_elements() == 0) return;
  View v;
  for (int64_t i = 0; i < s.rank(); ++i) (i < axis ? v.outer : i > axis ? v.inner : v.red) *= s.dim(i);
  visit_dtype(x.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr ((dtype_class_of<T>() & (B | S | U | F)) != 0) {
      const T* data = static_cast<const T*>(x.raw_data());
      auto run = [&](auto* o) {
        using I = std::remove_pointer_t<decltype(o)>;
        if (v.inner == 1)
          run_arg_rows<T, I, IsMax>(v, data, o);
        else
          run_arg<T, I, IsMax>(v, data, o);
      };
      if (out.dtype() == DType::Int32)
        run(static_cast<int32_t*>(out.mutable_raw_data()));
      else
        run(static_cast<int64_t*>(out.mutable_raw_data()));
    }
  });
}

template <bool IsMax>
OpDef define_arg() {
  OpDef d;
  d.num_inputs = 1;
  d.attrs = {{"axis", AttrKind::Int}, {"output_type", AttrKind::Type}};
  d.infer = infer_arg;
  d.cpu_kernel = kernel_arg<IsMax>;
  return d;
}

}  // namespace

OpDef define_ReduceSum() { return define_reduce<SumR, kNumeric, false, EmptyAxis::Identity>(); }
OpDef define_ReduceMean() { return define_reduce<MeanR, kNumeric, false, EmptyAxis::Identity>(); }
OpDef define_ReduceMax() { return define_reduce<MaxR, kReal, false, EmptyAxis::Error>(); }
OpDef define_ReduceMin() { return define_reduce<MinR, kReal, false, EmptyAxis::Error>(); }
OpDef define_ReduceProd() { return define_reduce<ProdR, kNumeric, false, EmptyAxis::Identity>(); }
OpDef define_ReduceAny() {
  OpDef d = define_reduce<AnyR, B, true, EmptyAxis::Identity>();
  d.traits = 0;
  return d;
}
OpDef define_ReduceAll() {
  OpDef d = define_reduce<AllR, B, true, EmptyAxis::Identity>();
  d.traits = 0;
  return d;
}
OpDef define_ArgMax() { return define_arg<true>(); }
OpDef define_ArgMin() { return define_arg<false>(); }

}  // namespace kiln::ops
