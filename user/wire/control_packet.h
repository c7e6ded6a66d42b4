// Control packets (docs/wire-format.md §9): GRANT, RESEND, RPC_UNKNOWN, BUSY,
// NEED_ACK, ACK. Each is the 44-byte envelope (common header, control
// sequence number, SipHash tag) followed by a body of fixed length per type.
// Building tags the packet; parsing checks bounds and every fixed field
// (doff, version, zero incoming/flags/seg_pos, body length, reserved bytes)
// before the tag is verified, so the MAC input is rebuilt only from fields
// that parsed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "smt/wire.h"
#include "wire/data_header.h"
#include "wire/drop_reason.h"

namespace smt {

inline constexpr size_t kCtlHeaderLen = sizeof(struct smt_ctl_hdr);
/// The largest control packet (envelope + largest body).
inline constexpr size_t kCtlPacketMax = kCtlHeaderLen + SMT_CTL_BODY_MAX;

/// One control packet's fields in host order. Only the fields of `type` are
/// meaningful; the others stay 0 (and must be 0 when building).
struct ControlPacket {
  uint8_t type = 0;  ///< SMT_TYPE_GRANT .. SMT_TYPE_ACK
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint64_t message_id = 0;
  uint64_t control_seq = 0;
  // GRANT
  uint32_t grant_offset = 0;
  // GRANT, RESEND
  uint8_t priority = 0;
  // GRANT, ACK
  uint64_t window_base = 0;
  // RESEND
  uint32_t resend_offset = 0;
  uint32_t resend_length = 0;
  // RPC_UNKNOWN
  uint8_t unknown_flags = 0;
  // ACK (0 = unused slot)
  uint64_t acked_ids[SMT_ACK_IDS] = {};
};

/// Body length of a control type; -1 for DATA or an unknown type.
int control_body_len(uint8_t type);

/// Writes the packet, tag included, into out (room for kCtlPacketMax bytes)
/// and returns its length, or 0 if `p` is not a valid control packet (type,
/// message id over 48 bits, control_seq 0, priority over 7, flags unknown).
size_t build_control_packet(uint8_t* out, const ControlPacket& p, const uint8_t key[kCtlKeyLen]);

/// Parses a control packet (pkt starts at the SMT header): bounds, version,
/// type, doff, zero envelope fields, exact body length, reserved bytes,
/// 48-bit message id, control_seq != 0, priority <= 7, known flags.
/// Does not verify the tag. Returns false and sets *why on bad input.
bool parse_control_packet(std::span<const uint8_t> pkt, ControlPacket* p, DropReason* why);

/// The control tag over the parsed fields (CONTRACT §5).
uint64_t control_tag(const ControlPacket& p, const uint8_t key[kCtlKeyLen]);

/// Checks the tag at pkt[36..44) against the parsed fields, in constant time.
bool verify_control_tag(std::span<const uint8_t> pkt, const ControlPacket& p,
                        const uint8_t key[kCtlKeyLen]);

}  // namespace smt
