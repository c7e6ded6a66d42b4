// The in-memory link pair: impairments at their configured rates, determinism
// per seed, timing in virtual time, priorities, the bounded queue, software
// TSO, the test hooks (tap, inject, capture) and real-time fd readiness.
#include "link/memory_link.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "common/bytes.h"
#include "smt/wire.h"
#include "wire/data_header.h"
#include "wire/data_packet.h"

namespace smt::link {
namespace {

Addr v4(uint8_t last) { return Addr{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, last}; }
Addr v6(uint8_t last) { return Addr{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last}; }

MemoryWireConfig base_config() {
  MemoryWireConfig c;
  c.addr_a = v4(1);
  c.addr_b = v4(2);
  return c;
}

std::unique_ptr<MemoryWire> make_wire(Clock& clock, const MemoryWireConfig& c) {
  auto w = MemoryWire::create(clock, c);
  EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().message);
  return w.ok() ? std::move(w).value() : nullptr;
}

// A packet of `len` bytes: type byte 13, a sequence number at byte 0.
std::vector<uint8_t> packet(uint32_t seq, size_t len = 100, uint8_t type = SMT_TYPE_GRANT) {
  std::vector<uint8_t> p(len, 0xab);
  store_be32(p.data(), seq);
  p[13] = type;
  return p;
}

TxPacket tx(const std::vector<uint8_t>& p, const Addr& peer, uint8_t prio = 0,
            uint32_t tso_mss = 0) {
  return TxPacket{p.data(), static_cast<uint32_t>(p.size()), peer, prio, tso_mss};
}

// Sends every packet (seq 0..n-1) from A, waiting in virtual time for queue
// room, then runs the clock until nothing is pending; returns the sequence
// numbers B received, in order.
std::vector<uint32_t> run_virtual(MemoryWire& w, VirtualClock& clock, uint32_t n, size_t len = 100,
                                  std::vector<uint64_t>* times = nullptr) {
  std::vector<uint32_t> got;
  RxPacket rx[32];
  auto drain = [&] {
    size_t k;
    while ((k = w.b().receive(rx)) > 0) {
      for (size_t i = 0; i < k; ++i) {
        got.push_back(load_be32(rx[i].data));
        if (times != nullptr) times->push_back(clock.now_ns());
      }
    }
  };
  const Addr peer = w.b().local_addr(Addr{});
  for (uint32_t i = 0; i < n;) {
    const auto p = packet(i, len);
    const TxPacket t = tx(p, peer);
    if (w.a().send({&t, 1}) == 1) {
      ++i;
      continue;
    }
    drain();
    clock.advance_to(w.next_event_ns());
  }
  for (;;) {
    drain();
    const uint64_t t = w.next_event_ns();
    if (t == UINT64_MAX) break;
    clock.advance_to(t);
  }
  return got;
}

TEST(MemoryLink, CreateRejectsMixedAddressFamilies) {
  VirtualClock clock;
  MemoryWireConfig c = base_config();
  c.addr_b = v6(2);
  EXPECT_FALSE(MemoryWire::create(clock, c).ok());
  c = base_config();
  c.a_to_b.loss = 1.5;
  EXPECT_FALSE(MemoryWire::create(clock, c).ok());
}

TEST(MemoryLink, DeliversInOrderWithAddressesAndStats) {
  VirtualClock clock;
  auto w = make_wire(clock, base_config());
  const auto data = packet(7, 200, SMT_TYPE_DATA);
  const auto ctl = packet(8, 60, SMT_TYPE_ACK);
  const TxPacket t[2] = {tx(data, v4(2)), tx(ctl, v4(2))};
  ASSERT_EQ(w->a().send(t), 2u);
  RxPacket rx[4];
  ASSERT_EQ(w->b().receive(rx), 2u);
  EXPECT_EQ(load_be32(rx[0].data), 7u);
  EXPECT_EQ(rx[0].len, 200u);
  EXPECT_EQ(rx[0].peer, v4(1));
  EXPECT_EQ(rx[0].local, v4(2));
  EXPECT_EQ(load_be32(rx[1].data), 8u);
  const LinkStats a = w->a().stats();
  EXPECT_EQ(a.tx_packets, 2u);
  EXPECT_EQ(a.tx_data_packets, 1u) << "only type 0x10 counts as DATA";
  EXPECT_EQ(a.tx_bytes, 260u);
  EXPECT_EQ(w->b().stats().rx_packets, 2u);
  EXPECT_EQ(w->b().stats().rx_bytes, 260u);
  EXPECT_EQ(w->a().receive(rx), 0u) << "nothing flows back";
}

TEST(MemoryLink, PacketToAnAddressOtherThanThePeerIsATxError) {
  VirtualClock clock;
  auto w = make_wire(clock, base_config());
  const auto p = packet(1);
  const TxPacket t = tx(p, v4(9));
  EXPECT_EQ(w->a().send({&t, 1}), 1u) << "consumed";
  EXPECT_EQ(w->a().stats().tx_errors, 1u);
  RxPacket rx[1];
  EXPECT_EQ(w->b().receive(rx), 0u);
}

TEST(MemoryLink, OversizedPacketIsConsumedAndCountedAsTxError) {
  VirtualClock clock;
  auto w = make_wire(clock, base_config());
  const auto fits = packet(1, 1500 - 20);
  const auto big = packet(2, 1500 - 20 + 1);
  const TxPacket t[2] = {tx(big, v4(2)), tx(fits, v4(2))};
  EXPECT_EQ(w->a().send(t), 2u);
  EXPECT_EQ(w->a().stats().tx_errors, 1u);
  RxPacket rx[2];
  ASSERT_EQ(w->b().receive(rx), 1u);
  EXPECT_EQ(load_be32(rx[0].data), 1u);
}

TEST(MemoryLink, LossRateIsWithinToleranceForASeed) {
  VirtualClock clock;
  MemoryWireConfig c = base_config();
  c.a_to_b.loss = 0.1;
  c.a_to_b.seed = 42;
  auto w = make_wire(clock, c);
  const uint32_t n = 20000;
  const auto got = run_virtual(*w, clock, n);
  // Binomial sigma = sqrt(n p (1-p)) ~ 42 packets; allow 5 sigma.
  EXPECT_NEAR(static_cast<double>(n - got.size()), n * 0.1, 5 * std::sqrt(n * 0.1 * 0.9));
  EXPECT_EQ(w->wire_stats(Direction::kAToB).lost, n - got.size());
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end())) << "loss alone never reorders";
}

