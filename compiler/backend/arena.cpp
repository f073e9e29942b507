// First-fit arena placement (compiler/backend/arena.h).
#include "compiler/backend/arena.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace kiln::backend {

size_t plan_arena(std::span<ArenaBlock> blocks) {
  size_t total = 0;
  std::vector<std::pair<size_t, size_t>> busy;
  for (size_t i = 0; i < blocks.size(); ++i) {
    ArenaBlock& blk = blocks[i];
    size_t bytes = (blk.size + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
    busy.clear();
    for (size_t j = 0; j < i; ++j)
      if (blocks[j].begin <= blk.end && blk.begin <= blocks[j].end)
        busy.emplace_back(blocks[j].offset, blocks[j].offset + blocks[j].size);
    std::sort(busy.begin(), busy.end());
    size_t off = 0;
    for (auto [b0, b1] : busy) {
      if (off + bytes <= b0) break;
      off = std::max(off, b1);
    }
    blk.offset = off;
    blk.size = bytes;
    total = std::max(total, off + bytes);
  }
  return total;
}

}  // namespace kiln::backend
