// The op registry: a table built once from op_list.def, so a missing definition fails to link.
#include <array>

#include "ops/kernels/cuda/kernels.h"
#include "ops/op_def.h"

namespace kiln::ops {
namespace {

const std::vector<OpDef>& table() {
  static const std::vector<OpDef> t = [] {
    std::vector<OpDef> v;
    v.reserve(kNumOps);
#define KILN_OP(Id, nm)                                                                               \
  {                                                                                                   \
    OpDef d = define_##Id();                                                                          \
    d.id = OpId::Id;                                                                                  \
    d.name = nm;                                                                                      \
    if (!d.cuda_kernel) d.cuda_kernel = cuda::kernel_for(OpId::Id);                                   \
    KILN_CHECK(d.infer != nullptr && d.cpu_kernel != nullptr, "registry", "op " nm " is incomplete"); \
    v.push_back(std::move(d));                                                                        \
  }
#include "ops/op_list.def"
#undef KILN_OP
    return v;
  }();
  return t;
}

}  // namespace

const OpDef& op_def(OpId id) { return table()[static_cast<size_t>(id)]; }

const OpDef& op_def(std::string_view name) {
  for (const OpDef& d : table())
    if (d.name == name) return d;
  fail<NotFound>("registry", "no op named '", name, "'");
}

std::span<const OpDef> all_ops() { return table(); }

}  // namespace kiln::ops
