// The TCP and TLS-over-TCP stacks: an epoll server with one thread per vCPU
// (SO_REUSEPORT spreads connections over them) and a single-threaded epoll
// client that keeps `concurrency` RPCs outstanding over `connections`
// connections, pipelined in order on each.
#pragma once

#include <atomic>

#include "bench_run.h"
#include "common/result.h"

namespace smt::bench {

/// Serves until `stop` is set.
Status run_stream_server(const ServerOptions& o, const std::atomic<bool>& stop);
/// Runs one measured client run.
Result<RunResult> run_stream_client(const ClientOptions& o);

}  // namespace smt::bench
