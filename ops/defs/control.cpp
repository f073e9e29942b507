// Control and I/O primitives: `call` (run a compiled function as one op), `print` and `assert`
// (I/O effects that traced graphs keep and order with the I/O token).
#include <algorithm>
#include <iostream>
#include <mutex>
#include <string_view>
#include <variant>

#include "ops/call.h"
#include "ops/op_def.h"
#include "runtime/printing.h"

namespace kiln::ops {
namespace {

// The callee. Whoever applies the op supplies it (ops::apply is public, and IR text cannot hold
// one), so a missing or wrong attribute is a caller's mistake: InvalidArgument, not Internal.
const CallTarget& target_of(const OpDef& def, const Attrs& attrs) {
  const CallTarget* t = nullptr;
  for (size_t i = 0; i < attrs.size(); ++i)
    if (attrs.at(i).first == "function")
      if (const ObjectRef* o = std::get_if<ObjectRef>(&attrs.at(i).second))
        t = dynamic_cast<const CallTarget*>(o->get());
  if (!t) fail<InvalidArgument>(def.name, "needs a 'function' attribute holding a compiled function (a CallTarget)");
  return *t;
}

TypeList infer_call(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const CallTarget& target = target_of(def, attrs);
  try {
    return target.output_types(in);
  } catch (const InvalidArgument& e) {
    // a callee checks its arguments in its own name; the op's errors start with the op's name
    if (e.component() == def.name) throw;
    const std::string_view what = e.what();
    fail<InvalidArgument>(def.name, "function '", target.name(),
                          "': ", what.substr(std::min(what.size(), e.component().size() + 3)));
  }
}

void kernel_call(KernelContext& ctx) {
  TensorList out = target_of(ctx.def, ctx.attrs).run(ctx.inputs);
  if (out.size() != ctx.outputs.size())
    fail<Internal>(ctx.def.name, "function returned ", out.size(), " values, expected ", ctx.outputs.size());
  for (size_t i = 0; i < out.size(); ++i) ctx.set_output(i, std::move(out[i]));
}

TypeList infer_print(const OpDef&, const Attrs&, std::span<const Tensor>) { return {}; }

// One lock so that lines printed from several threads do not interleave.
std::mutex g_print_mu;

void kernel_print(KernelContext& ctx) {
  std::string line = ctx.attrs.get_string("message");
  for (const Tensor& t : ctx.inputs) {
    if (!line.empty()) line += ' ';
    line += numpy_str(t);
  }
  line += '\n';
  std::lock_guard lock(g_print_mu);
  std::cout << line << std::flush;
}

TypeList infer_assert(const OpDef& def, const Attrs&, std::span<const Tensor> in) {
  if (in[0].dtype() != DType::Bool)
    fail<InvalidArgument>(def.name, "the condition must be a bool tensor, got ", dtype_name(in[0].dtype()));
  return {};
}

void kernel_assert(KernelContext& ctx) {
  const Tensor& c = ctx.inputs[0];
  const bool* p = c.data<bool>();
  for (int64_t i = 0; i < c.num_elements(); ++i)
    if (!p[i]) {
      std::string where = c.ndim() ? " at index " + multi_index_string(i, c.shape()) : "";
      fail<InvalidArgument>(ctx.def.name, ctx.attrs.get_string("message"), " (condition false", where, ")");
    }
}

}  // namespace

OpDef define_Call() {
  OpDef d;
  d.traits = kVariadic | kStateful | kDifferentiable;
  d.num_inputs = -1;
  d.attrs = {{"function", AttrKind::Object}};
  d.infer = infer_call;
  d.cpu_kernel = kernel_call;
  d.cuda_kernel = kernel_call;  // the callee's executable runs where its inputs are
  return d;
}

OpDef define_Print() {
  OpDef d;
  d.traits = kVariadic | kStateful | kIO;
  d.num_inputs = -1;
  d.attrs = {{"message", AttrKind::String}};
  d.infer = infer_print;
  d.cpu_kernel = kernel_print;
  return d;
}

OpDef define_Assert() {
  OpDef d;
  d.traits = kStateful | kIO;
  d.num_inputs = 1;
  d.attrs = {{"message", AttrKind::String}};
  d.infer = infer_assert;
  d.cpu_kernel = kernel_assert;
  return d;
}

}  // namespace kiln::ops
