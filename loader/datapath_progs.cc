#include "loader/datapath_progs.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <tuple>
#include <vector>

#include "loader/global_maps.h"
#include "loader/libbpf_log.h"
#include "smt_rawfilter.skel.h"
#include "smt_sockopt.skel.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif
#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif
#ifndef SO_LOCK_FILTER
#define SO_LOCK_FILTER 44
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace smt::loader {

struct SockoptGuard::Skel {
  ~Skel() {
    if (s != nullptr) smt_sockopt_bpf__destroy(s);
  }
  smt_sockopt_bpf* s = nullptr;
};

struct RawFilter::Skel {
  ~Skel() {
    if (s != nullptr) smt_rawfilter_bpf__destroy(s);
  }
  smt_rawfilter_bpf* s = nullptr;
};

namespace {

std::string strerr(int err) { return libbpf_error_string(err); }

Error sys_error(const std::string& what) {
  const int e = errno;
  return make_error(e, what + ": " + strerr(e));
}

std::string trimmed(std::string root) {
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return root;
}

/// Reuses the map pinned at `path` for `m` if there is one with the same
/// definition; returns true if it did (false: the caller pins after load).
Result<bool> reuse_pinned(struct bpf_map* m, const std::string& path, UniqueFd* keep) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd) {
    if (errno == ENOENT) return false;
    return sys_error("cannot open the pinned map " + path);
  }
  struct bpf_map_info info;
  std::memset(&info, 0, sizeof info);
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
    return sys_error("cannot inspect " + path);
  if (info.type != bpf_map__type(m) || info.key_size != bpf_map__key_size(m) ||
      info.value_size != bpf_map__value_size(m) || info.max_entries != bpf_map__max_entries(m)) {
    return make_error(EEXIST, path + " is a map of another layout than this build's " +
                                  bpf_map__name(m) + " (type " + std::to_string(info.type) +
                                  ", key " + std::to_string(info.key_size) + ", value " +
                                  std::to_string(info.value_size) + ", entries " +
                                  std::to_string(info.max_entries) +
                                  "); remove it once no raw socket uses it");
  }
  if (int err = bpf_map__reuse_fd(m, fd.get()); err != 0) {
    return make_error(-err, "reusing " + path + " failed: " + strerr(err));
  }
  *keep = std::move(fd);
  return true;
}

Result<uint64_t> sum_percpu(int fd, uint32_t key) {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return make_error(-cpus, "cannot count the possible CPUs");
  std::vector<uint64_t> v(static_cast<size_t>(cpus));
  if (bpf_map_lookup_elem(fd, &key, v.data()) != 0) return sys_error("counter lookup");
  uint64_t sum = 0;
  for (uint64_t x : v) sum += x;
  return sum;
}

}  // namespace

Result<std::string> find_cgroup2_root() {
  struct statfs sfs;
  if (::statfs("/sys/fs/cgroup", &sfs) == 0 &&
      static_cast<uint32_t>(sfs.f_type) == CGROUP2_SUPER_MAGIC) {
    return std::string("/sys/fs/cgroup");
  }
  std::ifstream mounts("/proc/self/mounts");
  std::string dev, dir, type, rest;
  while (mounts >> dev >> dir >> type && std::getline(mounts, rest)) {
    if (type == "cgroup2") return dir;
  }
  return make_error(ENOENT, "no cgroup v2 hierarchy is mounted (mount -t cgroup2 none DIR)");
}

Result<uint64_t> socket_cookie(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) {
    return sys_error("getsockopt SO_COOKIE");
  }
  return cookie;
}

