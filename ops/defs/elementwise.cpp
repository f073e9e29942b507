// Elementwise ops generated from ops/scalar_fn.def, plus `where`: inference (dtype classes,
// broadcasting) and CPU kernels over the broadcasting loops.
#include <algorithm>

#include "ops/defs/elementwise_common.h"
#include "ops/kernels/cpu/loops.h"
#include "ops/kernels/cpu/scalar_fn.h"

namespace kiln::ops {

std::string describe_classes(unsigned mask) {
  std::string s;
  auto add = [&](const char* n) { s += s.empty() ? n : std::string(", ") + n; };
  if (mask & B) add("bool");
  if (mask & S) add("int8/16/32/64");
  if (mask & U) add("uint8/16/32/64");
  if (mask & F) add("float16/bfloat16/float32/float64");
  if (mask & C) add("complex64/128");
  return s;
}

void check_dtype_class(std::string_view op, std::string_view what, DType d, unsigned mask) {
  if (!(dtype_class(d) & mask))
    fail<InvalidArgument>(op, what, " has dtype ", dtype_name(d), ", which ", op, " does not accept (expected ",
                          describe_classes(mask), ")");
}

void check_same_dtype(std::string_view op, const Tensor& x, const Tensor& y) {
  if (x.dtype() != y.dtype())
    fail<InvalidArgument>(op, "x has dtype ", dtype_name(x.dtype()), " but y has dtype ", dtype_name(y.dtype()),
                          "; both operands must have the same dtype (use kiln::cast)");
}

namespace {

enum class OutRule { Same, ToBool, ToReal, ToFloat };

DType out_dtype(OutRule rule, DType in) {
  switch (rule) {
    case OutRule::Same:
      return in;
    case OutRule::ToBool:
      return DType::Bool;
    case OutRule::ToReal:
      return real_dtype(in);
    case OutRule::ToFloat:
      if (!is_integer(in)) return in;
      return (in == DType::Int8 || in == DType::Int16 || in == DType::UInt8 || in == DType::UInt16) ? DType::Float32
                                                                                                     : DType::Float64;
  }
  return in;
}

// The C++ storage type of the output for input storage type T, given the functor's result R
// computed in compute type Cm.
template <class T, class Cm, class R>
using out_storage_t = std::conditional_t<std::is_same_v<R, Cm>, T, R>;

template <class Fn, unsigned Classes, OutRule Rule>
TypeList infer_unary(const OpDef& def, const Attrs&, std::span<const Tensor> in) {
  check_dtype_class(def.name, "x", in[0].dtype(), Classes);
  return {TensorType{out_dtype(Rule, in[0].dtype()), in[0].shape()}};
}

template <class Fn, unsigned Classes, OutRule Rule>
void kernel_unary(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  Tensor& y = ctx.output(0);
  visit_dtype(x.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr ((dtype_class_of<T>() & Classes) != 0) {
      using Cm = cpu::compute_t<T>;
      using R = decltype(Fn{}(Cm{}));
      using O = out_storage_t<T, Cm, R>;
      const T* src = static_cast<const T*>(x.raw_data());
      O* dst = static_cast<O*>(y.mutable_raw_data());
      parallel_for(x.num_elements(), cpu::kParallelGrain, [&](int64_t b, int64_t e) {
        Fn fn;
        for (int64_t i = b; i < e; ++i) dst[i] = static_cast<O>(fn(static_cast<Cm>(src[i])));
      });
    }
  });
}

template <class Fn, unsigned Classes, OutRule Rule>
TypeList infer_binary(const OpDef& def, const Attrs&, std::span<const Tensor> in) {
  check_same_dtype(def.name, in[0], in[1]);
  check_dtype_class(def.name, "x", in[0].dtype(), Classes);
  return {TensorType{out_dtype(Rule, in[0].dtype()), broadcast_shapes(def.name, in[0].shape(), in[1].shape())}};
}

// Integer division and modulo by zero, and integer powers with negative exponents, are errors.
template <class Fn, class T>
void precheck_binary(std::string_view op, const Tensor& y) {
  if constexpr (cpu::is_int_v<T> &&
                (std::is_same_v<Fn, cpu::FloorDivFn> || std::is_same_v<Fn, cpu::ModFn>)) {
    const T* p = static_cast<const T*>(y.raw_data());
    if (std::find(p, p + y.num_elements(), T(0)) != p + y.num_elements())
      fail<InvalidArgument>(op, "integer division by zero");
  }
  if constexpr (cpu::is_signed_int_v<T> && std::is_same_v<Fn, cpu::PowFn>) {
    const T* p = static_cast<const T*>(y.raw_data());
    if (std::any_of(p, p + y.num_elements(), [](T v) { return v < 0; }))
      fail<InvalidArgument>(op, "integers to negative integer powers are not allowed");
  }
}

template <class Fn, class Cm, class T, class O>
void binary_row(int64_t n, const T* a, const T* b, O* o, int64_t sa, int64_t sb) {
  Fn fn;
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) o[i] = static_cast<O>(fn(static_cast<Cm>(a[i]), static_cast<Cm>(b[i])));
  } else if (sa == 0 && sb == 1) {
    const Cm av = static_cast<Cm>(a[0]);
    for (int64_t i = 0; i < n; ++i) o[i] = static_cast<O>(fn(av, static_cast<Cm>(b[i])));
  } else if (sa == 1 && sb == 0) {
    const Cm bv = static_cast<Cm>(b[0]);
    for (int64_t i = 0; i < n; ++i) o[i] = static_cast<O>(fn(static_cast<Cm>(a[i]), bv));
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = static_cast<O>(fn(static_cast<Cm>(a[i * sa]), static_cast<Cm>(b[i * sb])));
  }
}

