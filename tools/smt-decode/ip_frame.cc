#include "ip_frame.h"

#include <cstring>

#include "common/bytes.h"
#include "pcap_reader.h"

namespace smt::decode {
namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;

bool is_vlan(uint16_t type) { return type == 0x8100 || type == 0x88a8 || type == 0x9100; }

// The IP packet after a link header whose EtherType is `type`.
FrameKind by_ethertype(uint16_t type, std::span<const uint8_t> rest, IpPacket* out) {
  if (type != kEtherIpv4 && type != kEtherIpv6) return FrameKind::kNotIp;
  if (rest.empty()) return FrameKind::kTruncated;
  const int version = rest[0] >> 4;
  if ((type == kEtherIpv4) != (version == 4)) return FrameKind::kBadIp;
  return parse_ip(rest, out);
}

FrameKind parse_ipv4(std::span<const uint8_t> p, IpPacket* out) {
  if (p.size() < 20) return FrameKind::kTruncated;
  out->family = 4;
  out->protocol = p[9];  // known even when the rest is cut short
  const size_t ihl = size_t{p[0] & 0x0fu} * 4;
  const size_t total = load_be16(&p[2]);
  if (ihl < 20 || total < ihl) return FrameKind::kBadIp;
  if (ihl > p.size() || total > p.size()) return FrameKind::kTruncated;
  out->fragment = (load_be16(&p[6]) & 0x3fff) != 0;
  out->src = {};
  out->dst = {};
  out->src[10] = out->src[11] = out->dst[10] = out->dst[11] = 0xff;
  std::memcpy(&out->src[12], &p[12], 4);
  std::memcpy(&out->dst[12], &p[16], 4);
  // Bytes past `total` are link padding (Ethernet's 60-byte minimum).
  out->payload = p.subspan(ihl, total - ihl);
  return FrameKind::kIp;
}

FrameKind parse_ipv6(std::span<const uint8_t> p, IpPacket* out) {
  if (p.size() < 40) return FrameKind::kTruncated;
  out->family = 6;
  out->protocol = p[6];  // refined below once the extension headers are walked
  const size_t plen = load_be16(&p[4]);
  if (plen == 0) return FrameKind::kBadIp;  // jumbograms: SMT never sends them
  if (40 + plen > p.size()) return FrameKind::kTruncated;
  out->fragment = false;
  std::memcpy(out->src.data(), &p[8], 16);
  std::memcpy(out->dst.data(), &p[24], 16);
  uint8_t next = p[6];
  size_t off = 40;
  const size_t end = 40 + plen;
  // Hop-by-hop, routing, destination options and fragment headers; at most a
  // handful, so a chain of them cannot make this loop long.
  for (int hops = 0; hops < 8; ++hops) {
    if (next == 0 || next == 43 || next == 60) {
      if (end - off < 8) return FrameKind::kTruncated;
      const size_t len = (size_t{p[off + 1]} + 1) * 8;
      if (len > end - off) return FrameKind::kTruncated;
      next = p[off];
      off += len;
    } else if (next == 44) {
      if (end - off < 8) return FrameKind::kTruncated;
      out->fragment = true;
      next = p[off];
      off += 8;
    } else {
      break;
    }
  }
  out->protocol = next;
  out->payload = p.subspan(off, end - off);
  return FrameKind::kIp;
}

}  // namespace

FrameKind parse_ip(std::span<const uint8_t> pkt, IpPacket* out) {
  if (pkt.empty()) return FrameKind::kTruncated;
  switch (pkt[0] >> 4) {
    case 4:
      return parse_ipv4(pkt, out);
    case 6:
      return parse_ipv6(pkt, out);
    default:
      return FrameKind::kNotIp;
  }
}

FrameKind parse_frame(uint32_t linktype, std::span<const uint8_t> f, IpPacket* out) {
  switch (linktype) {
    case kLinktypeRaw:
    case kLinktypeDltRaw12:
    case kLinktypeDltRaw14:
      return parse_ip(f, out);
    case kLinktypeIpv4:
      if (!f.empty() && (f[0] >> 4) != 4) return FrameKind::kBadIp;
      return parse_ip(f, out);
    case kLinktypeIpv6:
      if (!f.empty() && (f[0] >> 4) != 6) return FrameKind::kBadIp;
      return parse_ip(f, out);
    case kLinktypeEthernet: {
      if (f.size() < 14) return FrameKind::kTruncated;
      size_t off = 12;
      uint16_t type = load_be16(&f[off]);
      for (int tags = 0; tags < 2 && is_vlan(type); ++tags) {
        off += 4;
        if (f.size() < off + 2) return FrameKind::kTruncated;
        type = load_be16(&f[off]);
      }
      return by_ethertype(type, f.subspan(off + 2), out);
    }
    case kLinktypeLinuxSll:  // 16 bytes; protocol at 14
      if (f.size() < 16) return FrameKind::kTruncated;
      return by_ethertype(load_be16(&f[14]), f.subspan(16), out);
    case kLinktypeLinuxSll2:  // 20 bytes; protocol at 0
      if (f.size() < 20) return FrameKind::kTruncated;
      return by_ethertype(load_be16(&f[0]), f.subspan(20), out);
    default:
      return FrameKind::kNotIp;
  }
}

}  // namespace smt::decode
