// The engine's side of its session's entry in the owner table (docs/xdp.md
// "The owner table"): an smt_owner_table_entry in memory shared with the XDP
// program through an mmapped BPF array. The engine publishes its request
// window base there, so XDP drops old request DATA before user space, and arms
// a grant slot for each outgoing message that needs GRANTs, so XDP drops
// stale and replayed GRANTs and wakes the engine only when a grant grew.
//
// Every access is one aligned 64-bit atomic: XDP reads and raises the words
// concurrently on any CPU.
#pragma once

#include <cstdint>

#include "smt/wire.h"

namespace smt {

class OwnerEntry {
 public:
  OwnerEntry() = default;
  explicit OwnerEntry(smt_owner_table_entry* e) : e_(e) {}

  bool attached() const { return e_ != nullptr; }

  /// Stores `base` if it differs from what was last stored.
  void publish_base(uint64_t base);
  /// Arms message `id`'s slot at `offset` (what the sender may already send).
  void arm(uint64_t id, uint32_t offset);
  /// Disarms `id`'s slot, unless another message re-armed it meanwhile.
  void disarm(uint64_t id);
  /// The slot word of `id` (tests, diagnostics).
  uint64_t slot(uint64_t id) const;

 private:
  smt_owner_table_entry* e_ = nullptr;
  uint64_t published_ = UINT64_MAX;
};

}  // namespace smt
