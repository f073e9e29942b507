// Convolution and pooling over NHWC images, as TensorFlow defines them: conv2d (HWIO filters,
// strides, SAME/VALID padding, dilations) with its two backprops, max and average pooling with
// their gradients. float32 convolutions run on oneDNN when Kiln is built with it; every other
// float type, and builds without oneDNN, use the reference loops here.
#include <algorithm>
#include <array>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "ops/defs/elementwise_common.h"
#include "ops/kernels/cpu/loops.h"
#include "ops/kernels/cpu/scalar_fn.h"

#ifdef KILN_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace kiln::ops {
namespace {

using cpu::acc_t;
using cpu::compute_t;

// ---------------------------------------------------------------------------------------------
// Geometry

// One spatial axis of a window op. `window` is the dilated window, (taps - 1) * dilation + 1;
// `pad` is the padding before the first window, `pad_after` the padding after the last.
// Sizes that follow from an unknown one (-1, or a trace's symbol) are -1.
struct Axis {
  int64_t in = -1, taps = -1, window = -1, stride = 1, dilation = 1, out = -1, pad = 0, pad_after = 0;
};

// Batch, channels, output channels (pooling: out_channels == channels) and the two spatial axes.
struct Geometry {
  int64_t n = -1, c = -1, o = -1;
  Axis h, w;
};

// The attributes every window op shares.
struct WindowAttrs {
  std::array<int64_t, 2> strides{1, 1}, dilations{1, 1};
  bool same = false;
};

std::string list_string(const std::vector<int64_t>& v) { return Shape(v).to_list_string(); }

std::array<int64_t, 2> pair_attr(const OpDef& def, const Attrs& attrs, std::string_view name) {
  const std::vector<int64_t>& v = attrs.get_ints(name);
  if (v.size() != 2) fail<InvalidArgument>(def.name, name, " must have 2 values (height, width), got ", list_string(v));
  if (v[0] < 1 || v[1] < 1) fail<InvalidArgument>(def.name, name, " must be positive, got ", list_string(v));
  return {v[0], v[1]};
}

bool padding_attr(const OpDef& def, const Attrs& attrs) {
  const std::string& p = attrs.get_string("padding");
  if (p == "SAME") return true;
  if (p == "VALID") return false;
  fail<InvalidArgument>(def.name, "padding must be \"SAME\" or \"VALID\", got \"", p, "\"");
}

// Convolutions have strides and dilations; pooling has strides and a window (`ksize`).
WindowAttrs window_attrs(const OpDef& def, const Attrs& attrs, bool dilated) {
  WindowAttrs a;
  a.strides = pair_attr(def, attrs, "strides");
  if (dilated) a.dilations = pair_attr(def, attrs, "dilations");
  a.same = padding_attr(def, attrs);
  return a;
}

// The output size and padding of one axis, as TensorFlow computes them: SAME gives
// ceil(in / stride) outputs and pads the difference (the extra element after), VALID gives
// windows that lie inside the input and needs the window to fit.
Axis make_axis(std::string_view op, const char* what, int64_t in, int64_t taps, int64_t stride, int64_t dilation,
               bool same) {
  Axis a;
  a.in = in, a.taps = taps, a.stride = stride, a.dilation = dilation;
  if (taps >= 1) {
    int64_t span = 0;
    if (__builtin_mul_overflow(taps - 1, dilation, &span) || span == INT64_MAX)
      fail<InvalidArgument>(op, "the dilated window ", what, " (", taps, " - 1) * ", dilation, " + 1 overflows int64");
    a.window = span + 1;
  }
  if (in < 0 || a.window < 0) return a;
  if (same) {
    a.out = in / stride + (in % stride != 0 ? 1 : 0);
    // the last window starts at (out - 1) * stride <= in - 1, so in - start is in [1, stride]
    const int64_t total = a.out == 0 ? 0 : std::max<int64_t>(a.window - (in - (a.out - 1) * stride), 0);
    a.pad = total / 2;
    a.pad_after = total - a.pad;
  } else {
    if (in < a.window)
      fail<InvalidArgument>(op, "padding VALID needs the input ", what, " (", in, ") to be at least the window ", what,
                            " (", a.window, taps != a.window ? ", dilated" : "",
                            "); use padding SAME or a smaller window");
    a.out = (in - a.window) / stride + 1;
  }
  return a;
}

void check_rank4(const OpDef& def, const char* what, const Tensor& t, const char* layout) {
  if (t.ndim() != 4)
    fail<InvalidArgument>(def.name, what, " must have rank 4 ", layout, ", got shape ", t.shape().to_list_string());
}

void check_same_dtypes(const OpDef& def, const char* a, const Tensor& x, const char* b, const Tensor& y) {
  if (x.dtype() != y.dtype())
    fail<InvalidArgument>(def.name, a, " has dtype ", dtype_name(x.dtype()), " but ", b, " has dtype ",
                          dtype_name(y.dtype()), "; both must have the same dtype (use kiln::cast)");
}

bool known(int64_t d) { return d >= 0; }

// Two sizes that must agree when both are known. The message (`what()`) is built only on
// failure: infer runs on every call.
template <class Msg>
void check_match(const OpDef& def, int64_t a, int64_t b, Msg&& what) {
  if (known(a) && known(b) && a != b) fail<InvalidArgument>(def.name, what(), " (", a, " vs ", b, ")");
}

constexpr const char* kImage = "[batch, height, width, channels]";
constexpr const char* kFilter = "[filter_height, filter_width, in_channels, out_channels]";

// A size attribute of 4 dims, each a size or -1 (to be taken from the other operands).
const std::vector<int64_t>& sizes_attr(const OpDef& def, const Attrs& attrs, const char* name, const char* layout) {
  const std::vector<int64_t>& v = attrs.get_ints(name);
  if (v.size() != 4 || std::any_of(v.begin(), v.end(), [](int64_t d) { return d < -1; }))
    fail<InvalidArgument>(def.name, name, " must be 4 sizes ", layout, ", each >= 0 (or -1 for unknown), got ",
                          list_string(v));
  return v;
}

// The size from an attribute, or from an operand where the attribute says -1.
int64_t either(int64_t attr, int64_t operand) { return attr >= 0 ? attr : operand; }

// The geometry of a convolution of an input [n, h, w, c] with a filter [kh, kw, c, o].
Geometry conv_geometry(const OpDef& def, const WindowAttrs& a, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh,
                       int64_t kw, int64_t o) {
  if (kh == 0 || kw == 0)
    fail<InvalidArgument>(def.name, "the filter height and width must be positive, got ", kh, " x ", kw);
  Geometry g;
  g.n = n, g.c = c, g.o = o;
  g.h = make_axis(def.name, "height", h, kh, a.strides[0], a.dilations[0], a.same);
  g.w = make_axis(def.name, "width", w, kw, a.strides[1], a.dilations[1], a.same);
  return g;
}

// out_backprop must have the forward output's shape.
template <class Msg>
void check_out_backprop(const OpDef& def, const Geometry& g, const Tensor& dy, Msg&& context) {
  const Shape& s = dy.shape();
  const int64_t want[4] = {g.n, g.h.out, g.w.out, g.o};
  for (size_t i = 0; i < 4; ++i)
    if (known(want[i]) && known(s.dim(i)) && want[i] != s.dim(i))
      fail<InvalidArgument>(def.name, "out_backprop has shape ", s.to_list_string(), " but ", context(),
                            " gives outputs of shape ", Shape{want[0], want[1], want[2], want[3]}.to_list_string());
}

TypeList infer_conv2d(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor &x = in[0], &f = in[1];
  check_same_dtypes(def, "input", x, "filter", f);
  check_dtype_class(def.name, "input", x.dtype(), F);
  check_rank4(def, "input", x, kImage);
  check_rank4(def, "filter", f, kFilter);
  const WindowAttrs a = window_attrs(def, attrs, true);
  const Shape &xs = x.shape(), &fs = f.shape();
  check_match(def, xs.dim(3), fs.dim(2), [&] {
    return "the input's channels, shape " + xs.to_list_string() + ", differ from the filter's in_channels, shape " +
           fs.to_list_string();
  });
  Geometry g = conv_geometry(def, a, xs.dim(0), xs.dim(1), xs.dim(2), xs.dim(3), fs.dim(0), fs.dim(1), fs.dim(3));
  return {TensorType{x.dtype(), Shape{g.n, g.h.out, g.w.out, g.o}}};
}

// conv2d_backprop_input(filter, out_backprop) {input_sizes}: the gradient of conv2d with respect
// to its input. input_sizes' batch and channels may be -1 (taken from out_backprop and filter).
TypeList infer_conv2d_backprop_input(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor &f = in[0], &dy = in[1];
  check_same_dtypes(def, "filter", f, "out_backprop", dy);
  check_dtype_class(def.name, "filter", f.dtype(), F);
  check_rank4(def, "filter", f, kFilter);
  check_rank4(def, "out_backprop", dy, kImage);
  const WindowAttrs a = window_attrs(def, attrs, true);
  const std::vector<int64_t>& sz = sizes_attr(def, attrs, "input_sizes", kImage);
  if (sz[1] < 0 || sz[2] < 0)
    fail<InvalidArgument>(def.name, "input_sizes needs a known height and width, got ", list_string(sz));
  const Shape &fs = f.shape(), &ds = dy.shape();
  const int64_t n = either(sz[0], ds.dim(0)), c = either(sz[3], fs.dim(2));
  check_match(def, c, fs.dim(2), [&] {
    return "input_sizes " + list_string(sz) + " has channels that differ from the filter's in_channels, shape " +
           fs.to_list_string();
  });
  check_match(def, fs.dim(3), ds.dim(3), [&] {
    return "the filter's out_channels, shape " + fs.to_list_string() + ", differ from out_backprop's channels, shape " +
           ds.to_list_string();
  });
  Geometry g = conv_geometry(def, a, n, sz[1], sz[2], c, fs.dim(0), fs.dim(1), fs.dim(3));
  check_out_backprop(def, g, dy,
                     [&] { return "input_sizes " + list_string(sz) + " with filter " + fs.to_list_string(); });
  return {TensorType{f.dtype(), Shape{n, sz[1], sz[2], c}}};
}

// conv2d_backprop_filter(input, out_backprop) {filter_sizes}: the gradient of conv2d with
// respect to its filter. filter_sizes' channels may be -1 (taken from input and out_backprop).
TypeList infer_conv2d_backprop_filter(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor &x = in[0], &dy = in[1];
  check_same_dtypes(def, "input", x, "out_backprop", dy);
  check_dtype_class(def.name, "input", x.dtype(), F);
  check_rank4(def, "input", x, kImage);
  check_rank4(def, "out_backprop", dy, kImage);
  const WindowAttrs a = window_attrs(def, attrs, true);
  const std::vector<int64_t>& sz = sizes_attr(def, attrs, "filter_sizes", kFilter);
  if (sz[0] < 1 || sz[1] < 1)
    fail<InvalidArgument>(def.name, "filter_sizes needs a positive height and width, got ", list_string(sz));
  const Shape &xs = x.shape(), &ds = dy.shape();
  const int64_t c = either(sz[2], xs.dim(3)), o = either(sz[3], ds.dim(3));
  check_match(def, xs.dim(3), c, [&] {
    return "the input's channels, shape " + xs.to_list_string() + ", differ from filter_sizes' in_channels, " +
           list_string(sz);
  });
  Geometry g = conv_geometry(def, a, xs.dim(0), xs.dim(1), xs.dim(2), c, sz[0], sz[1], o);
  check_out_backprop(def, g, dy,
                     [&] { return "input " + xs.to_list_string() + " with filter_sizes " + list_string(sz); });
  return {TensorType{x.dtype(), Shape{sz[0], sz[1], c, o}}};
}

// ---------------------------------------------------------------------------------------------
// Pooling geometry

Geometry pool_geometry(const OpDef& def, const Attrs& attrs, int64_t n, int64_t h, int64_t w, int64_t c) {
  const WindowAttrs a = window_attrs(def, attrs, false);
  const std::array<int64_t, 2> k = pair_attr(def, attrs, "ksize");
  Geometry g;
  g.n = n, g.c = c, g.o = c;
  g.h = make_axis(def.name, "height", h, k[0], a.strides[0], 1, a.same);
  g.w = make_axis(def.name, "width", w, k[1], a.strides[1], 1, a.same);
  return g;
}

Geometry pool_geometry(const OpDef& def, const Attrs& attrs, const Shape& x) {
  return pool_geometry(def, attrs, x.dim(0), x.dim(1), x.dim(2), x.dim(3));
}

Shape pooled_shape(const Geometry& g) { return Shape{g.n, g.h.out, g.w.out, g.c}; }

// Two shapes that must agree wherever both are known.
template <class Msg>
void check_shapes_match(const OpDef& def, const Shape& got, const Shape& want, Msg&& what) {
  for (int64_t i = 0; i < 4; ++i)
    if (known(got.dim(size_t(i))) && known(want.dim(size_t(i))) && got.dim(size_t(i)) != want.dim(size_t(i)))
      fail<InvalidArgument>(def.name, what(), " has shape ", got.to_list_string(), " but must have shape ",
                            want.to_list_string());
}

template <unsigned Classes>
TypeList infer_pool(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor& x = in[0];
  check_dtype_class(def.name, "input", x.dtype(), Classes);
  check_rank4(def, "input", x, kImage);
  return {TensorType{x.dtype(), pooled_shape(pool_geometry(def, attrs, x.shape()))}};
}

// max_pool2d_grad(input, grad): grad has the pooled shape; the result has input's shape.
TypeList infer_max_pool2d_grad(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor &x = in[0], &dy = in[1];
  check_same_dtypes(def, "input", x, "grad", dy);
  check_dtype_class(def.name, "input", x.dtype(), F);
  check_rank4(def, "input", x, kImage);
  check_rank4(def, "grad", dy, kImage);
  check_shapes_match(def, dy.shape(), pooled_shape(pool_geometry(def, attrs, x.shape())),
                     [&] { return "grad (of the pooled input " + x.shape().to_list_string() + ")"; });
  return {TensorType{x.dtype(), x.shape()}};
}

// max_pool2d_grad_grad(input, grad): grad has input's shape; the result has the pooled shape.
TypeList infer_max_pool2d_grad_grad(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor &x = in[0], &gg = in[1];
  check_same_dtypes(def, "input", x, "grad", gg);
  check_dtype_class(def.name, "input", x.dtype(), F);
  check_rank4(def, "input", x, kImage);
  check_rank4(def, "grad", gg, kImage);
  check_shapes_match(def, gg.shape(), x.shape(), [] { return std::string("grad (the gradient of the input)"); });
  return {TensorType{x.dtype(), pooled_shape(pool_geometry(def, attrs, x.shape()))}};
}

// avg_pool2d_grad(grad) {input_sizes}: batch and channels may be -1 (taken from grad).
TypeList infer_avg_pool2d_grad(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor& dy = in[0];
  check_dtype_class(def.name, "grad", dy.dtype(), F);
  check_rank4(def, "grad", dy, kImage);
  const std::vector<int64_t>& sz = sizes_attr(def, attrs, "input_sizes", kImage);
  if (sz[1] < 0 || sz[2] < 0)
    fail<InvalidArgument>(def.name, "input_sizes needs a known height and width, got ", list_string(sz));
  const Shape& ds = dy.shape();
  const Shape x{either(sz[0], ds.dim(0)), sz[1], sz[2], either(sz[3], ds.dim(3))};
  check_shapes_match(def, ds, pooled_shape(pool_geometry(def, attrs, x)),
                     [&] { return "grad (of the pooled input " + list_string(sz) + ")"; });
  return {TensorType{dy.dtype(), x}};
}

// ---------------------------------------------------------------------------------------------
// Reference convolution kernels. Outputs are written in full (they may be arena memory), work
// is split over rows of the output, and sums accumulate in acc_t<T> (float for 16-bit floats).

// The geometry of a convolution from concrete shapes already validated by infer.
Geometry conv_from(const OpDef& def, const Attrs& attrs, const Shape& x, const Shape& f) {
  return conv_geometry(def, window_attrs(def, attrs, true), x.dim(0), x.dim(1), x.dim(2), x.dim(3), f.dim(0), f.dim(1),
                       f.dim(3));
}

template <class T>
std::vector<acc_t<T>> widen(const T* p, int64_t n) {
  std::vector<acc_t<T>> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = static_cast<acc_t<T>>(p[i]);
  return v;
}

// Rows per parallel chunk for rows of `factors` multiply-adds each (checked: an absurd geometry
// whose product overflows int64 gets one-row chunks).
int64_t grain_for(std::initializer_list<int64_t> factors) {
  int64_t work = 1;
  for (int64_t f : factors)
    if (__builtin_mul_overflow(work, std::max<int64_t>(f, 1), &work)) return 1;
  return std::max<int64_t>(1, cpu::kParallelGrain / work);
}

// y[n, oy, ox, :] = sum over taps (ky, kx) inside the input of x[n, iy, ix, :] . f[ky, kx, :, :],
// iy = oy * stride - pad + ky * dilation.
template <class T>
void conv_forward_ref(const Geometry& g, const T* x, const T* f, T* y) {
  using Acc = acc_t<T>;
  const std::vector<Acc> fw = widen(f, g.h.taps * g.w.taps * g.c * g.o);
  const int64_t H = g.h.in, W = g.w.in, C = g.c, O = g.o, OH = g.h.out, OW = g.w.out;
  parallel_for(g.n * OH, grain_for({OW, g.h.taps, g.w.taps, C, O}), [&](int64_t r0, int64_t r1) {
    std::vector<Acc> acc(static_cast<size_t>(O));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / OH, oy = r % OH;
      for (int64_t ox = 0; ox < OW; ++ox) {
        std::fill(acc.begin(), acc.end(), Acc(0));
        for (int64_t ky = 0; ky < g.h.taps; ++ky) {
          const int64_t iy = oy * g.h.stride - g.h.pad + ky * g.h.dilation;
          if (iy < 0 || iy >= H) continue;
          for (int64_t kx = 0; kx < g.w.taps; ++kx) {
            const int64_t ix = ox * g.w.stride - g.w.pad + kx * g.w.dilation;
            if (ix < 0 || ix >= W) continue;
            const T* xp = x + ((n * H + iy) * W + ix) * C;
            const Acc* fp = fw.data() + (ky * g.w.taps + kx) * C * O;
            for (int64_t c = 0; c < C; ++c) {
              const Acc xv = static_cast<Acc>(xp[c]);
              const Acc* frow = fp + c * O;
              for (int64_t o = 0; o < O; ++o) acc[size_t(o)] += xv * frow[o];
            }
          }
        }
        T* yp = y + ((n * OH + oy) * OW + ox) * O;
        for (int64_t o = 0; o < O; ++o) yp[o] = static_cast<T>(acc[size_t(o)]);
      }
    }
  });
}

