// The AF_XDP link across A — W — B. A test-only XDP program
// (xsk_redirect_test.bpf.c) on a0 / b0 hands every frame but ARP and ICMPv6
// to the AF_XDP socket of its queue, so the link's own checks are tested.
// Checked: the socket's mode (copy on veth, zero-copy refused), byte-exact
// delivery both ways against a raw link and another AF_XDP link in both
// families and many sizes, DSCP and addresses as W forwards them, frames
// recycled over many times the UMEM, the neighbour fallback (no ARP entry
// yet → fallback link, later AF_XDP), malformed frames counted, send limits.
#include "link/xsk_link.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "common/bytes.h"
#include "link/raw_link.h"
#include "smt/wire.h"
#include "support/netns.h"
#include "support/test_support.h"
#include "xsk_redirect_test.skel.h"

namespace smt::link {
namespace {

using test::IpCapture;
using test::Topology;

struct Received {
  std::vector<uint8_t> bytes;
  Addr peer{};
  Addr local{};
  uint32_t queue = 0;
};

// Polls `l` until n packets arrived or timeout_ms passed without one.
std::vector<Received> receive_n(Link& l, size_t n, int timeout_ms = 2000) {
  std::vector<Received> got;
  RxPacket rx[64];
  while (got.size() < n) {
    pollfd p{l.fd(), POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) break;
    const size_t k = l.receive(rx);
    for (size_t i = 0; i < k; ++i) {
      got.push_back({{rx[i].data, rx[i].data + rx[i].len}, rx[i].peer, rx[i].local, rx[i].queue});
    }
  }
  return got;
}

std::vector<uint8_t> packet(uint32_t seq, size_t len) {
  std::vector<uint8_t> p(len);
  for (size_t i = 0; i < len; ++i) p[i] = static_cast<uint8_t>(i * 13 + seq);
  if (len >= 4) store_be32(p.data(), seq);
  if (len > 13) p[13] = SMT_TYPE_DATA;
  return p;
}

struct SkelDeleter {
  void operator()(xsk_redirect_test_bpf* s) const { xsk_redirect_test_bpf__destroy(s); }
};
using Skel = std::unique_ptr<xsk_redirect_test_bpf, SkelDeleter>;

XskGeometry small_geometry() {
  XskGeometry g;
  g.frame_size = 2048;
  g.frame_count = 256;  // 128 receive + 128 transmit frames
  g.fill_size = g.completion_size = g.rx_size = g.tx_size = 128;
  return g;
}

class XskLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SMT_REQUIRE_OR_SKIP(test::netns_available(), "needs root, iproute2 and nsenter");
    auto t = Topology::create();
    ASSERT_TRUE(t.ok()) << t.error().message;
    topo_ = std::move(t).value();
    auto cap = IpCapture::open(topo_->w(), SMT_IPPROTO_DEFAULT);
    ASSERT_TRUE(cap.ok()) << cap.error().message;
    capture_ = std::move(cap).value();
  }

  // Loads the redirect program in `ns` and attaches it natively to `dev`.
  void attach(const std::string& ns, const char* dev, Skel* skel, int* ifindex) {
    ASSERT_TRUE(test::run_in_netns(ns, [&] {
                  *ifindex = static_cast<int>(if_nametoindex(dev));
                  ASSERT_GT(*ifindex, 0);
                  skel->reset(xsk_redirect_test_bpf__open_and_load());
                  ASSERT_NE(skel->get(), nullptr) << "load failed: " << std::strerror(errno);
                  const int prog = bpf_program__fd((*skel)->progs.xsk_redirect_test);
                  ASSERT_EQ(bpf_xdp_attach(*ifindex, prog, XDP_FLAGS_DRV_MODE, nullptr), 0)
                      << "native XDP attach on " << dev;
                }).ok());
  }

