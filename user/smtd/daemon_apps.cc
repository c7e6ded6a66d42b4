// The unix-socket side of smtd: local applications lease ports, open, close
// and re-adopt sessions (user/smtd/app_protocol.h; docs/smtd.md).
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "smt/wire.h"
#include "smtd/daemon.h"
#include "smtd/daemon_util.h"
#include "smtd/smtd_log.h"
#include "wire/drop_reason.h"

namespace smt::smtd {
namespace {

constexpr size_t kListChunk = 8192;

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

smtd_app_hdr reply_hdr(uint16_t type, uint32_t length, uint32_t request_id) {
  smtd_app_hdr h{};
  h.version = SMTD_APP_VERSION;
  h.type = type;
  h.length = length;
  h.request_id = request_id;
  return h;
}

}  // namespace

Daemon::App* Daemon::find_app(uint32_t id) {
  if (id == 0 || apps_to_drop_.count(id) != 0) return nullptr;
  auto it = apps_.find(id);
  return it == apps_.end() ? nullptr : &it->second;
}

void Daemon::on_app_accept() {
  for (;;) {
    int fd = ::accept4(unix_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    UniqueFd owned(fd);
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      log_error("SO_PEERCRED failed on a new application connection: " +
                std::string(std::strerror(errno)));
      continue;
    }
    App app;
    app.id = next_app_id_++;
    if (next_app_id_ == 0) next_app_id_ = 1;
    app.fd = std::move(owned);
    app.uid = cred.uid;
    app.pid = static_cast<uint32_t>(cred.pid);
    log_debug("application connected: uid " + std::to_string(app.uid) + " pid " +
              std::to_string(app.pid) + " (owner id " + std::to_string(app.id) + ")");
    app_by_fd_[fd] = app.id;
    watch(fd, EPOLLIN);
    apps_.emplace(app.id, std::move(app));
  }
}

void Daemon::on_app(App* app) {
  uint32_t id = app->id;
  for (int i = 0; i < 64; ++i) {
    App* a = find_app(id);
    if (a == nullptr) return;
    alignas(8) uint8_t buf[SMTD_APP_MAX_MSG];
    // recvmsg so that fds an application passes (DATAPATH) are ours to check
    // and close, never silently kept.
    struct iovec iov{buf, sizeof buf};
    struct msghdr mh;
    std::memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(SMTD_DATAPATH_MAX_FDS * sizeof(int))];
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(a->fd.get(), &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
    std::vector<UniqueFd> fds;
    for (struct cmsghdr* c = n >= 0 ? CMSG_FIRSTHDR(&mh) : nullptr; c != nullptr;
         c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t k = 0; k < count; ++k) {
        int got;
        std::memcpy(&got, CMSG_DATA(c) + k * sizeof(int), sizeof got);
        fds.emplace_back(got);
      }
    }
    if (n >= 0 && (mh.msg_flags & MSG_CTRUNC) != 0) {
      send_app_error(id, 0, EMSGSIZE, "more than 4 fds attached to one message");
      continue;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      apps_to_drop_[id] = std::string("receive failed: ") + std::strerror(errno);
      return;
    }
    if (n == 0) {
      apps_to_drop_[id] = "the application closed its connection";
      return;
    }
    if (static_cast<size_t>(n) > sizeof buf) {
      send_app_error(id, 0, EMSGSIZE,
                     "message of " + std::to_string(n) + " bytes exceeds SMTD_APP_MAX_MSG");
      continue;
    }
    handle_app_message(a, buf, static_cast<size_t>(n), &fds);
  }
}

