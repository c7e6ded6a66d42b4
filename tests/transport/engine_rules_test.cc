// The transport engine's rules, one test each: the replay window never
// blocks behind a large message, SRPT latency bounds, epochs under loss,
// dead peers, and forged or replayed control packets changing nothing.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <set>

#include "engine_harness.h"
#include "record/nonce_oracle.h"
#include "smt/wire.h"
#include "transport/owner_entry.h"
#include "wire/control_packet.h"

namespace smt::test {
namespace {

void reply_all(Engine& e, size_t reply_len = SIZE_MAX) {
  while (auto ev = e.next_event()) {
    if (ev->kind != Event::Kind::kRequest) continue;
    std::vector<uint8_t> r = std::move(ev->data);
    if (reply_len != SIZE_MAX) r.assign(reply_len, 0x5a);
    ASSERT_TRUE(e.send_reply(ev->session, ev->id, std::move(r)).ok());
  }
}

link::MemoryWireConfig lossy(double loss, uint64_t rate_bps = 10'000'000'000ull) {
  link::MemoryWireConfig wc;
  for (link::PathConfig* p : {&wc.a_to_b, &wc.b_to_a}) {
    p->loss = loss;
    p->duplicate = loss > 0 ? 0.01 : 0;
    p->reorder = loss > 0 ? 0.05 : 0;
    p->reorder_max_ns = 20'000;
    p->delay_ns = 2'000;
    p->rate_bps = rate_bps;
  }
  wc.b_to_a.seed = 99;
  return wc;
}

EngineConfig fast_timers() {
  EngineConfig c;
  c.tick_ns = 100'000;
  c.rpc_timeout_ns = 30'000'000'000ull;
  return c;
}

// ---- the request window ------------------------------------------------------

TEST(EngineWindow, LargeRequestInFlightNeverBlocksSmallOnesAtTwentyPercentLoss) {
  EnginePair p(fast_timers(), fast_timers(), lossy(0.20));
  auto big = p.a->send_request(p.sa, std::vector<uint8_t>(64u << 20, 7));
  ASSERT_TRUE(big.ok()) << big.error().message;
  const size_t total = scaled(100000);
  size_t started = 0, done = 0;
  bool big_done = false;
  std::set<uint64_t> live;
  auto issue = [&] {
    while (started < total && live.size() < 256) {
      auto id = p.a->send_request(p.sa, std::vector<uint8_t>(64, 1));
      ASSERT_TRUE(id.ok()) << "request " << started << ": " << id.error().message;
      live.insert(*id);
      ++started;
    }
  };
  issue();
  p.on_step = [&] {
    reply_all(*p.b, 8);
    while (auto ev = p.a->next_event()) {
      ASSERT_EQ(ev->kind, Event::Kind::kResponse) << std::strerror(ev->error);
      if (ev->id == *big) {
        big_done = true;
      } else {
        ASSERT_EQ(live.erase(ev->id), 1u);
        ++done;
      }
    }
    issue();
  };
  ASSERT_TRUE(p.run_until([&] { return done == total && big_done; }, 600'000'000'000ull))
      << done << " small, big " << big_done;
  EXPECT_EQ(p.a->stats().window_blocked, 0u) << "a send was refused by the replay window";
  auto st = p.b->session_stats(p.sb);
  ASSERT_TRUE(st.has_value());
  EXPECT_GE(st->window_base, 2 * (total + 2)) << "the base passed every request";
}

// ---- SRPT ------------------------------------------------------------------------

TEST(EngineSrpt, SmallRpcsOvertakeALargeMessageWithinTheBound) {
  const uint64_t rate = 10'000'000'000ull;
  const uint64_t delay = 2'000;
  EngineConfig ec;
  ec.tick_ns = 100'000;
  // Unloaded: the 16 MiB request alone.
  uint64_t unloaded_ns = 0;
  {
    EnginePair p(ec, ec, lossy(0, rate));
    const uint64_t t0 = p.clock.now_ns();
    auto id = p.a->send_request(p.sa, std::vector<uint8_t>(16u << 20, 3));
    ASSERT_TRUE(id.ok());
    bool done = false;
    p.on_step = [&] {
      reply_all(*p.b, 0);
      while (auto ev = p.a->next_event()) done = ev->kind == Event::Kind::kResponse;
    };
    ASSERT_TRUE(p.run_until([&] { return done; }, 10'000'000'000ull));
    unloaded_ns = p.clock.now_ns() - t0;
  }
  EnginePair p(ec, ec, lossy(0, rate));
  const uint64_t t0 = p.clock.now_ns();
  auto big = p.a->send_request(p.sa, std::vector<uint8_t>(16u << 20, 3));
  ASSERT_TRUE(big.ok());
  uint64_t big_ns = 0;
  std::map<uint64_t, uint64_t> small_started;
  uint64_t worst_small = 0;
  size_t small_done = 0;
  p.on_step = [&] {
    reply_all(*p.b, 0);
    while (auto ev = p.a->next_event()) {
      ASSERT_EQ(ev->kind, Event::Kind::kResponse);
      if (ev->id == *big) {
        big_ns = p.clock.now_ns() - t0;
        continue;
      }
      worst_small = std::max(worst_small, p.clock.now_ns() - small_started.at(ev->id));
      small_started.erase(ev->id);
      ++small_done;
    }
    // One 64 B RPC at a time while the large message is in flight.
    if (big_ns == 0 && small_started.empty()) {
      auto id = p.a->send_request(p.sa, std::vector<uint8_t>(64, 9));
      ASSERT_TRUE(id.ok());
      small_started[*id] = p.clock.now_ns();
    }
  };
  ASSERT_TRUE(p.run_until([&] { return big_ns != 0 && small_started.empty(); }, 10'000'000'000ull));
  const uint64_t mtu_ns = 1500ull * 8 * 1'000'000'000 / rate;
  const uint64_t rtt = 2 * delay + 2 * mtu_ns;
  const uint64_t q = 16;
  const uint64_t bound = 2 * rtt + (q + 2) * mtu_ns + ec.tick_ns;
  EXPECT_GT(small_done, 100u);
  EXPECT_LE(worst_small, bound) << "worst 64 B RPC " << worst_small << " ns";
  EXPECT_LE(big_ns, unloaded_ns * 11 / 10) << "loaded " << big_ns << " unloaded " << unloaded_ns;
  RecordProperty("worst_small_ns", std::to_string(worst_small));
  RecordProperty("bound_ns", std::to_string(bound));
  RecordProperty("big_loaded_over_unloaded_permille", std::to_string(big_ns * 1000 / unloaded_ns));
}

// ---- epochs ------------------------------------------------------------------------

TEST(EngineEpochs, BothDirectionsRekeyUnderLossAndOldEpochReplaysAreDropped) {
  NonceOracle oracle;
  EngineConfig ec = fast_timers();
  ec.limits.rekey_blocks = 1000 * 89;  // ~1000 full per-packet records
  ec.nonce_oracle = &oracle;
  EnginePair p(ec, ec, lossy(0.05));
  p.wire->set_capture(true);
  std::mt19937_64 rng(5);
  std::map<uint64_t, std::vector<uint8_t>> a_out, b_out;
  size_t a_started = 0, b_started = 0, a_done = 0, b_done = 0;
  const size_t total = 1500;  // not scaled: it must cross several epochs
  auto issue = [&](Engine& e, SessionId s, size_t& started,
                   std::map<uint64_t, std::vector<uint8_t>>& out) {
    while (started < total && out.size() < 32) {
      std::vector<uint8_t> d(1 + rng() % 30000);
      for (auto& x : d) x = static_cast<uint8_t>(rng());
      auto id = e.send_request(s, d);
      ASSERT_TRUE(id.ok()) << id.error().message;
      out[*id] = std::move(d);
      ++started;
    }
  };
  auto serve = [&](Engine& e, std::map<uint64_t, std::vector<uint8_t>>& out, size_t& done) {
    while (auto ev = e.next_event()) {
      if (ev->kind == Event::Kind::kRequest) {
        ASSERT_TRUE(e.send_reply(ev->session, ev->id, std::move(ev->data)).ok());
        continue;
      }
      ASSERT_EQ(ev->kind, Event::Kind::kResponse) << std::strerror(ev->error);
      auto it = out.find(ev->id);
      ASSERT_NE(it, out.end());
      ASSERT_EQ(ev->data, it->second);
      out.erase(it);
      ++done;
    }
  };
  issue(*p.a, p.sa, a_started, a_out);
  issue(*p.b, p.sb, b_started, b_out);
  p.on_step = [&] {
    serve(*p.a, a_out, a_done);
    serve(*p.b, b_out, b_done);
    issue(*p.a, p.sa, a_started, a_out);
    issue(*p.b, p.sb, b_started, b_out);
  };
  ASSERT_TRUE(p.run_until([&] { return a_done == total && b_done == total; }, 600'000'000'000ull));
  ASSERT_TRUE(p.run_until([&] { return p.a->rpc_count() == 0 && p.b->rpc_count() == 0; },
                          60'000'000'000ull));
  auto sa = p.a->session_stats(p.sa), sb = p.b->session_stats(p.sb);
  EXPECT_GE(sa->tx_epoch, 3) << "A's sending epochs; sigma " << sa->sigma << " advanced "
                             << p.a->stats().epochs_advanced << " records "
                             << p.a->stats().records_sealed << " stale "
                             << p.a->stats().drops.get(DropReason::kStaleEpoch) << "/"
                             << p.b->stats().drops.get(DropReason::kStaleEpoch) << " unknown "
                             << p.a->stats().drops.get(DropReason::kUnknownEpoch) << "/"
                             << p.b->stats().drops.get(DropReason::kUnknownEpoch) << " norpc "
                             << p.a->stats().drops.get(DropReason::kNoRpc) << "/"
                             << p.b->stats().drops.get(DropReason::kNoRpc) << " resent "
                             << p.a->stats().data_packets_resent;
  EXPECT_GE(sb->tx_epoch, 3) << "B's sending epochs";
  EXPECT_GE(sa->rx_epoch, 3);
  EXPECT_GE(sb->rx_epoch, 3);
  EXPECT_GT(oracle.size(), 1000u) << "the oracle checked every seal";

  // Replay every epoch-0 DATA packet: nothing is delivered, all are dropped.
  const uint64_t a_drops = p.a->stats().drops.total(), b_drops = p.b->stats().drops.total();
  size_t replayed = 0;
  for (const auto& c : p.wire->captured()) {
    if (c.bytes.size() < kDataHeaderLen || c.bytes[13] != SMT_TYPE_DATA) continue;
    if (c.bytes[38] != 0 || c.bytes[39] != 0) continue;  // epoch 0 only
    ASSERT_TRUE(p.wire->inject(c.dir, c.bytes).ok());
    ++replayed;
  }
  ASSERT_GT(replayed, 100u);
  p.a->progress();
  p.b->progress();
  EXPECT_FALSE(p.a->has_event());
  EXPECT_FALSE(p.b->has_event());
  EXPECT_EQ(p.a->stats().drops.total() + p.b->stats().drops.total() - a_drops - b_drops, replayed);
  EXPECT_EQ(p.a->rpc_count() + p.b->rpc_count(), 0u);
}

// ---- dead peers ---------------------------------------------------------------------

TEST(EngineTimeout, RpcsToAVanishedPeerFailWithTimeoutWithinTheConfiguredTime) {
  EngineConfig ec;
  ec.tick_ns = 1'000'000;
  ec.rpc_timeout_ns = 200'000'000;
  link::MemoryWireConfig wc;
  EnginePair p(ec, ec, wc);
  // The peer vanishes: everything towards it is lost from now on.
  link::PathConfig gone;
  gone.loss = 1.0;
  ASSERT_TRUE(p.wire->set_path(link::Direction::kAToB, gone).ok());
  const uint64_t t0 = p.clock.now_ns();
  std::set<uint64_t> ids;
  for (int i = 0; i < 5; ++i) ids.insert(*p.a->send_request(p.sa, std::vector<uint8_t>(5000, 1)));
  std::map<uint64_t, uint64_t> failed_at;
  p.on_step = [&] {
    while (auto ev = p.a->next_event()) {
      ASSERT_EQ(ev->kind, Event::Kind::kError);
      EXPECT_EQ(ev->error, ETIMEDOUT);
      failed_at[ev->id] = p.clock.now_ns() - t0;
    }
  };
  ASSERT_TRUE(p.run_until([&] { return failed_at.size() == ids.size(); }, 10'000'000'000ull));
  for (auto [id, t] : failed_at) {
    EXPECT_LE(t, ec.rpc_timeout_ns + 2 * ec.tick_ns) << "RPC " << id;
    EXPECT_GE(t, ec.rpc_timeout_ns - ec.tick_ns) << "RPC " << id;
  }
  EXPECT_EQ(p.a->rpc_count(), 0u);
  EXPECT_EQ(p.a->memory_in_use(), 0u);
}

// ---- ids and replays -------------------------------------------------------------------

TEST(EngineIds, RequestIdsAreDenseEvenAndNeverReused) {
  EnginePair p({}, {}, link::MemoryWireConfig{});
  std::vector<uint64_t> ids;
  bool done = false;
  p.on_step = [&] {
    reply_all(*p.b);
    while (auto ev = p.a->next_event()) {
      ASSERT_EQ(ev->kind, Event::Kind::kResponse) << std::strerror(ev->error);
      done = true;
    }
  };
  for (int i = 0; i < 50; ++i) {
    auto id = p.a->send_request(p.sa, std::vector<uint8_t>(100, 1));
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
    done = false;
    ASSERT_TRUE(p.run_until([&] { return done; }, 1'000'000'000)) << "RPC " << i;
  }
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], 2 + 2 * i);
}

TEST(EngineReplay, ReplayedRequestIsDroppedBeforeDecryptAndNeverDeliveredTwice) {
  EnginePair p({}, {}, link::MemoryWireConfig{});
  p.wire->set_capture(true);
  size_t requests = 0, responses = 0;
  p.on_step = [&] {
    while (auto ev = p.b->next_event()) {
      ++requests;
      ASSERT_TRUE(p.b->send_reply(ev->session, ev->id, {}).ok());
    }
    while (p.a->next_event()) ++responses;
  };
  ASSERT_TRUE(p.a->send_request(p.sa, std::vector<uint8_t>(3000, 4)).ok());
  ASSERT_TRUE(p.run_until([&] { return responses == 1 && p.b->rpc_count() == 0; }, 1'000'000'000));
  size_t injected = 0;
  for (const auto& c : p.wire->captured()) {
    if (c.dir != link::Direction::kAToB || c.bytes[13] != SMT_TYPE_DATA) continue;
    ASSERT_TRUE(p.wire->inject(c.dir, c.bytes).ok());
    ++injected;
  }
  ASSERT_GT(injected, 0u);
  p.run_until([] { return false; }, 50'000'000);
  EXPECT_EQ(requests, 1u) << "a replayed request was delivered again";
  EXPECT_EQ(p.b->stats().drops.get(DropReason::kReplay), injected);
  EXPECT_EQ(p.b->stats().drops.get(DropReason::kAuthFailed), 0u) << "replays must not be opened";
}

// ---- forged and replayed control packets ---------------------------------------------

// Runs a lossy workload; with `inject`, forged and replayed control packets of
// every type are delivered along the way. Returns the digest after each step.
struct ControlRun {
  std::vector<std::string> digests;
  size_t first_difference = SIZE_MAX;  // step where the state left `expect`
  uint64_t bad_tag = 0, control_replay = 0, injected_forged = 0, injected_replayed = 0;
};

ControlRun control_run(bool inject, const std::vector<std::string>* expect = nullptr) {
  ControlRun out;
  EngineConfig ec = fast_timers();
  EnginePair p(ec, ec, lossy(0.05));
  p.wire->set_capture(true);
  std::mt19937_64 rng(3);
  std::mt19937_64 forge_rng(4);  // separate: the workload must not change
  size_t started = 0, done = 0;
  const size_t total = scaled(300);
  std::set<uint64_t> live;
  auto issue = [&] {
    while (started < total && live.size() < 16) {
      auto id = p.a->send_request(p.sa, std::vector<uint8_t>(1 + rng() % 200000, 2));
      live.insert(*id);
      ++started;
    }
  };
  issue();
  size_t step = 0;
  p.on_step = [&] {
    reply_all(*p.b);
    while (auto ev = p.a->next_event()) {
      live.erase(ev->id);
      ++done;
    }
    issue();
    out.digests.push_back(p.a->state_digest() + p.b->state_digest());
    const size_t i = out.digests.size() - 1;
    if (expect != nullptr && out.first_difference == SIZE_MAX &&
        (i >= expect->size() || (*expect)[i] != out.digests[i])) {
      out.first_difference = i;  // stop here: the rest would only take time
    }
    if (!inject || ++step % 40 != 0) return;
    // Replays: every control packet that already landed, byte for byte.
    auto cap = p.wire->captured();
    for (const auto& c : cap) {
      if (c.injected || c.bytes[13] == SMT_TYPE_DATA) continue;
      (void)p.wire->inject(c.dir, c.bytes);
      ++out.injected_replayed;
    }
    p.wire->clear_capture();
    // Forgeries of every type, towards both hosts, under a wrong key and
    // with fresh sequence numbers: only the tag can stop them.
    const uint8_t types[] = {SMT_TYPE_GRANT, SMT_TYPE_RESEND,   SMT_TYPE_RPC_UNKNOWN,
                             SMT_TYPE_BUSY,  SMT_TYPE_NEED_ACK, SMT_TYPE_ACK};
    uint8_t wrong_key[16];
    for (auto& x : wrong_key) x = static_cast<uint8_t>(forge_rng());
    for (uint8_t t : types) {
      for (auto d : {link::Direction::kAToB, link::Direction::kBToA}) {
        ControlPacket c;
        c.type = t;
        const bool to_b = d == link::Direction::kAToB;
        c.sport = to_b ? 1000 : 2000;
        c.dport = to_b ? 2000 : 1000;
        c.control_seq = 1'000'000 + step;
        const uint64_t id = live.empty() ? 2 : *live.begin();
        switch (t) {
          case SMT_TYPE_GRANT:
            c.message_id = to_b ? (id | 1) : id;
            c.grant_offset = 1u << 30;
            c.window_base = 1u << 20;
            break;
          case SMT_TYPE_RESEND:
            c.message_id = to_b ? (id | 1) : id;
            c.resend_length = 100000;
            break;
          case SMT_TYPE_RPC_UNKNOWN:
            c.message_id = to_b ? id : (id | 1);
            c.unknown_flags = SMT_UNKNOWN_F_DELIVERED;
            break;
          case SMT_TYPE_ACK:
            c.acked_ids[0] = id | 1;
            c.window_base = 1u << 20;
            break;
          default:
            c.message_id = id | 1;
        }
        uint8_t buf[kCtlPacketMax];
        const size_t n = build_control_packet(buf, c, wrong_key);
        if (n == 0) continue;
        (void)p.wire->inject(d, {buf, n});
        ++out.injected_forged;
      }
    }
  };
  p.run_until(
      [&] {
        return out.first_difference != SIZE_MAX ||
               (done == total && p.a->rpc_count() == 0 && p.b->rpc_count() == 0);
      },
      600'000'000'000ull);
  for (const Engine* e : {p.a.get(), p.b.get()}) {
    out.bad_tag += e->stats().drops.get(DropReason::kBadTag);
    out.control_replay += e->stats().drops.get(DropReason::kControlReplay);
  }
  return out;
}

TEST(EngineControl, ForgedAndReplayedControlPacketsOfEveryTypeChangeNothing) {
  const ControlRun clean = control_run(false);
  const ControlRun attacked = control_run(true, &clean.digests);
  ASSERT_EQ(attacked.first_difference, SIZE_MAX)
      << "state differs after step " << attacked.first_difference << ":\n"
      << attacked.digests.back() << "expected:\n"
      << (attacked.first_difference < clean.digests.size()
              ? clean.digests[attacked.first_difference]
              : std::string("(the clean run had ended)"));
  ASSERT_GT(attacked.injected_forged, 10u);
  ASSERT_GT(attacked.injected_replayed, 10u);
  for (size_t i = 0; i < std::min(clean.digests.size(), attacked.digests.size()); ++i) {
    ASSERT_EQ(attacked.digests[i], clean.digests[i]) << "state differs after step " << i;
  }
  ASSERT_EQ(attacked.digests.size(), clean.digests.size()) << "the run took a different course";
  EXPECT_EQ(attacked.bad_tag - clean.bad_tag, attacked.injected_forged);
  EXPECT_EQ(attacked.control_replay - clean.control_replay, attacked.injected_replayed);
}

}  // namespace
}  // namespace smt::test

// ---- the owner table shared with XDP (CONTRACT §3, §5) -----------------------------

namespace smt::test {
namespace {

uint64_t load(const __u64& w) { return __atomic_load_n(&w, __ATOMIC_ACQUIRE); }

TEST(EngineOwnerTable, PublishedBaseAndGrantSlotsTrackTheEngineAtEveryStep) {
  EnginePair p(fast_timers(), fast_timers(), lossy(0.05));
  smt_owner_table_entry ea{}, eb{};
  p.a->set_owner_entry(p.sa, &ea);
  p.b->set_owner_entry(p.sb, &eb);
  EXPECT_EQ(load(eb.published_base), 2u) << "a new session publishes its first id";

  const uint32_t unscheduled = p.a->config().unscheduled_bytes;
  auto big = p.a->send_request(p.sa, std::vector<uint8_t>(1u << 20, 3));
  ASSERT_TRUE(big.ok()) << big.error().message;
  EXPECT_EQ(load(ea.grant[SMT_GRANT_SLOT_INDEX(*big)]), SMT_GRANT_SLOT(*big, unscheduled))
      << "a message that needs GRANTs arms its slot at what it may already send";

  const size_t total = 300;
  size_t started = 0, done = 0;
  bool big_done = false, reply_armed = false;
  uint64_t last_base = 2;
  p.on_step = [&] {
    while (auto ev = p.b->next_event()) {
      ASSERT_EQ(ev->kind, Event::Kind::kRequest);
      const size_t len = ev->id == *big ? (1u << 20) : 64;
      ASSERT_TRUE(p.b->send_reply(ev->session, ev->id, std::vector<uint8_t>(len, 5)).ok());
    }
    while (auto ev = p.a->next_event()) {
      ASSERT_EQ(ev->kind, Event::Kind::kResponse) << std::strerror(ev->error);
      if (ev->id == *big) {
        big_done = true;
      } else {
        ++done;
      }
    }
    while (started < total && started < done + 16) {
      ASSERT_TRUE(p.a->send_request(p.sa, std::vector<uint8_t>(64, 1)).ok());
      ++started;
    }
    const uint64_t base = load(eb.published_base);
    ASSERT_EQ(base, p.b->published_base(p.sb)) << "the table lags the engine";
    ASSERT_GE(base, last_base) << "the published base went backwards";
    last_base = base;
    const uint64_t w = load(eb.grant[SMT_GRANT_SLOT_INDEX(*big | 1)]);
    if (w != 0) {
      ASSERT_EQ(w >> 32, SMT_GRANT_SLOT_HIGH(*big | 1)) << "only the big reply needs GRANTs";
      reply_armed = true;
    }
  };
  // ...and until the server has freed every reply (the client's ACKs landed).
  ASSERT_TRUE(p.run_until([&] { return done == total && big_done && p.b->rpc_count() == 0; },
                          60'000'000'000ull))
      << done << " small, big " << big_done << ", server RPCs " << p.b->rpc_count();
  EXPECT_TRUE(reply_armed) << "the server never armed its reply's slot";
  EXPECT_GE(load(eb.published_base), 2 * (total + 1)) << "the base passed every request";
  for (int i = 0; i < SMT_GRANT_SLOTS_PER_SESSION; ++i) {
    EXPECT_EQ(load(ea.grant[i]), 0u) << "slot " << i << " still armed after its message ended";
    EXPECT_EQ(load(eb.grant[i]), 0u) << "slot " << i << " still armed after its message ended";
  }

  // Detached: the old entry no longer moves. A new entry gets the base at once.
  p.b->set_owner_entry(p.sb, nullptr);
  const uint64_t frozen = load(eb.published_base);
  p.on_step = [&] { reply_all(*p.b, 64); };
  ASSERT_TRUE(p.a->send_request(p.sa, std::vector<uint8_t>(64, 1)).ok());
  ASSERT_TRUE(p.run_until([&] { return p.b->published_base(p.sb) > frozen; }, 1'000'000'000ull));
  EXPECT_EQ(load(eb.published_base), frozen);
  smt_owner_table_entry fresh{};
  p.b->set_owner_entry(p.sb, &fresh);
  EXPECT_EQ(load(fresh.published_base), p.b->published_base(p.sb));
}

TEST(EngineOwnerTable, DisarmLeavesASlotAnotherMessageArmed) {
  smt_owner_table_entry e{};
  OwnerEntry o(&e);
  o.arm(4, 100);
  o.arm(4 + SMT_GRANT_SLOTS_PER_SESSION * 2, 200);  // same slot, later message
  o.disarm(4);
  EXPECT_EQ(o.slot(4), SMT_GRANT_SLOT(4 + SMT_GRANT_SLOTS_PER_SESSION * 2, 200));
  o.disarm(4 + SMT_GRANT_SLOTS_PER_SESSION * 2);
  EXPECT_EQ(o.slot(4), 0u);
}

}  // namespace
}  // namespace smt::test
