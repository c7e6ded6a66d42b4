// The engine's internal state: sessions and RPCs (engine.cc, engine_tx.cc).
// Not part of any public API.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include "record/message_assembler.h"
#include "record/sealed_message.h"
#include "transport/engine.h"
#include "transport/epochs.h"
#include "transport/owner_entry.h"
#include "transport/replay_window.h"

namespace smt {

/// Homa's RPC states, from the point of view of one host.
enum class RpcState : uint8_t {
  kOutgoing,    ///< client: sending the request, no response byte yet
  kIncoming,    ///< receiving: a client's response or a server's request
  kInService,   ///< server: request delivered, the application owes a reply
  kResponding,  ///< server: sending the response, then waiting for its ACK
};

/// A message this host sends: its plaintext, sealed record by record.
struct OutMessage {
  std::optional<SealedMessage> msg;
  std::shared_ptr<RecordCipher> cipher;  // the epoch key it was created under
  uint16_t epoch = 0;
  uint32_t length = 0;                 // padded
  uint32_t granted = 0;                // bytes that may be sent
  uint32_t next_record = 0;            // first record never sent
  uint8_t priority = 0;                // for scheduled bytes, from the last GRANT
  std::vector<uint8_t> resend_queued;  // per record: queued for resend
  std::vector<uint32_t> resend;        // records to send again, FIFO
  size_t resend_head = 0;
  bool all_sent_once = false;
  uint32_t tso_mss = 0;  // 0: per-packet layout
  uint64_t memory = 0;

  bool has_new() const {
    return msg && next_record < msg->geometry().records &&
           (next_record == 0 || msg->geometry().offset(next_record) < granted);
  }
  bool has_resend() const { return resend_head < resend.size(); }
  /// Queues record i (already sent once) to be sent again; false if it was queued.
  bool queue_resend(uint32_t i) {
    if (resend_queued[i]) return false;
    resend_queued[i] = 1;
    resend.push_back(i);
    return true;
  }
  /// The next record to send again (has_resend() must be true).
  uint32_t pop_resend() {
    const uint32_t i = resend[resend_head++];
    resend_queued[i] = 0;
    if (resend_head == resend.size()) clear_resends();
    return i;
  }
  void clear_resends() {
    for (size_t k = resend_head; k < resend.size(); ++k) resend_queued[resend[k]] = 0;
    resend.clear();
    resend_head = 0;
  }
  uint32_t remaining() const {
    if (!msg) return 0;
    return length -
           (next_record >= msg->geometry().records ? length : msg->geometry().offset(next_record));
  }
};

/// A message this host receives.
struct InMessage {
  std::unique_ptr<MessageAssembler> assembler;
  uint32_t length = 0;           // padded, from the first packet's header
  uint32_t granted = 0;          // bytes the sender may send (its `incoming`, our GRANTs)
  bool counted = false;          // its buffer is in Engine::memory_
  bool unauthenticated = false;  // counted in Session::unauthenticated
};

struct Rpc {
  uint64_t serial = 0;  // creation order: deterministic tie-breaks
  Session* session = nullptr;
  uint64_t id = 0;  // the request id (even)
  bool client = false;
  RpcState state = RpcState::kOutgoing;
  bool has_out = false;
  OutMessage out;
  bool has_in = false;
  InMessage in;
  uint32_t silent_ticks = 0;  // ticks since the last packet from the peer about it
  // Keys while in Engine::tx_ready_ / rx_grantable_ (fixed while inside).
  bool in_tx = false;
  uint64_t tx_key = 0;
  bool in_rx = false;
  uint64_t rx_key = 0;
};

struct Session {
  SessionId id = 0;
  link::Addr local_addr{};
  link::Addr peer_addr{};
  uint16_t local_port = 0;
  uint16_t peer_port = 0;
  std::string peer_identity;
  std::array<uint8_t, 16> tx_ctl{};
  std::array<uint8_t, 16> rx_ctl{};
  std::optional<TxEpochs> tx;
  std::optional<RxEpochs> rx;

  uint64_t next_ctl_seq = 1;
  ControlWindow ctl_window;
  uint64_t next_request_id = 2;
  uint64_t peer_base = 2;  // the peer's reported window base over our ids
  RequestWindow window;    // over the peer's request ids
  uint64_t last_base_report = 2;
  uint64_t last_window_query_tick = UINT64_MAX;
  std::unordered_map<uint64_t, std::unique_ptr<Rpc>> client_rpcs;  // by request id
  std::unordered_map<uint64_t, std::unique_ptr<Rpc>> server_rpcs;
  std::set<uint64_t> incoming_requests;  // started, not yet delivered
  size_t unauthenticated = 0;            // server RPCs holding only unauthenticated slices
  std::vector<uint64_t> pending_acks;
  StagingBudget budget;
  DropCounters drops;
  uint64_t replays = 0;
  bool ipv6 = false;
  uint32_t record_data = 0;  // per record, per-packet or TSO layout
  uint32_t tso_mss = 0;
  OwnerEntry owner;  // this session's entry in the owner table shared with XDP

  explicit Session(uint32_t window_width) : window(window_width) {}
  ~Session();
};

}  // namespace smt