void Daemon::drop_app(uint32_t app_id, const std::string& why) {
  auto it = apps_.find(app_id);
  if (it == apps_.end()) return;
  App& app = it->second;
  // CONTRACT §2: when the holder goes away its sessions are closed on both hosts.
  std::vector<SessionName> owned;
  for (const auto& [n, s] : sessions_) {
    if (s.owner == app_id) owned.push_back(n);
  }
  for (const auto& n : owned) close_session(n, true, 0);
  std::vector<uint16_t> ports;
  for (const auto& [port, l] : leases_) {
    if (l.owner == app_id) ports.push_back(port);
  }
  for (uint16_t p : ports) drop_lease(p);
  log_line(owned.empty() && ports.empty() ? LogLevel::kDebug : LogLevel::kInfo,
           "application uid " + std::to_string(app.uid) + " pid " + std::to_string(app.pid) +
               " gone (" + why + "): closed " + std::to_string(owned.size()) +
               " sessions, released " + std::to_string(ports.size()) + " ports");
  if (app.table) {
    if (Status st = maps_->delete_owner_table(app_id); !st) log_error(st.error().message);
  }
  release_datapath(app);
  unwatch(app.fd.get());
  app_by_fd_.erase(app.fd.get());
  apps_.erase(it);
}

bool Daemon::send_app(uint32_t app_id, const void* msg, size_t len, int fd) {
  App* app = find_app(app_id);
  if (app == nullptr) return false;
  struct iovec iov{const_cast<void*>(msg), len};
  struct msghdr mh;
  std::memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    std::memset(control, 0, sizeof control);
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  ssize_t n = ::sendmsg(app->fd.get(), &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n == static_cast<ssize_t>(len)) return true;
  apps_to_drop_[app_id] = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
                              ? "it does not read its socket"
                              : std::string("send failed: ") + std::strerror(errno);
  return false;
}

bool Daemon::notify_app(uint32_t app_id, const void* msg, size_t len) {
  if (!send_app(app_id, msg, len)) return false;
  // After the send: a holder that sees the new count finds the message.
  if (App* app = find_app(app_id); app != nullptr && app->notify) app->notify->bump();
  return true;
}

void Daemon::send_app_error(uint32_t app_id, uint32_t request_id, int err, const std::string& msg,
                            uint16_t refused, int alert, bool alert_sent) {
  smtd_app_error e;
  std::memset(&e, 0, sizeof e);
  e.hdr = reply_hdr(SMTD_APP_ERROR, sizeof e, request_id);
  e.err = err;
  e.refused_reason = refused;
  if (alert >= 0) {
    e.tls_alert = static_cast<uint8_t>(alert);
    e.alert_flags = SMTD_ALERT_F_VALID | (alert_sent ? SMTD_ALERT_F_SENT : 0);
  }
  std::snprintf(e.message, sizeof e.message, "%s", msg.c_str());
  send_app(app_id, &e, sizeof e);
}

