// Storage: a reference-counted block of device memory that one or more tensors view.
#pragma once

#include <cstddef>
#include <functional>
#include <new>

#include "runtime/device.h"
#include "runtime/ref.h"

namespace kiln {

/// A block of memory. Either owned by the caching allocator, or borrowed from a caller with a
/// deleter (from_blob).
class Storage final : public RefCounted {
 public:
  using Deleter = std::function<void(void*)>;

  /// Allocates `nbytes` on `device` from the caching allocator.
  static Ref<Storage> allocate(size_t nbytes, Device device = kCPU);
  /// Wraps caller memory; `deleter` (may be empty) runs when the last tensor lets go.
  static Ref<Storage> wrap(void* data, size_t nbytes, Device device, Deleter deleter);

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  /// True if no other handle shares this storage (copy-on-write checks this).
  bool unique() const { return use_count() == 1; }

  ~Storage() override;
  /// Storage objects are destroyed through Ref only; owned storage shares one block with its
  /// header, so deletion frees the block with the size it was allocated with.
  static void operator delete(Storage* p, std::destroying_delete_t);

 private:
  Storage() = default;
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  size_t block_bytes_ = 0;  // size of the allocator block holding this object (and owned data)
  Device device_ = kCPU;
  bool owned_ = false;
  Deleter deleter_;
};

}  // namespace kiln
