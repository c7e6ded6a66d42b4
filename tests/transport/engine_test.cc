// The transport engine over the in-memory wire, in virtual time.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "engine_harness.h"

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
}  // namespace
}  // namespace smt::test