Result<uint64_t> current_netns_cookie() {
  UniqueFd s(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return sys_error("socket");
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (::getsockopt(s.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) {
    return sys_error("getsockopt SO_NETNS_COOKIE");
  }
  return cookie;
}

// ---- SockoptGuard --------------------------------------------------------------

SockoptGuard::~SockoptGuard() = default;

Result<std::unique_ptr<SockoptGuard>> SockoptGuard::attach(const SockoptGuardOptions& opts) {
  install_libbpf_logging();
  if (opts.pin_root.empty() || opts.pin_root[0] != '/') {
    return make_error(EINVAL, "setsockopt guard: the pin root must be absolute");
  }
  std::string cgroup = opts.cgroup_path;
  if (cgroup.empty()) {
    auto found = find_cgroup2_root();
    if (!found) return make_error(found.error().code, "setsockopt guard: " + found.error().message);
    cgroup = *found;
  }
  struct statfs sfs;
  if (::statfs(cgroup.c_str(), &sfs) != 0) return sys_error("setsockopt guard: " + cgroup);
  if (static_cast<uint32_t>(sfs.f_type) != CGROUP2_SUPER_MAGIC) {
    return make_error(ENOTSUP, "setsockopt guard: " + cgroup + " is not cgroup v2");
  }
  UniqueFd cg(::open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg) return sys_error("setsockopt guard: open " + cgroup);

  std::unique_ptr<SockoptGuard> g(new SockoptGuard());
  g->cgroup_ = cgroup;
  g->skel_ = std::make_unique<Skel>();
  g->skel_->s = smt_sockopt_bpf__open();
  if (g->skel_->s == nullptr) return sys_error("setsockopt guard: opening the BPF object");
  g->skel_->s->rodata->smt_ipproto = opts.ipproto;
  g->skel_->s->rodata->smt_netns_cookie = opts.netns_cookie;
  take_libbpf_warnings();
  if (int err = smt_sockopt_bpf__load(g->skel_->s); err != 0) {
    return make_error(
        -err, "setsockopt guard: load failed: " + strerr(err) + " " + take_libbpf_warnings());
  }
  const int prog = bpf_program__fd(g->skel_->s->progs.smt_sockopt);
  const std::string pin = trimmed(opts.pin_root) + "/" SMT_PIN_SOCKOPT_LINK;

  UniqueFd old(bpf_obj_get(pin.c_str()));
  if (old) {
    // A previous smtd's link: swap our program in, keeping one attachment.
    if (bpf_link_update(old.get(), prog, nullptr) == 0) {
      g->link_ = std::move(old);
      g->adopted_ = true;
    } else {
      // Detached meanwhile (or not a link): replace the pin.
      ::unlink(pin.c_str());
    }
  } else if (errno != ENOENT) {
    return sys_error("setsockopt guard: " + pin);
  }
  if (!g->link_) {
    UniqueFd link(bpf_link_create(prog, cg.get(), BPF_CGROUP_SETSOCKOPT, nullptr));
    if (!link) return sys_error("setsockopt guard: attaching to " + cgroup);
    ::mkdir(trimmed(opts.pin_root).c_str(), 0700);
    if (bpf_obj_pin(link.get(), pin.c_str()) != 0) return sys_error("setsockopt guard: pin " + pin);
    g->link_ = std::move(link);
  }
  const uint32_t none[1] = {0};
  if (Status st = g->set_trusted_uids(std::span<const uint32_t>(none, 0)); !st) return st.error();
  return g;
}

Status SockoptGuard::set_trusted_uids(std::span<const uint32_t> uids) {
  const int fd = bpf_map__fd(skel_->s->maps.sockopt_trusted_uids_hash);
  std::vector<uint32_t> want(uids.begin(), uids.end());
  want.push_back(0);
  if (want.size() > SMT_TRUSTED_UIDS_MAX) {
    return make_error(E2BIG, "more than " + std::to_string(SMT_TRUSTED_UIDS_MAX) + " trusted uids");
  }
  const uint8_t one = 1;
  for (uint32_t uid : want) {
    if (bpf_map_update_elem(fd, &uid, &one, BPF_ANY) != 0) {
      return sys_error("trusted uid " + std::to_string(uid));
    }
  }
  // Then forget the uids no longer trusted.
  std::vector<uint32_t> gone;
  uint32_t key = 0, next = 0;
  const uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    bool keep = false;
    for (uint32_t uid : want) keep = keep || uid == next;
    if (!keep) gone.push_back(next);
    key = next;
    prev = &key;
  }
  for (uint32_t uid : gone) bpf_map_delete_elem(fd, &uid);
  return {};
}

Result<uint64_t> SockoptGuard::stat(uint32_t which) const {
  uint64_t v = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->s->maps.sockopt_stats), &which, &v) != 0) {
    return sys_error("sockopt_stats lookup");
  }
  return v;
}