// dx[n, iy, ix, :] = sum over the taps whose output position exists of dy[n, oy, ox, :] .
// f[ky, kx, :, :]^T: gathered per input row, so threads never write the same element.
template <class T>
void conv_backprop_input_ref(const Geometry& g, const T* f, const T* dy, T* dx) {
  using Acc = acc_t<T>;
  const int64_t KH = g.h.taps, KW = g.w.taps, C = g.c, O = g.o, H = g.h.in, W = g.w.in, OH = g.h.out, OW = g.w.out;
  // the filter as [kh, kw, o, c], so the inner loop runs over contiguous input channels
  std::vector<Acc> ft(static_cast<size_t>(KH * KW * O * C));
  for (int64_t t = 0; t < KH * KW; ++t)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t o = 0; o < O; ++o) ft[size_t((t * O + o) * C + c)] = static_cast<Acc>(f[(t * C + c) * O + o]);
  parallel_for(g.n * H, grain_for({W, KH, KW, C, O}), [&](int64_t r0, int64_t r1) {
    std::vector<Acc> acc(static_cast<size_t>(C));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / H, iy = r % H;
      for (int64_t ix = 0; ix < W; ++ix) {
        std::fill(acc.begin(), acc.end(), Acc(0));
        for (int64_t ky = 0; ky < KH; ++ky) {
          const int64_t ty = iy + g.h.pad - ky * g.h.dilation;  // oy * stride
          if (ty < 0) break;                                    // only decreases with ky
          if (ty % g.h.stride != 0 || ty / g.h.stride >= OH) continue;
          const int64_t oy = ty / g.h.stride;
          for (int64_t kx = 0; kx < KW; ++kx) {
            const int64_t tx = ix + g.w.pad - kx * g.w.dilation;
            if (tx < 0) break;
            if (tx % g.w.stride != 0 || tx / g.w.stride >= OW) continue;
            const int64_t ox = tx / g.w.stride;
            const T* dp = dy + ((n * OH + oy) * OW + ox) * O;
            const Acc* fp = ft.data() + (ky * KW + kx) * O * C;
            for (int64_t o = 0; o < O; ++o) {
              const Acc dv = static_cast<Acc>(dp[o]);
              const Acc* frow = fp + o * C;
              for (int64_t c = 0; c < C; ++c) acc[size_t(c)] += dv * frow[c];
            }
          }
        }
        T* xp = dx + ((n * H + iy) * W + ix) * C;
        for (int64_t c = 0; c < C; ++c) xp[c] = static_cast<T>(acc[size_t(c)]);
      }
    }
  });
}

