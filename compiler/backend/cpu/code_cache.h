// The CPU backend's compilation cache: object code by a key of the graph, the target and the
// Kiln version, in memory for the process and, with KILN_CACHE_DIR set, on disk for the next.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "compiler/ir/ir.h"

namespace kiln::backend::cpu {

/// The key of `g`'s code: its structural hash and a hash of its IR text, both with the target
/// (CPU, features, LLVM version) and Kiln's code generator version mixed in.
std::string code_key(const ir::Graph& g);

/// Object code for `key`: from memory, else from the disk cache (when KILN_CACHE_DIR names a
/// trusted folder), else `compile()`, stored in both. `*source` says which ("memory", "disk",
/// "compiled"). The disk folder is trusted only when it is owned by this user and not writable
/// by group or others (created 0700 when missing); otherwise it is ignored with one warning.
/// Entries carry a magic, the key, the size and a checksum; an entry failing any check is
/// ignored (logged) and rewritten.
std::string cached_object(const std::string& key, const std::function<std::string()>& compile,
                          std::string* source = nullptr);

/// Forgets the in-memory entries (tests use it to exercise the disk cache).
void clear_memory_cache();

}  // namespace kiln::backend::cpu
