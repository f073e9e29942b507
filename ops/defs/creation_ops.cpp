// Creation ops: fill, range, linspace, eye and the Philox-based random ops. Their shapes come
// from attributes, so a trace records them as nodes instead of baking in large constants.
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/defs/elementwise_common.h"
#include "ops/kernels/cpu/loops.h"
#include "ops/ops.h"
#include "runtime/philox.h"

namespace kiln::ops {
namespace {

// The output shape from the "shape" attribute, checked for negative dims, int64 overflow and
// allocatable size, with errors naming the op.
Shape shape_attr(const OpDef& def, const Attrs& attrs, DType dtype) {
  Shape s(attrs.get_ints("shape"));
  checked_nbytes(def.name, s, dtype);
  return s;
}

// Writes f(i) converted to the output dtype for every element.
template <class Fn>
void fill_indexed(Tensor& out, std::string_view op, Fn&& f) {
  visit_dtype(out.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(out.mutable_raw_data());
    parallel_for(out.num_elements(), cpu::kParallelGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        if constexpr (is_complex_v<T>)
          p[i] = T(static_cast<typename T::value_type>(f(i)));
        else
          p[i] = static_cast<T>(f(i));
      }
    });
  });
}

// ---- fill(shape, value)
TypeList infer_fill(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  if (in[0].ndim() != 0)
    fail<InvalidArgument>(def.name, "value must be a scalar, got shape ", in[0].shape().to_string());
  return {TensorType{in[0].dtype(), shape_attr(def, attrs, in[0].dtype())}};
}
void kernel_fill(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  const char* v = static_cast<const char*>(ctx.inputs[0].raw_data());
  size_t es = static_cast<size_t>(dtype_size(out.dtype()));
  char* p = static_cast<char*>(out.mutable_raw_data());
  bool zero = std::all_of(v, v + es, [](char c) { return c == 0; });
  parallel_for(out.num_elements(), cpu::kParallelGrain, [&](int64_t b, int64_t e) {
    if (zero) {
      std::memset(p + b * es, 0, static_cast<size_t>(e - b) * es);
      return;
    }
    for (int64_t i = b; i < e; ++i) std::memcpy(p + i * es, v, es);
  });
}

// ---- range(start, limit, delta)
int64_t range_size(const OpDef& def, double start, double limit, double delta, bool integral) {
  if (delta == 0) fail<InvalidArgument>(def.name, "delta must not be 0");
  if (delta > 0 && start > limit)
    fail<InvalidArgument>(def.name, "requires start <= limit when delta > 0: ", start, " / ", limit);
  if (delta < 0 && start < limit)
    fail<InvalidArgument>(def.name, "requires start >= limit when delta < 0: ", start, " / ", limit);
  double n = integral ? std::ceil(std::abs(limit - start) / std::abs(delta)) : std::ceil((limit - start) / delta);
  if (!(n < 9.0e15)) fail<InvalidArgument>(def.name, "the range has too many elements (", n, ")");
  return static_cast<int64_t>(n);
}
TypeList infer_range(const OpDef& def, const Attrs& attrs, std::span<const Tensor>) {
  DType dt = attrs.get_type("dtype");
  check_dtype_class(def.name, "dtype", dt, S | U | F);
  double start = attrs.get_float("start"), limit = attrs.get_float("limit"), delta = attrs.get_float("delta");
  if (is_integer(dt))
    for (double v : {start, limit, delta})
      if (!(std::abs(v) < 4.0e18) || v != std::trunc(v))
        fail<InvalidArgument>(def.name, "integer range bounds must be integers within int64, got ", v);
  int64_t n = range_size(def, start, limit, delta, is_integer(dt));
  checked_nbytes(def.name, Shape{n}, dt);
  if (is_integer(dt) && n > 0) {
    // every value must fit the dtype: the ends of the range are its extremes
    double last = start + static_cast<double>(n - 1) * delta;
    visit_dtype(dt, def.name, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_integral_v<T>) {
        const double lo = static_cast<double>(std::numeric_limits<T>::min());
        const double hi = std::ldexp(1.0, std::numeric_limits<T>::digits);  // max + 1, exact
        for (double v : {start, last})
          if (v < lo || v >= hi)
            fail<InvalidArgument>(def.name, "value ", v, " of the range [", start, ", ", limit, ") does not fit ",
                                  dtype_name(dt));
      }
    });
  }
  return {TensorType{dt, Shape{n}}};
}
void kernel_range(KernelContext& ctx) {
  double start = ctx.attrs.get_float("start"), delta = ctx.attrs.get_float("delta");
  Tensor& out = ctx.output(0);
  if (is_integer(out.dtype())) {
    int64_t s = static_cast<int64_t>(start), d = static_cast<int64_t>(delta);
    fill_indexed(out, ctx.def.name, [&](int64_t i) { return s + i * d; });
  } else {
    fill_indexed(out, ctx.def.name, [&](int64_t i) { return start + static_cast<double>(i) * delta; });
  }
}

