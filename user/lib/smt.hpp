// The C++ face of libsmt: RAII over smt.h, errors as smt::Result.
#pragma once

#include <cerrno>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "common/result.h"
#include "lib/peer_addr.h"
#include "lib/smt.h"
#include "lib/smt_socket_link.h"

namespace smt {

using lib::PeerAddr;

namespace lib {
inline Error last_error() { return make_error(errno, smt_last_error()); }
}  // namespace lib

/// A received message; owns its buffer.
class Message {
 public:
  Message() = default;
  Message(Message&& o) noexcept : m_(std::exchange(o.m_, smt_msg{})) {}
  Message& operator=(Message&& o) noexcept {
    if (this != &o) {
      smt_msg_release(&m_);
      m_ = std::exchange(o.m_, smt_msg{});
    }
    return *this;
  }
  ~Message() { smt_msg_release(&m_); }

  uint64_t id() const { return m_.id; }
  smt_msg_kind kind() const { return m_.kind; }
  /// errno of a failed RPC (kind() == SMT_MSG_ERROR).
  int error() const { return m_.error; }
  std::span<const uint8_t> data() const { return {static_cast<const uint8_t*>(m_.data), m_.len}; }
  Result<PeerAddr> peer() const {
    return PeerAddr::from_sockaddr(reinterpret_cast<const sockaddr*>(&m_.peer), m_.peer_len);
  }
  smt_msg* raw() { return &m_; }

 private:
  smt_msg m_{};
};

/// An SMT socket; closed on destruction.
class Socket {
 public:
  /// A socket over a link the caller owns (the memory wire in tests).
  static Result<Socket> over_link(link::Link& link, const Clock& clock,
                                  const lib::SocketConfig& config = {}) {
    smt_sock* s = smt_socket_from_link(&link, &clock, config);
    if (s == nullptr) return lib::last_error();
    return Socket(s);
  }

  /// A socket over a raw IP socket link (see smt_socket_raw).
  static Result<Socket> raw(const smt_socket_opts& opts) {
    smt_sock* s = smt_socket_raw(&opts);
    if (s == nullptr) return lib::last_error();
    return Socket(s);
  }

  Socket(Socket&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Socket& operator=(Socket&& o) noexcept {
    if (this != &o) {
      if (s_ != nullptr) smt_close(s_);
      s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (s_ != nullptr) smt_close(s_);
  }

  /// See smt_bind: leases the port from smtd (0: ephemeral).
  Status bind(uint16_t port) { return check(smt_bind(s_, port)); }

  /// See smt_readopt: sessions re-adopted after an smtd restart.
  Result<int> readopt() {
    const int n = smt_readopt(s_);
    if (n < 0) return lib::last_error();
    return n;
  }

  Result<uint64_t> send_request(const PeerAddr& peer, std::span<const uint8_t> data) {
    Sa sa(peer);
    uint64_t id = 0;
    if (smt_send_request(s_, sa.get(), sa.len, data.data(), data.size(), &id) != 0) {
      return lib::last_error();
    }
    return id;
  }

  /// flags: SMT_RECV_*; id 0 = any; timeout_ms < 0 = forever.
  Result<Message> recv(int flags, uint64_t id = 0, int timeout_ms = -1) {
    Message m;
    if (smt_recv(s_, flags, id, m.raw(), timeout_ms) != 0) return lib::last_error();
    return m;
  }

  Status reply(const PeerAddr& peer, uint64_t id, std::span<const uint8_t> data) {
    Sa sa(peer);
    return check(smt_reply(s_, sa.get(), sa.len, id, data.data(), data.size()));
  }

  Status abort(const PeerAddr& peer, uint64_t id) {
    Sa sa(peer);
    return check(smt_abort(s_, sa.get(), sa.len, id));
  }

  /// The socket's poll fd (owned by the socket).
  Result<int> fd() {
    const int fd = smt_fd(s_);
    if (fd < 0) return lib::last_error();
    return fd;
  }

  Result<std::string> peer_identity(const PeerAddr& peer) {
    Sa sa(peer);
    char buf[256];
    const int n = smt_peer_identity(s_, sa.get(), sa.len, buf, sizeof buf);
    if (n < 0) return lib::last_error();
    return std::string(buf, size_t(n));
  }

  Result<smt_socket_stats> stats() {
    smt_socket_stats st{};
    if (smt_stats(s_, &st) != 0) return lib::last_error();
    return st;
  }

  smt_sock* raw() { return s_; }

 private:
  explicit Socket(smt_sock* s) : s_(s) {}
  static Status check(int rc) {
    if (rc != 0) return lib::last_error();
    return {};
  }
  struct Sa {
    explicit Sa(const PeerAddr& p) { p.to_sockaddr(&ss, &len); }
    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
    sockaddr_storage ss{};
    socklen_t len = 0;
  };

  smt_sock* s_ = nullptr;
};

}  // namespace smt
