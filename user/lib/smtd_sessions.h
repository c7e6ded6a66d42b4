// libsmt's side of smtd (CONTRACT §6, docs/smtd.md §8): one socket's
// connection to smtd's unix socket, the port lease, sessions opened and
// accepted through it, and re-adoption with holder tokens when smtd comes back.
//
// Not thread-safe: the socket's lock guards every call except open_wait(),
// which a thread runs with the lock released while it has marked the
// connection busy (smt_sock::smtd_busy); nothing else touches the connection
// until it is done.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/result.h"
#include "lib/owner_table.h"
#include "lib/peer_addr.h"
#include "smtd/app_protocol.h"
#include "smtd/notify_page.h"
#include "smtd/smtd_client.h"
#include "transport/clock.h"
#include "transport/engine.h"

namespace smt::lib {

/// Counters of the smtd side of one socket.
struct SmtdCounters {
  uint64_t sessions_opened = 0;    ///< OPEN -> OPENED, installed in the engine
  uint64_t sessions_incoming = 0;  ///< INCOMING, installed in the engine
  uint64_t sessions_closed = 0;    ///< PEER_CLOSED (or a failed re-adoption) closed them
  uint64_t reconnects = 0;         ///< connections re-established after a drop
  uint64_t readopted = 0;          ///< sessions ADOPTed again after a reconnect
  uint64_t owner_table_errors = 0; ///< connections that got no owner table (no early XDP filter)
  uint64_t engine_closed = 0;      ///< sessions the engine ended itself, CLOSEd at smtd
  uint64_t datapath_errors = 0;    ///< reconnects where smtd refused our datapath sockets
  uint64_t socket_reads = 0;       ///< poll() calls that read smtd's socket (the rest only
                                   ///< looked at the notification count)
};


class SmtdSessions {
 public:
  /// Connects to smtd at `path`. `open_timeout_ms` bounds each implicit OPEN.
  static Result<std::unique_ptr<SmtdSessions>> connect(const std::string& path, int open_timeout_ms,
                                                       Engine& engine,
                                                       std::map<SessionId, PeerAddr>& peers,
                                                       const Clock& clock);
  /// The same over a connection the caller made (it asked for the datapath
  /// first). `datapath_fds`: the sockets smtd handed out on it, presented
  /// again after each reconnect (DATAPATH F_PRESENT) so their port filter
  /// follows the new connection; borrowed, the link owns them and outlives
  /// this object.
  static Result<std::unique_ptr<SmtdSessions>> attach(smtd::SmtdClient client,
                                                      const std::string& path,
                                                      int open_timeout_ms, Engine& engine,
                                                      std::map<SessionId, PeerAddr>& peers,
                                                      const Clock& clock,
                                                      std::vector<int> datapath_fds,
                                                      uint32_t datapath_queue = 0);

  /// LEASE: `port`, or an ephemeral one for 0. Remembered for re-leasing.
  Result<uint16_t> lease(uint16_t port);
  uint16_t port() const { return port_; }

  /// OPEN to the peer from the leased port; blocks up to the open timeout.
  /// Touches only the connection (the caller has released the socket lock).
  /// Errors: ECONNREFUSED (refused, unreachable, no such peer, timed out, smtd
  /// gone), EACCES (not allowed), others as smtd answered them.
  Result<smtd::HeldSession> open_wait(const PeerAddr& peer);
  /// Installs what open_wait() returned (under the lock).
  Result<SessionId> install(smtd::HeldSession& held);

  /// Handles every notification waiting (INCOMING, PEER_CLOSED) without
  /// blocking, and reconnects and re-adopts when smtd went away and the
  /// retry time has come. Call before each receive batch. The socket is read
  /// only when the connection's notification count moved, when `readable`
  /// (the caller's poll() saw the fd readable: a reply nobody waits for, or
  /// smtd gone), or once a millisecond; otherwise this makes no system
  /// call. Without a notification page it reads the socket every time.
  void poll(bool readable = false);
  /// Reconnects now if disconnected and re-adopts every session; the number
  /// re-adopted (0 when the connection was up).
  Result<int> readopt();

  /// The connection's fd for poll(), -1 while disconnected.
  int fd() const { return client_ ? client_->fd() : -1; }
  bool connected() const { return client_.has_value(); }
  /// When poll() next wants to run to try a reconnect (UINT64_MAX: connected).
  uint64_t next_retry_ns() const { return client_ ? UINT64_MAX : retry_at_ns_; }
  const SmtdCounters& counters() const { return counters_; }
  ~SmtdSessions();
  SmtdSessions(const SmtdSessions&) = delete;
  SmtdSessions& operator=(const SmtdSessions&) = delete;

 private:
  struct Held {
    uint64_t serial = 0;
    std::array<uint8_t, SMTD_APP_TOKEN_LEN> token{};
    uint32_t slot = SMTD_APP_SLOT_NONE;  // entry in table_
  };
  SmtdSessions(std::string path, int open_timeout_ms, Engine& engine,
               std::map<SessionId, PeerAddr>& peers, const Clock& clock)
      : path_(std::move(path)),
        open_timeout_ms_(open_timeout_ms),
        engine_(engine),
        peers_(peers),
        clock_(clock) {}
  /// Replaces the connection; a forked child closes the tracked fds.
  void set_client(std::optional<smtd::SmtdClient> c);
  /// Asks the new connection for its owner table and maps it; without one
  /// the sessions work, XDP just filters nothing early for them.
  void take_owner_table();
  void disconnected();
  Status reconnect();
  void on_peer_closed(const smtd_app_close& c);
  /// About once a second: the engine's counters of every held session to smtd
  /// (CONTRACT §7), and CLOSE for sessions the engine itself ended (keys at
  /// their integrity limit), so smtd and the peer let them go too.
  void report();
  void close_held(SessionId sid);

  std::string path_;
  int open_timeout_ms_;
  Engine& engine_;
  std::map<SessionId, PeerAddr>& peers_;
  const Clock& clock_;
  std::optional<smtd::SmtdClient> client_;
  std::unique_ptr<OwnerTable> table_;  // the connection's; engines hold pointers into it
  std::optional<smtd::NotifyPage> notify_;  // the connection's notification count
  uint64_t notified_ = 0;       // the count when the socket was last read empty
  uint64_t quiet_read_at_ns_ = 0;
  uint16_t port_ = 0;
  bool ephemeral_ = false;
  std::map<SessionId, Held> held_;
  std::vector<smtd_app_session_stats> report_;  // reused by report()
  std::vector<int> datapath_fds_;  // the link's sockets smtd made (borrowed)
  uint32_t datapath_queue_ = 0;    // the AF_XDP socket's queue, if one is among them
  uint64_t retry_at_ns_ = 0;
  uint64_t report_at_ns_ = 0;
  SmtdCounters counters_;
};

}  // namespace smt::lib