TEST(MemoryLink, DuplicationRateIsWithinToleranceForASeed) {
  VirtualClock clock;
  MemoryWireConfig c = base_config();
  c.a_to_b.duplicate = 0.05;
  c.a_to_b.seed = 7;
  auto w = make_wire(clock, c);
  const uint32_t n = 20000;
  const auto got = run_virtual(*w, clock, n);
  const double extra = static_cast<double>(got.size() - n);
  EXPECT_NEAR(extra, n * 0.05, 5 * std::sqrt(n * 0.05 * 0.95));
  EXPECT_EQ(w->wire_stats(Direction::kAToB).duplicated, got.size() - n);
  size_t adjacent_twins = 0;
  for (size_t i = 1; i < got.size(); ++i) adjacent_twins += got[i] == got[i - 1];
  EXPECT_EQ(adjacent_twins, got.size() - n) << "a duplicate lands right after its original";
}

TEST(MemoryLink, ReorderRateIsWithinToleranceAndReallyReorders) {
  VirtualClock clock;
  MemoryWireConfig c = base_config();
  c.a_to_b.reorder = 0.2;
  c.a_to_b.reorder_max_ns = 100'000;
  c.a_to_b.delay_ns = 50'000;
  c.a_to_b.rate_bps = 1'000'000'000;  // 960 ns per 120-byte packet
  c.a_to_b.seed = 99;
  auto w = make_wire(clock, c);
  const uint32_t n = 10000;
  const auto got = run_virtual(*w, clock, n);
  ASSERT_EQ(got.size(), n) << "reordering loses nothing";
  const uint64_t reordered = w->wire_stats(Direction::kAToB).reordered;
  EXPECT_NEAR(static_cast<double>(reordered), n * 0.2, 5 * std::sqrt(n * 0.2 * 0.8));
  size_t inversions = 0;
  for (size_t i = 1; i < got.size(); ++i) inversions += got[i] < got[i - 1];
  EXPECT_GT(inversions, n / 20) << "delayed packets arrive after later ones";
  auto sorted = got;
  std::sort(sorted.begin(), sorted.end());
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(sorted[i], i);
}

