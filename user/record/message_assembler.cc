#include "record/message_assembler.h"

#include <algorithm>
#include <cstring>

#include "common/bytes.h"
#include "common/fault.h"
#include "record/sealed_message.h"

namespace smt {

MessageAssembler::MessageAssembler(uint64_t message_id, DropCounters* drops, StagingBudget* budget)
    : id_(message_id), drops_(drops), budget_(budget) {}

MessageAssembler::~MessageAssembler() { budget_->in_use -= staging_.size(); }

void MessageAssembler::erase_stage(size_t i) {
  staging_.erase(staging_.begin() + static_cast<long>(i));
  --budget_->in_use;
}

bool MessageAssembler::staging_conflicts(uint16_t index, const uint8_t* rec, size_t len) const {
  for (const auto& s : staging_) {
    if (s->index != index) continue;
    for (size_t i = 0; i < s->have.size(); ++i) {
      if (s->have[i] && (i >= len || s->bytes[i] != rec[i])) return true;
    }
  }
  return false;
}

void MessageAssembler::retire_staging(uint16_t index, bool conflicted) {
  for (size_t i = 0; i < staging_.size(); ++i) {
    if (staging_[i]->index != index) continue;
    drops_->add(conflicted ? DropReason::kBadRecord : DropReason::kDuplicate);
    erase_stage(i);
    return;
  }
}

RxResult MessageAssembler::add_record(const DataHeader& h, RecordCipher& opener, uint8_t* rec,
                                      size_t len) {
  if (complete_) return RxResult::drop(DropReason::kDuplicate);
  if (started_ && h.message_length != padded_length_) {
    return RxResult::drop(DropReason::kLengthMismatch);
  }
  if (h.record_index < ranges_.size() && ranges_[h.record_index].present) {
    return RxResult::drop(DropReason::kDuplicate);
  }
  // A whole record while slices of it are staged: the staged bytes must be
  // the same ciphertext, or they were forged (counted when retired).
  const bool conflicted = !staging_.empty() && staging_conflicts(h.record_index, rec, len);
  OpenError err;
  auto opened = opener.open(record_seq(id_, h.record_index), rec, len, &err);
  if (opened.content == nullptr) {
    return RxResult::drop(err == OpenError::kAuthFailed ? DropReason::kAuthFailed
                                                        : DropReason::kBadRecord);
  }
  RxResult r = check_and_place(h, opened.content, opened.len);
  if (r.accepted && !staging_.empty()) retire_staging(h.record_index, conflicted);
  return r;
}

RxResult MessageAssembler::check_and_place(const DataHeader& h, const uint8_t* content,
                                           size_t len) {
  if (len < kInnerHeaderLen) return RxResult::drop(DropReason::kBadRecord);
  const uint32_t offset = load_be32(content + 0);
  const uint32_t padded = load_be32(content + 4);
  const uint32_t true_len = load_be32(content + 8);
  const uint8_t flags = content[12];
  if ((flags & ~SMT_INNER_F_LAST) != 0 || content[13] != 0 || content[14] != 0 ||
      content[15] != 0) {
    return RxResult::drop(DropReason::kBadRecord);
  }
  const uint8_t* data = content + kInnerHeaderLen;
  const uint32_t data_len = static_cast<uint32_t>(len - kInnerHeaderLen);
  const uint32_t index = h.record_index;
  const bool last = (flags & SMT_INNER_F_LAST) != 0;

#if defined(SMT_FAULT_NO_LENGTH_BIND)
  // Deliberate fault: trust the plaintext header for lengths and offsets, as
  // the reference prototype does. Truncation by a rewritten length succeeds.
  (void)padded;
  (void)true_len;
  (void)last;
  if (!started_) {
    padded_length_ = h.message_length;
    buf_.resize(padded_length_);
    started_ = true;
  }
  const uint32_t place = h.record_offset;
  const uint32_t end = std::min<uint64_t>(uint64_t{place} + data_len, padded_length_);
  if (place >= padded_length_ && padded_length_ != 0) return RxResult::drop(DropReason::kTiling);
  if (index >= ranges_.size()) ranges_.resize(index + 1);
  ranges_[index] = {place, end, true};
  if (end > place) std::memcpy(buf_.data() + place, data, end - place);
  ++records_present_;
  bytes_present_ += end - place;
  true_length_ = padded_length_;
  complete_ = bytes_present_ >= padded_length_;
  return {true, complete_, DropReason::kCount};
#else
  // Bind the DATA header to the authenticated inner header.
  if ((started_ && padded != padded_length_) || padded != h.message_length || true_len > padded) {
    return RxResult::drop(DropReason::kLengthMismatch);
  }
  if (true_length_known_ && true_len != true_length_) {
    return RxResult::drop(DropReason::kLengthMismatch);
  }
  if (offset != h.record_offset) return RxResult::drop(DropReason::kOffsetMismatch);
  // Tiling: inside [0, padded), LAST exactly at the end, no empty record but
  // the empty message's, record 0 at offset 0, neighbours adjacent.
  const uint64_t end = uint64_t{offset} + data_len;
  if (end > padded || last != (end == padded) || (data_len == 0 && padded != 0) ||
      ((index == 0) != (offset == 0))) {
    return RxResult::drop(DropReason::kTiling);
  }
  if (last_index_ >= 0 && (last ? index != last_index_ : index > last_index_)) {
    return RxResult::drop(DropReason::kTiling);
  }
  if (last && index + 1 < ranges_.size()) {
    for (size_t j = index + 1; j < ranges_.size(); ++j) {
      if (ranges_[j].present) return RxResult::drop(DropReason::kTiling);
    }
  }
  if (index > 0 && index - 1 < ranges_.size() && ranges_[index - 1].present &&
      ranges_[index - 1].end != offset) {
    return RxResult::drop(DropReason::kTiling);
  }
  if (index + 1 < ranges_.size() && ranges_[index + 1].present &&
      ranges_[index + 1].offset != end) {
    return RxResult::drop(DropReason::kTiling);
  }
  if (!started_) {
    padded_length_ = padded;
    buf_.resize(padded);
    started_ = true;
  }
  if (index >= ranges_.size()) ranges_.resize(index + 1);
  ranges_[index] = {offset, static_cast<uint32_t>(end), true};
  if (data_len != 0) std::memcpy(buf_.data() + offset, data, data_len);
  true_length_ = true_len;
  true_length_known_ = true;
  if (last) last_index_ = index;
  ++records_present_;
  bytes_present_ += data_len;
  // Every adjacent pair was checked when its second member arrived, record 0
  // starts at 0 and LAST ends at padded: all records present means an exact
  // tiling.
  complete_ = last_index_ >= 0 && records_present_ == static_cast<uint64_t>(last_index_) + 1;
  if (complete_) {
    // Every record is present, so any stage left belongs to no record.
    for (size_t i = 0; i < staging_.size(); ++i) drops_->add(DropReason::kBadRecord);
    budget_->in_use -= staging_.size();
    staging_.clear();
  }
  return {true, complete_, DropReason::kCount};
#endif
}

RxResult MessageAssembler::add_slice(const DataHeader& h, RecordCipher& opener,
                                     const uint8_t* payload, size_t len) {
  if (complete_) return RxResult::drop(DropReason::kDuplicate);
  if (started_ && h.message_length != padded_length_) {
    return RxResult::drop(DropReason::kLengthMismatch);
  }
  if (h.record_index < ranges_.size() && ranges_[h.record_index].present) {
    return RxResult::drop(DropReason::kDuplicate);
  }
  if (len == 0 || h.seg_pos > Staging::kMaxWire || len > Staging::kMaxWire - h.seg_pos) {
    return RxResult::drop(DropReason::kBadRecord);
  }
  Staging* st = nullptr;
  for (auto& s : staging_) {
    if (s->index == h.record_index) st = s.get();
  }
  if (st == nullptr) {
    if (staging_.size() >= budget_->per_message || budget_->in_use >= budget_->total) {
      return RxResult::drop(DropReason::kNoBuffer);
    }
    staging_.push_back(std::make_unique<Staging>());
    ++budget_->in_use;
    st = staging_.back().get();
    st->index = h.record_index;
  }
  size_t fresh = 0;
  for (size_t i = 0; i < len; ++i) {
    size_t pos = h.seg_pos + i;
    if (!st->have[pos]) {
      st->have[pos] = 1;
      st->bytes[pos] = payload[i];
      ++fresh;
    }
  }
  if (fresh == 0) return RxResult::drop(DropReason::kDuplicate);
  st->covered += fresh;
  if (st->wire_len == 0 && st->have[0] && st->have[1] && st->have[2] && st->have[3] &&
      st->have[4]) {
    st->wire_len = kTlsHeaderLen + load_be16(&st->bytes[3]);
  }
  st->max_end = std::max<size_t>(st->max_end, h.seg_pos + len);
  auto take = [&] {
    auto it = std::find_if(staging_.begin(), staging_.end(),
                           [&](const auto& s) { return s.get() == st; });
    auto owned = std::move(*it);
    erase_stage(static_cast<size_t>(it - staging_.begin()));
    return owned;
  };
  if (st->wire_len != 0 && (st->wire_len > Staging::kMaxWire || st->max_end > st->wire_len)) {
    take();  // bytes past the record's end: forged
    return RxResult::drop(DropReason::kBadRecord);
  }
  if (st->wire_len == 0 || st->covered < st->wire_len) return {true, false, DropReason::kCount};
  // All bytes are here: take the stage out and open it. If it fails, a slice
  // was forged; the stage is gone and the retransmission starts afresh.
  auto owned = take();
  RxResult r = add_record(h, opener, owned->bytes.data(), owned->wire_len);
  return r;
}

size_t MessageAssembler::gaps(uint32_t limit, std::pair<uint32_t, uint32_t>* out,
                              size_t max) const {
  size_t n = 0;
  uint32_t covered = 0;  // end of the last present range seen, in index order
  for (const Range& r : ranges_) {
    if (n == max || covered >= limit) break;
    if (!r.present) continue;
    if (r.offset > covered) out[n++] = {covered, std::min(r.offset, limit) - covered};
    covered = std::max(covered, r.end);
  }
  if (n < max && covered < limit) out[n++] = {covered, limit - covered};
  return n;
}

size_t MessageAssembler::memory_bytes() const {
  return buf_.capacity() + ranges_.capacity() * sizeof(Range) +
         staging_.size() * (sizeof(Staging) + 2 * Staging::kMaxWire);
}

}  // namespace smt
