// One TLS 1.3 control channel to a peer smtd (CONTRACT §1, §6): a non-blocking
// TCP socket driven by smtd's epoll loop, the handshake, the exporter root,
// and set-up message framing. It does I/O only; what the messages mean is the
// daemon's business (daemon.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "record/key_schedule.h"
#include "smtd/address.h"
#include "smtd/key_arena.h"
#include "smtd/setup_protocol.h"
#include "smtd/tls_context.h"

namespace smt::smtd {

using Clock = std::chrono::steady_clock;

/// The TLS-Exporter label of CONTRACT §1 (docs/key-schedule.md §2).
inline constexpr const char kExporterLabel[] = "EXPERIMENTAL smt v1";

class PeerChannel {
 public:
  enum class Role { kClient, kServer };  ///< our TLS role
  enum class State { kConnecting, kHandshaking, kEstablished, kClosed };

  /// Something the daemon must act on.
  struct Event {
    /// kFatal: the stream cannot go on (bad frame length); the daemon answers
    /// what came before it, then closes the channel.
    enum class Kind { kEstablished, kMessage, kBadMessage, kFatal, kClosed } kind;
    SetupMessage message{};
    SetupDecodeError bad{};
  };

  /// Starts a TCP connect to `to`; the handshake follows when it completes.
  /// `allowed` are the identities the server must prove; `resume`, if set, is
  /// offered for resumption.
  static Result<std::unique_ptr<PeerChannel>> connect(SSL_CTX* ctx, const Endpoint& to,
                                                      std::string peer_name,
                                                      std::vector<std::string> allowed,
                                                      SSL_SESSION* resume, KeyArena* arena);
  /// Wraps an accepted socket; `any_configured` are all identities of all peers.
  static Result<std::unique_ptr<PeerChannel>> accept(SSL_CTX* ctx, UniqueFd fd,
                                                     const Endpoint& from,
                                                     std::vector<std::string> any_configured,
                                                     bool mutual_tls, KeyArena* arena);
  ~PeerChannel();

  int fd() const { return fd_.get(); }
  uint64_t id() const { return id_; }
  Role role() const { return role_; }
  State state() const { return state_; }
  bool established() const { return state_ == State::kEstablished; }
  /// The configured peer name (client side from the start, server side once established).
  const std::string& peer_name() const { return peer_name_; }
  void set_peer_name(std::string n) { peer_name_ = std::move(n); }
  const Endpoint& remote() const { return remote_; }
  /// The identity the peer's certificate proved ("anonymous" without mTLS).
  const std::string& identity() const { return tls_state_.identity; }
  Suite suite() const { return suite_; }
  bool resumed() const { return resumed_; }
  /// The exporter root (Hash.length bytes, locked memory); empty unless established.
  std::span<const uint8_t> root() const { return root_.span(); }
  time_t peer_not_after() const { return peer_not_after_; }
  Clock::time_point created_at() const { return created_at_; }
  Clock::time_point established_at() const { return established_at_; }
  /// Why the channel closed, with the TLS alert when there was one.
  const std::string& close_reason() const { return close_reason_; }
  int alert() const { return tls_state_.alert; }
  bool alert_sent() const { return tls_state_.alert_sent; }
  void set_ticket_sink(std::function<void(SslSessionPtr)> fn) {
    tls_state_.on_ticket = std::move(fn);
  }

  /// epoll events this channel waits for now.
  uint32_t wanted_events() const;
  /// Does all I/O the socket allows; returns what happened.
  std::vector<Event> on_ready();
  /// Queues one message and tries to send it.
  void send(const SetupMessage& m);
  /// Sends close_notify (best effort), erases the root, and marks it closed.
  void close(const std::string& why);
  /// True once a read found the connection gone: the events of that read are
  /// still delivered (a CLOSE just before close_notify counts), ending with
  /// kClosed, on which the daemon calls close(close_reason()).
  bool closing() const { return closing_; }

 private:
  PeerChannel() = default;
  Status start_tls(SSL_CTX* ctx);
  void handshake(std::vector<Event>* out);
  void read_messages(std::vector<Event>* out);
  void flush();
  void fail(const std::string& why, std::vector<Event>* out);
  std::string describe_failure(const std::string& what) const;

  uint64_t id_ = 0;
  Role role_ = Role::kClient;
  State state_ = State::kConnecting;
  UniqueFd fd_;
  SslPtr ssl_;
  TlsPeerState tls_state_;
  KeyArena* arena_ = nullptr;
  LockedSlot root_;
  std::string peer_name_;
  Endpoint remote_;
  Suite suite_ = Suite::kAes128GcmSha256;
  bool resumed_ = false;
  bool want_write_ = false;
  bool poisoned_ = false;
  bool closing_ = false;  // a fatal framing error was reported; read nothing more
  time_t peer_not_after_ = 0;
  Clock::time_point created_at_{};
  Clock::time_point established_at_{};
  std::vector<uint8_t> in_;
  std::vector<uint8_t> out_;
  std::string close_reason_;
};

}  // namespace smt::smtd
