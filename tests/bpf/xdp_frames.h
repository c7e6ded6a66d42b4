// Ethernet frames for the XDP receive program's fixture tests: IPv4/IPv6
// around SMT packets built with the project's own C++ builders
// (write_data_header, build_control_packet), so BPF and C++ are checked
// against each other, plus the non-SMT frames the program must pass.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "wire/control_packet.h"
#include "wire/data_header.h"

namespace smt::test {

using Bytes = std::vector<uint8_t>;
using Ip6 = std::array<uint8_t, 16>;

inline constexpr size_t kEthLen = 14;
inline constexpr size_t kIpv4Len = 20;
inline constexpr size_t kIpv6Len = 40;
inline constexpr uint16_t kIpv4DontFragment = 0x4000;
inline constexpr uint16_t kIpv4MoreFragments = 0x2000;

/// DATA header (tagged under key) followed by `payload_len` record bytes.
Bytes data_packet(const DataHeader& h, const uint8_t key[kCtlKeyLen], size_t payload_len = 64);

/// A control packet built by build_control_packet; aborts the test if the
/// builder refuses it.
Bytes control_packet(const ControlPacket& c, const uint8_t key[kCtlKeyLen]);

/// Ethernet + IPv4 (no options, DF by default) + payload. `src`/`dst` in host
/// order (0x0a000001 = 10.0.0.1).
Bytes ipv4_frame(uint32_t src, uint32_t dst, uint8_t proto, const Bytes& payload,
                 uint16_t frag_field = kIpv4DontFragment);

/// Ethernet + IPv6 + payload.
Bytes ipv6_frame(const Ip6& src, const Ip6& dst, uint8_t next_header, const Bytes& payload);

/// Ethernet + IPv6 + Fragment header (next header `inner`) + payload.
Bytes ipv6_fragment_frame(const Ip6& src, const Ip6& dst, uint8_t inner, const Bytes& payload);

/// An ARP request frame.
Bytes arp_frame();

/// A minimal TCP SYN segment (20 bytes) between the given ports.
Bytes tcp_segment(uint16_t sport, uint16_t dport);

/// An ICMPv6 Neighbor Solicitation body (24 bytes) for `target`.
Bytes icmpv6_neighbor_solicitation(const Ip6& target);

}  // namespace smt::test
