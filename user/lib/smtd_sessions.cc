#include "lib/smtd_sessions.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>

namespace smt::lib {
namespace {

// How often a socket whose smtd went away tries to reconnect.
constexpr uint64_t kRetryNs = 100'000'000;
// How often a socket reports its sessions' counters to smtd.
constexpr uint64_t kReportNs = 1'000'000'000;
// How often poll() reads smtd's socket even though the notification count
// did not move: replies that came too late for their call, and a socket that
// smtd closed, are found within this time.
constexpr uint64_t kQuietReadNs = 1'000'000;

bool connection_lost(int code) {
  return code == ECONNRESET || code == EPIPE || code == ENOTCONN || code == ETIMEDOUT;
}

// Every smtd connection of this process. A forked child closes its copies at
// once (CONTRACT §2: sessions belong to the process that opened them): smtd
// must see the connection end when the parent does, not when the last child
// that inherited the fd exits.
std::mutex g_fds_mu;
std::set<int>& smtd_fds() {
  static std::set<int> fds;
  return fds;
}
void fork_prepare() { g_fds_mu.lock(); }
void fork_parent() { g_fds_mu.unlock(); }
void fork_child() {
  for (int fd : smtd_fds()) ::close(fd);
  smtd_fds().clear();
  g_fds_mu.unlock();
}
void track_fd(int fd) {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(fork_prepare, fork_parent, fork_child); });
  std::lock_guard<std::mutex> lk(g_fds_mu);
  smtd_fds().insert(fd);
}
void untrack_fd(int fd) {
  std::lock_guard<std::mutex> lk(g_fds_mu);
  smtd_fds().erase(fd);
}

}  // namespace

SmtdSessions::~SmtdSessions() { set_client(std::nullopt); }

void SmtdSessions::set_client(std::optional<smtd::SmtdClient> c) {
  if (client_) untrack_fd(client_->fd());
  client_ = std::move(c);
  if (client_) track_fd(client_->fd());
}

void SmtdSessions::take_owner_table() {
  // The engines stop writing to the old table before it is unmapped; smtd
  // removed it from XDP when the old connection ended.
  for (auto& [sid, h] : held_) {
    engine_.set_owner_entry(sid, nullptr);
    h.slot = SMTD_APP_SLOT_NONE;
  }
  table_.reset();
  notify_.reset();
  auto grant = client_->owner_table();
  if (!grant.ok()) {
    ++counters_.owner_table_errors;
    return;
  }
  // Without the page poll() reads the socket on every call, as it must.
  if (auto page = smtd::NotifyPage::map_readonly(std::move(grant->notify_fd)); page.ok()) {
    notify_.emplace(std::move(*page));
    notified_ = UINT64_MAX;  // read the new connection's socket once, whatever the count
  }
  auto t = OwnerTable::map(std::move(*grant));
  if (!t.ok()) {
    ++counters_.owner_table_errors;
    return;
  }
  table_ = std::move(*t);
}

Result<std::unique_ptr<SmtdSessions>> SmtdSessions::connect(const std::string& path,
                                                            int open_timeout_ms, Engine& engine,
                                                            std::map<SessionId, PeerAddr>& peers,
                                                            const Clock& clock) {
  auto c = smtd::SmtdClient::connect(path);
  if (!c.ok()) return c.error();
  std::unique_ptr<SmtdSessions> s(new SmtdSessions(path, open_timeout_ms, engine, peers, clock));
  s->set_client(std::move(*c));
  s->take_owner_table();
  return s;
}

Result<std::unique_ptr<SmtdSessions>> SmtdSessions::attach(
    smtd::SmtdClient client, const std::string& path, int open_timeout_ms, Engine& engine,
    std::map<SessionId, PeerAddr>& peers, const Clock& clock, std::vector<int> datapath_fds,
    uint32_t datapath_queue) {
  std::unique_ptr<SmtdSessions> s(new SmtdSessions(path, open_timeout_ms, engine, peers, clock));
  s->set_client(std::move(client));
  s->datapath_fds_ = std::move(datapath_fds);
  s->datapath_queue_ = datapath_queue;
  s->take_owner_table();
  return s;
}

Result<uint16_t> SmtdSessions::lease(uint16_t port) {
  if (!client_) {
    if (Status st = reconnect(); !st) return make_error(ECONNREFUSED, st.error().message);
  }
  auto got = client_->lease(port);
  if (!got.ok()) {
    if (connection_lost(got.error().code)) disconnected();
    return got.error();
  }
  port_ = *got;
  ephemeral_ = port == 0;
  return *got;
}

