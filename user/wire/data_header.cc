#include "wire/data_header.h"

#include <cstring>

#include "common/bytes.h"
#include "smt/siphash.h"

namespace smt {

const char* drop_reason_name(DropReason r) {
  switch (r) {
    case DropReason::kTruncated:
      return "truncated";
    case DropReason::kBadVersion:
      return "bad_version";
    case DropReason::kBadType:
      return "bad_type";
    case DropReason::kBadHeader:
      return "bad_header";
    case DropReason::kBadTag:
      return "bad_tag";
    case DropReason::kUnknownEpoch:
      return "unknown_epoch";
    case DropReason::kBadRecord:
      return "bad_record";
    case DropReason::kAuthFailed:
      return "auth_failed";
    case DropReason::kLengthMismatch:
      return "length_mismatch";
    case DropReason::kOffsetMismatch:
      return "offset_mismatch";
    case DropReason::kTiling:
      return "tiling";
    case DropReason::kDuplicate:
      return "duplicate";
    case DropReason::kNoBuffer:
      return "no_buffer";
    case DropReason::kKeyExhausted:
      return "key_exhausted";
    case DropReason::kMessageTooLarge:
      return "message_too_large";
    case DropReason::kControlReplay:
      return "control_replay";
    case DropReason::kCount:
      break;
  }
  return "unknown";
}

// SipHash hashes at most SMT_SIPHASH_MAX_LEN bytes; every MAC input must fit.
static_assert(sizeof(struct smt_data_mac_input) <= SMT_SIPHASH_MAX_LEN);
static_assert(SMT_CTL_MAC_INPUT_MAX <= SMT_SIPHASH_MAX_LEN);

namespace {

constexpr uint8_t kDataDoff = SMT_DATA_HDR_WORDS << 4;

void fill_mac_input(const DataHeader& h, uint8_t out[sizeof(struct smt_data_mac_input)]) {
  std::memset(out, 0, sizeof(struct smt_data_mac_input));
  out[0] = SMT_VERSION;
  out[1] = SMT_TYPE_DATA;
  store_be16(out + 2, h.sport);
  store_be16(out + 4, h.dport);
  store_be64(out + 8, h.message_id);
  store_be32(out + 16, h.incoming);
  store_be32(out + 20, h.message_length);
  store_be32(out + 24, h.record_offset);
  store_be16(out + 28, h.record_index);
  store_be16(out + 30, h.epoch);
  out[32] = kDataDoff;
  out[33] = h.flags;
  out[34] = h.priority;
}

}  // namespace

uint64_t data_header_tag(const DataHeader& h, const uint8_t key[kCtlKeyLen]) {
  uint8_t in[sizeof(struct smt_data_mac_input)];
  fill_mac_input(h, in);
  return smt_siphash24(key, in, sizeof in);
}

void write_data_header(uint8_t* out, const DataHeader& h, const uint8_t key[kCtlKeyLen]) {
  std::memset(out, 0, kDataHeaderLen);
  store_be16(out + 0, h.sport);
  store_be16(out + 2, h.dport);
  store_be32(out + 4, h.seg_pos);
  store_be32(out + 8, h.incoming);
  out[12] = kDataDoff;
  out[13] = SMT_TYPE_DATA;
  out[14] = SMT_VERSION;
  out[15] = h.flags;
  // 16: checksum, 18: urgent stay 0.
  store_be64(out + 20, h.message_id);
  store_be32(out + 28, h.message_length);
  store_be32(out + 32, h.record_offset);
  store_be16(out + 36, h.record_index);
  store_be16(out + 38, h.epoch);
  out[40] = h.priority;
  smt_siphash_store_tag(out + 44, data_header_tag(h, key));
}

bool parse_data_header(std::span<const uint8_t> pkt, DataHeader* h, DropReason* why) {
  if (pkt.size() < kDataHeaderLen) {
    *why = DropReason::kTruncated;
    return false;
  }
  const uint8_t* p = pkt.data();
  if (p[14] != SMT_VERSION) {
    *why = DropReason::kBadVersion;
    return false;
  }
  if (p[13] != SMT_TYPE_DATA) {
    *why = DropReason::kBadType;
    return false;
  }
  uint64_t id = load_be64(p + 20);
  if (p[12] != kDataDoff || (p[15] & ~SMT_DATA_F_ALL) != 0 || p[41] != 0 || p[42] != 0 ||
      p[43] != 0 || p[40] > SMT_PRIORITY_MAX || id > SMT_MESSAGE_ID_MAX) {
    *why = DropReason::kBadHeader;
    return false;
  }
  h->sport = load_be16(p + 0);
  h->dport = load_be16(p + 2);
  h->seg_pos = load_be32(p + 4);
  h->incoming = load_be32(p + 8);
  h->flags = p[15];
  h->message_id = id;
  h->message_length = load_be32(p + 28);
  h->record_offset = load_be32(p + 32);
  h->record_index = load_be16(p + 36);
  h->epoch = load_be16(p + 38);
  h->priority = p[40];
  return true;
}

bool verify_data_header_tag(std::span<const uint8_t> pkt, const DataHeader& h,
                            const uint8_t key[kCtlKeyLen]) {
  if (pkt.size() < kDataHeaderLen) return false;
  return smt_siphash_tag_equal(pkt.data() + 44, data_header_tag(h, key)) != 0;
}

}  // namespace smt
