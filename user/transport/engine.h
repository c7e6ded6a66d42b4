// The SMT transport engine: Homa-style RPCs over encrypted TLS 1.3 records
// (docs/transport.md explains it in prose).
//
// One engine serves one libsmt socket (one local port) and any number of
// sessions with peers. It runs to completion in the calling thread: progress()
// receives a batch from the link, opens and delivers, runs due timers, and
// seals and sends as much as the link queue takes. Nothing in it blocks and
// nothing in it is thread-safe: libsmt serialises calls (user/lib).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "link/link.h"
#include "record/key_schedule.h"
#include "transport/clock.h"
#include "transport/config.h"
#include "wire/drop_reason.h"

struct smt_owner_table_entry;

namespace smt {

struct Session;
struct Rpc;

/// What smtd hands the engine for one session (CONTRACT §1), plus where the
/// session's packets go.
struct SessionParams {
  link::Addr local_addr{};
  uint16_t local_port = 0;
  link::Addr peer_addr{};
  uint16_t peer_port = 0;
  Suite suite = Suite::kAes128GcmSha256;
  bool initiator = false;  ///< this host sent OPEN
  uint64_t serial = 0;
  SecretBytes initiator_secret;  ///< secret_i_0
  SecretBytes responder_secret;  ///< secret_r_0
  SecretBytes initiator_ctl;     ///< k_ctl_i (16 bytes)
  SecretBytes responder_ctl;     ///< k_ctl_r (16 bytes)
  std::string peer_identity;     ///< the peer's authenticated identity
  /// The session's entry in its owner's table (smtd's session_slot of the
  /// mmapped table), or null when XDP has none for it. The engine publishes
  /// its window base there and arms grant slots (owner_entry.h).
  smt_owner_table_entry* owner_entry = nullptr;
};

using SessionId = uint32_t;

/// Something the application receives.
struct Event {
  enum class Kind : uint8_t {
    kRequest,   ///< a complete request: reply with send_reply(session, id)
    kResponse,  ///< the response to this host's request `id`
    kError,     ///< this host's request `id` failed with `error` (an errno)
  };
  Kind kind = Kind::kRequest;
  SessionId session = 0;
  uint64_t id = 0;  ///< the request id (even) in every kind
  int error = 0;
  std::vector<uint8_t> data;
};

/// Counters of one session (CONTRACT §7), never key material.
struct SessionStats {
  uint16_t tx_epoch = 0;
  uint16_t rx_epoch = 0;
  uint64_t sigma = 0;
  uint64_t sigma_limit = 0;
  uint64_t auth_failures = 0;
  uint64_t replays = 0;  ///< requests dropped by the replay window
  uint64_t window_base = 0;
  uint64_t published_base = 0;
  uint64_t next_request_id = 0;
  uint64_t peer_window_base = 0;
  uint64_t client_rpcs = 0;
  uint64_t server_rpcs = 0;
  /// A receive key passed 2^20 failed opens: smtd should replace the session.
  bool needs_new_session = false;
  /// The sending epochs are spent (epoch 65535 at its σ threshold).
  bool epochs_exhausted = false;
  DropCounters drops;
};

struct EngineStats {
  uint64_t data_packets_sent = 0;
  uint64_t data_packets_resent = 0;
  uint64_t control_packets_sent[8] = {};  ///< by (type - 0x10) % 8: ACK (0x18) in slot 0
  uint64_t packets_received = 0;
  uint64_t records_sealed = 0;
  uint64_t rpcs_completed = 0;  ///< client RPCs that got their response
  uint64_t rpcs_failed = 0;
  uint64_t requests_delivered = 0;
  uint64_t window_blocked = 0;  ///< send_request refused with EAGAIN
  uint64_t epochs_advanced = 0;
  uint64_t sessions_closed_integrity = 0;  ///< closed at the AEAD integrity limit
  DropCounters drops;                      ///< every drop, sessions' included
};

class Engine {
 public:
  Engine(link::Link& link, const Clock& clock, EngineConfig config = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Installs a session (keys from smtd, or test secrets). EEXIST if one with
  /// the same addresses and ports exists.
  Result<SessionId> add_session(const SessionParams& p);
  /// Forgets a session: its RPCs fail with ECONNABORTED, its keys are wiped.
  void close_session(SessionId s);
  /// The session with this peer address and port (any local port), in O(log n).
  std::optional<SessionId> find_session(const link::Addr& peer, uint16_t peer_port) const;
  const std::string* peer_identity(SessionId s) const;

  /// Starts a client RPC and returns its id. EAGAIN when the peer's replay
  /// window is full (newest id − reported base ≥ W), ENOBUFS past the
  /// memory cap, EMSGSIZE for a message too long, ENOTCONN for no session,
  /// EKEYEXPIRED when the session's keys are spent.
  Result<uint64_t> send_request(SessionId s, std::vector<uint8_t> data);
  /// Replies to a delivered request. ENOENT if no such request awaits a reply.
  Status send_reply(SessionId s, uint64_t id, std::vector<uint8_t> data);
  /// Abandons a client RPC (no event follows) or a request awaiting a reply.
  Status abort(SessionId s, uint64_t id);

  /// Receives, opens and delivers what the link has, runs due timers, sends.
  void progress();
  /// When progress() next has timer work (UINT64_MAX: none).
  uint64_t next_deadline() const;
  /// The next event, oldest first.
  std::optional<Event> next_event();
  bool has_event() const { return !events_.empty(); }

  /// Message bytes held (send and receive buffers, undelivered events).
  uint64_t memory_in_use() const { return memory_; }
  size_t rpc_count() const;
  const EngineStats& stats() const { return stats_; }
  std::optional<SessionStats> session_stats(SessionId s) const;
  /// The base XDP may drop request DATA below: min(window base, oldest
  /// request in progress) (CONTRACT §3).
  uint64_t published_base(SessionId s) const;
  /// Moves a session to another owner-table entry (a new table after an smtd
  /// restart; null detaches): publishes the base and re-arms the grant slots
  /// of its live messages there.
  void set_owner_entry(SessionId s, smt_owner_table_entry* entry);
  /// A digest of every piece of protocol state (ids, windows, epochs, RPCs,
  /// grants, progress) and nothing that counts drops: equal digests mean a
  /// dropped packet changed nothing.
  std::string state_digest() const;
  const EngineConfig& config() const { return config_; }

 private:
  friend struct Session;
  // receive
  void on_packet(link::RxPacket& p);
  void on_data(Session& s, std::span<uint8_t> pkt);
  void on_control(Session& s, std::span<const uint8_t> pkt);
  void drop(Session* s, DropReason r);
  void message_complete(Session& s, Rpc& rpc);
  // control handlers
  void on_grant(Session& s, const struct ControlPacket& c);
  void on_resend(Session& s, const struct ControlPacket& c);
  void on_rpc_unknown(Session& s, const struct ControlPacket& c);
  void on_busy(Session& s, const struct ControlPacket& c);
  void on_need_ack(Session& s, const struct ControlPacket& c);
  void on_ack(Session& s, const struct ControlPacket& c);
  // send
  void send_control(Session& s, struct ControlPacket& c);
  void queue_acks(Session& s, bool flush);
  void schedule_grants();
  void transmit();
  bool build_data_packet(Rpc& rpc, uint8_t* out, link::TxPacket* tx);
  void flush_tx();
  // state
  Rpc* find_out_rpc(Session& s, uint64_t message_id);
  Rpc* find_in_rpc(Session& s, uint64_t message_id);
  void tx_update(Rpc& rpc);
  void rx_update(Rpc& rpc);
  void fail_client_rpc(Session& s, Rpc& rpc, int error);
  void free_rpc(Session& s, Rpc& rpc);
  void run_timers();
  void tick_rpc(Session& s, Rpc& rpc);
  void advance_window(Session& s);
  Status start_out_message(Session& s, Rpc& rpc, std::vector<uint8_t> data);
  void maybe_rekey(Session& s);
  void deliver(Event e);

  link::Link& link_;
  const Clock& clock_;
  EngineConfig config_;
  SessionId next_session_ = 1;
  std::map<SessionId, std::unique_ptr<Session>> sessions_;
  std::map<std::tuple<link::Addr, uint16_t, uint16_t>, SessionId> by_addr_;
  uint64_t next_rpc_serial_ = 1;

  // Sender SRPT: RPCs with something to send, fewest remaining bytes first.
  struct TxOrder {
    bool operator()(const Rpc* a, const Rpc* b) const;
  };
  std::set<Rpc*, TxOrder> tx_ready_;
  // The same RPCs, oldest first: the FIFO share, so SRPT never starves the
  // largest message while smaller ones keep arriving.
  struct AgeOrder {
    bool operator()(const Rpc* a, const Rpc* b) const;
  };
  std::set<Rpc*, AgeOrder> tx_by_age_;
  uint64_t tx_rounds_ = 0;
  // Receiver: incoming messages that still need grants, SRPT order.
  struct RxOrder {
    bool operator()(const Rpc* a, const Rpc* b) const;
  };
  std::set<Rpc*, RxOrder> rx_grantable_;
  uint64_t grant_rounds_ = 0;

  // Built packets waiting for room in the link queue.
  struct TxSlot {
    std::vector<uint8_t> buf;
    link::TxPacket pkt;
  };
  std::vector<TxSlot> tx_slots_;
  size_t tx_pending_ = 0;  // slots [0, tx_pending_) hold packets to send
  std::vector<link::TxPacket> tx_batch_;
  std::vector<link::RxPacket> rx_batch_;

  std::set<SessionId> spent_sessions_;  // a receive key hit its integrity limit
  std::deque<Event> events_;
  uint64_t memory_ = 0;
  uint64_t next_tick_ = 0;
  EngineStats stats_;
};

}  // namespace smt
