// Philox4x32-10, the counter-based generator TensorFlow and JAX use: block i of a stream is a
// pure function of (key, counter + i), so random ops are reproducible and parallelize freely.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace kiln {

class Philox {
 public:
  using Block = std::array<uint32_t, 4>;
  explicit Philox(uint64_t seed) : key_{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)} {}

  /// The 4 random words of block number `n` (a 128-bit counter: n plus `offset` << 64).
  Block block(uint64_t n, uint64_t offset = 0) const {
    Block c{static_cast<uint32_t>(n), static_cast<uint32_t>(n >> 32), static_cast<uint32_t>(offset),
            static_cast<uint32_t>(offset >> 32)};
    std::array<uint32_t, 2> k = key_;
    for (int round = 0; round < 10; ++round) {
      uint64_t p0 = uint64_t{kM0} * c[0];
      uint64_t p1 = uint64_t{kM1} * c[2];
      c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
           static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
      k[0] += kW0;
      k[1] += kW1;
    }
    return c;
  }

  /// A float in [0, 1) from 24 random bits.
  static float to_unit_float(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
  /// A double in [0, 1) from 53 random bits.
  static double to_unit_double(uint32_t hi, uint32_t lo) {
    uint64_t v = (uint64_t{hi} << 21) ^ (lo >> 11);
    return static_cast<double>(v & ((uint64_t{1} << 53) - 1)) * (1.0 / 9007199254740992.0);
  }

 private:
  static constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  static constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  std::array<uint32_t, 2> key_;
};

}  // namespace kiln
