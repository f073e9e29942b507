// Templates behind the elementwise ops generated from ops/scalar_fn.def: dtype-class checks,
// output dtype rules, and the unary/binary CPU kernels over the broadcasting loops. Included by
// the few translation units that instantiate them (split so the build runs them in parallel).
#pragma once

#include <algorithm>

#include "ops/defs/elementwise_common.h"
#include "ops/kernels/cpu/loops.h"
#include "ops/kernels/cpu/scalar_fn.h"

namespace kiln::ops::elementwise {

enum class OutRule { Same, ToBool, ToReal, ToFloat };

inline DType out_dtype(OutRule rule, DType in) {
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
  if constexpr (cpu::is_int_v<T> && (std::is_same_v<Fn, cpu::FloorDivFn> || std::is_same_v<Fn, cpu::ModFn>)) {
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
        parallel_for(out.num_elements(), cpu::kParallelGrain,
                     [&](int64_t s, int64_t e) { binary_row<Fn, Cm>(e - s, a + s * sa, b + s * sb, o + s, sa, sb); });
        return;
      }
      auto plan = cpu::make_plan<3>(ctx.def.name, out.shape(), {&out.shape(), &x.shape(), &y.shape()});
      cpu::run_plan<3>(plan, {reinterpret_cast<char*>(o), (char*)a, (char*)b},
                       {int64_t(sizeof(O)), int64_t(sizeof(T)), int64_t(sizeof(T))},
                       [&](int64_t n, const std::array<char*, 3>& p, const std::array<int64_t, 3>& st) {
                         binary_row<Fn, Cm>(n, reinterpret_cast<const T*>(p[1]), reinterpret_cast<const T*>(p[2]),
                                            reinterpret_cast<O*>(p[0]), st[1], st[2]);
                       });
    }
  });
}

}  // namespace kiln::ops::elementwise

// Emits `OpDef define_<Id>()` for one line of scalar_fn.def.
#define KILN_DEFINE_UNARY(Id, Fn, Classes, Rule)                                  \
  OpDef define_##Id() {                                                           \
    using namespace elementwise;                                                  \
    OpDef d;                                                                      \
    d.traits = kElementwise | kFusible | ((Classes) == B ? 0u : kDifferentiable); \
    d.num_inputs = 1;                                                             \
    d.infer = infer_unary<cpu::Fn, Classes, OutRule::Rule>;                       \
    d.cpu_kernel = kernel_unary<cpu::Fn, Classes, OutRule::Rule>;                 \
    return d;                                                                     \
  }
#define KILN_DEFINE_BINARY(Id, Fn, Classes, Rule, Traits)                                     \
  OpDef define_##Id() {                                                                       \
    using namespace elementwise;                                                              \
    OpDef d;                                                                                  \
    d.traits = kElementwise | kFusible | (Traits) |                                           \
               ((OutRule::Rule == OutRule::ToBool || (Classes) == B) ? 0u : kDifferentiable); \
    d.num_inputs = 2;                                                                         \
    d.infer = infer_binary<cpu::Fn, Classes, OutRule::Rule>;                                  \
    d.cpu_kernel = kernel_binary<cpu::Fn, Classes, OutRule::Rule>;                            \
    return d;                                                                                 \
  }