void Daemon::handle_app_message(App* app, const uint8_t* msg, size_t len,
                                std::vector<UniqueFd>* fds) {
  smtd_app_hdr h;
  if (len < sizeof h) {
    log_warning("malformed request from uid " + std::to_string(app->uid) + ": " +
                std::to_string(len) + " bytes");
    send_app_error(app->id, 0, EBADMSG,
                   "message of " + std::to_string(len) + " bytes is shorter than the header");
    return;
  }
  std::memcpy(&h, msg, sizeof h);
  auto bad = [&](int err, const std::string& why) {
    log_warning("malformed request from uid " + std::to_string(app->uid) + " pid " +
                std::to_string(app->pid) + ": " + why);
    send_app_error(app->id, h.request_id, err, why);
  };
  if (h.version != SMTD_APP_VERSION) {
    return bad(EPROTONOSUPPORT, "protocol version " + std::to_string(h.version) + " (smtd speaks " +
                                    std::to_string(SMTD_APP_VERSION) + ")");
  }
  if (h.length != len) {
    return bad(EBADMSG, "length field " + std::to_string(h.length) + " but the message has " +
                            std::to_string(len) + " bytes");
  }
  if (h.reserved != 0) return bad(EBADMSG, "reserved header field is not zero");
  auto exact = [&](size_t want, const char* what) {
    if (len == want) return true;
    bad(EBADMSG, std::string(what) + " must be " + std::to_string(want) + " bytes, got " +
                     std::to_string(len));
    return false;
  };
  switch (h.type) {
    case SMTD_APP_LEASE:
    case SMTD_APP_RELEASE: {
      if (!exact(sizeof(smtd_app_lease), "LEASE/RELEASE")) return;
      smtd_app_lease r;
      std::memcpy(&r, msg, sizeof r);
      return h.type == SMTD_APP_LEASE ? app_lease(app, r) : app_release(app, r);
    }
    case SMTD_APP_OPEN: {
      if (!exact(sizeof(smtd_app_open), "OPEN")) return;
      smtd_app_open r;
      std::memcpy(&r, msg, sizeof r);
      return app_open(app, r);
    }
    case SMTD_APP_CLOSE: {
      if (!exact(sizeof(smtd_app_close), "CLOSE")) return;
      smtd_app_close r;
      std::memcpy(&r, msg, sizeof r);
      return app_close(app, r);
    }
    case SMTD_APP_ADOPT: {
      if (!exact(sizeof(smtd_app_adopt), "ADOPT")) return;
      smtd_app_adopt r;
      std::memcpy(&r, msg, sizeof r);
      return app_adopt(app, r);
    }
    case SMTD_APP_LIST: {
      if (!exact(sizeof(smtd_app_list), "LIST")) return;
      smtd_app_list r;
      std::memcpy(&r, msg, sizeof r);
      return app_list(app, r);
    }
    case SMTD_APP_TABLE:
      if (!exact(sizeof(smtd_app_hdr), "TABLE")) return;
      return app_table(app, h);
    case SMTD_APP_STATS:
      return app_stats(app, msg, len);
    case SMTD_APP_GET_STATS:
      if (!exact(sizeof(smtd_app_hdr), "GET_STATS")) return;
      return app_get_stats(app, h);
    case SMTD_APP_DATAPATH: {
      if (!exact(sizeof(smtd_app_datapath_req), "DATAPATH")) return;
      smtd_app_datapath_req r;
      std::memcpy(&r, msg, sizeof r);
      return app_datapath(app, r, fds != nullptr ? std::move(*fds) : std::vector<UniqueFd>{});
    }
    default:
      return bad(EOPNOTSUPP, "unknown request type " + std::to_string(h.type));
  }
}

void Daemon::app_table(App* app, const smtd_app_hdr& req) {
  if (!app->notify) {
    auto page = NotifyPage::create();
    if (!page) {
      return send_app_error(app->id, req.request_id, page.error().code, page.error().message);
    }
    app->notify.emplace(std::move(*page));
  }
  if (!app->table) {
    auto t = maps_->create_owner_table(app->id);
    if (!t) return send_app_error(app->id, req.request_id, t.error().code, t.error().message);
    app->table = std::move(*t);
    app->slot_used.assign(SMT_OWNER_TABLE_SESSIONS, false);
  }
  smtd_app_table r;
  std::memset(&r, 0, sizeof r);
  r.hdr = reply_hdr(SMTD_APP_TABLE_GRANTED, sizeof r, req.request_id);
  r.owner_id = app->id;
  r.entries = SMT_OWNER_TABLE_SESSIONS;
  r.entry_size = sizeof(smt_owner_table_entry);
  send_app_fds(app->id, &r, sizeof r, {app->table.get(), app->notify->fd()});
}