TEST(MemoryLink, SameSeedGivesTheSameRunAndAnotherSeedDoesNot) {
  auto run = [](uint64_t seed) {
    VirtualClock clock;
    MemoryWireConfig c = base_config();
    c.a_to_b = PathConfig{seed, 0.1, 0.05, 0.1, 30'000, 10'000, 100'000'000, 16, 65536};
    auto w = make_wire(clock, c);
    std::vector<uint64_t> times;
    auto got = run_virtual(*w, clock, 3000, 100, &times);
    return std::make_pair(got, times);
  };
  const auto first = run(5);
  const auto second = run(5);
  EXPECT_EQ(first.first, second.first);
  EXPECT_EQ(first.second, second.second);
  EXPECT_NE(first.first, run(6).first);
}

TEST(MemoryLink, BandwidthAndDelayGiveExactArrivalTimesInVirtualTime) {
  for (const bool ipv6 : {false, true}) {
    VirtualClock clock;
    MemoryWireConfig c = base_config();
    if (ipv6) {
      c.addr_a = v6(1);
      c.addr_b = v6(2);
    }
    c.a_to_b.rate_bps = 100'000'000;  // 100 Mb/s: 80 ns per byte
    c.a_to_b.delay_ns = 1'000'000;
    c.a_to_b.queue_packets = 64;
    auto w = make_wire(clock, c);
    const uint64_t t0 = clock.now_ns();
    std::vector<std::vector<uint8_t>> pkts;
    std::vector<TxPacket> t;
    for (uint32_t i = 0; i < 10; ++i) pkts.push_back(packet(i, 1000));
    for (const auto& p : pkts) t.push_back(tx(p, c.addr_b));
    ASSERT_EQ(w->a().send(t), 10u);
    std::vector<uint64_t> times;
    RxPacket rx[16];
    for (uint64_t e; (e = w->next_event_ns()) != UINT64_MAX;) {
      clock.advance_to(e);
      for (size_t k = w->b().receive(rx); k > 0; --k) times.push_back(clock.now_ns());
    }
    ASSERT_EQ(times.size(), 10u);
    const uint64_t per_packet = (1000 + (ipv6 ? 40 : 20)) * 80;
    for (uint64_t i = 0; i < 10; ++i) {
      EXPECT_EQ(times[i] - t0, (i + 1) * per_packet + 1'000'000) << "packet " << i;
    }
  }
}

TEST(MemoryLink, HigherPriorityLeavesTheQueueFirstFifoWithinAPriority) {
  VirtualClock clock;
  MemoryWireConfig c = base_config();
  c.a_to_b.rate_bps = 10'000'000;
  auto w = make_wire(clock, c);
  const auto busy = packet(100);
  const TxPacket first = tx(busy, v4(2), 0);
  ASSERT_EQ(w->a().send({&first, 1}), 1u) << "occupies the serializer";
  const auto a = packet(1), b = packet(2), cc = packet(3), d = packet(4), e = packet(5);
  const TxPacket batch[5] = {tx(a, v4(2), 1), tx(b, v4(2), 0), tx(cc, v4(2), 7), tx(d, v4(2), 1),
                             tx(e, v4(2), 7)};
  ASSERT_EQ(w->a().send(batch), 5u);
  std::vector<uint32_t> order;
  RxPacket rx[8];
  for (uint64_t t; (t = w->next_event_ns()) != UINT64_MAX;) {
    clock.advance_to(t);
    for (size_t k = w->b().receive(rx), i = 0; i < k; ++i) order.push_back(load_be32(rx[i].data));
  }
  EXPECT_EQ(order, (std::vector<uint32_t>{100, 3, 5, 1, 4, 2}));
}

