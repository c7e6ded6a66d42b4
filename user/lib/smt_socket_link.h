// Creating a socket over a link the caller owns (C++ only): the memory wire in
// tests, and the way the raw IP, AF_XDP and module links plug in until smtd
// hands applications their link.
#pragma once

#include <string>

#include "lib/smt.h"
#include "link/link.h"
#include "transport/clock.h"
#include "transport/config.h"

namespace smt::lib {

struct SocketConfig {
  EngineConfig engine;
  /// Run the helper thread (timers while no application thread is inside
  /// libsmt). Never started for a virtual clock: its driver moves time.
  bool helper_thread = true;
  /// How long no application thread must have been inside libsmt before the
  /// helper runs progress; 0 means one engine tick (BRIEF §3).
  uint64_t helper_quiet_ns = 0;
  /// smtd's unix socket; empty: no smtd (sessions only from the test hook).
  std::string smtd_socket;
  /// Bound on an implicit OPEN through smtd; 0: 25 s.
  int open_timeout_ms = 0;
};

}  // namespace smt::lib

/// Creates a socket whose engine moves packets through `link` and reads
/// `clock`; both must outlive the socket. NULL with errno on failure.
smt_sock* smt_socket_from_link(smt::link::Link* link, const smt::Clock* clock,
                               const smt::lib::SocketConfig& config);