void Daemon::app_stats(App* app, const uint8_t* msg, size_t len) {
  smtd_app_stats h;
  if (len < sizeof h) return send_app_error(app->id, 0, EBADMSG, "STATS shorter than its header");
  std::memcpy(&h, msg, sizeof h);
  auto bad = [&](const std::string& why) {
    log_warning("malformed STATS from uid " + std::to_string(app->uid) + ": " + why);
    send_app_error(app->id, h.hdr.request_id, EBADMSG, "STATS: " + why);
  };
  if (h.count > SMTD_APP_STATS_MAX_ENTRIES) return bad("more than 48 entries");
  if (h.flags != 0) return bad("flags must be 0");
  if (len != sizeof h + h.count * sizeof(smtd_app_session_stats)) {
    return bad("length does not match " + std::to_string(h.count) + " entries");
  }
  const auto now = Clock::now();
  std::vector<std::pair<SessionName, uint64_t>> spent;
  for (uint32_t i = 0; i < h.count; ++i) {
    smtd_app_session_stats e;
    std::memcpy(&e, msg + sizeof h + i * sizeof e, sizeof e);
    if (e.reserved != 0) return bad("reserved field of entry " + std::to_string(i) + " set");
    SessionName n;
    n.local_port = e.local_port;
    std::memcpy(n.peer_addr.data(), e.peer_addr, 16);
    n.peer_port = e.peer_port;
    Session* s = find_session(n);
    // Only the holder reports, and only on its live session; a report that
    // crossed a close is dropped quietly.
    if (s == nullptr || s->owner != app->id || s->state != SessionState::kLive ||
        s->serial != e.serial) {
      continue;
    }
    s->engine_stats = e;
    s->stats_at = now;
    if (e.flags & (SMTD_STATS_F_NEEDS_NEW_SESSION | SMTD_STATS_F_EPOCHS_EXHAUSTED)) {
      spent.push_back({n, e.flags});
    }
  }
  for (const auto& [n, flags] : spent) {
    log_info("session " + describe(n) + ": the holder reports its keys spent (" +
             ((flags & SMTD_STATS_F_NEEDS_NEW_SESSION) ? "2^20 failed opens" : "epochs used up") +
             "); replacing it");
    close_session(n, true, SMTD_CLOSE_KEYS_SPENT);
  }
}

void Daemon::app_get_stats(App* app, const smtd_app_hdr& req) {
  std::vector<smtd_app_session_stats> all;
  for (const auto& [n, s] : sessions_) {
    if (!s.engine_stats || (app->uid != 0 && s.owner_uid != app->uid)) continue;
    all.push_back(*s.engine_stats);
  }
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(SMTD_APP_STATS_MAX_ENTRIES, all.size() - pos);
    std::vector<uint8_t> buf(sizeof(smtd_app_stats) + n * sizeof(smtd_app_session_stats));
    smtd_app_stats c;
    std::memset(&c, 0, sizeof c);
    c.hdr = reply_hdr(SMTD_APP_STATS_CHUNK, static_cast<uint32_t>(buf.size()), req.request_id);
    c.count = static_cast<uint32_t>(n);
    c.flags = pos + n >= all.size() ? SMTD_LIST_F_LAST : 0;
    std::memcpy(buf.data(), &c, sizeof c);
    if (n != 0) std::memcpy(buf.data() + sizeof c, &all[pos], n * sizeof(smtd_app_session_stats));
    if (!send_app(app->id, buf.data(), buf.size())) return;
    pos += n;
  } while (pos < all.size());
}

uint32_t Daemon::take_slot(uint32_t owner) {
  App* app = find_app(owner);
  if (app == nullptr || !app->table) return SMTD_APP_SLOT_NONE;
  for (uint32_t i = 0; i < app->slot_used.size(); ++i) {
    if (app->slot_used[i]) continue;
    // A previous session's base or armed slots must not apply to this one.
    if (Status st = MapStore::clear_owner_entry(app->table.get(), i); !st) {
      log_error(st.error().message);
      return SMTD_APP_SLOT_NONE;
    }
    app->slot_used[i] = true;
    return i;
  }
  log_debug("owner table of application " + std::to_string(owner) +
            " is full: a new session gets no early XDP filtering");
  return SMTD_APP_SLOT_NONE;
}

void Daemon::release_slot(uint32_t owner, uint32_t slot) {
  App* app = find_app(owner);
  if (app != nullptr && slot < app->slot_used.size()) app->slot_used[slot] = false;
}

