// The raw IP socket link across A — W — B: batches in both address families
// with the right addresses, DSCP on the wire, DF (oversized packets are
// tx_errors), fragments dropped and counted, W sees exactly what was sent.
#include "link/raw_link.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "common/bytes.h"
#include "smt/wire.h"
#include "support/netns.h"
#include "support/test_support.h"

namespace smt::link {
namespace {

using test::IpCapture;
using test::Topology;

struct Received {
  std::vector<uint8_t> bytes;
  Addr peer{};
  Addr local{};
};

// Polls `l` until n packets arrived or timeout_ms passed without one.
std::vector<Received> receive_n(Link& l, size_t n, int timeout_ms = 2000) {
  std::vector<Received> got;
  RxPacket rx[16];
  while (got.size() < n) {
    pollfd p{l.fd(), POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) break;
    const size_t k = l.receive(rx);
    for (size_t i = 0; i < k; ++i) {
      got.push_back({{rx[i].data, rx[i].data + rx[i].len}, rx[i].peer, rx[i].local});
    }
  }
  return got;
}

std::vector<uint8_t> packet(uint32_t seq, size_t len, uint8_t type = SMT_TYPE_DATA) {
  std::vector<uint8_t> p(len);
  for (size_t i = 0; i < len; ++i) p[i] = static_cast<uint8_t>(i * 13 + seq);
  store_be32(p.data(), seq);
  p[13] = type;
  return p;
}

class RawLinkTest : public ::testing::Test {
 protected:
  void SetUp() override { SetUpWith({}); }

  void SetUpWith(const test::TopologyOptions& opts) {
    SMT_REQUIRE_OR_SKIP(test::netns_available(), "needs root, iproute2 and nsenter");
    auto t = Topology::create(opts);
    ASSERT_TRUE(t.ok()) << t.error().message;
    topo_ = std::move(t).value();
    auto cap = IpCapture::open(topo_->w(), SMT_IPPROTO_DEFAULT);
    ASSERT_TRUE(cap.ok()) << cap.error().message;
    capture_ = std::move(cap).value();
    a_ = open_in(topo_->a(), bound(Topology::kA4, Topology::kA6));
    b_ = open_in(topo_->b(), bound(Topology::kB4, Topology::kB6));
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
  }

  static RawLinkConfig bound(const char* v4, const char* v6) {
    RawLinkConfig c;
    c.local_v4 = Topology::addr(v4);
    c.local_v6 = Topology::addr(v6);
    return c;
  }

  std::unique_ptr<RawLink> open_in(const std::string& ns, const RawLinkConfig& cfg) {
    std::unique_ptr<RawLink> link;
    const Status st = test::run_in_netns(ns, [&] {
      auto l = RawLink::open(cfg);
      EXPECT_TRUE(l.ok()) << l.error().message;
      if (l.ok()) link = std::move(l).value();
    });
    EXPECT_TRUE(st.ok()) << st.error().message;
    return link;
  }

