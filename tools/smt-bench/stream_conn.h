// A TCP connection, optionally wrapped in TLS 1.3 (OpenSSL, AES-128-GCM
// only), carrying length-framed messages over a non-blocking socket.
#pragma once

#include <netinet/in.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace smt::bench {

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslCtx = std::unique_ptr<SSL_CTX, SslCtxFree>;
using Ssl = std::unique_ptr<SSL, SslFree>;

struct SslSessionFree {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using SslSession = std::unique_ptr<SSL_SESSION, SslSessionFree>;

/// How a TLS server is set up. Both contexts are TLS 1.3 only,
/// TLS_AES_128_GCM_SHA256 only, key exchange X25519 or P-256, no 0-RTT, and
/// resume with psk_dhe_ke only (as smtd's).
struct TlsServerConfig {
  std::string cert, key;  ///< the server's certificate chain and key (PEM)
  bool tickets = false;   ///< issue one session ticket per handshake (resumption)
  std::string client_ca;  ///< non-empty: require a client certificate signed by this CA
};
Result<SslCtx> tls_server_ctx(const TlsServerConfig& c);

/// How a TLS client is set up.
struct TlsClientConfig {
  std::string ca;         ///< the CA that signed the server's certificate
  std::string cert, key;  ///< non-empty: the client's certificate and key (mutual TLS)
};
Result<SslCtx> tls_client_ctx(const TlsClientConfig& c);

/// One framed connection. Reads and writes never block; the handshake does
/// (bounded by the socket timeouts set before it).
class StreamConn {
 public:
  StreamConn(UniqueFd fd, Ssl ssl) : fd_(std::move(fd)), ssl_(std::move(ssl)) {}

  int fd() const { return fd_.get(); }

  /// Queues `msg` as one frame (its length, then a copy of its bytes) and tries to send.
  Status send_frame(std::span<const uint8_t> msg);
  /// As send_frame, but a large `msg` is sent from the caller's memory
  /// without a copy: it must stay unchanged until has_pending_output() is
  /// false (or the connection is gone). For bulk requests, where a copy per
  /// message would be CPU the stack under test is charged for.
  Status send_frame_borrowed(std::span<const uint8_t> msg);
  /// TLS: sends close_notify (best effort, never blocks); TCP: nothing.
  void close_notify();
  /// Sends queued bytes until the socket would block.
  Status flush();
  bool has_pending_output() const { return out_off_ < out_.size() || !borrowed_.empty(); }

  /// Reads until the socket would block, or `budget` bytes were read, and
  /// hands every complete frame's payload to `on_msg` in order. ECONNRESET
  /// when the peer closed. A server passes a budget so that one streaming
  /// connection cannot starve the others its thread serves.
  Status receive(const std::function<Status(std::span<const uint8_t>)>& on_msg,
                 size_t budget = SIZE_MAX);

 private:
  // >0: bytes moved; 0: would block; error: the connection failed.
  Result<size_t> read_some(uint8_t* buf, size_t len);
  Result<size_t> write_some(const uint8_t* buf, size_t len);
  // Drops output already sent (when all of it was, or more than 1 MiB).
  void compact_output();
  void queue_frame_header(uint32_t len);

  UniqueFd fd_;
  Ssl ssl_;
  std::vector<uint8_t> in_;
  size_t in_len_ = 0;
  // Owned output bytes, with borrowed spans spliced in: each goes out once
  // out_ has been sent up to its `at`.
  struct Borrowed {
    size_t at;
    std::span<const uint8_t> data;
    size_t off = 0;
  };
  std::vector<uint8_t> out_;
  size_t out_off_ = 0;
  std::deque<Borrowed> borrowed_;
};

/// One request and its response on a non-blocking connection that has
/// nothing else outstanding: sends `msg`, waits (poll) until one frame came
/// back, returns its payload. ETIMEDOUT after `timeout_ms` without it.
Result<std::vector<uint8_t>> round_trip(StreamConn& c, std::span<const uint8_t> msg,
                                        int timeout_ms);

/// `host` (dotted IPv4) and `port` as a socket address; EINVAL for anything else.
Result<sockaddr_in> ipv4_endpoint(const std::string& host, uint16_t port);
/// Sets TCP_NODELAY, and O_NONBLOCK when `nonblocking`.
Status tune_socket(int fd, bool nonblocking);
/// Runs the TLS handshake on a blocking socket (bounded by `timeout_ms`)
/// and returns the TLS object; `server_name` (client side) must match the
/// peer's certificate. `prepare`, when set, runs on the new SSL before the
/// handshake (to offer a session for resumption, for instance).
Result<Ssl> tls_handshake(SSL_CTX* ctx, int fd, bool server, const std::string& server_name,
                          int timeout_ms, const std::function<Status(SSL*)>& prepare = {});

}  // namespace smt::bench