void Daemon::app_lease(App* app, const smtd_app_lease& req) {
  uint32_t rid = req.hdr.request_id;
  bool ephemeral = (req.flags & SMTD_LEASE_F_EPHEMERAL) != 0;
  if ((req.flags & ~SMTD_LEASE_F_EPHEMERAL) != 0 || req.reserved != 0 ||
      ephemeral != (req.port == 0)) {
    log_warning("malformed LEASE from uid " + std::to_string(app->uid));
    return send_app_error(app->id, rid, EBADMSG,
                          "LEASE: unknown flags, reserved bytes set, or port and "
                          "SMTD_LEASE_F_EPHEMERAL disagree (port 0 iff ephemeral)");
  }
  if (!may_lease(cfg_, app->uid, req.port)) {
    std::string what = ephemeral ? "an ephemeral port" : "port " + std::to_string(req.port);
    log_warning("uid " + std::to_string(app->uid) + " pid " + std::to_string(app->pid) +
                " may not lease " + what);
    return send_app_error(app->id, rid, EACCES,
                          "uid " + std::to_string(app->uid) + " may not lease " + what +
                              " (see [uid " + std::to_string(app->uid) + "] in the config)");
  }
  if (Status st = grant_lease(app, req.port, ephemeral); !st) {
    return send_app_error(app->id, rid, st.error().code, st.error().message);
  }
  uint16_t port = ephemeral ? last_granted_port_ : req.port;
  smtd_app_lease r;
  std::memset(&r, 0, sizeof r);
  r.hdr = reply_hdr(SMTD_APP_LEASED, sizeof r, rid);
  r.port = port;
  r.flags = req.flags;
  send_app(app->id, &r, sizeof r);
  log_info("uid " + std::to_string(app->uid) + " pid " + std::to_string(app->pid) + " leased " +
           (ephemeral ? "ephemeral " : "") + "port " + std::to_string(port));
}

void Daemon::app_release(App* app, const smtd_app_lease& req) {
  uint32_t rid = req.hdr.request_id;
  if (req.flags != 0 || req.reserved != 0 || req.port == 0) {
    return send_app_error(app->id, rid, EBADMSG, "RELEASE: port 0, flags or reserved bytes set");
  }
  auto it = leases_.find(req.port);
  if (it == leases_.end() || it->second.owner != app->id) {
    return send_app_error(app->id, rid, ENOENT,
                          "port " + std::to_string(req.port) + " is not leased by this connection");
  }
  size_t busy = 0;
  for (const auto& [n, s] : sessions_) busy += n.local_port == req.port ? 1 : 0;
  if (busy != 0) {
    return send_app_error(app->id, rid, EBUSY,
                          "port " + std::to_string(req.port) + " still has " +
                              std::to_string(busy) + " sessions; close them first");
  }
  drop_lease(req.port);
  smtd_app_lease r;
  std::memset(&r, 0, sizeof r);
  r.hdr = reply_hdr(SMTD_APP_RELEASED, sizeof r, rid);
  r.port = req.port;
  send_app(app->id, &r, sizeof r);
}