  // Sends `n` packets of `len` bytes with priorities 0..7 from A to `peer`
  // and checks B, the stats and W's capture.
  void check_batch(const Addr& peer, const Addr& from, uint32_t n, size_t len) {
    std::vector<std::vector<uint8_t>> pkts;
    std::vector<TxPacket> tx;
    for (uint32_t i = 0; i < n; ++i) pkts.push_back(packet(i, len));
    for (uint32_t i = 0; i < n; ++i) {
      tx.push_back(TxPacket{pkts[i].data(), static_cast<uint32_t>(len), peer,
                            static_cast<uint8_t>(i % 8), 0});
    }
    ASSERT_EQ(a_->send(tx), n);
    const auto got = receive_n(*b_, n);
    ASSERT_EQ(got.size(), n);
    for (uint32_t i = 0; i < n; ++i) {
      EXPECT_EQ(got[i].bytes, pkts[i]) << "packet " << i;
      EXPECT_EQ(got[i].peer, from);
      EXPECT_EQ(got[i].local, peer);
    }
    EXPECT_EQ(a_->stats().tx_packets, n);
    EXPECT_EQ(a_->stats().tx_data_packets, n);
    EXPECT_EQ(a_->stats().tx_bytes, n * len);
    EXPECT_EQ(a_->stats().tx_errors, 0u);
    EXPECT_EQ(b_->stats().rx_packets, n);
    EXPECT_EQ(b_->stats().rx_dropped, 0u);
    const auto& seen = capture_->collect(n);
    ASSERT_EQ(seen.size(), n) << "W forwards exactly the packets sent";
    for (uint32_t i = 0; i < n; ++i) {
      EXPECT_EQ(seen[i].payload, pkts[i]);
      EXPECT_EQ(seen[i].tos, (i % 8) << 5) << "DSCP = priority << 3";
      EXPECT_EQ(seen[i].src, from);
      EXPECT_EQ(seen[i].dst, peer);
      EXPECT_FALSE(seen[i].fragment);
    }
    EXPECT_EQ(capture_->kernel_drops(), 0u);
    EXPECT_EQ(capture_->count_type(SMT_TYPE_DATA), n);
    EXPECT_EQ(capture_->count_type(SMT_TYPE_GRANT), 0u);
    const std::vector<uint8_t> tail(pkts[n - 1].end() - 16, pkts[n - 1].end());
    EXPECT_TRUE(capture_->payload_contains(tail));
    const std::vector<uint8_t> absent(16, 0xee);
    EXPECT_FALSE(capture_->payload_contains(absent));
  }

  std::unique_ptr<Topology> topo_;
  std::unique_ptr<IpCapture> capture_;
  std::unique_ptr<RawLink> a_;
  std::unique_ptr<RawLink> b_;
};

TEST_F(RawLinkTest, Ipv4BatchArrivesWithPeerAndLocalAddressesAndDscp) {
  check_batch(Topology::addr(Topology::kB4), Topology::addr(Topology::kA4), 24, 1000);
}

TEST_F(RawLinkTest, Ipv6BatchArrivesWithPeerAndLocalAddressesAndDscp) {
  check_batch(Topology::addr(Topology::kB6), Topology::addr(Topology::kA6), 24, 1000);
}

TEST_F(RawLinkTest, FullMtuPacketsPassAndOneByteMoreIsATxErrorNotSent) {
  for (const bool v4 : {true, false}) {
    const Addr peer = Topology::addr(v4 ? Topology::kB4 : Topology::kB6);
    const size_t max = a_->mtu() - (v4 ? 20 : 40);
    const auto fits = packet(1, max), big = packet(2, max + 1);
    const TxPacket tx[2] = {{big.data(), static_cast<uint32_t>(big.size()), peer, 0, 0},
                            {fits.data(), static_cast<uint32_t>(fits.size()), peer, 0, 0}};
    const LinkStats before = a_->stats();
    EXPECT_EQ(a_->send(tx), 2u) << "the oversized packet is consumed";
    EXPECT_EQ(a_->stats().tx_errors - before.tx_errors, 1u);
    EXPECT_EQ(a_->stats().tx_packets - before.tx_packets, 1u);
    const auto got = receive_n(*b_, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].bytes, fits);
  }
  const auto& seen = capture_->collect(3);
  ASSERT_EQ(seen.size(), 2u) << "DF: nothing oversized was fragmented onto the wire";
  EXPECT_FALSE(seen[0].fragment);
  EXPECT_FALSE(seen[1].fragment);
}

// Two IPv4 fragments of one protocol-253 datagram, built by hand.
void send_fragments(const Addr& src, const Addr& dst) {
  const int s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);  // IP_HDRINCL
  ASSERT_GE(s, 0) << strerror(errno);
  const auto body = packet(77, 128);
  for (int part = 0; part < 2; ++part) {
    uint8_t ip[20 + 64] = {};
    ip[0] = 0x45;
    store_be16(ip + 2, sizeof ip);
    store_be16(ip + 4, 0x4242);                                 // id
    store_be16(ip + 6, part == 0 ? 0x2000 : uint16_t(64 / 8));  // MF, then offset 64
    ip[8] = 64;
    ip[9] = SMT_IPPROTO_DEFAULT;
    std::memcpy(ip + 12, src.data() + 12, 4);
    std::memcpy(ip + 16, dst.data() + 12, 4);
    std::memcpy(ip + 20, body.data() + part * 64, 64);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    std::memcpy(&to.sin_addr, dst.data() + 12, 4);
    EXPECT_EQ(sendto(s, ip, sizeof ip, 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
              ssize_t(sizeof ip))
        << strerror(errno);
  }
  close(s);
}

TEST_F(RawLinkTest, FragmentedDatagramIsDroppedAndCounted) {
  const Addr a4 = Topology::addr(Topology::kA4), b4 = Topology::addr(Topology::kB4);
  ASSERT_TRUE(test::run_in_netns(topo_->a(), [&] { send_fragments(a4, b4); }).ok());
  // A whole packet after the fragments shows when the receiver is done.
  const auto marker = packet(5, 100);
  const TxPacket tx{marker.data(), static_cast<uint32_t>(marker.size()), b4, 0, 0};
  ASSERT_EQ(a_->send({&tx, 1}), 1u);
  const auto got = receive_n(*b_, 2, 500);
  ASSERT_EQ(got.size(), 1u) << "only the marker is delivered";
  EXPECT_EQ(got[0].bytes, marker);
  EXPECT_EQ(b_->stats().rx_dropped, 1u) << "the reassembled datagram is counted";
  const auto& seen = capture_->collect(3);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_TRUE(seen[0].fragment);
  EXPECT_TRUE(seen[1].fragment);
  EXPECT_FALSE(seen[2].fragment);
}

TEST_F(RawLinkTest, TsoSegmentIsRefusedUnTaken) {
  EXPECT_FALSE(a_->supports_tso());
  const auto seg = packet(1, 3000);
  const TxPacket tx{seg.data(), static_cast<uint32_t>(seg.size()), Topology::addr(Topology::kB4), 0,
                    1000};
  EXPECT_EQ(a_->send({&tx, 1}), 0u);
  EXPECT_EQ(a_->stats().tx_errors, 1u);
  EXPECT_EQ(a_->tx_room(), 32u) << "tx_room is the batch size";
}

TEST_F(RawLinkTest, UnboundLinkFindsItsSourceAddressByRoute) {
  const auto link = open_in(topo_->a(), RawLinkConfig{});
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->local_addr(Topology::addr(Topology::kB4)), Topology::addr(Topology::kA4));
  EXPECT_EQ(link->local_addr(Topology::addr(Topology::kB6)), Topology::addr(Topology::kA6));
  EXPECT_EQ(a_->local_addr(Topology::addr(Topology::kB6)), Topology::addr(Topology::kA6));
}

