// The engine over real raw IP sockets between namespaces A — W — B: what the
// in-memory wire cannot show (kernel queues, real timing), with every drop
// accounted for by reason.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <thread>

#include "engine_harness.h"
#include "link/raw_link.h"
#include "support/netns.h"
#include "support/test_support.h"

namespace smt::test {
namespace {

TEST(EngineRaw, EchoOverRawSocketsDropsNothingUnexplained) {
  SMT_REQUIRE_OR_SKIP(netns_available(), "needs root, ip and nsenter for namespaces");
  auto topo = Topology::create();
  ASSERT_TRUE(topo.ok()) << topo.error().message;
  std::unique_ptr<link::RawLink> la, lb;
  for (auto [ns, link, addr] : {std::tuple{(*topo)->a(), &la, Topology::kA4},
                                std::tuple{(*topo)->b(), &lb, Topology::kB4}}) {
    ASSERT_TRUE(run_in_netns(ns, [&, link = link, addr = addr] {
                  link::RawLinkConfig c;
                  c.ipv6 = false;
                  c.local_v4 = Topology::addr(addr);
                  auto l = link::RawLink::open(c);
                  ASSERT_TRUE(l.ok()) << l.error().message;
                  *link = std::move(*l);
                }).ok());
  }
  Engine a(*la, MonotonicClock::instance()), b(*lb, MonotonicClock::instance());
  SessionParams pa;
  fill_test_secrets(&pa, 3);
  SessionParams pb = pa;
  pa.local_addr = Topology::addr(Topology::kA4);
  pa.peer_addr = Topology::addr(Topology::kB4);
  pa.local_port = 1000;
  pa.peer_port = 2000;
  pa.initiator = true;
  pb.local_addr = pa.peer_addr;
  pb.peer_addr = pa.local_addr;
  pb.local_port = 2000;
  pb.peer_port = 1000;
  auto sa = a.add_session(pa);
  ASSERT_TRUE(sa.ok());
  ASSERT_TRUE(b.add_session(pb).ok());
  std::map<uint64_t, size_t> pending;
  for (size_t n : {64ul, 1024ul, 65536ul, 1ul << 20, 1ul << 20}) {
    auto id = a.send_request(*sa, std::vector<uint8_t>(n, 0x42));
    ASSERT_TRUE(id.ok());
    pending[*id] = n;
  }
  // The server runs on its own thread, as a separate application would.
  std::atomic<bool> stop{false};
  std::atomic<size_t> server_rpcs{1};
  std::thread server([&] {
    while (!stop.load()) {
      b.progress();
      while (auto ev = b.next_event()) {
        ASSERT_TRUE(b.send_reply(ev->session, ev->id, std::move(ev->data)).ok());
      }
      server_rpcs = b.rpc_count();
      pollfd fd{lb->fd(), POLLIN, 0};
      const uint64_t next = b.next_deadline(), now = MonotonicClock::instance().now_ns();
      poll(&fd, 1,
           next == UINT64_MAX
               ? 10
               : int(std::min<uint64_t>(10, (next - std::min(next, now)) / 1000000)));
    }
  });
  const uint64_t deadline = MonotonicClock::instance().now_ns() + 20'000'000'000ull;
  // The client runs until it has nothing left to do, its last ACK (sent on
  // the tick after the last response) included.
  while (!pending.empty() || a.rpc_count() != 0 || a.next_deadline() != UINT64_MAX) {
    ASSERT_LT(MonotonicClock::instance().now_ns(), deadline)
        << pending.size() << " pending; drops a:" << drop_summary(a);
    a.progress();
    while (auto ev = a.next_event()) {
      ASSERT_EQ(ev->kind, Event::Kind::kResponse) << std::strerror(ev->error);
      EXPECT_EQ(ev->data, std::vector<uint8_t>(pending.at(ev->id), 0x42));
      pending.erase(ev->id);
    }
    pollfd fd{la->fd(), POLLIN, 0};
    poll(&fd, 1, 1);
  }
  // The last ACK went out a tick after the last response: the server frees
  // its state then, without NEED_ACK or a timeout.
  for (int i = 0; i < 100 && server_rpcs.load() != 0; ++i) usleep(1000);
  stop = true;
  server.join();
  EXPECT_EQ(b.rpc_count(), 0u) << "server state left after 100 ms";
  // Real sockets may delay a packet past a RESEND: its copy is then a
  // duplicate, or arrives after its RPC ended (no_rpc). Nothing else is
  // dropped: no tag or AEAD failure, no unknown session, no replay.
  for (const Engine* e : {&a, &b}) {
    const DropCounters& d = e->stats().drops;
    EXPECT_EQ(d.total(), d.get(DropReason::kDuplicate) + d.get(DropReason::kNoRpc))
        << "drops:" << drop_summary(*e);
  }
}

}  // namespace
}  // namespace smt::test
