// The AF_XDP link's pure parts: Ethernet + IP headers it builds (DF, DSCP,
// checksums, lengths) parse back to the same packet, every malformed frame
// gets its verdict, and the ring index math holds across the 2^32 wrap.
#include "link/xsk_frame.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/bytes.h"
#include "link/xsk_ring.h"
#include "link/xsk_socket.h"

namespace smt::link {
namespace {

Addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  Addr r{};
  r[10] = r[11] = 0xff;
  r[12] = a;
  r[13] = b;
  r[14] = c;
  r[15] = d;
  return r;
}

Addr v6(uint8_t last) {
  Addr r{};
  r[0] = 0xfd;
  r[1] = 0x53;
  r[15] = last;
  return r;
}

const MacAddr kUs{0x02, 0, 0, 0, 0, 0x01};
const MacAddr kThem{0x02, 0, 0, 0, 0, 0x02};

std::vector<uint8_t> frame(const Addr& src, const Addr& dst, size_t smt_len, uint8_t prio = 0) {
  std::vector<uint8_t> f(frame_header_len(dst) + smt_len);
  const uint32_t h = build_frame_headers(f.data(), FrameAddressing{kUs, kThem, src, dst}, 253, prio,
                                         static_cast<uint32_t>(smt_len), 0x1234);
  EXPECT_EQ(h, frame_header_len(dst));
  for (size_t i = 0; i < smt_len; ++i) f[h + i] = static_cast<uint8_t>(i * 7 + 1);
  return f;
}

FrameVerdict parse(const std::vector<uint8_t>& f, ParsedFrame* pf = nullptr) {
  ParsedFrame tmp;
  return parse_frame(f.data(), static_cast<uint32_t>(f.size()), kUs, 253, pf ? pf : &tmp);
}

TEST(XskFrameTest, Ipv4HeadersCarryDfDscpTtlAndAValidChecksum) {
  const auto f = frame(v4(10, 0, 0, 2), v4(10, 0, 0, 1), 100, 5);
  EXPECT_EQ(0, std::memcmp(f.data(), kUs.data(), 6));
  EXPECT_EQ(0, std::memcmp(f.data() + 6, kThem.data(), 6));
  EXPECT_EQ(load_be16(f.data() + 12), kEthTypeIpv4);
  const uint8_t* ip = f.data() + 14;
  EXPECT_EQ(ip[0], 0x45);
  EXPECT_EQ(ip[1], 5 << 5) << "DSCP = priority << 3";
  EXPECT_EQ(load_be16(ip + 2), 120);
  EXPECT_EQ(load_be16(ip + 4), 0x1234);
  EXPECT_EQ(load_be16(ip + 6), 0x4000) << "DF, no fragment offset";
  EXPECT_EQ(ip[8], 64);
  EXPECT_EQ(ip[9], 253);
  EXPECT_EQ(ipv4_header_checksum(ip, 20), 0);
  EXPECT_EQ(ip[12], 10);
  EXPECT_EQ(ip[15], 2);
  EXPECT_EQ(ip[19], 1);
}

TEST(XskFrameTest, Ipv6HeadersCarryTrafficClassAndPayloadLength) {
  const auto f = frame(v6(2), v6(1), 77, 7);
  EXPECT_EQ(load_be16(f.data() + 12), kEthTypeIpv6);
  const uint8_t* ip = f.data() + 14;
  EXPECT_EQ(load_be32(ip), 6u << 28 | uint32_t{7 << 5} << 20);
  EXPECT_EQ(load_be16(ip + 4), 77);
  EXPECT_EQ(ip[6], 253);
  EXPECT_EQ(ip[7], 64);
  EXPECT_EQ(ip[23], 2);
  EXPECT_EQ(ip[39], 1);
}

TEST(XskFrameTest, PriorityAboveSevenIsClamped) {
  const auto f = frame(v4(10, 0, 0, 2), v4(10, 0, 0, 1), 10, 200);
  EXPECT_EQ(f[15], 7 << 5);
}

TEST(XskFrameTest, BuiltFramesParseBackToTheSamePacketInBothFamilies) {
  for (const bool is4 : {true, false}) {
    const Addr src = is4 ? v4(10, 0, 0, 2) : v6(2);
    const Addr dst = is4 ? v4(10, 0, 0, 1) : v6(1);
    for (const size_t len : {1u, 52u, 1000u, 1452u}) {
      auto f = frame(src, dst, len);
      f.resize(f.size() + 6, 0);  // Ethernet padding is ignored
      ParsedFrame pf;
      ASSERT_EQ(parse(f, &pf), FrameVerdict::kOk) << len;
      EXPECT_EQ(pf.smt_offset, frame_header_len(dst));
      EXPECT_EQ(pf.smt_len, len);
      EXPECT_EQ(pf.src, src);
      EXPECT_EQ(pf.dst, dst);
      EXPECT_EQ(f[pf.smt_offset + len - 1], static_cast<uint8_t>((len - 1) * 7 + 1));
    }
  }
}

// Recomputes the IPv4 checksum after a header edit.
void fix_checksum(std::vector<uint8_t>& f) {
  store_be16(f.data() + 24, 0);
  store_be16(f.data() + 24, ipv4_header_checksum(f.data() + 14, (f[14] & 0x0f) * 4u));
}

TEST(XskFrameTest, EveryMalformedFrameGetsItsVerdict) {
  const Addr a4 = v4(10, 0, 0, 2), b4 = v4(10, 0, 0, 1);
  const auto good4 = frame(a4, b4, 60);
  const auto good6 = frame(v6(2), v6(1), 60);
  struct Case {
    const char* name;
    std::vector<uint8_t> f;
    FrameVerdict want;
  };
  std::vector<Case> cases;
  auto edit = [&](const char* name, const std::vector<uint8_t>& base, FrameVerdict want, auto fn) {
    auto f = base;
    fn(f);
    cases.push_back({name, f, want});
  };
  edit("runt", good4, FrameVerdict::kTruncated, [](auto& f) { f.resize(13); });
  edit("other mac", good4, FrameVerdict::kNotForUs, [](auto& f) { f[5] = 0x77; });
  edit("arp", good4, FrameVerdict::kNotIp, [](auto& f) { store_be16(f.data() + 12, 0x0806); });
  edit("vlan", good4, FrameVerdict::kNotIp, [](auto& f) { store_be16(f.data() + 12, 0x8100); });
  edit("ip4 short", good4, FrameVerdict::kTruncated, [](auto& f) { f.resize(14 + 19); });
  edit("ip4 version", good4, FrameVerdict::kBadIpHeader, [](auto& f) {
    f[14] = 0x55;
    fix_checksum(f);
  });
  edit("ip4 ihl 4", good4, FrameVerdict::kBadIpHeader, [](auto& f) { f[14] = 0x44; });
  edit("ip4 ihl past frame", good4, FrameVerdict::kTruncated, [](auto& f) {
    f[14] = 0x4f;
    f.resize(14 + 40);
  });
  edit("ip4 total < ihl", good4, FrameVerdict::kBadIpHeader, [](auto& f) {
    store_be16(f.data() + 16, 19);
    fix_checksum(f);
  });
  edit("ip4 total past frame", good4, FrameVerdict::kTruncated, [](auto& f) {
    store_be16(f.data() + 16, 81);
    fix_checksum(f);
  });
  edit("ip4 checksum", good4, FrameVerdict::kBadChecksum, [](auto& f) { f[24] ^= 1; });
  edit("ip4 MF", good4, FrameVerdict::kFragment, [](auto& f) {
    store_be16(f.data() + 20, 0x2000);
    fix_checksum(f);
  });
  edit("ip4 offset", good4, FrameVerdict::kFragment, [](auto& f) {
    store_be16(f.data() + 20, 0x4001);
    fix_checksum(f);
  });
  edit("ip4 tcp", good4, FrameVerdict::kNotSmt, [](auto& f) {
    f[23] = 6;
    fix_checksum(f);
  });
  edit("ip4 empty", good4, FrameVerdict::kEmpty, [](auto& f) {
    store_be16(f.data() + 16, 20);
    fix_checksum(f);
  });
  edit("ip6 short", good6, FrameVerdict::kTruncated, [](auto& f) { f.resize(14 + 39); });
  edit("ip6 version", good6, FrameVerdict::kBadIpHeader, [](auto& f) { f[14] = 0x40; });
  edit("ip6 payload past frame", good6, FrameVerdict::kTruncated,
       [](auto& f) { store_be16(f.data() + 18, 61); });
  edit("ip6 fragment header", good6, FrameVerdict::kFragment, [](auto& f) { f[20] = 44; });
  edit("ip6 hop-by-hop", good6, FrameVerdict::kNotSmt, [](auto& f) { f[20] = 0; });
  edit("ip6 empty", good6, FrameVerdict::kEmpty, [](auto& f) { store_be16(f.data() + 18, 0); });
  ASSERT_EQ(parse(good4), FrameVerdict::kOk);
  ASSERT_EQ(parse(good6), FrameVerdict::kOk);
  for (const Case& c : cases) {
    EXPECT_EQ(frame_verdict_name(parse(c.f)), std::string(frame_verdict_name(c.want))) << c.name;
  }
  // Options are allowed when the header holds together.
  auto opts = good4;
  opts.insert(opts.begin() + 34, 4, 1);  // four NOPs
  opts[14] = 0x46;
  store_be16(opts.data() + 16, 84);
  fix_checksum(opts);
  ParsedFrame pf;
  ASSERT_EQ(parse(opts, &pf), FrameVerdict::kOk);
  EXPECT_EQ(pf.smt_offset, 38u);
  EXPECT_EQ(pf.smt_len, 60u);
}

// A ring in plain memory, as the kernel would lay it out.
struct PlainRing {
  explicit PlainRing(uint32_t size, uint32_t start) : entries(size), prod(start), cons(start) {}
  XskRingMemory mem() { return {&prod, &cons, &flags, entries.data(), uint32_t(entries.size())}; }
  std::vector<uint64_t> entries;
  uint32_t prod, cons, flags = 0;
};

TEST(XskRingTest, ProducerNeverOverrunsTheConsumerAcrossTheIndexWrap) {
  PlainRing r(8, 0xfffffffau);  // wraps after 6 entries
  ProducerRing<uint64_t> p(r.mem());
  EXPECT_EQ(p.free_entries(), 8u);
  uint32_t first;
  ASSERT_EQ(p.reserve(5, &first), 5u);
  for (uint32_t i = 0; i < 5; ++i) p.slot(first + i) = 100 + i;
  EXPECT_EQ(r.prod, 0xfffffffau) << "nothing published before submit";
  p.submit();
  EXPECT_EQ(r.prod, 0xfffffffau + 5);
  EXPECT_EQ(p.outstanding(), 5u);
  EXPECT_EQ(p.reserve(9, &first), 3u) << "only the free slots";
  for (uint32_t i = 0; i < 3; ++i) p.slot(first + i) = 200 + i;
  p.submit();
  EXPECT_EQ(p.free_entries(), 0u);
  EXPECT_EQ(p.reserve(1, &first), 0u);
  EXPECT_EQ(r.prod, 2u) << "wrapped past 2^32";
  // The consumer takes 4: slots indexed modulo the size hold what was written.
  EXPECT_EQ(r.entries[0xfffffffau & 7], 100u);
  EXPECT_EQ(r.entries[(0xfffffffau + 6) & 7], 201u);
  r.cons += 4;
  EXPECT_EQ(p.free_entries(), 4u);
  EXPECT_EQ(p.outstanding(), 4u);
}

TEST(XskRingTest, ConsumerSeesOnlyPublishedEntriesAndReleasesInOneStore) {
  PlainRing r(4, 0xfffffffeu);
  ConsumerRing<uint64_t> c(r.mem());
  EXPECT_EQ(c.available(), 0u);
  for (uint32_t i = 0; i < 3; ++i) r.entries[(r.prod + i) & 3] = 7 + i;
  r.prod += 3;
  EXPECT_EQ(c.available(), 3u);
  uint32_t first;
  ASSERT_EQ(c.peek(2, &first), 2u);
  EXPECT_EQ(c.slot(first), 7u);
  EXPECT_EQ(c.slot(first + 1), 8u);
  EXPECT_EQ(c.available(), 1u);
  EXPECT_EQ(r.cons, 0xfffffffeu) << "the kernel sees nothing before release";
  ASSERT_EQ(c.peek(5, &first), 1u);
  EXPECT_EQ(c.slot(first), 9u);
  c.release();
  EXPECT_EQ(r.cons, 1u);
  EXPECT_EQ(c.available(), 0u);
}

TEST(XskRingTest, NeedWakeupFollowsTheFlag) {
  PlainRing r(4, 0);
  ProducerRing<uint64_t> p(r.mem());
  EXPECT_FALSE(p.needs_wakeup());
  r.flags = XDP_RING_NEED_WAKEUP;
  EXPECT_TRUE(p.needs_wakeup());
}

TEST(XskGeometryTest, RejectsFrameSizesRingsAndUmemOutsideTheRules) {
  XskGeometry g;
  EXPECT_TRUE(validate_geometry(g).ok());
  auto bad = [&](auto fn) {
    XskGeometry x;
    fn(x);
    return validate_geometry(x).ok() ? 0 : validate_geometry(x).error().code;
  };
  EXPECT_EQ(bad([](XskGeometry& x) { x.frame_size = 3000; }), EINVAL);
  EXPECT_EQ(bad([](XskGeometry& x) { x.frame_size = 1024; }), EINVAL);
  EXPECT_EQ(bad([](XskGeometry& x) { x.frame_count = 1000; }), EINVAL);
  EXPECT_EQ(bad([](XskGeometry& x) { x.frame_count = 1; }), EINVAL);
  EXPECT_EQ(bad([](XskGeometry& x) { x.fill_size = 0; }), EINVAL);
  EXPECT_EQ(bad([](XskGeometry& x) { x.rx_size = 100; }), EINVAL);
  EXPECT_EQ(bad([](XskGeometry& x) { x.tx_size = 65536; }), EINVAL);
  EXPECT_EQ(bad([](XskGeometry& x) {
              x.frame_size = 4096;
              x.frame_count = 1u << 19;
            }),
            EINVAL);
  EXPECT_EQ(bad([](XskGeometry& x) { x.frame_size = 4096; }), 0);
}

}  // namespace
}  // namespace smt::link
