// Ethernet + IP framing of SMT packets for the AF_XDP link: building the
// headers in front of an SMT packet, and checking a received frame before the
// engine sees its SMT bytes (hostile input: bounds first, then meaning).
//
// Sent frames: Ethernet II; IPv4 with IHL 5, DF, TTL 64, DSCP = priority << 3,
// a fresh identification and a correct header checksum; or IPv6 with traffic
// class = priority << 5 (DSCP = priority << 3), flow label 0, hop limit 64 and
// no extension headers.
//
// Received frames are accepted only if they are Ethernet II to our own
// unicast MAC (no VLAN tag), carry IPv4 (version 4, IHL >= 5, valid header
// checksum, total length within the frame, no MF, offset 0) or IPv6 (version 6,
// next header = the SMT protocol, payload length within the frame), have the
// SMT protocol number and at least one SMT byte. Ethernet padding past the IP
// length is ignored.
#pragma once

#include <array>
#include <cstdint>

#include "link/link.h"

namespace smt::link {

using MacAddr = std::array<uint8_t, 6>;

inline constexpr uint32_t kEthHeaderLen = 14;
inline constexpr uint16_t kEthTypeIpv4 = 0x0800;
inline constexpr uint16_t kEthTypeIpv6 = 0x86dd;

/// Ethernet + IP header bytes in front of an SMT packet to or from `a`.
inline uint32_t frame_header_len(const Addr& a) { return kEthHeaderLen + ip_header_len(a); }

/// The addressing of one sent frame. src_ip and dst_ip are of one family.
struct FrameAddressing {
  MacAddr dst_mac{};
  MacAddr src_mac{};
  Addr src_ip{};
  Addr dst_ip{};
};

/// Writes the Ethernet and IP headers for an SMT packet of `smt_len` bytes at
/// `out`, which has frame_header_len(a.dst_ip) bytes of room; returns that
/// length. The caller has checked that the IP total length fits 16 bits.
uint32_t build_frame_headers(uint8_t* out, const FrameAddressing& a, uint8_t protocol,
                             uint8_t priority, uint32_t smt_len, uint16_t ip_id);

/// Why a received frame was not accepted.
enum class FrameVerdict : uint8_t {
  kOk,
  kTruncated,    ///< shorter than its headers or its IP length
  kNotForUs,     ///< destination MAC is not ours
  kNotIp,        ///< not IPv4/IPv6 Ethernet II (ARP, VLAN, ...)
  kBadIpHeader,  ///< version, IHL, total length below the header
  kBadChecksum,  ///< IPv4 header checksum
  kFragment,     ///< IPv4 MF or offset, IPv6 fragment header
  kNotSmt,       ///< another IP protocol or an extension header
  kEmpty,        ///< no SMT bytes at all
};

/// Name for logs and tests ("truncated", "bad_checksum", ...).
const char* frame_verdict_name(FrameVerdict v);

/// Where the SMT packet is inside an accepted frame.
struct ParsedFrame {
  uint32_t smt_offset = 0;
  uint32_t smt_len = 0;
  Addr src{};  ///< IPv4 as IPv4-mapped
  Addr dst{};
};

/// Checks `len` bytes at `frame` as above.
FrameVerdict parse_frame(const uint8_t* frame, uint32_t len, const MacAddr& own_mac,
                         uint8_t protocol, ParsedFrame* out);

/// The IPv4 header checksum of `len` bytes (the checksum field as it is).
uint16_t ipv4_header_checksum(const uint8_t* hdr, uint32_t len);

}  // namespace smt::link
