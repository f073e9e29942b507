// Helpers shared by the libFuzzer targets under fuzz/: a byte reader that never runs past the
// input, splitting one input into several files, and the check that stops on a broken invariant.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/errors.h"

namespace kiln::fuzz {

/// Reports a broken invariant and aborts, so that libFuzzer (or the replay ctest) records the
/// input as a crash. Used for checks a typed error must never replace (a round trip).
[[noreturn]] inline void invariant_failed(const char* what, const char* file, int line) {
  std::fprintf(stderr, "fuzz invariant failed at %s:%d: %s\n", file, line, what);
  std::abort();
}

/// Checks `cond`; aborts naming it when false.
#define KILN_FUZZ_CHECK(cond) ((cond) ? (void)0 : ::kiln::fuzz::invariant_failed(#cond, __FILE__, __LINE__))

/// Reads values off the front of a fuzz input; past the end every read yields zeros, so any
/// input decodes to something.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  uint8_t u8() { return n_ ? (--n_, *p_++) : 0; }
  uint16_t u16() { return uint16_t(u8() | (uint16_t(u8()) << 8)); }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t(u8()) << (8 * i);
    return v;
  }
  bool flag() { return u8() & 1; }
  /// Up to `max` bytes (fewer at the end of the input).
  std::string_view bytes(size_t max) {
    size_t k = std::min(max, n_);
    std::string_view s(reinterpret_cast<const char*>(p_), k);
    p_ += k;
    n_ -= k;
    return s;
  }
  size_t left() const { return n_; }

 private:
  const uint8_t* p_;
  size_t n_;
};

/// The separator that splits one input into the files of a multi-file target (saved_model).
inline constexpr std::string_view kSplit = "\n#KILN-FUZZ-SPLIT#\n";

/// Splits `data` at each kSplit into exactly `parts` pieces (missing pieces are empty; the last
/// piece keeps any further separators).
inline std::vector<std::string> split_input(const uint8_t* data, size_t size, size_t parts) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> out;
  while (out.size() + 1 < parts) {
    size_t at = s.find(kSplit);
    if (at == std::string_view::npos) break;
    out.emplace_back(s.substr(0, at));
    s.remove_prefix(at + kSplit.size());
  }
  out.emplace_back(s);
  out.resize(parts);
  return out;
}

}  // namespace kiln::fuzz
