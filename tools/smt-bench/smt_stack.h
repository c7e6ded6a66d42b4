// The SMT stack through smtd and libsmt: a server whose worker threads (one
// per vCPU) share one SMT socket, and a single-threaded client keeping
// `concurrency` RPCs outstanding on one socket to one peer.
#pragma once

#include <atomic>

#include "bench_run.h"
#include "common/result.h"

namespace smt::bench {

/// Serves until `stop` is set.
Status run_smt_server(const ServerOptions& o, const std::atomic<bool>& stop);
/// Runs one measured client run.
Result<RunResult> run_smt_client(const ClientOptions& o);

}  // namespace smt::bench
