// The engine's knobs and their defaults (docs/transport.md §Defaults).
#pragma once

#include <cstdint>

#include "record/record_cipher.h"

namespace smt {

struct EngineConfig {
  /// Bytes of a message sent before any grant (~1 BDP).
  uint32_t unscheduled_bytes = 10000;
  /// Granted-but-not-received bytes the receiver keeps per granted message.
  uint32_t grant_window = 10000;
  /// Messages granted at once (SRPT order).
  uint32_t overcommit = 8;
  /// One scheduling round in this many also grants the oldest incoming
  /// message (the FIFO share), so a large message is never starved; 0 = off.
  uint32_t fifo_grant_interval = 10;
  /// Largest message sent or accepted.
  uint32_t max_message_length = 64u << 20;
  /// Use the TSO layout (one record per TSO segment) when the link offers it.
  bool use_tso = true;

  /// Timer granularity; every timeout below is a whole number of ticks.
  uint64_t tick_ns = 1'000'000;
  /// Ticks without progress on an incoming message before a RESEND.
  uint32_t resend_ticks = 3;
  /// Ticks a server waits for the ACK of a sent response before NEED_ACK.
  uint32_t need_ack_ticks = 5;
  /// An RPC with no packet from its peer for this long fails with ETIMEDOUT
  /// (client) or is freed (server).
  uint64_t rpc_timeout_ns = 1'000'000'000;
  /// Sessions idle this long may be expired by smtd; also bounds how long an
  /// old receive epoch lives (CONTRACT §4: max(RPC timeout, 2 × idle)).
  uint64_t idle_timeout_ns = 60'000'000'000;

  /// Request replay window width in ids (CONTRACT §3).
  uint32_t request_window = 1u << 16;
  /// Send and receive message bytes held per engine (socket); beyond it
  /// sends fail with ENOBUFS and new incoming requests are dropped (no_buffer;
  /// the sender retries). Responses to this socket's own RPCs are always taken.
  uint64_t memory_cap = 1ull << 30;

  /// Key usage limits; tests lower rekey_blocks to exercise epochs.
  CipherLimits limits;
  /// Move to the next epoch after this long even below the σ threshold.
  uint64_t rekey_interval_ns = 3600ull * 1'000'000'000;
  /// Checks every seal for nonce reuse (aborts on one). Debug builds attach
  /// the process-wide oracle anyway; tests set their own in any build.
  NonceOracle* nonce_oracle = nullptr;
};

}  // namespace smt
