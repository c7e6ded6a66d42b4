// From a captured frame to the IP packet inside it: strips the link layer
// (Ethernet with up to two VLAN tags, Linux cooked SLL/SLL2, or none) and the
// IPv4/IPv6 header and extension headers, bounds first at every step.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace smt::decode {

/// What a frame turned out to be.
enum class FrameKind : uint8_t {
  kIp,         ///< an IP packet; `payload` is what follows the IP header(s)
  kNotIp,      ///< not IPv4/IPv6 (ARP, LLDP, ...): ignored
  kTruncated,  ///< shorter than its headers claim (e.g. a small snaplen)
  kBadIp,      ///< malformed IP header
};

struct IpPacket {
  int family = 0;                 ///< 4 or 6 (also set for kTruncated when known)
  std::array<uint8_t, 16> src{};  ///< IPv4 as IPv4-mapped (::ffff:a.b.c.d)
  std::array<uint8_t, 16> dst{};
  /// IPv4 protocol or the IPv6 upper-layer header; also set (best effort)
  /// for kTruncated, so a cut-short packet of the decoded protocol is told
  /// apart from other traffic.
  uint8_t protocol = 0;
  bool fragment = false;  ///< IPv4 MF/offset or an IPv6 fragment header
  std::span<const uint8_t> payload;
};

/// Parses one frame of link type `linktype` (pcap_reader.h's kLinktype*).
FrameKind parse_frame(uint32_t linktype, std::span<const uint8_t> frame, IpPacket* out);

/// Parses an IP packet starting at its first byte.
FrameKind parse_ip(std::span<const uint8_t> pkt, IpPacket* out);

}  // namespace smt::decode
