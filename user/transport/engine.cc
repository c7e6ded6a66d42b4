// The engine's receive side, control handlers, timers and bookkeeping.
// Sending (SRPT, packet building, grants) is in engine_tx.cc.
#include "transport/engine.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "common/bytes.h"
#include "common/fault.h"
#include "transport/rpc.h"
#include "wire/control_packet.h"
#include "wire/data_header.h"

namespace smt {

Session::~Session() {
  OPENSSL_cleanse(tx_ctl.data(), tx_ctl.size());
  OPENSSL_cleanse(rx_ctl.data(), rx_ctl.size());
}

bool Engine::TxOrder::operator()(const Rpc* a, const Rpc* b) const {
  if (a->tx_key != b->tx_key) return a->tx_key < b->tx_key;
  return a->serial < b->serial;
}

bool Engine::AgeOrder::operator()(const Rpc* a, const Rpc* b) const {
  return a->serial < b->serial;
}

bool Engine::RxOrder::operator()(const Rpc* a, const Rpc* b) const {
  if (a->rx_key != b->rx_key) return a->rx_key < b->rx_key;
  return a->serial < b->serial;
}

Engine::Engine(link::Link& link, const Clock& clock, EngineConfig config)
    : link_(link), clock_(clock), config_(config) {
  if (config_.tick_ns == 0) config_.tick_ns = 1'000'000;
  if (config_.overcommit == 0) config_.overcommit = 1;
  rx_batch_.resize(64);
}

Engine::~Engine() {
  // RPCs point into sessions; clear the orderings before the sessions go.
  tx_ready_.clear();
  tx_by_age_.clear();
  rx_grantable_.clear();
}

// ---- sessions ----------------------------------------------------------------

namespace {
// What XDP may drop request DATA below (CONTRACT §3).
uint64_t base_to_publish(const Session& s) {
  uint64_t b = s.window.base();
  if (!s.incoming_requests.empty()) b = std::min(b, *s.incoming_requests.begin());
  return b;
}
}  // namespace

Result<SessionId> Engine::add_session(const SessionParams& p) {
  if (p.initiator_ctl.size() != 16 || p.responder_ctl.size() != 16) {
    return make_error(EINVAL, "control keys must be 16 bytes");
  }
  const SuiteInfo* suite = suite_info(p.suite);
  if (suite == nullptr) return make_error(EINVAL, "unknown cipher suite");
  if (p.initiator_secret.size() != suite->hash_len ||
      p.responder_secret.size() != suite->hash_len) {
    return make_error(EINVAL, "traffic secrets must be Hash.length bytes");
  }
  if (link::is_v4_mapped(p.peer_addr) != link::is_v4_mapped(p.local_addr)) {
    return make_error(EINVAL, "local and peer addresses of different families");
  }
  auto key = std::make_tuple(p.peer_addr, p.peer_port, p.local_port);
  if (by_addr_.count(key) != 0) return make_error(EEXIST, "a session with that peer exists");

  auto s = std::make_unique<Session>(config_.request_window);
  s->id = next_session_++;
  s->local_addr = p.local_addr;
  s->peer_addr = p.peer_addr;
  s->local_port = p.local_port;
  s->peer_port = p.peer_port;
  s->peer_identity = p.peer_identity;
  // The initiator sends with the "i" secrets, the responder with the "r" ones.
  const SecretBytes& tx_secret = p.initiator ? p.initiator_secret : p.responder_secret;
  const SecretBytes& rx_secret = p.initiator ? p.responder_secret : p.initiator_secret;
  const SecretBytes& tx_ctl = p.initiator ? p.initiator_ctl : p.responder_ctl;
  const SecretBytes& rx_ctl = p.initiator ? p.responder_ctl : p.initiator_ctl;
  std::memcpy(s->tx_ctl.data(), tx_ctl.data(), 16);
  std::memcpy(s->rx_ctl.data(), rx_ctl.data(), 16);
  auto tx = TxEpochs::create(p.suite, tx_secret.span(), config_.limits, clock_.now_ns(),
                             config_.nonce_oracle);
  if (!tx.ok()) return tx.error();
  auto rx = RxEpochs::create(p.suite, rx_secret.span());
  if (!rx.ok()) return rx.error();
  s->tx.emplace(std::move(*tx));
  s->rx.emplace(std::move(*rx));
  s->ipv6 = !link::is_v4_mapped(p.peer_addr);
  s->budget.per_message = 16;
  s->budget.total = 256;
  const uint32_t mtu = link_.mtu();
  const uint32_t ip = s->ipv6 ? 40 : 20;
  if (config_.use_tso && link_.supports_tso()) {
    s->record_data = SMT_RECORD_MAX_DATA;
    s->tso_mss = mtu - ip - kDataHeaderLen;
  } else {
    s->record_data = record_data_for_mtu(mtu, s->ipv6);
  }
  if (s->record_data == 0) return make_error(EMSGSIZE, "link MTU too small for a record");
  s->owner = OwnerEntry(p.owner_entry);
  s->owner.publish_base(base_to_publish(*s));
  const SessionId id = s->id;
  by_addr_[key] = id;
  sessions_[id] = std::move(s);
  return id;
}

void Engine::close_session(SessionId sid) {
  auto it = sessions_.find(sid);
  if (it == sessions_.end()) return;
  Session& s = *it->second;
  std::vector<Rpc*> rpcs;
  for (auto& [id, r] : s.client_rpcs) rpcs.push_back(r.get());
  for (Rpc* r : rpcs) fail_client_rpc(s, *r, ECONNABORTED);
  rpcs.clear();
  for (auto& [id, r] : s.server_rpcs) rpcs.push_back(r.get());
  for (Rpc* r : rpcs) free_rpc(s, *r);
  by_addr_.erase(std::make_tuple(s.peer_addr, s.peer_port, s.local_port));
  sessions_.erase(it);
}

std::optional<SessionId> Engine::find_session(const link::Addr& peer, uint16_t peer_port) const {
  // The map orders by (peer, peer port, local port): the first entry at or
  // after (peer, peer_port, 0) is the one, if any, in O(log n).
  auto it = by_addr_.lower_bound(std::make_tuple(peer, peer_port, uint16_t{0}));
  if (it == by_addr_.end() || std::get<0>(it->first) != peer ||
      std::get<1>(it->first) != peer_port) {
    return std::nullopt;
  }
  return it->second;
}

const std::string* Engine::peer_identity(SessionId sid) const {
  auto it = sessions_.find(sid);
  return it == sessions_.end() ? nullptr : &it->second->peer_identity;
}

size_t Engine::rpc_count() const {
  size_t n = 0;
  for (const auto& [id, s] : sessions_) n += s->client_rpcs.size() + s->server_rpcs.size();
  return n;
}

std::optional<SessionStats> Engine::session_stats(SessionId sid) const {
  auto it = sessions_.find(sid);
  if (it == sessions_.end()) return std::nullopt;
  const Session& s = *it->second;
  SessionStats st;
  st.tx_epoch = s.tx->current();
  st.rx_epoch = s.rx->committed();
  st.sigma = s.tx->sigma();
  st.sigma_limit = s.tx->sigma_limit();
  st.auth_failures = s.drops.get(DropReason::kAuthFailed);
  st.replays = s.replays;
  st.window_base = s.window.base();
  st.published_base = published_base(sid);
  st.next_request_id = s.next_request_id;
  st.peer_window_base = s.peer_base;
  st.client_rpcs = s.client_rpcs.size();
  st.server_rpcs = s.server_rpcs.size();
  st.drops = s.drops;
  st.needs_new_session = s.rx->needs_new_session();
  st.epochs_exhausted = s.tx->exhausted();
  return st;
}

uint64_t Engine::published_base(SessionId sid) const {
  auto it = sessions_.find(sid);
  return it == sessions_.end() ? 0 : base_to_publish(*it->second);
}

void Engine::set_owner_entry(SessionId sid, smt_owner_table_entry* entry) {
  auto it = sessions_.find(sid);
  if (it == sessions_.end()) return;
  Session& s = *it->second;
  s.owner = OwnerEntry(entry);
  s.owner.publish_base(base_to_publish(s));
  for (auto* rpcs : {&s.client_rpcs, &s.server_rpcs}) {
    for (auto& [id, r] : *rpcs) {
      if (r->has_out && r->out.length > config_.unscheduled_bytes) {
        s.owner.arm(r->client ? r->id : (r->id | 1), r->out.granted);
      }
    }
  }
}

std::string Engine::state_digest() const {
  std::ostringstream o;
  for (const auto& [sid, sp] : sessions_) {
    const Session& s = *sp;
    o << "session " << sid << " next_id " << s.next_request_id << " peer_base " << s.peer_base
      << " base " << s.window.base() << " ctl_tx " << s.next_ctl_seq << " ctl_rx "
      << s.ctl_window.highest() << " tx_epoch " << s.tx->current() << " rx_epoch "
      << s.rx->committed() << " acks " << s.pending_acks.size() << "\n";
    std::vector<const Rpc*> rpcs;
    for (const auto& [id, r] : s.client_rpcs) rpcs.push_back(r.get());
    for (const auto& [id, r] : s.server_rpcs) rpcs.push_back(r.get());
    std::sort(rpcs.begin(), rpcs.end(),
              [](const Rpc* a, const Rpc* b) { return a->serial < b->serial; });
    for (const Rpc* r : rpcs) {
      o << " rpc " << r->id << (r->client ? " c" : " s") << " st " << int(r->state);
      if (r->has_out) {
        o << " out " << r->out.granted << "/" << r->out.next_record << "/"
          << r->out.resend.size() - r->out.resend_head;
      }
      if (r->has_in && r->in.assembler) {
        o << " in " << r->in.assembler->bytes_present() << "/" << r->in.granted;
      }
      o << "\n";
    }
  }
  o << "events " << events_.size() << " memory " << memory_ << "\n";
  return o.str();
}

// ---- receive -------------------------------------------------------------------

void Engine::drop(Session* s, DropReason r) {
  stats_.drops.add(r);
  if (s != nullptr) s->drops.add(r);
}

void Engine::progress() {
  for (;;) {
    const size_t n = link_.receive(rx_batch_);
    for (size_t i = 0; i < n; ++i) on_packet(rx_batch_[i]);
    if (n < rx_batch_.size()) break;
  }
  // A receive key at its integrity limit (CONTRACT §4): the session closes.
  // Closing waits until the batch is done: its packets point into sessions.
  for (SessionId id : spent_sessions_) {
    ++stats_.sessions_closed_integrity;
    close_session(id);
  }
  spent_sessions_.clear();
  run_timers();
  schedule_grants();
  transmit();
}

void Engine::on_packet(link::RxPacket& p) {
  ++stats_.packets_received;
  std::span<uint8_t> pkt(p.data, p.len);
  if (pkt.size() < sizeof(struct smt_common_hdr)) return drop(nullptr, DropReason::kTruncated);
  const uint16_t sport = load_be16(pkt.data());
  const uint16_t dport = load_be16(pkt.data() + 2);
  auto it = by_addr_.find(std::make_tuple(p.peer, sport, dport));
  if (it == by_addr_.end()) return drop(nullptr, DropReason::kUnknownSession);
  Session& s = *sessions_.at(it->second);
  if (pkt[13] == SMT_TYPE_DATA) {
    on_data(s, pkt);
  } else {
    on_control(s, pkt);
  }
}

Rpc* Engine::find_out_rpc(Session& s, uint64_t message_id) {
  // Our requests are even ids (client RPCs), our responses odd (server RPCs).
  auto& map = (message_id & 1) ? s.server_rpcs : s.client_rpcs;
  auto it = map.find(message_id & ~1ull);
  if (it == map.end() || !it->second->has_out) return nullptr;
  return it->second.get();
}

Rpc* Engine::find_in_rpc(Session& s, uint64_t message_id) {
  auto& map = (message_id & 1) ? s.client_rpcs : s.server_rpcs;
  auto it = map.find(message_id & ~1ull);
  return it == map.end() ? nullptr : it->second.get();
}

void Engine::on_data(Session& s, std::span<uint8_t> pkt) {
  DataHeader h;
  DropReason why;
  if (!parse_data_header(pkt, &h, &why)) return drop(&s, why);
  if (!verify_data_header_tag(pkt, h, s.rx_ctl.data())) return drop(&s, DropReason::kBadTag);
  const bool response = (h.message_id & 1) != 0;
  const uint64_t rid = h.message_id & ~1ull;

  // Which RPC: responses only for a live client RPC; requests through the
  // replay window before anything is decrypted.
  Rpc* rpc = nullptr;
  bool created = false;
  if (response) {
    auto it = s.client_rpcs.find(rid);
    if (it == s.client_rpcs.end() ||
        (it->second->state != RpcState::kOutgoing && it->second->state != RpcState::kIncoming)) {
      return drop(&s, DropReason::kNoRpc);
    }
    rpc = it->second.get();
  } else {
    auto it = s.server_rpcs.find(rid);
    if (it != s.server_rpcs.end()) {
      rpc = it->second.get();
      if (rpc->state != RpcState::kIncoming) return drop(&s, DropReason::kDuplicate);
    } else {
      switch (s.window.check(rid)) {
        case RequestWindow::Verdict::kFresh:
          break;
        case RequestWindow::Verdict::kDelivered:
#if !defined(SMT_FAULT_NO_REPLAY_WINDOW)
          ++s.replays;
          return drop(&s, DropReason::kReplay);
#else
          break;  // deliberate fault: replays are delivered again
#endif
        case RequestWindow::Verdict::kTooNew:
          return drop(&s, DropReason::kBeyondWindow);
        case RequestWindow::Verdict::kInvalid:
          return drop(&s, DropReason::kBadHeader);
      }
    }
  }

  RxEpochs::Slot* slot = s.rx->find(h.epoch);
  if (slot == nullptr) return drop(&s, DropReason::kUnknownEpoch);
  if (!s.rx->accepts(*slot, !response, rid)) return drop(&s, DropReason::kStaleEpoch);
  if (slot->opener.spent()) return drop(&s, DropReason::kKeyExhausted);
  if (h.message_length > config_.max_message_length) {
    return drop(&s, DropReason::kMessageTooLarge);
  }
  uint8_t* payload = pkt.data() + kDataHeaderLen;
  const size_t len = pkt.size() - kDataHeaderLen;
  const bool whole = is_whole_record(h, payload, len);

  if (rpc == nullptr) {
    if (!whole && s.unauthenticated >= 64) return drop(&s, DropReason::kNoBuffer);
    auto r = std::make_unique<Rpc>();
    r->serial = next_rpc_serial_++;
    r->session = &s;
    r->id = rid;
    r->client = false;
    r->state = RpcState::kIncoming;
    rpc = r.get();
    s.server_rpcs[rid] = std::move(r);
    created = true;
  }
  if (!rpc->has_in) {
    rpc->has_in = true;
    rpc->in.assembler = std::make_unique<MessageAssembler>(h.message_id, &s.drops, &s.budget);
    rpc->in.length = h.message_length;
    if (created && !whole) {
      ++s.unauthenticated;
      rpc->in.unauthenticated = true;
    }
  }
  InMessage& in = rpc->in;
  if (h.message_length != in.length) {
    drop(&s, DropReason::kLengthMismatch);
    if (created) free_rpc(s, *rpc);
    return;
  }
  MessageAssembler& m = *in.assembler;
  const bool was_started = m.started();
  // The cap admits new requests only: a response belongs to an RPC this
  // application started, and refusing it would deadlock the RPC.
  if (!was_started && !response && memory_ + in.length > config_.memory_cap) {
    drop(&s, DropReason::kNoBuffer);
    if (created) free_rpc(s, *rpc);
    return;
  }
  RxResult r = whole ? m.add_record(h, slot->opener, payload, len)
                     : m.add_slice(h, slot->opener, payload, len);
  if (!r.accepted) {
    drop(&s, r.why);
    if (created && m.empty()) free_rpc(s, *rpc);
    if (r.why == DropReason::kAuthFailed && slot->opener.spent()) spent_sessions_.insert(s.id);
    return;
  }
  rpc->silent_ticks = 0;
  in.granted = std::max(in.granted, std::min(h.incoming, in.length));
  if (m.started()) {
    // A record of this message authenticated under h.epoch.
    auto st = s.rx->authenticated(h.epoch, !response, rid, clock_.now_ns(), s.next_request_id,
                                  std::max(config_.rpc_timeout_ns, 2 * config_.idle_timeout_ns));
    (void)st;  // only fails for an epoch we just found
    if (!was_started) {
      memory_ += in.length;
      in.counted = true;
      if (in.unauthenticated) {
        in.unauthenticated = false;
        --s.unauthenticated;
      }
      if (!response) {
        s.incoming_requests.insert(rid);
        advance_window(s);
      }
    }
  }
  if (response && rpc->state == RpcState::kOutgoing) {
    rpc->state = RpcState::kIncoming;
    s.tx->acked(rpc->out.epoch);  // the server has our request
    // ...all of it: nothing queued for it needs to go out again.
    rpc->out.clear_resends();
    tx_update(*rpc);
  }
  if (r.completed) {
    message_complete(s, *rpc);
  } else {
    rx_update(*rpc);
  }
}

void Engine::message_complete(Session& s, Rpc& rpc) {
  std::vector<uint8_t> data = rpc.in.assembler->take_message();
  if (rpc.in.counted) memory_ -= rpc.in.length;
  rpc.in = InMessage();
  rpc.has_in = false;
  rx_update(rpc);  // nothing left to grant: leaves the grant order
  Event e;
  e.session = s.id;
  e.id = rpc.id;
  e.data = std::move(data);
  if (rpc.client) {
    e.kind = Event::Kind::kResponse;
    ++stats_.rpcs_completed;
    s.pending_acks.push_back(rpc.id | 1);
    free_rpc(s, rpc);
    // Three ids to an ACK; the rest go out on the next tick (run_timers),
    // which the helper thread keeps even for a client that stopped calling.
    queue_acks(s, false);
  } else {
    e.kind = Event::Kind::kRequest;
    ++stats_.requests_delivered;
    s.window.mark(rpc.id);
    s.incoming_requests.erase(rpc.id);
    rpc.state = RpcState::kInService;
    rpc.silent_ticks = 0;
    advance_window(s);
  }
  deliver(std::move(e));
}

void Engine::advance_window(Session& s) {
  s.window.advance([&](uint64_t id) {
    auto it = s.server_rpcs.find(id);
    if (it == s.server_rpcs.end()) return false;
    const Rpc& r = *it->second;
    return r.state != RpcState::kIncoming || (r.in.assembler && r.in.assembler->started());
  });
  // Report the base when it moved a quarter window since the last report,
  // so a client that only sends requests learns it (CONTRACT §3).
  if ((s.window.base() - s.last_base_report) / 2 >= s.window.width() / 4) {
    ControlPacket c;
    c.type = SMT_TYPE_ACK;
    send_control(s, c);
  }
  s.owner.publish_base(base_to_publish(s));
}

std::optional<Event> Engine::next_event() {
  if (events_.empty()) return std::nullopt;
  Event e = std::move(events_.front());
  events_.pop_front();
  memory_ -= e.data.size();
  return e;
}

// ---- control -------------------------------------------------------------------

void Engine::on_control(Session& s, std::span<const uint8_t> pkt) {
  ControlPacket c;
  DropReason why;
  if (!parse_control_packet(pkt, &c, &why)) return drop(&s, why);
#if !defined(SMT_FAULT_NO_CTL_MAC)
  if (!verify_control_tag(pkt, c, s.rx_ctl.data())) return drop(&s, DropReason::kBadTag);
#endif
#if !defined(SMT_FAULT_NO_CTL_REPLAY)
  if (!s.ctl_window.accept(c.control_seq)) return drop(&s, DropReason::kControlReplay);
#endif
  switch (c.type) {
    case SMT_TYPE_GRANT:
      return on_grant(s, c);
    case SMT_TYPE_RESEND:
      return on_resend(s, c);
    case SMT_TYPE_RPC_UNKNOWN:
      return on_rpc_unknown(s, c);
    case SMT_TYPE_BUSY:
      return on_busy(s, c);
    case SMT_TYPE_NEED_ACK:
      return on_need_ack(s, c);
    case SMT_TYPE_ACK:
      return on_ack(s, c);
    default:
      return drop(&s, DropReason::kBadType);
  }
}

namespace {
// A reported base only moves forward and never past what was allocated.
void take_peer_base(Session& s, uint64_t base) {
  if (base > s.next_request_id) base = s.next_request_id;
  if (base > s.peer_base) s.peer_base = base & ~1ull;
}
}  // namespace

void Engine::on_grant(Session& s, const ControlPacket& c) {
  take_peer_base(s, c.window_base);
  Rpc* rpc = find_out_rpc(s, c.message_id);
  if (rpc == nullptr) return drop(&s, DropReason::kNoRpc);
  OutMessage& out = rpc->out;
  rpc->silent_ticks = 0;
  s.tx->acked(out.epoch);  // the peer authenticated part of this message
  const uint32_t offset = std::min(c.grant_offset, out.length);
  if (offset > out.granted) out.granted = offset;
  out.priority = c.priority;
  tx_update(*rpc);
}

void Engine::on_resend(Session& s, const ControlPacket& c) {
  Rpc* rpc = find_out_rpc(s, c.message_id);
  if (rpc == nullptr) {
    Rpc* other = find_in_rpc(s, c.message_id ^ 1);
    if ((c.message_id & 1) && other != nullptr && !other->client) {
      // The client wants a response we have not created yet: we are alive.
      ControlPacket b;
      b.type = SMT_TYPE_BUSY;
      b.message_id = c.message_id;
      return send_control(s, b);
    }
    ControlPacket u;
    u.type = SMT_TYPE_RPC_UNKNOWN;
    u.message_id = c.message_id;
    if ((c.message_id & 1) &&
        s.window.check(c.message_id & ~1ull) == RequestWindow::Verdict::kDelivered) {
      u.unknown_flags = SMT_UNKNOWN_F_DELIVERED;
    }
    return send_control(s, u);
  }
  rpc->silent_ticks = 0;
  OutMessage& out = rpc->out;
  const MessageGeometry& g = out.msg->geometry();
  const uint64_t end = uint64_t{c.resend_offset} + c.resend_length;
  // A RESEND also grants what it asks for (a lost GRANT is repaired by it).
  const uint32_t want = static_cast<uint32_t>(std::min<uint64_t>(end, out.length));
  if (want > out.granted) out.granted = want;
  bool queued = false;
  const uint32_t first = c.resend_offset / g.record_data;
  for (uint32_t i = first; i < out.next_record && g.offset(i) < end; ++i) {
    queued |= out.queue_resend(i);
  }
  if (c.resend_length == 0 && out.next_record > 0) queued |= out.queue_resend(0);
  if (!queued && !out.has_new()) {
    ControlPacket b;
    b.type = SMT_TYPE_BUSY;
    b.message_id = c.message_id;
    send_control(s, b);
  }
  tx_update(*rpc);
}

void Engine::on_rpc_unknown(Session& s, const ControlPacket& c) {
  if (c.message_id & 1) {
    // The server holds nothing for our RPC.
    auto it = s.client_rpcs.find(c.message_id & ~1ull);
    if (it == s.client_rpcs.end()) return drop(&s, DropReason::kNoRpc);
    Rpc& rpc = *it->second;
    if ((c.unknown_flags & SMT_UNKNOWN_F_DELIVERED) || rpc.state != RpcState::kOutgoing) {
      // It may have been delivered: never send it again (CONTRACT §3).
      return fail_client_rpc(s, rpc, ECONNRESET);
    }
    // Never delivered: everything sent so far was lost. Send the same
    // records again under the same id.
    for (uint32_t i = 0; i < rpc.out.next_record; ++i) rpc.out.queue_resend(i);
    rpc.silent_ticks = 0;
    tx_update(rpc);
    return;
  }
  // The client no longer knows the request we are receiving.
  auto it = s.server_rpcs.find(c.message_id);
  if (it == s.server_rpcs.end()) return drop(&s, DropReason::kNoRpc);
  free_rpc(s, *it->second);
}

void Engine::on_busy(Session& s, const ControlPacket& c) {
  Rpc* rpc = find_in_rpc(s, c.message_id);
  if (rpc == nullptr) return drop(&s, DropReason::kNoRpc);
  rpc->silent_ticks = 0;
}

void Engine::on_need_ack(Session& s, const ControlPacket& c) {
  ControlPacket a;
  a.type = SMT_TYPE_ACK;
  if (c.message_id != 0) {
    if (!(c.message_id & 1)) return drop(&s, DropReason::kBadHeader);
    if (s.client_rpcs.count(c.message_id & ~1ull) != 0) return;  // still receiving it
    a.acked_ids[0] = c.message_id;
  }
  send_control(s, a);
}

void Engine::on_ack(Session& s, const ControlPacket& c) {
  take_peer_base(s, c.window_base);
  for (uint64_t id : c.acked_ids) {
    if (id == 0 || !(id & 1)) continue;
    auto it = s.server_rpcs.find(id & ~1ull);
    if (it == s.server_rpcs.end()) continue;
    Rpc& rpc = *it->second;
    if (rpc.state != RpcState::kResponding) continue;
    s.tx->acked(rpc.out.epoch);
    free_rpc(s, rpc);
  }
}

// ---- RPC lifetime ----------------------------------------------------------------

void Engine::deliver(Event e) {
  memory_ += e.data.size();
  events_.push_back(std::move(e));
}

void Engine::fail_client_rpc(Session& s, Rpc& rpc, int error) {
  Event e;
  e.kind = Event::Kind::kError;
  e.session = s.id;
  e.id = rpc.id;
  e.error = error;
  ++stats_.rpcs_failed;
  free_rpc(s, rpc);
  deliver(std::move(e));
}

void Engine::free_rpc(Session& s, Rpc& rpc) {
  if (rpc.in_tx) {
    tx_ready_.erase(&rpc);
    tx_by_age_.erase(&rpc);
  }
  if (rpc.in_rx) rx_grantable_.erase(&rpc);
  if (rpc.has_out) {
    memory_ -= rpc.out.memory;
    s.tx->message_ended(rpc.out.epoch);
    if (rpc.out.length > config_.unscheduled_bytes) s.owner.disarm(rpc.client ? rpc.id : (rpc.id | 1));
  }
  if (rpc.has_in && rpc.in.counted) memory_ -= rpc.in.length;
  if (!rpc.client) {
    s.incoming_requests.erase(rpc.id);
    if (rpc.has_in && rpc.in.unauthenticated) --s.unauthenticated;
    s.server_rpcs.erase(rpc.id);
    s.owner.publish_base(base_to_publish(s));
  } else {
    s.client_rpcs.erase(rpc.id);
  }
}

Status Engine::abort(SessionId sid, uint64_t id) {
  auto it = sessions_.find(sid);
  if (it == sessions_.end()) return make_error(ENOTCONN, "no such session");
  Session& s = *it->second;
  if (auto c = s.client_rpcs.find(id); c != s.client_rpcs.end()) {
    ++stats_.rpcs_failed;
    free_rpc(s, *c->second);
    return {};
  }
  if (auto r = s.server_rpcs.find(id);
      r != s.server_rpcs.end() && r->second->state == RpcState::kInService) {
    free_rpc(s, *r->second);
    return {};
  }
  return make_error(ENOENT, "no such RPC");
}

// ---- timers ------------------------------------------------------------------------

uint64_t Engine::next_deadline() const {
  bool busy = tx_pending_ != 0;
  for (const auto& [id, s] : sessions_) {
    if (!s->client_rpcs.empty() || !s->server_rpcs.empty() || !s->pending_acks.empty()) {
      busy = true;
      break;
    }
  }
  uint64_t t = busy ? next_tick_ : UINT64_MAX;
  if (busy && t == 0) t = clock_.now_ns();
  for (const auto& [id, s] : sessions_) t = std::min(t, s->rx->next_expiry());
  return t;
}

void Engine::run_timers() {
  const uint64_t now = clock_.now_ns();
  if (next_tick_ == 0) next_tick_ = now + config_.tick_ns;
  for (auto& [id, s] : sessions_) s->rx->expire(now);
  if (now < next_tick_) return;
  next_tick_ = now + config_.tick_ns;
  for (auto& [sid, sp] : sessions_) {
    Session& s = *sp;
    queue_acks(s, true);
    maybe_rekey(s);
    std::vector<Rpc*> rpcs;
    rpcs.reserve(s.client_rpcs.size() + s.server_rpcs.size());
    for (auto& [id, r] : s.client_rpcs) rpcs.push_back(r.get());
    for (auto& [id, r] : s.server_rpcs) rpcs.push_back(r.get());
    std::sort(rpcs.begin(), rpcs.end(),
              [](const Rpc* a, const Rpc* b) { return a->serial < b->serial; });
    for (Rpc* r : rpcs) tick_rpc(s, *r);
  }
}

void Engine::tick_rpc(Session& s, Rpc& rpc) {
  ++rpc.silent_ticks;
  const uint64_t timeout_ticks = std::max<uint64_t>(1, config_.rpc_timeout_ns / config_.tick_ns);
  if (rpc.state != RpcState::kInService && rpc.silent_ticks >= timeout_ticks) {
    if (rpc.client) return fail_client_rpc(s, rpc, ETIMEDOUT);
    return free_rpc(s, rpc);
  }
  const uint32_t every = std::max<uint32_t>(1, config_.resend_ticks);
  const bool resend_due = rpc.silent_ticks >= every && rpc.silent_ticks % every == 0;
  switch (rpc.state) {
    case RpcState::kOutgoing:
      // No response yet and silence: ask the server. It answers BUSY while it
      // works on the request, RPC_UNKNOWN if the request never arrived. (A
      // request still waiting in our own queue has nothing to ask about.)
      if (resend_due && rpc.out.next_record > 0) {
        ControlPacket c;
        c.type = SMT_TYPE_RESEND;
        c.message_id = rpc.id | 1;
        c.resend_offset = 0;
        c.resend_length = config_.unscheduled_bytes;
        c.priority = SMT_PRIORITY_MAX;
        send_control(s, c);
      }
      break;
    case RpcState::kIncoming: {
      if (!resend_due || !rpc.has_in) break;
      const InMessage& in = rpc.in;
      const uint32_t limit = std::max<uint32_t>(in.granted, in.length == 0 ? 0 : 1);
      std::pair<uint32_t, uint32_t> gaps[8];
      size_t n = in.assembler->gaps(std::min(limit, in.length), gaps, 8);
      if (n == 0 && in.length == 0) {
        gaps[0] = {0, 0};
        n = 1;
      }
      for (size_t i = 0; i < n; ++i) {
        ControlPacket c;
        c.type = SMT_TYPE_RESEND;
        c.message_id = rpc.client ? (rpc.id | 1) : rpc.id;
        c.resend_offset = gaps[i].first;
        c.resend_length = gaps[i].second;
        c.priority = SMT_PRIORITY_MAX;
        send_control(s, c);
      }
      break;
    }
    case RpcState::kInService:
      break;
    case RpcState::kResponding: {
      const uint32_t need = std::max<uint32_t>(1, config_.need_ack_ticks);
      if (rpc.out.all_sent_once && rpc.silent_ticks >= need && rpc.silent_ticks % need == 0) {
        ControlPacket c;
        c.type = SMT_TYPE_NEED_ACK;
        c.message_id = rpc.id | 1;
        send_control(s, c);
      }
      break;
    }
  }
}

}  // namespace smt
