#include "wire/control_packet.h"

#include <cstring>

#include "common/bytes.h"
#include "smt/siphash.h"

namespace smt {
namespace {

constexpr uint8_t kCtlDoff = SMT_CTL_HDR_WORDS << 4;
constexpr size_t kPrefixLen = sizeof(struct smt_mac_prefix);
// Request ids are even and below 2^48, so a window base is even and at most 2^48
// (the base after the last possible request id has passed).
constexpr uint64_t kWindowBaseMax = SMT_MESSAGE_ID_MAX + 1;

bool window_base_ok(uint64_t b) { return (b & 1) == 0 && b <= kWindowBaseMax; }

bool all_zero(const uint8_t* p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; ++i) acc |= p[i];
  return acc == 0;
}

// The meaning checks shared by build and parse, so that build never writes a
// packet parse would drop. Every field a type does not carry must be 0.
bool fields_valid(const ControlPacket& p) {
  const int body = control_body_len(p.type);
  if (body < 0) return false;
  if (p.message_id > SMT_MESSAGE_ID_MAX || p.control_seq == 0) return false;
  const bool grant = p.type == SMT_TYPE_GRANT;
  const bool resend = p.type == SMT_TYPE_RESEND;
  const bool ack = p.type == SMT_TYPE_ACK;
  if (!grant && p.grant_offset != 0) return false;
  if (!grant && !resend && p.priority != 0) return false;
  if (!grant && !ack && p.window_base != 0) return false;
  if (!resend && (p.resend_offset != 0 || p.resend_length != 0)) return false;
  if (p.type != SMT_TYPE_RPC_UNKNOWN && p.unknown_flags != 0) return false;
  if (!ack) {
    for (uint64_t id : p.acked_ids) {
      if (id != 0) return false;
    }
  }
  if (p.priority > SMT_PRIORITY_MAX) return false;
  switch (p.type) {
    case SMT_TYPE_GRANT:
      return window_base_ok(p.window_base);
    case SMT_TYPE_RESEND:
      // A non-empty range that ends inside a u32 message.
      return p.resend_length != 0 &&
             uint64_t{p.resend_offset} + p.resend_length <= uint64_t{UINT32_MAX} + 1;
    case SMT_TYPE_RPC_UNKNOWN:
      return (p.unknown_flags & ~SMT_UNKNOWN_F_DELIVERED) == 0;
    case SMT_TYPE_ACK: {
      if (p.message_id != 0 || !window_base_ok(p.window_base)) return false;
      // Used slots first, each a response id (odd, 48 bits), each at most once:
      // one canonical encoding per set of ids.
      bool unused_seen = false;
      for (size_t i = 0; i < SMT_ACK_IDS; ++i) {
        const uint64_t id = p.acked_ids[i];
        if (id == 0) {
          unused_seen = true;
          continue;
        }
        if (unused_seen || (id & 1) == 0 || id > SMT_MESSAGE_ID_MAX) return false;
        for (size_t j = 0; j < i; ++j) {
          if (p.acked_ids[j] == id) return false;
        }
      }
      return true;
    }
    default:  // BUSY, NEED_ACK: nothing beyond the envelope
      return true;
  }
}

// Writes the body of p's type at out (control_body_len(p.type) bytes).
void write_body(uint8_t* out, const ControlPacket& p) {
  std::memset(out, 0, SMT_CTL_BODY_MAX);
  switch (p.type) {
    case SMT_TYPE_GRANT:
      store_be32(out + 0, p.grant_offset);
      out[4] = p.priority;
      store_be64(out + 8, p.window_base);
      break;
    case SMT_TYPE_RESEND:
      store_be32(out + 0, p.resend_offset);
      store_be32(out + 4, p.resend_length);
      out[8] = p.priority;
      break;
    case SMT_TYPE_RPC_UNKNOWN:
      out[0] = p.unknown_flags;
      break;
    case SMT_TYPE_ACK:
      store_be64(out + 0, p.window_base);
      for (size_t i = 0; i < SMT_ACK_IDS; ++i) store_be64(out + 8 + 8 * i, p.acked_ids[i]);
      break;
    default:
      break;
  }
}

// Reads the body of type `type` (its length already checked); false if a
// reserved byte is set. Meaning is checked afterwards by fields_valid.
bool read_body(const uint8_t* b, ControlPacket* p) {
  switch (p->type) {
    case SMT_TYPE_GRANT:
      p->grant_offset = load_be32(b + 0);
      p->priority = b[4];
      p->window_base = load_be64(b + 8);
      return all_zero(b + 5, 3);
    case SMT_TYPE_RESEND:
      p->resend_offset = load_be32(b + 0);
      p->resend_length = load_be32(b + 4);
      p->priority = b[8];
      return all_zero(b + 9, 3);
    case SMT_TYPE_RPC_UNKNOWN:
      p->unknown_flags = b[0];
      return all_zero(b + 1, 3);
    case SMT_TYPE_ACK:
      p->window_base = load_be64(b + 0);
      for (size_t i = 0; i < SMT_ACK_IDS; ++i) p->acked_ids[i] = load_be64(b + 8 + 8 * i);
      return true;
    default:
      return true;
  }
}

}  // namespace

