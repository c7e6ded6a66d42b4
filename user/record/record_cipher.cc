#include "record/record_cipher.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/bytes.h"
#include "common/fault.h"
#include "smt/wire.h"

namespace smt {

Result<RecordCipher> RecordCipher::create(Suite suite, const TrafficKeys& keys, CipherDirection dir,
                                          Limits limits) {
  const SuiteInfo* info = suite_info(suite);
  if (info == nullptr) return make_error(EINVAL, "unknown cipher suite");
  if (keys.key.size() != info->key_len) return make_error(EINVAL, "key length does not fit suite");
  RecordCipher c;
  c.suite_ = suite;
  c.dir_ = dir;
  c.iv_ = keys.iv;
  c.limits_.rekey_blocks = std::min(limits.rekey_blocks, kRekeyBlocks);
  c.limits_.seal_limit_blocks = std::min(limits.seal_limit_blocks, kSealLimitBlocks);
  c.ctx_.reset(EVP_CIPHER_CTX_new());
  if (!c.ctx_) return make_error(ENOMEM, "EVP_CIPHER_CTX_new failed");
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, info->cipher, nullptr);
  if (cipher == nullptr) return make_error(EIO, std::string("OpenSSL lacks ") + info->cipher);
  int ok = dir == CipherDirection::kSeal
               ? EVP_EncryptInit_ex(c.ctx_.get(), cipher, nullptr, keys.key.data(), nullptr)
               : EVP_DecryptInit_ex(c.ctx_.get(), cipher, nullptr, keys.key.data(), nullptr);
  EVP_CIPHER_free(cipher);
  if (ok != 1) return make_error(EIO, "AEAD key setup failed");
  // An identity for the debug nonce oracle: a hash of key and IV, so two
  // ciphers over the same key compare equal without exposing the key.
  uint8_t digest[SHA256_DIGEST_LENGTH];
  uint8_t buf[SecretBytes::kCapacity + kIvLen];
  std::memcpy(buf, keys.key.data(), keys.key.size());
  std::memcpy(buf + keys.key.size(), keys.iv.data(), kIvLen);
  SHA256(buf, keys.key.size() + kIvLen, digest);
  OPENSSL_cleanse(buf, sizeof buf);
  std::memcpy(&c.key_id_, digest, sizeof c.key_id_);
#ifndef NDEBUG
  if (dir == CipherDirection::kSeal) c.oracle_ = &NonceOracle::global();
#endif
  return c;
}

RecordCipher::~RecordCipher() { OPENSSL_cleanse(iv_.data(), iv_.size()); }

void RecordCipher::nonce_for(uint64_t seq, uint8_t out[kIvLen]) const {
  // RFC 8446 §5.3: the 64-bit seq, big-endian, left-padded to the IV length,
  // XORed with the IV.
  std::memcpy(out, iv_.data(), kIvLen);
  for (int i = 0; i < 8; ++i) out[kIvLen - 1 - i] ^= static_cast<uint8_t>(seq >> (8 * i));
}

Result<size_t> RecordCipher::seal(uint64_t seq, uint8_t* rec, size_t content_len) {
  return seal_impl(seq, rec, content_len, true);
}

Result<size_t> RecordCipher::reseal(uint64_t seq, uint8_t* rec, size_t content_len) {
  return seal_impl(seq, rec, content_len, false);
}

