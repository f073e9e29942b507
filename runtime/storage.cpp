// Storage allocation: both the header and the data come from the caching allocator.
#include "runtime/storage.h"

#include "runtime/allocator.h"
#include "runtime/errors.h"

namespace kiln {

void* Storage::operator new(size_t n) { return memory::host_alloc(n); }
void Storage::operator delete(void* p, size_t n) { memory::host_free(p, n); }

Ref<Storage> Storage::allocate(size_t nbytes, Device device) {
  if (device.type != DeviceType::CPU)
    fail<Unimplemented>("allocate", "device ", device.to_string(), " has no allocator in this build");
  Ref<Storage> s(new Storage());
  s->data_ = memory::host_alloc(nbytes);
  s->nbytes_ = nbytes;
  s->device_ = device;
  s->owned_ = true;
  return s;
}

Ref<Storage> Storage::wrap(void* data, size_t nbytes, Device device, Deleter deleter) {
  Ref<Storage> s(new Storage());
  s->data_ = data;
  s->nbytes_ = nbytes;
  s->device_ = device;
  s->deleter_ = std::move(deleter);
  return s;
}

Storage::~Storage() {
  if (owned_) memory::host_free(data_, nbytes_);
  else if (deleter_) deleter_(data_);
}

}  // namespace kiln
