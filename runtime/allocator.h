// The caching host allocator: 64-byte-aligned blocks in size classes, kept in per-thread caches
// so a fresh op output reuses warm memory instead of page-faulting a new mapping on every call.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln::memory {

inline constexpr size_t kAlignment = 64;

/// Allocates at least `nbytes` (0 allowed), aligned to kAlignment. Throws ResourceExhausted
/// (naming the size) when the system has no memory for it.
void* host_alloc(size_t nbytes);
/// Returns a block from host_alloc; `nbytes` must be the size it was allocated with.
void host_free(void* p, size_t nbytes) noexcept;

/// Statistics of the calling thread's cache.
struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  size_t cached_bytes = 0;
};
CacheStats thread_cache_stats();
/// Frees every block cached by the calling thread.
void release_thread_cache() noexcept;

}  // namespace kiln::memory
