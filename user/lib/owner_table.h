// The application's mapping of its owner table (docs/xdp.md "The owner
// table"): smtd creates the BPF array, inserts it into grant_tables and hands
// the fd over (TABLE); libsmt maps it here and gives each session's engine
// its entry, where the engine publishes its window base and arms grant slots.
#pragma once

#include <cstdint>
#include <memory>

#include "common/result.h"
#include "smt/wire.h"
#include "smtd/smtd_client.h"

namespace smt::lib {

class OwnerTable {
 public:
  /// Maps the table smtd granted (read-write, shared with XDP).
  static Result<std::unique_ptr<OwnerTable>> map(smtd::OwnerTableGrant grant);
  ~OwnerTable();
  OwnerTable(const OwnerTable&) = delete;
  OwnerTable& operator=(const OwnerTable&) = delete;

  /// Entry `slot`, or null for SMTD_APP_SLOT_NONE and anything out of range.
  smt_owner_table_entry* entry(uint32_t slot) const;
  uint32_t owner_id() const { return owner_id_; }

 private:
  OwnerTable() = default;
  UniqueFd fd_;
  smt_owner_table_entry* entries_ = nullptr;
  uint32_t count_ = 0;
  uint32_t owner_id_ = 0;
};

}  // namespace smt::lib
