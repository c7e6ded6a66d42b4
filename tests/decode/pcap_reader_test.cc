// The pcap reader and the link/IP parsers on crafted bytes: every
// malformation is a clear error, both byte orders and both timestamp
// resolutions read the same, every supported link type yields the IP packet.
#include "pcap_reader.h"

#include <gtest/gtest.h>

#include "decode_test_util.h"
#include "ip_frame.h"

namespace smt::decode::test {
namespace {

// Little helpers that write pcap fields in a chosen byte order.
struct PcapBytes {
  bool big_endian = false;
  std::vector<uint8_t> b;
  void u16(uint16_t v) {
    if (big_endian) {
      b.push_back(static_cast<uint8_t>(v >> 8));
      b.push_back(static_cast<uint8_t>(v));
    } else {
      b.push_back(static_cast<uint8_t>(v));
      b.push_back(static_cast<uint8_t>(v >> 8));
    }
  }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) {
      const int shift = big_endian ? 8 * (3 - i) : 8 * i;
      b.push_back(static_cast<uint8_t>(v >> shift));
    }
  }
  void header(uint32_t magic, uint32_t linktype) {
    u32(magic);
    u16(2);
    u16(4);
    u32(0);
    u32(0);
    u32(65535);
    u32(linktype);
  }
  void record(uint32_t sec, uint32_t frac, const std::vector<uint8_t>& data, uint32_t caplen,
              uint32_t len) {
    u32(sec);
    u32(frac);
    u32(caplen);
    u32(len);
    b.insert(b.end(), data.begin(), data.end());
  }
  void record(uint32_t sec, uint32_t frac, const std::vector<uint8_t>& data) {
    record(sec, frac, data, static_cast<uint32_t>(data.size()), static_cast<uint32_t>(data.size()));
  }
};

constexpr uint32_t kMicro = 0xa1b2c3d4, kNano = 0xa1b23c4d;

// A minimal IPv4 packet of protocol 253 from 10.0.0.1 to 10.0.0.2.
std::vector<uint8_t> ipv4_packet(const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> p = {0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 253, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2};
  const size_t total = p.size() + payload.size();
  p[2] = static_cast<uint8_t>(total >> 8);
  p[3] = static_cast<uint8_t>(total);
  p.insert(p.end(), payload.begin(), payload.end());
  return p;
}

std::vector<uint8_t> ipv6_packet(uint8_t next, const std::vector<uint8_t>& rest) {
  std::vector<uint8_t> p(40, 0);
  p[0] = 0x60;
  p[4] = static_cast<uint8_t>(rest.size() >> 8);
  p[5] = static_cast<uint8_t>(rest.size());
  p[6] = next;
  p[7] = 64;
  p[8] = 0xfd;
  p[23] = 1;
  p[24] = 0xfd;
  p[39] = 2;
  p.insert(p.end(), rest.begin(), rest.end());
  return p;
}

Result<std::unique_ptr<PcapReader>> open_bytes(const TempDir& d, const std::vector<uint8_t>& b) {
  write_bytes(d.file("c.pcap"), b);
  return PcapReader::open(d.file("c.pcap"));
}

// The error of the first next() (or of open()).
std::string first_error(const TempDir& d, const std::vector<uint8_t>& b) {
  auto r = open_bytes(d, b);
  if (!r.ok()) return r.error().message;
  auto f = (*r)->next();
  return f.ok() ? "" : f.error().message;
}

TEST(PcapReader, WrongMagicIsRejectedNamingIt) {
  TempDir d;
  PcapBytes p;
  p.header(0x12345678, 1);
  EXPECT_NE(first_error(d, p.b).find("not a pcap file (magic 0x12345678)"), std::string::npos);
}

TEST(PcapReader, PcapngIsRejectedWithAConversionHint) {
  TempDir d;
  PcapBytes p;
  p.header(0x0a0d0d0a, 1);
  EXPECT_NE(first_error(d, p.b).find("pcapng is not supported"), std::string::npos);
}

