#include "record/sealed_message.h"

#include <openssl/crypto.h>

#include <cstring>

#include "common/bytes.h"

namespace smt {

Result<MessageGeometry> MessageGeometry::make(uint32_t true_length, uint32_t padded_length,
                                              uint32_t record_data) {
  if (padded_length < true_length) return make_error(EINVAL, "padded length below true length");
  if (record_data == 0) return make_error(EINVAL, "record size 0");
  if (record_data > SMT_RECORD_MAX_DATA) return make_error(EMSGSIZE, "record over 2^14 bytes");
  uint64_t records =
      padded_length == 0 ? 1 : (uint64_t{padded_length} + record_data - 1) / record_data;
  if (records > SMT_MAX_RECORDS_PER_MESSAGE) {
    return make_error(EMSGSIZE, "message needs more than 2^16 records");
  }
  MessageGeometry g;
  g.true_length = true_length;
  g.padded_length = padded_length;
  g.record_data = record_data;
  g.records = static_cast<uint32_t>(records);
  return g;
}

uint32_t record_data_for_mtu(uint32_t mtu, bool ipv6) {
  const uint32_t ip = ipv6 ? 40 : 20;
  const uint32_t fixed = ip + sizeof(struct smt_data_hdr) + kRecordOverhead;
  if (mtu <= fixed) return 0;
  uint32_t n = mtu - fixed;
  return n > SMT_RECORD_MAX_DATA ? SMT_RECORD_MAX_DATA : n;
}

Result<SealedMessage> SealedMessage::create(uint64_t message_id, std::vector<uint8_t> data,
                                            const MessageGeometry& geometry) {
  if (message_id > SMT_MESSAGE_ID_MAX) return make_error(EINVAL, "message id over 48 bits");
  if (data.size() != geometry.true_length) return make_error(EINVAL, "data length != geometry");
  auto checked =
      MessageGeometry::make(geometry.true_length, geometry.padded_length, geometry.record_data);
  if (!checked.ok()) return checked.error();
  if (checked->records != geometry.records) return make_error(EINVAL, "inconsistent geometry");
  SealedMessage m;
  m.id_ = message_id;
  m.geometry_ = *checked;
  m.data_ = std::move(data);
  m.sealed_.assign(geometry.records, 0);
  return m;
}

SealedMessage::~SealedMessage() {
  if (!data_.empty()) OPENSSL_cleanse(data_.data(), data_.size());
  if (!scratch_.empty()) OPENSSL_cleanse(scratch_.data(), scratch_.size());
}

Result<size_t> SealedMessage::write_record(uint32_t i, RecordCipher& cipher, uint8_t* rec) {
  if (i >= geometry_.records) return make_error(EINVAL, "record index out of range");
  if (sealed_count_ == 0) {
    key_id_ = cipher.key_id();
  } else if (cipher.key_id() != key_id_) {
    return make_error(EINVAL, "a message's records must share one key");
  }
  // Content: inner header, then the data; bytes past the true length are 0.
  const uint32_t off = geometry_.offset(i);
  const uint32_t len = geometry_.data_len(i);
  uint8_t* inner = rec + kTlsHeaderLen;
  std::memset(inner, 0, kInnerHeaderLen);
  store_be32(inner + 0, off);
  store_be32(inner + 4, geometry_.padded_length);
  store_be32(inner + 8, geometry_.true_length);
  inner[12] = (i + 1 == geometry_.records) ? SMT_INNER_F_LAST : 0;
  uint8_t* dst = inner + kInnerHeaderLen;
  size_t copy = 0;
  if (off < geometry_.true_length) {
    copy = geometry_.true_length - off < len ? geometry_.true_length - off : len;
    std::memcpy(dst, data_.data() + off, copy);
  }
  if (copy < len) std::memset(dst + copy, 0, len - copy);
  const uint64_t seq = record_seq(id_, static_cast<uint16_t>(i));
  auto sealed = sealed_[i] ? cipher.reseal(seq, rec, kInnerHeaderLen + len)
                           : cipher.seal(seq, rec, kInnerHeaderLen + len);
  if (!sealed.ok()) {
    OPENSSL_cleanse(rec, geometry_.wire_len(i));  // no plaintext left to send
    return sealed.error();
  }
  if (!sealed_[i]) {
    sealed_[i] = 1;
    ++sealed_count_;
  }
  return *sealed;
}

Result<std::span<const uint8_t>> SealedMessage::record(uint32_t i, RecordCipher& cipher) {
  if (i >= geometry_.records) return make_error(EINVAL, "record index out of range");
  scratch_.resize(geometry_.wire_len(i));
  auto n = write_record(i, cipher, scratch_.data());
  if (!n.ok()) return n.error();
  return std::span<const uint8_t>(scratch_.data(), *n);
}

DataHeader record_header(const SealedMessage& m, uint32_t i, DataHeader base) {
  base.message_id = m.message_id();
  base.message_length = m.geometry().padded_length;
  base.record_offset = m.geometry().offset(i);
  base.record_index = static_cast<uint16_t>(i);
  return base;
}

}  // namespace smt