uint32_t SockoptGuard::prog_id() const {
  struct bpf_prog_info info;
  std::memset(&info, 0, sizeof info);
  uint32_t len = sizeof info;
  const int fd = bpf_program__fd(skel_->s->progs.smt_sockopt);
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

// ---- RawFilter -----------------------------------------------------------------

RawFilter::~RawFilter() = default;

Result<std::unique_ptr<RawFilter>> RawFilter::load(const std::string& pin_root, uint8_t ipproto) {
  install_libbpf_logging();
  auto global = open_global_maps(pin_root);
  if (!global) return global.error();
  std::unique_ptr<RawFilter> f(new RawFilter());
  f->skel_ = std::make_unique<Skel>();
  f->skel_->s = smt_rawfilter_bpf__open();
  if (f->skel_->s == nullptr) return sys_error("raw socket filter: opening the BPF object");
  smt_rawfilter_bpf* s = f->skel_->s;
  s->rodata->smt_ipproto = ipproto;
  if (Status st = global->reuse_in(s->obj); !st) return st.error();
  const std::string root = trimmed(pin_root);
  const std::string owners_pin = root + "/" SMT_MAP_RAW_OWNERS;
  const std::string stats_pin = root + "/" SMT_MAP_RAWFILTER_STATS;
  auto owners_reused = reuse_pinned(s->maps.raw_owners_hash, owners_pin, &f->owners_);
  if (!owners_reused) return owners_reused.error();
  auto stats_reused = reuse_pinned(s->maps.rawfilter_stats_percpu, stats_pin, &f->stats_);
  if (!stats_reused) return stats_reused.error();
  take_libbpf_warnings();
  if (int err = smt_rawfilter_bpf__load(s); err != 0) {
    return make_error(
        -err, "raw socket filter: load failed: " + strerr(err) + " " + take_libbpf_warnings());
  }
  for (auto [reused, m, pin, keep] :
       {std::tuple{*owners_reused, s->maps.raw_owners_hash, &owners_pin, &f->owners_},
        std::tuple{*stats_reused, s->maps.rawfilter_stats_percpu, &stats_pin, &f->stats_}}) {
    if (reused) continue;
    const int fd = bpf_map__fd(m);
    if (bpf_obj_pin(fd, pin->c_str()) != 0) return sys_error("raw socket filter: pin " + *pin);
    keep->reset(::dup(fd));
    if (!*keep) return sys_error("dup");
  }
  return f;
}

int RawFilter::prog_fd() const { return bpf_program__fd(skel_->s->progs.smt_rawfilter); }

Status RawFilter::attach(int sock) const {
  const int prog = prog_fd();
  if (::setsockopt(sock, SOL_SOCKET, SO_ATTACH_BPF, &prog, sizeof prog) != 0) {
    return sys_error("SO_ATTACH_BPF");
  }
  const int one = 1;
  if (::setsockopt(sock, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof one) != 0) {
    return sys_error("SO_LOCK_FILTER");
  }
  // A raw socket receives from the moment it exists; what it took before the
  // filter was on passed no filter.
  uint8_t scratch[1];
  while (::recv(sock, scratch, sizeof scratch, MSG_DONTWAIT | MSG_TRUNC) >= 0) {
  }
  return {};
}

Status RawFilter::set_owner(uint64_t cookie, const smt_raw_owner& owner) const {
  if (bpf_map_update_elem(owners_.get(), &cookie, &owner, BPF_ANY) != 0) {
    return sys_error("raw_owners_hash update");
  }
  return {};
}

Status RawFilter::delete_owner(uint64_t cookie) const {
  if (bpf_map_delete_elem(owners_.get(), &cookie) != 0 && errno != ENOENT) {
    return sys_error("raw_owners_hash delete");
  }
  return {};
}

Result<smt_raw_owner> RawFilter::owner(uint64_t cookie) const {
  smt_raw_owner o{};
  if (bpf_map_lookup_elem(owners_.get(), &cookie, &o) != 0) return sys_error("raw_owners_hash");
  return o;
}

void RawFilter::for_each_owner(
    const std::function<void(uint64_t, const smt_raw_owner&)>& fn) const {
  std::vector<std::pair<uint64_t, smt_raw_owner>> all;
  uint64_t key = 0, next = 0;
  const uint64_t* prev = nullptr;
  while (bpf_map_get_next_key(owners_.get(), prev, &next) == 0) {
    smt_raw_owner o{};
    if (bpf_map_lookup_elem(owners_.get(), &next, &o) == 0) all.emplace_back(next, o);
    key = next;
    prev = &key;
  }
  for (const auto& [c, o] : all) fn(c, o);
}

Result<uint64_t> RawFilter::stat(uint32_t which) const { return sum_percpu(stats_.get(), which); }

}  // namespace smt::loader
