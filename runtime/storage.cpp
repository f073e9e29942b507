// Storage allocation: both the header and the data come from the caching allocator.
#include "runtime/storage.h"

#include "runtime/allocator.h"
#include "runtime/cuda/cuda.h"
#include "runtime/errors.h"

namespace kiln {

namespace {
// The header occupies the first kHeader bytes of a block; owned data follows, still aligned.
constexpr size_t kHeader = (sizeof(void*) * 12 + memory::kAlignment - 1) / memory::kAlignment * memory::kAlignment;
}  // namespace

void Storage::operator delete(Storage* p, std::destroying_delete_t) {
  size_t bytes = p->block_bytes_;
  p->~Storage();
  memory::host_free(p, bytes);
}

Ref<Storage> Storage::allocate(size_t nbytes, Device device) {
  static_assert(sizeof(Storage) <= kHeader);
  if (device.type == DeviceType::GPU) {
    void* p = cuda::device_alloc(nbytes, device.index);
    const int index = device.index;
    return wrap(p, nbytes, device, [nbytes, index](void* q) { cuda::device_free(q, nbytes, index); });
  }
  // one allocator block for header and data: an eager op's output costs a single cache hit
  size_t block = kHeader + nbytes;
  void* mem = memory::host_alloc(block);
  Storage* s = new (mem) Storage();
  s->data_ = static_cast<char*>(mem) + kHeader;
  s->nbytes_ = nbytes;
  s->block_bytes_ = block;
  s->device_ = device;
  s->owned_ = true;
  return Ref<Storage>(s);
}

Ref<Storage> Storage::wrap(void* data, size_t nbytes, Device device, Deleter deleter) {
  void* mem = memory::host_alloc(kHeader);
  Ref<Storage> s(new (mem) Storage());
  s->block_bytes_ = kHeader;
  s->data_ = data;
  s->nbytes_ = nbytes;
  s->device_ = device;
  s->deleter_ = std::move(deleter);
  return s;
}

Storage::~Storage() {
  if (!owned_ && deleter_) deleter_(data_);
}

}  // namespace kiln