// ---- linspace(start, stop, num)
TypeList infer_linspace(const OpDef& def, const Attrs& attrs, std::span<const Tensor>) {
  DType dt = attrs.get_type("dtype");
  check_dtype_class(def.name, "dtype", dt, F | C);
  int64_t num = attrs.get_int("num");
  if (num < 0) fail<InvalidArgument>(def.name, "num must be >= 0, got ", num);
  return {TensorType{dt, Shape{num}}};
}
void kernel_linspace(KernelContext& ctx) {
  double start = ctx.attrs.get_float("start"), stop = ctx.attrs.get_float("stop");
  int64_t num = ctx.attrs.get_int("num");
  double step = num > 1 ? (stop - start) / static_cast<double>(num - 1) : 0.0;
  fill_indexed(ctx.output(0), ctx.def.name,
               [&](int64_t i) { return (num > 1 && i == num - 1) ? stop : start + static_cast<double>(i) * step; });
}

// ---- eye(rows, cols)
TypeList infer_eye(const OpDef& def, const Attrs& attrs, std::span<const Tensor>) {
  int64_t r = attrs.get_int("num_rows"), c = attrs.get_int("num_columns");
  if (r < 0 || c < 0) fail<InvalidArgument>(def.name, "dimensions must be >= 0, got ", r, " x ", c);
  DType dt = attrs.get_type("dtype");
  if (dt == DType::String) throw_unsupported_dtype(def.name, dt);
  checked_nbytes(def.name, Shape{r, c}, dt);  // r * c may overflow
  return {TensorType{dt, Shape{r, c}}};
}
void kernel_eye(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  int64_t c = out.shape().dim(1);
  fill_indexed(out, ctx.def.name, [&](int64_t i) { return (i / c == i % c) ? 1 : 0; });
}

// ---- random_normal / random_uniform

// The op's Philox stream: its attributes, or (-1, -1) the global generator's next stream.
std::pair<uint64_t, uint64_t> stream_of(const Attrs& attrs) {
  int64_t seed = attrs.get_int("seed"), offset = attrs.get_int("offset");
  if (seed == -1 && offset == -1) return kiln::random::next_global_stream();
  return {static_cast<uint64_t>(seed), static_cast<uint64_t>(offset)};
}
TypeList infer_random(const OpDef& def, const Attrs& attrs, std::span<const Tensor>) {
  DType dt = attrs.get_type("dtype");
  bool uniform = def.id == OpId::RandomUniform;
  check_dtype_class(def.name, "dtype", dt, uniform ? (S | U | F) : F);
  if (uniform && is_integer(dt) &&
      !(std::abs(attrs.get_float("minval")) < 4.0e18 && std::abs(attrs.get_float("maxval")) < 4.0e18))
    fail<InvalidArgument>(def.name, "integer uniform bounds must lie within int64, got [", attrs.get_float("minval"),
                          ", ", attrs.get_float("maxval"), ")");
  if (uniform && is_integer(dt)) {
    double lo = attrs.get_float("minval"), hi = attrs.get_float("maxval");
    visit_dtype(dt, def.name, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_integral_v<T>) {
        // samples lie in [minval, maxval): both ends must fit the dtype (maxval may be max + 1)
        if (lo < static_cast<double>(std::numeric_limits<T>::min()) ||
            hi > std::ldexp(1.0, std::numeric_limits<T>::digits))
          fail<InvalidArgument>(def.name, "bounds [", lo, ", ", hi, ") do not fit ", dtype_name(dt));
      }
    });
  }
  if (uniform && is_integer(dt) && !(attrs.get_float("maxval") > attrs.get_float("minval")))
    fail<InvalidArgument>(def.name, "integer uniform needs minval < maxval, got [", attrs.get_float("minval"), ", ",
                          attrs.get_float("maxval"), ")");
  return {TensorType{dt, shape_attr(def, attrs, dt)}};
}

