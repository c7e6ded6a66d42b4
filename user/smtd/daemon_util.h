// Small helpers shared by the daemon's source files.
#pragma once

#include <arpa/inet.h>
#include <openssl/evp.h>

#include <array>
#include <cstring>
#include <string>

#include "smt/wire.h"
#include "smtd/app_protocol.h"
#include "smtd/daemon.h"

namespace smt::smtd {

/// The sessions_hash key of session `n` on the host with address `local`.
inline smt_session_key map_key(const Addr16& local, const SessionName& n) {
  smt_session_key k;
  std::memset(&k, 0, sizeof k);
  std::memcpy(k.local_addr, local.data(), 16);
  std::memcpy(k.remote_addr, n.peer_addr.data(), 16);
  k.local_port = htons(n.local_port);
  k.remote_port = htons(n.peer_port);
  return k;
}

/// SHA-256 of a holder token: what smtd keeps instead of the token.
inline std::array<uint8_t, 32> token_digest(const uint8_t* token) {
  std::array<uint8_t, 32> d{};
  unsigned int len = 0;
  EVP_Digest(token, SMTD_APP_TOKEN_LEN, d.data(), &len, EVP_sha256(), nullptr);
  return d;
}

/// "port 40000 <-> 10.0.0.2:5000" for logs.
inline std::string describe(const SessionName& n) {
  return "port " + std::to_string(n.local_port) + " <-> " +
         format_endpoint({n.peer_addr, n.peer_port});
}

}  // namespace smt::smtd
