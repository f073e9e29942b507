// Size-class caching allocator. Classes are 2^k * {4,5,6,7}/4 (at most 25% slack); each thread
// keeps a bounded stack of free blocks per class, so the fast path takes no lock.
#include "runtime/allocator.h"

#include <array>
#include <bit>
#include <cstdlib>
#include <new>
#include <vector>

#include "runtime/errors.h"

namespace kiln::memory {
namespace {

constexpr size_t kMinBlock = 64;
constexpr int kNumClasses = 4 * 40;                  // up to 2^46 bytes
constexpr size_t kMaxCachedBytes = size_t{1} << 30;  // per thread
constexpr size_t kMaxCachedBlock = size_t{1} << 28;  // larger blocks go straight back to the OS

// Class index and the block size it stands for.
inline int size_class(size_t n) {
  if (n <= kMinBlock) return 0;
  int k = 63 - std::countl_zero(static_cast<uint64_t>(n - 1));  // 2^k < n <= 2^(k+1)
  size_t base = size_t{1} << k;
  size_t quarter = base / 4;
  int step = static_cast<int>((n - 1 - base) / quarter);  // 0..3
  return (k - 5) * 4 + step;                              // k >= 6 here
}
inline size_t class_bytes(int c) {
  if (c == 0) return kMinBlock;
  int k = c / 4 + 5;
  int step = c % 4;
  size_t base = size_t{1} << k;
  return base + (base / 4) * static_cast<size_t>(step + 1);
}

// Set when this thread's cache has been destroyed (thread exit, or static destruction on the
// main thread): tensors freed after that, e.g. ones with static storage duration, bypass it.
thread_local bool t_cache_gone = false;

struct ThreadCache {
  std::array<std::vector<void*>, kNumClasses> free;
  size_t cached = 0;
  CacheStats stats;
  ~ThreadCache() {
    clear();
    t_cache_gone = true;
  }
  void clear() noexcept {
    for (int c = 0; c < kNumClasses; ++c) {
      for (void* p : free[c]) ::operator delete(p, std::align_val_t(kAlignment));
      free[c].clear();
    }
    cached = 0;
    stats.cached_bytes = 0;
  }
};

ThreadCache& cache() {
  thread_local ThreadCache tc;
  return tc;
}

void* system_alloc(size_t bytes) {
  void* p = ::operator new(bytes, std::align_val_t(kAlignment), std::nothrow);
  if (!p) fail<ResourceExhausted>("allocator", "out of memory allocating ", bytes, " bytes");
  return p;
}

}  // namespace

void* host_alloc(size_t nbytes) {
  int c = size_class(nbytes);
  size_t bytes = class_bytes(c);
  if (bytes <= kMaxCachedBlock && !t_cache_gone) {
    ThreadCache& tc = cache();
    auto& list = tc.free[c];
    if (!list.empty()) {
      void* p = list.back();
      list.pop_back();
      tc.cached -= bytes;
      tc.stats.hits++;
      tc.stats.cached_bytes = tc.cached;
      return p;
    }
    tc.stats.misses++;
  }
  return system_alloc(bytes);
}

void host_free(void* p, size_t nbytes) noexcept {
  if (!p) return;
  int c = size_class(nbytes);
  size_t bytes = class_bytes(c);
  if (bytes <= kMaxCachedBlock && !t_cache_gone) {
    ThreadCache& tc = cache();
    if (tc.cached + bytes <= kMaxCachedBytes) {
      try {
        tc.free[c].push_back(p);
        tc.cached += bytes;
        tc.stats.cached_bytes = tc.cached;
        return;
      } catch (...) {
        // fall through: give the block back to the system
      }
    }
  }
  ::operator delete(p, std::align_val_t(kAlignment));
}

CacheStats thread_cache_stats() { return t_cache_gone ? CacheStats{} : cache().stats; }
void release_thread_cache() noexcept {
  if (!t_cache_gone) cache().clear();
}

}  // namespace kiln::memory