void Daemon::app_open(App* app, const smtd_app_open& req) {
  uint32_t rid = req.hdr.request_id;
  if (req.reserved[0] != 0 || req.reserved[1] != 0 || req.peer_port == 0 || req.local_port == 0) {
    log_warning("malformed OPEN from uid " + std::to_string(app->uid));
    return send_app_error(app->id, rid, EBADMSG, "OPEN: port 0 or reserved bytes set");
  }
  auto lease = leases_.find(req.local_port);
  if (lease == leases_.end() || lease->second.owner != app->id) {
    return send_app_error(
        app->id, rid, EACCES,
        "local port " + std::to_string(req.local_port) + " is not leased by this connection");
  }
  Addr16 peer_addr;
  std::memcpy(peer_addr.data(), req.peer_addr, 16);
  const PeerConfig* peer = cfg_.peer_by_address(peer_addr);
  if (peer == nullptr) {
    return send_app_error(app->id, rid, EHOSTUNREACH,
                          "no [peer] in the config has address " + format_addr(peer_addr));
  }
  SessionName name{req.local_port, peer_addr, req.peer_port};
  if (find_session(name) != nullptr) {
    return send_app_error(app->id, rid, EADDRINUSE,
                          "a session from port " + std::to_string(req.local_port) + " to " +
                              format_endpoint({peer_addr, req.peer_port}) + " exists already");
  }
  auto slot = arena_->take();
  if (!slot) return send_app_error(app->id, rid, ENOMEM, slot.error().message);
  Session s;
  s.name = name;
  s.state = SessionState::kOpening;
  s.initiator = true;
  s.peer_name = peer->name;
  s.owner = app->id;
  s.owner_uid = app->uid;
  s.owner_pid = app->pid;
  s.request_id = rid;
  s.rx_queue = app->xsk ? app->xsk_queue : req.rx_queue;
  s.deadline = Clock::now() + std::chrono::seconds(cfg_.open_timeout_s);
  s.reply = std::move(*slot);
  auto* r = reinterpret_cast<smtd_app_session*>(s.reply.data());
  RAND_bytes(r->holder_token, sizeof r->holder_token);
  s.token_digest = token_digest(r->holder_token);
  Session& stored = sessions_.emplace(name, std::move(s)).first->second;
  if (PeerChannel* ch = established_channel(peer->name)) {
    send_open(ch, &stored);
    return;
  }
  if (any_channel(peer->name) != nullptr) return;  // OPEN goes out once it is established
  if (dial(*peer) == nullptr) {
    fail_open(&stored, ECONNREFUSED,
              peer->control ? "cannot reach peer " + peer->name
                            : "peer " + peer->name + " has no 'control' endpoint to dial");
  }
}

void Daemon::app_close(App* app, const smtd_app_close& req) {
  uint32_t rid = req.hdr.request_id;
  if (req.reason != 0 || req.serial != 0) {
    return send_app_error(app->id, rid, EBADMSG, "CLOSE: reason and serial must be 0");
  }
  SessionName name{req.local_port, {}, req.peer_port};
  std::memcpy(name.peer_addr.data(), req.peer_addr, 16);
  Session* s = find_session(name);
  if (s == nullptr || s->owner != app->id) {
    return send_app_error(app->id, rid, ENOENT,
                          "no session " + std::to_string(req.local_port) + " <-> " +
                              format_endpoint({name.peer_addr, name.peer_port}) +
                              " held by this connection");
  }
  uint64_t serial = s->serial;
  if (s->state == SessionState::kOpening) {
    fail_open(s, ECONNABORTED, "closed by the application while opening");
  } else {
    close_session(name, true, 0);
  }
  smtd_app_close r;
  std::memset(&r, 0, sizeof r);
  r.hdr = reply_hdr(SMTD_APP_CLOSED, sizeof r, rid);
  std::memcpy(r.peer_addr, req.peer_addr, 16);
  r.peer_port = req.peer_port;
  r.local_port = req.local_port;
  r.serial = serial;
  send_app(app->id, &r, sizeof r);
}

