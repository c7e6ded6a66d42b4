// Two engines joined by an in-memory wire, driven in virtual time: the
// harness every engine test uses.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "link/memory_link.h"
#include "transport/clock.h"
#include "transport/engine.h"

namespace smt::test {

/// Scales a soak test's RPC count by SMT_TEST_SCALE (the sanitizer stage
/// runs them smaller: each RPC costs ~10x there).
inline size_t scaled(size_t n) {
  const char* s = std::getenv("SMT_TEST_SCALE");
  const double f = s ? std::atof(s) : 1.0;
  const size_t m = static_cast<size_t>(static_cast<double>(n) * f);
  return m == 0 ? 1 : m;
}

inline link::Addr v4(uint8_t last) {
  link::Addr a{};
  a[10] = 0xff;
  a[11] = 0xff;
  a[12] = 10;
  a[15] = last;
  return a;
}

/// Every non-zero drop counter of an engine, " reason=n" each (" none" if
/// there is none): for failure messages.
inline std::string drop_summary(const Engine& e) {
  std::string s;
  for (int r = 0; r < static_cast<int>(DropReason::kCount); ++r) {
    const uint64_t n = e.stats().drops.get(static_cast<DropReason>(r));
    if (n != 0) {
      s +=
          std::string(" ") + drop_reason_name(static_cast<DropReason>(r)) + "=" + std::to_string(n);
    }
  }
  return s.empty() ? " none" : s;
}

/// Test secrets for one session, the same on both sides (smtd's job later).
inline void fill_test_secrets(SessionParams* p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  uint8_t buf[32];
  auto fill = [&](SecretBytes* s, size_t n) {
    for (size_t i = 0; i < n; ++i) buf[i] = static_cast<uint8_t>(rng());
    s->assign({buf, n});
  };
  fill(&p->initiator_secret, 32);
  fill(&p->responder_secret, 32);
  fill(&p->initiator_ctl, 16);
  fill(&p->responder_ctl, 16);
}

class EnginePair {
 public:
  /// `seed` picks the session's test secrets; by default every pair gets
  /// its own, so no two tests in one process seal under the same key (debug
  /// builds' process-wide nonce oracle would rightly call that a reuse).
  /// Wraps A's end of the wire (the wrapper is what A's engine sees).
  using LinkWrapper = std::function<std::unique_ptr<link::Link>(link::Link&)>;

  EnginePair(EngineConfig ca, EngineConfig cb, link::MemoryWireConfig wc, uint64_t seed = 0,
             const LinkWrapper& wrap_a = nullptr) {
    static std::atomic<uint64_t> next_seed{1000};
    if (seed == 0) seed = next_seed++;
    wc.addr_a = v4(1);
    wc.addr_b = v4(2);
    auto w = link::MemoryWire::create(clock, wc);
    if (!w.ok()) {
      ADD_FAILURE() << w.error().message;
      return;
    }
    wire = std::move(*w);
    if (wrap_a) link_a = wrap_a(wire->a());
    a = std::make_unique<Engine>(link_a ? *link_a : wire->a(), clock, ca);
    b = std::make_unique<Engine>(wire->b(), clock, cb);
    SessionParams pa;
    fill_test_secrets(&pa, seed);
    SessionParams pb = pa;
    pa.local_addr = wc.addr_a;
    pa.peer_addr = wc.addr_b;
    pa.local_port = 1000;
    pa.peer_port = 2000;
    pa.initiator = true;
    pa.peer_identity = "host-b";
    pb.local_addr = wc.addr_b;
    pb.peer_addr = wc.addr_a;
    pb.local_port = 2000;
    pb.peer_port = 1000;
    pb.initiator = false;
    pb.peer_identity = "host-a";
    auto s1 = a->add_session(pa);
    auto s2 = b->add_session(pb);
    if (!s1.ok() || !s2.ok()) {
      ADD_FAILURE() << "add_session failed";
      return;
    }
    sa = *s1;
    sb = *s2;
  }

  /// One step: both engines make progress, then virtual time jumps to the
  /// next thing that happens. Returns false when nothing is left to happen.
  bool step() {
    a->progress();
    b->progress();
    if (on_step) on_step();
    uint64_t t = std::min({a->next_deadline(), b->next_deadline(), wire->next_event_ns()});
    if (t == UINT64_MAX) return false;
    clock.advance_to(std::max(t, clock.now_ns() + 1));
    return true;
  }

  /// Steps until done() or `limit_ns` of virtual time passed; returns done().
  bool run_until(const std::function<bool()>& done, uint64_t limit_ns) {
    const uint64_t end = clock.now_ns() + limit_ns;
    while (!done()) {
      if (clock.now_ns() > end) return false;
      if (!step() && !done()) {
        // Nothing scheduled: let a tick pass so timers can run.
        clock.advance_by(1'000'000);
      }
    }
    return true;
  }

  VirtualClock clock;
  std::unique_ptr<link::MemoryWire> wire;
  std::unique_ptr<link::Link> link_a;  // A's wrapper of the wire, if any
  std::unique_ptr<Engine> a;
  std::unique_ptr<Engine> b;
  SessionId sa = 0;
  SessionId sb = 0;
  std::function<void()> on_step;
};

}  // namespace smt::test
