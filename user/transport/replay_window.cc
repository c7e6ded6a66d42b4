#include "transport/replay_window.h"

#include <algorithm>
#include <cstring>

namespace smt {
namespace {

// Widths above 2^31 ids (256 MiB of bitmap) are clamped: nobody needs them and
// rounding up to 64 must not overflow.
constexpr uint32_t kMaxWidth = 1u << 31;

uint32_t round_width(uint32_t w) {
  w = std::clamp<uint32_t>(w, 64, kMaxWidth);
  return (w + 63) & ~uint32_t{63};
}

}  // namespace

RequestWindow::RequestWindow(uint32_t width, uint64_t first_id)
    : width_(round_width(width)),
      first_id_(first_id + (first_id & 1)),  // an odd first id starts at the next request id
      base_(first_id_),
      bits_(width_ / 64, 0) {}

RequestWindow::Verdict RequestWindow::check(uint64_t id) const {
  if ((id & 1) != 0 || id < first_id_) return Verdict::kInvalid;
  if (id < base_) return Verdict::kDelivered;
  if ((id - base_) / 2 >= width_) return Verdict::kTooNew;
#ifdef SMT_FAULT_NO_REPLAY_WINDOW
  return Verdict::kFresh;  // deliberate fault: marks are ignored
#else
  const uint64_t slot = (id / 2) % width_;
  return (bits_[slot / 64] >> (slot % 64) & 1) != 0 ? Verdict::kDelivered : Verdict::kFresh;
#endif
}

bool RequestWindow::mark(uint64_t id) {
  if (check(id) != Verdict::kFresh) return false;
  const uint64_t slot = (id / 2) % width_;
  bits_[slot / 64] |= uint64_t{1} << (slot % 64);
  return true;
}

void RequestWindow::advance(const std::function<bool(uint64_t)>& in_progress) {
  // Ids at or past base + width were kTooNew, so never admitted: at most
  // `width` ids can be passed per call, whatever in_progress claims. Each slot
  // is cleared as the base passes it, so it is clean when id + 2 * width
  // reuses it.
  for (uint64_t steps = 0; steps < width_ && base_ <= UINT64_MAX - 2;) {
    const uint64_t slot = (base_ / 2) % width_;
    uint64_t& word = bits_[slot / 64];
    // A whole word of delivered ids passes at once.
    if (slot % 64 == 0 && word == ~uint64_t{0} && steps + 64 <= width_ &&
        base_ <= UINT64_MAX - 128) {
      word = 0;
      base_ += 128;
      steps += 64;
      continue;
    }
    const uint64_t bit = uint64_t{1} << (slot % 64);
    if ((word & bit) != 0) {
      word &= ~bit;
    } else if (!in_progress(base_)) {
      return;
    }
    base_ += 2;
    ++steps;
  }
}

bool ControlWindow::accept(uint64_t seq) {
  if (seq == 0) return false;
  auto bit_of = [](uint64_t s) { return uint64_t{1} << (s % 64); };
  auto word_of = [this](uint64_t s) -> uint64_t& { return bits_[(s % kWidth) / 64]; };
  if (seq > highest_) {
    // Slide: numbers highest_+1 .. seq reuse the slots of numbers kWidth
    // below them, which now fall out of the window.
    const uint64_t diff = seq - highest_;
    if (diff >= kWidth) {
      std::memset(bits_, 0, sizeof bits_);
    } else {
      for (uint64_t s = highest_ + 1; s <= seq; ++s) word_of(s) &= ~bit_of(s);
    }
    highest_ = seq;
    word_of(seq) |= bit_of(seq);
    return true;
  }
  if (highest_ - seq >= kWidth) return false;
  uint64_t& word = word_of(seq);
#ifndef SMT_FAULT_NO_CTL_REPLAY
  if ((word & bit_of(seq)) != 0) return false;
#endif
  word |= bit_of(seq);
  return true;
}

}  // namespace smt