  std::unique_ptr<XskLink> open_xsk(const std::string& ns, int ifindex, const Skel& skel,
                                    Link* fallback, const XskGeometry& g = small_geometry()) {
    std::unique_ptr<XskLink> link;
    EXPECT_TRUE(test::run_in_netns(ns, [&] {
                  XskSocketConfig sc;
                  sc.ifindex = ifindex;
                  sc.queue = 0;
                  sc.geometry = g;
                  sc.mode = XskBindMode::kAuto;
                  sc.xsks_map_fd = bpf_map__fd(skel->maps.xsks_map);
                  auto s = create_xsk_socket(sc);
                  ASSERT_TRUE(s.ok()) << s.error().message;
                  XskLinkConfig lc;
                  lc.xsk = std::move(s).value();
                  lc.fallback = fallback;
                  auto l = XskLink::open(std::move(lc));
                  ASSERT_TRUE(l.ok()) << l.error().message;
                  link = std::move(l).value();
                }).ok());
    return link;
  }

  std::unique_ptr<RawLink> open_raw(const std::string& ns, const char* v4, const char* v6) {
    std::unique_ptr<RawLink> link;
    EXPECT_TRUE(test::run_in_netns(ns, [&] {
                  RawLinkConfig c;
                  c.local_v4 = Topology::addr(v4);
                  c.local_v6 = Topology::addr(v6);
                  auto l = RawLink::open(c);
                  ASSERT_TRUE(l.ok()) << l.error().message;
                  link = std::move(l).value();
                }).ok());
    return link;
  }

  // Waits until `link` has a MAC for `peer` (it triggers resolution itself).
  static bool wait_ready(XskLink& link, const Addr& peer, int ms = 5000) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!link.has_next_hop(peer)) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }

  // A side: program + AF_XDP link on a0; B side: raw link.
  void SetUpXskToRaw() {
    attach(topo_->a(), Topology::kDevA, &skel_a_, &ifindex_a_);
    ASSERT_FALSE(HasFatalFailure());
    xsk_a_ = open_xsk(topo_->a(), ifindex_a_, skel_a_, nullptr);
    raw_b_ = open_raw(topo_->b(), Topology::kB4, Topology::kB6);
    ASSERT_NE(xsk_a_, nullptr);
    ASSERT_NE(raw_b_, nullptr);
  }

  // Sends batches of every size from A's AF_XDP link to B's raw link.
  void check_xsk_to_raw(const Addr& peer, const Addr& from) {
    ASSERT_TRUE(wait_ready(*xsk_a_, peer)) << "no next hop";
    EXPECT_EQ(xsk_a_->local_addr(peer), from);
    const uint32_t max = xsk_a_->mtu() - ip_header_len(peer);
    const std::vector<size_t> sizes = {1, 13, 14, 52, 64, 300, 1000, 1400, max - 1, max};
    uint32_t seq = 0;
    uint64_t bytes = 0;
    for (const size_t len : sizes) {
      std::vector<std::vector<uint8_t>> pkts;
      std::vector<TxPacket> tx;
      for (uint32_t i = 0; i < 32; ++i) pkts.push_back(packet(seq + i, len));
      for (uint32_t i = 0; i < 32; ++i) {
        tx.push_back(TxPacket{pkts[i].data(), uint32_t(len), peer, uint8_t((seq + i) % 8), 0});
      }
      ASSERT_EQ(xsk_a_->send(tx), 32u) << "size " << len;
      const auto got = receive_n(*raw_b_, 32);
      ASSERT_EQ(got.size(), 32u) << "size " << len;
      for (uint32_t i = 0; i < 32; ++i) {
        EXPECT_EQ(got[i].bytes, pkts[i]) << "size " << len << " packet " << i;
        EXPECT_EQ(got[i].peer, from);
        EXPECT_EQ(got[i].local, peer);
      }
      seq += 32;
      bytes += 32 * len;
    }
    const LinkStats s = xsk_a_->stats();
    EXPECT_EQ(s.tx_packets, seq);
    EXPECT_EQ(s.tx_bytes, bytes);
    EXPECT_EQ(s.tx_errors, 0u);
    EXPECT_EQ(s.tx_data_packets, 32u * (sizes.size() - 2)) << "sizes 1 and 13 have no type byte";
    EXPECT_EQ(raw_b_->stats().rx_dropped, 0u);
    const auto x = xsk_a_->xsk_stats();
    EXPECT_FALSE(x.zerocopy) << "veth offers copy mode only";
    EXPECT_EQ(x.fallback_tx_packets, 0u);
    EXPECT_EQ(x.kernel_tx_invalid_descs, 0u);
    const auto& seen = capture_->collect(seq);
    ASSERT_EQ(seen.size(), seq) << "W forwards exactly the frames sent";
    for (uint32_t i = 0; i < seq; ++i) {
      EXPECT_EQ(seen[i].tos, (i % 8) << 5) << "DSCP = priority << 3";
      EXPECT_EQ(seen[i].src, from);
      EXPECT_EQ(seen[i].dst, peer);
      EXPECT_FALSE(seen[i].fragment);
    }
  }

  // Raw link on B sends to A's AF_XDP link.
  void check_raw_to_xsk(const Addr& a, const Addr& b) {
    std::vector<std::vector<uint8_t>> pkts;
    std::vector<TxPacket> tx;
    for (uint32_t i = 0; i < 40; ++i) pkts.push_back(packet(i, 20 + i * 35));
    for (uint32_t i = 0; i < 40; ++i) {
      tx.push_back(TxPacket{pkts[i].data(), uint32_t(pkts[i].size()), a, 0, 0});
    }
    const uint64_t before = xsk_a_->stats().rx_packets;
    ASSERT_EQ(raw_b_->send(tx), 40u);
    const auto got = receive_n(*xsk_a_, 40);
    ASSERT_EQ(got.size(), 40u);
    for (uint32_t i = 0; i < 40; ++i) {
      EXPECT_EQ(got[i].bytes, pkts[i]) << i;
      EXPECT_EQ(got[i].peer, b);
      EXPECT_EQ(got[i].local, a);
      EXPECT_EQ(got[i].queue, 0u);
    }
    EXPECT_EQ(xsk_a_->stats().rx_packets - before, 40u);
    EXPECT_EQ(xsk_a_->stats().rx_dropped, 0u);
  }

  std::unique_ptr<Topology> topo_;  // first: torn down last
  std::unique_ptr<IpCapture> capture_;
  Skel skel_a_, skel_b_;
  int ifindex_a_ = 0, ifindex_b_ = 0;
  std::unique_ptr<RawLink> raw_a_, raw_b_;
  std::unique_ptr<XskLink> xsk_a_, xsk_b_;
};

