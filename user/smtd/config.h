// smtd's configuration file (docs/smtd.md "Configuration" is the reference):
// an INI-style text of [sections] and `key = value` lines. Parsing is strict:
// an unknown section or key, a bad value or a missing required key is an
// error naming the file and line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "smtd/address.h"

namespace smt::smtd {

/// A peer smtd this one may talk to.
struct PeerConfig {
  std::string name;                     ///< from [peer NAME]
  Addr16 address{};                     ///< the peer host's SMT address (OPEN initiator/responder)
  std::optional<Endpoint> control;      ///< where its smtd listens (TCP); absent: accept only
  std::vector<std::string> identities;  ///< "dns:NAME", "uri:URI", "cn:NAME" or "anonymous"
};

/// What one local uid may do on the unix socket.
struct UidRule {
  uint32_t uid = 0;
  bool any_port = false;                             ///< ports = any
  std::vector<std::pair<uint16_t, uint16_t>> ports;  ///< inclusive ranges it may lease
  bool ephemeral = false;                            ///< may ask for an ephemeral port
  bool trusted = false;                              ///< may get AF_XDP sockets (CONTRACT §7)
};

struct Config {
  // [local]
  Addr16 address{};   ///< this host's SMT address
  Endpoint listen{};  ///< TCP endpoint for peer smtds
  std::string certificate;
  std::string key;
  std::string ca;
  bool mutual_tls = true;
  std::string ciphersuites = "TLS_AES_128_GCM_SHA256";
  uint8_t protocol = 253;
  uint32_t reconnect_interval_s = 3600;
  uint32_t idle_timeout_s = 600;
  uint32_t adopt_grace_s = 60;
  uint32_t handshake_timeout_s = 10;
  uint32_t open_timeout_s = 10;
  uint16_t ephemeral_first = 49152;
  uint16_t ephemeral_last = 65535;
  std::vector<PeerConfig> peers;
  std::vector<UidRule> uids;

  /// The peer whose SMT address is `a`, or nullptr.
  const PeerConfig* peer_by_address(const Addr16& a) const;
  /// The rule for `uid`, or nullptr (such a uid may do nothing).
  const UidRule* rule_for(uint32_t uid) const;
};

/// Parses config text; `origin` names it in errors ("smtd.conf").
Result<Config> parse_config(std::string_view text, const std::string& origin);
/// Reads and parses a config file.
Result<Config> load_config(const std::string& path);

/// True if `uid` may lease `port` (0 = an ephemeral port) under `cfg`.
bool may_lease(const Config& cfg, uint32_t uid, uint16_t port);

}  // namespace smt::smtd