// df[ky, kx, c, :] = sum over (n, oy, ox) with the tap inside the input of x[n, iy, ix, c] *
// dy[n, oy, ox, :]: one row per (ky, kx, c).
template <class T>
void conv_backprop_filter_ref(const Geometry& g, const T* x, const T* dy, T* df) {
  using Acc = acc_t<T>;
  const int64_t KW = g.w.taps, C = g.c, O = g.o, H = g.h.in, W = g.w.in, OH = g.h.out, OW = g.w.out;
  const std::vector<Acc> dw = widen(dy, g.n * OH * OW * O);
  parallel_for(g.h.taps * KW * C, grain_for({g.n, OH, OW, O}), [&](int64_t r0, int64_t r1) {
    std::vector<Acc> acc(static_cast<size_t>(O));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r % C, kx = (r / C) % KW, ky = r / C / KW;
      std::fill(acc.begin(), acc.end(), Acc(0));
      for (int64_t n = 0; n < g.n; ++n)
        for (int64_t oy = 0; oy < OH; ++oy) {
          const int64_t iy = oy * g.h.stride - g.h.pad + ky * g.h.dilation;
          if (iy < 0 || iy >= H) continue;
          for (int64_t ox = 0; ox < OW; ++ox) {
            const int64_t ix = ox * g.w.stride - g.w.pad + kx * g.w.dilation;
            if (ix < 0 || ix >= W) continue;
            const Acc xv = static_cast<Acc>(x[((n * H + iy) * W + ix) * C + c]);
            const Acc* dp = dw.data() + ((n * OH + oy) * OW + ox) * O;
            for (int64_t o = 0; o < O; ++o) acc[size_t(o)] += xv * dp[o];
          }
        }
      T* fp = df + r * O;
      for (int64_t o = 0; o < O; ++o) fp[o] = static_cast<T>(acc[size_t(o)]);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// oneDNN convolutions (float32)

enum class ConvPass : int64_t { Forward, BackwardData, BackwardWeights };

#ifdef KILN_WITH_ONEDNN
// Whether oneDNN should take this geometry: every size nonzero (empty convolutions are trivial
// loops) and every stride, dilation, window and padding well inside int32, which some of
// oneDNN's kernels compute in; larger values (a stride of 2^62 is legal and gives one output)
// go to the loops.
bool onednn_fits(const Geometry& g) {
  constexpr int64_t kLimit = int64_t{1} << 24;
  auto fits = [](const Axis& a) {
    return a.in > 0 && a.out > 0 && a.stride <= kLimit && a.dilation <= kLimit && a.window <= kLimit &&
           a.pad <= kLimit && a.pad_after <= kLimit;
  };
  return g.n > 0 && g.c > 0 && g.o > 0 && fits(g.h) && fits(g.w);
}

// One pass of a float32 convolution on oneDNN over NHWC activations and HWIO filters. The
// forward pass reads src and wei and writes out (dst); the backward-data pass reads dst (the
// output gradient) and wei and writes out (diff_src); the backward-weights pass reads src and
// dst and writes out (diff_weights). Primitives are cached per thread by geometry and pass.
// Returns false, having written nothing, when oneDNN has no primitive for the geometry.
bool onednn_conv(std::string_view op, ConvPass pass, const Geometry& g, const float* src, const float* wei,
                 const float* dst, float* out) {
  if (!onednn_fits(g)) return false;
  namespace dn = dnnl;
  using mem = dn::memory;
  using Key = std::array<int64_t, 16>;
  struct Cached {
    dn::primitive prim;  // empty: oneDNN refused the geometry
    mem::desc src, wei, dst;
  };
  thread_local dn::engine eng(dn::engine::kind::cpu, 0);
  thread_local dn::stream strm(eng);
  thread_local std::map<Key, Cached> cache;
  const Key key{static_cast<int64_t>(pass),
                g.n,
                g.c,
                g.o,
                g.h.in,
                g.w.in,
                g.h.taps,
                g.w.taps,
                g.h.stride,
                g.w.stride,
                g.h.dilation,
                g.w.dilation,
                g.h.pad,
                g.w.pad,
                g.h.pad_after,
                g.w.pad_after};
  auto it = cache.find(key);
  if (it == cache.end()) {
    mem::desc src_md({g.n, g.c, g.h.in, g.w.in}, mem::data_type::f32, mem::format_tag::nhwc);
    mem::desc wei_md({g.o, g.c, g.h.taps, g.w.taps}, mem::data_type::f32, mem::format_tag::hwio);
    mem::desc dst_md({g.n, g.o, g.h.out, g.w.out}, mem::data_type::f32, mem::format_tag::nhwc);
    // oneDNN counts dilation from 0 (no gaps); TensorFlow from 1
    const mem::dims strides{g.h.stride, g.w.stride}, dilates{g.h.dilation - 1, g.w.dilation - 1};
    const mem::dims pad_l{g.h.pad, g.w.pad}, pad_r{g.h.pad_after, g.w.pad_after};
    const auto algo = dn::algorithm::convolution_direct;
    dn::primitive prim;
    try {
      dn::convolution_forward::primitive_desc fwd(
          dn::convolution_forward::desc(dn::prop_kind::forward_training, algo, src_md, wei_md, dst_md, strides, dilates,
                                        pad_l, pad_r),
          eng);
      if (pass == ConvPass::Forward) {
        prim = dn::convolution_forward(fwd);
      } else if (pass == ConvPass::BackwardData) {
        prim = dn::convolution_backward_data(dn::convolution_backward_data::primitive_desc(
            dn::convolution_backward_data::desc(algo, src_md, wei_md, dst_md, strides, dilates, pad_l, pad_r), eng,
            fwd));
      } else {
        prim = dn::convolution_backward_weights(dn::convolution_backward_weights::primitive_desc(
            dn::convolution_backward_weights::desc(algo, src_md, wei_md, dst_md, strides, dilates, pad_l, pad_r), eng,
            fwd));
      }
    } catch (const dn::error&) {
      prim = dn::primitive();  // a geometry oneDNN does not implement: the loops compute it
    }
    if (cache.size() > 256) cache.clear();
    it = cache.emplace(key, Cached{prim, src_md, wei_md, dst_md}).first;
  }
  const Cached& c = it->second;
  if (!c.prim) return false;
  try {
    if (pass == ConvPass::Forward) {
      mem s(c.src, eng, const_cast<float*>(src)), w(c.wei, eng, const_cast<float*>(wei)), d(c.dst, eng, out);
      c.prim.execute(strm, {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, d}});
    } else if (pass == ConvPass::BackwardData) {
      mem d(c.dst, eng, const_cast<float*>(dst)), w(c.wei, eng, const_cast<float*>(wei)), s(c.src, eng, out);
      c.prim.execute(strm, {{DNNL_ARG_DIFF_DST, d}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, s}});
    } else {
      mem s(c.src, eng, const_cast<float*>(src)), d(c.dst, eng, const_cast<float*>(dst)), w(c.wei, eng, out);
      c.prim.execute(strm, {{DNNL_ARG_SRC, s}, {DNNL_ARG_DIFF_DST, d}, {DNNL_ARG_DIFF_WEIGHTS, w}});
    }
    strm.wait();
  } catch (const dn::error& e) {
    fail<Internal>(op, "oneDNN convolution failed: ", e.what());
  }
  return true;
}
#endif

template <class T>
constexpr bool is_float_type() {
  return (dtype_class_of<T>() & F) != 0;
}

// Runs `pass` on the inputs: forward (x, f) -> y, backward data (f, dy) -> dx, backward
// weights (x, dy) -> df.
void run_conv(KernelContext& ctx, ConvPass pass, const Geometry& g) {
  const Tensor &a = ctx.inputs[0], &b = ctx.inputs[1];
  Tensor& out = ctx.output(0);
  if (out.num_elements() == 0) return;
  visit_dtype(out.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (is_float_type<T>()) {
      const T* ap = static_cast<const T*>(a.raw_data());
      const T* bp = static_cast<const T*>(b.raw_data());
      T* op = static_cast<T*>(out.mutable_raw_data());
#ifdef KILN_WITH_ONEDNN
      if constexpr (std::is_same_v<T, float>) {
        const float* src = pass == ConvPass::BackwardData ? nullptr : ap;
        const float* wei = pass == ConvPass::Forward ? bp : pass == ConvPass::BackwardData ? ap : nullptr;
        const float* dst = pass == ConvPass::Forward ? nullptr : bp;
        if (onednn_conv(ctx.def.name, pass, g, src, wei, dst, op)) return;
      }
#endif
      if (pass == ConvPass::Forward) return conv_forward_ref(g, ap, bp, op);
      if (pass == ConvPass::BackwardData) return conv_backprop_input_ref(g, ap, bp, op);
      return conv_backprop_filter_ref(g, ap, bp, op);
    }
  });
}

