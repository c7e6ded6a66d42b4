// Why a received packet was dropped. Each reason is counted; none is silent.
#pragma once

#include <array>
#include <cstdint>

namespace smt {

enum class DropReason : uint8_t {
  kTruncated,        ///< shorter than its headers claim
  kBadVersion,       ///< unknown SMT version
  kBadType,          ///< unknown or unexpected packet type
  kBadHeader,        ///< header length, flags or reserved bytes wrong
  kBadTag,           ///< header MAC mismatch
  kUnknownEpoch,     ///< no key for the header's epoch
  kBadRecord,        ///< malformed TLS record or inner header
  kAuthFailed,       ///< AEAD rejected the record
  kLengthMismatch,   ///< header and inner lengths disagree
  kOffsetMismatch,   ///< header and inner offsets disagree
  kTiling,           ///< record breaks the tiling of [0, padded length)
  kDuplicate,        ///< record or slice already received (not an error)
  kMessageTooLarge,  ///< over the receiver's limit or 2^16 records
  kNoBuffer,         ///< staging budget for unauthenticated slices exhausted
  kKeyExhausted,     ///< the epoch's key passed its failed-open integrity limit
  // The transport engine's rules (docs/transport.md):
  kUnknownSession,  ///< no session for the packet's addresses and ports
  kReplay,          ///< request id already delivered, or below the window base
  kBeyondWindow,    ///< request id at or past the window base + width
  kNoRpc,           ///< no live RPC for a response or control packet
  kStaleEpoch,      ///< an older epoch the acceptance rule (CONTRACT §4) refuses
  kControlReplay,   ///< control_seq already accepted or older than the control window
  kCount
};

const char* drop_reason_name(DropReason r);

/// Per-reason counters.
class DropCounters {
 public:
  void add(DropReason r) { ++c_[static_cast<size_t>(r)]; }
  uint64_t get(DropReason r) const { return c_[static_cast<size_t>(r)]; }
  uint64_t total() const {
    uint64_t t = 0;
    for (auto v : c_) t += v;
    return t;
  }

 private:
  std::array<uint64_t, static_cast<size_t>(DropReason::kCount)> c_{};
};

}  // namespace smt