// Element i uses word i % 4 of Philox block i / 4 (normals use pairs for Box-Muller).
void kernel_random_normal(KernelContext& ctx) {
  auto [seed, offset] = stream_of(ctx.attrs);
  Philox gen(seed);
  double mean = ctx.attrs.get_float("mean"), stddev = ctx.attrs.get_float("stddev");
  Tensor& out = ctx.output(0);
  int64_t n = out.num_elements();
  visit_dtype(out.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      T* p = static_cast<T*>(out.mutable_raw_data());
      int64_t pairs = (n + 1) / 2;
      parallel_for(pairs, 4096, [&](int64_t b, int64_t e) {
        for (int64_t j = b; j < e; ++j) {
          Philox::Block w = gen.block(static_cast<uint64_t>(j), offset);
          double u1 = Philox::to_unit_double(w[0], w[1]), u2 = Philox::to_unit_double(w[2], w[3]);
          double r = std::sqrt(-2.0 * std::log(1.0 - u1));  // 1 - u1 is in (0, 1]
          double z0 = r * std::cos(2 * M_PI * u2), z1 = r * std::sin(2 * M_PI * u2);
          p[2 * j] = static_cast<T>(mean + stddev * z0);
          if (2 * j + 1 < n) p[2 * j + 1] = static_cast<T>(mean + stddev * z1);
        }
      });
    }
  });
}

void kernel_random_uniform(KernelContext& ctx) {
  auto [seed, offset] = stream_of(ctx.attrs);
  Philox gen(seed);
  double lo = ctx.attrs.get_float("minval"), hi = ctx.attrs.get_float("maxval");
  Tensor& out = ctx.output(0);
  int64_t n = out.num_elements();
  visit_dtype(out.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!is_complex_v<T> && !std::is_same_v<T, bool>) {
      T* p = static_cast<T*>(out.mutable_raw_data());
      parallel_for((n + 1) / 2, 4096, [&](int64_t b, int64_t e) {
        for (int64_t j = b; j < e; ++j) {
          Philox::Block w = gen.block(static_cast<uint64_t>(j), offset);
          for (int64_t k = 0; k < 2 && 2 * j + k < n; ++k) {
            uint32_t hi32 = w[2 * k], lo32 = w[2 * k + 1];
            if constexpr (std::is_integral_v<T>) {
              // [minval, maxval) by multiply-shift on 64 random bits (bias < 2^-32 for these ranges)
              auto range = static_cast<unsigned __int128>(
                  static_cast<uint64_t>(static_cast<int64_t>(hi) - static_cast<int64_t>(lo)));
              uint64_t r = (uint64_t{hi32} << 32) | lo32;
              auto v = static_cast<uint64_t>((range * r) >> 64);
              p[2 * j + k] = static_cast<T>(static_cast<int64_t>(lo) + static_cast<int64_t>(v));
            } else {
              double u = Philox::to_unit_double(hi32, lo32);
              double v = lo + (hi - lo) * u;
              T t = static_cast<T>(v);
              // rounding to a narrow float can reach maxval; keep the interval half-open
              if (!(static_cast<double>(t) < hi)) t = static_cast<T>(lo);
              p[2 * j + k] = t;
            }
          }
        }
      });
    }
  });
}

OpDef creation_def(int num_inputs, InferFn infer, KernelFn kernel, std::vector<AttrSpec> attrs, uint32_t traits = 0) {
  OpDef d;
  d.num_inputs = num_inputs;
  d.infer = infer;
  d.cpu_kernel = kernel;
  d.attrs = std::move(attrs);
  d.traits = traits;
  return d;
}

}  // namespace

OpDef define_Fill() { return creation_def(1, infer_fill, kernel_fill, {{"shape", AttrKind::Ints}}, kDifferentiable); }
OpDef define_Range() {
  return creation_def(
      0, infer_range, kernel_range,
      {{"start", AttrKind::Float}, {"limit", AttrKind::Float}, {"delta", AttrKind::Float}, {"dtype", AttrKind::Type}});
}
OpDef define_Linspace() {
  return creation_def(
      0, infer_linspace, kernel_linspace,
      {{"start", AttrKind::Float}, {"stop", AttrKind::Float}, {"num", AttrKind::Int}, {"dtype", AttrKind::Type}});
}
OpDef define_Eye() {
  return creation_def(0, infer_eye, kernel_eye,
                      {{"num_rows", AttrKind::Int}, {"num_columns", AttrKind::Int}, {"dtype", AttrKind::Type}});
}
OpDef define_RandomNormal() {
  return creation_def(0, infer_random, kernel_random_normal,
                      {{"shape", AttrKind::Ints},
                       {"dtype", AttrKind::Type},
                       {"seed", AttrKind::Int},
                       {"offset", AttrKind::Int},
                       {"mean", AttrKind::Float},
                       {"stddev", AttrKind::Float}},
                      kStateful);
}
OpDef define_RandomUniform() {
  return creation_def(0, infer_random, kernel_random_uniform,
                      {{"shape", AttrKind::Ints},
                       {"dtype", AttrKind::Type},
                       {"seed", AttrKind::Int},
                       {"offset", AttrKind::Int},
                       {"minval", AttrKind::Float},
                       {"maxval", AttrKind::Float}},
                      kStateful);
}

}  // namespace kiln::ops