void kernel_conv2d(KernelContext& ctx) {
  run_conv(ctx, ConvPass::Forward, conv_from(ctx.def, ctx.attrs, ctx.inputs[0].shape(), ctx.inputs[1].shape()));
}

void kernel_conv2d_backprop_input(KernelContext& ctx) {
  const Shape& dx = ctx.types[0].shape;
  Shape f = ctx.inputs[0].shape();
  run_conv(ctx, ConvPass::BackwardData, conv_from(ctx.def, ctx.attrs, dx, f));
}

void kernel_conv2d_backprop_filter(KernelContext& ctx) {
  const Shape& x = ctx.inputs[0].shape();
  const Shape& df = ctx.types[0].shape;
  run_conv(ctx, ConvPass::BackwardWeights, conv_from(ctx.def, ctx.attrs, x, df));
}

// ---------------------------------------------------------------------------------------------
// Pooling kernels

// The input rows [y0, y1) and columns [x0, x1) of output (oy, ox)'s window, clipped to the
// input (padding takes no part in max or average). Windows are never empty (make_axis).
struct Window {
  int64_t y0, y1, x0, x1;
};

int64_t clip_end(int64_t start, int64_t size, int64_t in) { return size >= in - start ? in : start + size; }

Window window_at(const Geometry& g, int64_t oy, int64_t ox) {
  const int64_t sy = oy * g.h.stride - g.h.pad, sx = ox * g.w.stride - g.w.pad;
  return {std::max<int64_t>(sy, 0), clip_end(sy, g.h.taps, g.h.in), std::max<int64_t>(sx, 0),
          clip_end(sx, g.w.taps, g.w.in)};
}

