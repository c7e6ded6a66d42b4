// The receiving side of CONTRACT §2 for one message: opens records, checks
// that the inner header binds what the DATA header claims (offset, padded
// length, true length, LAST), places bytes only at the authenticated offset,
// enforces the tiling of [0, padded length), and reassembles TSO slices.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "record/record_cipher.h"
#include "wire/data_header.h"
#include "wire/drop_reason.h"

namespace smt {

/// What became of one packet.
struct RxResult {
  bool accepted = false;                ///< the packet contributed (or completed a record)
  bool completed = false;               ///< the message is now complete
  DropReason why = DropReason::kCount;  ///< set when !accepted

  static RxResult drop(DropReason r) { return {false, false, r}; }
};

/// Bounds the memory unauthenticated TSO slices can hold: a slice is staged
/// before its record authenticates, so anyone holding k_ctl (or replaying
/// genuine packets with seg_pos rewritten) could otherwise make the receiver
/// allocate without limit.
struct StagingBudget {
  size_t per_message = 16;  ///< records staged at once in one message
  size_t total = 256;       ///< records staged at once in the receiver
  size_t in_use = 0;
};

/// Whether a DATA payload is one whole record (the per-packet layout) rather
/// than a TSO slice: it starts the record and its length is the record's.
inline bool is_whole_record(const DataHeader& h, const uint8_t* payload, size_t len) {
  return h.seg_pos == 0 && len >= kTlsHeaderLen && kTlsHeaderLen + load_be16(payload + 3) == len;
}

class MessageAssembler {
 public:
  /// Holds nothing until a record of the message authenticates; then
  /// allocates its padded length (from the inner header) once.
  /// Drops beyond the one each call returns (staged TSO slices found forged
  /// when their record completes another way) are counted in *drops.
  MessageAssembler(uint64_t message_id, DropCounters* drops, StagingBudget* budget);
  ~MessageAssembler();
  MessageAssembler(const MessageAssembler&) = delete;
  MessageAssembler& operator=(const MessageAssembler&) = delete;

  /// A whole record (per-packet layout). Opens it in place in `rec`.
  RxResult add_record(const DataHeader& h, RecordCipher& opener, uint8_t* rec, size_t len);

  /// A slice of a record starting at h.seg_pos (TSO layout). Opens the record
  /// once all its bytes are there.
  RxResult add_slice(const DataHeader& h, RecordCipher& opener, const uint8_t* payload, size_t len);

  bool complete() const { return complete_; }
  /// The delivered bytes, [0, true length). Valid once complete().
  std::span<const uint8_t> message() const { return {buf_.data(), true_length_}; }
  /// Moves the delivered bytes out (no copy); the assembler is spent after.
  std::vector<uint8_t> take_message() {
    buf_.resize(true_length_);
    return std::move(buf_);
  }
  uint64_t message_id() const { return id_; }
  /// Message bytes received in authenticated records.
  uint64_t bytes_present() const { return bytes_present_; }
  /// Padded length, once a record authenticated (0 before).
  uint32_t padded_length() const { return padded_length_; }
  /// Up to `max` ranges {offset, length} below `limit` that no authenticated
  /// record covers yet, lowest first: what a RESEND asks for.
  size_t gaps(uint32_t limit, std::pair<uint32_t, uint32_t>* out, size_t max) const;
  /// Heap bytes held (message buffer and staged slices).
  size_t memory_bytes() const;
  /// No record accepted and no slice staged: a forged first packet left no state.
  bool empty() const { return records_present_ == 0 && staging_.empty(); }
  /// A record of this message has authenticated.
  bool started() const { return started_; }

 private:
  struct Range {
    uint32_t offset = 0;
    uint32_t end = 0;
    bool present = false;
  };
  // One partially received record (TSO layout): its wire bytes as they
  // arrive, and which of them are here.
  struct Staging {
    static constexpr size_t kMaxWire = RecordCipher::record_size(SMT_RECORD_MAX_CONTENT);
    uint16_t index = 0;
    uint32_t wire_len = 0;  // 0 until bytes [0, 5) are present
    size_t covered = 0;
    size_t max_end = 0;  // one past the highest byte received
    std::vector<uint8_t> bytes = std::vector<uint8_t>(kMaxWire);
    std::vector<bool> have = std::vector<bool>(kMaxWire);
  };

  RxResult check_and_place(const DataHeader& h, const uint8_t* content, size_t len);
  // Before a whole record of `index` is opened: does a staged partial copy of
  // it disagree with `rec`? Such a stage held forged slices.
  bool staging_conflicts(uint16_t index, const uint8_t* rec, size_t len) const;
  void retire_staging(uint16_t index, bool conflicted);

  void erase_stage(size_t i);

  uint64_t id_;
  DropCounters* drops_;
  StagingBudget* budget_;
  uint32_t padded_length_ = 0;
  bool started_ = false;  // padded_length_ and buf_ are set
  uint32_t true_length_ = 0;
  bool true_length_known_ = false;
  std::vector<uint8_t> buf_;
  std::vector<Range> ranges_;  // by record index
  std::vector<std::unique_ptr<Staging>> staging_;
  int64_t last_index_ = -1;
  uint32_t records_present_ = 0;
  uint64_t bytes_present_ = 0;
  bool complete_ = false;
};

}  // namespace smt
