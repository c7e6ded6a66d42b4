// The sending side of CONTRACT §2: a message cut into TLS records whose
// geometry (boundaries, padding, inner headers, key) is fixed when the message
// is created, each record sealed once on first use and kept, so every
// retransmission resends byte-identical ciphertext under the same nonce.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "record/record_cipher.h"
#include "smt/wire.h"
#include "wire/data_header.h"

namespace smt {

inline constexpr size_t kInnerHeaderLen = sizeof(struct smt_inner_hdr);
/// Bytes a record adds around its data (TLS header, inner header, type, tag).
inline constexpr size_t kRecordOverhead = SMT_RECORD_OVERHEAD;

/// Record boundaries of one message: every record but the last carries
/// `record_data` bytes; records tile [0, padded_length); the empty message has
/// one empty record.
struct MessageGeometry {
  uint32_t true_length = 0;
  uint32_t padded_length = 0;
  uint32_t record_data = 0;
  uint32_t records = 0;

  /// EMSGSIZE past 2^16 records or for record_data over the TLS limit; EINVAL
  /// for padded_length < true_length or record_data 0.
  static Result<MessageGeometry> make(uint32_t true_length, uint32_t padded_length,
                                      uint32_t record_data);
  uint32_t offset(uint32_t i) const { return i * record_data; }
  uint32_t data_len(uint32_t i) const {
    uint32_t off = offset(i);
    uint32_t rest = padded_length - off;
    return rest < record_data ? rest : record_data;
  }
  size_t wire_len(uint32_t i) const { return data_len(i) + kRecordOverhead; }
};

/// Data bytes per record so that DATA header + record fit one packet of `mtu`
/// bytes (IP header included) on the per-packet path.
uint32_t record_data_for_mtu(uint32_t mtu, bool ipv6);

class SealedMessage {
 public:
  /// Takes the message's bytes (true_length of them; the padding up to
  /// padded_length is zeros) and keeps them for the message's life: every
  /// record is sealed from them on demand, so a message costs its length
  /// plus the one record being sent (CONTRACT §2 allows re-sealing
  /// byte-identical plaintext). The geometry is validated again here: one
  /// built by hand cannot overflow a buffer or wrap the 16-bit record index.
  static Result<SealedMessage> create(uint64_t message_id, std::vector<uint8_t> data,
                                      const MessageGeometry& geometry);

  /// Writes record i, sealed, into out (room for geometry().wire_len(i)
  /// bytes) and returns its length. The first record fixes the key: every
  /// record of the message is sealed under `cipher`'s key (EINVAL for
  /// another). The first write of a record seals it (σ counted); later
  /// writes re-seal the same plaintext under the same nonce, producing the
  /// same ciphertext, and count nothing.
  Result<size_t> write_record(uint32_t i, RecordCipher& cipher, uint8_t* out);

  /// write_record into a buffer the message keeps (tools and tests).
  Result<std::span<const uint8_t>> record(uint32_t i, RecordCipher& cipher);

  bool all_sealed() const { return sealed_count_ == geometry_.records; }
  bool sealed(uint32_t i) const { return i < sealed_.size() && sealed_[i]; }
  uint64_t message_id() const { return id_; }
  const MessageGeometry& geometry() const { return geometry_; }
  /// Heap bytes held (plaintext, bookkeeping, any record() buffer).
  size_t memory_bytes() const {
    return data_.capacity() + sealed_.capacity() + scratch_.capacity();
  }

  SealedMessage(SealedMessage&&) noexcept = default;
  SealedMessage& operator=(SealedMessage&&) noexcept = default;
  ~SealedMessage();

 private:
  SealedMessage() = default;
  uint64_t id_ = 0;
  MessageGeometry geometry_;
  std::vector<uint8_t> data_;     // the plaintext, wiped on destruction
  std::vector<uint8_t> sealed_;   // 1 once record i was sealed
  std::vector<uint8_t> scratch_;  // record()'s buffer
  uint32_t sealed_count_ = 0;
  uint64_t key_id_ = 0;
};

/// The DATA header of record i of `m`: message id, padded length, record
/// offset and index come from the message; ports, epoch, priority, incoming
/// and flags from `base`.
DataHeader record_header(const SealedMessage& m, uint32_t i, DataHeader base);

}  // namespace smt
