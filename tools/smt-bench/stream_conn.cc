#include "stream_conn.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

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

Status common_ctx_setup(SSL_CTX* ctx) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") != 1) {
    return ssl_error("TLS 1.3 / AES-128-GCM set-up");
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // A peer that closes without close_notify is a peer that left, not an attack here.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  return {};
}

}  // namespace

Result<SslCtx> tls_server_ctx(const std::string& cert, const std::string& key) {
  SslCtx ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return ssl_error("SSL_CTX_new");
  if (auto st = common_ctx_setup(ctx.get()); !st.ok()) return st.error();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1) {
    return ssl_error("certificate " + cert);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return ssl_error("key " + key);
  }
  // Tickets would be post-handshake data the client reads mid-benchmark.
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  return ctx;
}

Result<SslCtx> tls_client_ctx(const std::string& ca) {
  SslCtx ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return ssl_error("SSL_CTX_new");
  if (auto st = common_ctx_setup(ctx.get()); !st.ok()) return st.error();
  if (SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1) {
    return ssl_error("CA " + ca);
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  return ctx;
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
                          int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  Ssl ssl(SSL_new(ctx));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) return ssl_error("SSL_new");
  if (!server && (SSL_set1_host(ssl.get(), server_name.c_str()) != 1 ||
                  SSL_set_tlsext_host_name(ssl.get(), server_name.c_str()) != 1)) {
    return ssl_error("server name");
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
    return ssl_error("SSL_read");
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
    return ssl_error("SSL_write");
  }
  const ssize_t n = ::send(fd_.get(), buf, len, MSG_NOSIGNAL);
  if (n >= 0) return size_t(n);
  if (errno == EAGAIN || errno == EINTR) return size_t(0);
  return make_error(errno, std::string("send: ") + std::strerror(errno));
}

Status StreamConn::send_frame(std::span<const uint8_t> msg) {
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  } else if (out_off_ > (1u << 20)) {
    out_.erase(out_.begin(), out_.begin() + ptrdiff_t(out_off_));
    out_off_ = 0;
  }
  const size_t at = out_.size();
  out_.resize(at + kFrameHeaderLen + msg.size());
  encode_frame_len(uint32_t(msg.size()), std::span<uint8_t, kFrameHeaderLen>(&out_[at], 4));
  std::memcpy(&out_[at + kFrameHeaderLen], msg.data(), msg.size());
  return flush();
}

Status StreamConn::flush() {
  while (out_off_ < out_.size()) {
    auto n = write_some(out_.data() + out_off_, out_.size() - out_off_);
    if (!n.ok()) return n.error();
    if (*n == 0) return {};
    out_off_ += *n;
  }
  return {};
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

}  // namespace smt::bench