Result<smtd::HeldSession> SmtdSessions::open_wait(const PeerAddr& peer) {
  if (!client_) {
    if (Status st = reconnect(); !st) return make_error(ECONNREFUSED, st.error().message);
  }
  auto held = client_->open(peer.addr, peer.port, port_, 0, open_timeout_ms_);
  if (held.ok()) return held;
  const Error& e = held.error();
  const std::string what = "opening a session with " + peer.to_string() + " through smtd: ";
  if (e.code == ECONNRESET || e.code == EPIPE) {
    disconnected();
    return make_error(ECONNREFUSED, what + "smtd went away (" + e.message + ")");
  }
  if (e.code == ETIMEDOUT && client_->last_error().err == 0) {
    // No answer within our bound (longer than smtd's own handshake and open
    // timeouts). The connection stays: dropping it would close every session.
    return make_error(ECONNREFUSED, what + "no answer from smtd within " +
                                        std::to_string(open_timeout_ms_) + " ms");
  }
  switch (e.code) {
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ETIMEDOUT:
    case ECONNABORTED:
      return make_error(ECONNREFUSED, what + e.message);
    default:
      return make_error(e.code, what + e.message);
  }
}

Result<SessionId> SmtdSessions::install(smtd::HeldSession& held) {
  if (!held.has_secrets) return make_error(EPROTO, "smtd handed over a session without secrets");
  if (held.local_port != port_) {
    return make_error(EPROTO, "smtd handed over a session for port " +
                                  std::to_string(held.local_port) + ", this socket has " +
                                  std::to_string(port_));
  }
  SessionParams p;
  p.local_addr = held.local_addr;
  p.local_port = held.local_port;
  p.peer_addr = held.peer_addr;
  p.peer_port = held.peer_port;
  p.suite = held.suite;
  p.initiator = held.initiator;
  p.serial = held.serial;
  p.initiator_secret = held.secret_i_0;
  p.responder_secret = held.secret_r_0;
  p.initiator_ctl = held.k_ctl_i;
  p.responder_ctl = held.k_ctl_r;
  p.peer_identity = held.peer_identity;
  p.owner_entry = table_ ? table_->entry(held.session_slot) : nullptr;
  // smtd replaced a session we still hold under the same name (its
  // PEER_CLOSED is behind us): the old one is gone on both hosts.
  if (auto old = engine_.find_session(held.peer_addr, held.peer_port)) close_held(*old);
  auto sid = engine_.add_session(p);
  if (!sid.ok()) return sid.error();
  peers_[*sid] = PeerAddr{held.peer_addr, held.peer_port};
  held_[*sid] = Held{held.serial, held.holder_token, held.session_slot};
  if (held.initiator) {
    ++counters_.sessions_opened;
  } else {
    ++counters_.sessions_incoming;
  }
  return *sid;
}

void SmtdSessions::close_held(SessionId sid) {
  engine_.close_session(sid);
  held_.erase(sid);
  ++counters_.sessions_closed;
}

void SmtdSessions::on_peer_closed(const smtd_app_close& c) {
  PeerAddr peer;
  std::memcpy(peer.addr.data(), c.peer_addr, 16);
  peer.port = c.peer_port;
  auto sid = engine_.find_session(peer.addr, peer.port);
  if (!sid) return;
  auto it = held_.find(*sid);
  // A late notice about an earlier session with the same name changes nothing.
  if (it == held_.end() || it->second.serial != c.serial) return;
  close_held(*sid);
}

void SmtdSessions::poll(bool readable) {
  if (!client_) {
    if (clock_.now_ns() >= retry_at_ns_) (void)reconnect();
    if (!client_) return;
  }
  const uint64_t now = clock_.now_ns();
  // The count is read before the socket: a notification sent after this
  // read raises it again, so the next call looks.
  const uint64_t count = notify_ ? notify_->count() : 0;
  if (notify_ && !readable && count == notified_ && now < quiet_read_at_ns_ &&
      now < report_at_ns_) {
    return;
  }
  quiet_read_at_ns_ = now + kQuietReadNs;
  if (now >= report_at_ns_) {
    report();
    if (!client_) return;
  }
  ++counters_.socket_reads;
  for (;;) {
    auto n = client_->next_notification(0);
    if (!n.ok()) {
      if (n.error().code == ETIMEDOUT) {  // nothing waiting
        notified_ = count;
        return;
      }
      if (n.error().code == EPROTO) continue;  // a late reply or a bad message: skip it
      disconnected();
      return;
    }
    if (n->kind == smtd::SmtdNotification::Kind::kPeerClosed) {
      on_peer_closed(n->closed);
      continue;
    }
    // INCOMING. The peer sends only after READY, which smtd sends after this
    // message, so installing it before the next receive batch loses nothing.
    auto sid = install(n->session);
    if (!sid.ok()) {
      // We cannot hold it; tell smtd so that the peer hears of it.
      (void)client_->close(n->session.peer_addr, n->session.peer_port, n->session.local_port);
    }
  }
}

