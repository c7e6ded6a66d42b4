// smtd's daemon: one epoll loop over the TCP listener, the peer control
// channels, the unix socket and its applications, and a signalfd (SIGTERM,
// SIGINT: shut down; SIGHUP: reload config and certificates). It owns the
// session and lease tables and mirrors them into the pinned maps.
//
// daemon.cc: start-up, the loop, peer channels, sessions, leases, the tick.
// daemon_setup.cc: the set-up protocol (OPEN, READY, REFUSED, CLOSE).
// daemon_apps.cc: the unix-socket requests of local applications.
// daemon_datapath.cc: the datapath sockets handed to applications and their
// BPF guards (docs/smtd.md "Datapath sockets").
#pragma once

#include <array>
#include <chrono>
#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "link/xsk_socket.h"
#include "loader/datapath_progs.h"
#include "smtd/app_protocol.h"
#include "smtd/config.h"
#include "smtd/key_arena.h"
#include "smtd/keylog.h"
#include "smtd/map_store.h"
#include "smtd/notify_page.h"
#include "smtd/peer_channel.h"
#include "smtd/tls_context.h"

namespace smt::smtd {

struct DaemonOptions {
  std::string config_path;
  std::string state_dir = loader::kDefaultPinRoot;
  std::string socket_path = "/run/smt/smtd.sock";  // libsmt's default too
  std::string keylog_path;
  /// On SIGTERM also close every session (default: leave them adoptable).
  bool close_sessions_on_exit = false;
  /// cgroup v2 directory the setsockopt guard is attached to ("": the
  /// hierarchy's root, loader::find_cgroup2_root()).
  std::string cgroup_path;
};

/// A session's local name: its local port and the peer's address and port.
struct SessionName {
  uint16_t local_port = 0;
  Addr16 peer_addr{};
  uint16_t peer_port = 0;
  auto operator<=>(const SessionName&) const = default;
};

class Daemon {
 public:
  /// Reads the config, loads certificates, opens the maps and the sockets,
  /// and picks up sessions a previous smtd left. Errors are fatal at start.
  static Result<std::unique_ptr<Daemon>> create(const DaemonOptions& opts);
  ~Daemon();

  /// Runs until SIGTERM or SIGINT. Returns the process exit status.
  int run();

 private:
  enum class SessionState { kOpening, kLive, kOrphan };
  struct Session {
    SessionName name;
    SessionState state = SessionState::kOpening;
    uint64_t serial = 0;  // 0 until OPEN is sent
    bool initiator = false;
    Suite suite = Suite::kAes128GcmSha256;
    uint8_t protocol = 253;
    std::string peer_name;
    std::string peer_identity;
    uint32_t owner = 0;  // app id; 0 = nobody (orphan after a restart)
    uint32_t owner_uid = 0;
    uint32_t owner_pid = 0;
    uint32_t request_id = 0;  // the app's OPEN request while kOpening
    uint32_t rx_queue = 0;
    uint32_t peer_rx_queue = 0;
    uint32_t slot = SMTD_APP_SLOT_NONE;  // entry in the owner's table
    std::optional<smtd_app_session_stats> engine_stats;  // the holder's latest STATS
    Clock::time_point stats_at{};
    uint64_t channel = 0;  // kOpening: the channel OPEN went out on (0: not yet)
    std::array<uint8_t, 32> token_digest{};
    LockedSlot reply;  // kOpening initiator: the OPENED message, secrets included
    time_t not_after = 0;
    Clock::time_point deadline{};  // open timeout (kOpening), adoption grace (kOrphan)
    Clock::time_point opened_at{};
  };
  struct Lease {
    uint32_t owner = 0;  // app id; 0 = orphan (a previous smtd's, awaiting its holder)
    uint32_t uid = 0;
    uint32_t pid = 0;
    bool ephemeral = false;
    Clock::time_point orphan_deadline{};
  };
  struct App {
    uint32_t id = 0;
    UniqueFd fd;
    uint32_t uid = 0;
    uint32_t pid = 0;
    UniqueFd table;                  // owner table (TABLE), inserted in grant_tables
    std::optional<NotifyPage> notify;  // its notification count, handed out with the table
    std::vector<bool> slot_used;     // its entries held by sessions
    std::vector<UniqueFd> datapath;  // raw sockets handed out (DATAPATH), in v4, v6 order
    std::vector<uint64_t> datapath_cookies;  // their raw_owners_hash keys
    uint32_t datapath_families = 0;          // SMTD_DATAPATH_FAMILY_* of `datapath`
    // AF_XDP (trusted uids, XDP attached): the socket and UMEM handed out, or
    // presented again after a restart (then without the UMEM).
    UniqueFd xsk, xsk_umem;
    link::XskGeometry xsk_geometry;
    int xsk_ifindex = 0;
    uint32_t xsk_queue = 0;
    bool xsk_zerocopy = false;
  };

  explicit Daemon(DaemonOptions opts) : opts_(std::move(opts)) {}
  Status start();

  // loop
  void watch(int fd, uint32_t events);
  void unwatch(int fd);
  void on_signal();
  void on_tick();
  void reload();
  void shutdown();

  // peer channels
  void on_accept();
  void on_channel(PeerChannel* ch);
  void on_channel_established(PeerChannel* ch);
  void on_channel_closed(PeerChannel* ch);
  void on_setup_message(PeerChannel* ch, const SetupMessage& m);
  void on_open(PeerChannel* ch, const OpenMsg& m);
  void on_ready(PeerChannel* ch, const ReadyMsg& m);
  void on_refused(PeerChannel* ch, const RefusedMsg& m);
  void on_peer_close(PeerChannel* ch, const CloseMsg& m);
  PeerChannel* established_channel(const std::string& peer_name);
  PeerChannel* any_channel(const std::string& peer_name);
  PeerChannel* dial(const PeerConfig& peer);
  void send_open(PeerChannel* ch, Session* s);
  void send_to_peer(const std::string& peer_name, const SetupMessage& m);
  uint64_t next_serial(PeerChannel::Role role);