TEST_F(XskLinkTest, SocketIsCopyModeOnVethZeroCopyIsRefusedAndBadQueuesAreClearErrors) {
  int ifindex = 0;
  attach(topo_->a(), Topology::kDevA, &skel_a_, &ifindex);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(test::run_in_netns(topo_->a(), [&] {
                XskSocketConfig c;
                c.ifindex = ifindex;
                c.geometry = small_geometry();
                c.mode = XskBindMode::kZeroCopy;
                auto zc = create_xsk_socket(c);
                ASSERT_FALSE(zc.ok());
                EXPECT_EQ(zc.error().code, EOPNOTSUPP) << zc.error().message;
                c.mode = XskBindMode::kAuto;
                c.xsks_map_fd = bpf_map__fd(skel_a_->maps.xsks_map);
                auto s = create_xsk_socket(c);
                ASSERT_TRUE(s.ok()) << s.error().message;
                EXPECT_FALSE(s->zerocopy);
                EXPECT_TRUE(s->socket.valid());
                EXPECT_TRUE(s->umem.valid());
                EXPECT_EQ(s->queue, 0u);
                // (An XSKMAP cannot be read from user space; the delivery
                // tests show the entry works.)
                auto busy = create_xsk_socket(c);
                ASSERT_FALSE(busy.ok());
                EXPECT_EQ(busy.error().code, EBUSY) << busy.error().message;
                c.queue = 3;
                auto noq = create_xsk_socket(c);
                ASSERT_FALSE(noq.ok());
                EXPECT_EQ(noq.error().code, ENOENT) << noq.error().message;
                c.queue = 0;
                c.ifindex = 99999;
                auto nodev = create_xsk_socket(c);
                ASSERT_FALSE(nodev.ok());
                EXPECT_EQ(nodev.error().code, ENODEV);
                c.ifindex = ifindex;
                c.geometry.frame_size = 3000;
                auto geo = create_xsk_socket(c);
                ASSERT_FALSE(geo.ok());
                EXPECT_EQ(geo.error().code, EINVAL);
              }).ok());
}

