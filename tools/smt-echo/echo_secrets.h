// TEST-ONLY until smtd exists: session secrets for smt-echo, derived from one
// shared key file so both ends compute the same secrets without a handshake.
//
// Each session's four secrets are HMAC-SHA256(key, label || ctx) with ctx =
// initiator addr(16) || port(2) || responder addr(16) || port(2) || serial(8),
// so sessions between different addresses or ports never share keys. Nothing
// here is fresh per run: running the same pair again with the same key file
// and serial reuses nonces under the same keys. Use a new key file
// (`smt-echo genkey`) or a new --serial for every run on a real network.
#pragma once

#include <string>

#include "common/result.h"
#include "common/secure_bytes.h"
#include "lib/peer_addr.h"
#include "lib/smt_test_session.h"

namespace smt::echo {

/// Reads a key file: hex digits (whitespace ignored) of exactly 32 bytes.
Result<SecretBytes> read_key_file(const std::string& path);

/// A fresh random key.
Result<SecretBytes> new_key();

/// A fresh random key as 64 hex digits and a newline.
Result<std::string> new_key_hex();

/// The secrets of the session between `initiator` (the client) and
/// `responder` (the server). `identity` must outlive the result's use.
Result<smt_test_secrets> derive_secrets(const SecretBytes& key, const lib::PeerAddr& initiator,
                                        const lib::PeerAddr& responder, uint64_t serial,
                                        bool this_host_initiates, const char* identity);

}  // namespace smt::echo