void Daemon::app_adopt(App* app, const smtd_app_adopt& req) {
  uint32_t rid = req.hdr.request_id;
  std::array<uint8_t, 32> digest = token_digest(req.holder_token);
  Session* s = nullptr;
  for (auto& [n, cand] : sessions_) {
    if (cand.state == SessionState::kOrphan &&
        CRYPTO_memcmp(cand.token_digest.data(), digest.data(), digest.size()) == 0) {
      s = &cand;
      break;
    }
  }
  if (s == nullptr) {
    log_warning("uid " + std::to_string(app->uid) + " pid " + std::to_string(app->pid) +
                " presented an unknown holder token");
    return send_app_error(app->id, rid, ENOENT, "no session awaiting re-adoption has this token");
  }
  if (s->owner_uid != app->uid) {
    return send_app_error(app->id, rid, EACCES, "the session belongs to another uid");
  }
  auto lease = leases_.find(s->name.local_port);
  if (lease != leases_.end() && lease->second.owner != 0 && lease->second.owner != app->id) {
    return send_app_error(
        app->id, rid, EADDRINUSE,
        "port " + std::to_string(s->name.local_port) + " is leased by another connection");
  }
  bool eph = lease != leases_.end() && lease->second.ephemeral;
  smt_port_lease_value lv{app->uid, app->pid, app->id, eph ? SMT_LEASE_F_EPHEMERAL : 0u};
  smt_session_key k = map_key(cfg_.address, s->name);
  auto v = maps_->get_session(k);
  if (!v) return send_app_error(app->id, rid, EIO, v.error().message);
  release_slot(s->owner, s->slot);
  s->slot = take_slot(app->id);
  v->owner_id = app->id;
  v->session_slot = s->slot;
  v->flags = app->xsk ? (v->flags | SMT_SESSION_F_AF_XDP) : (v->flags & ~SMT_SESSION_F_AF_XDP);
  if (app->xsk) v->owner_queue = app->xsk_queue;
  Status st = maps_->put_session(k, *v);
  OPENSSL_cleanse(&*v, sizeof *v);
  if (st) st = maps_->put_lease(s->name.local_port, lv);
  if (!st) return send_app_error(app->id, rid, st.error().code, st.error().message);
  leases_[s->name.local_port] = Lease{app->id, app->uid, app->pid, eph, {}};
  s->owner = app->id;
  s->owner_pid = app->pid;
  s->state = SessionState::kLive;

  smtd_app_session r;
  std::memset(&r, 0, sizeof r);
  r.hdr = reply_hdr(SMTD_APP_ADOPTED, sizeof r, rid);
  r.serial = s->serial;
  r.suite = static_cast<uint16_t>(s->suite);
  r.initiator = s->initiator ? 1 : 0;
  r.smt_version = SMT_VERSION;
  r.protocol = s->protocol;
  const SuiteInfo* info = suite_info(s->suite);
  r.secret_len = info != nullptr ? static_cast<uint8_t>(info->hash_len) : 0;
  r.has_secrets = 0;
  std::memcpy(r.local_addr, cfg_.address.data(), 16);
  std::memcpy(r.peer_addr, s->name.peer_addr.data(), 16);
  r.local_port = s->name.local_port;
  r.peer_port = s->name.peer_port;
  r.peer_rx_queue = s->peer_rx_queue;
  r.session_slot = s->slot;
  std::memcpy(r.holder_token, req.holder_token, sizeof r.holder_token);
  std::snprintf(r.peer_identity, sizeof r.peer_identity, "%s", s->peer_identity.c_str());
  send_app(app->id, &r, sizeof r);
  log_info("uid " + std::to_string(app->uid) + " pid " + std::to_string(app->pid) +
           " re-adopted session serial " + std::to_string(s->serial));
}

namespace {
// CONTRACT §7's per-session counters as the holder last reported them.
template <typename S>
std::string engine_stats_json(const S& s) {
  if (!s.engine_stats) return "";
  const smtd_app_session_stats& e = *s.engine_stats;
  std::string drops;
  for (size_t i = 0; i < static_cast<size_t>(DropReason::kCount) && i < SMTD_APP_STATS_DROPS; ++i) {
    if (e.drops[i] == 0) continue;
    drops += (drops.empty() ? "" : ", ") + json_string(drop_reason_name(static_cast<DropReason>(i))) +
             ": " + std::to_string(e.drops[i]);
  }
  return ", \"engine\": {\"tx_epoch\": " + std::to_string(e.tx_epoch) +
         ", \"rx_epoch\": " + std::to_string(e.rx_epoch) + ", \"sigma\": " +
         std::to_string(e.sigma) + ", \"sigma_limit\": " + std::to_string(e.sigma_limit) +
         ", \"auth_failures\": " + std::to_string(e.auth_failures) +
         ", \"replays\": " + std::to_string(e.replays) + ", \"drops\": {" + drops + "}}";
}
}  // namespace