TEST_F(XskLinkTest, Ipv4XskToRawIsByteExactForEverySizeWithDscpAndAddresses) {
  SetUpXskToRaw();
  ASSERT_FALSE(HasFatalFailure());
  check_xsk_to_raw(Topology::addr(Topology::kB4), Topology::addr(Topology::kA4));
}

TEST_F(XskLinkTest, Ipv6XskToRawIsByteExactForEverySizeWithDscpAndAddresses) {
  SetUpXskToRaw();
  ASSERT_FALSE(HasFatalFailure());
  check_xsk_to_raw(Topology::addr(Topology::kB6), Topology::addr(Topology::kA6));
}

TEST_F(XskLinkTest, RawToXskDeliversBothFamiliesWithAddressesAndQueue) {
  SetUpXskToRaw();
  ASSERT_FALSE(HasFatalFailure());
  check_raw_to_xsk(Topology::addr(Topology::kA4), Topology::addr(Topology::kB4));
  check_raw_to_xsk(Topology::addr(Topology::kA6), Topology::addr(Topology::kB6));
}

TEST_F(XskLinkTest, XskToXskBothWaysRecyclesFramesOverFiveTimesTheUmem) {
  attach(topo_->a(), Topology::kDevA, &skel_a_, &ifindex_a_);
  attach(topo_->b(), Topology::kDevB, &skel_b_, &ifindex_b_);
  ASSERT_FALSE(HasFatalFailure());
  xsk_a_ = open_xsk(topo_->a(), ifindex_a_, skel_a_, nullptr);
  xsk_b_ = open_xsk(topo_->b(), ifindex_b_, skel_b_, nullptr);
  ASSERT_NE(xsk_a_, nullptr);
  ASSERT_NE(xsk_b_, nullptr);
  const uint32_t total = 5 * small_geometry().frame_count;
  for (const bool v4 : {true, false}) {
    const Addr a = Topology::addr(v4 ? Topology::kA4 : Topology::kA6);
    const Addr b = Topology::addr(v4 ? Topology::kB4 : Topology::kB6);
    ASSERT_TRUE(wait_ready(*xsk_a_, b));
    ASSERT_TRUE(wait_ready(*xsk_b_, a));
    for (const bool a_to_b : {true, false}) {
      XskLink& from = a_to_b ? *xsk_a_ : *xsk_b_;
      XskLink& to = a_to_b ? *xsk_b_ : *xsk_a_;
      const Addr& dst = a_to_b ? b : a;
      const Addr& src = a_to_b ? a : b;
      // Batches of a quarter of the receive frames: the receiver holds its
      // last batch's frames until its next receive().
      for (uint32_t seq = 0; seq < total; seq += 32) {
        std::vector<std::vector<uint8_t>> pkts;
        std::vector<TxPacket> tx;
        for (uint32_t i = 0; i < 32; ++i) pkts.push_back(packet(seq + i, 60 + (seq + i) % 1300));
        for (const auto& p : pkts) tx.push_back(TxPacket{p.data(), uint32_t(p.size()), dst, 3, 0});
        ASSERT_EQ(from.send(tx), 32u) << "seq " << seq;
        const auto got = receive_n(to, 32);
        ASSERT_EQ(got.size(), 32u) << "seq " << seq;
        for (uint32_t i = 0; i < 32; ++i) {
          ASSERT_EQ(got[i].bytes, pkts[i]) << "seq " << seq + i;
          ASSERT_EQ(got[i].peer, src);
          ASSERT_EQ(got[i].local, dst);
        }
      }
    }
  }
  for (XskLink* l : {xsk_a_.get(), xsk_b_.get()}) {
    EXPECT_EQ(l->stats().tx_packets, 2u * total);
    EXPECT_EQ(l->stats().rx_packets, 2u * total);
    EXPECT_EQ(l->stats().rx_dropped, 0u);
    EXPECT_EQ(l->stats().tx_errors, 0u);
    const XskLinkStats x = l->xsk_stats();
    EXPECT_EQ(x.rx_frames, 128u);
    EXPECT_EQ(x.tx_frames, 128u);
    EXPECT_EQ(x.kernel_rx_dropped, 0u);
    EXPECT_EQ(x.kernel_rx_ring_full, 0u);
    EXPECT_EQ(x.rx_bad_desc, 0u);
    EXPECT_LE(x.tx_kicks, 2u * total / 32 + 16) << "batched wake-ups";
    EXPECT_GT(l->tx_room(), 0u);
  }
  EXPECT_EQ(capture_->collect(4 * total).size(), 4u * total);
}

