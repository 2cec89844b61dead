#pragma once
// Independent, reproducible random streams: one seed per (run seed, purpose or index), so a
// resumed run or a batch sampled alone draws exactly what it drew in the full run.
#include <cstdint>

namespace lingshu {

// splitmix64 of (seed, index).
inline uint64_t mix_seed(uint64_t seed, uint64_t index) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace lingshu
