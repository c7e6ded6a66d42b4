// The transport's central promise under a lossy, reordering, duplicating
// wire: every RPC completes exactly once with the bytes that were sent, on
// both the per-packet and the TSO layout, and nothing stays in memory after.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <random>
#include <tuple>

#include "engine_harness.h"

namespace smt::test {
namespace {

// 90 % ≤ 4 KiB, 9 % ≤ 64 KiB, 1 % ≤ 4 MiB (the transport issue's mix).
size_t draw_size(std::mt19937_64& rng) {
  const uint64_t r = rng() % 100;
  if (r < 90) return rng() % (4096 + 1);
  if (r < 99) return 4097 + rng() % (65536 - 4096);
  return 65537 + rng() % ((4u << 20) - 65536);
}

// A cheap, seed-derived payload: the echo must return exactly it.
std::vector<uint8_t> payload(size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v[i] = static_cast<uint8_t>(x);
  }
  return v;
}

struct LossCase {
  double loss;
  bool tso;
};

class EngineLoss : public ::testing::TestWithParam<LossCase> {};

TEST_P(EngineLoss, EveryRpcCompletesExactlyOnceByteIdentical) {
  const LossCase c = GetParam();
  EngineConfig ec;
  ec.tick_ns = 100'000;
  ec.rpc_timeout_ns = 30'000'000'000;
  link::MemoryWireConfig wc;
  wc.tso = c.tso;
  for (link::PathConfig* path : {&wc.a_to_b, &wc.b_to_a}) {
    path->loss = c.loss;
    path->duplicate = c.loss > 0 ? 0.01 : 0.0;
    path->reorder = c.loss > 0 ? 0.05 : 0.0;
    path->reorder_max_ns = 20'000;
    path->delay_ns = 2'000;
    path->rate_bps = 10'000'000'000ull;
  }
  wc.a_to_b.seed = 11;
  wc.b_to_a.seed = 12;
  EnginePair p(ec, ec, wc);

  const size_t total = scaled(10000);
  const size_t concurrency = 64;
  std::mt19937_64 rng(42);
  std::map<uint64_t, std::pair<size_t, uint64_t>> outstanding;  // id -> size, seed
  size_t started = 0, completed = 0;
  std::map<uint64_t, int> seen;
  auto issue = [&] {
    while (started < total && outstanding.size() < concurrency) {
      const size_t n = draw_size(rng);
      const uint64_t seed = started + 1;
      auto id = p.a->send_request(p.sa, payload(n, seed));
      ASSERT_TRUE(id.ok()) << id.error().message;
      outstanding[*id] = {n, seed};
      ++started;
    }
  };
  issue();
  p.on_step = [&] {
    while (auto ev = p.b->next_event()) {
      ASSERT_EQ(ev->kind, Event::Kind::kRequest);
      ASSERT_TRUE(p.b->send_reply(ev->session, ev->id, std::move(ev->data)).ok());
    }
    while (auto ev = p.a->next_event()) {
      ASSERT_EQ(ev->kind, Event::Kind::kResponse)
          << "RPC " << ev->id << " failed: " << std::strerror(ev->error);
      ASSERT_EQ(++seen[ev->id], 1) << "RPC " << ev->id << " completed twice";
      auto it = outstanding.find(ev->id);
      ASSERT_NE(it, outstanding.end());
      ASSERT_EQ(ev->data, payload(it->second.first, it->second.second))
          << "RPC " << ev->id << " returned other bytes";
      outstanding.erase(it);
      ++completed;
    }
    issue();
  };
  ASSERT_TRUE(p.run_until([&] { return completed == total; }, 600'000'000'000ull))
      << completed << " of " << total << " completed\n"
      << p.a->state_digest() << p.b->state_digest() << "drops a:" << drop_summary(*p.a)
      << "\ndrops b:" << drop_summary(*p.b);
  // Server state waits for ACKs; let them through.
  ASSERT_TRUE(p.run_until([&] { return p.a->rpc_count() == 0 && p.b->rpc_count() == 0; },
                          60'000'000'000ull));
  EXPECT_EQ(p.a->memory_in_use(), 0u);
  EXPECT_EQ(p.b->memory_in_use(), 0u);
  EXPECT_EQ(p.a->stats().drops.get(DropReason::kAuthFailed), 0u);
  EXPECT_EQ(p.b->stats().drops.get(DropReason::kAuthFailed), 0u);
  EXPECT_EQ(p.a->stats().rpcs_failed, 0u);
  if (c.loss > 0) {
    EXPECT_GT(p.a->stats().data_packets_resent + p.b->stats().data_packets_resent, 0u);
  }
  RecordProperty("virtual_ms", std::to_string(p.clock.now_ns() / 1000000));
}

INSTANTIATE_TEST_SUITE_P(LossRates, EngineLoss,
                         ::testing::Values(LossCase{0.0, false}, LossCase{0.01, false},
                                           LossCase{0.05, false}, LossCase{0.20, false},
                                           LossCase{0.0, true}, LossCase{0.01, true},
                                           LossCase{0.05, true}, LossCase{0.20, true}),
                         [](const auto& info) {
                           return std::string(info.param.tso ? "Tso" : "PerPacket") + "Loss" +
                                  std::to_string(static_cast<int>(info.param.loss * 100));
                         });

}  // namespace
}  // namespace smt::test
