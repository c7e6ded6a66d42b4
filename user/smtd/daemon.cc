#include "smtd/daemon.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "smt/wire.h"
#include "smtd/daemon_util.h"
#include "smtd/smtd_log.h"

namespace smt::smtd {
namespace {

constexpr size_t kArenaSlots = 2048;
constexpr auto kTick = std::chrono::seconds(1);
constexpr auto kRedialGap = std::chrono::seconds(5);
// CONTRACT §5: tag failures after which a session is closed.
constexpr uint64_t kMacFailureLimit = uint64_t{1} << 32;
// A TLS server closes a channel this long after reconnect_interval if the
// client (whose job it is) has not.
constexpr auto kServerReconnectSlack = std::chrono::seconds(60);

std::string errno_text(int e) { return std::strerror(e); }

/// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.
void notify_systemd(const char* state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0' || std::strlen(path) >= sizeof(sockaddr_un::sun_path)) {
    return;
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strcpy(sun.sun_path, path);
  if (sun.sun_path[0] == '@') sun.sun_path[0] = '\0';
  ::sendto(fd.get(), state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sun),
           sizeof sun);
}

}  // namespace

Result<std::unique_ptr<Daemon>> Daemon::create(const DaemonOptions& opts) {
  std::unique_ptr<Daemon> d(new Daemon(opts));  // private constructor
  if (Status s = d->start(); !s) return s.error();
  return d;
}

Daemon::~Daemon() {
  channels_.clear();
  sessions_.clear();
}

Status Daemon::start() {
  start_time_ = Clock::now();
  last_tick_ = start_time_;
  auto cfg = load_config(opts_.config_path);
  if (!cfg) return cfg.error();
  cfg_ = std::move(*cfg);
  auto tls = make_tls_contexts(cfg_);
  if (!tls) return tls.error();
  tls_ = std::move(*tls);
  if (tls_.cert_not_after != 0 && tls_.cert_not_after <= std::time(nullptr)) {
    log_warning("certificate " + cfg_.certificate +
                " has expired: peers will refuse this host (certificate_expired)");
  }

  // Key material never reaches a core file: locked, MADV_DONTDUMP arena, and
  // no core dumps of this process at all.
  auto arena = KeyArena::create(kArenaSlots);
  if (!arena) return arena.error();
  arena_ = std::move(*arena);
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

  auto maps = MapStore::open(opts_.state_dir);
  if (!maps) {
    return make_error(maps.error().code,
                      "state dir " + opts_.state_dir + ": " + maps.error().message);
  }
  maps_.emplace(std::move(*maps));

  if (!opts_.keylog_path.empty()) {
    if (Status s = keylog_.open(opts_.keylog_path); !s) return s.error();
    log_warning("**************************************************************");
    log_warning("--keylog " + opts_.keylog_path + ": SESSION SECRETS ARE WRITTEN TO DISK.");
    log_warning("Anyone who reads that file can decrypt and forge this host's SMT");
    log_warning("traffic. Debugging only; never in production.");
    log_warning("**************************************************************");
  }

  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return make_error(errno, "epoll_create1 failed: " + errno_text(errno));

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return make_error(errno, "sigprocmask failed");
  signal_fd_.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) return make_error(errno, "signalfd failed: " + errno_text(errno));
  ::signal(SIGPIPE, SIG_IGN);
  watch(signal_fd_.get(), EPOLLIN);

  sockaddr_storage ss;
  socklen_t slen = to_sockaddr(cfg_.listen, &ss);
  listen_fd_.reset(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd_) return make_error(errno, "socket failed: " + errno_text(errno));
  int one = 1;
  ::setsockopt(listen_fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&ss), slen) != 0 ||
      ::listen(listen_fd_.get(), 64) != 0) {
    int e = errno;
    return make_error(e, "cannot listen on " + format_endpoint(cfg_.listen) + ": " + errno_text(e));
  }
  watch(listen_fd_.get(), EPOLLIN);

  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (opts_.socket_path.empty() || opts_.socket_path.size() >= sizeof sun.sun_path) {
    return make_error(ENAMETOOLONG, "socket path '" + opts_.socket_path + "' is empty or too long");
  }
  std::strcpy(sun.sun_path, opts_.socket_path.c_str());
  if (auto slash = opts_.socket_path.rfind('/'); slash != 0 && slash != std::string::npos) {
    // The default lives in /run/smt, which a fresh boot does not have.
    ::mkdir(opts_.socket_path.substr(0, slash).c_str(), 0755);
  }
  {
    // A socket file that accepts connections belongs to a running smtd.
    UniqueFd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0) {
      return make_error(EADDRINUSE, "another smtd is serving " + opts_.socket_path);
    }
    ::unlink(opts_.socket_path.c_str());
  }
  unix_fd_.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!unix_fd_ || ::bind(unix_fd_.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0 ||
      ::listen(unix_fd_.get(), 64) != 0) {
    int e = errno;
    return make_error(e, "cannot serve unix socket " + opts_.socket_path + ": " + errno_text(e));
  }
  // Anyone may connect; SO_PEERCRED and the [uid N] rules decide what they may do.
  ::chmod(opts_.socket_path.c_str(), 0666);
  watch(unix_fd_.get(), EPOLLIN);

  adopt_previous_state();
  start_datapath();
  log_info("ready: SMT address " + format_addr(cfg_.address) + ", peers on " +
           format_endpoint(cfg_.listen) + ", applications on " + opts_.socket_path + ", state in " +
           maps_->pin_root());
  notify_systemd("READY=1");
  return {};
}

