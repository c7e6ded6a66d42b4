// The bytes smt-echo sends: a pseudo-random pattern per (seed, size, index),
// so a test can regenerate every payload and look for it on the wire.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace smt::echo {

/// splitmix64: cheap, well mixed, and the same everywhere.
inline uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// Payload number `index` of `size` bytes in a run seeded with `seed`.
inline std::vector<uint8_t> echo_payload(uint64_t seed, size_t size, uint64_t index) {
  uint64_t state = seed ^ (uint64_t(size) << 20) ^ (index * 0x2545f4914f6cdd1dull);
  std::vector<uint8_t> v(size);
  for (size_t i = 0; i < size; i += 8) {
    const uint64_t r = splitmix64(&state);
    for (size_t k = 0; k < 8 && i + k < size; ++k) v[i + k] = static_cast<uint8_t>(r >> (8 * k));
  }
  return v;
}

}  // namespace smt::echo
