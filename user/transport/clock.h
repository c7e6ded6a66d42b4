// The engine's clock. Every timer reads this, never the system clock
// directly, so tests run in virtual time (VirtualClock) and the real
// transport uses CLOCK_MONOTONIC.
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>

namespace smt {

class Clock {
 public:
  virtual ~Clock() = default;
  /// Nanoseconds since an arbitrary fixed point; never decreases.
  virtual uint64_t now_ns() const = 0;
  /// True for a clock that only moves when a test moves it: waiting on it
  /// in real time would hang.
  virtual bool is_virtual() const { return false; }
};

class MonotonicClock final : public Clock {
 public:
  uint64_t now_ns() const override {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
  }
  static MonotonicClock& instance() {
    static MonotonicClock c;
    return c;
  }
};

/// Time moves only through advance_to()/advance_by().
class VirtualClock final : public Clock {
 public:
  explicit VirtualClock(uint64_t start_ns = 1'000'000'000) : now_(start_ns) {}
  uint64_t now_ns() const override { return now_.load(std::memory_order_relaxed); }
  bool is_virtual() const override { return true; }
  void advance_to(uint64_t t) {
    if (t > now_ns()) now_.store(t, std::memory_order_relaxed);
  }
  void advance_by(uint64_t d) { now_.fetch_add(d, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> now_;
};

}  // namespace smt
