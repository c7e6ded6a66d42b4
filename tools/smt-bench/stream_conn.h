// A TCP connection, optionally wrapped in TLS 1.3 (OpenSSL, AES-128-GCM
// only), carrying length-framed messages over a non-blocking socket.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
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

/// A TLS 1.3-only server context, TLS_AES_128_GCM_SHA256 only, no session tickets.
Result<SslCtx> tls_server_ctx(const std::string& cert, const std::string& key);
/// A TLS 1.3-only client context that verifies the server against `ca`.
Result<SslCtx> tls_client_ctx(const std::string& ca);

/// One framed connection. Reads and writes never block; the handshake does
/// (bounded by the socket timeouts set before it).
class StreamConn {
 public:
  StreamConn(UniqueFd fd, Ssl ssl) : fd_(std::move(fd)), ssl_(std::move(ssl)) {}

  int fd() const { return fd_.get(); }

  /// Queues `msg` as one frame (its length, then its bytes) and tries to send.
  Status send_frame(std::span<const uint8_t> msg);
  /// Sends queued bytes until the socket would block.
  Status flush();
  bool has_pending_output() const { return out_off_ < out_.size(); }

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

  UniqueFd fd_;
  Ssl ssl_;
  std::vector<uint8_t> in_;
  size_t in_len_ = 0;
  std::vector<uint8_t> out_;
  size_t out_off_ = 0;
};

/// Sets TCP_NODELAY, and O_NONBLOCK when `nonblocking`.
Status tune_socket(int fd, bool nonblocking);
/// Runs the TLS handshake on a blocking socket (bounded by `timeout_ms`)
/// and returns the TLS object; `server_name` (client side) must match the
/// peer's certificate.
Result<Ssl> tls_handshake(SSL_CTX* ctx, int fd, bool server, const std::string& server_name,
                          int timeout_ms);

}  // namespace smt::bench
