// The replay windows of CONTRACT §3 and §5.
//
// RequestWindow: one per session and direction, over the peer's request ids
// (even; id 2k is slot k). A bitmap of W slots from `base`: an id is marked
// when its message has fully authenticated and been delivered. The base
// moves over ids that are marked or still in progress (the engine says which:
// their RPC state rejects duplicates), never over an id not yet seen.
//
// ControlWindow: one per session and direction, over control sequence numbers
// (u64 from 1, never wrapping): a sliding bitmap at least 128 wide behind the
// highest number seen. A number is accepted once.
//
// A jump is inherent: a valid `seq` far ahead (say 2^63) is accepted once and
// slides the window there, after which every lower number of the sender is
// too old. Control numbers are inside the MAC, so only a holder of the
// sender's k_ctl can jump (docs/wire-format.md §9.9).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace smt {

class RequestWindow {
 public:
  static constexpr uint32_t kDefaultWidth = 1u << 16;  ///< ids; 8 KiB of bitmap

  /// `width` ids, rounded up to a multiple of 64; the first id is `first_id`
  /// (even).
  /// (Widths are clamped to [64, 2^31]; an odd first_id starts at the next
  /// even id.)
  explicit RequestWindow(uint32_t width = kDefaultWidth, uint64_t first_id = 2);

  enum class Verdict {
    kFresh,      ///< in the window and not marked: may be a new request
    kDelivered,  ///< marked, or below the base: a replay
    kTooNew,     ///< at or past base + width: cannot be tracked yet
    kInvalid,    ///< odd (a response id) or below first_id
  };
  Verdict check(uint64_t id) const;

  /// Marks a delivered request. Ids below the base are already covered
  /// (returns false); ids not kFresh are refused (returns false).
  bool mark(uint64_t id);

  /// Moves the base over every id that is marked or for which
  /// in_progress(id) is true, stopping at the first that is neither.
  void advance(const std::function<bool(uint64_t)>& in_progress);

  /// Lowest id not yet passed: every id below it is delivered or in progress.
  uint64_t base() const { return base_; }
  uint32_t width() const { return width_; }
  /// Bytes of bitmap held.
  size_t memory_bytes() const { return bits_.size() * sizeof(uint64_t); }

 private:
  uint32_t width_;
  uint64_t first_id_;
  uint64_t base_;
  std::vector<uint64_t> bits_;  // ring: slot (id/2) % width
};

class ControlWindow {
 public:
  static constexpr uint32_t kWidth = 256;  ///< CONTRACT §5: at least 128

  /// True the first time `seq` (>= 1) is seen inside the window; false for 0,
  /// a repeat, or a number kWidth or more below the highest accepted.
  bool accept(uint64_t seq);
  uint64_t highest() const { return highest_; }

 private:
  uint64_t highest_ = 0;
  uint64_t bits_[kWidth / 64] = {};
};

}  // namespace smt
