// The transport engine over the in-memory wire, in virtual time.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "engine_harness.h"
#include "smt/wire.h"

namespace smt::test {
namespace {

std::vector<uint8_t> pattern(size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937_64 rng(seed);
  for (auto& x : v) x = static_cast<uint8_t>(rng());
  return v;
}

// B echoes every request it receives.
void echo_server(Engine& e) {
  while (auto ev = e.next_event()) {
    if (ev->kind == Event::Kind::kRequest) {
      auto st = e.send_reply(ev->session, ev->id, std::move(ev->data));
      ASSERT_TRUE(st.ok()) << st.error().message;
    }
  }
}

// A sends one request of each size (pattern(n, n + salt)), B echoes, and
// the pair steps until every response is back, each once and byte-identical.
void echo_each_size(EnginePair& p, std::initializer_list<size_t> sizes, uint64_t salt) {
  std::map<uint64_t, std::vector<uint8_t>> sent;
  for (size_t n : sizes) {
    auto data = pattern(n, n + salt);
    auto id = p.a->send_request(p.sa, data);
    ASSERT_TRUE(id.ok()) << id.error().message;
    sent[*id] = data;
  }
  std::map<uint64_t, std::vector<uint8_t>> got;
  p.on_step = [&] {
    echo_server(*p.b);
    while (auto ev = p.a->next_event()) {
      ASSERT_EQ(ev->kind, Event::Kind::kResponse) << "error " << ev->error;
      EXPECT_TRUE(got.emplace(ev->id, std::move(ev->data)).second) << "delivered twice";
    }
  };
  ASSERT_TRUE(p.run_until([&] { return got.size() == sent.size(); }, 10'000'000'000));
  p.on_step = [&p] { echo_server(*p.b); };  // `got` ends here; B keeps answering
  EXPECT_EQ(got, sent);
}

TEST(Engine, EchoRpcsOfEverySizeCompleteByteIdentical) {
  EnginePair p({}, {}, link::MemoryWireConfig{});
  echo_each_size(p, {0ul, 1ul, 64ul, 1400ul, 4096ul, 65536ul, 1ul << 20}, 0);
  ASSERT_TRUE(
      p.run_until([&] { return p.a->rpc_count() == 0 && p.b->rpc_count() == 0; }, 1'000'000'000));
  EXPECT_EQ(p.a->memory_in_use(), 0u);
  EXPECT_EQ(p.b->memory_in_use(), 0u);
  EXPECT_EQ(p.a->stats().drops.total(), 0u);
  EXPECT_EQ(p.b->stats().drops.total(), 0u);
}

}  // namespace
}  // namespace smt::test

namespace smt::test {
namespace {
TEST(Engine, TsoLayoutEchoCompletes) {
  link::MemoryWireConfig wc;
  wc.tso = true;
  EnginePair p({}, {}, wc);
  std::map<uint64_t, std::vector<uint8_t>> sent, got;
  for (size_t n : {0ul, 100ul, 20000ul, 300000ul}) {
    auto data = pattern(n, n + 3);
    auto id = p.a->send_request(p.sa, data);
    ASSERT_TRUE(id.ok()) << id.error().message;
    sent[*id] = data;
  }
  p.on_step = [&] {
    echo_server(*p.b);
    while (auto ev = p.a->next_event()) {
      ASSERT_EQ(ev->kind, Event::Kind::kResponse) << "error " << ev->error;
      got.emplace(ev->id, std::move(ev->data));
    }
  };
  ASSERT_TRUE(p.run_until([&] { return got.size() == sent.size(); }, 10'000'000'000))
      << p.a->state_digest() << p.b->state_digest() << "drops a " << p.a->stats().drops.total()
      << " b " << p.b->stats().drops.total();
  EXPECT_EQ(got, sent);
}
}  // namespace
}  // namespace smt::test

namespace smt::test {
namespace {
TEST(Engine, SendsBeyondTheSocketMemoryCapFailWithEnobufsAndNothingIsLost) {
  EngineConfig ec;
  ec.memory_cap = 1u << 20;
  EnginePair p(ec, ec, link::MemoryWireConfig{});
  auto first = p.a->send_request(p.sa, std::vector<uint8_t>(700000, 1));
  ASSERT_TRUE(first.ok());
  auto second = p.a->send_request(p.sa, std::vector<uint8_t>(700000, 2));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ENOBUFS);
  auto too_long = p.a->send_request(p.sa, std::vector<uint8_t>(ec.max_message_length + 1));
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().code, EMSGSIZE);
  bool done = false;
  p.on_step = [&] {
    echo_server(*p.b);
    while (auto ev = p.a->next_event()) {
      ASSERT_EQ(ev->kind, Event::Kind::kResponse);
      EXPECT_EQ(ev->data, std::vector<uint8_t>(700000, 1));
      done = true;
    }
  };
  ASSERT_TRUE(p.run_until([&] { return done; }, 1'000'000'000));
  // With the first RPC done, the memory is free again.
  EXPECT_TRUE(p.a->send_request(p.sa, std::vector<uint8_t>(700000, 3)).ok());
}

// One RPC at a time, the way a blocking client calls: each completed
// response queues its id, and an ACK leaves when SMT_ACK_IDS (8) are queued
// (one packet for eight RPCs) or on the client's next tick for the rest; the
// server then frees every response without NEED_ACK.
TEST(Engine, AcksCarryEightIdsAndTheRestLeaveOnTheNextTick) {
  EnginePair p({}, {}, link::MemoryWireConfig{});
  const int ack = (SMT_TYPE_ACK - SMT_TYPE_DATA) & 7;  // engine.h: by type, ACK in slot 0
  // Microsecond steps (not EnginePair::step, which jumps to the next timer):
  // eight RPCs fit in one tick.
  auto one_rpc = [&] {
    auto id = p.a->send_request(p.sa, std::vector<uint8_t>(64, 7));
    ASSERT_TRUE(id.ok()) << id.error().message;
    for (int i = 0; i < 1000; ++i) {
      p.a->progress();
      p.b->progress();
      echo_server(*p.b);
      while (auto ev = p.a->next_event()) {
        if (ev->kind == Event::Kind::kResponse) return;
      }
      p.clock.advance_by(1000);
    }
    FAIL() << "no response within 1 ms";
  };
  const uint64_t start = p.clock.now_ns();
  static_assert(SMT_ACK_IDS == 8);
  for (int i = 0; i < SMT_ACK_IDS - 1; ++i) one_rpc();
  EXPECT_EQ(p.a->stats().control_packets_sent[ack], 0u) << "seven ids wait for the eighth";
  one_rpc();
  ASSERT_LT(p.clock.now_ns() - start, p.a->config().tick_ns) << "the RPCs straddled a tick";
  EXPECT_EQ(p.a->stats().control_packets_sent[ack], 1u) << "eight responses, one ACK";
  one_rpc();
  EXPECT_EQ(p.a->stats().control_packets_sent[ack], 1u) << "the ninth id waits for the tick";
  ASSERT_TRUE(
      p.run_until([&] { return p.a->rpc_count() == 0 && p.b->rpc_count() == 0; }, 100'000'000));
  EXPECT_EQ(p.a->stats().control_packets_sent[ack], 2u);
  EXPECT_LE(p.clock.now_ns() - start, 3 * p.a->config().tick_ns);
  EXPECT_EQ(p.b->stats().control_packets_sent[SMT_TYPE_NEED_ACK - SMT_TYPE_DATA], 0u);
}


// A link that takes at most two packets per send() while its tx_room()
// promises the inner link's room: the engine must keep the rest, in order,
// and send them later (as with a full AF_XDP ring).
class TwoPerSendLink final : public link::Link {
 public:
  explicit TwoPerSendLink(link::Link& inner) : inner_(inner) {}
  size_t send(std::span<const link::TxPacket> pkts) override {
    ++sends;
    if (pkts.size() > 2) ++partial;
    return inner_.send(pkts.first(std::min<size_t>(pkts.size(), 2)));
  }
  size_t receive(std::span<link::RxPacket> out) override { return inner_.receive(out); }
  int fd() const override { return inner_.fd(); }
  size_t tx_room() const override { return inner_.tx_room(); }
  uint32_t mtu() const override { return inner_.mtu(); }
  bool supports_tso() const override { return inner_.supports_tso(); }
  link::Addr local_addr(const link::Addr& peer) const override { return inner_.local_addr(peer); }
  link::LinkStats stats() const override { return inner_.stats(); }
  uint64_t sends = 0, partial = 0;

 private:
  link::Link& inner_;
};

TEST(Engine, RpcsCompleteByteIdenticalWhenTheLinkTakesPartOfEveryBatch) {
  // No resends within the run: a packet the engine failed to keep would
  // leave its RPC unfinished instead of being repaired by a RESEND.
  EngineConfig c;
  c.resend_ticks = 1'000'000;
  c.rpc_timeout_ns = 1'000'000'000'000;
  TwoPerSendLink* stingy = nullptr;
  EnginePair p(c, c, link::MemoryWireConfig{}, 0, [&](link::Link& inner) {
    auto l = std::make_unique<TwoPerSendLink>(inner);
    stingy = l.get();
    return l;
  });
  ASSERT_NE(stingy, nullptr);
  echo_each_size(p, {64ul, 5000ul, 65536ul, 300000ul}, 1);
  EXPECT_GT(stingy->partial, 10u) << "the link never refused part of a batch";
  EXPECT_EQ(p.a->stats().data_packets_resent, 0u) << "a kept packet was lost and resent";
  EXPECT_EQ(p.b->stats().drops.total(), 0u) << drop_summary(*p.b);
}


// libsmt looks a peer's session up on every send: the lookup must find the
// session of exactly that address and port among many, and nothing else.
TEST(Engine, FindSessionFindsExactlyThePeersAddressAndPort) {
  EnginePair p({}, {}, link::MemoryWireConfig{});
  std::map<std::pair<uint8_t, uint16_t>, SessionId> made;
  made[{2, 2000}] = p.sa;  // the pair's own session: peer v4(2), port 2000
  for (uint8_t host : {3, 4, 9}) {
    for (uint16_t port : {1, 2000, 2001, 65535}) {
      SessionParams sp;
      fill_test_secrets(&sp, 77 + host * 100000 + port);
      sp.local_addr = v4(1);
      sp.peer_addr = v4(host);
      sp.local_port = uint16_t(3000 + port % 7);
      sp.peer_port = port;
      sp.initiator = true;
      auto sid = p.a->add_session(sp);
      ASSERT_TRUE(sid.ok()) << sid.error().message;
      made[{host, port}] = *sid;
    }
  }
  for (const auto& [key, sid] : made) {
    auto got = p.a->find_session(v4(key.first), key.second);
    ASSERT_TRUE(got.has_value()) << int(key.first) << ":" << key.second;
    EXPECT_EQ(*got, sid);
  }
  EXPECT_FALSE(p.a->find_session(v4(2), 2001).has_value());
  EXPECT_FALSE(p.a->find_session(v4(5), 2000).has_value());
  EXPECT_FALSE(p.a->find_session(v4(3), 1999).has_value());
  EXPECT_FALSE(p.a->find_session(v4(10), 1).has_value());
}

}  // namespace
}  // namespace smt::test
