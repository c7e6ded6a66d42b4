// Receive path for the DATA packets of one session direction, in the order
// every packet takes: parse (bounds first) -> header tag -> epoch key ->
// message -> record open -> inner-header binding -> placement. Accepts both
// the per-packet layout (one whole record) and TSO slices.
//
// The transport engine (user/transport) owns one per session; it adds replay
// windows, grants and RPC state around it.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "record/message_assembler.h"
#include "record/record_cipher.h"
#include "wire/data_header.h"
#include "wire/drop_reason.h"

namespace smt {

class DataReceiver {
 public:
  struct Config {
    uint32_t max_message_length = 1u << 30;  ///< larger messages are dropped
    /// Messages that hold only unauthenticated TSO slices, at most.
    size_t max_unauthenticated_messages = 64;
    size_t max_staged_records_per_message = 16;
    size_t max_staged_records = 256;
  };
  /// `rx_ctl_key`: the peer's k_ctl, which tags what it sends.
  DataReceiver(std::span<const uint8_t, 16> rx_ctl_key, Config config);
  ~DataReceiver();
  DataReceiver(const DataReceiver&) = delete;
  DataReceiver& operator=(const DataReceiver&) = delete;

  /// Installs the opening key of an epoch (the engine holds n and n+1). An
  /// epoch is installed once: replacing it (which would also reset its
  /// failed-open count) is EEXIST.
  Status set_epoch_key(uint16_t epoch, RecordCipher opener);
  void drop_epoch_key(uint16_t epoch);

  /// Failed opens under the epoch's key (0 for an unknown epoch).
  uint64_t failed_opens(uint16_t epoch) const;
  /// Some receive key passed 2^20 failed opens: ask smtd for a new session
  /// (CONTRACT §4).
  bool needs_new_session() const;
  /// Some receive key reached the AEAD's integrity limit (2^52 AES-GCM, 2^36
  /// ChaCha20-Poly1305): the session must close; that key opens nothing more.
  bool must_close() const;

  /// Handles one packet starting at the SMT header; decrypts in place.
  RxResult on_packet(std::span<uint8_t> pkt);

  /// A completed message, oldest first.
  struct Delivered {
    uint64_t message_id;
    std::vector<uint8_t> data;
  };
  std::optional<Delivered> take_delivered();

  const DropCounters& drops() const { return drops_; }
  size_t messages_in_progress() const { return messages_.size(); }

 private:
  RecordCipher* key_for(uint16_t epoch);
  size_t unauthenticated_messages() const;

  std::array<uint8_t, 16> ctl_key_{};
  Config config_;
  StagingBudget budget_;
  std::vector<std::pair<uint16_t, RecordCipher>> keys_;
  std::unordered_set<uint64_t> delivered_ids_;  // the engine replaces this with its windows
  std::deque<Delivered> delivered_;
  DropCounters drops_;
  // Declared last: assemblers return their staging budget when destroyed.
  std::unordered_map<uint64_t, MessageAssembler> messages_;
};

}  // namespace smt