// For output rows [r0, r1) (a row is one (n, oy)), calls visit(out_flat, in_flat) with the
// position of each window's maximum per channel: the first one in row-major order, or the first
// NaN (NaN propagates, as TensorFlow's max pooling).
template <class T, class V>
void max_positions(const Geometry& g, const T* x, int64_t r0, int64_t r1, V&& visit) {
  using Cmp = compute_t<T>;
  const int64_t C = g.c, H = g.h.in, W = g.w.in, OH = g.h.out, OW = g.w.out;
  std::vector<Cmp> best(static_cast<size_t>(C));
  std::vector<int64_t> pos(static_cast<size_t>(C));
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / OH, oy = r % OH;
    for (int64_t ox = 0; ox < OW; ++ox) {
      const Window w = window_at(g, oy, ox);
      const int64_t first = ((n * H + w.y0) * W + w.x0) * C;
      for (int64_t c = 0; c < C; ++c) best[size_t(c)] = static_cast<Cmp>(x[first + c]), pos[size_t(c)] = first + c;
      for (int64_t iy = w.y0; iy < w.y1; ++iy)
        for (int64_t ix = w.x0; ix < w.x1; ++ix) {
          const int64_t base = ((n * H + iy) * W + ix) * C;
          for (int64_t c = 0; c < C; ++c) {
            const Cmp v = static_cast<Cmp>(x[base + c]);
            bool better = v > best[size_t(c)];
            if constexpr (std::is_floating_point_v<Cmp>) better |= v != v && best[size_t(c)] == best[size_t(c)];
            if (better) best[size_t(c)] = v, pos[size_t(c)] = base + c;
          }
        }
      const int64_t out = ((n * OH + oy) * OW + ox) * C;
      for (int64_t c = 0; c < C; ++c) visit(out + c, pos[size_t(c)]);
    }
  }
}

