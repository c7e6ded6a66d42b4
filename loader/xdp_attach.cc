#include "loader/xdp_attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "common/unique_fd.h"
#include "loader/global_maps.h"
#include "loader/libbpf_log.h"
#include "smt_xdp.skel.h"

namespace smt::loader {
namespace {


struct SkelDeleter {
  void operator()(smt_xdp_bpf* s) const { smt_xdp_bpf__destroy(s); }
};
using SkelPtr = std::unique_ptr<smt_xdp_bpf, SkelDeleter>;

std::string strerr(int err) { return libbpf_error_string(err); }

std::string if_dir(const std::string& root, int ifindex) {
  return root + "/if-" + std::to_string(ifindex);
}

std::string trimmed_root(std::string root) {
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return root;
}

std::string name_of(int ifindex) {
  char buf[IF_NAMESIZE] = {};
  return if_indextoname(static_cast<unsigned>(ifindex), buf) != nullptr ? std::string(buf) : "";
}

struct XdpQuery {
  uint32_t prog_id = 0;
  uint32_t drv_prog_id = 0;
  uint32_t skb_prog_id = 0;
};

Result<XdpQuery> query(int ifindex) {
  struct bpf_xdp_query_opts q;
  std::memset(&q, 0, sizeof q);
  q.sz = sizeof q;
  if (int err = bpf_xdp_query(ifindex, 0, &q); err != 0) {
    return make_error(
        -err, "cannot query XDP on ifindex " + std::to_string(ifindex) + ": " + strerr(err));
  }
  return XdpQuery{q.prog_id, q.drv_prog_id, q.skb_prog_id};
}

uint32_t prog_id_of(int fd) {
  struct bpf_prog_info info;
  std::memset(&info, 0, sizeof info);
  uint32_t len = sizeof info;
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

uint32_t link_prog_id(int fd) {
  struct bpf_link_info info;
  std::memset(&info, 0, sizeof info);
  uint32_t len = sizeof info;
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.prog_id : 0;
}

/// rx queues as ethtool reports them (0 if the driver does not say).
uint32_t rx_queue_count(const std::string& ifname) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return 0;
  struct ethtool_channels ch;
  std::memset(&ch, 0, sizeof ch);
  ch.cmd = ETHTOOL_GCHANNELS;
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::strncpy(ifr.ifr_name, ifname.c_str(), IF_NAMESIZE - 1);
  ifr.ifr_data = reinterpret_cast<char*>(&ch);
  if (::ioctl(s.get(), SIOCETHTOOL, &ifr) != 0) return 0;
  return std::max(ch.rx_count, ch.combined_count);
}

Status pin_fd(int fd, const std::string& path) {
  if (bpf_obj_pin(fd, path.c_str()) != 0) {
    int err = errno;
    return make_error(err, "cannot pin " + path + ": " + strerr(err));
  }
  return {};
}

/// Removes if-<ifindex>/ and the pins in it; nothing else.
void remove_pin_dir(const std::string& dir) {
  for (const char* name :
       {"link", "prog", SMT_MAP_XSKS, SMT_MAP_XDP_STATS, SMT_MAP_SESSION_MAC_FAIL}) {
    ::unlink((dir + "/" + name).c_str());
  }
  ::rmdir(dir.c_str());
}

/// Undoes a half-made attachment unless dismissed.
class AttachRollback {
 public:
  explicit AttachRollback(std::string dir) : dir_(std::move(dir)) {}
  ~AttachRollback() {
    if (armed_) remove_pin_dir(dir_);
  }
  void dismiss() { armed_ = false; }

