// The CUDA runtime of Kiln: GPUs found through the driver library (loaded at run time, so a
// binary built with the CUDA toolkit still runs where no driver is installed), one primary
// context and one stream per device, a caching device allocator, and host/device copies.
// Without the toolkit at build time every function here reports that no GPU exists.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace kiln::cuda {

/// True if this build was compiled with the CUDA toolkit (KILN_WITH_CUDA).
bool built_with_cuda();

/// Number of usable GPUs: 0 without a CUDA build, without the driver library (libcuda.so.1), or
/// when the driver finds no device. Loads the driver on first use; never throws.
int device_count();

/// Why device_count() is 0 (empty when GPUs exist), for messages and logs.
std::string unavailable_reason();

/// Throws InvalidArgument naming `who` when `index` is not a usable GPU (the message says why
/// there are none, if there are none).
void check_device(std::string_view who, int index);

/// Makes GPU `index`'s primary context current on this thread (cheap when it already is).
void set_device(int index);

/// The stream every Kiln kernel, copy and library call on GPU `index` runs on (a CUstream).
void* stream(int index);

/// Waits for everything queued on GPU `index`'s stream; throws Internal naming `who` when a
/// kernel failed.
void synchronize(int index, std::string_view who = "cuda");

/// Device memory from the caching allocator (256-byte aligned; 0 bytes allowed). Throws
/// ResourceExhausted naming the size when the device is out of memory even after the cache is
/// released.
void* device_alloc(size_t nbytes, int index);
/// Returns a block from device_alloc with the size it was allocated with. Reuse is ordered by
/// the device's stream, so a block freed while a kernel still reads it is safe.
void device_free(void* p, size_t nbytes, int index) noexcept;

/// Statistics of one device's allocator.
struct MemoryStats {
  size_t allocated_bytes = 0;  // in blocks handed out now
  size_t cached_bytes = 0;     // in blocks kept for reuse
  size_t peak_bytes = 0;       // highest allocated_bytes so far
  uint64_t hits = 0;           // allocations served from the cache
  uint64_t misses = 0;         // allocations that asked the driver
};
MemoryStats memory_stats(int index);
/// Gives every cached block of every device back to the driver.
void empty_cache();

/// Copies between host and device memory on GPU `index`'s stream. Host-bound copies wait for
/// the stream, so the host buffer is filled on return.
void copy_host_to_device(void* dst, const void* src, size_t nbytes, int index);
void copy_device_to_host(void* dst, const void* src, size_t nbytes, int index);
void copy_device_to_device(void* dst, const void* src, size_t nbytes, int index);

/// A CUDA graph: GPU work captured once and replayed with one launch.
class CapturedGraph {
 public:
  CapturedGraph(void* exec, int device) : exec_(exec), device_(device) {}
  ~CapturedGraph();
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;
  /// Queues the captured work on the device's stream; throws Internal naming `who` when the
  /// driver refuses.
  void launch(std::string_view who) const;

 private:
  void* exec_;  // CUgraphExec
  int device_;
};

/// Captures the work that `work` queues on GPU `index` from this thread into a CUDA graph,
/// without running it: while it runs, stream(index) on this thread is a capture stream, and
/// device_alloc and synchronize for that GPU throw Internal (a graph cannot replay either, so
/// work that allocates or waits is not capturable). Other threads keep using the device
/// normally. Throws what `work` throws, and Internal naming `who` when the driver refuses the
/// capture; the capture is abandoned either way.
std::unique_ptr<CapturedGraph> capture_graph(int index, std::string_view who, const std::function<void()>& work);

}  // namespace kiln::cuda
