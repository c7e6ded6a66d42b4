// The DATA header (docs/wire-format.md §DATA): build with its SipHash tag,
// parse with bounds and sanity checks first, verify the tag.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "smt/wire.h"
#include "wire/drop_reason.h"

namespace smt {

inline constexpr size_t kDataHeaderLen = sizeof(struct smt_data_hdr);
inline constexpr size_t kCtlKeyLen = 16;

/// The DATA header's fields in host order.
struct DataHeader {
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint32_t seg_pos = 0;  ///< outside the tag; TSO advances it
  uint32_t incoming = 0;
  uint8_t flags = 0;  ///< SMT_DATA_F_*
  uint64_t message_id = 0;
  uint32_t message_length = 0;  ///< padded length
  uint32_t record_offset = 0;
  uint16_t record_index = 0;
  uint16_t epoch = 0;
  uint8_t priority = 0;
};

/// SipHash-2-4 tag of a DATA header under the sending direction's k_ctl.
uint64_t data_header_tag(const DataHeader& h, const uint8_t key[kCtlKeyLen]);

/// Writes the 52-byte header, tag included, at out.
void write_data_header(uint8_t* out, const DataHeader& h, const uint8_t key[kCtlKeyLen]);

/// Parses the header of a DATA packet (pkt starts at the SMT header). Checks
/// bounds, version, type, header length, flags and reserved bytes; does not
/// check the tag. Returns false and sets *why on bad input.
bool parse_data_header(std::span<const uint8_t> pkt, DataHeader* h, DropReason* why);

/// Checks the tag at pkt[44..52) against the parsed fields, in constant time.
bool verify_data_header_tag(std::span<const uint8_t> pkt, const DataHeader& h,
                            const uint8_t key[kCtlKeyLen]);

}  // namespace smt
