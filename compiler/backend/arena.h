// Arena planning shared by the backends: intermediates whose lifetimes do not overlap share
// memory in one block per call, placed by first fit.
#pragma once

#include <cstddef>
#include <span>

namespace kiln::backend {

inline constexpr size_t kArenaAlign = 64;

/// One intermediate: its size in bytes and the steps [begin, end] during which it is live.
struct ArenaBlock {
  size_t size = 0, begin = 0, end = 0;
  size_t offset = 0;  // set by plan_arena, a multiple of kArenaAlign
};

/// Gives each block the lowest aligned offset that overlaps no block live at the same time
/// (blocks are placed in order). Returns the arena's size in bytes.
size_t plan_arena(std::span<ArenaBlock> blocks);

}  // namespace kiln::backend