TEST(MemoryLink, BoundedQueueTakesWhatFitsAndFreesRoomAsItDrains) {
  VirtualClock clock;
  MemoryWireConfig c = base_config();
  c.a_to_b.rate_bps = 8'000'000;  // 1 us per byte: 120 us per 100-byte packet
  c.a_to_b.queue_packets = 4;
  auto w = make_wire(clock, c);
  EXPECT_EQ(w->a().tx_room(), 4u);
  std::vector<std::vector<uint8_t>> pkts;
  std::vector<TxPacket> t;
  for (uint32_t i = 0; i < 10; ++i) pkts.push_back(packet(i));
  for (const auto& p : pkts) t.push_back(tx(p, v4(2)));
  EXPECT_EQ(w->a().send(t), 4u) << "a partial send takes the first four";
  EXPECT_EQ(w->a().tx_room(), 1u) << "the serializer took the first one";
  EXPECT_EQ(w->queued(Direction::kAToB), 3u);
  clock.advance_by(120'000);
  EXPECT_EQ(w->a().tx_room(), 2u);
  EXPECT_EQ(w->a().send(std::span(t).subspan(4)), 2u);
  EXPECT_EQ(w->a().tx_room(), 0u);
  EXPECT_EQ(w->a().stats().tx_errors, 0u) << "a full queue is not an error";
}

TEST(MemoryLink, TsoCutsASegmentIntoPacketsWithAdvancingSegPos) {
  VirtualClock clock;
  MemoryWireConfig c = base_config();
  c.tso = true;
  auto w = make_wire(clock, c);
  ASSERT_TRUE(w->a().supports_tso());
  const uint8_t key[16] = {9};
  DataHeader h;
  h.sport = 1000;
  h.dport = 2000;
  h.seg_pos = 0;
  h.message_id = 42;
  h.message_length = 4000;
  h.record_index = 3;
  h.priority = 2;
  std::vector<uint8_t> record(3500);
  for (size_t i = 0; i < record.size(); ++i) record[i] = static_cast<uint8_t>(i * 7);
  std::vector<uint8_t> seg(kDataHeaderLen + record.size());
  build_data_packet(seg.data(), h, record, key);
  const TxPacket t = tx(seg, v4(2), 2, 1200);
  ASSERT_EQ(w->a().send({&t, 1}), 1u);
  RxPacket rx[8];
  ASSERT_EQ(w->b().receive(rx), 3u);
  const uint32_t expect_len[3] = {1200, 1200, 1100};
  for (uint32_t i = 0; i < 3; ++i) {
    ASSERT_EQ(rx[i].len, kDataHeaderLen + expect_len[i]);
    EXPECT_EQ(load_be32(rx[i].data + 4), i * 1200) << "seg_pos advances by the bytes before";
    EXPECT_EQ(0, std::memcmp(rx[i].data, seg.data(), 4));
    EXPECT_EQ(0, std::memcmp(rx[i].data + 8, seg.data() + 8, kDataHeaderLen - 8))
        << "the rest of the header is copied unchanged";
    EXPECT_EQ(0, std::memcmp(rx[i].data + kDataHeaderLen, record.data() + i * 1200, expect_len[i]));
    DataHeader parsed;
    DropReason why;
    ASSERT_TRUE(parse_data_header({rx[i].data, rx[i].len}, &parsed, &why));
    EXPECT_TRUE(verify_data_header_tag({rx[i].data, rx[i].len}, parsed, key))
        << "seg_pos is outside the tag";
  }
  EXPECT_EQ(w->a().stats().tx_packets, 3u);
  EXPECT_EQ(w->a().stats().tx_data_packets, 3u);
}

TEST(MemoryLink, TsoSegmentIsRefusedUnTakenWhenTsoIsOff) {
  VirtualClock clock;
  auto w = make_wire(clock, base_config());
  EXPECT_FALSE(w->a().supports_tso());
  const auto one = packet(1), seg = packet(2, 3000, SMT_TYPE_DATA), three = packet(3);
  const TxPacket t[3] = {tx(one, v4(2)), tx(seg, v4(2), 0, 1000), tx(three, v4(2))};
  EXPECT_EQ(w->a().send(t), 1u) << "send stops at the TSO segment";
  EXPECT_GT(w->a().tx_room(), 0u) << "so the caller can tell refusal from a full queue";
  EXPECT_EQ(w->a().stats().tx_errors, 1u);
}

TEST(MemoryLink, TsoSegmentWhosePacketsExceedTheMtuIsATxError) {
  VirtualClock clock;
  MemoryWireConfig c = base_config();
  c.tso = true;
  auto w = make_wire(clock, c);
  const auto seg = packet(2, 3000, SMT_TYPE_DATA);
  const TxPacket t = tx(seg, v4(2), 0, 1500 - 20 - kDataHeaderLen + 1);
  EXPECT_EQ(w->a().send({&t, 1}), 1u);
  EXPECT_EQ(w->a().stats().tx_errors, 1u);
  EXPECT_EQ(w->a().stats().tx_packets, 0u);
}

TEST(MemoryLink, TapDropsAndModifiesLandingPackets) {
  VirtualClock clock;
  auto w = make_wire(clock, base_config());
  std::vector<Direction> seen;
  w->set_tap([&](Direction d, std::span<uint8_t> pkt) {
    seen.push_back(d);
    if (load_be32(pkt.data()) % 2 == 1) return TapVerdict::kDrop;
    pkt[20] ^= 0xff;
    return TapVerdict::kPass;
  });
  std::vector<std::vector<uint8_t>> pkts;
  std::vector<TxPacket> t;
  for (uint32_t i = 0; i < 6; ++i) pkts.push_back(packet(i));
  for (const auto& p : pkts) t.push_back(tx(p, v4(2)));
  ASSERT_EQ(w->a().send(t), 6u);
  RxPacket rx[8];
  ASSERT_EQ(w->b().receive(rx), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(load_be32(rx[i].data), 2 * i);
    EXPECT_EQ(rx[i].data[20], 0xab ^ 0xff) << "the tap's change reaches the receiver";
  }
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen[0], Direction::kAToB);
  EXPECT_EQ(w->wire_stats(Direction::kAToB).tap_dropped, 3u);
  const auto back = packet(10);
  const TxPacket tb = tx(back, v4(1));
  ASSERT_EQ(w->b().send({&tb, 1}), 1u);
  EXPECT_EQ(seen.back(), Direction::kBToA);
}

