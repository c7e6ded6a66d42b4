// `smt-bench client --handshakes N`: the cost of setting up a connection, the
// TLS 1.3 baseline for smtd's session set-up (tools/smtd-bench). Each round:
// TCP connect + TLS 1.3 handshake (full, or resumed with the previous round's
// ticket, psk_dhe_ke; mutual authentication when the client has a
// certificate), then one echo RPC on the new connection so that the server
// has finished its side too, then close. With --stack tcp: the connect alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench_run.h"
#include "common/result.h"

namespace smt::bench {

/// What the timed rounds measured.
struct HandshakeResult {
  std::vector<double> handshake_us;  ///< per round: socket + connect + TLS handshake (client side)
  std::vector<double> rpc_us;        ///< per round: the first echo RPC after it
  uint64_t resumed = 0;              ///< rounds whose handshake resumed a session
  double seconds = 0;                ///< wall time of the timed rounds
  uint64_t client_cpu_us = 0;        ///< the client process's CPU time during them
  ServerUsage server_before, server_after;
  uint64_t client_ran_on = 0;
};

/// One untimed round (which, with `resume`, yields the first ticket), then
/// `o.handshakes` timed rounds. Fails on the first round that fails, and
/// with `resume` on the first round the server did not resume (EPROTO).
Result<HandshakeResult> run_handshake_client(const ClientOptions& o);

/// The run as one JSON object on one line: p50/p90/p99 of connect +
/// handshake, of the first RPC, and of both per round.
std::string handshake_json(const ClientOptions& o, HandshakeResult& r);

}  // namespace smt::bench
