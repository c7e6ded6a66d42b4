// Key epochs of one session (CONTRACT §4): the sending side's ratchet and
// the receiving side's window of epochs n and n+1.
//
// Sending: the engine counts σ per key and moves to epoch n+1 when σ reaches
// the rekey threshold or the rekey interval passes, without asking smtd. It
// starts n+2 only after the peer acknowledged a message sealed under n+1, and
// only once no message sealed under n is still being sent (the receiver holds
// at most n and n+1). A message keeps the key it was created under.
//
// Receiving: epoch n (committed) and n+1 (derived ahead). The first record
// that authenticates under n+1 commits it: n+2 is derived, anything older
// than n is forgotten, and n is accepted only for requests below the first
// n+1 request id and for responses to client RPCs started before the commit,
// until it expires.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>

#include "common/result.h"
#include "common/secure_bytes.h"
#include "record/record_cipher.h"

namespace smt {

class TxEpochs {
 public:
  static Result<TxEpochs> create(Suite suite, std::span<const uint8_t> secret0, CipherLimits limits,
                                 uint64_t now_ns, NonceOracle* oracle = nullptr);

  uint16_t current() const { return epochs_.back().n; }
  /// The current epoch's sealing key, shared by every message created under it.
  const std::shared_ptr<RecordCipher>& current_cipher() const { return epochs_.back().cipher; }
  /// A message was created under (or finished with) epoch e.
  void message_started(uint16_t e);
  void message_ended(uint16_t e);
  /// The peer acknowledged a message sealed under e.
  void acked(uint16_t e);
  /// Moves to the next epoch if it is due and allowed. Returns true if it moved.
  Result<bool> maybe_advance(uint64_t now_ns, uint64_t interval_ns);
  /// σ of the current key.
  uint64_t sigma() const { return epochs_.back().cipher->sealed_blocks(); }
  uint64_t sigma_limit() const { return limits_.seal_limit_blocks; }
  /// The 16-bit epoch is exhausted: the session must be replaced.
  bool exhausted() const { return current() == UINT16_MAX && epochs_.back().cipher->needs_rekey(); }

 private:
  struct Epoch {
    uint16_t n = 0;
    std::shared_ptr<RecordCipher> cipher;
    uint32_t live = 0;  // messages created under it and not yet finished
    bool acked = false;
    uint64_t started_ns = 0;
  };
  Epoch* find(uint16_t e);

  Suite suite_ = Suite::kAes128GcmSha256;
  CipherLimits limits_;
  NonceOracle* oracle_ = nullptr;
  SecretBytes secret_;  // the current epoch's traffic secret
  std::deque<Epoch> epochs_;
};

class RxEpochs {
 public:
  static Result<RxEpochs> create(Suite suite, std::span<const uint8_t> secret0);

  struct Slot {
    uint16_t n = 0;
    RecordCipher opener;
    bool committed = false;
    uint64_t min_request_id = UINT64_MAX;  // lowest request id seen under it
    uint64_t client_marker = 0;            // local client ids below it started before the commit
    uint64_t expires_ns = UINT64_MAX;
  };
  /// The key of epoch e, or nullptr.
  Slot* find(uint16_t e);
  /// Whether a message may use epoch e's key (CONTRACT §4 acceptance rule):
  /// `request_id` is the request's id for a request, or the local client
  /// RPC's id for a response.
  bool accepts(const Slot& s, bool is_request, uint64_t id) const;
  /// A record of message `id` authenticated under epoch e; commits e when
  /// it is the epoch derived ahead. `next_client_id` is the next local
  /// request id, `old_epoch_life_ns` how long epoch e-1 lives after that.
  Status authenticated(uint16_t e, bool is_request, uint64_t id, uint64_t now_ns,
                       uint64_t next_client_id, uint64_t old_epoch_life_ns);
  /// Forgets epochs past their expiry.
  void expire(uint64_t now_ns);
  uint64_t next_expiry() const;
  uint16_t committed() const;
  /// Some key passed 2^20 failed opens: ask smtd for a new session.
  bool needs_new_session() const;
  /// Some key reached the AEAD's integrity limit: close the session.
  bool must_close() const;
  uint64_t failed_opens() const;

 private:
  Suite suite_ = Suite::kAes128GcmSha256;
  SecretBytes next_secret_;  // secret of the epoch derived ahead, for the one after
  std::deque<Slot> slots_;   // ascending epochs; last is the one derived ahead
};

}  // namespace smt