void SmtdSessions::report() {
  report_at_ns_ = clock_.now_ns() + kReportNs;
  report_.clear();
  std::vector<SessionId> ended;
  for (const auto& [sid, h] : held_) {
    auto st = engine_.session_stats(sid);
    if (!st) {
      ended.push_back(sid);
      continue;
    }
    const PeerAddr& peer = peers_[sid];
    smtd_app_session_stats e;
    std::memset(&e, 0, sizeof e);
    std::memcpy(e.peer_addr, peer.addr.data(), 16);
    e.peer_port = peer.port;
    e.local_port = port_;
    e.tx_epoch = st->tx_epoch;
    e.rx_epoch = st->rx_epoch;
    e.flags = (st->needs_new_session ? SMTD_STATS_F_NEEDS_NEW_SESSION : 0) |
              (st->epochs_exhausted ? SMTD_STATS_F_EPOCHS_EXHAUSTED : 0);
    e.serial = h.serial;
    e.sigma = st->sigma;
    e.sigma_limit = st->sigma_limit;
    e.auth_failures = st->auth_failures;
    e.replays = st->replays;
    for (size_t i = 0; i < static_cast<size_t>(DropReason::kCount) && i < SMTD_APP_STATS_DROPS;
         ++i) {
      e.drops[i] = st->drops.get(static_cast<DropReason>(i));
    }
    report_.push_back(e);
  }
  for (SessionId sid : ended) {
    const PeerAddr peer = peers_[sid];
    held_.erase(sid);
    peers_.erase(sid);
    ++counters_.engine_closed;
    Status st = client_->close(peer.addr, peer.port, port_);
    if (!st.ok() && connection_lost(st.error().code)) return disconnected();
  }
  if (report_.empty()) return;
  if (Status st = client_->send_stats(report_); !st.ok()) disconnected();
}

void SmtdSessions::disconnected() {
  set_client(std::nullopt);
  retry_at_ns_ = clock_.now_ns();  // the first retry comes at once; later ones every kRetryNs
}

Status SmtdSessions::reconnect() {
  retry_at_ns_ = clock_.now_ns() + kRetryNs;
  auto c = smtd::SmtdClient::connect(path_);
  if (!c.ok()) return c.error();
  set_client(std::move(*c));
  take_owner_table();
  ++counters_.reconnects;
  // Our sockets' filter must follow the new connection's owner id before the
  // leases do (ADOPT, LEASE): smtd keeps the old id valid for them meanwhile.
  if (!datapath_fds_.empty()) {
    Status st = client_->present_datapath(datapath_fds_, datapath_queue_);
    if (!st.ok() && connection_lost(st.error().code)) {
      disconnected();
      return st.error();
    }
    if (!st.ok()) ++counters_.datapath_errors;
  }
  // Re-adopt every session with its token: the engine kept its keys, so
  // nothing in flight notices. smtd closes (and tells the peer about) what
  // we cannot re-adopt; we close it here too.
  int adopted = 0;
  for (auto it = held_.begin(); it != held_.end();) {
    auto r = client_->adopt(it->second.token);
    if (r.ok() && r->serial == it->second.serial) {
      it->second.slot = r->session_slot;
      if (table_) engine_.set_owner_entry(it->first, table_->entry(r->session_slot));
      ++adopted;
      ++it;
      continue;
    }
    if (!r.ok() && connection_lost(r.error().code)) {
      disconnected();
      return r.error();
    }
    const SessionId sid = it->first;
    ++it;
    close_held(sid);
  }
  counters_.readopted += adopted;
  // ADOPT re-attached the port's lease; without a session, lease it again.
  if (adopted == 0 && port_ != 0) {
    auto l = client_->lease(port_);
    if (!l.ok() && connection_lost(l.error().code)) {
      disconnected();
      return l.error();
    }
  }
  return {};
}

Result<int> SmtdSessions::readopt() {
  if (client_) {
    poll();  // notices a dropped connection
    if (client_) return 0;
  }
  const uint64_t before = counters_.readopted;
  if (Status st = reconnect(); !st) return make_error(ECONNREFUSED, st.error().message);
  return static_cast<int>(counters_.readopted - before);
}

}  // namespace smt::lib