TEST_F(XskLinkTest, WithoutANeighbourEntryPacketsTakeTheFallbackThenAfXdp) {
  attach(topo_->a(), Topology::kDevA, &skel_a_, &ifindex_a_);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(test::run_in_netns_cmd(topo_->a(), "ip neigh flush all"), 0);
  raw_a_ = open_raw(topo_->a(), Topology::kA4, Topology::kA6);
  raw_b_ = open_raw(topo_->b(), Topology::kB4, Topology::kB6);
  ASSERT_NE(raw_a_, nullptr);
  xsk_a_ = open_xsk(topo_->a(), ifindex_a_, skel_a_, raw_a_.get());
  ASSERT_NE(xsk_a_, nullptr);
  uint64_t fallback = 0, direct = 0;
  for (const bool v4 : {true, false}) {
    const Addr b = Topology::addr(v4 ? Topology::kB4 : Topology::kB6);
    const Addr a = Topology::addr(v4 ? Topology::kA4 : Topology::kA6);
    const auto first = packet(v4 ? 1 : 3, 200);
    const TxPacket p1{first.data(), uint32_t(first.size()), b, 0, 0};
    ASSERT_EQ(xsk_a_->send({&p1, 1}), 1u);
    ++fallback;
    EXPECT_EQ(xsk_a_->xsk_stats().fallback_tx_packets, fallback) << "no MAC yet: fallback";
    EXPECT_EQ(xsk_a_->stats().tx_packets, direct);
    EXPECT_EQ(raw_a_->stats().tx_packets, fallback);
    auto got = receive_n(*raw_b_, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].bytes, first);
    EXPECT_EQ(got[0].peer, a);

    ASSERT_TRUE(wait_ready(*xsk_a_, b)) << "resolution never completed";
    const auto second = packet(v4 ? 2 : 4, 300);
    const TxPacket p2{second.data(), uint32_t(second.size()), b, 0, 0};
    ASSERT_EQ(xsk_a_->send({&p2, 1}), 1u);
    ++direct;
    EXPECT_EQ(xsk_a_->xsk_stats().fallback_tx_packets, fallback);
    EXPECT_EQ(xsk_a_->stats().tx_packets, direct) << "now through AF_XDP";
    EXPECT_EQ(raw_a_->stats().tx_packets, fallback);
    got = receive_n(*raw_b_, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].bytes, second);
    EXPECT_EQ(got[0].peer, a);
  }
  EXPECT_GE(xsk_a_->xsk_stats().neighbour_triggers, 2u);
}

