#include "stream_conn.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include "bench_protocol.h"

namespace smt::bench {
namespace {

Error ssl_error(const std::string& what) {
  const unsigned long e = ERR_get_error();
  char buf[256] = "no OpenSSL error queued";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return make_error(EPROTO, what + ": " + buf);
}

// A failed SSL_read/SSL_write: the queued TLS error (an alert, say), or the
// socket's errno when there is none (a peer that reset the connection).
Error ssl_io_error(const std::string& what, int ssl_err) {
  const int saved = errno;
  if (ssl_err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    if (saved == 0 || saved == EPIPE || saved == ECONNRESET) {
      return make_error(ECONNRESET, what + ": the peer closed the connection");
    }
    return make_error(saved, what + ": " + std::strerror(saved));
  }
  return ssl_error(what);
}

Status common_ctx_setup(SSL_CTX* ctx) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") != 1) {
    return ssl_error("TLS 1.3 / AES-128-GCM set-up");
  }
  // The key exchange smtd offers; resumption always with a fresh (EC)DHE
  // (psk_dhe_ke, the default, stated here), never 0-RTT.
  if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256") != 1) return ssl_error("groups");
  SSL_CTX_clear_options(ctx, SSL_OP_ALLOW_NO_DHE_KEX);
  SSL_CTX_set_max_early_data(ctx, 0);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // A peer that closes without close_notify is a peer that left, not an attack here.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  return {};
}

}  // namespace

Result<SslCtx> tls_server_ctx(const TlsServerConfig& c) {
  SslCtx ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return ssl_error("SSL_CTX_new");
  if (auto st = common_ctx_setup(ctx.get()); !st.ok()) return st.error();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), c.cert.c_str()) != 1) {
    return ssl_error("certificate " + c.cert);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), c.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return ssl_error("key " + c.key);
  }
  if (!c.client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), c.client_ca.c_str(), nullptr) != 1) {
      return ssl_error("client CA " + c.client_ca);
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_set_verify_depth(ctx.get(), 4);
  }
  // A server that verifies clients refuses to resume without a session id context.
  static const unsigned char kSid[] = "smt-bench";
  SSL_CTX_set_session_id_context(ctx.get(), kSid, sizeof kSid - 1);
  if (c.tickets) {
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_num_tickets(ctx.get(), 1);
  } else {
    // Tickets would be post-handshake data the client reads mid-benchmark.
    SSL_CTX_set_num_tickets(ctx.get(), 0);
  }
  return ctx;
}

Result<SslCtx> tls_client_ctx(const TlsClientConfig& c) {
  SslCtx ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return ssl_error("SSL_CTX_new");
  if (auto st = common_ctx_setup(ctx.get()); !st.ok()) return st.error();
  if (SSL_CTX_load_verify_locations(ctx.get(), c.ca.c_str(), nullptr) != 1) {
    return ssl_error("CA " + c.ca);
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (c.cert.empty() != c.key.empty()) {
    return make_error(EINVAL, "a client certificate needs its key and a key its certificate");
  }
  if (!c.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), c.cert.c_str()) != 1) {
      return ssl_error("client certificate " + c.cert);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), c.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx.get()) != 1) {
      return ssl_error("client key " + c.key);
    }
  }
  return ctx;
}

Result<sockaddr_in> ipv4_endpoint(const std::string& host, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    return make_error(EINVAL, "not an IPv4 address: " + host);
  }
  return sa;
}

Status tune_socket(int fd, bool nonblocking) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    return make_error(errno, std::string("TCP_NODELAY: ") + std::strerror(errno));
  }
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 ||
      fcntl(fd, F_SETFL, nonblocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) != 0) {
    return make_error(errno, std::string("O_NONBLOCK: ") + std::strerror(errno));
  }
  return {};
}

Result<Ssl> tls_handshake(SSL_CTX* ctx, int fd, bool server, const std::string& server_name,
                          int timeout_ms, const std::function<Status(SSL*)>& prepare) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  Ssl ssl(SSL_new(ctx));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) return ssl_error("SSL_new");
  if (!server && (SSL_set1_host(ssl.get(), server_name.c_str()) != 1 ||
                  SSL_set_tlsext_host_name(ssl.get(), server_name.c_str()) != 1)) {
    return ssl_error("server name");
  }
  if (prepare) {
    if (auto st = prepare(ssl.get()); !st.ok()) return st.error();
  }
  if ((server ? SSL_accept(ssl.get()) : SSL_connect(ssl.get())) != 1) {
    return ssl_error(server ? "TLS accept" : "TLS connect");
  }
  timeval none{};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
  return ssl;
}

Result<size_t> StreamConn::read_some(uint8_t* buf, size_t len) {
  if (ssl_) {
    size_t got = 0;
    if (SSL_read_ex(ssl_.get(), buf, len, &got) == 1) return got;
    const int e = SSL_get_error(ssl_.get(), 0);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return size_t(0);
    if (e == SSL_ERROR_ZERO_RETURN) return make_error(ECONNRESET, "peer closed the TLS stream");
    return ssl_io_error("SSL_read", e);
  }
  const ssize_t n = ::recv(fd_.get(), buf, len, 0);
  if (n > 0) return size_t(n);
  if (n == 0) return make_error(ECONNRESET, "peer closed the connection");
  if (errno == EAGAIN || errno == EINTR) return size_t(0);
  return make_error(errno, std::string("recv: ") + std::strerror(errno));
}