std::string Daemon::sessions_json(uint32_t uid) const {
  auto now = Clock::now();
  std::string out = "{\"sessions\": [";
  bool first = true;
  for (const auto& [n, s] : sessions_) {
    if (uid != 0 && s.owner_uid != uid) continue;
    const SuiteInfo* info = suite_info(s.suite);
    const char* state = s.state == SessionState::kOpening ? "opening"
                        : s.state == SessionState::kLive  ? "live"
                                                          : "awaiting_adoption";
    out += first ? "\n  " : ",\n  ";
    first = false;
    out += "{\"serial\": " + std::to_string(s.serial) + ", \"state\": \"" + state +
           "\", \"initiator\": " + (s.initiator ? "true" : "false") +
           ", \"local_addr\": " + json_string(format_addr(cfg_.address)) +
           ", \"local_port\": " + std::to_string(n.local_port) +
           ", \"peer_addr\": " + json_string(format_addr(n.peer_addr)) +
           ", \"peer_port\": " + std::to_string(n.peer_port) +
           ", \"protocol\": " + std::to_string(s.protocol) +
           ", \"suite\": " + json_string(info != nullptr ? info->name : "unknown") +
           ", \"peer\": " + json_string(s.peer_name) +
           ", \"peer_identity\": " + json_string(s.peer_identity) +
           ", \"owner_uid\": " + std::to_string(s.owner_uid) +
           ", \"owner_pid\": " + std::to_string(s.owner_pid) + ", \"age_s\": " +
           std::to_string(
               std::chrono::duration_cast<std::chrono::seconds>(now - s.opened_at).count()) +
           ", \"not_after\": " + std::to_string(s.not_after) + engine_stats_json(s) + "}";
  }
  out += "\n], \"leases\": [";
  first = true;
  for (const auto& [port, l] : leases_) {
    if (uid != 0 && l.uid != uid) continue;
    out += first ? "\n  " : ",\n  ";
    first = false;
    out += "{\"port\": " + std::to_string(port) + ", \"uid\": " + std::to_string(l.uid) +
           ", \"pid\": " + std::to_string(l.pid) +
           ", \"ephemeral\": " + (l.ephemeral ? "true" : "false") +
           ", \"held\": " + (l.owner != 0 ? "true" : "false") + "}";
  }
  out += "\n], \"channels\": [";
  first = true;
  for (const auto& [fd, ch] : channels_) {
    if (uid != 0) break;
    out += first ? "\n  " : ",\n  ";
    first = false;
    out += "{\"peer\": " + json_string(ch->peer_name()) +
           ", \"remote\": " + json_string(format_endpoint(ch->remote())) +
           ", \"identity\": " + json_string(ch->identity()) + ", \"role\": " +
           (ch->role() == PeerChannel::Role::kClient ? "\"client\"" : "\"server\"") +
           ", \"established\": " + (ch->established() ? "true" : "false") +
           ", \"resumed\": " + (ch->resumed() ? "true" : "false") + "}";
  }
  out += "\n]}\n";
  return out;
}

void Daemon::app_list(App* app, const smtd_app_list& req) {
  uint32_t rid = req.hdr.request_id;
  if (req.flags != 0 || req.reserved != 0) {
    return send_app_error(app->id, rid, EBADMSG, "LIST: flags and reserved must be 0");
  }
  // Root sees everything; other uids see their own sessions and leases.
  std::string text = sessions_json(app->uid);
  size_t pos = 0;
  uint32_t id = app->id;
  do {
    size_t n = std::min(kListChunk, text.size() - pos);
    std::vector<uint8_t> buf(sizeof(smtd_app_list_chunk) + n);
    smtd_app_list_chunk c;
    std::memset(&c, 0, sizeof c);
    c.hdr = reply_hdr(SMTD_APP_LIST_CHUNK, static_cast<uint32_t>(buf.size()), rid);
    c.text_len = static_cast<uint32_t>(n);
    c.flags = pos + n >= text.size() ? SMTD_LIST_F_LAST : 0;
    std::memcpy(buf.data(), &c, sizeof c);
    std::memcpy(buf.data() + sizeof c, text.data() + pos, n);
    if (!send_app(id, buf.data(), buf.size())) return;
    pos += n;
  } while (pos < text.size());
}

}  // namespace smt::smtd