 private:
  std::string dir_;
  bool armed_ = true;
};

/// Attaches through a bpf_link (pinned at dir/link); if the kernel has no XDP
/// links, through the netlink API with the program pinned at dir/prog.
Status attach_prog(int prog_fd, int ifindex, XdpMode mode, const std::string& dir,
                   bool* link_pinned) {
  struct bpf_link_create_opts lo;
  std::memset(&lo, 0, sizeof lo);
  lo.sz = sizeof lo;
  lo.flags = mode == XdpMode::kSkb ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
  int link = bpf_link_create(prog_fd, ifindex, BPF_XDP, &lo);
  if (link >= 0) {
    UniqueFd link_fd(link);
    *link_pinned = true;
    // The pin keeps the attachment after this process exits; on failure the
    // link closes with link_fd and the program comes off.
    return pin_fd(link_fd.get(), dir + "/link");
  }
  int err = -link;
  if (err != EINVAL && err != ENOTSUP && err != EOPNOTSUPP) {
    return make_error(err, strerr(-err));
  }
  // EINVAL may also mean "no XDP link support"; try the netlink way once.
  uint32_t flags = XDP_FLAGS_UPDATE_IF_NOEXIST |
                   (mode == XdpMode::kSkb ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
  if (int e = bpf_xdp_attach(ifindex, prog_fd, flags, nullptr); e != 0) {
    return make_error(-e, strerr(e));
  }
  *link_pinned = false;
  if (Status s = pin_fd(prog_fd, dir + "/prog"); !s) {
    bpf_xdp_detach(ifindex, flags & ~XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr);
    return s;
  }
  return {};
}

}  // namespace

const char* xdp_mode_name(XdpMode mode) { return mode == XdpMode::kSkb ? "skb" : "native"; }

const char* xdp_stat_name(uint32_t stat) {
  static const char* const kNames[] = {"pass_not_smt",         "pass_stack",     "redirect_xsk",
                                       "drop_fragment",        "drop_bad_ip",    "drop_truncated",
                                       "drop_bad_version",     "drop_bad_type",  "drop_bad_header",
                                       "drop_unknown_session", "drop_bad_tag",   "drop_old_request",
                                       "drop_wrong_queue",     "drop_no_xsk",    "drop_grant_stale",
                                       "grant_grew",           "grant_slot_miss"};
  static_assert(std::size(kNames) == SMT_XDP_STAT_COUNT, "one name per enum smt_xdp_stat value");
  return stat < SMT_XDP_STAT_COUNT ? kNames[stat] : "?";
}

Result<XdpAttachment> attach_xdp(const AttachOptions& opts) {
  install_libbpf_logging();
  const int ifindex = static_cast<int>(if_nametoindex(opts.ifname.c_str()));
  if (ifindex == 0) {
    return make_error(ENODEV, "no such interface '" + opts.ifname + "' in this network namespace");
  }
  const std::string root = trimmed_root(opts.pin_root);
  auto globals = open_global_maps(root);
  if (!globals) return globals.error();

  const std::string dir = if_dir(root, ifindex);
  auto q = query(ifindex);
  if (!q) return q.error();
  if (q->prog_id != 0) {
    return make_error(EEXIST, "interface " + opts.ifname + " already has an XDP program (id " +
                                  std::to_string(q->prog_id) + "); run `smtctl detach " +
                                  opts.ifname + "` first");
  }
  if (::mkdir(dir.c_str(), 0700) != 0) {
    int err = errno;
    if (err == EEXIST) {
      return make_error(EEXIST, "pins for " + opts.ifname + " already exist at " + dir +
                                    " but nothing is attached; run `smtctl detach " + opts.ifname +
                                    "` to remove them");
    }
    return make_error(err, "cannot create " + dir + ": " + strerr(err));
  }
  AttachRollback rollback(dir);

  std::vector<char> log = verifier_log_buffer();
  struct bpf_object_open_opts oo;
  std::memset(&oo, 0, sizeof oo);
  oo.sz = sizeof oo;
  oo.kernel_log_buf = log.data();
  oo.kernel_log_size = log.size();
  take_libbpf_warnings();
  SkelPtr skel(smt_xdp_bpf__open_opts(&oo));
  if (!skel) {
    int err = errno;
    return make_error(
        err, "cannot open the embedded XDP object: " + strerr(err) + "\n" + take_libbpf_warnings());
  }
  skel->rodata->smt_ipproto = opts.ipproto;
  uint32_t queues = opts.xsk_queues != 0 ? opts.xsk_queues : rx_queue_count(opts.ifname);
  queues = std::clamp<uint32_t>(queues, 1, SMT_XSK_QUEUES_MAX);
  if (int err = bpf_map__set_max_entries(skel->maps.xsks_map, queues); err != 0) {
    return make_error(-err, "cannot size xsks_map: " + strerr(err));
  }
  if (Status s = globals->reuse_in(skel->obj); !s) return s.error();

  const std::string log_path = opts.verifier_log_path.empty()
                                   ? "/tmp/smtctl-verifier-" + opts.ifname + ".log"
                                   : opts.verifier_log_path;
  if (Status s = load_with_verifier_log(skel->obj, log, "the XDP program", log_path); !s) {
    return s.error();
  }

  const int prog_fd = bpf_program__fd(skel->progs.smt_xdp_rx);
  XdpAttachment att;
  att.ifindex = ifindex;
  att.ifname = opts.ifname;
  att.pin_dir = dir;
  att.mode = opts.mode;
  Status attached = attach_prog(prog_fd, ifindex, opts.mode, dir, &att.link_pinned);
  if (!attached && opts.mode == XdpMode::kNative && opts.skb_fallback) {
    Status skb = attach_prog(prog_fd, ifindex, XdpMode::kSkb, dir, &att.link_pinned);
    if (skb) {
      att.mode = XdpMode::kSkb;
      attached = skb;
    }
  }
  if (!attached) {
    return make_error(attached.error().code, "cannot attach the XDP program to " + opts.ifname +
                                                 " in " + xdp_mode_name(opts.mode) +
                                                 " mode: " + attached.error().message);
  }
  struct {
    struct bpf_map* map;
    const char* name;
  } const per_if[] = {{skel->maps.xsks_map, SMT_MAP_XSKS},
                      {skel->maps.stats_percpu, SMT_MAP_XDP_STATS},
                      {skel->maps.session_mac_fail_percpu, SMT_MAP_SESSION_MAC_FAIL}};
  for (const auto& m : per_if) {
    if (Status s = pin_fd(bpf_map__fd(m.map), dir + "/" + m.name); !s) {
      // Best effort: the pin failure is the error to report.
      static_cast<void>(detach_xdp(root, ifindex));
      return s.error();
    }
  }
  att.prog_id = prog_id_of(prog_fd);
  att.ours = true;
  rollback.dismiss();
  return att;
}

Result<XdpAttachment> adopt_xdp(const std::string& pin_root, int ifindex) {
  install_libbpf_logging();
  const std::string dir = if_dir(trimmed_root(pin_root), ifindex);
  XdpAttachment att;
  att.ifindex = ifindex;
  att.ifname = name_of(ifindex);
  att.pin_dir = dir;
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return make_error(ENOENT, "nothing is attached at " + dir);
  }
  uint32_t pinned_prog = 0;
  UniqueFd link(bpf_obj_get((dir + "/link").c_str()));
  if (link) {
    att.link_pinned = true;
    pinned_prog = link_prog_id(link.get());
  } else {
    UniqueFd prog(bpf_obj_get((dir + "/prog").c_str()));
    if (prog) pinned_prog = prog_id_of(prog.get());
  }
  if (!att.ifname.empty()) {
    if (auto q = query(ifindex); q) {
      att.prog_id = q->prog_id;
      att.mode = q->skb_prog_id != 0 ? XdpMode::kSkb : XdpMode::kNative;
    }
  }
  att.ours = pinned_prog != 0 && pinned_prog == att.prog_id;
  return att;
}

Result<std::vector<XdpAttachment>> list_xdp(const std::string& pin_root) {
  const std::string root = trimmed_root(pin_root);
  std::vector<XdpAttachment> out;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(root.c_str()), &::closedir);
  if (!d) {
    int err = errno;
    if (err == ENOENT) return out;
    return make_error(err, "cannot read " + root + ": " + strerr(err));
  }
  while (struct dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    if (name.rfind("if-", 0) != 0 || name.size() > 13) continue;
    char* end = nullptr;
    long idx = std::strtol(name.c_str() + 3, &end, 10);
    if (end == name.c_str() + 3 || *end != '\0' || idx <= 0 || idx > INT32_MAX) continue;
    auto att = adopt_xdp(root, static_cast<int>(idx));
    if (att) out.push_back(std::move(*att));
  }
  std::sort(out.begin(), out.end(),
            [](const XdpAttachment& a, const XdpAttachment& b) { return a.ifindex < b.ifindex; });
  return out;
}

