// Elementwise op helpers shared by every elementwise definition, the unary ops of
// ops/scalar_fn.def, and `where`.
#include "ops/kernels/cpu/elementwise_kernels.h"

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

#define KILN_UNARY(Id, Fn, Classes, Rule) KILN_DEFINE_UNARY(Id, Fn, Classes, Rule)
#define KILN_BINARY(Id, Fn, Classes, Rule, Traits, Group)
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
    auto plan = cpu::make_plan<4>(ctx.def.name, out.shape(), {&out.shape(), &c.shape(), &x.shape(), &y.shape()});
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
  d.traits = kElementwise | kFusible | kDifferentiable | kStringsByIndex;
  d.num_inputs = 3;
  d.infer = infer_where;
  d.cpu_kernel = kernel_where;
  return d;
}

}  // namespace kiln::ops
