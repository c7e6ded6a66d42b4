// --leak-check: does any decrypted plaintext appear in the raw capture?
// Every 16-byte window of every decrypted message at a 16-byte stride is
// remembered; then every offset of the capture file is looked up. A leak of
// 31 or more consecutive plaintext bytes anywhere in the file (any framing,
// any offset) contains one of those windows, so it is found.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/result.h"

namespace smt::decode {

struct LeakScan {
  uint64_t windows = 0;  ///< distinct plaintext windows looked for
  uint64_t bytes = 0;    ///< capture bytes scanned
  uint64_t found = 0;    ///< capture offsets holding one of them
};

class PlaintextWindows {
 public:
  /// At most this many windows are kept (memory bound); later ones are counted
  /// in skipped().
  static constexpr size_t kMaxWindows = size_t{1} << 24;

  void add(std::span<const uint8_t> plaintext);
  size_t size() const { return set_.size(); }
  uint64_t skipped() const { return skipped_; }
  /// Scans the whole file at `path`.
  Result<LeakScan> scan_file(const std::string& path) const;

 private:
  struct Hash {
    size_t operator()(const std::array<uint8_t, 16>& w) const;
  };
  std::unordered_set<std::array<uint8_t, 16>, Hash> set_;
  std::vector<uint64_t> prefilter_ = std::vector<uint64_t>(kPrefilterBits / 64);  // bit per hash
  static constexpr size_t kPrefilterBits = size_t{1} << 24;
  uint64_t skipped_ = 0;
};

}  // namespace smt::decode
