// Memory and disk caches of generated code (runtime/code_cache.h).
#include "runtime/code_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <unordered_map>

#include "runtime/errors.h"
#include "runtime/file_io.h"
#include "runtime/logging.h"

namespace kiln::code_cache {
namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'O', 'B', 'J', '1'};
constexpr size_t kMemoryEntries = 256;
constexpr uint64_t kMaxObjectBytes = uint64_t(1) << 30;

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
void warn_once(std::string_view kind, const std::string& dir, const char* why) {
  static std::mutex mu;
  static std::set<std::string>* warned = new std::set<std::string>;
  std::lock_guard lock(mu);
  if (warned->insert(std::string(kind) + dir + why).second)
    logging::warn("[{} cache] KILN_CACHE_DIR '{}' {}; the disk cache is off", kind, dir, why);
}

// The disk folder, or "" when unset or untrusted. Checked on every compilation (a stat is
// nothing next to code generation), so tests and programs may change the variable.
std::string disk_dir(std::string_view kind) {
  const char* env = std::getenv("KILN_CACHE_DIR");
  if (!env || !*env) return "";
  std::string d = env;
  ::mkdir(d.c_str(), 0700);
  struct stat st {};
  if (::stat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    warn_once(kind, d, "is not a folder");
    return "";
  }
  if (st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
    warn_once(kind, d, "is not owned by this user or is writable by others (cached code would run in this process)");
    return "";
  }
  return d;
}

std::string entry_path(const std::string& dir, std::string_view kind, const std::string& key) {
  return dir + "/" + key + "." + std::string(kind) + ".kobj";
}

void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }
uint64_t get_u64(std::string_view s, size_t at) {
  uint64_t v;
  std::memcpy(&v, s.data() + at, 8);
  return v;
}

std::optional<std::string> read_entry(const std::string& dir, std::string_view kind, const std::string& key) {
  const std::string path = entry_path(dir, kind, key), who = std::string(kind) + " cache";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  std::string data;
  try {
    data = io::read_file(path, who, kMaxObjectBytes + 4096);
  } catch (const Error& e) {
    logging::warn("[{}] ignoring {}: {}", who, path, e.what());
    return std::nullopt;
  }
  // magic, key length, key, payload size, payload checksum, payload
  std::string_view s = data;
  auto bad = [&](const char* why) -> std::optional<std::string> {
    logging::warn("[{}] ignoring {}: {}", who, path, why);
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

void write_entry(const std::string& dir, std::string_view kind, const std::string& key, const std::string& object) {
  std::string out(kMagic, 8);
  put_u64(out, key.size());
  out += key;
  put_u64(out, object.size());
  put_u64(out, fnv1a(object));
  out += object;
  try {
    io::write_file_atomic(entry_path(dir, kind, key), out, std::string(kind) + " cache");
  } catch (const Error& e) {
    logging::warn("[{} cache] cannot write {}: {}", kind, entry_path(dir, kind, key), e.what());
  }
}

}  // namespace

uint64_t fnv1a(std::string_view s, uint64_t h) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string cached(std::string_view kind, const std::string& key, const std::function<std::string()>& compile,
                   std::string* source) {
  MemoryCache& m = memory();
  const std::string mkey = std::string(kind) + "/" + key;
  {
    std::lock_guard lock(m.mu);
    auto it = m.objects.find(mkey);
    if (it != m.objects.end()) {
      if (source) *source = "memory";
      return it->second;
    }
  }
  std::optional<std::string> obj;
  std::string dir = disk_dir(kind);
  if (!dir.empty()) obj = read_entry(dir, kind, key);
  if (obj) {
    if (source) *source = "disk";
  } else {
    obj = compile();
    if (source) *source = "compiled";
    if (!dir.empty()) write_entry(dir, kind, key, *obj);
  }
  std::lock_guard lock(m.mu);
  if (m.objects.emplace(mkey, *obj).second) {
    m.order.push_back(mkey);
    if (m.order.size() > kMemoryEntries) {
      m.objects.erase(m.order.front());
      m.order.pop_front();
    }
  }
  return *obj;
}

void clear_memory() {
  MemoryCache& m = memory();
  std::lock_guard lock(m.mu);
  m.objects.clear();
  m.order.clear();
}

}  // namespace kiln::code_cache