TEST_F(XskLinkTest, MalformedFramesAreCountedAndNeverDelivered) {
  attach(topo_->a(), Topology::kDevA, &skel_a_, &ifindex_a_);
  ASSERT_FALSE(HasFatalFailure());
  xsk_a_ = open_xsk(topo_->a(), ifindex_a_, skel_a_, nullptr);
  ASSERT_NE(xsk_a_, nullptr);
  UniqueFd pkt;
  MacAddr w_mac{};
  ASSERT_TRUE(test::run_in_netns(topo_->w(), [&] {
                pkt.reset(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
                ASSERT_TRUE(pkt.valid());
                ifreq ifr{};
                std::strcpy(ifr.ifr_name, Topology::kDevWA);
                ASSERT_EQ(ioctl(pkt.get(), SIOCGIFHWADDR, &ifr), 0);
                std::memcpy(w_mac.data(), ifr.ifr_hwaddr.sa_data, 6);
                sockaddr_ll ll{};
                ll.sll_family = AF_PACKET;
                ll.sll_ifindex = static_cast<int>(if_nametoindex(Topology::kDevWA));
                ASSERT_EQ(bind(pkt.get(), reinterpret_cast<sockaddr*>(&ll), sizeof ll), 0);
              }).ok());
  const Addr a4 = Topology::addr(Topology::kA4), b4 = Topology::addr(Topology::kB4);
  const Addr a6 = Topology::addr(Topology::kA6), b6 = Topology::addr(Topology::kB6);
  auto build = [&](const Addr& src, const Addr& dst, size_t len) {
    std::vector<uint8_t> f(frame_header_len(dst) + len);
    const uint32_t h =
        build_frame_headers(f.data(), {xsk_a_->mac(), w_mac, src, dst}, 253, 0, uint32_t(len), 7);
    const auto body = packet(99, len);
    std::memcpy(f.data() + h, body.data(), len);
    return f;
  };
  auto recheck = [](std::vector<uint8_t>& f) {
    store_be16(f.data() + 24, 0);
    store_be16(f.data() + 24, ipv4_header_checksum(f.data() + 14, 20));
  };
  const auto good4 = build(b4, a4, 100);
  const auto good6 = build(b6, a6, 100);
  std::vector<std::vector<uint8_t>> bad;
  auto add = [&](std::vector<uint8_t> f, auto fn) {
    fn(f);
    bad.push_back(std::move(f));
  };
  add(good4, [](auto& f) { f.resize(14); });                                    // no IP header
  add(good4, [](auto& f) { f[0] ^= 0x10; });                                    // another MAC
  add(good4, [](auto& f) { store_be16(f.data() + 12, 0x8100); });               // VLAN
  add(good4, [](auto& f) { f[24] ^= 0xff; });                                   // checksum
  add(good4, [&](auto& f) { store_be16(f.data() + 20, 0x2000), recheck(f); });  // MF
  add(good4, [&](auto& f) { f[23] = 17, recheck(f); });                         // UDP
  add(good4, [&](auto& f) { store_be16(f.data() + 16, 500), recheck(f); });     // too long
  add(good4, [&](auto& f) { store_be16(f.data() + 16, 20), recheck(f); });      // empty
  add(good4, [&](auto& f) { f[14] = 0x65, recheck(f); });                       // version 6 in v4
  add(good6, [](auto& f) { f[20] = 44; });                                      // fragment header
  add(good6, [](auto& f) { store_be16(f.data() + 18, 400); });                  // too long
  add(good6, [](auto& f) { f[20] = 6; });                                       // TCP
  for (const auto& f : bad) {
    ASSERT_EQ(send(pkt.get(), f.data(), f.size(), 0), ssize_t(f.size()));
  }
  ASSERT_EQ(send(pkt.get(), good6.data(), good6.size(), 0), ssize_t(good6.size()));
  const auto got = receive_n(*xsk_a_, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].bytes, packet(99, 100));
  EXPECT_EQ(got[0].peer, b6);
  // The bad frames went first, but a receive() batch may end before them all.
  for (int i = 0; i < 10 && xsk_a_->stats().rx_dropped < bad.size(); ++i) {
    RxPacket rx[8];
    EXPECT_EQ(xsk_a_->receive(rx), 0u);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(xsk_a_->stats().rx_dropped, bad.size());
  EXPECT_EQ(xsk_a_->stats().rx_packets, 1u);
  EXPECT_EQ(xsk_a_->xsk_stats().rx_bad_desc, 0u);
  // Every frame went back to the fill ring: the link still receives.
  ASSERT_EQ(send(pkt.get(), good4.data(), good4.size(), 0), ssize_t(good4.size()));
  ASSERT_EQ(receive_n(*xsk_a_, 1).size(), 1u);
}

TEST_F(XskLinkTest, SendStopsAtTxRoomRefusesTsoAndConsumesBadPackets) {
  SetUpXskToRaw();
  ASSERT_FALSE(HasFatalFailure());
  const Addr b = Topology::addr(Topology::kB4);
  ASSERT_TRUE(wait_ready(*xsk_a_, b));
  EXPECT_EQ(xsk_a_->tx_room(), 128u);
  const auto body = packet(1, 200);
  std::vector<TxPacket> many(300, TxPacket{body.data(), 200, b, 0, 0});
  const size_t took = xsk_a_->send(many);
  EXPECT_EQ(took, 128u) << "one call takes at most the free frames";
  EXPECT_EQ(receive_n(*raw_b_, took).size(), took);

  const auto big = packet(2, xsk_a_->mtu() - 20 + 1);
  const TxPacket too_big{big.data(), uint32_t(big.size()), b, 0, 0};
  EXPECT_EQ(xsk_a_->send({&too_big, 1}), 1u) << "consumed (DF)";
  const TxPacket tso{body.data(), 200, b, 0, 100};
  EXPECT_EQ(xsk_a_->send({&tso, 1}), 0u) << "refused, not taken";
  const TxPacket empty{nullptr, 0, b, 0, 0};
  EXPECT_EQ(xsk_a_->send({&empty, 1}), 1u);
  ASSERT_EQ(test::run_in_netns_cmd(topo_->a(), "ip route add unreachable 10.99.0.0/16"), 0);
  const TxPacket unroutable{body.data(), 200, Topology::addr("10.99.1.1"), 0, 0};
  EXPECT_EQ(xsk_a_->send({&unroutable, 1}), 1u);
  EXPECT_EQ(xsk_a_->stats().tx_errors, 4u);
  EXPECT_EQ(xsk_a_->xsk_stats().no_route, 1u);
  EXPECT_EQ(xsk_a_->stats().tx_packets, took);
  EXPECT_TRUE(receive_n(*raw_b_, 1, 200).empty()) << "none of them reached B";
  EXPECT_FALSE(xsk_a_->supports_tso());
}

TEST_F(XskLinkTest, XskToXskPacketRate) {
  attach(topo_->a(), Topology::kDevA, &skel_a_, &ifindex_a_);
  attach(topo_->b(), Topology::kDevB, &skel_b_, &ifindex_b_);
  ASSERT_FALSE(HasFatalFailure());
  XskGeometry g;  // the default: 4096 frames, 2048-entry rings
  xsk_a_ = open_xsk(topo_->a(), ifindex_a_, skel_a_, nullptr, g);
  xsk_b_ = open_xsk(topo_->b(), ifindex_b_, skel_b_, nullptr, g);
  ASSERT_NE(xsk_a_, nullptr);
  ASSERT_NE(xsk_b_, nullptr);
  const Addr b = Topology::addr(Topology::kB4);
  ASSERT_TRUE(wait_ready(*xsk_a_, b));
  for (const uint32_t len : {64u, 1400u}) {
    const auto body = packet(5, len);
    std::vector<TxPacket> batch(64, TxPacket{body.data(), len, b, 0, 0});
    const uint64_t want = 100000;
    uint64_t sent = 0, got = 0;
    RxPacket rx[64];
    const auto t0 = std::chrono::steady_clock::now();
    const auto deadline = t0 + std::chrono::seconds(20);
    while (got < want && std::chrono::steady_clock::now() < deadline) {
      if (sent < want && sent - got < 1024) {
        sent += xsk_a_->send(std::span(batch).first(std::min<uint64_t>(64, want - sent)));
      }
      got += xsk_b_->receive(rx);
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_EQ(got, want) << "every packet arrives";
    const double pps = double(got) / secs;
    std::printf("[ RATE     ] AF_XDP copy mode, one thread for both ends, %u B: %.0f pkt/s\n", len,
                pps);
    RecordProperty("pps_" + std::to_string(len), std::to_string(uint64_t(pps)));
  }
  EXPECT_EQ(xsk_b_->xsk_stats().kernel_rx_dropped, 0u);
}

}  // namespace
}  // namespace smt::link
