// The engine's sending side: starting messages, the sender's SRPT queue above
// the bounded link queue, the receiver's grant scheduler, and building DATA
// and control packets.
#include <algorithm>
#include <cstring>

#include "common/fault.h"
#include "transport/engine.h"
#include "transport/rpc.h"
#include "wire/control_packet.h"
#include "wire/data_header.h"

namespace smt {

namespace {

// Priority of unscheduled bytes: the shortest messages go first (Homa).
uint8_t unscheduled_priority(uint32_t length, uint32_t record_data, uint32_t unscheduled) {
  if (length <= record_data) return SMT_PRIORITY_MAX;
  if (length <= unscheduled) return SMT_PRIORITY_MAX - 1;
  return SMT_PRIORITY_MAX - 2;
}

constexpr size_t kTxSlotBytes = kDataHeaderLen + RecordCipher::record_size(SMT_RECORD_MAX_CONTENT);

}  // namespace

// ---- starting messages ---------------------------------------------------------

void Engine::maybe_rekey(Session& s) {
  auto moved = s.tx->maybe_advance(clock_.now_ns(), config_.rekey_interval_ns);
  if (moved.ok() && *moved) ++stats_.epochs_advanced;
}

Status Engine::start_out_message(Session& s, Rpc& rpc, std::vector<uint8_t> data) {
  const uint64_t message_id = rpc.client ? rpc.id : (rpc.id | 1);
  const uint32_t length = static_cast<uint32_t>(data.size());
  auto g = MessageGeometry::make(length, length, s.record_data);
  if (!g.ok()) return g.error();
  auto m = SealedMessage::create(message_id, std::move(data), *g);
  if (!m.ok()) return m.error();
  OutMessage& out = rpc.out;
  out.cipher = s.tx->current_cipher();
  out.epoch = s.tx->current();
  out.length = length;
  out.granted = std::min(length, config_.unscheduled_bytes);
  out.priority = unscheduled_priority(length, s.record_data, config_.unscheduled_bytes);
  out.tso_mss = s.tso_mss;
  out.resend_queued.assign(g->records, 0);
  out.msg.emplace(std::move(*m));
  out.memory = out.msg->memory_bytes() + out.resend_queued.capacity();
  rpc.has_out = true;
  memory_ += out.memory;
  s.tx->message_started(out.epoch);
  // GRANTs will follow: let XDP drop the stale and replayed ones.
  if (length > out.granted) s.owner.arm(message_id, out.granted);
  tx_update(rpc);
  return {};
}

Result<uint64_t> Engine::send_request(SessionId sid, std::vector<uint8_t> data) {
  auto it = sessions_.find(sid);
  if (it == sessions_.end()) return make_error(ENOTCONN, "no such session");
  Session& s = *it->second;
  if (data.size() > config_.max_message_length) {
    return make_error(EMSGSIZE, "message longer than max_message_length");
  }
  if (memory_ + data.size() > config_.memory_cap) {
    return make_error(ENOBUFS, "socket memory cap reached");
  }
  // The peer's replay window (CONTRACT §3): block only when it is full.
  const uint64_t in_window = (s.next_request_id - s.peer_base) / 2;
  if (in_window >= config_.request_window / 2) {
    // Ask for a fresh report, at most once per tick.
    if (s.last_window_query_tick != next_tick_) {
      s.last_window_query_tick = next_tick_;
      ControlPacket q;
      q.type = SMT_TYPE_NEED_ACK;
      send_control(s, q);
    }
  }
  if (in_window >= config_.request_window) {
    ++stats_.window_blocked;
    return make_error(EAGAIN, "the peer's replay window is full");
  }
  if (s.next_request_id > SMT_MESSAGE_ID_MAX - 1) {
    return make_error(EKEYEXPIRED, "the session's message ids are spent");
  }
  maybe_rekey(s);
  auto r = std::make_unique<Rpc>();
  r->serial = next_rpc_serial_++;
  r->session = &s;
  r->client = true;
  r->state = RpcState::kOutgoing;
#if defined(SMT_FAULT_REUSE_ID)
  // Deliberate fault: ids restart whenever no RPC is in flight, as the
  // reference prototype's restart at module load does.
  if (s.client_rpcs.empty()) s.next_request_id = 2;
#endif
  r->id = s.next_request_id;
  Rpc& rpc = *r;
  auto st = start_out_message(s, rpc, std::move(data));
  if (!st.ok()) return st.error();
  s.next_request_id += 2;
  s.client_rpcs[rpc.id] = std::move(r);
  return rpc.id;
}

Status Engine::send_reply(SessionId sid, uint64_t id, std::vector<uint8_t> data) {
  auto it = sessions_.find(sid);
  if (it == sessions_.end()) return make_error(ENOTCONN, "no such session");
  Session& s = *it->second;
  auto r = s.server_rpcs.find(id);
  if (r == s.server_rpcs.end() || r->second->state != RpcState::kInService) {
    return make_error(ENOENT, "no request with that id awaits a reply");
  }
  if (data.size() > config_.max_message_length) {
    return make_error(EMSGSIZE, "message longer than max_message_length");
  }
  if (memory_ + data.size() > config_.memory_cap) {
    return make_error(ENOBUFS, "socket memory cap reached");
  }
  maybe_rekey(s);
  Rpc& rpc = *r->second;
  auto st = start_out_message(s, rpc, std::move(data));
  if (!st.ok()) return st;
  rpc.state = RpcState::kResponding;
  rpc.silent_ticks = 0;
  return {};
}

// ---- orderings -------------------------------------------------------------------

void Engine::tx_update(Rpc& rpc) {
  if (rpc.in_tx) {
    tx_ready_.erase(&rpc);
    tx_by_age_.erase(&rpc);
    rpc.in_tx = false;
  }
  if (!rpc.has_out) return;
  const OutMessage& out = rpc.out;
  if (!out.has_resend() && !out.has_new()) return;
  // Retransmissions first, then the fewest remaining bytes (SRPT).
  rpc.tx_key = out.has_resend() ? 0 : uint64_t{out.remaining()} + 1;
  tx_ready_.insert(&rpc);
  tx_by_age_.insert(&rpc);
  rpc.in_tx = true;
}

void Engine::rx_update(Rpc& rpc) {
  if (rpc.in_rx) {
    rx_grantable_.erase(&rpc);
    rpc.in_rx = false;
  }
  if (!rpc.has_in || !rpc.in.assembler->started() || rpc.in.granted >= rpc.in.length) return;
  rpc.rx_key = rpc.in.length - rpc.in.assembler->bytes_present();
  rx_grantable_.insert(&rpc);
  rpc.in_rx = true;
}

// ---- grants (receiver) ---------------------------------------------------------------

void Engine::schedule_grants() {
  if (rx_grantable_.empty()) return;
  ++grant_rounds_;
  Rpc* chosen[64];
  size_t n = 0;
  const size_t limit = std::min<size_t>(config_.overcommit, 63);
  for (Rpc* r : rx_grantable_) {
    if (n == limit) break;
    chosen[n++] = r;
  }
  // The FIFO share: now and then the oldest message gets a grant too.
  if (config_.fifo_grant_interval != 0 && grant_rounds_ % config_.fifo_grant_interval == 0 &&
      rx_grantable_.size() > n) {
    Rpc* oldest = *rx_grantable_.begin();
    for (Rpc* r : rx_grantable_) {
      if (r->serial < oldest->serial) oldest = r;
    }
    if (std::find(chosen, chosen + n, oldest) == chosen + n) chosen[n++] = oldest;
  }
  for (size_t rank = 0; rank < n; ++rank) {
    Rpc& rpc = *chosen[rank];
    InMessage& in = rpc.in;
    const uint64_t want =
        std::min<uint64_t>(in.length, in.assembler->bytes_present() + config_.grant_window);
    // Grant in steps of at least a record, or the rest of the message.
    if (want <= in.granted) continue;
    if (want < in.length && want - in.granted < rpc.session->record_data) continue;
    in.granted = static_cast<uint32_t>(want);
    ControlPacket c;
    c.type = SMT_TYPE_GRANT;
    c.message_id = rpc.client ? (rpc.id | 1) : rpc.id;
    c.grant_offset = in.granted;
    c.priority = static_cast<uint8_t>(rank < 5 ? 5 - rank : 0);
    send_control(*rpc.session, c);
    rx_update(rpc);
  }
}

// ---- control packets ---------------------------------------------------------------

void Engine::send_control(Session& s, ControlPacket& c) {
  c.sport = s.local_port;
  c.dport = s.peer_port;
  c.control_seq = s.next_ctl_seq++;
  if (c.type == SMT_TYPE_GRANT || c.type == SMT_TYPE_ACK) {
    c.window_base = s.window.base();
    s.last_base_report = std::max(s.last_base_report, c.window_base);
  }
  if (tx_pending_ == tx_slots_.size()) tx_slots_.emplace_back();
  TxSlot& slot = tx_slots_[tx_pending_];
  if (slot.buf.size() < kTxSlotBytes) slot.buf.resize(kTxSlotBytes);
  const size_t n = build_control_packet(slot.buf.data(), c, s.tx_ctl.data());
  if (n == 0) return;  // a bug in this file; never sent
  slot.pkt =
      link::TxPacket{slot.buf.data(), static_cast<uint32_t>(n), s.peer_addr, SMT_PRIORITY_MAX, 0};
  ++tx_pending_;
  ++stats_.control_packets_sent[(c.type - SMT_TYPE_DATA) & 7];
}

void Engine::queue_acks(Session& s, bool flush) {
  while (s.pending_acks.size() >= SMT_ACK_IDS || (flush && !s.pending_acks.empty())) {
    ControlPacket a;
    a.type = SMT_TYPE_ACK;
    const size_t n = std::min<size_t>(SMT_ACK_IDS, s.pending_acks.size());
    for (size_t i = 0; i < n; ++i) a.acked_ids[i] = s.pending_acks[i];
    s.pending_acks.erase(s.pending_acks.begin(), s.pending_acks.begin() + static_cast<long>(n));
    send_control(s, a);
  }
}

// ---- DATA (sender) ---------------------------------------------------------------

bool Engine::build_data_packet(Rpc& rpc, uint8_t* out_buf, link::TxPacket* tx) {
  Session& s = *rpc.session;
  OutMessage& out = rpc.out;
  const MessageGeometry& g = out.msg->geometry();
  uint32_t index;
  bool resend = false;
  if (out.has_resend()) {
    index = out.pop_resend();
    resend = true;
  } else {
    index = out.next_record++;
    if (out.next_record == g.records) out.all_sent_once = true;
  }
  DataHeader base;
  base.sport = s.local_port;
  base.dport = s.peer_port;
  base.incoming = out.granted;
  base.flags = resend ? SMT_DATA_F_RETRANSMIT : 0;
  base.epoch = out.epoch;
  base.priority = g.offset(index) < config_.unscheduled_bytes ? out.priority
                                                              : std::min<uint8_t>(out.priority, 5);
  DataHeader h = record_header(*out.msg, index, base);
  auto n = out.msg->write_record(index, *out.cipher, out_buf + kDataHeaderLen);
  if (!n.ok()) {
    // The key is spent (EKEYEXPIRED) or the record cannot be built: fail
    // closed, nothing of it leaves.
    if (rpc.client) {
      fail_client_rpc(s, rpc, n.error().code);
    } else {
      free_rpc(s, rpc);
    }
    return false;
  }
  write_data_header(out_buf, h, s.tx_ctl.data());
  *tx = link::TxPacket{out_buf, static_cast<uint32_t>(kDataHeaderLen + *n), s.peer_addr, h.priority,
                       out.tso_mss};
  if (resend) {
    ++stats_.data_packets_resent;
  } else {
    ++stats_.records_sealed;
  }
  ++stats_.data_packets_sent;
  return true;
}

void Engine::transmit() {
  flush_tx();
  size_t room = link_.tx_room();
  while (room > 0 && !tx_ready_.empty()) {
    // SRPT, except that one packet in fifo_grant_interval goes to the oldest.
    const bool fifo =
        config_.fifo_grant_interval != 0 && ++tx_rounds_ % config_.fifo_grant_interval == 0;
    Rpc* rpc = fifo ? *tx_by_age_.begin() : *tx_ready_.begin();
    tx_ready_.erase(rpc);
    tx_by_age_.erase(rpc);
    rpc->in_tx = false;
    if (tx_pending_ == tx_slots_.size()) tx_slots_.emplace_back();
    TxSlot& slot = tx_slots_[tx_pending_];
    if (slot.buf.size() < kTxSlotBytes) slot.buf.resize(kTxSlotBytes);
    if (!build_data_packet(*rpc, slot.buf.data(), &slot.pkt)) continue;  // rpc is gone
    ++tx_pending_;
    --room;
    tx_update(*rpc);
  }
  flush_tx();
}

void Engine::flush_tx() {
  if (tx_pending_ == 0) return;
  std::vector<link::TxPacket>& batch = tx_batch_;  // reused: no allocation per flush
  batch.clear();
  // Control packets first: they are small and unblock the peer.
  for (size_t i = 0; i < tx_pending_; ++i) {
    if (tx_slots_[i].pkt.data[13] != SMT_TYPE_DATA) batch.push_back(tx_slots_[i].pkt);
  }
  for (size_t i = 0; i < tx_pending_; ++i) {
    if (tx_slots_[i].pkt.data[13] == SMT_TYPE_DATA) batch.push_back(tx_slots_[i].pkt);
  }
  const size_t taken = link_.send(batch);
  if (taken == tx_pending_) {
    tx_pending_ = 0;
    return;
  }
  // Keep the packets the link did not take, in batch order, at the front,
  // by swapping slots (a slot's packet points into its own buffer, which
  // moves with it): no allocation, at most one batch squared compares.
  const size_t rest = batch.size() - taken;
  for (size_t p = 0; p < rest; ++p) {
    for (size_t j = p; j < tx_pending_; ++j) {
      if (tx_slots_[j].pkt.data == batch[taken + p].data) {
        std::swap(tx_slots_[p], tx_slots_[j]);
        break;
      }
    }
  }
  tx_pending_ = rest;
}

}  // namespace smt
