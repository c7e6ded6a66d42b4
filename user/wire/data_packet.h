// Building DATA packets (header + TLS record) and the software TSO emulator
// that cuts a TSO segment into packets the way a NIC does, so the TSO layout
// is tested before the kernel module exists.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

#include "common/bytes.h"
#include "wire/data_header.h"

namespace smt {

/// Writes the DATA header (tag included) and the record into out, which has
/// room for kDataHeaderLen + record.size() bytes. Returns the packet length.
inline size_t build_data_packet(uint8_t* out, const DataHeader& h, std::span<const uint8_t> record,
                                const uint8_t key[kCtlKeyLen]) {
  write_data_header(out, h, key);
  std::memcpy(out + kDataHeaderLen, record.data(), record.size());
  return kDataHeaderLen + record.size();
}

/// Cuts `segment` (one DATA header + one record, as handed to a NIC for TSO)
/// into packets carrying at most `max_payload` record bytes each: every packet
/// gets a copy of the header whose seg_pos is advanced by the bytes before it,
/// exactly what TSO does to TCP's sequence number. The tag is copied, not
/// recomputed: seg_pos is outside it. `scratch` holds kDataHeaderLen +
/// max_payload bytes; emit(std::span<const uint8_t>) sees each packet.
template <typename Emit>
void tso_segment(std::span<const uint8_t> segment, size_t max_payload, uint8_t* scratch,
                 Emit&& emit) {
  if (segment.size() < kDataHeaderLen || max_payload == 0) return;
  const uint32_t base = load_be32(segment.data() + 4);
  const uint8_t* payload = segment.data() + kDataHeaderLen;
  const size_t total = segment.size() - kDataHeaderLen;
  std::memcpy(scratch, segment.data(), kDataHeaderLen);
  for (size_t off = 0; off < total; off += max_payload) {
    const size_t n = total - off < max_payload ? total - off : max_payload;
    store_be32(scratch + 4, base + static_cast<uint32_t>(off));
    std::memcpy(scratch + kDataHeaderLen, payload + off, n);
    emit(std::span<const uint8_t>(scratch, kDataHeaderLen + n));
  }
}

}  // namespace smt