void kernel_max_pool2d(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  Tensor& out = ctx.output(0);
  if (out.num_elements() == 0) return;
  const Geometry g = pool_geometry(ctx.def, ctx.attrs, x.shape());
  visit_dtype(x.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, bool> && !is_complex_v<T>) {
      const T* xp = static_cast<const T*>(x.raw_data());
      T* yp = static_cast<T*>(out.mutable_raw_data());
      const int64_t kh = std::min(g.h.taps, g.h.in), kw = std::min(g.w.taps, g.w.in);
      parallel_for(g.n * g.h.out, grain_for({g.w.out, kh, kw, g.c}), [&](int64_t r0, int64_t r1) {
        max_positions(g, xp, r0, r1, [&](int64_t o, int64_t i) { yp[o] = xp[i]; });
      });
    }
  });
}

// The gradient scatters grad to each window's maximum. Windows overlap across rows, so the
// work is split by image, and sums run in acc_t<T> before the single rounding to T.
void kernel_max_pool2d_grad(KernelContext& ctx) {
  const Tensor &x = ctx.inputs[0], &dy = ctx.inputs[1];
  Tensor& out = ctx.output(0);
  if (out.num_elements() == 0) return;
  const Geometry g = pool_geometry(ctx.def, ctx.attrs, x.shape());
  visit_dtype(x.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (is_float_type<T>()) {
      using Acc = acc_t<T>;
      const T* xp = static_cast<const T*>(x.raw_data());
      const T* dp = static_cast<const T*>(dy.raw_data());
      T* gp = static_cast<T*>(out.mutable_raw_data());
      const int64_t image = g.h.in * g.w.in * g.c;
      parallel_for(g.n, grain_for({g.h.out, g.w.out, g.c, 2}), [&](int64_t n0, int64_t n1) {
        std::vector<Acc> acc(static_cast<size_t>(image));
        for (int64_t n = n0; n < n1; ++n) {
          std::fill(acc.begin(), acc.end(), Acc(0));
          const int64_t base = n * image;
          max_positions(g, xp, n * g.h.out, (n + 1) * g.h.out,
                        [&](int64_t o, int64_t i) { acc[size_t(i - base)] += static_cast<Acc>(dp[o]); });
          for (int64_t i = 0; i < image; ++i) gp[base + i] = static_cast<T>(acc[size_t(i)]);
        }
      });
    }
  });
}

