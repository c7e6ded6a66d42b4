// A small client for smtd's unix socket (app_protocol.h): lease a port, open,
// close and re-adopt sessions, list them. libsmt builds on it; the tests and
// the benchmark use it directly. Blocking, one request at a time; unasked
// notifications (INCOMING, PEER_CLOSED) that arrive meanwhile are queued.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/secure_bytes.h"
#include "common/unique_fd.h"
#include "record/key_schedule.h"
#include "smtd/address.h"
#include "smtd/app_protocol.h"

namespace smt::smtd {

/// What an application gets for a session it holds (CONTRACT §1, §6).
struct HeldSession {
  uint64_t serial = 0;
  Suite suite = Suite::kAes128GcmSha256;
  bool initiator = false;
  uint8_t protocol = 0;
  Addr16 local_addr{};
  uint16_t local_port = 0;
  Addr16 peer_addr{};
  uint16_t peer_port = 0;
  uint32_t peer_rx_queue = 0;
  bool has_secrets = false;  ///< false after ADOPT: smtd keeps no secrets
  SecretBytes secret_i_0;
  SecretBytes secret_r_0;
  SecretBytes k_ctl_i;
  SecretBytes k_ctl_r;
  std::string peer_identity;
  std::array<uint8_t, SMTD_APP_TOKEN_LEN> holder_token{};
  uint32_t session_slot = SMTD_APP_SLOT_NONE;  ///< entry in the owner table, if any
};

/// The connection's owner table (TABLE): a BPF array fd to mmap.
struct OwnerTableGrant {
  UniqueFd fd;
  uint32_t owner_id = 0;
  uint32_t entries = 0;
  UniqueFd notify_fd;  ///< the connection's notification page (NotifyPage::map_readonly)
};

/// The datapath sockets smtd created for this connection (DATAPATH).
struct DatapathGrant {
  uint32_t kind = 0;       ///< enum smtd_datapath_kind
  uint32_t families = 0;   ///< SMTD_DATAPATH_FAMILY_* of the raw sockets
  uint8_t protocol = 0;    ///< SMT's IP protocol number
  Addr16 local_addr{};     ///< smtd's address, the sockets' bind
  UniqueFd raw_v4;         ///< families has V4 (with AF_XDP: the fallback for unresolved peers)
  UniqueFd raw_v6;         ///< families has V6
  UniqueFd xsk;            ///< kind AF_XDP: the bound socket, already in the xsks_map
  UniqueFd xsk_umem;       ///< kind AF_XDP: the UMEM memfd
  smtd_datapath_xsk xsk_info{};  ///< kind AF_XDP: geometry, interface, queue
  bool xsk_zerocopy = false;
  std::string note;        ///< kind RAW: why smtd did not offer AF_XDP ("" if not asked)
};

/// Details of the last SMTD_APP_ERROR (Error carries errno and the message).
struct SmtdErrorInfo {
  int err = 0;
  uint16_t refused_reason = 0;  ///< the peer's REFUSED reason, 0 if none
  int tls_alert = -1;           ///< alert of a failed handshake, -1 if none
  bool alert_sent = false;      ///< true: our smtd sent it; false: it received it
};

/// An unasked message: a peer opened a session to us, or one was closed.
struct SmtdNotification {
  enum class Kind { kIncoming, kPeerClosed } kind = Kind::kIncoming;
  HeldSession session;      ///< kIncoming
  smtd_app_close closed{};  ///< kPeerClosed
};

/// Where applications find smtd: $SMT_SMTD_SOCKET, else /run/smt/smtd.sock
/// (smtd's own default --socket).
std::string default_socket_path();

class SmtdClient {
 public:
  /// Connects to smtd's socket.
  static Result<SmtdClient> connect(const std::string& socket_path);

  /// Leases `port`, or an ephemeral port if 0; returns the port.
  Result<uint16_t> lease(uint16_t port);
  Status release(uint16_t port);
  /// Opens a session from `local_port` (leased) to the peer; blocks until READY,
  /// REFUSED or an error (at most `timeout_ms`).
  Result<HeldSession> open(const Addr16& peer_addr, uint16_t peer_port, uint16_t local_port,
                           uint32_t rx_queue = 0, int timeout_ms = 30000);
  Status close(const Addr16& peer_addr, uint16_t peer_port, uint16_t local_port);
  /// Re-adopts a session after an smtd restart.
  Result<HeldSession> adopt(std::span<const uint8_t, SMTD_APP_TOKEN_LEN> token);
  /// Asks for this connection's owner table (docs/xdp.md): the same table
  /// every time; smtd removes it from XDP when the connection closes.
  Result<OwnerTableGrant> owner_table();
  /// Asks for this connection's datapath sockets (families: SMTD_DATAPATH_FAMILY_*
  /// wanted, 0: smtd's). The same sockets every time on one connection.
  /// `rx_queue`: the queue to receive on with AF_XDP; `raw_only`: never AF_XDP.
  Result<DatapathGrant> datapath(uint32_t families = 0, uint32_t rx_queue = 0,
                                 bool raw_only = false);
  /// After an smtd restart: presents the datapath sockets this process holds
  /// (at most SMTD_DATAPATH_MAX_FDS), so their filter follows this connection.
  Status present_datapath(std::span<const int> fds, uint32_t rx_queue = 0);
  /// Reports the engine's counters of held sessions (STATS; no reply).
  Status send_stats(std::span<const smtd_app_session_stats> entries);
  /// The latest counters every holder reported (GET_STATS; root: all sessions).
  Result<std::vector<smtd_app_session_stats>> session_stats();
  /// smtd's sessions, leases and channels as JSON (never key material).
  Result<std::string> list_json();
  /// The next notification, waiting up to `timeout_ms` (ETIMEDOUT if none).
  Result<SmtdNotification> next_notification(int timeout_ms);

  /// The details of the last request's error reply (err 0: it got none).
  const SmtdErrorInfo& last_error() const { return last_error_; }
  int fd() const { return fd_.get(); }

  /// Sends raw bytes as one message (tests of smtd's input checks).
  Status send_raw(std::span<const uint8_t> bytes);
  /// Receives one message of any kind, waiting up to `timeout_ms`.
  Result<std::vector<uint8_t>> recv_raw(int timeout_ms);

 private:
  explicit SmtdClient(UniqueFd fd) : fd_(std::move(fd)) {}
  /// Sends `req` (with `fds` attached) and waits for the reply with its request id.
  Result<std::vector<uint8_t>> call(void* req, size_t len, int timeout_ms,
                                    std::span<const int> fds = {});
  Status send_msg(std::span<const uint8_t> bytes, std::span<const int> fds);
  Error error_from(const std::vector<uint8_t>& msg);

  UniqueFd fd_;
  std::vector<UniqueFd> last_fds_;  // the fds the last received message carried
  uint32_t next_request_ = 1;
  std::deque<std::vector<uint8_t>> notes_;
  SmtdErrorInfo last_error_;
};

/// Decodes an OPENED, INCOMING or ADOPTED message.
Result<HeldSession> parse_held_session(std::span<const uint8_t> msg);

}  // namespace smt::smtd
