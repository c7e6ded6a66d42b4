#include "bench_server_usage.h"

#include "bench_report.h"

namespace smt::bench {

void ServerAccounting::note_request() {
  const uint64_t bit = current_cpu_bit();
  if ((ran_on_.load(std::memory_order_relaxed) & bit) == 0) {
    ran_on_.fetch_or(bit, std::memory_order_relaxed);
  }
}

std::vector<uint8_t> ServerAccounting::usage_reply() {
  ServerUsage u;
  u.cpu_us = process_cpu_us();
  u.ran_on = ran_on_.exchange(0);
  u.threads = threads_;
  std::vector<uint8_t> out(kServerUsageLen);
  encode_usage(u, std::span<uint8_t, kServerUsageLen>(out.data(), kServerUsageLen));
  return out;
}

}  // namespace smt::bench