// The gradient of max_pool2d_grad with respect to its grad: each window picks the incoming
// gradient at its maximum.
void kernel_max_pool2d_grad_grad(KernelContext& ctx) {
  const Tensor &x = ctx.inputs[0], &gg = ctx.inputs[1];
  Tensor& out = ctx.output(0);
  if (out.num_elements() == 0) return;
  const Geometry g = pool_geometry(ctx.def, ctx.attrs, x.shape());
  visit_dtype(x.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (is_float_type<T>()) {
      const T* xp = static_cast<const T*>(x.raw_data());
      const T* gp = static_cast<const T*>(gg.raw_data());
      T* yp = static_cast<T*>(out.mutable_raw_data());
      const int64_t kh = std::min(g.h.taps, g.h.in), kw = std::min(g.w.taps, g.w.in);
      parallel_for(g.n * g.h.out, grain_for({g.w.out, kh, kw, g.c}), [&](int64_t r0, int64_t r1) {
        max_positions(g, xp, r0, r1, [&](int64_t o, int64_t i) { yp[o] = gp[i]; });
      });
    }
  });
}

// Averages over the window's elements inside the input (SAME padding does not count), as
// TensorFlow's avg_pool.
void kernel_avg_pool2d(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  Tensor& out = ctx.output(0);
  if (out.num_elements() == 0) return;
  const Geometry g = pool_geometry(ctx.def, ctx.attrs, x.shape());
  visit_dtype(x.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (is_float_type<T>()) {
      using Acc = acc_t<T>;
      const T* xp = static_cast<const T*>(x.raw_data());
      T* yp = static_cast<T*>(out.mutable_raw_data());
      const int64_t C = g.c, H = g.h.in, W = g.w.in, OH = g.h.out, OW = g.w.out;
      const int64_t kh = std::min(g.h.taps, H), kw = std::min(g.w.taps, W);
      parallel_for(g.n * OH, grain_for({OW, kh, kw, C}), [&](int64_t r0, int64_t r1) {
        std::vector<Acc> acc(static_cast<size_t>(C));
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t n = r / OH, oy = r % OH;
          for (int64_t ox = 0; ox < OW; ++ox) {
            const Window w = window_at(g, oy, ox);
            std::fill(acc.begin(), acc.end(), Acc(0));
            for (int64_t iy = w.y0; iy < w.y1; ++iy)
              for (int64_t ix = w.x0; ix < w.x1; ++ix) {
                const T* p = xp + ((n * H + iy) * W + ix) * C;
                for (int64_t c = 0; c < C; ++c) acc[size_t(c)] += static_cast<Acc>(p[c]);
              }
            const Acc count = static_cast<Acc>((w.y1 - w.y0) * (w.x1 - w.x0));
            T* yo = yp + ((n * OH + oy) * OW + ox) * C;
            for (int64_t c = 0; c < C; ++c) yo[c] = static_cast<T>(acc[size_t(c)] / count);
          }
        }
      });
    }
  });
}