TEST(MemoryLink, InjectDeliversArbitraryBytesFromThePeerAddress) {
  VirtualClock clock;
  MemoryWireConfig c = base_config();
  c.b_to_a.delay_ns = 1'000'000'000;  // inject ignores the path's delay
  auto w = make_wire(clock, c);
  bool tapped = false;
  w->set_tap([&](Direction, std::span<uint8_t>) {
    tapped = true;
    return TapVerdict::kDrop;
  });
  const std::vector<uint8_t> forged = {1, 2, 3};
  ASSERT_TRUE(w->inject(Direction::kBToA, forged).ok());
  RxPacket rx[2];
  ASSERT_EQ(w->a().receive(rx), 1u);
  EXPECT_EQ(std::vector<uint8_t>(rx[0].data, rx[0].data + rx[0].len), forged);
  EXPECT_EQ(rx[0].peer, v4(2));
  EXPECT_EQ(rx[0].local, v4(1));
  EXPECT_FALSE(tapped) << "injected packets bypass the tap";
  EXPECT_EQ(w->wire_stats(Direction::kBToA).injected, 1u);
  EXPECT_FALSE(w->inject(Direction::kBToA, {}).ok());
}

TEST(MemoryLink, CaptureRecordsEveryCrossingPacketForReplay) {
  VirtualClock clock;
  MemoryWireConfig c = base_config();
  c.a_to_b.delay_ns = 5000;
  auto w = make_wire(clock, c);
  w->set_capture(true);
  const uint64_t t0 = clock.now_ns();
  const auto p0 = packet(0), p1 = packet(1);
  const TxPacket t[2] = {tx(p0, v4(2)), tx(p1, v4(2))};
  ASSERT_EQ(w->a().send(t), 2u);
  clock.advance_by(5000);
  RxPacket rx[4];
  ASSERT_EQ(w->b().receive(rx), 2u);
  const auto cap = w->captured();
  ASSERT_EQ(cap.size(), 2u);
  EXPECT_EQ(cap[0].dir, Direction::kAToB);
  EXPECT_EQ(cap[0].time_ns, t0 + 5000);
  EXPECT_EQ(cap[1].bytes, p1);
  EXPECT_FALSE(cap[1].injected);
  ASSERT_TRUE(w->inject(cap[0].dir, cap[0].bytes).ok()) << "replay";
  ASSERT_EQ(w->b().receive(rx), 1u);
  EXPECT_EQ(std::vector<uint8_t>(rx[0].data, rx[0].data + rx[0].len), p0);
  EXPECT_EQ(w->captured().size(), 3u);
  EXPECT_TRUE(w->captured()[2].injected);
  w->clear_capture();
  EXPECT_TRUE(w->captured().empty());
}