Result<size_t> RecordCipher::seal_impl(uint64_t seq, uint8_t* rec, size_t content_len, bool fresh) {
  if (dir_ != CipherDirection::kSeal) return make_error(EINVAL, "cipher is for opening");
  if (content_len > SMT_RECORD_MAX_CONTENT) return make_error(EMSGSIZE, "record too large");
  const size_t inner_len = content_len + 1;
  const uint64_t blocks = (inner_len + 15) / 16 + 1;
  if (fresh && sealed_blocks_ + blocks > limits_.seal_limit_blocks) {
    return make_error(EKEYEXPIRED, "key reached its AEAD usage limit; sealing refused");
  }
  if (oracle_ != nullptr && !oracle_->record(key_id_, seq, {rec + kTlsHeaderLen, content_len})) {
    std::fprintf(stderr, "smt: nonce reuse: seq %#llx sealed twice over different plaintext\n",
                 static_cast<unsigned long long>(seq));
    std::abort();
  }
  const size_t ct_len = inner_len + kTlsTagLen;
  rec[0] = kContentApplicationData;
  store_be16(rec + 1, 0x0303);
  store_be16(rec + 3, static_cast<uint16_t>(ct_len));
  rec[kTlsHeaderLen + content_len] = kContentApplicationData;

  uint8_t nonce[kIvLen];
  nonce_for(seq, nonce);
  EVP_CIPHER_CTX* ctx = ctx_.get();
  int outl = 0;
  uint8_t* body = rec + kTlsHeaderLen;
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) != 1 ||
      EVP_EncryptUpdate(ctx, nullptr, &outl, rec, kTlsHeaderLen) != 1 ||
      EVP_EncryptUpdate(ctx, body, &outl, body, static_cast<int>(inner_len)) != 1 ||
      EVP_EncryptFinal_ex(ctx, body + outl, &outl) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTlsTagLen, body + inner_len) != 1) {
    // Never leave plaintext in a buffer a caller might send.
    OPENSSL_cleanse(body, inner_len);
    return make_error(EIO, "AEAD seal failed");
  }
  if (fresh) sealed_blocks_ += blocks;
  return kTlsHeaderLen + ct_len;
}

RecordCipher::Opened RecordCipher::open(uint64_t seq, uint8_t* rec, size_t len, OpenError* err) {
  Opened none{nullptr, 0};
  // Bounds first: header, at least a content type and a tag, length field
  // consistent with the buffer, inner plaintext at most 2^14 + 1 bytes
  // (RFC 8446 §5.4: more is record_overflow).
  if (dir_ != CipherDirection::kOpen || len < kTlsHeaderLen + 1 + kTlsTagLen ||
      rec[0] != kContentApplicationData || load_be16(rec + 1) != 0x0303 ||
      load_be16(rec + 3) != len - kTlsHeaderLen ||
      len - kTlsHeaderLen - kTlsTagLen > SMT_RECORD_MAX_CONTENT + 1) {
    *err = OpenError::kMalformed;
    return none;
  }
  const size_t inner_len = len - kTlsHeaderLen - kTlsTagLen;
  uint8_t* body = rec + kTlsHeaderLen;
  uint8_t nonce[kIvLen];
  nonce_for(seq, nonce);
  EVP_CIPHER_CTX* ctx = ctx_.get();
  int outl = 0;
  bool ok = EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) == 1 &&
            EVP_DecryptUpdate(ctx, nullptr, &outl, rec, kTlsHeaderLen) == 1 &&
            EVP_DecryptUpdate(ctx, body, &outl, body, static_cast<int>(inner_len)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kTlsTagLen, body + inner_len) == 1;
  int fin = ok ? EVP_DecryptFinal_ex(ctx, body + outl, &outl) : 0;
#if defined(SMT_FAULT_NO_AEAD_CHECK)
  fin = ok ? 1 : 0;  // deliberate fault: accept forged records
#endif
  if (fin != 1) {
    ++failed_opens_;
    OPENSSL_cleanse(body, inner_len);  // never hand out unauthenticated plaintext
    *err = OpenError::kAuthFailed;
    return none;
  }
  // Strip zero padding; the last non-zero byte is the content type.
  size_t n = inner_len;
  while (n > 0 && body[n - 1] == 0) --n;
  if (n == 0) {
    *err = OpenError::kMalformed;
    return none;
  }
  if (body[n - 1] != kContentApplicationData) {
    *err = OpenError::kWrongContent;
    return none;
  }
  return Opened{body, n - 1};
}

}  // namespace smt