template <class Fn, unsigned Classes, OutRule Rule>
void kernel_binary(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  const Tensor& y = ctx.inputs[1];
  visit_dtype(x.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr ((dtype_class_of<T>() & Classes) != 0) {
      // integer true division computes in the output's float type
      using Cm = std::conditional_t<Rule == OutRule::ToFloat && cpu::is_int_v<T>,
                                    std::conditional_t<(sizeof(T) <= 2), float, double>, cpu::compute_t<T>>;
      using R = decltype(Fn{}(Cm{}, Cm{}));
      using O = std::conditional_t<std::is_same_v<R, Cm> && !cpu::is_int_v<T>, T, R>;
      precheck_binary<Fn, T>(ctx.def.name, y);
      Tensor& out = ctx.output(0);
      const T* a = static_cast<const T*>(x.raw_data());
      const T* b = static_cast<const T*>(y.raw_data());
      O* o = static_cast<O*>(out.mutable_raw_data());
      if (x.shape() == y.shape()) {  // the common case: no broadcasting
        parallel_for(out.num_elements(), cpu::kParallelGrain,
                     [&](int64_t s, int64_t e) { binary_row<Fn, Cm>(e - s, a + s, b + s, o + s, 1, 1); });
        return;
      }
      if (x.num_elements() == 1 || y.num_elements() == 1) {
        int64_t sa = x.num_elements() == 1 ? 0 : 1, sb = y.num_elements() == 1 ? 0 : 1;
        parallel_for(out.num_elements(), cpu::kParallelGrain, [&](int64_t s, int64_t e) {
          binary_row<Fn, Cm>(e - s, a + s * sa, b + s * sb, o + s, sa, sb);
        });
        return;
      }
      auto plan = cpu::make_plan<3>(out.shape(), {&out.shape(), &x.shape(), &y.shape()});
      cpu::run_plan<3>(plan, {reinterpret_cast<char*>(o), (char*)a, (char*)b},
                       {int64_t(sizeof(O)), int64_t(sizeof(T)), int64_t(sizeof(T))},
                       [&](int64_t n, const std::array<char*, 3>& p, const std::array<int64_t, 3>& st) {
                         binary_row<Fn, Cm>(n, reinterpret_cast<const T*>(p[1]), reinterpret_cast<const T*>(p[2]),
                                            reinterpret_cast<O*>(p[0]), st[1], st[2]);
                       });
    }
  });
}

constexpr uint32_t kElementwiseTraits = kElementwise | kFusible | kDifferentiable;

}  // namespace

#define KILN_UNARY(Id, Fn, Classes, Rule)                                                   \
  OpDef define_##Id() {                                                                     \
    OpDef d;                                                                                \
    d.traits = kElementwiseTraits;                                                          \
    d.num_inputs = 1;                                                                       \
    d.infer = infer_unary<cpu::Fn, Classes, OutRule::Rule>;                                 \
    d.cpu_kernel = kernel_unary<cpu::Fn, Classes, OutRule::Rule>;                           \
    return d;                                                                               \
  }
#define KILN_BINARY(Id, Fn, Classes, Rule, Traits)                                          \
  OpDef define_##Id() {                                                                     \
    OpDef d;                                                                                \
    d.traits = kElementwiseTraits | (Traits);                                               \
    d.num_inputs = 2;                                                                       \
    d.infer = infer_binary<cpu::Fn, Classes, OutRule::Rule>;                                \
    d.cpu_kernel = kernel_binary<cpu::Fn, Classes, OutRule::Rule>;                          \
    return d;                                                                               \
  }
#include "ops/scalar_fn.def"
#undef KILN_UNARY
#undef KILN_BINARY

// ---------------------------------------------------------------------------------------------
// where(cond, x, y)

namespace {
TypeList infer_where(const OpDef& def, const Attrs&, std::span<const Tensor> in) {
  if (in[0].dtype() != DType::Bool)
    fail<InvalidArgument>(def.name, "condition must be bool, got ", dtype_name(in[0].dtype()));
  check_same_dtype(def.name, in[1], in[2]);
  Shape s = broadcast_shapes(def.name, in[0].shape(), in[1].shape());
  return {TensorType{in[1].dtype(), broadcast_shapes(def.name, s, in[2].shape())}};
}

void kernel_where(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  const Tensor &c = ctx.inputs[0], &x = ctx.inputs[1], &y = ctx.inputs[2];
  visit_dtype(out.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    auto plan = cpu::make_plan<4>(out.shape(), {&out.shape(), &c.shape(), &x.shape(), &y.shape()});
    int64_t es = sizeof(T);
    cpu::run_plan<4>(plan,
                     {static_cast<char*>(out.mutable_raw_data()), static_cast<char*>(c.mutable_raw_data()),
                      static_cast<char*>(x.mutable_raw_data()), static_cast<char*>(y.mutable_raw_data())},
                     {es, 1, es, es}, [](int64_t n, const std::array<char*, 4>& p, const std::array<int64_t, 4>& st) {
                       T* o = reinterpret_cast<T*>(p[0]);
                       const bool* cc = reinterpret_cast<const bool*>(p[1]);
                       const T* xx = reinterpret_cast<const T*>(p[2]);
                       const T* yy = reinterpret_cast<const T*>(p[3]);
                       for (int64_t i = 0; i < n; ++i) o[i] = cc[i * st[1]] ? xx[i * st[2]] : yy[i * st[3]];
                     });
  });
}
}  // namespace

OpDef define_Where() {
  OpDef d;
  d.traits = kElementwise | kFusible | kDifferentiable;
  d.num_inputs = 3;
  d.infer = infer_where;
  d.cpu_kernel = kernel_where;
  return d;
}

}  // namespace kiln::ops