TEST(PcapReader, TruncatedFileHeaderIsAnError) {
  TempDir d;
  PcapBytes p;
  p.header(kMicro, 101);
  p.b.resize(10);
  EXPECT_NE(first_error(d, p.b).find("truncated pcap file header (10 of 24 bytes)"),
            std::string::npos);
}

TEST(PcapReader, TruncatedRecordHeaderIsAnError) {
  TempDir d;
  PcapBytes p;
  p.header(kMicro, 101);
  p.u32(1);
  p.u32(2);
  EXPECT_NE(first_error(d, p.b).find("record 1: truncated record header (8 of 16 bytes)"),
            std::string::npos);
}

TEST(PcapReader, RecordCutShortByTheEndOfFileIsAnError) {
  TempDir d;
  PcapBytes p;
  p.header(kMicro, 101);
  p.record(1, 0, ipv4_packet({1, 2, 3}));
  p.record(1, 0, std::vector<uint8_t>(50, 0), 100, 100);
  auto r = open_bytes(d, p.b);
  ASSERT_TRUE(r.ok());
  auto f1 = (*r)->next();
  ASSERT_TRUE(f1.ok() && f1->has_value());
  auto f2 = (*r)->next();
  ASSERT_FALSE(f2.ok());
  EXPECT_NE(f2.error().message.find("record 2: truncated record (50 of 100 bytes)"),
            std::string::npos)
      << f2.error().message;
}

TEST(PcapReader, HugeCaplenIsRefusedBeforeAnyAllocation) {
  TempDir d;
  PcapBytes p;
  p.header(kMicro, 101);
  p.record(1, 0, {}, 0xfffffff0u, 0xfffffff0u);
  EXPECT_NE(first_error(d, p.b).find("captured length 4294967280 exceeds the limit"),
            std::string::npos);
}

TEST(PcapReader, UnsupportedLinkTypeAndVersionAreRejected) {
  TempDir d;
  PcapBytes p;
  p.header(kMicro, 105);  // IEEE 802.11
  EXPECT_NE(first_error(d, p.b).find("unsupported link type 105"), std::string::npos);
  PcapBytes v;
  v.header(kMicro, 1);
  v.b[4] = 3;
  EXPECT_NE(first_error(d, v.b).find("unsupported pcap version 3"), std::string::npos);
}

TEST(PcapReader, TimestampFractionOutOfRangeIsAnError) {
  TempDir d;
  PcapBytes p;
  p.header(kMicro, 101);
  p.record(1, 1'000'000, ipv4_packet({}));
  EXPECT_NE(first_error(d, p.b).find("timestamp fraction 1000000 out of range"), std::string::npos);
}

TEST(PcapReader, BothByteOrdersAndBothResolutionsReadTheSameFrames) {
  TempDir d;
  const auto pkt = ipv4_packet({9, 8, 7});
  for (bool be : {false, true}) {
    for (bool nano : {false, true}) {
      PcapBytes p;
      p.big_endian = be;
      p.header(nano ? kNano : kMicro, 101);
      p.record(1700000000, nano ? 123456789 : 123456, pkt);
      auto r = open_bytes(d, p.b);
      ASSERT_TRUE(r.ok()) << r.error().message;
      EXPECT_EQ((*r)->linktype(), 101u);
      EXPECT_EQ((*r)->nanosecond(), nano);
      auto f = (*r)->next();
      ASSERT_TRUE(f.ok() && f->has_value()) << "be=" << be << " nano=" << nano;
      EXPECT_EQ((*f)->ts_sec, 1700000000u);
      EXPECT_EQ((*f)->ts_nsec, nano ? 123456789u : 123456000u);
      EXPECT_EQ(std::vector<uint8_t>((*f)->data.begin(), (*f)->data.end()), pkt);
      auto end = (*r)->next();
      ASSERT_TRUE(end.ok());
      EXPECT_FALSE(end->has_value()) << "a clean end of file is not an error";
    }
  }
}