void Daemon::watch(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
  }
}

void Daemon::unwatch(int fd) { ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

int Daemon::run() {
  std::vector<uint32_t> drop_apps;
  while (running_) {
    epoll_event evs[32];
    int n = ::epoll_wait(epoll_.get(), evs, 32, 250);
    if (n < 0 && errno != EINTR) {
      log_error("epoll_wait failed: " + errno_text(errno));
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == signal_fd_.get()) {
        on_signal();
      } else if (fd == listen_fd_.get()) {
        on_accept();
      } else if (fd == unix_fd_.get()) {
        on_app_accept();
      } else if (auto it = channels_.find(fd); it != channels_.end()) {
        on_channel(it->second.get());
      } else if (auto a = app_by_fd_.find(fd); a != app_by_fd_.end()) {
        if (App* app = find_app(a->second)) on_app(app);
      }
    }
    if (Clock::now() - last_tick_ >= kTick) {
      last_tick_ = Clock::now();
      on_tick();
    }
    // Reap what the handlers closed, then re-arm the channels that remain.
    while (!apps_to_drop_.empty()) {
      auto it = apps_to_drop_.begin();
      uint32_t id = it->first;
      std::string why = it->second;
      apps_to_drop_.erase(it);
      drop_app(id, why);
    }
    for (auto it = channels_.begin(); it != channels_.end();) {
      PeerChannel* ch = it->second.get();
      if (ch->state() == PeerChannel::State::kClosed) {
        on_channel_closed(ch);
        unwatch(ch->fd());
        it = channels_.erase(it);
      } else {
        watch(ch->fd(), ch->wanted_events());
        ++it;
      }
    }
  }
  shutdown();
  return 0;
}

