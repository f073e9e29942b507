// Caches of generated code (the CPU backend's object code, the CUDA backend's cubins): by key,
// in memory for the process and, with KILN_CACHE_DIR set, on disk for the next.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace kiln::code_cache {

/// Code for `key` in cache `kind` ("cpu", "cuda": it names the log lines, "[cpu cache]", and
/// the disk entries, "<key>.<kind>.kobj"): from memory, else from the disk cache (when
/// KILN_CACHE_DIR names a trusted folder), else `compile()`, stored in both. `*source` says
/// which ("memory", "disk", "compiled"). The disk folder is trusted only when it is owned by
/// this user and not writable by group or others (created 0700 when missing); otherwise it is
/// ignored with one warning. Entries carry a magic, the key, the size and a checksum; an entry
/// failing any check is ignored (logged) and rewritten.
std::string cached(std::string_view kind, const std::string& key, const std::function<std::string()>& compile,
                   std::string* source = nullptr);

/// Forgets every in-memory entry (tests use it to exercise the disk cache).
void clear_memory();

/// 64-bit FNV-1a of `s` continuing from `h`, and a value as 16 hex digits (for keys).
uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull);
std::string hex(uint64_t v);

}  // namespace kiln::code_cache