TEST_F(RawLinkTest, OpenRejectsReservedProtocolNumbers) {
  for (const uint8_t proto : {uint8_t{0}, uint8_t{255}}) {
    RawLinkConfig c;
    c.protocol = proto;
    EXPECT_FALSE(RawLink::open(c).ok());
  }
  RawLinkConfig c;
  c.local_v4 = Topology::addr(Topology::kA6);
  EXPECT_FALSE(RawLink::open(c).ok()) << "an IPv6 address as local_v4";
}

class RawLinkMtuTest : public RawLinkTest {
 protected:
  void SetUp() override {
    test::TopologyOptions o;
    o.mtu = 1400;
    SetUpWith(o);
  }
};

TEST_F(RawLinkMtuTest, MtuIsReadFromTheDevice) {
  RawLinkConfig c = bound(Topology::kA4, Topology::kA6);
  c.device = Topology::kDevA;
  const auto link = open_in(topo_->a(), c);
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->mtu(), 1400u);
  EXPECT_EQ(a_->mtu(), 1500u) << "no device: 1500";
  const Addr b4 = Topology::addr(Topology::kB4);
  const auto fits = packet(1, 1400 - 20), big = packet(2, 1400 - 20 + 1);
  const TxPacket tx[2] = {{fits.data(), static_cast<uint32_t>(fits.size()), b4, 0, 0},
                          {big.data(), static_cast<uint32_t>(big.size()), b4, 0, 0}};
  EXPECT_EQ(link->send(tx), 2u);
  EXPECT_EQ(link->stats().tx_packets, 1u);
  EXPECT_EQ(link->stats().tx_errors, 1u) << "EMSGSIZE from the device MTU (DF)";
  EXPECT_EQ(receive_n(*b_, 1).size(), 1u);
}

}  // namespace
}  // namespace smt::link