void Daemon::on_signal() {
  signalfd_siginfo si;
  while (::read(signal_fd_.get(), &si, sizeof si) == sizeof si) {
    if (si.ssi_signo == SIGHUP) {
      reload();
    } else {
      log_info(std::string("received ") + (si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT") +
               ": shutting down");
      running_ = false;
    }
  }
}

void Daemon::reload() {
  auto cfg = load_config(opts_.config_path);
  if (!cfg) {
    log_error("SIGHUP: keeping the running configuration: " + cfg.error().message);
    return;
  }
  auto tls = make_tls_contexts(*cfg);
  if (!tls) {
    log_error("SIGHUP: keeping the running configuration and certificates: " + tls.error().message);
    return;
  }
  if (std::memcmp(&cfg->listen, &cfg_.listen, sizeof cfg_.listen) != 0) {
    log_warning("SIGHUP: 'listen' changed; the new endpoint takes effect after a restart");
    cfg->listen = cfg_.listen;
  }
  if (cfg->address != cfg_.address) {
    log_warning("SIGHUP: 'address' changed; sessions keep the old address, new ones use the new");
  }
  cfg_ = std::move(*cfg);
  // Established channels keep the contexts they were made with (SSL holds a
  // reference); new channels use the new certificates.
  tls_ = std::move(*tls);
  tickets_.clear();
  update_trusted_uids();
  log_info("SIGHUP: reloaded " + opts_.config_path + " and certificates (" +
           std::to_string(cfg_.peers.size()) + " peers); " + std::to_string(sessions_.size()) +
           " sessions kept");
}

void Daemon::shutdown() {
  if (opts_.close_sessions_on_exit) {
    std::vector<SessionName> names;
    for (const auto& [n, s] : sessions_) names.push_back(n);
    for (const auto& n : names) close_session(n, true, 0);
    for (const auto& [port, l] : leases_) (void)maps_->delete_lease(port);
    leases_.clear();
  } else if (!sessions_.empty() || !leases_.empty()) {
    log_info("leaving " + std::to_string(sessions_.size()) + " sessions and " +
             std::to_string(leases_.size()) +
             " leases in the maps: a restarted smtd lets their holders re-adopt them");
  }
  for (auto& [fd, ch] : channels_) ch->close("smtd shutting down");
  channels_.clear();
  ::unlink(opts_.socket_path.c_str());
  log_info("stopped");
}

// ---- peer channels ------------------------------------------------------------

void Daemon::on_accept() {
  for (;;) {
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = ::accept4(listen_fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    UniqueFd owned(fd);
    auto from = from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    if (!from) continue;
    std::vector<std::string> ids;
    for (const auto& p : cfg_.peers)
      ids.insert(ids.end(), p.identities.begin(), p.identities.end());
    auto ch = PeerChannel::accept(tls_.server.get(), std::move(owned), *from, std::move(ids),
                                  cfg_.mutual_tls, arena_.get());
    if (!ch) {
      log_error("accepting " + format_endpoint(*from) + ": " + ch.error().message);
      continue;
    }
    log_debug("accepted control connection from " + format_endpoint(*from));
    int cfd = (*ch)->fd();
    channels_[cfd] = std::move(*ch);
    watch(cfd, EPOLLIN);
  }
}

void Daemon::on_channel(PeerChannel* ch) {
  for (auto& ev : ch->on_ready()) {
    if (!ch->established()) break;
    switch (ev.kind) {
      case PeerChannel::Event::Kind::kEstablished:
        on_channel_established(ch);
        break;
      case PeerChannel::Event::Kind::kMessage:
        on_setup_message(ch, ev.message);
        break;
      case PeerChannel::Event::Kind::kBadMessage:
        log_error("malformed set-up message from " + ch->peer_name() + " (" + ch->identity() +
                  "): " + ev.bad.message + "; answered REFUSED " +
                  refuse_reason_name(ev.bad.reason));
        ch->send(RefusedMsg{ev.bad.serial, ev.bad.reason});
        break;
      case PeerChannel::Event::Kind::kFatal:
        ch->close(ev.bad.message);  // flushes the answers queued before it
        break;
      case PeerChannel::Event::Kind::kClosed:
        ch->close(ch->close_reason());  // reaped by run()
        break;
    }
  }
}

void Daemon::on_channel_established(PeerChannel* ch) {
  if (ch->role() == PeerChannel::Role::kServer) {
    const PeerConfig* peer = nullptr;
    for (const auto& p : cfg_.peers) {
      if (std::find(p.identities.begin(), p.identities.end(), ch->identity()) !=
          p.identities.end()) {
        peer = &p;
        break;
      }
    }
    if (peer == nullptr) {
      ch->close("identity " + ch->identity() + " belongs to no [peer]");
      return;
    }
    ch->set_peer_name(peer->name);
  }
  // TLS 1.3: a client learns that the server refused its certificate only
  // after its own handshake finished, often in the same read. Such a channel
  // carries nothing; its close fails the opens waiting for it, with the alert.
  if (ch->closing()) return;
  const SuiteInfo* info = suite_info(ch->suite());
  log_info("control channel " +
           std::string(ch->role() == PeerChannel::Role::kClient ? "to" : "from") + " peer " +
           ch->peer_name() + " at " + format_endpoint(ch->remote()) + " established (" +
           ch->identity() + ", " + (info != nullptr ? info->name : "?") + ", " +
           (ch->resumed() ? "resumed" : "full handshake") + ")");
  last_contact_[ch->identity()] = Clock::now();
  if (auto it = pending_to_peer_.find(ch->peer_name()); it != pending_to_peer_.end()) {
    for (const auto& m : it->second) ch->send(m);
    pending_to_peer_.erase(it);
  }
  for (auto& [n, s] : sessions_) {
    if (s.state == SessionState::kOpening && s.channel == 0 && s.peer_name == ch->peer_name()) {
      send_open(ch, &s);
    }
  }
}

void Daemon::on_channel_closed(PeerChannel* ch) {
  const std::string& why = ch->close_reason();
  if (ch->established_at() != Clock::time_point{}) {
    log_info("control channel with peer " + ch->peer_name() + " closed: " + why +
             " (root erased; sessions kept)");
  } else {
    log_error(why);
  }
  bool other = false;
  for (const auto& [fd, c] : channels_) {
    if (c.get() != ch && c->state() != PeerChannel::State::kClosed &&
        c->peer_name() == ch->peer_name()) {
      other = true;
    }
  }
  std::vector<SessionName> failed;
  for (auto& [n, s] : sessions_) {
    if (s.state != SessionState::kOpening) continue;
    if (s.channel == ch->id() || (s.channel == 0 && !other && s.peer_name == ch->peer_name() &&
                                  ch->role() == PeerChannel::Role::kClient)) {
      failed.push_back(n);
    }
  }
  for (const auto& n : failed) {
    Session* s = find_session(n);
    if (s == nullptr) continue;
    int err = s->channel == 0 ? ECONNREFUSED : ECONNRESET;
    fail_open(s, err,
              s->channel == 0 ? "no control channel to peer " + s->peer_name + ": " + why
                              : "control channel closed before READY: " + why,
              0, ch->alert(), ch->alert_sent());
  }
}

PeerChannel* Daemon::established_channel(const std::string& peer_name) {
  PeerChannel* best = nullptr;
  for (auto& [fd, ch] : channels_) {
    if (ch->established() && ch->peer_name() == peer_name &&
        (best == nullptr || ch->established_at() > best->established_at())) {
      best = ch.get();
    }
  }
  return best;
}

PeerChannel* Daemon::any_channel(const std::string& peer_name) {
  for (auto& [fd, ch] : channels_) {
    if (ch->state() != PeerChannel::State::kClosed && ch->peer_name() == peer_name) {
      return ch.get();
    }
  }
  return nullptr;
}

PeerChannel* Daemon::dial(const PeerConfig& peer) {
  if (!peer.control) return nullptr;
  last_dial_[peer.name] = Clock::now();
  SSL_SESSION* resume = nullptr;
  if (auto it = tickets_.find(peer.name); it != tickets_.end()) resume = it->second.get();
  auto ch = PeerChannel::connect(tls_.client.get(), *peer.control, peer.name, peer.identities,
                                 resume, arena_.get());
  if (!ch) {
    log_error("dialling peer " + peer.name + ": " + ch.error().message);
    return nullptr;
  }
  std::string name = peer.name;
  (*ch)->set_ticket_sink([this, name](SslSessionPtr s) { tickets_[name] = std::move(s); });
  PeerChannel* raw = ch->get();
  channels_[raw->fd()] = std::move(*ch);
  watch(raw->fd(), raw->wanted_events());
  log_debug("dialling peer " + peer.name + " at " + format_endpoint(*peer.control));
  return raw;
}

uint64_t Daemon::next_serial(PeerChannel::Role role) {
  // Serials rise with the clock (microseconds), so a restarted smtd does not
  // reuse one its predecessor gave out; parity follows CONTRACT §6.
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t now_us =
      static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  uint64_t s = std::max(last_serial_ + 1, now_us);
  uint64_t parity = role == PeerChannel::Role::kClient ? 0 : 1;
  if ((s & 1) != parity) ++s;
  last_serial_ = s;
  return s;
}

void Daemon::send_to_peer(const std::string& peer_name, const SetupMessage& m) {
  if (PeerChannel* ch = established_channel(peer_name)) {
    ch->send(m);
    return;
  }
  pending_to_peer_[peer_name].push_back(m);
  if (any_channel(peer_name) == nullptr) {
    for (const auto& p : cfg_.peers) {
      if (p.name == peer_name) dial(p);
    }
  }
}

// ---- sessions and leases -------------------------------------------------------------

Daemon::Session* Daemon::find_session(const SessionName& n) {
  auto it = sessions_.find(n);
  return it == sessions_.end() ? nullptr : &it->second;
}

Daemon::Session* Daemon::find_by_serial(const std::string& identity, uint64_t serial) {
  auto it = by_serial_.find({identity, serial});
  return it == by_serial_.end() ? nullptr : find_session(it->second);
}

Status Daemon::install_session(Session& s, const SessionSecrets& secrets) {
  if (s.slot == SMTD_APP_SLOT_NONE) s.slot = take_slot(s.owner);
  smt_session_key k = map_key(cfg_.address, s.name);
  smt_session_value v;
  std::memset(&v, 0, sizeof v);
  v.serial = s.serial;
  const SecretBytes& tx = s.initiator ? secrets.initiator_ctl : secrets.responder_ctl;
  const SecretBytes& rx = s.initiator ? secrets.responder_ctl : secrets.initiator_ctl;
  std::memcpy(v.tx_ctl_key, tx.data(), 16);
  std::memcpy(v.rx_ctl_key, rx.data(), 16);
  v.owner_id = s.owner;
  v.owner_queue = s.rx_queue;
  v.session_slot = s.slot;
  v.version = SMT_VERSION;
  v.initiator = s.initiator ? 1 : 0;
  v.flags = 0;
  // An owner on AF_XDP receives there: XDP redirects the session's packets
  // to its socket, and only from its queue (CONTRACT §7).
  if (const App* app = find_app(s.owner); app != nullptr && app->xsk) {
    v.flags |= SMT_SESSION_F_AF_XDP;
    v.owner_queue = app->xsk_queue;
  }
  smtd_holder_record h;
  std::memset(&h, 0, sizeof h);
  std::memcpy(h.token_digest, s.token_digest.data(), 32);
  h.serial = s.serial;
  h.not_after = s.not_after;
  h.owner_uid = s.owner_uid;
  h.owner_pid = s.owner_pid;
  h.peer_rx_queue = s.peer_rx_queue;
  h.suite = static_cast<uint16_t>(s.suite);
  h.initiator = s.initiator ? 1 : 0;
  h.protocol = s.protocol;
  std::snprintf(h.peer_identity, sizeof h.peer_identity, "%s", s.peer_identity.c_str());
  Status st = maps_->put_holder(k, h);
  if (st) st = maps_->put_session(k, v);
  OPENSSL_cleanse(&v, sizeof v);
  return st;
}

void Daemon::close_session(const SessionName& n, bool tell_peer, uint32_t app_reason) {
  Session* s = find_session(n);
  if (s == nullptr) return;
  smt_session_key k = map_key(cfg_.address, n);
  if (Status st = maps_->delete_session(k); !st) log_error(st.error().message);
  if (Status st = maps_->delete_holder(k); !st) log_error(st.error().message);
  maps_->delete_mac_failures(k);
  if (tell_peer && s->serial != 0 && !s->peer_name.empty()) {
    send_to_peer(s->peer_name, CloseMsg{s->serial});
  }
  if (app_reason != 0 && s->state != SessionState::kOpening && find_app(s->owner) != nullptr) {
    smtd_app_close c;
    std::memset(&c, 0, sizeof c);
    c.hdr.version = SMTD_APP_VERSION;
    c.hdr.type = SMTD_APP_PEER_CLOSED;
    c.hdr.length = sizeof c;
    std::memcpy(c.peer_addr, n.peer_addr.data(), 16);
    c.peer_port = n.peer_port;
    c.local_port = n.local_port;
    c.reason = app_reason;
    c.serial = s->serial;
    notify_app(s->owner, &c, sizeof c);
  }
  static const char* const kWhy[] = {"",     "closed by the peer", "idle", "certificate lifetime",
                                     "",     "2^32 tag failures"};
  log_info("session serial " + std::to_string(s->serial) + " " + describe(n) + " closed" +
           (app_reason > 0 && app_reason < std::size(kWhy) && kWhy[app_reason][0] != '\0' ? std::string(" (") + kWhy[app_reason] + ")" : ""));
  if (s->serial != 0) by_serial_.erase({s->peer_identity, s->serial});
  release_slot(s->owner, s->slot);
  sessions_.erase(n);  // wipes the reply slot, if any
}

void Daemon::fail_open(Session* s, int err, const std::string& msg, uint16_t refused, int alert,
                       bool alert_sent) {
  if (find_app(s->owner) != nullptr) {
    send_app_error(s->owner, s->request_id, err, msg, refused, alert, alert_sent);
  }
  close_session(s->name, s->serial != 0, 0);
}

Status Daemon::grant_lease(App* app, uint16_t port, bool ephemeral) {
  if (ephemeral) {
    uint32_t span = static_cast<uint32_t>(cfg_.ephemeral_last) - cfg_.ephemeral_first + 1;
    if (next_ephemeral_ < cfg_.ephemeral_first || next_ephemeral_ > cfg_.ephemeral_last) {
      next_ephemeral_ = cfg_.ephemeral_first;
    }
    port = 0;
    for (uint32_t i = 0; i < span; ++i) {
      uint16_t p = static_cast<uint16_t>(cfg_.ephemeral_first +
                                         (next_ephemeral_ - cfg_.ephemeral_first + i) % span);
      if (leases_.count(p) == 0) {
        port = p;
        break;
      }
    }
    if (port == 0) return make_error(EADDRNOTAVAIL, "every ephemeral port is leased");
    next_ephemeral_ = static_cast<uint16_t>(port + 1);
  } else if (auto it = leases_.find(port); it != leases_.end()) {
    Lease& l = it->second;
    if (l.owner == app->id) return {};
    if (!(l.owner == 0 && l.uid == app->uid)) {
      return make_error(EADDRINUSE, "port " + std::to_string(port) + " is already leased (uid " +
                                        std::to_string(l.uid) + ", pid " + std::to_string(l.pid) +
                                        ")");
    }
  }
  smt_port_lease_value v{app->uid, app->pid, app->id, ephemeral ? SMT_LEASE_F_EPHEMERAL : 0u};
  if (Status st = maps_->put_lease(port, v); !st) return st;
  leases_[port] = Lease{app->id, app->uid, app->pid, ephemeral, {}};
  last_granted_port_ = port;
  return {};
}

void Daemon::drop_lease(uint16_t port) {
  if (Status st = maps_->delete_lease(port); !st) log_error(st.error().message);
  leases_.erase(port);
}

void Daemon::adopt_previous_state() {
  auto now = Clock::now();
  auto grace = std::chrono::seconds(cfg_.adopt_grace_s);
  uint32_t max_owner = 0;
  size_t adopted = 0, stale = 0;
  maps_->for_each_holder([&](const smt_session_key& k, const smtd_holder_record& h) {
    auto v = maps_->get_session(k);
    if (!v) {
      (void)maps_->delete_holder(k);
      ++stale;
      return;
    }
    Session s;
    std::memcpy(s.name.peer_addr.data(), k.remote_addr, 16);
    s.name.local_port = ntohs(k.local_port);
    s.name.peer_port = ntohs(k.remote_port);
    s.state = SessionState::kOrphan;
    s.serial = h.serial;
    s.initiator = h.initiator != 0;
    s.suite = static_cast<Suite>(h.suite);
    s.protocol = h.protocol;
    s.peer_identity = h.peer_identity;
    const PeerConfig* p = cfg_.peer_by_address(s.name.peer_addr);
    s.peer_name = p != nullptr ? p->name : "";
    s.owner_uid = h.owner_uid;
    s.owner_pid = h.owner_pid;
    s.peer_rx_queue = h.peer_rx_queue;
    s.rx_queue = v->owner_queue;
    std::memcpy(s.token_digest.data(), h.token_digest, 32);
    s.not_after = h.not_after;
    s.deadline = now + grace;
    s.opened_at = now;
    max_owner = std::max(max_owner, v->owner_id);
    by_serial_[{s.peer_identity, s.serial}] = s.name;
    sessions_.emplace(s.name, std::move(s));
    ++adopted;
  });
  maps_->for_each_session([&](const smt_session_key& k) {
    SessionName n;
    std::memcpy(n.peer_addr.data(), k.remote_addr, 16);
    n.local_port = ntohs(k.local_port);
    n.peer_port = ntohs(k.remote_port);
    if (sessions_.count(n) == 0) {
      (void)maps_->delete_session(k);
      ++stale;
    }
  });
  maps_->for_each_lease([&](uint16_t port, const smt_port_lease_value& v) {
    leases_[port] =
        Lease{0, v.owner_uid, v.owner_pid, (v.flags & SMT_LEASE_F_EPHEMERAL) != 0, now + grace};
    max_owner = std::max(max_owner, v.owner_id);
  });
  // New applications must not get an owner id that orphaned entries still carry.
  next_app_id_ = max_owner + 1;
  // The previous smtd's owners are gone; their holders get new tables when
  // they re-adopt. Until then XDP finds no table and filters nothing early.
  stale += maps_->clear_owner_tables();
  if (adopted != 0 || !leases_.empty() || stale != 0) {
    log_info("picked up " + std::to_string(adopted) + " sessions and " +
             std::to_string(leases_.size()) + " leases from a previous smtd (holders have " +
             std::to_string(cfg_.adopt_grace_s) + " s to re-adopt them); removed " +
             std::to_string(stale) + " stale entries");
  }
}

// ---- the tick ------------------------------------------------------------------------

void Daemon::on_tick() {
  auto now = Clock::now();
  time_t wall = std::time(nullptr);
  std::vector<std::string> redial;
  for (auto& [fd, ch] : channels_) {
    if (ch->state() == PeerChannel::State::kClosed) continue;
    if (!ch->established()) {
      if (now - ch->created_at() > std::chrono::seconds(cfg_.handshake_timeout_s)) {
        ch->close("TLS handshake with " + format_endpoint(ch->remote()) + " timed out after " +
                  std::to_string(cfg_.handshake_timeout_s) + " s");
      }
      continue;
    }
    last_contact_[ch->identity()] = now;
    auto age = now - ch->established_at();
    auto limit = std::chrono::seconds(cfg_.reconnect_interval_s);
    if ((ch->role() == PeerChannel::Role::kClient && age >= limit) ||
        age >= limit + kServerReconnectSlack) {
      ch->close("re-establishing after reconnect_interval (" +
                std::to_string(cfg_.reconnect_interval_s) + " s)");
      if (ch->role() == PeerChannel::Role::kClient) redial.push_back(ch->peer_name());
    }
  }
  // The client that retired a channel dials again at once (resuming with its
  // ticket); the loop at the end covers the other cases after kRedialGap.
  for (const auto& name : redial) {
    for (const auto& p : cfg_.peers) {
      if (p.name == name) dial(p);
    }
  }

  std::vector<std::pair<SessionName, int>> expired;  // 0 open timeout, else a close reason
  // CONTRACT §5: a session whose tags failed 2^32 times is closed.
  const std::vector<UniqueFd> mac_maps = maps_->open_mac_fail_maps();
  for (auto& [n, s] : sessions_) {
    if (s.state == SessionState::kOpening) {
      if (now >= s.deadline) expired.push_back({n, 0});
      continue;
    }
    if (s.state == SessionState::kOrphan && now >= s.deadline) {
      expired.push_back({n, -1});
      continue;
    }
    if (s.not_after != 0 && wall >= s.not_after) {
      expired.push_back({n, SMTD_CLOSE_LIFETIME});
      continue;
    }
    if (!mac_maps.empty() &&
        MapStore::mac_failures(mac_maps, map_key(cfg_.address, n)) >= kMacFailureLimit) {
      expired.push_back({n, SMTD_CLOSE_MAC_FAILURES});
      continue;
    }
    auto lc = last_contact_.find(s.peer_identity);
    auto last = lc != last_contact_.end() ? std::max(lc->second, start_time_) : start_time_;
    if (now - last > std::chrono::seconds(cfg_.idle_timeout_s)) {
      expired.push_back({n, SMTD_CLOSE_IDLE});
    }
  }
  for (const auto& [n, why] : expired) {
    Session* s = find_session(n);
    if (s == nullptr) continue;
    if (why == 0) {
      fail_open(s, ETIMEDOUT,
                "no READY from peer " + s->peer_name + " within open_timeout (" +
                    std::to_string(cfg_.open_timeout_s) + " s)");
    } else if (why < 0) {
      log_info("session serial " + std::to_string(s->serial) + " " + describe(n) +
               " was not re-adopted within adopt_grace");
      close_session(n, true, 0);
    } else {
      close_session(n, true, static_cast<uint32_t>(why));
    }
  }

  std::vector<uint16_t> stale_leases;
  for (const auto& [port, l] : leases_) {
    if (l.owner != 0 || now < l.orphan_deadline) continue;
    bool used = false;
    for (const auto& [n, s] : sessions_) used = used || n.local_port == port;
    if (!used) stale_leases.push_back(port);
  }
  for (uint16_t p : stale_leases) drop_lease(p);
  sweep_raw_owners();

  // Keep a control channel to every peer we share sessions with, so that
  // CLOSE can travel and the sessions do not go idle.
  std::set<std::string> wanted;
  for (const auto& [n, s] : sessions_) {
    if (s.state != SessionState::kOpening && !s.peer_name.empty()) wanted.insert(s.peer_name);
  }
  for (const auto& [name, msgs] : pending_to_peer_) wanted.insert(name);
  for (const auto& p : cfg_.peers) {
    if (wanted.count(p.name) == 0 || !p.control || any_channel(p.name) != nullptr) continue;
    auto ld = last_dial_.find(p.name);
    if (ld != last_dial_.end() && now - ld->second < kRedialGap) continue;
    // Give the peer's own redial a head start, so both do not dial at once.
    bool recent = false;
    for (const auto& id : p.identities) {
      auto lc = last_contact_.find(id);
      recent = recent || (lc != last_contact_.end() && now - lc->second < kRedialGap);
    }
    if (!recent) dial(p);
  }
}

}  // namespace smt::smtd
