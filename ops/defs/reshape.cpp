// Reshape: the same elements under a new shape. Tensors are always contiguous, so the result is
// a view of the input's storage (no copy).
#include "ops/op_def.h"

namespace kiln::ops {
namespace {

TypeList infer_reshape(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Shape& from = in[0].shape();
  const std::vector<int64_t>& requested = attrs.get_ints("shape");
  Shape to(requested);
  std::string req = "[";
  for (size_t i = 0; i < requested.size(); ++i) req += (i ? ", " : "") + std::to_string(requested[i]);
  req += "]";
  int64_t unknown = -1, known = 1;
  for (int64_t i = 0; i < to.rank(); ++i) {
    int64_t d = to.dim(i);
    if (d == -1) {
      if (unknown >= 0) fail<InvalidArgument>(def.name, "only one dimension can be -1, got shape ", req);
      unknown = i;
    } else if (d < 0) {
      fail<InvalidArgument>(def.name, "invalid dimension ", d, " in shape ", req);
    } else {
      if (d != 0 && known > INT64_MAX / d)
        fail<InvalidArgument>(def.name, "the element count of shape ", req, " overflows int64");
      known *= d;
    }
  }
  if (!from.is_fully_defined()) {  // tracing with unknown dims: trust the requested shape
    return {TensorType{in[0].dtype(), to}};
  }
  int64_t n = from.num_elements();
  if (unknown >= 0) {
    if (known == 0 || n % known != 0)
      fail<InvalidArgument>(def.name, "cannot reshape a tensor with ", n, " elements to shape ", req);
    to.mut(static_cast<size_t>(unknown)) = n / known;
  } else if (known != n) {
    fail<InvalidArgument>(def.name, "cannot reshape a tensor with ", n, " elements to shape ", req);
  }
  return {TensorType{in[0].dtype(), to}};
}

void kernel_reshape(KernelContext& ctx) {
  const TensorImpl* src = ctx.inputs[0].impl();
  Ref<TensorImpl> t(new TensorImpl());
  t->dtype = src->dtype;
  t->shape = ctx.types[0].shape;
  t->numel = src->numel;
  t->storage = src->storage;
  t->offset = src->offset;
  t->device = src->device;
  ctx.set_output(0, Tensor(std::move(t)));
}

}  // namespace

OpDef define_Reshape() {
  OpDef d;
  d.num_inputs = 1;
  d.traits = kView | kDifferentiable | kStrings;  // a view: string storage does not depend on the shape
  d.attrs = {{"shape", AttrKind::Ints}};
  d.infer = infer_reshape;
  d.cpu_kernel = kernel_reshape;
  return d;
}

// ---- stop_gradient: the same value as a new tensor that gradient tapes do not look through

namespace {
TypeList infer_identity(const OpDef&, const Attrs&, std::span<const Tensor> in) {
  return {TensorType{in[0].dtype(), in[0].shape()}};
}
}  // namespace

OpDef define_StopGradient() {
  OpDef d;
  d.num_inputs = 1;
  d.traits = kView | kStrings;
  d.infer = infer_identity;
  d.cpu_kernel = kernel_reshape;  // a view with the inferred (unchanged) shape
  return d;
}

}  // namespace kiln::ops