TEST(IpFrame, EveryLinkTypeYieldsTheSamePacket) {
  const std::vector<uint8_t> smt = {0xaa, 0xbb, 0xcc};
  const auto ip = ipv4_packet(smt);
  std::vector<uint8_t> eth = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00};
  eth.insert(eth.end(), ip.begin(), ip.end());
  eth.resize(std::max<size_t>(eth.size(), 60), 0);  // Ethernet padding is ignored
  std::vector<uint8_t> vlan = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x81, 0x00, 0, 5, 0x08, 0x00};
  vlan.insert(vlan.end(), ip.begin(), ip.end());
  std::vector<uint8_t> sll(16, 0);
  sll[14] = 0x08;
  sll.insert(sll.end(), ip.begin(), ip.end());
  std::vector<uint8_t> sll2(20, 0);
  sll2[0] = 0x08;
  sll2.insert(sll2.end(), ip.begin(), ip.end());
  const std::pair<uint32_t, std::vector<uint8_t>> cases[] = {
      {kLinktypeRaw, ip},        {kLinktypeIpv4, ip},      {kLinktypeEthernet, eth},
      {kLinktypeEthernet, vlan}, {kLinktypeLinuxSll, sll}, {kLinktypeLinuxSll2, sll2},
  };
  for (const auto& [lt, frame] : cases) {
    IpPacket p;
    ASSERT_EQ(parse_frame(lt, frame, &p), FrameKind::kIp) << "linktype " << lt;
    EXPECT_EQ(p.family, 4);
    EXPECT_EQ(p.protocol, 253);
    EXPECT_EQ(p.src[15], 1);
    EXPECT_EQ(p.src[10], 0xff) << "IPv4 is IPv4-mapped";
    EXPECT_EQ(p.dst[15], 2);
    EXPECT_EQ(std::vector<uint8_t>(p.payload.begin(), p.payload.end()), smt) << "linktype " << lt;
  }
  std::vector<uint8_t> arp = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x06, 0, 1};
  IpPacket p;
  EXPECT_EQ(parse_frame(kLinktypeEthernet, arp, &p), FrameKind::kNotIp);
}

TEST(IpFrame, Ipv6ExtensionHeadersAreWalkedAndFragmentsFlagged) {
  // Destination options (8 bytes) then protocol 253.
  std::vector<uint8_t> rest = {253, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad};
  IpPacket p;
  ASSERT_EQ(parse_ip(ipv6_packet(60, rest), &p), FrameKind::kIp);
  EXPECT_EQ(p.family, 6);
  EXPECT_EQ(p.protocol, 253);
  EXPECT_FALSE(p.fragment);
  EXPECT_EQ(p.src[0], 0xfd);
  EXPECT_EQ(p.payload.size(), 2u);
  std::vector<uint8_t> frag = {253, 0, 0, 1, 0, 0, 0, 7, 0xde};
  ASSERT_EQ(parse_ip(ipv6_packet(44, frag), &p), FrameKind::kIp);
  EXPECT_TRUE(p.fragment);
  // An extension header longer than the packet.
  std::vector<uint8_t> longopt = {253, 5, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(parse_ip(ipv6_packet(60, longopt), &p), FrameKind::kTruncated);
}

TEST(IpFrame, LengthsBeyondTheCapturedBytesAreTruncationNotReads) {
  auto ip = ipv4_packet(std::vector<uint8_t>(100, 1));
  ip.resize(60);  // snaplen cut
  IpPacket p;
  EXPECT_EQ(parse_ip(ip, &p), FrameKind::kTruncated);
  EXPECT_EQ(p.protocol, 253) << "still recognisable as SMT";
  EXPECT_EQ(p.family, 4);
  auto bad = ipv4_packet({});
  bad[0] = 0x44;  // IHL 16 bytes
  EXPECT_EQ(parse_ip(bad, &p), FrameKind::kBadIp);
  auto six = ipv6_packet(253, {1, 2, 3});
  six.resize(41);
  EXPECT_EQ(parse_ip(six, &p), FrameKind::kTruncated);
  EXPECT_EQ(parse_frame(kLinktypeLinuxSll2, std::vector<uint8_t>(19, 0), &p),
            FrameKind::kTruncated);
}

}  // namespace
}  // namespace smt::decode::test
