// OpenSSL pieces of smtd's control channel: TLS 1.3-only contexts with ALPN
// smt/1, ECDSA P-256 certificates, a CA, optional mutual TLS, session tickets
// for psk_dhe_ke resumption (no 0-RTT), and identity checks on the peer's
// certificate (docs/smtd.md "Peer identities").
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "smtd/config.h"

namespace smt::smtd {

inline constexpr const char kAlpn[] = "smt/1";

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};
struct SslSessionDeleter {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;
using SslPtr = std::unique_ptr<SSL, SslDeleter>;
using SslSessionPtr = std::unique_ptr<SSL_SESSION, SslSessionDeleter>;

/// Per-connection verification state, attached to the SSL object.
struct TlsPeerState {
  /// Identities the peer may prove; empty with `any_configured` means any
  /// identity of a configured peer (server side).
  std::vector<std::string> allowed;
  /// Every identity any configured peer may have (server side).
  std::vector<std::string> any_configured;
  /// Set on success: the allowed identity the certificate matched.
  std::string identity;
  /// Why verification failed (certificate error or disallowed identity).
  std::string verify_error;
  /// The last alert sent or received, as on the wire (-1: none).
  int alert = -1;
  bool alert_sent = false;
  /// Receives tickets for resumption (client side).
  std::function<void(SslSessionPtr)> on_ticket;
};

/// Both contexts of one configuration generation (rebuilt on SIGHUP).
struct TlsContexts {
  SslCtxPtr server;
  SslCtxPtr client;
  time_t cert_not_after = 0;  ///< this host's certificate expiry (session lifetime bound)
};

/// Refuses a private key file that is missing, unreadable, not a regular
/// file, or readable or writable by group or others.
Status check_private_key_file(const std::string& path);

/// Loads the certificate, key and CA of `cfg` into new server and client
/// contexts. Errors name the file and the problem.
Result<TlsContexts> make_tls_contexts(const Config& cfg);

/// Attaches `state` (owned by the caller, outliving `ssl`) to `ssl`.
void attach_peer_state(SSL* ssl, TlsPeerState* state);
TlsPeerState* peer_state(SSL* ssl);

/// The identities a certificate proves: "dns:NAME" per SAN DNS name, "uri:URI"
/// per SAN URI, and "cn:NAME" for the subject's common name.
std::vector<std::string> certificate_identities(X509* cert);

/// The first of `allowed` that `cert` proves ("anonymous" matches no
/// certificate), or "".
std::string match_identity(X509* cert, const std::vector<std::string>& allowed);

/// "unknown_ca" for 48 etc.; "alert_N" for numbers without a name.
std::string tls_alert_name(int alert);

/// notAfter of `cert` as a time_t (0 if it cannot be read).
time_t certificate_not_after(const X509* cert);

/// The OpenSSL error queue as one line (and clears it).
std::string openssl_errors();

}  // namespace smt::smtd
