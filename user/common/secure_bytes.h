// Fixed-capacity secret storage: wiped on destruction and on reassignment.
#pragma once

#include <openssl/crypto.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace smt {

/// Up to 64 bytes of key material (the largest TLS 1.3 hash is SHA-384, 48
/// bytes), wiped when destroyed or overwritten; a copy is wiped likewise.
/// Not yet mlock'ed or excluded from core dumps (CONTRACT §7): smtd's
/// locked key arena will own long-lived secrets.
class SecretBytes {
 public:
  static constexpr size_t kCapacity = 64;
  SecretBytes() = default;
  SecretBytes(std::span<const uint8_t> s) { assign(s); }  // NOLINT
  SecretBytes(const SecretBytes& o) { assign(o.span()); }
  SecretBytes& operator=(const SecretBytes& o) {
    if (this != &o) assign(o.span());
    return *this;
  }
  ~SecretBytes() { OPENSSL_cleanse(buf_.data(), buf_.size()); }

  /// Copies s (truncated to kCapacity, which callers never exceed).
  void assign(std::span<const uint8_t> s) {
    OPENSSL_cleanse(buf_.data(), buf_.size());
    len_ = s.size() < kCapacity ? s.size() : kCapacity;
    if (len_ != 0) std::memcpy(buf_.data(), s.data(), len_);
  }
  void resize(size_t n) { len_ = n < kCapacity ? n : kCapacity; }
  std::span<const uint8_t> span() const { return {buf_.data(), len_}; }
  std::span<uint8_t> mutable_span() { return {buf_.data(), len_}; }
  const uint8_t* data() const { return buf_.data(); }
  uint8_t* data() { return buf_.data(); }
  size_t size() const { return len_; }
  bool operator==(const SecretBytes& o) const {
    return len_ == o.len_ && CRYPTO_memcmp(buf_.data(), o.buf_.data(), len_) == 0;
  }

 private:
  std::array<uint8_t, kCapacity> buf_{};
  size_t len_ = 0;
};

}  // namespace smt
