#include "record/key_schedule.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <cstring>
#include <memory>

#include "common/bytes.h"

namespace smt {
namespace {

constexpr SuiteInfo kSuites[] = {
    {Suite::kAes128GcmSha256, "TLS_AES_128_GCM_SHA256", "SHA256", "AES-128-GCM", 16, 32},
    {Suite::kAes256GcmSha384, "TLS_AES_256_GCM_SHA384", "SHA384", "AES-256-GCM", 32, 48},
    {Suite::kChaCha20Poly1305Sha256, "TLS_CHACHA20_POLY1305_SHA256", "SHA256", "ChaCha20-Poly1305",
     32, 32},
};

struct KdfDeleter {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

}  // namespace

const SuiteInfo* suite_info(Suite s) {
  for (const auto& info : kSuites) {
    if (info.suite == s) return &info;
  }
  return nullptr;
}

Status hkdf_expand_label(Suite s, std::span<const uint8_t> secret, std::string_view label,
                         std::span<const uint8_t> context, std::span<uint8_t> out) {
  const SuiteInfo* info = suite_info(s);
  if (info == nullptr) return make_error(EINVAL, "unknown cipher suite");
  // HkdfLabel: uint16 length, opaque label<7..255> = "tls13 " + label,
  // opaque context<0..255> (RFC 8446 §7.1).
  constexpr std::string_view kPrefix = "tls13 ";
  if (out.size() > 0xffff || kPrefix.size() + label.size() > 255 || context.size() > 255) {
    return make_error(EINVAL, "HKDF-Expand-Label argument too long");
  }
  uint8_t info_buf[2 + 1 + 255 + 1 + 255];
  size_t n = 0;
  store_be16(info_buf, static_cast<uint16_t>(out.size()));
  n += 2;
  info_buf[n++] = static_cast<uint8_t>(kPrefix.size() + label.size());
  std::memcpy(info_buf + n, kPrefix.data(), kPrefix.size());
  n += kPrefix.size();
  std::memcpy(info_buf + n, label.data(), label.size());
  n += label.size();
  info_buf[n++] = static_cast<uint8_t>(context.size());
  if (!context.empty()) std::memcpy(info_buf + n, context.data(), context.size());
  n += context.size();

  std::unique_ptr<EVP_KDF, KdfDeleter> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return make_error(EIO, "OpenSSL has no HKDF");
  std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return make_error(ENOMEM, "EVP_KDF_CTX_new failed");
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(info->digest), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(secret.data()),
                                        secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info_buf, n),
      OSSL_PARAM_construct_end(),
  };
  int rc = EVP_KDF_derive(ctx.get(), out.data(), out.size(), params);
  OPENSSL_cleanse(info_buf, sizeof info_buf);
  if (rc != 1) return make_error(EIO, "HKDF-Expand-Label failed");
  return {};
}

Result<TrafficKeys> derive_traffic_keys(Suite s, std::span<const uint8_t> secret) {
  const SuiteInfo* info = suite_info(s);
  if (info == nullptr) return make_error(EINVAL, "unknown cipher suite");
  TrafficKeys k;
  k.key.resize(info->key_len);
  if (auto st = hkdf_expand_label(s, secret, "key", {}, k.key.mutable_span()); !st) {
    return st.error();
  }
  if (auto st = hkdf_expand_label(s, secret, "iv", {}, k.iv); !st) return st.error();
  return k;
}

Result<SecretBytes> next_traffic_secret(Suite s, std::span<const uint8_t> secret) {
  const SuiteInfo* info = suite_info(s);
  if (info == nullptr) return make_error(EINVAL, "unknown cipher suite");
  SecretBytes next;
  next.resize(info->hash_len);
  if (auto st = hkdf_expand_label(s, secret, "traffic upd", {}, next.mutable_span()); !st) {
    return st.error();
  }
  return next;
}

std::array<uint8_t, 48> session_context_bytes(const SessionContextInput& in, size_t* len) {
  std::array<uint8_t, 48> b{};
  size_t n = 0;
  b[n++] = in.version;
  store_be16(&b[n], static_cast<uint16_t>(in.suite));
  n += 2;
  std::memcpy(&b[n], in.initiator_addr.data(), 16);
  n += 16;
  store_be16(&b[n], in.initiator_port);
  n += 2;
  std::memcpy(&b[n], in.responder_addr.data(), 16);
  n += 16;
  store_be16(&b[n], in.responder_port);
  n += 2;
  b[n++] = in.protocol;
  store_be64(&b[n], in.serial);
  n += 8;
  *len = n;
  return b;
}

Result<SessionSecrets> derive_session_secrets(std::span<const uint8_t> root,
                                              const SessionContextInput& in) {
  const SuiteInfo* info = suite_info(in.suite);
  if (info == nullptr) return make_error(EINVAL, "unknown cipher suite");
  if (root.size() != info->hash_len) {
    return make_error(EINVAL, "exporter root must be Hash.length bytes");
  }
  size_t len = 0;
  auto bytes = session_context_bytes(in, &len);
  SessionSecrets out;
  out.ctx.resize(info->hash_len);
  unsigned int md_len = 0;
  std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> md(EVP_MD_fetch(nullptr, info->digest, nullptr),
                                                     &EVP_MD_free);
  if (!md || EVP_Digest(bytes.data(), len, out.ctx.data(), &md_len, md.get(), nullptr) != 1 ||
      md_len != info->hash_len) {
    return make_error(EIO, "context hash failed");
  }
  struct Item {
    SecretBytes* dst;
    const char* label;
    size_t len;
  } items[] = {
      {&out.initiator_secret, "smt i ap", info->hash_len},
      {&out.responder_secret, "smt r ap", info->hash_len},
      {&out.initiator_ctl, "smt i ctl", 16},
      {&out.responder_ctl, "smt r ctl", 16},
  };
  for (auto& it : items) {
    it.dst->resize(it.len);
    if (auto st =
            hkdf_expand_label(in.suite, root, it.label, out.ctx.span(), it.dst->mutable_span());
        !st) {
      return st.error();
    }
  }
  return out;
}

}  // namespace smt
