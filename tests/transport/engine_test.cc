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

TEST(Engine, EchoRpcsOfEverySizeCompleteByteIdentical) {
  EnginePair p({}, {}, link::MemoryWireConfig{});
  std::map<uint64_t, std::vector<uint8_t>> sent;
  for (size_t n : {0ul, 1ul, 64ul, 1400ul, 4096ul, 65536ul, 1ul << 20}) {
    auto data = pattern(n, n);
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
  EXPECT_EQ(got, sent);
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
// response queues its id, and an ACK leaves when three are queued (one
// packet for three RPCs, SMT_ACK_IDS) or on the client's next tick for the
// rest; the server then frees every response without NEED_ACK.
TEST(Engine, AcksCarryThreeIdsAndTheRestLeaveOnTheNextTick) {
  EnginePair p({}, {}, link::MemoryWireConfig{});
  const int ack = (SMT_TYPE_ACK - SMT_TYPE_DATA) & 7;  // engine.h: by type, ACK in slot 0
  // Microsecond steps (not EnginePair::step, which jumps to the next timer):
  // three RPCs fit in one tick.
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
  for (int i = 0; i < 3; ++i) one_rpc();
  ASSERT_LT(p.clock.now_ns() - start, p.a->config().tick_ns) << "the RPCs straddled a tick";
  EXPECT_EQ(p.a->stats().control_packets_sent[ack], 1u) << "three responses, one ACK";
  one_rpc();
  EXPECT_EQ(p.a->stats().control_packets_sent[ack], 1u) << "the fourth id waits for the tick";
  ASSERT_TRUE(
      p.run_until([&] { return p.a->rpc_count() == 0 && p.b->rpc_count() == 0; }, 100'000'000));
  EXPECT_EQ(p.a->stats().control_packets_sent[ack], 2u);
  EXPECT_LE(p.clock.now_ns() - start, 3 * p.a->config().tick_ns);
  EXPECT_EQ(p.b->stats().control_packets_sent[SMT_TYPE_NEED_ACK - SMT_TYPE_DATA], 0u);
}

}  // namespace
}  // namespace smt::test
