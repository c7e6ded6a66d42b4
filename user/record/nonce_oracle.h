// Debug-only check that no (key, seq) pair is ever sealed over two different
// plaintexts (CONTRACT §2): keeps (key id, seq) -> SHA-256(content).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <span>
#include <unordered_map>

namespace smt {

class NonceOracle {
 public:
  /// Records a seal. Returns false if this (key id, seq) was sealed before
  /// over different content: a nonce reuse.
  bool record(uint64_t key_id, uint64_t seq, std::span<const uint8_t> content);
  size_t size() const;

  /// The process-wide oracle debug builds attach to every sealing cipher.
  static NonceOracle& global();

 private:
  struct KeyHash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& k) const {
      return std::hash<uint64_t>()(k.first * 0x9e3779b97f4a7c15ULL ^ k.second);
    }
  };
  mutable std::mutex mu_;
  std::unordered_map<std::pair<uint64_t, uint64_t>, std::array<uint8_t, 32>, KeyHash> seen_;
};

}  // namespace smt
