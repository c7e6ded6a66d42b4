#include "record/nonce_oracle.h"

#include <openssl/sha.h>

namespace smt {

bool NonceOracle::record(uint64_t key_id, uint64_t seq, std::span<const uint8_t> content) {
  std::array<uint8_t, 32> h;
  SHA256(content.data(), content.size(), h.data());
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = seen_.emplace(std::make_pair(key_id, seq), h);
  return inserted || it->second == h;
}

size_t NonceOracle::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_.size();
}

NonceOracle& NonceOracle::global() {
  static NonceOracle oracle;
  return oracle;
}

}  // namespace smt
