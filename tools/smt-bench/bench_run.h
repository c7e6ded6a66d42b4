// One smt-bench run: its options (client and server), what the client
// collects while it runs, and the JSON line that reports it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_protocol.h"

namespace smt::bench {

enum class Stack { kSmt, kTcp, kTls };
enum class Wait { kBlock, kPoll };

const char* stack_name(Stack s);
const char* wait_name(Wait w);

/// Options both sides share.
struct CommonOptions {
  Stack stack = Stack::kTcp;
  Wait wait = Wait::kBlock;
  int cpu = -1;                  ///< pin the whole process to this vCPU; -1: no pinning
  uint16_t port = 5001;          ///< TCP port, or SMT port
  std::string smtd;              ///< SMT: smtd's unix socket
  std::string datapath = "auto"; ///< SMT: auto (AF_XDP when offered) or raw
  int timeout_ms = 10000;        ///< give up after this long without progress
};

struct ServerOptions {
  CommonOptions common;
  int threads = 0;               ///< worker threads; 0: one per vCPU the process may use
  std::string cert, key;         ///< TLS: the server's certificate and key (PEM)
  bool tickets = false;          ///< TLS: issue session tickets (for resumed handshakes)
  std::string client_ca;         ///< TLS: require client certificates signed by this CA
};

struct ClientOptions {
  CommonOptions common;
  std::string host;              ///< the server's address
  uint32_t size = 64;            ///< measured request size, bytes
  uint32_t reply_size = 0;       ///< measured response size, bytes; 0: = size (echo)
  uint64_t count = 1000;         ///< measured RPCs
  uint64_t warmup = 100;         ///< RPCs before measuring
  uint32_t concurrency = 1;      ///< measured RPCs outstanding at any time
  uint32_t connections = 0;      ///< TCP/TLS: connections the RPCs spread over; 0: = concurrency
  bool background = false;       ///< stream 1 MiB messages alongside the measured RPCs
  uint32_t background_size = 1 << 20;
  uint32_t background_outstanding = 2;
  double background_mb_per_s = 0;  ///< hold the stream to this rate (10^6 B/s); 0: unpaced
  std::string ca;                ///< TLS: the CA that signed the server's certificate
  std::string tls_name;          ///< TLS: the name the server's certificate must carry
  std::string client_cert;       ///< TLS: the client's certificate, for mutual TLS
  std::string client_key;        ///< TLS: its key
  uint32_t handshakes = 0;       ///< >0: time this many connect + handshake rounds instead
  bool resume = false;           ///< handshakes: resume each with the previous round's ticket
  std::string label;             ///< free text copied into the JSON (e.g. "same-vcpu")
};

/// The size of the response a measured request asks for.
inline uint32_t reply_size(const ClientOptions& o) {
  return o.reply_size != 0 ? o.reply_size : o.size;
}

/// What the client gathered during the measured part of a run.
struct RunResult {
  std::vector<double> rtt_us;     ///< one per measured RPC that succeeded
  double seconds = 0;             ///< wall time of the measured part
  uint64_t client_cpu_us = 0;     ///< the client process's CPU time during it
  ServerUsage server_before, server_after;
  uint64_t client_ran_on = 0;     ///< vCPUs the client's thread completed RPCs on
  uint64_t failures = 0;
  uint64_t background_messages = 0;
  uint32_t connections = 0;       ///< TCP/TLS connections used (SMT: 0)
  std::string datapath;           ///< SMT: the datapath libsmt reported; else "kernel"
};

/// Holds a stream to a rate without a timer of its own: the client asks it
/// whenever it wakes (a measured RPC or a stream message completed), and it
/// allows a message while the bytes sent so far are at or behind the rate.
class Pacer {
 public:
  explicit Pacer(double mb_per_s) : bytes_per_s_(mb_per_s * 1e6) {}
  /// Whether one more message may go now (always, when unpaced).
  bool allow();
  /// Counts a message sent; the first one starts the clock.
  void sent(uint64_t bytes);

 private:
  double bytes_per_s_;
  uint64_t sent_ = 0;
  std::chrono::steady_clock::time_point start_;
};

/// The request a client sends: header then filler bytes, `size` in all.
std::vector<uint8_t> make_request(Op op, uint32_t size, uint32_t reply_len);

/// The run as one JSON object on one line.
std::string run_json(const ClientOptions& o, RunResult& r);

}  // namespace smt::bench