Status detach_xdp(const std::string& pin_root, int ifindex) {
  install_libbpf_logging();
  const std::string dir = if_dir(trimmed_root(pin_root), ifindex);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return make_error(ENOENT, "nothing is attached at " + dir);
  }
  UniqueFd link(bpf_obj_get((dir + "/link").c_str()));
  if (link) {
    if (bpf_link_detach(link.get()) != 0 && errno != ENOLINK) {
      int err = errno;
      return make_error(err,
                        "cannot detach the XDP link pinned at " + dir + "/link: " + strerr(err));
    }
  } else {
    UniqueFd prog(bpf_obj_get((dir + "/prog").c_str()));
    if (prog && !name_of(ifindex).empty()) {
      auto q = query(ifindex);
      if (q && q->prog_id != 0 && q->prog_id == prog_id_of(prog.get())) {
        struct bpf_xdp_attach_opts ao;
        std::memset(&ao, 0, sizeof ao);
        ao.sz = sizeof ao;
        ao.old_prog_fd = prog.get();
        uint32_t flags = q->skb_prog_id != 0 ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
        if (int err = bpf_xdp_detach(ifindex, flags | XDP_FLAGS_REPLACE, &ao); err != 0) {
          return make_error(-err, "cannot detach the XDP program from ifindex " +
                                      std::to_string(ifindex) + ": " + strerr(err));
        }
      }
    }
  }
  remove_pin_dir(dir);
  if (::stat(dir.c_str(), &st) == 0) {
    return make_error(ENOTEMPTY, dir + " still exists after detach (unexpected files in it?)");
  }
  return {};
}