  // sessions and leases
  Session* find_session(const SessionName& n);
  Session* find_by_serial(const std::string& identity, uint64_t serial);
  /// Writes the session's map entries, taking an owner-table slot first.
  Status install_session(Session& s, const SessionSecrets& secrets);
  void close_session(const SessionName& n, bool tell_peer, uint32_t app_reason);
  void fail_open(Session* s, int err, const std::string& msg, uint16_t refused = 0, int alert = -1,
                 bool alert_sent = false);
  Status grant_lease(App* app, uint16_t port, bool ephemeral);
  void drop_lease(uint16_t port);
  void adopt_previous_state();

  // applications (daemon_apps.cc)
  void on_app_accept();
  void on_app(App* app);
  void drop_app(uint32_t app_id, const std::string& why);
  /// `fds`: what the message carried (SCM_RIGHTS); only DATAPATH takes any.
  void handle_app_message(App* app, const uint8_t* msg, size_t len,
                          std::vector<UniqueFd>* fds = nullptr);
  void app_lease(App* app, const smtd_app_lease& req);
  void app_release(App* app, const smtd_app_lease& req);
  void app_open(App* app, const smtd_app_open& req);
  void app_close(App* app, const smtd_app_close& req);
  void app_adopt(App* app, const smtd_app_adopt& req);
  void app_list(App* app, const smtd_app_list& req);
  void app_table(App* app, const smtd_app_hdr& req);
  void app_stats(App* app, const uint8_t* msg, size_t len);
  void app_get_stats(App* app, const smtd_app_hdr& req);

  // datapath sockets (daemon_datapath.cc)
  /// Loads the raw-socket filter and attaches the setsockopt guard; failures
  /// are logged and leave untrusted uids without datapath sockets.
  void start_datapath();
  /// Puts the config's trusted uids into the setsockopt guard (start, SIGHUP).
  void update_trusted_uids();
  /// Forgets raw_owners_hash entries no live application holds, once the
  /// previous smtd's applications had adopt_grace to present their sockets.
  void sweep_raw_owners();
  void release_datapath(App& app);
  /// Takes the app's AF_XDP socket out of xsks_map, closes smtd's copies and
  /// installs its sessions for the raw socket.
  void release_xsk(App& app);
  /// An AF_XDP socket for `app` on `queue` of the interface carrying smtd's
  /// address, in that interface's xsks_map; "" on success, else why not.
  std::string make_xsk(App* app, uint32_t queue);
  void app_datapath(App* app, const smtd_app_datapath_req& req, std::vector<UniqueFd> fds);
  /// send_app with several fds attached.
  bool send_app_fds(uint32_t app_id, const void* msg, size_t len, const std::vector<int>& fds);
  /// A cleared entry of `owner`'s table for a new session, or SMTD_APP_SLOT_NONE.
  uint32_t take_slot(uint32_t owner);
  void release_slot(uint32_t owner, uint32_t slot);
  /// Sends one message, with `fd` attached (SCM_RIGHTS) when it is >= 0.
  bool send_app(uint32_t app_id, const void* msg, size_t len, int fd = -1);
  /// Sends a notification (INCOMING, PEER_CLOSED), then raises the
  /// connection's notification count so its holder looks at the socket.
  bool notify_app(uint32_t app_id, const void* msg, size_t len);
  void send_app_error(uint32_t app_id, uint32_t request_id, int err, const std::string& msg,
                      uint16_t refused = 0, int alert = -1, bool alert_sent = false);
  App* find_app(uint32_t id);
  std::string sessions_json(uint32_t uid) const;

  DaemonOptions opts_;
  Config cfg_;
  TlsContexts tls_;
  std::unique_ptr<KeyArena> arena_;
  std::optional<MapStore> maps_;
  Keylog keylog_;
  UniqueFd epoll_, signal_fd_, listen_fd_, unix_fd_;
  bool running_ = true;
  Clock::time_point start_time_{};
  Clock::time_point last_tick_{};

  std::map<int, std::unique_ptr<PeerChannel>> channels_;   // by fd
  std::map<std::string, SslSessionPtr> tickets_;           // by peer name, for resumption
  std::map<std::string, Clock::time_point> last_contact_;  // by identity
  std::map<std::string, Clock::time_point> last_dial_;     // by peer name
  std::map<std::string, std::vector<SetupMessage>> pending_to_peer_;  // by peer name
  std::map<int, uint32_t> app_by_fd_;
  std::map<uint32_t, App> apps_;
  uint32_t next_app_id_ = 1;
  std::map<SessionName, Session> sessions_;
  std::map<std::pair<std::string, uint64_t>, SessionName> by_serial_;
  std::map<uint16_t, Lease> leases_;
  std::map<uint32_t, std::string> apps_to_drop_;  // app id -> why; dropped after the handler
  uint16_t last_granted_port_ = 0;
  uint64_t last_serial_ = 0;
  uint16_t next_ephemeral_ = 0;
  std::unique_ptr<loader::RawFilter> raw_filter_;        // null: no raw sockets to hand out
  std::unique_ptr<loader::SockoptGuard> sockopt_guard_;  // null: untrusted uids get none
  std::string datapath_error_;  // why one of the two is missing
  bool raw_owners_swept_ = false;
};

}  // namespace smt::smtd