// Spreads each output's gradient evenly over its window, per image (windows overlap).
void kernel_avg_pool2d_grad(KernelContext& ctx) {
  const Tensor& dy = ctx.inputs[0];
  Tensor& out = ctx.output(0);
  if (out.num_elements() == 0) return;
  const Geometry g = pool_geometry(ctx.def, ctx.attrs, ctx.types[0].shape);
  visit_dtype(dy.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (is_float_type<T>()) {
      using Acc = acc_t<T>;
      const T* dp = static_cast<const T*>(dy.raw_data());
      T* gp = static_cast<T*>(out.mutable_raw_data());
      const int64_t C = g.c, H = g.h.in, W = g.w.in, OH = g.h.out, OW = g.w.out, image = H * W * C;
      const int64_t kh = std::min(g.h.taps, H), kw = std::min(g.w.taps, W);
      parallel_for(g.n, grain_for({OH, OW, kh, kw, C}), [&](int64_t n0, int64_t n1) {
        std::vector<Acc> acc(static_cast<size_t>(image));
        for (int64_t n = n0; n < n1; ++n) {
          std::fill(acc.begin(), acc.end(), Acc(0));
          for (int64_t oy = 0; oy < OH; ++oy)
            for (int64_t ox = 0; ox < OW; ++ox) {
              const Window w = window_at(g, oy, ox);
              const Acc count = static_cast<Acc>((w.y1 - w.y0) * (w.x1 - w.x0));
              const T* d = dp + ((n * OH + oy) * OW + ox) * C;
              for (int64_t iy = w.y0; iy < w.y1; ++iy)
                for (int64_t ix = w.x0; ix < w.x1; ++ix) {
                  Acc* a = acc.data() + (iy * W + ix) * C;
                  for (int64_t c = 0; c < C; ++c) a[c] += static_cast<Acc>(d[c]) / count;
                }
            }
          for (int64_t i = 0; i < image; ++i) gp[n * image + i] = static_cast<T>(acc[size_t(i)]);
        }
      });
    }
  });
}

std::vector<AttrSpec> conv_attrs(const char* sizes) {
  std::vector<AttrSpec> a = {{"strides", AttrKind::Ints}, {"padding", AttrKind::String}, {"dilations", AttrKind::Ints}};
  if (sizes) a.push_back({sizes, AttrKind::Ints});
  return a;
}

std::vector<AttrSpec> pool_attrs(const char* sizes) {
  std::vector<AttrSpec> a = {{"ksize", AttrKind::Ints}, {"strides", AttrKind::Ints}, {"padding", AttrKind::String}};
  if (sizes) a.push_back({sizes, AttrKind::Ints});
  return a;
}

OpDef window_op(int num_inputs, std::vector<AttrSpec> attrs, InferFn infer, KernelFn kernel) {
  OpDef d;
  d.num_inputs = num_inputs;
  d.traits = kDifferentiable;
  d.attrs = std::move(attrs);
  d.infer = infer;
  d.cpu_kernel = kernel;
  return d;
}

}  // namespace

OpDef define_Conv2D() { return window_op(2, conv_attrs(nullptr), infer_conv2d, kernel_conv2d); }
OpDef define_Conv2DBackpropInput() {
  return window_op(2, conv_attrs("input_sizes"), infer_conv2d_backprop_input, kernel_conv2d_backprop_input);
}
OpDef define_Conv2DBackpropFilter() {
  return window_op(2, conv_attrs("filter_sizes"), infer_conv2d_backprop_filter, kernel_conv2d_backprop_filter);
}
OpDef define_MaxPool2D() { return window_op(1, pool_attrs(nullptr), infer_pool<S | U | F>, kernel_max_pool2d); }
OpDef define_MaxPool2DGrad() {
  return window_op(2, pool_attrs(nullptr), infer_max_pool2d_grad, kernel_max_pool2d_grad);
}
OpDef define_MaxPool2DGradGrad() {
  return window_op(2, pool_attrs(nullptr), infer_max_pool2d_grad_grad, kernel_max_pool2d_grad_grad);
}
OpDef define_AvgPool2D() { return window_op(1, pool_attrs(nullptr), infer_pool<F>, kernel_avg_pool2d); }
OpDef define_AvgPool2DGrad() {
  return window_op(1, pool_attrs("input_sizes"), infer_avg_pool2d_grad, kernel_avg_pool2d_grad);
}

}  // namespace kiln::ops
