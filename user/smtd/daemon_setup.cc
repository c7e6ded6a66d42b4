// The set-up protocol's meaning (docs/setup-protocol.md §4): what smtd does
// with OPEN, READY, REFUSED and CLOSE from a peer, and how it sends OPEN.
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>

#include "smt/wire.h"
#include "smtd/daemon.h"
#include "smtd/daemon_util.h"
#include "smtd/smtd_log.h"

namespace smt::smtd {

// ---- the set-up protocol ---------------------------------------------------------

void Daemon::on_setup_message(PeerChannel* ch, const SetupMessage& m) {
  log_debug("from " + ch->peer_name() + ": " + describe_setup(m));
  if (const auto* o = std::get_if<OpenMsg>(&m)) {
    on_open(ch, *o);
  } else if (const auto* r = std::get_if<ReadyMsg>(&m)) {
    on_ready(ch, *r);
  } else if (const auto* r = std::get_if<RefusedMsg>(&m)) {
    on_refused(ch, *r);
  } else {
    on_peer_close(ch, std::get<CloseMsg>(m));
  }
}

void Daemon::send_open(PeerChannel* ch, Session* s) {
  if (!ch->established() || ch->closing() || ch->root().empty())
    return;  // its close fails the open
  s->serial = next_serial(ch->role());
  s->channel = ch->id();
  s->suite = ch->suite();
  s->peer_identity = ch->identity();
  s->protocol = cfg_.protocol;
  SessionContextInput in;
  in.version = SMT_VERSION;
  in.suite = s->suite;
  in.initiator_addr = cfg_.address;
  in.initiator_port = s->name.local_port;
  in.responder_addr = s->name.peer_addr;
  in.responder_port = s->name.peer_port;
  in.protocol = s->protocol;
  in.serial = s->serial;
  auto secrets = derive_session_secrets(ch->root(), in);
  if (!secrets) {
    fail_open(s, EIO, "key derivation failed: " + secrets.error().message);
    return;
  }
  s->not_after = tls_.cert_not_after;
  if (ch->peer_not_after() != 0 && (s->not_after == 0 || ch->peer_not_after() < s->not_after)) {
    s->not_after = ch->peer_not_after();
  }
  by_serial_[{s->peer_identity, s->serial}] = s->name;
  // The initiator's entry goes in before OPEN so the responder's first packet
  // finds it; the keys go to the application only after READY (CONTRACT §6).
  if (Status st = install_session(*s, *secrets); !st) {
    fail_open(s, st.error().code, "installing the session failed: " + st.error().message);
    return;
  }
  auto* r = reinterpret_cast<smtd_app_session*>(s->reply.data());
  r->session_slot = s->slot;
  r->hdr.version = SMTD_APP_VERSION;
  r->hdr.type = SMTD_APP_OPENED;
  r->hdr.length = sizeof *r;
  r->hdr.request_id = s->request_id;
  r->serial = s->serial;
  r->suite = static_cast<uint16_t>(s->suite);
  r->initiator = 1;
  r->smt_version = SMT_VERSION;
  r->protocol = s->protocol;
  r->secret_len = static_cast<uint8_t>(secrets->initiator_secret.size());
  r->has_secrets = 1;
  std::memcpy(r->local_addr, cfg_.address.data(), 16);
  std::memcpy(r->peer_addr, s->name.peer_addr.data(), 16);
  r->local_port = s->name.local_port;
  r->peer_port = s->name.peer_port;
  std::memcpy(r->secret_i_0, secrets->initiator_secret.data(), secrets->initiator_secret.size());
  std::memcpy(r->secret_r_0, secrets->responder_secret.data(), secrets->responder_secret.size());
  std::memcpy(r->k_ctl_i, secrets->initiator_ctl.data(), 16);
  std::memcpy(r->k_ctl_r, secrets->responder_ctl.data(), 16);
  std::snprintf(r->peer_identity, sizeof r->peer_identity, "%s", s->peer_identity.c_str());
  s->reply.set_size(sizeof *r);
  keylog_.write_session(in, *secrets);

  OpenMsg m;
  m.serial = s->serial;
  m.smt_version = SMT_VERSION;
  m.protocol = s->protocol;
  m.initiator_addr = cfg_.address;
  m.initiator_port = s->name.local_port;
  m.responder_addr = s->name.peer_addr;
  m.responder_port = s->name.peer_port;
  m.rx_queue = s->rx_queue;
  ch->send(m);
  log_debug("to " + ch->peer_name() + ": " + describe_setup(m));
}

void Daemon::on_open(PeerChannel* ch, const OpenMsg& m) {
  auto refuse = [&](RefuseReason r, const std::string& why) {
    log_warning("refused OPEN serial " + std::to_string(m.serial) + " from peer " +
                ch->peer_name() + " (" + ch->identity() + "): " + why + " [" +
                refuse_reason_name(r) + "]");
    ch->send(RefusedMsg{m.serial, r});
  };
  bool from_tls_client = ch->role() == PeerChannel::Role::kServer;
  if (((m.serial & 1) == 0) != from_tls_client) {
    refuse(RefuseReason::kBadSerial, std::string("serial parity must be ") +
                                         (from_tls_client ? "even" : "odd") + " from the TLS " +
                                         (from_tls_client ? "client" : "server"));
    return;
  }
  if (m.smt_version != SMT_VERSION) {
    refuse(RefuseReason::kUnsupportedVersion, "SMT version " + std::to_string(m.smt_version) +
                                                  " (this host speaks " +
                                                  std::to_string(SMT_VERSION) + ")");
    return;
  }
  if (m.protocol != cfg_.protocol) {
    refuse(RefuseReason::kProtocolMismatch, "IP protocol " + std::to_string(m.protocol) +
                                                ", this host uses " +
                                                std::to_string(cfg_.protocol));
    return;
  }
  if (m.responder_addr != cfg_.address) {
    refuse(RefuseReason::kAddressMismatch, "responder address " + format_addr(m.responder_addr) +
                                               " is not this host's " + format_addr(cfg_.address));
    return;
  }
  const PeerConfig* peer = cfg_.peer_by_address(m.initiator_addr);
  if (peer == nullptr || peer->name != ch->peer_name()) {
    refuse(RefuseReason::kAddressMismatch, "initiator address " + format_addr(m.initiator_addr) +
                                               " is not the address of peer " + ch->peer_name());
    return;
  }
  auto lease = leases_.find(m.responder_port);
  App* app = lease != leases_.end() ? find_app(lease->second.owner) : nullptr;
  if (app == nullptr) {
    refuse(RefuseReason::kPortNotLeased,
           "no application holds port " + std::to_string(m.responder_port));
    return;
  }
  SessionName name{m.responder_port, m.initiator_addr, m.initiator_port};
  if (find_session(name) != nullptr || find_by_serial(ch->identity(), m.serial) != nullptr) {
    refuse(RefuseReason::kDuplicate, "session " + describe(name) + " or serial exists already");
    return;
  }
  SessionContextInput in;
  in.version = m.smt_version;
  in.suite = ch->suite();
  in.initiator_addr = m.initiator_addr;
  in.initiator_port = m.initiator_port;
  in.responder_addr = m.responder_addr;
  in.responder_port = m.responder_port;
  in.protocol = m.protocol;
  in.serial = m.serial;
  auto secrets = derive_session_secrets(ch->root(), in);
  auto slot = arena_->take();
  if (!secrets || !slot) {
    refuse(RefuseReason::kInternal, !secrets ? secrets.error().message : slot.error().message);
    return;
  }
  Session s;
  s.name = name;
  s.state = SessionState::kLive;
  s.serial = m.serial;
  s.initiator = false;
  s.suite = ch->suite();
  s.protocol = m.protocol;
  s.peer_name = ch->peer_name();
  s.peer_identity = ch->identity();
  s.owner = app->id;
  s.owner_uid = app->uid;
  s.owner_pid = app->pid;
  s.peer_rx_queue = m.rx_queue;
  s.opened_at = Clock::now();
  s.not_after = tls_.cert_not_after;
  if (ch->peer_not_after() != 0 && (s.not_after == 0 || ch->peer_not_after() < s.not_after)) {
    s.not_after = ch->peer_not_after();
  }
  auto* r = reinterpret_cast<smtd_app_session*>(slot->data());
  RAND_bytes(r->holder_token, sizeof r->holder_token);
  s.token_digest = token_digest(r->holder_token);
  if (Status st = install_session(s, *secrets); !st) {
    release_slot(s.owner, s.slot);
    (void)maps_->delete_session(map_key(cfg_.address, name));
    refuse(RefuseReason::kNoResources, st.error().message);
    return;
  }
  r->hdr.version = SMTD_APP_VERSION;
  r->hdr.type = SMTD_APP_INCOMING;
  r->hdr.length = sizeof *r;
  r->serial = m.serial;
  r->suite = static_cast<uint16_t>(s.suite);
  r->initiator = 0;
  r->smt_version = m.smt_version;
  r->protocol = m.protocol;
  r->secret_len = static_cast<uint8_t>(secrets->initiator_secret.size());
  r->has_secrets = 1;
  std::memcpy(r->local_addr, cfg_.address.data(), 16);
  std::memcpy(r->peer_addr, m.initiator_addr.data(), 16);
  r->local_port = m.responder_port;
  r->peer_port = m.initiator_port;
  r->peer_rx_queue = m.rx_queue;
  r->session_slot = s.slot;
  std::memcpy(r->secret_i_0, secrets->initiator_secret.data(), secrets->initiator_secret.size());
  std::memcpy(r->secret_r_0, secrets->responder_secret.data(), secrets->responder_secret.size());
  std::memcpy(r->k_ctl_i, secrets->initiator_ctl.data(), 16);
  std::memcpy(r->k_ctl_r, secrets->responder_ctl.data(), 16);
  std::snprintf(r->peer_identity, sizeof r->peer_identity, "%s", s.peer_identity.c_str());
  sessions_.emplace(name, std::move(s));
  by_serial_[{ch->identity(), m.serial}] = name;
  keylog_.write_session(in, *secrets);
  // The holder has its keys before READY leaves, so the initiator's first
  // packet finds both the map entry and a ready engine.
  if (!notify_app(app->id, r, sizeof *r)) {
    close_session(name, false, 0);
    refuse(RefuseReason::kInternal, "the application holding the port went away");
    return;
  }
  ch->send(ReadyMsg{m.serial, app->xsk ? app->xsk_queue : 0});  // where we receive
  log_info("session serial " + std::to_string(m.serial) + " " + describe(name) +
           " opened by peer " + ch->peer_name() + " (" + ch->identity() + ") for uid " +
           std::to_string(app->uid) + " pid " + std::to_string(app->pid));
}

void Daemon::on_ready(PeerChannel* ch, const ReadyMsg& m) {
  Session* s = find_by_serial(ch->identity(), m.serial);
  if (s == nullptr || s->state != SessionState::kOpening || s->channel != ch->id()) {
    log_warning("unexpected READY serial " + std::to_string(m.serial) + " from peer " +
                ch->peer_name() + ": ignored");
    return;
  }
  s->peer_rx_queue = m.rx_queue;
  auto* r = reinterpret_cast<smtd_app_session*>(s->reply.data());
  r->peer_rx_queue = m.rx_queue;
  s->state = SessionState::kLive;
  s->opened_at = Clock::now();
  SessionName name = s->name;
  uint32_t owner = s->owner;
  bool sent = send_app(owner, r, sizeof *r);
  s->reply.reset();   // the secrets leave smtd with that message
  if (!sent) return;  // the app is being dropped, which closes the session
  log_info("session serial " + std::to_string(m.serial) + " " + describe(name) + " to peer " +
           ch->peer_name() + " (" + ch->identity() + ") ready");
}

void Daemon::on_refused(PeerChannel* ch, const RefusedMsg& m) {
  Session* s = find_by_serial(ch->identity(), m.serial);
  if (s == nullptr || s->state != SessionState::kOpening) {
    log_warning("peer " + ch->peer_name() + " refused serial " + std::to_string(m.serial) + ": " +
                refuse_reason_name(m.reason) + " (no open of ours is waiting for it)");
    return;
  }
  std::string why =
      "peer " + ch->peer_name() + " refused the session: " + refuse_reason_name(m.reason);
  log_warning(why);
  // The peer installed nothing; no CLOSE needed.
  s->serial = 0;
  by_serial_.erase({ch->identity(), m.serial});
  fail_open(s, ECONNREFUSED, why, static_cast<uint16_t>(m.reason));
}

void Daemon::on_peer_close(PeerChannel* ch, const CloseMsg& m) {
  Session* s = find_by_serial(ch->identity(), m.serial);
  if (s == nullptr) {
    log_debug("CLOSE for unknown serial " + std::to_string(m.serial) + " from " + ch->peer_name());
    return;
  }
  log_info("peer " + ch->peer_name() + " closed session serial " + std::to_string(m.serial));
  if (s->state == SessionState::kOpening) {
    fail_open(s, ECONNRESET, "peer closed the session while it was opening");
    return;
  }
  close_session(s->name, false, SMTD_CLOSE_BY_PEER);
}

}  // namespace smt::smtd
