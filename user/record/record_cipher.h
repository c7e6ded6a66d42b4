// TLS 1.3 record protection for one key (one direction, one epoch):
// AEAD with nonce = IV xor seq, the record header as additional data, and the
// inner plaintext content || content type (RFC 8446 §5.2, §5.3).
//
// SMT's seq is message_id << 16 | record_index (CONTRACT §2), so any record of
// any message can be sealed or opened in any order. One EVP_CIPHER_CTX per
// key and direction, keyed once; sealing and opening work in place and never
// allocate.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "common/result.h"
#include "record/key_schedule.h"
#include "record/nonce_oracle.h"

namespace smt {

inline constexpr size_t kTlsHeaderLen = 5;
inline constexpr size_t kTlsTagLen = 16;
inline constexpr uint8_t kContentApplicationData = 23;

/// The composite record sequence number of CONTRACT §2.
inline constexpr uint64_t record_seq(uint64_t message_id, uint16_t record_index) {
  return message_id << 16 | record_index;
}

/// Usage limits of one key (CONTRACT §4), in AES blocks sealed.
inline constexpr uint64_t kRekeyBlocks = 1ULL << 33;
/// 2^34.5, rounded down: past it the key seals nothing more.
inline constexpr uint64_t kSealLimitBlocks = 24296003999ULL;
/// Failed opens past which the receiver asks for a new session.
inline constexpr uint64_t kFailedOpenSoftLimit = 1ULL << 20;
/// RFC 9001 §6.6 integrity limits: failed opens after which a key is spent.
inline constexpr uint64_t kFailedOpenLimitAesGcm = 1ULL << 52;
inline constexpr uint64_t kFailedOpenLimitChaCha = 1ULL << 36;

enum class CipherDirection { kSeal, kOpen };

/// Why a record did not open.
enum class OpenError {
  kMalformed,     ///< bad header, length out of bounds or no content type
  kAuthFailed,    ///< AEAD tag mismatch (counted in failed_opens())
  kWrongContent,  ///< authentic, but not application data
};

/// Usage limits of one key in AES blocks. They can only be lowered below
/// CONTRACT §4's values (RecordCipher::create clamps them), never raised.
struct CipherLimits {
  uint64_t rekey_blocks = kRekeyBlocks;           ///< needs_rekey() from here on
  uint64_t seal_limit_blocks = kSealLimitBlocks;  ///< nothing is sealed past it
};

class RecordCipher {
 public:
  using Limits = CipherLimits;

  /// Keys a cipher for one direction of one epoch.
  static Result<RecordCipher> create(Suite suite, const TrafficKeys& keys, CipherDirection dir,
                                     Limits limits = {});

  RecordCipher(RecordCipher&&) noexcept = default;
  RecordCipher& operator=(RecordCipher&&) noexcept = default;
  ~RecordCipher();

  /// Bytes a record with `content_len` bytes of content occupies.
  static constexpr size_t record_size(size_t content_len) {
    return kTlsHeaderLen + content_len + 1 + kTlsTagLen;
  }

  /// Seals in place. On entry rec[5, 5 + content_len) holds the content and
  /// rec has room for record_size(content_len) bytes; on return it holds the
  /// whole record. Fails (EKEYEXPIRED) once the key's usage limit is reached,
  /// or EMSGSIZE for content over 2^14 bytes.
  Result<size_t> seal(uint64_t seq, uint8_t* rec, size_t content_len);

  /// Seals again a record this key already sealed, over byte-identical
  /// content: the output is the same ciphertext, so σ does not grow (CONTRACT
  /// §4 counts newly sealed records only). The nonce oracle still checks the
  /// content is identical. Callers guarantee that (SealedMessage does).
  Result<size_t> reseal(uint64_t seq, uint8_t* rec, size_t content_len);

  /// Opens rec[0, len) in place; on success returns the content (inside rec).
  /// Trailing zero padding and the content type are removed.
  struct Opened {
    uint8_t* content;
    size_t len;
  };
  Opened open(uint64_t seq, uint8_t* rec, size_t len, OpenError* err);

  Suite suite() const { return suite_; }
  /// σ: Σ(⌈len/16⌉ + 1) over the records sealed with this key.
  uint64_t sealed_blocks() const { return sealed_blocks_; }
  /// σ reached the rekey threshold: the engine moves to the next epoch.
  bool needs_rekey() const { return sealed_blocks_ >= limits_.rekey_blocks; }
  /// Records that failed authentication under this key.
  uint64_t failed_opens() const { return failed_opens_; }
  /// The suite's failed-open integrity limit (RFC 9001 §6.6).
  static constexpr uint64_t failed_open_limit(Suite s) {
    return s == Suite::kChaCha20Poly1305Sha256 ? kFailedOpenLimitChaCha : kFailedOpenLimitAesGcm;
  }
  /// Failed opens reached the integrity limit: the key opens nothing more.
  bool spent() const { return failed_opens_ >= failed_open_limit(suite_); }
  /// Keys/IV identity for the debug nonce oracle (a hash, never the key).
  uint64_t key_id() const { return key_id_; }
  /// Every seal is checked against `oracle`; a nonce reuse aborts the
  /// process. Debug builds (no NDEBUG) attach NonceOracle::global() by default.
  void set_nonce_oracle(NonceOracle* oracle) { oracle_ = oracle; }

 private:
  struct CtxDeleter {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
  };
  RecordCipher() = default;
  void nonce_for(uint64_t seq, uint8_t out[kIvLen]) const;
  Result<size_t> seal_impl(uint64_t seq, uint8_t* rec, size_t content_len, bool fresh);

  std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter> ctx_;
  std::array<uint8_t, kIvLen> iv_{};
  Suite suite_ = Suite::kAes128GcmSha256;
  CipherDirection dir_ = CipherDirection::kSeal;
  Limits limits_;
  uint64_t sealed_blocks_ = 0;
  uint64_t failed_opens_ = 0;
  uint64_t key_id_ = 0;
  NonceOracle* oracle_ = nullptr;
};

}  // namespace smt
