// Memory and disk caches of generated object code (compiler/backend/cpu/code_cache.h).
#include "compiler/backend/cpu/code_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <unordered_map>

#include "compiler/backend/cpu/codegen.h"
#include "runtime/file_io.h"
#include "runtime/logging.h"

namespace kiln::backend::cpu {
namespace {

// Bumped whenever generated code changes meaning for the same graph.
constexpr const char* kCodegenVersion = "kiln-cpu-3";
constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'O', 'B', 'J', '1'};
constexpr size_t kMemoryEntries = 256;
constexpr uint64_t kMaxObjectBytes = uint64_t(1) << 30;

uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

struct MemoryCache {
  std::mutex mu;
  std::unordered_map<std::string, std::string> objects;
  std::deque<std::string> order;
};
MemoryCache& memory() {
  static MemoryCache* m = new MemoryCache;
  return *m;
}

// Warns once per folder and reason.
void warn_once(const std::string& dir, const char* why) {
  static std::mutex mu;
  static std::set<std::string>* warned = new std::set<std::string>;
  std::lock_guard lock(mu);
  if (warned->insert(dir + why).second)
    logging::warn("[cpu cache] KILN_CACHE_DIR '{}' {}; the disk cache is off", dir, why);
}

// The disk folder, or "" when unset or untrusted. Checked on every compilation (a stat is
// nothing next to code generation), so tests and programs may change the variable.
std::string disk_dir() {
  const char* env = std::getenv("KILN_CACHE_DIR");
  if (!env || !*env) return "";
  std::string d = env;
  ::mkdir(d.c_str(), 0700);
  struct stat st {};
  if (::stat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    warn_once(d, "is not a folder");
    return "";
  }
  if (st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
    warn_once(d, "is not owned by this user or is writable by others (cached code would run in this process)");
    return "";
  }
  return d;
}

std::string entry_path(const std::string& dir, const std::string& key) { return dir + "/" + key + ".kobj"; }

void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }
uint64_t get_u64(std::string_view s, size_t at) {
  uint64_t v;
  std::memcpy(&v, s.data() + at, 8);
  return v;
}

std::optional<std::string> read_entry(const std::string& dir, const std::string& key) {
  std::string path = entry_path(dir, key);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  std::string data;
  try {
    data = io::read_file(path, "cpu cache", kMaxObjectBytes + 4096);
  } catch (const Error& e) {
    logging::warn("[cpu cache] ignoring {}: {}", path, e.what());
    return std::nullopt;
  }
  // magic, key length, key, payload size, payload checksum, payload
  std::string_view s = data;
  auto bad = [&](const char* why) -> std::optional<std::string> {
    logging::warn("[cpu cache] ignoring {}: {}", path, why);
    return std::nullopt;
  };
  if (s.size() < 8 + 8 || std::memcmp(s.data(), kMagic, 8) != 0) return bad("not a Kiln code cache entry");
  uint64_t klen = get_u64(s, 8);
  if (klen != key.size() || s.size() < 16 + klen + 16) return bad("truncated or for another key");
  if (s.substr(16, klen) != key) return bad("for another key");
  size_t at = 16 + klen;
  uint64_t size = get_u64(s, at), sum = get_u64(s, at + 8);
  at += 16;
  if (size != s.size() - at) return bad("size mismatch (truncated?)");
  std::string_view payload = s.substr(at);
  if (fnv1a(payload) != sum) return bad("checksum mismatch");
  return std::string(payload);
}

void write_entry(const std::string& dir, const std::string& key, const std::string& object) {
  std::string out(kMagic, 8);
  put_u64(out, key.size());
  out += key;
  put_u64(out, object.size());
  put_u64(out, fnv1a(object));
  out += object;
  try {
    io::write_file_atomic(entry_path(dir, key), out, "cpu cache");
  } catch (const Error& e) {
    logging::warn("[cpu cache] cannot write {}: {}", entry_path(dir, key), e.what());
  }
}

}  // namespace

std::string code_key(const ir::Graph& g) {
  std::string salt = std::string(kCodegenVersion) + "|" + target_id();
  uint64_t a = fnv1a(salt, g.structural_hash());
  uint64_t b = fnv1a(g.to_string(), fnv1a(salt));
  return hex(a) + hex(b);
}

std::string cached_object(const std::string& key, const std::function<std::string()>& compile, std::string* source) {
  MemoryCache& m = memory();
  {
    std::lock_guard lock(m.mu);
    auto it = m.objects.find(key);
    if (it != m.objects.end()) {
      if (source) *source = "memory";
      return it->second;
    }
  }
  std::optional<std::string> obj;
  std::string dir = disk_dir();
  if (!dir.empty()) obj = read_entry(dir, key);
  if (obj) {
    if (source) *source = "disk";
  } else {
    obj = compile();
    if (source) *source = "compiled";
    if (!dir.empty()) write_entry(dir, key, *obj);
  }
  std::lock_guard lock(m.mu);
  if (m.objects.emplace(key, *obj).second) {
    m.order.push_back(key);
    if (m.order.size() > kMemoryEntries) {
      m.objects.erase(m.order.front());
      m.order.pop_front();
    }
  }
  return *obj;
}

void clear_memory_cache() {
  MemoryCache& m = memory();
  std::lock_guard lock(m.mu);
  m.objects.clear();
  m.order.clear();
}

}  // namespace kiln::backend::cpu