int control_body_len(uint8_t type) {
  switch (type) {
    case SMT_TYPE_GRANT:
      return sizeof(struct smt_grant_body);
    case SMT_TYPE_RESEND:
      return sizeof(struct smt_resend_body);
    case SMT_TYPE_RPC_UNKNOWN:
      return sizeof(struct smt_rpc_unknown_body);
    case SMT_TYPE_BUSY:
    case SMT_TYPE_NEED_ACK:
      return 0;
    case SMT_TYPE_ACK:
      return sizeof(struct smt_ack_body);
    default:
      return -1;
  }
}

uint64_t control_tag(const ControlPacket& p, const uint8_t key[kCtlKeyLen]) {
  uint8_t in[SMT_CTL_MAC_INPUT_MAX];
  std::memset(in, 0, kPrefixLen);
  in[0] = SMT_VERSION;
  in[1] = p.type;
  store_be16(in + 2, p.sport);
  store_be16(in + 4, p.dport);
  store_be64(in + 8, p.message_id);
  const int body = control_body_len(p.type);
  const size_t body_len = body < 0 ? 0 : static_cast<size_t>(body);
  write_body(in + kPrefixLen, p);
  store_be64(in + kPrefixLen + body_len, p.control_seq);
  return smt_siphash24(key, in, static_cast<__u32>(kPrefixLen + body_len + 8));
}

size_t build_control_packet(uint8_t* out, const ControlPacket& p, const uint8_t key[kCtlKeyLen]) {
  if (!fields_valid(p)) return 0;
  const auto body_len = static_cast<size_t>(control_body_len(p.type));
  std::memset(out, 0, kCtlHeaderLen);
  store_be16(out + 0, p.sport);
  store_be16(out + 2, p.dport);
  // 4: seg_pos, 8: incoming stay 0.
  out[12] = kCtlDoff;
  out[13] = p.type;
  out[14] = SMT_VERSION;
  // 15: flags, 16: checksum, 18: urgent stay 0.
  store_be64(out + 20, p.message_id);
  store_be64(out + 28, p.control_seq);
  smt_siphash_store_tag(out + 36, control_tag(p, key));
  uint8_t body[SMT_CTL_BODY_MAX];
  write_body(body, p);
  std::memcpy(out + kCtlHeaderLen, body, body_len);
  return kCtlHeaderLen + body_len;
}

bool parse_control_packet(std::span<const uint8_t> pkt, ControlPacket* p, DropReason* why) {
  if (pkt.size() < kCtlHeaderLen) {
    *why = DropReason::kTruncated;
    return false;
  }
  const uint8_t* b = pkt.data();
  if (b[14] != SMT_VERSION) {
    *why = DropReason::kBadVersion;
    return false;
  }
  const int body = control_body_len(b[13]);
  if (body < 0) {
    *why = DropReason::kBadType;
    return false;
  }
  // seg_pos, incoming and flags carry nothing in a control packet and are
  // outside its MAC, so they must be 0. checksum and urgent are ignored
  // (docs/wire-format.md §3, §11).
  if (b[12] != kCtlDoff || !all_zero(b + 4, 8) || b[15] != 0) {
    *why = DropReason::kBadHeader;
    return false;
  }
  const size_t want = kCtlHeaderLen + static_cast<size_t>(body);
  if (pkt.size() < want) {
    *why = DropReason::kTruncated;
    return false;
  }
  if (pkt.size() > want) {
    *why = DropReason::kBadHeader;
    return false;
  }
  ControlPacket c;
  c.type = b[13];
  c.sport = load_be16(b + 0);
  c.dport = load_be16(b + 2);
  c.message_id = load_be64(b + 20);
  c.control_seq = load_be64(b + 28);
  if (!read_body(b + kCtlHeaderLen, &c) || !fields_valid(c)) {
    *why = DropReason::kBadHeader;
    return false;
  }
  *p = c;
  return true;
}

bool verify_control_tag(std::span<const uint8_t> pkt, const ControlPacket& p,
                        const uint8_t key[kCtlKeyLen]) {
  if (pkt.size() < kCtlHeaderLen) return false;
#ifdef SMT_FAULT_NO_CTL_MAC
  (void)p;
  (void)key;
  return true;  // deliberate fault: every tag verifies
#else
  return smt_siphash_tag_equal(pkt.data() + 36, control_tag(p, key)) != 0;
#endif
}

}  // namespace smt