TEST(MemoryLink, ReceivedViewsStayValidUntilTheNextReceive) {
  VirtualClock clock;
  auto w = make_wire(clock, base_config());
  const auto p0 = packet(0), p1 = packet(1);
  const TxPacket t0 = tx(p0, v4(2)), t1 = tx(p1, v4(2));
  ASSERT_EQ(w->a().send({&t0, 1}), 1u);
  RxPacket first[1];
  ASSERT_EQ(w->b().receive(first), 1u);
  ASSERT_EQ(w->a().send({&t1, 1}), 1u) << "a send must not recycle a lent buffer";
  EXPECT_EQ(load_be32(first[0].data), 0u);
  first[0].data[0] = 0x55;  // writable in place
  RxPacket second[1];
  ASSERT_EQ(w->b().receive(second), 1u);
  EXPECT_EQ(load_be32(second[0].data), 1u);
}

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

TEST(MemoryLink, RealTimeFdBecomesReadableWhenThePacketIsDue) {
  MonotonicClock clock;
  MemoryWireConfig c = base_config();
  c.a_to_b.delay_ns = 30'000'000;
  auto w = make_wire(clock, c);
  EXPECT_FALSE(readable(w->b().fd(), 0));
  const auto p = packet(1);
  const TxPacket t = tx(p, v4(2));
  const uint64_t start = clock.now_ns();
  ASSERT_EQ(w->a().send({&t, 1}), 1u);
  EXPECT_FALSE(readable(w->b().fd(), 0)) << "still in flight";
  ASSERT_TRUE(readable(w->b().fd(), 2000));
  EXPECT_GE(clock.now_ns() - start, 30'000'000u);
  RxPacket rx[2];
  ASSERT_EQ(w->b().receive(rx), 1u);
  EXPECT_FALSE(readable(w->b().fd(), 0)) << "drained: no longer readable";
  // Zero delay: readable at once through the eventfd.
  ASSERT_TRUE(w->set_path(Direction::kAToB, PathConfig{}).ok());
  ASSERT_EQ(w->a().send({&t, 1}), 1u);
  EXPECT_TRUE(readable(w->b().fd(), 0));
  ASSERT_EQ(w->b().receive(rx), 1u);
  EXPECT_FALSE(readable(w->b().fd(), 0));
}

TEST(MemoryLink, RealTimeRateLimitedQueueWakesTheReceiver) {
  MonotonicClock clock;
  MemoryWireConfig c = base_config();
  c.a_to_b.rate_bps = 8'000'000;  // 120 us per packet
  auto w = make_wire(clock, c);
  std::vector<std::vector<uint8_t>> pkts;
  std::vector<TxPacket> t;
  for (uint32_t i = 0; i < 10; ++i) pkts.push_back(packet(i));
  for (const auto& p : pkts) t.push_back(tx(p, v4(2)));
  ASSERT_EQ(w->a().send(t), 10u);
  // Only the receiver runs from here: its fd must wake it for each packet
  // the serializer finishes, though the sender never calls the link again.
  std::vector<uint32_t> got;
  RxPacket rx[4];
  while (got.size() < 10 && readable(w->b().fd(), 2000)) {
    for (size_t k = w->b().receive(rx), i = 0; i < k; ++i) got.push_back(load_be32(rx[i].data));
  }
  ASSERT_EQ(got.size(), 10u);
  for (uint32_t i = 0; i < 10; ++i) EXPECT_EQ(got[i], i);
}

TEST(MemoryLink, TwoThreadsSendAndReceiveConcurrently) {
  MonotonicClock clock;
  MemoryWireConfig c = base_config();
  c.a_to_b.delay_ns = 20'000;
  c.a_to_b.rate_bps = 2'000'000'000;
  auto w = make_wire(clock, c);
  constexpr uint32_t kCount = 20000;
  std::thread sender([&] {
    for (uint32_t i = 0; i < kCount;) {
      const auto p = packet(i);
      const TxPacket t = tx(p, v4(2));
      if (w->a().send({&t, 1}) == 1) {
        ++i;
      } else {
        std::this_thread::yield();
      }
    }
  });
  std::vector<uint32_t> got;
  RxPacket rx[64];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (got.size() < kCount && std::chrono::steady_clock::now() < deadline) {
    if (!readable(w->b().fd(), 100)) continue;
    for (size_t k = w->b().receive(rx), i = 0; i < k; ++i) got.push_back(load_be32(rx[i].data));
  }
  sender.join();
  ASSERT_EQ(got.size(), kCount);
  for (uint32_t i = 0; i < kCount; ++i) ASSERT_EQ(got[i], i);
  EXPECT_EQ(w->a().stats().tx_packets, kCount);
  EXPECT_EQ(w->b().stats().rx_packets, kCount);
}

}  // namespace
}  // namespace smt::link
