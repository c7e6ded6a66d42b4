#include "xdp_frames.h"

#include <gtest/gtest.h>

#include <cstring>

#include "common/bytes.h"

namespace smt::test {
namespace {

constexpr uint8_t kDstMac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
constexpr uint8_t kSrcMac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

Bytes ethernet(uint16_t ethertype) {
  Bytes f(kEthLen);
  std::memcpy(f.data(), kDstMac, 6);
  std::memcpy(f.data() + 6, kSrcMac, 6);
  store_be16(f.data() + 12, ethertype);
  return f;
}

uint16_t ipv4_checksum(const uint8_t* h) {
  uint32_t sum = 0;
  for (size_t i = 0; i < kIpv4Len; i += 2) sum += load_be16(h + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

Bytes data_packet(const DataHeader& h, const uint8_t key[kCtlKeyLen], size_t payload_len) {
  Bytes p(kDataHeaderLen + payload_len);
  write_data_header(p.data(), h, key);
  for (size_t i = 0; i < payload_len; ++i) p[kDataHeaderLen + i] = static_cast<uint8_t>(0xa0 + i);
  return p;
}

Bytes control_packet(const ControlPacket& c, const uint8_t key[kCtlKeyLen]) {
  Bytes p(kCtlPacketMax);
  const size_t n = build_control_packet(p.data(), c, key);
  EXPECT_NE(n, 0u) << "build_control_packet refused type " << int{c.type};
  p.resize(n);
  return p;
}

Bytes ipv4_frame(uint32_t src, uint32_t dst, uint8_t proto, const Bytes& payload,
                 uint16_t frag_field) {
  Bytes f = ethernet(0x0800);
  uint8_t ip[kIpv4Len] = {};
  ip[0] = 0x45;
  store_be16(ip + 2, static_cast<uint16_t>(kIpv4Len + payload.size()));
  store_be16(ip + 4, 0x1234);  // IP ID: outside every MAC
  store_be16(ip + 6, frag_field);
  ip[8] = 64;
  ip[9] = proto;
  store_be32(ip + 12, src);
  store_be32(ip + 16, dst);
  store_be16(ip + 10, ipv4_checksum(ip));
  f.insert(f.end(), ip, ip + kIpv4Len);
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

Bytes ipv6_frame(const Ip6& src, const Ip6& dst, uint8_t next_header, const Bytes& payload) {
  Bytes f = ethernet(0x86dd);
  uint8_t ip[kIpv6Len] = {};
  ip[0] = 0x60;
  store_be16(ip + 4, static_cast<uint16_t>(payload.size()));
  ip[6] = next_header;
  ip[7] = 64;
  std::memcpy(ip + 8, src.data(), 16);
  std::memcpy(ip + 24, dst.data(), 16);
  f.insert(f.end(), ip, ip + kIpv6Len);
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

Bytes ipv6_fragment_frame(const Ip6& src, const Ip6& dst, uint8_t inner, const Bytes& payload) {
  Bytes frag(8);
  frag[0] = inner;
  store_be16(frag.data() + 2, 0x0001);  // offset 0, M flag: the first fragment
  store_be32(frag.data() + 4, 0xabcd);
  frag.insert(frag.end(), payload.begin(), payload.end());
  return ipv6_frame(src, dst, 44, frag);
}

Bytes arp_frame() {
  Bytes f = ethernet(0x0806);
  const uint8_t arp[28] = {0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, 0x02, 0, 0,  0, 0, 1,
                           10,   0,    0,    1,    0, 0, 0,    0,    0,    0, 10, 0, 0, 2};
  f.insert(f.end(), arp, arp + sizeof arp);
  return f;
}

Bytes tcp_segment(uint16_t sport, uint16_t dport) {
  Bytes t(20);
  store_be16(t.data(), sport);
  store_be16(t.data() + 2, dport);
  store_be32(t.data() + 4, 1);
  t[12] = 0x50;
  t[13] = 0x02;  // SYN
  store_be16(t.data() + 14, 65535);
  return t;
}

Bytes icmpv6_neighbor_solicitation(const Ip6& target) {
  Bytes b(24);
  b[0] = 135;  // Neighbor Solicitation
  std::memcpy(b.data() + 8, target.data(), 16);
  return b;
}

}  // namespace smt::test