Result<size_t> StreamConn::write_some(const uint8_t* buf, size_t len) {
  if (ssl_) {
    size_t put = 0;
    if (SSL_write_ex(ssl_.get(), buf, len, &put) == 1) return put;
    const int e = SSL_get_error(ssl_.get(), 0);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return size_t(0);
    return ssl_io_error("SSL_write", e);
  }
  const ssize_t n = ::send(fd_.get(), buf, len, MSG_NOSIGNAL);
  if (n >= 0) return size_t(n);
  if (errno == EAGAIN || errno == EINTR) return size_t(0);
  return make_error(errno, std::string("send: ") + std::strerror(errno));
}

void StreamConn::compact_output() {
  if (out_off_ == 0 || (out_off_ < out_.size() && out_off_ <= (1u << 20))) return;
  out_.erase(out_.begin(), out_.begin() + ptrdiff_t(out_off_));
  // flush() never passes a borrowed span's splice point, so every `at` >= out_off_.
  for (auto& b : borrowed_) b.at -= out_off_;
  out_off_ = 0;
}

void StreamConn::queue_frame_header(uint32_t len) {
  compact_output();
  const size_t at = out_.size();
  out_.resize(at + kFrameHeaderLen);
  encode_frame_len(len, std::span<uint8_t, kFrameHeaderLen>(&out_[at], kFrameHeaderLen));
}

Status StreamConn::send_frame(std::span<const uint8_t> msg) {
  if (msg.size() > kMaxMessage) return make_error(EMSGSIZE, "message exceeds the frame limit");
  queue_frame_header(uint32_t(msg.size()));
  out_.insert(out_.end(), msg.begin(), msg.end());
  return flush();
}

Status StreamConn::send_frame_borrowed(std::span<const uint8_t> msg) {
  // Below this a copy is cheap and keeps header and body in one write.
  constexpr size_t kBorrowFrom = 64 * 1024;
  if (msg.size() < kBorrowFrom) return send_frame(msg);
  if (msg.size() > kMaxMessage) return make_error(EMSGSIZE, "message exceeds the frame limit");
  queue_frame_header(uint32_t(msg.size()));
  borrowed_.push_back(Borrowed{out_.size(), msg});
  return flush();
}

void StreamConn::close_notify() {
  if (ssl_) (void)SSL_shutdown(ssl_.get());
  ERR_clear_error();
}

Status StreamConn::flush() {
  for (;;) {
    const size_t owned_end = borrowed_.empty() ? out_.size() : borrowed_.front().at;
    while (out_off_ < owned_end) {
      auto n = write_some(out_.data() + out_off_, owned_end - out_off_);
      if (!n.ok()) return n.error();
      if (*n == 0) return {};
      out_off_ += *n;
    }
    if (borrowed_.empty()) return {};
    Borrowed& b = borrowed_.front();
    while (b.off < b.data.size()) {
      auto n = write_some(b.data.data() + b.off, b.data.size() - b.off);
      if (!n.ok()) return n.error();
      if (*n == 0) return {};
      b.off += *n;
    }
    borrowed_.pop_front();
  }
}

Status StreamConn::receive(const std::function<Status(std::span<const uint8_t>)>& on_msg,
                           size_t budget) {
  for (size_t got = 0; got < budget;) {
    // Room for at least 64 KiB, or for the rest of the frame being assembled.
    size_t want = 64 * 1024;
    if (in_len_ >= kFrameHeaderLen) {
      auto len = parse_frame_len(std::span<const uint8_t, kFrameHeaderLen>(in_.data(), 4));
      if (!len.ok()) return len.error();
      want = std::max(want, kFrameHeaderLen + *len - std::min<size_t>(in_len_, kFrameHeaderLen + *len));
    }
    if (in_.size() < in_len_ + want) in_.resize(in_len_ + want);
    auto n = read_some(in_.data() + in_len_, in_.size() - in_len_);
    if (!n.ok()) return n.error();
    if (*n == 0) return {};
    in_len_ += *n;
    got += *n;
    size_t off = 0;
    while (in_len_ - off >= kFrameHeaderLen) {
      auto len = parse_frame_len(std::span<const uint8_t, kFrameHeaderLen>(&in_[off], 4));
      if (!len.ok()) return len.error();
      if (in_len_ - off - kFrameHeaderLen < *len) break;
      if (auto st = on_msg({&in_[off + kFrameHeaderLen], *len}); !st.ok()) return st;
      off += kFrameHeaderLen + *len;
    }
    if (off > 0) {
      std::memmove(in_.data(), in_.data() + off, in_len_ - off);
      in_len_ -= off;
    }
  }
  return {};
}

Result<std::vector<uint8_t>> round_trip(StreamConn& c, std::span<const uint8_t> msg,
                                        int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  if (auto st = c.send_frame(msg); !st.ok()) return st.error();
  std::optional<std::vector<uint8_t>> reply;
  for (;;) {
    auto st = c.receive([&](std::span<const uint8_t> m) -> Status {
      if (reply) return make_error(EPROTO, "two responses to one request");
      reply.emplace(m.begin(), m.end());
      return {};
    });
    if (!st.ok()) return st.error();
    if (reply) return std::move(*reply);
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return make_error(ETIMEDOUT, "no response within the timeout");
    pollfd p{c.fd(), short(POLLIN | (c.has_pending_output() ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, int(left)) < 0 && errno != EINTR) {
      return make_error(errno, std::string("poll: ") + std::strerror(errno));
    }
    if (auto fl = c.flush(); !fl.ok()) return fl.error();
  }
}

}  // namespace smt::bench
