#include "bench_run.h"

#include <algorithm>
#include <numeric>

#include "bench_report.h"

namespace smt::bench {

const char* stack_name(Stack s) {
  switch (s) {
    case Stack::kSmt:
      return "smt";
    case Stack::kTcp:
      return "tcp";
    case Stack::kTls:
      return "tls";
  }
  return "?";
}

const char* wait_name(Wait w) { return w == Wait::kBlock ? "block" : "poll"; }

std::vector<uint8_t> make_request(Op op, uint32_t size, uint32_t reply_len) {
  std::vector<uint8_t> buf(std::max<size_t>(size, kRequestHeaderLen));
  for (size_t i = kRequestHeaderLen; i < buf.size(); ++i) buf[i] = uint8_t(i * 131 + 7);
  encode_request_header(RequestHeader{op, reply_len}, buf);
  return buf;
}

std::string run_json(const ClientOptions& o, RunResult& r) {
  std::sort(r.rtt_us.begin(), r.rtt_us.end());
  const double n = double(r.rtt_us.size());
  const double mean = n > 0 ? std::accumulate(r.rtt_us.begin(), r.rtt_us.end(), 0.0) / n : 0;
  const double rpcs = n > 0 && r.seconds > 0 ? n / r.seconds : 0;
  const uint64_t server_cpu = r.server_after.cpu_us - r.server_before.cpu_us;
  JsonLine j;
  j.add("stack", stack_name(o.common.stack))
      .add("datapath", r.datapath)
      .add("wait", wait_name(o.common.wait))
      .add("label", o.label)
      .add("size", uint64_t(o.size))
      .add("reply_size", uint64_t(reply_size(o)))
      .add("count", uint64_t(r.rtt_us.size()))
      .add("failures", r.failures)
      .add("concurrency", uint64_t(o.concurrency))
      .add("connections", uint64_t(r.connections))
      .add("background", o.background)
      .add("background_rate_mb_per_s", o.background_mb_per_s)
      .add("p50_us", percentile(r.rtt_us, 50))
      .add("p99_us", percentile(r.rtt_us, 99))
      .add("p999_us", percentile(r.rtt_us, 99.9))
      .add("mean_us", mean)
      .add("seconds", r.seconds)
      .add("rpcs_per_s", rpcs)
      .add("request_bytes_per_s", rpcs * double(o.size))
      .add("client_cpu_us_per_rpc", n > 0 ? double(r.client_cpu_us) / n : 0.0)
      .add("server_cpu_us_per_rpc", n > 0 ? double(server_cpu) / n : 0.0)
      .add("background_messages", r.background_messages)
      .add(
          "background_mb_per_s",
          r.seconds > 0 ? double(r.background_messages) * o.background_size / 1e6 / r.seconds : 0.0)
      .add("client_cpus_allowed", cpu_list(allowed_cpus_mask()))
      .add("client_ran_on", cpu_list(r.client_ran_on))
      .add("server_ran_on", cpu_list(r.server_after.ran_on))
      .add("server_threads", uint64_t(r.server_after.threads));
  return j.str();
}

bool Pacer::allow() {
  if (bytes_per_s_ <= 0 || sent_ == 0) return true;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return double(sent_) <= bytes_per_s_ * elapsed;
}

void Pacer::sent(uint64_t bytes) {
  if (sent_ == 0) start_ = std::chrono::steady_clock::now();
  sent_ += bytes;
}

}  // namespace smt::bench
