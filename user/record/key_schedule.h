// TLS 1.3 key schedule pieces SMT uses (RFC 8446 §7.1, §7.3) and the SMT
// session derivations of CONTRACT §1 (docs/key-schedule.md is the spec).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/result.h"
#include "common/secure_bytes.h"

namespace smt {

/// TLS 1.3 cipher suites SMT supports (IANA code points).
enum class Suite : uint16_t {
  kAes128GcmSha256 = 0x1301,
  kAes256GcmSha384 = 0x1302,
  kChaCha20Poly1305Sha256 = 0x1303,
};

struct SuiteInfo {
  Suite suite;
  const char* name;    ///< IANA name, e.g. "TLS_AES_128_GCM_SHA256"
  const char* digest;  ///< OpenSSL digest name
  const char* cipher;  ///< OpenSSL cipher name
  size_t key_len;
  size_t hash_len;
};

/// The suite's parameters, or nullptr for an unknown code point.
const SuiteInfo* suite_info(Suite s);

inline constexpr size_t kIvLen = 12;

/// HKDF-Expand-Label(secret, label, context, out.size()) with the suite's hash;
/// "tls13 " is prefixed to label here.
Status hkdf_expand_label(Suite s, std::span<const uint8_t> secret, std::string_view label,
                         std::span<const uint8_t> context, std::span<uint8_t> out);

/// Key and IV of one epoch of one direction.
struct TrafficKeys {
  SecretBytes key;
  std::array<uint8_t, kIvLen> iv{};
  TrafficKeys() = default;
  TrafficKeys(const TrafficKeys&) = default;
  TrafficKeys& operator=(const TrafficKeys&) = default;
  ~TrafficKeys() { OPENSSL_cleanse(iv.data(), iv.size()); }
};

/// key = HKDF-Expand-Label(secret, "key", "", key_len), iv = (secret, "iv", "", 12).
Result<TrafficKeys> derive_traffic_keys(Suite s, std::span<const uint8_t> secret);

/// secret_{n+1} = HKDF-Expand-Label(secret_n, "traffic upd", "", Hash.length).
Result<SecretBytes> next_traffic_secret(Suite s, std::span<const uint8_t> secret);

/// The inputs of a session's context hash (CONTRACT §1). Addresses are 16
/// bytes, IPv4 as IPv4-mapped IPv6.
struct SessionContextInput {
  uint8_t version = 1;
  Suite suite = Suite::kAes128GcmSha256;
  std::array<uint8_t, 16> initiator_addr{};
  uint16_t initiator_port = 0;
  std::array<uint8_t, 16> responder_addr{};
  uint16_t responder_port = 0;
  uint8_t protocol = 253;
  uint64_t serial = 0;
};

/// The 48 bytes hashed into ctx, in order: version(1) suite(2) initiator
/// addr(16) port(2) responder addr(16) port(2) protocol(1) serial(8).
std::array<uint8_t, 48> session_context_bytes(const SessionContextInput& in, size_t* len);

/// What smtd hands an engine for one session (CONTRACT §1).
struct SessionSecrets {
  SecretBytes ctx;               ///< Hash(context bytes)
  SecretBytes initiator_secret;  ///< secret_i_0
  SecretBytes responder_secret;  ///< secret_r_0
  SecretBytes initiator_ctl;     ///< k_ctl_i (16 bytes, SipHash key)
  SecretBytes responder_ctl;     ///< k_ctl_r
};

/// Derives a session's secrets from the connection's exporter root.
Result<SessionSecrets> derive_session_secrets(std::span<const uint8_t> root,
                                              const SessionContextInput& in);

}  // namespace smt