namespace {

// One key of a pinned per-CPU map of __u64 counters, summed over the CPUs;
// 0 for a missing key when `missing_is_zero`.
Result<uint64_t> sum_percpu(int fd, const std::string& path, const void* key,
                            bool missing_is_zero) {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return make_error(-cpus, "cannot count the possible CPUs");
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  if (bpf_map_lookup_elem(fd, key, per_cpu.data()) != 0) {
    int err = errno;
    if (err == ENOENT && missing_is_zero) return uint64_t{0};
    return make_error(err, "cannot read " + path + ": " + strerr(err));
  }
  uint64_t sum = 0;
  for (uint64_t v : per_cpu) sum += v;
  return sum;
}

Result<UniqueFd> open_pinned(const std::string& path) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd) {
    int err = errno;
    return make_error(err, "cannot open " + path + ": " + strerr(err));
  }
  return fd;
}

}  // namespace

Result<XdpStats> read_xdp_stats(const XdpAttachment& att) {
  const std::string path = att.pin_dir + "/" + SMT_MAP_XDP_STATS;
  auto fd = open_pinned(path);
  if (!fd) return fd.error();
  XdpStats sum{};
  for (uint32_t k = 0; k < SMT_XDP_STAT_COUNT; ++k) {
    auto v = sum_percpu(fd->get(), path, &k, false);
    if (!v) return v.error();
    sum[k] = *v;
  }
  return sum;
}

Result<uint64_t> read_session_mac_failures(const XdpAttachment& att, const smt_session_key& key) {
  const std::string path = att.pin_dir + "/" + SMT_MAP_SESSION_MAC_FAIL;
  auto fd = open_pinned(path);
  if (!fd) return fd.error();
  return sum_percpu(fd->get(), path, &key, true);
}

}  // namespace smt::loader
