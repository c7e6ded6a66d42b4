// The server side's answer to Op::kCpu, shared by every stack's server.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "bench_protocol.h"

namespace smt::bench {

/// Where the server's threads ran and how much CPU it used.
class ServerAccounting {
 public:
  explicit ServerAccounting(uint32_t threads) : threads_(threads) {}
  /// Called by a worker for every request it handles.
  void note_request();
  /// The reply to Op::kCpu; resets the placement seen so far.
  std::vector<uint8_t> usage_reply();

 private:
  std::atomic<uint64_t> ran_on_{0};
  uint32_t threads_;
};

}  // namespace smt::bench
