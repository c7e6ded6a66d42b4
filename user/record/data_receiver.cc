#include "record/data_receiver.h"

#include <openssl/crypto.h>

#include <cstring>

#include "common/bytes.h"

namespace smt {

DataReceiver::DataReceiver(std::span<const uint8_t, 16> rx_ctl_key, Config config)
    : config_(config) {
  std::memcpy(ctl_key_.data(), rx_ctl_key.data(), ctl_key_.size());
  budget_.per_message = config.max_staged_records_per_message;
  budget_.total = config.max_staged_records;
}

DataReceiver::~DataReceiver() { OPENSSL_cleanse(ctl_key_.data(), ctl_key_.size()); }

Status DataReceiver::set_epoch_key(uint16_t epoch, RecordCipher opener) {
  if (key_for(epoch) != nullptr) return make_error(EEXIST, "epoch key already installed");
  keys_.emplace_back(epoch, std::move(opener));
  return {};
}

uint64_t DataReceiver::failed_opens(uint16_t epoch) const {
  for (const auto& [e, c] : keys_) {
    if (e == epoch) return c.failed_opens();
  }
  return 0;
}

bool DataReceiver::needs_new_session() const {
  for (const auto& [e, c] : keys_) {
    if (c.failed_opens() > kFailedOpenSoftLimit) return true;
  }
  return false;
}

bool DataReceiver::must_close() const {
  for (const auto& [e, c] : keys_) {
    if (c.spent()) return true;
  }
  return false;
}

size_t DataReceiver::unauthenticated_messages() const {
  size_t n = 0;
  for (const auto& [id, m] : messages_) n += !m.started();
  return n;
}

void DataReceiver::drop_epoch_key(uint16_t epoch) {
  std::erase_if(keys_, [&](const auto& k) { return k.first == epoch; });
}

RecordCipher* DataReceiver::key_for(uint16_t epoch) {
  for (auto& [e, c] : keys_) {
    if (e == epoch) return &c;
  }
  return nullptr;
}

RxResult DataReceiver::on_packet(std::span<uint8_t> pkt) {
  auto dropped = [&](DropReason r) {
    drops_.add(r);
    return RxResult::drop(r);
  };
  DataHeader h;
  DropReason why;
  if (!parse_data_header(pkt, &h, &why)) return dropped(why);
  if (!verify_data_header_tag(pkt, h, ctl_key_.data())) return dropped(DropReason::kBadTag);
  RecordCipher* key = key_for(h.epoch);
  if (key == nullptr) return dropped(DropReason::kUnknownEpoch);
  if (key->spent()) {
    return dropped(DropReason::kKeyExhausted);
  }
  if (delivered_ids_.count(h.message_id) != 0) return dropped(DropReason::kDuplicate);
  if (h.message_length > config_.max_message_length) {
    return dropped(DropReason::kMessageTooLarge);
  }
  uint8_t* payload = pkt.data() + kDataHeaderLen;
  const size_t len = pkt.size() - kDataHeaderLen;
  const bool whole = is_whole_record(h, payload, len);
  auto it = messages_.find(h.message_id);
  if (it == messages_.end()) {
    // A slice creates state before anything authenticates: bounded.
    if (!whole && unauthenticated_messages() >= config_.max_unauthenticated_messages) {
      return dropped(DropReason::kNoBuffer);
    }
    it = messages_.try_emplace(h.message_id, h.message_id, &drops_, &budget_).first;
  }
  MessageAssembler& m = it->second;
  RxResult r = whole ? m.add_record(h, *key, payload, len) : m.add_slice(h, *key, payload, len);
  if (!r.accepted) {
    drops_.add(r.why);
    if (m.empty()) messages_.erase(it);  // a forged first packet leaves no state
    return r;
  }
  if (r.completed) {
    delivered_.push_back({h.message_id, m.take_message()});
    delivered_ids_.insert(h.message_id);
    messages_.erase(it);
  }
  return r;
}

std::optional<DataReceiver::Delivered> DataReceiver::take_delivered() {
  if (delivered_.empty()) return std::nullopt;
  Delivered d = std::move(delivered_.front());
  delivered_.pop_front();
  return d;
}

}  // namespace smt
