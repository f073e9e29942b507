// Tensor basics: allocation, host access checks, from_blob.
#include "runtime/tensor.h"

#include <cstring>

#include "runtime/cuda/cuda.h"

#include "runtime/allocator.h"

namespace kiln {

void* TensorImpl::operator new(size_t n) { return memory::host_alloc(n); }
void TensorImpl::operator delete(void* p, size_t n) { memory::host_free(p, n); }

size_t checked_nbytes(std::string_view op, const Shape& shape, DType dtype) {
  int64_t n = 1;
  bool zero = false, overflow = false;
  for (int64_t d : shape) {
    if (d < 0) fail<InvalidArgument>(op, "shape ", shape.to_list_string(), " has a negative dimension");
    if (d == 0)
      zero = true;
    else if (!overflow)
      overflow = __builtin_mul_overflow(n, d, &n);
  }
  if (zero) return 0;
  if (overflow) fail<InvalidArgument>(op, "the element count of shape ", shape.to_list_string(), " overflows int64");
  size_t es = static_cast<size_t>(dtype_size(dtype));
  // keep allocations well inside what the allocator's size classes can express
  if (es != 0 && static_cast<uint64_t>(n) > (uint64_t{1} << 46) / es)
    fail<InvalidArgument>(op, "shape ", shape.to_list_string(), " of ", dtype_name(dtype), " needs ", n,
                          " elements, more than can be allocated");
  return static_cast<size_t>(n) * es;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  if (dtype == DType::String)
    fail<InvalidArgument>("empty",
                          "cannot allocate a string tensor of unknown byte size; build it with "
                          "make_string_tensor (runtime/string_tensor.h)");
  size_t nbytes = checked_nbytes("empty", shape, dtype);
  Ref<TensorImpl> t(new TensorImpl());
  t->dtype = dtype;
  t->shape = shape;
  t->numel = shape.num_elements();
  t->storage = Storage::allocate(nbytes, device);
  t->device = device;
  return Tensor(std::move(t));
}

void copy_into(const Tensor& dst, const Tensor& src) {
  if (dst.dtype() != src.dtype() || dst.nbytes() != src.nbytes())
    fail<Internal>("copy", "copy_into needs equal dtypes and sizes, got ", dtype_name(src.dtype()), " ",
                   src.shape().to_string(), " into ", dtype_name(dst.dtype()), " ", dst.shape().to_string());
  const size_t n = src.nbytes();
  if (n == 0) return;
  void* to = const_cast<void*>(dst.device_data());
  const void* from = src.device_data();
  const Device a = src.device(), b = dst.device();
  if (a.type == DeviceType::CPU && b.type == DeviceType::CPU) {
    std::memmove(to, from, n);
  } else if (a.type == DeviceType::CPU) {
    cuda::copy_host_to_device(to, from, n, b.index);
  } else if (b.type == DeviceType::CPU) {
    cuda::copy_device_to_host(to, from, n, a.index);
  } else if (a.index == b.index) {
    cuda::copy_device_to_device(to, from, n, a.index);
  } else {  // between GPUs through the host: simple, and rare enough
    Tensor host = Tensor::empty(src.shape(), src.dtype());
    copy_into(host, src);
    copy_into(dst, host);
  }
}

Tensor Tensor::to(Device target) const {
  if (device() == target) return *this;
  if (is_symbolic())
    fail<Unimplemented>("to", "copying a symbolic tensor to ", target.to_string(),
                        " inside a traced function is not supported; copy its inputs before the call");
  if (dtype() == DType::String) fail<InvalidArgument>("to", "string tensors stay on the CPU, not ", target.to_string());
  if (target.type == DeviceType::CPU && target.index != 0)
    fail<InvalidArgument>("to", "unknown device ", target.to_string(), " (this machine has CPU:0)");
  if (target.type == DeviceType::GPU) cuda::check_device("to", target.index);
  Tensor out = empty(shape(), dtype(), target);
  copy_into(out, *this);
  return out;
}

void Tensor::throw_undefined() { fail<FailedPrecondition>("tensor", "the tensor is undefined (None)"); }

const void* Tensor::raw_data() const {
  TensorImpl* t = impl();
  if (!t->storage)
    fail<FailedPrecondition>("tensor",
                             "cannot read the value of a symbolic tensor while tracing: its value exists only "
                             "when the graph runs. Use kiln::cond or kiln::while_loop for control flow that "
                             "depends on tensor values");
  if (t->device.type != DeviceType::CPU)
    fail<InvalidArgument>("tensor", "the tensor lives on ", t->device.to_string(),
                          "; copy it to the CPU first with .to(kiln::kCPU)");
  return static_cast<const char*>(t->storage->data()) + t->offset;
}

const void* Tensor::device_data() const {
  TensorImpl* t = impl();
  if (!t->storage) return raw_data();  // the symbolic-tensor error
  return static_cast<const char*>(t->storage->data()) + t->offset;
}

void Tensor::check_access(DType want, const char* what) const {
  if (dtype() != want)
    fail<InvalidArgument>(what, "requested element type ", dtype_name(want), " but the tensor has dtype ",
                          dtype_name(dtype()));
  if (device().type != DeviceType::CPU)
    fail<InvalidArgument>(what, "the tensor lives on ", device().to_string(), "; copy it to the CPU first");
}

Tensor from_blob(void* data, const Shape& shape, DType dtype, std::function<void(void*)> deleter, Device device) {
  if (dtype == DType::String)
    fail<InvalidArgument>("from_blob", "cannot wrap memory as a string tensor; use make_string_tensor");
  size_t nbytes = checked_nbytes("from_blob", shape, dtype);
  if (!data && nbytes) fail<InvalidArgument>("from_blob", "data is null for a non-empty shape ", shape.to_string());
  Ref<TensorImpl> t(new TensorImpl());
  t->dtype = dtype;
  t->shape = shape;
  t->numel = shape.num_elements();
  t->storage = Storage::wrap(data, nbytes, device, std::move(deleter));
  t->device = device;
  return Tensor(std::move(t));
}

}  // namespace kiln
