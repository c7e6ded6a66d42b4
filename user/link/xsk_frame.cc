#include "link/xsk_frame.h"

#include <algorithm>
#include <cstring>

#include "common/bytes.h"
#include "smt/wire.h"

namespace smt::link {

namespace {

constexpr uint32_t kIpv4HeaderMin = 20;
constexpr uint32_t kIpv6HeaderLen = 40;
constexpr uint8_t kIpv6Fragment = 44;
constexpr uint8_t kTtl = 64;

Addr mapped_v4(const uint8_t* ip4) {
  Addr a{};
  a[10] = 0xff;
  a[11] = 0xff;
  std::memcpy(a.data() + 12, ip4, 4);
  return a;
}

}  // namespace

uint16_t ipv4_header_checksum(const uint8_t* hdr, uint32_t len) {
  uint32_t sum = 0;
  for (uint32_t i = 0; i + 1 < len; i += 2) sum += load_be16(hdr + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

uint32_t build_frame_headers(uint8_t* out, const FrameAddressing& a, uint8_t protocol,
                             uint8_t priority, uint32_t smt_len, uint16_t ip_id) {
  const bool v4 = is_v4_mapped(a.dst_ip);
  const uint8_t tclass = static_cast<uint8_t>(std::min<uint8_t>(priority, SMT_PRIORITY_MAX) << 5);
  std::memcpy(out, a.dst_mac.data(), 6);
  std::memcpy(out + 6, a.src_mac.data(), 6);
  store_be16(out + 12, v4 ? kEthTypeIpv4 : kEthTypeIpv6);
  uint8_t* ip = out + kEthHeaderLen;
  if (v4) {
    ip[0] = 0x45;
    ip[1] = tclass;
    store_be16(ip + 2, static_cast<uint16_t>(kIpv4HeaderMin + smt_len));
    store_be16(ip + 4, ip_id);
    store_be16(ip + 6, 0x4000);  // DF, offset 0
    ip[8] = kTtl;
    ip[9] = protocol;
    store_be16(ip + 10, 0);
    std::memcpy(ip + 12, a.src_ip.data() + 12, 4);
    std::memcpy(ip + 16, a.dst_ip.data() + 12, 4);
    store_be16(ip + 10, ipv4_header_checksum(ip, kIpv4HeaderMin));
    return kEthHeaderLen + kIpv4HeaderMin;
  }
  store_be32(ip, 6u << 28 | uint32_t{tclass} << 20);
  store_be16(ip + 4, static_cast<uint16_t>(smt_len));
  ip[6] = protocol;
  ip[7] = kTtl;
  std::memcpy(ip + 8, a.src_ip.data(), 16);
  std::memcpy(ip + 24, a.dst_ip.data(), 16);
  return kEthHeaderLen + kIpv6HeaderLen;
}

const char* frame_verdict_name(FrameVerdict v) {
  switch (v) {
    case FrameVerdict::kOk:
      return "ok";
    case FrameVerdict::kTruncated:
      return "truncated";
    case FrameVerdict::kNotForUs:
      return "not_for_us";
    case FrameVerdict::kNotIp:
      return "not_ip";
    case FrameVerdict::kBadIpHeader:
      return "bad_ip_header";
    case FrameVerdict::kBadChecksum:
      return "bad_checksum";
    case FrameVerdict::kFragment:
      return "fragment";
    case FrameVerdict::kNotSmt:
      return "not_smt";
    case FrameVerdict::kEmpty:
      return "empty";
  }
  return "?";
}

FrameVerdict parse_frame(const uint8_t* frame, uint32_t len, const MacAddr& own_mac,
                         uint8_t protocol, ParsedFrame* out) {
  if (len < kEthHeaderLen) return FrameVerdict::kTruncated;
  if (std::memcmp(frame, own_mac.data(), 6) != 0) return FrameVerdict::kNotForUs;
  const uint16_t type = load_be16(frame + 12);
  const uint8_t* ip = frame + kEthHeaderLen;
  const uint32_t avail = len - kEthHeaderLen;
  if (type == kEthTypeIpv4) {
    if (avail < kIpv4HeaderMin) return FrameVerdict::kTruncated;
    const uint32_t ihl = uint32_t{ip[0] & 0x0fu} * 4;
    if ((ip[0] >> 4) != 4 || ihl < kIpv4HeaderMin) return FrameVerdict::kBadIpHeader;
    if (ihl > avail) return FrameVerdict::kTruncated;
    const uint32_t total = load_be16(ip + 2);
    if (total < ihl) return FrameVerdict::kBadIpHeader;
    if (total > avail) return FrameVerdict::kTruncated;
    if (ipv4_header_checksum(ip, ihl) != 0) return FrameVerdict::kBadChecksum;
    if ((load_be16(ip + 6) & 0x3fff) != 0) return FrameVerdict::kFragment;
    if (ip[9] != protocol) return FrameVerdict::kNotSmt;
    if (total == ihl) return FrameVerdict::kEmpty;
    out->smt_offset = kEthHeaderLen + ihl;
    out->smt_len = total - ihl;
    out->src = mapped_v4(ip + 12);
    out->dst = mapped_v4(ip + 16);
    return FrameVerdict::kOk;
  }
  if (type == kEthTypeIpv6) {
    if (avail < kIpv6HeaderLen) return FrameVerdict::kTruncated;
    if ((ip[0] >> 4) != 6) return FrameVerdict::kBadIpHeader;
    const uint32_t payload = load_be16(ip + 4);
    if (payload > avail - kIpv6HeaderLen) return FrameVerdict::kTruncated;
    if (ip[6] == kIpv6Fragment) return FrameVerdict::kFragment;
    if (ip[6] != protocol) return FrameVerdict::kNotSmt;
    if (payload == 0) return FrameVerdict::kEmpty;
    out->smt_offset = kEthHeaderLen + kIpv6HeaderLen;
    out->smt_len = payload;
    std::memcpy(out->src.data(), ip + 8, 16);
    std::memcpy(out->dst.data(), ip + 24, 16);
    return FrameVerdict::kOk;
  }
  return FrameVerdict::kNotIp;
}

}  // namespace smt::link
