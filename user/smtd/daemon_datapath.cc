// The datapath sockets smtd hands to applications (CONTRACT §7; docs/smtd.md
// "Datapath sockets"): raw IP sockets of SMT's protocol that smtd creates,
// binds to its address and filters by port lease, so an application needs no
// CAP_NET_RAW; and the cgroup setsockopt guard that keeps untrusted holders
// from switching them to IP_HDRINCL.
#include <bpf/bpf.h>
#include <openssl/crypto.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "smtd/daemon.h"
#include "smtd/daemon_util.h"
#include "smtd/smtd_log.h"

namespace smt::smtd {
namespace {

bool is_v4(const Addr16& a) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.data(), kPrefix, sizeof kPrefix) == 0;
}

int sock_int(int fd, int opt) {
  int v = -1;
  socklen_t len = sizeof v;
  return ::getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 ? v : -1;
}

// The interface holding `a` in this network namespace; 0 if none.
int interface_of(const Addr16& a) {
  struct ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return 0;
  int found = 0;
  for (struct ifaddrs* i = list; i != nullptr && found == 0; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    Addr16 mine{};
    if (i->ifa_addr->sa_family == AF_INET) {
      mine[10] = mine[11] = 0xff;
      std::memcpy(&mine[12], &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      std::memcpy(mine.data(), &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    if (mine == a) found = static_cast<int>(::if_nametoindex(i->ifa_name));
  }
  ::freeifaddrs(list);
  return found;
}

std::string xsks_map_pin(const std::string& root, int ifindex) {
  return root + "/if-" + std::to_string(ifindex) + "/" SMT_MAP_XSKS;
}

}  // namespace

void Daemon::start_datapath() {
  auto filter = loader::RawFilter::load(maps_->pin_root(), cfg_.protocol);
  if (!filter) {
    datapath_error_ = "the raw socket filter did not load: " + filter.error().message;
    log_error(datapath_error_ + "; no application gets datapath sockets");
  } else {
    raw_filter_ = std::move(*filter);
    // Sockets a previous smtd handed out keep their owner ids until their
    // holders present them again: no new application may get one of those.
    uint32_t max_owner = 0;
    size_t held = 0;
    raw_filter_->for_each_owner([&](uint64_t, const smt_raw_owner& o) {
      max_owner = std::max({max_owner, o.owner_id, o.prev_owner_id});
      ++held;
    });
    if (max_owner >= next_app_id_) next_app_id_ = max_owner + 1;
    if (held != 0) {
      log_info(std::to_string(held) + " datapath sockets of a previous smtd await their holders");
    }
  }

  loader::SockoptGuardOptions o;
  o.pin_root = maps_->pin_root();
  o.cgroup_path = opts_.cgroup_path;
  o.ipproto = cfg_.protocol;
  // Only this instance's namespace: another host on the machine (tests, a
  // second smtd elsewhere) has its own guard and its own trusted uids.
  auto cookie = loader::current_netns_cookie();
  o.netns_cookie = cookie ? *cookie : 0;
  auto guard = loader::SockoptGuard::attach(o);
  if (!guard) {
    datapath_error_ = "the setsockopt guard is not attached: " + guard.error().message;
    log_error(datapath_error_ + "; only trusted uids get datapath sockets");
    return;
  }
  sockopt_guard_ = std::move(*guard);
  update_trusted_uids();
  log_info(std::string("setsockopt guard ") +
           (sockopt_guard_->adopted() ? "taken over from the pinned link"
                                      : "attached to " + sockopt_guard_->cgroup_path()) +
           ": IP_HDRINCL/IPV6_HDRINCL on protocol " + std::to_string(cfg_.protocol) +
           " raw sockets only for trusted uids");
}

void Daemon::update_trusted_uids() {
  if (!sockopt_guard_) return;
  std::vector<uint32_t> uids;
  for (const UidRule& r : cfg_.uids) {
    if (r.trusted) uids.push_back(r.uid);
  }
  if (Status st = sockopt_guard_->set_trusted_uids(uids); !st) {
    log_error("setsockopt guard: " + st.error().message);
  }
}

void Daemon::sweep_raw_owners() {
  if (raw_owners_swept_ || !raw_filter_) return;
  if (Clock::now() - start_time_ < std::chrono::seconds(cfg_.adopt_grace_s)) return;
  raw_owners_swept_ = true;
  std::vector<uint64_t> stale;
  raw_filter_->for_each_owner([&](uint64_t cookie, const smt_raw_owner& o) {
    if (find_app(o.owner_id) == nullptr) stale.push_back(cookie);
  });
  for (uint64_t c : stale) (void)raw_filter_->delete_owner(c);
  if (!stale.empty()) {
    log_info("forgot " + std::to_string(stale.size()) +
             " datapath sockets no application presented within adopt_grace");
  }
}

std::string Daemon::make_xsk(App* app, uint32_t queue) {
  const int ifindex = interface_of(cfg_.address);
  if (ifindex == 0) return "no interface here has smtd's address " + format_addr(cfg_.address);
  char name[IF_NAMESIZE] = "?";
  ::if_indextoname(static_cast<unsigned>(ifindex), name);
  const std::string pin = xsks_map_pin(maps_->pin_root(), ifindex);
  UniqueFd map(bpf_obj_get(pin.c_str()));
  if (!map) {
    return std::string("no XDP program is attached to ") + name + " under " + maps_->pin_root() +
           " (smtctl attach " + name + ")";
  }
  for (const auto& [id, a] : apps_) {
    if (a.xsk && a.xsk_ifindex == ifindex && a.xsk_queue == queue) {
      return "queue " + std::to_string(queue) + " of " + name + " is another application's";
    }
  }
  link::XskSocketConfig c;
  c.ifindex = ifindex;
  c.queue = queue;
  c.mode = link::XskBindMode::kAuto;
  c.xsks_map_fd = map.get();
  auto x = link::create_xsk_socket(c);
  // No live application holds the queue (checked above), so a busy queue is
  // a socket that just closed: the kernel releases its queue a moment later.
  for (int i = 0; i < 25 && !x && x.error().code == EBUSY; ++i) {
    ::usleep(20'000);
    x = link::create_xsk_socket(c);
  }
  if (!x) return x.error().message;
  app->xsk = std::move(x->socket);
  app->xsk_umem = std::move(x->umem);
  app->xsk_geometry = x->geometry;
  app->xsk_ifindex = ifindex;
  app->xsk_queue = queue;
  app->xsk_zerocopy = x->zerocopy;
  log_info("handed uid " + std::to_string(app->uid) + " pid " + std::to_string(app->pid) +
           " an AF_XDP socket on " + name + " queue " + std::to_string(queue) + " (" +
           link::xsk_mode_name(x->zerocopy) + " mode, owner id " + std::to_string(app->id) + ")");
  return "";
}

void Daemon::release_xsk(App& app) {
  if (!app.xsk) return;
  // The map holds the socket alive: take it out, unless another socket
  // took the queue meanwhile (a re-presenting holder after a restart).
  UniqueFd map(bpf_obj_get(xsks_map_pin(maps_->pin_root(), app.xsk_ifindex).c_str()));
  uint32_t key = app.xsk_queue;
  bool other = false;
  for (const auto& [id, a] : apps_) {
    other = other || (&a != &app && a.xsk && a.xsk_ifindex == app.xsk_ifindex &&
                      a.xsk_queue == app.xsk_queue);
  }
  if (map && !other) (void)bpf_map_delete_elem(map.get(), &key);
  app.xsk.reset();
  app.xsk_umem.reset();
  // Its sessions receive through the raw socket from now on.
  for (const auto& [n, s] : sessions_) {
    if (s.owner != app.id) continue;
    const smt_session_key k = map_key(cfg_.address, n);
    auto v = maps_->get_session(k);
    if (!v) continue;
    v->flags &= static_cast<uint8_t>(~SMT_SESSION_F_AF_XDP);
    if (Status st = maps_->put_session(k, *v); !st) log_error(st.error().message);
    OPENSSL_cleanse(&*v, sizeof *v);
  }
}

void Daemon::release_datapath(App& app) {
  release_xsk(app);
  if (raw_filter_) {
    for (uint64_t c : app.datapath_cookies) {
      if (Status st = raw_filter_->delete_owner(c); !st) log_error(st.error().message);
    }
  }
  app.datapath_cookies.clear();
  app.datapath.clear();
  app.datapath_families = 0;
}

bool Daemon::send_app_fds(uint32_t app_id, const void* msg, size_t len,
                          const std::vector<int>& fds) {
  if (fds.size() <= 1) return send_app(app_id, msg, len, fds.empty() ? -1 : fds[0]);
  App* app = find_app(app_id);
  if (app == nullptr) return false;
  struct iovec iov {
    const_cast<void*>(msg), len
  };
  struct msghdr mh;
  std::memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(SMTD_DATAPATH_MAX_FDS * sizeof(int))];
  std::memset(control, 0, sizeof control);
  const size_t n = std::min<size_t>(fds.size(), SMTD_DATAPATH_MAX_FDS);
  mh.msg_control = control;
  mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
  struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(n * sizeof(int));
  std::memcpy(CMSG_DATA(c), fds.data(), n * sizeof(int));
  if (::sendmsg(app->fd.get(), &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(len)) {
    return true;
  }
  apps_to_drop_[app_id] = std::string("send failed: ") + std::strerror(errno);
  return false;
}

void Daemon::app_datapath(App* app, const smtd_app_datapath_req& req, std::vector<UniqueFd> fds) {
  const uint32_t rid = req.hdr.request_id;
  const std::string who = "uid " + std::to_string(app->uid) + " pid " + std::to_string(app->pid);
  const bool present = (req.flags & SMTD_DATAPATH_F_PRESENT) != 0;
  if ((req.flags & ~uint32_t{SMTD_DATAPATH_F_PRESENT | SMTD_DATAPATH_F_RAW_ONLY}) != 0 ||
      req.reserved != 0 ||
      (req.families & ~uint32_t{SMTD_DATAPATH_FAMILY_V4 | SMTD_DATAPATH_FAMILY_V6}) != 0) {
    log_warning("malformed DATAPATH from " + who);
    return send_app_error(app->id, rid, EBADMSG,
                          "DATAPATH: unknown flags or families, or reserved bytes set");
  }
  if (present == fds.empty()) {
    return send_app_error(app->id, rid, EBADMSG,
                          present ? "DATAPATH with F_PRESENT carries no sockets"
                                  : "DATAPATH carries fds but not F_PRESENT");
  }
  const UidRule* rule = cfg_.rule_for(app->uid);
  if (rule == nullptr) {
    return send_app_error(app->id, rid, EACCES,
                          "uid " + std::to_string(app->uid) + " has no [uid " +
                              std::to_string(app->uid) + "] section in the config");
  }
  // Root can open raw sockets itself; the guard trusts it too.
  const bool trusted = rule->trusted || app->uid == 0;
  if (!raw_filter_ || (!trusted && !sockopt_guard_)) {
    log_warning("no datapath sockets for " + who + ": " + datapath_error_);
    return send_app_error(app->id, rid, raw_filter_ ? EPERM : ENOTSUP,
                          "smtd hands out no datapath sockets: " + datapath_error_);
  }
  const uint32_t my_family =
      is_v4(cfg_.address) ? SMTD_DATAPATH_FAMILY_V4 : SMTD_DATAPATH_FAMILY_V6;
  smtd_app_datapath r;
  std::memset(&r, 0, sizeof r);
  r.hdr.version = SMTD_APP_VERSION;
  r.hdr.type = SMTD_APP_DATAPATH_GRANTED;
  r.hdr.length = sizeof r;
  r.hdr.request_id = rid;
  r.kind = SMTD_DATAPATH_RAW;
  r.protocol = cfg_.protocol;
  std::memcpy(r.local_addr, cfg_.address.data(), 16);

  if (present) {
    // After an smtd restart: the holder proves it has the sockets by passing
    // them; their filter then follows this connection's leases.
    if (!app->datapath.empty()) {
      return send_app_error(app->id, rid, EBUSY, "this connection has its datapath sockets");
    }
    // An AF_XDP socket among them (a trusted holder): it goes back into the
    // xsks_map under the queue the holder names, and its sessions stay AF_XDP.
    UniqueFd xsk;
    for (auto it = fds.begin(); it != fds.end();) {
      if (sock_int(it->get(), SO_DOMAIN) != AF_XDP) {
        ++it;
        continue;
      }
      if (!trusted || xsk) {
        return send_app_error(app->id, rid, EPERM,
                              "DATAPATH: an AF_XDP socket presented by an untrusted uid, or two");
      }
      xsk = std::move(*it);
      it = fds.erase(it);
    }
    if (xsk) {
      const int ifindex = interface_of(cfg_.address);
      UniqueFd map(bpf_obj_get(xsks_map_pin(maps_->pin_root(), ifindex).c_str()));
      uint32_t key = req.rx_queue;
      int value = xsk.get();
      if (!map || bpf_map_update_elem(map.get(), &key, &value, BPF_ANY) != 0) {
        return send_app_error(app->id, rid, ENOENT,
                              "DATAPATH: no xsks_map to put the presented AF_XDP socket in "
                              "(is XDP still attached?)");
      }
      app->xsk = std::move(xsk);
      app->xsk_ifindex = ifindex;
      app->xsk_queue = req.rx_queue;
      if (fds.empty()) {
        return send_app_error(app->id, rid, EINVAL, "DATAPATH: no raw socket presented");
      }
    }
    std::vector<std::pair<uint64_t, smt_raw_owner>> update;
    uint32_t families = 0;
    for (const UniqueFd& fd : fds) {
      const int domain = sock_int(fd.get(), SO_DOMAIN);
      const uint32_t fam = domain == AF_INET    ? SMTD_DATAPATH_FAMILY_V4
                           : domain == AF_INET6 ? SMTD_DATAPATH_FAMILY_V6
                                                : 0;
      if (fam == 0 || (families & fam) != 0 || sock_int(fd.get(), SO_TYPE) != SOCK_RAW ||
          sock_int(fd.get(), SO_PROTOCOL) != cfg_.protocol) {
        return send_app_error(app->id, rid, EINVAL,
                              "DATAPATH: a presented fd is not one SMT raw socket per family");
      }
      families |= fam;
      auto cookie = loader::socket_cookie(fd.get());
      auto old = cookie ? raw_filter_->owner(*cookie) : Result<smt_raw_owner>(cookie.error());
      if (!old) {
        log_warning(who + " presented a raw socket this smtd instance never handed out");
        return send_app_error(app->id, rid, EPERM,
                              "DATAPATH: a presented socket was not handed out by this smtd");
      }
      if (old->owner_id != app->id && find_app(old->owner_id) != nullptr) {
        return send_app_error(app->id, rid, EBUSY,
                              "DATAPATH: a presented socket belongs to another live connection");
      }
      const uint32_t prev = old->owner_id == app->id ? old->prev_owner_id : old->owner_id;
      update.push_back({*cookie, smt_raw_owner{app->id, prev}});
    }
    for (const auto& [cookie, owner] : update) {
      if (Status st = raw_filter_->set_owner(cookie, owner); !st) {
        return send_app_error(app->id, rid, st.error().code, st.error().message);
      }
      app->datapath_cookies.push_back(cookie);
    }
    // Kept in v4, v6 order, like sockets made here.
    std::sort(fds.begin(), fds.end(), [](const UniqueFd& a, const UniqueFd& b) {
      return sock_int(a.get(), SO_DOMAIN) == AF_INET && sock_int(b.get(), SO_DOMAIN) != AF_INET;
    });
    app->datapath = std::move(fds);
    app->datapath_families = families;
    r.families = families;
    send_app(app->id, &r, sizeof r);
    log_info(who + " presented its " + std::to_string(update.size()) +
             " datapath sockets again" +
             (app->xsk ? " and its AF_XDP socket on queue " + std::to_string(app->xsk_queue)
                       : std::string()) +
             " (owner id " + std::to_string(app->id) + ")");
    return;
  }

  if (app->datapath.empty()) {
    const uint32_t want = req.families != 0 ? req.families : my_family;
    if ((want & my_family) == 0) {
      return send_app_error(app->id, rid, EAFNOSUPPORT,
                            "smtd's address " + format_addr(cfg_.address) + " is " +
                                (my_family == SMTD_DATAPATH_FAMILY_V4 ? "IPv4" : "IPv6") +
                                "; it has no socket of the family asked for");
    }
    const bool v4 = my_family == SMTD_DATAPATH_FAMILY_V4;
    UniqueFd s(
        ::socket(v4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, cfg_.protocol));
    if (!s) {
      const int e = errno;
      return send_app_error(app->id, rid, e, std::string("raw socket: ") + std::strerror(e));
    }
    // Filter first: the socket must never hold a packet its holder may not see.
    Status st = raw_filter_->attach(s.get());
    auto cookie = st ? loader::socket_cookie(s.get()) : Result<uint64_t>(st.error());
    if (!cookie) return send_app_error(app->id, rid, cookie.error().code, cookie.error().message);
    if (st = raw_filter_->set_owner(*cookie, smt_raw_owner{app->id, 0}); !st) {
      return send_app_error(app->id, rid, st.error().code, st.error().message);
    }
    sockaddr_storage ss;
    const socklen_t len = to_sockaddr(Endpoint{cfg_.address, 0}, &ss);
    if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
      const int e = errno;
      (void)raw_filter_->delete_owner(*cookie);
      return send_app_error(
          app->id, rid, e,
          "binding a raw socket to " + format_addr(cfg_.address) + ": " + std::strerror(e));
    }
    app->datapath.push_back(std::move(s));
    app->datapath_cookies.push_back(*cookie);
    app->datapath_families = my_family;
    log_info("handed " + who + " a raw " + (v4 ? "IPv4" : "IPv6") + " datapath socket (owner id " +
             std::to_string(app->id) + ")");
  }
  std::vector<int> out;
  if ((req.flags & SMTD_DATAPATH_F_RAW_ONLY) == 0) {
    std::string why;
    if (!trusted) {
      why = "uid " + std::to_string(app->uid) + " is not trusted (config: trusted = yes)";
    } else if (!app->xsk) {
      why = make_xsk(app, req.rx_queue);
    } else if (app->xsk_queue != req.rx_queue || !app->xsk_umem) {
      why = "this connection's AF_XDP socket is on queue " + std::to_string(app->xsk_queue);
    }
    if (why.empty()) {
      r.kind = SMTD_DATAPATH_AF_XDP;
      r.xsk_flags = app->xsk_zerocopy ? SMTD_XSK_F_ZEROCOPY : 0;
      r.xsk = smtd_datapath_xsk{app->xsk_geometry.frame_size,
                                app->xsk_geometry.frame_count,
                                app->xsk_geometry.fill_size,
                                app->xsk_geometry.completion_size,
                                app->xsk_geometry.rx_size,
                                app->xsk_geometry.tx_size,
                                static_cast<uint32_t>(app->xsk_ifindex),
                                app->xsk_queue};
      out.push_back(app->xsk.get());
      out.push_back(app->xsk_umem.get());
    } else {
      std::snprintf(r.note, sizeof r.note, "%s", why.c_str());
    }
  } else if (app->xsk) {
    // Raw only after all (the application could not map its AF_XDP socket):
    // give the queue back and move its sessions to the raw socket.
    log_info(who + " gave back its AF_XDP socket on queue " + std::to_string(app->xsk_queue) +
             "; it uses its raw socket");
    release_xsk(*app);
  }
  for (const UniqueFd& fd : app->datapath) out.push_back(fd.get());
  r.families = app->datapath_families;
  r.fd_count = static_cast<uint32_t>(out.size());
  send_app_fds(app->id, &r, sizeof r, out);
}

}  // namespace smt::smtd
