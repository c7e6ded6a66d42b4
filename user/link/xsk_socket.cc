#include "link/xsk_socket.h"

// glibc's net/if.h first: the uapi headers then skip their own copies.
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/ethtool.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

namespace smt::link {

namespace {

constexpr uint64_t kMaxUmem = uint64_t{1} << 30;
constexpr uint32_t kMaxRing = 32768;

bool power_of_two(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

Error sys_error(int e, const std::string& what) {
  std::string hint;
  if (e == EPERM || e == EACCES) hint = " (needs CAP_NET_RAW, and CAP_BPF for the map)";
  if (e == ENOMEM || e == ENOBUFS) hint = " (locked memory: RLIMIT_MEMLOCK)";
  return make_error(e, "AF_XDP socket: " + what + ": " + std::strerror(e) + hint);
}

// The device's rx queue count as ethtool reports it; 0 when it cannot tell.
uint32_t rx_queue_count(int sock, const char* ifname) {
  ethtool_channels ch{};
  ch.cmd = ETHTOOL_GCHANNELS;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname, std::min<size_t>(std::strlen(ifname), IFNAMSIZ - 1));
  ifr.ifr_data = reinterpret_cast<char*>(&ch);
  if (ioctl(sock, SIOCETHTOOL, &ifr) != 0) return 0;
  return std::max(ch.rx_count, ch.combined_count);
}

Status xskmap_insert(int map_fd, uint32_t queue, int sock) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  uint32_t value = static_cast<uint32_t>(sock);
  attr.map_fd = static_cast<uint32_t>(map_fd);
  attr.key = reinterpret_cast<uintptr_t>(&queue);
  attr.value = reinterpret_cast<uintptr_t>(&value);
  attr.flags = BPF_ANY;
  if (syscall(__NR_bpf, BPF_MAP_UPDATE_ELEM, &attr, sizeof attr) != 0) {
    return sys_error(errno, "xsks_map update (queue " + std::to_string(queue) + ")");
  }
  return {};
}

Result<XskSocket> create_once(const XskSocketConfig& cfg, bool zerocopy) {
  const XskGeometry& g = cfg.geometry;
  char ifname[IF_NAMESIZE] = {};
  if (cfg.ifindex <= 0 || if_indextoname(static_cast<unsigned>(cfg.ifindex), ifname) == nullptr) {
    return make_error(ENODEV,
                      "AF_XDP socket: no interface with index " + std::to_string(cfg.ifindex));
  }
  XskSocket out;
  out.geometry = g;
  out.ifindex = cfg.ifindex;
  out.queue = cfg.queue;
  out.zerocopy = zerocopy;
  out.socket.reset(socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0));
  if (!out.socket.valid()) {
    if (errno == EAFNOSUPPORT) {
      return make_error(EAFNOSUPPORT, "AF_XDP socket: kernel without CONFIG_XDP_SOCKETS");
    }
    return sys_error(errno, "socket(AF_XDP)");
  }
  const int fd = out.socket.get();
  UniqueFd ioctl_sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));  // AF_XDP has no ioctls
  const uint32_t queues = ioctl_sock.valid() ? rx_queue_count(ioctl_sock.get(), ifname) : 0;
  if (queues != 0 && cfg.queue >= queues) {
    return make_error(ENOENT, "AF_XDP socket: " + std::string(ifname) + " has no queue " +
                                  std::to_string(cfg.queue) + " (it has " + std::to_string(queues) +
                                  ")");
  }

  out.umem.reset(memfd_create("smt-umem", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!out.umem.valid()) return sys_error(errno, "memfd_create");
  if (ftruncate(out.umem.get(), static_cast<off_t>(g.umem_len())) != 0) {
    return sys_error(errno, "ftruncate UMEM memfd");
  }
  if (fcntl(out.umem.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return sys_error(errno, "seal UMEM memfd");
  }
  void* area = mmap(nullptr, g.umem_len(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                    out.umem.get(), 0);
  if (area == MAP_FAILED) return sys_error(errno, "mmap UMEM memfd");
  xdp_umem_reg reg;
  std::memset(&reg, 0, sizeof reg);
  reg.addr = reinterpret_cast<uintptr_t>(area);
  reg.len = g.umem_len();
  reg.chunk_size = g.frame_size;
  reg.headroom = 0;
  const int reg_rc = setsockopt(fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg);
  const int reg_errno = errno;
  // The kernel pinned the pages; our mapping is no longer needed.
  munmap(area, g.umem_len());
  if (reg_rc != 0) return sys_error(reg_errno, "XDP_UMEM_REG");

  const struct {
    int opt;
    uint32_t size;
    const char* name;
  } rings[] = {{XDP_UMEM_FILL_RING, g.fill_size, "fill ring"},
               {XDP_UMEM_COMPLETION_RING, g.completion_size, "completion ring"},
               {XDP_RX_RING, g.rx_size, "rx ring"},
               {XDP_TX_RING, g.tx_size, "tx ring"}};
  for (const auto& r : rings) {
    if (setsockopt(fd, SOL_XDP, r.opt, &r.size, sizeof r.size) != 0) {
      return sys_error(errno, std::string("size ") + r.name);
    }
  }

  sockaddr_xdp sxdp;
  std::memset(&sxdp, 0, sizeof sxdp);
  sxdp.sxdp_family = AF_XDP;
  sxdp.sxdp_ifindex = static_cast<uint32_t>(cfg.ifindex);
  sxdp.sxdp_queue_id = cfg.queue;
  sxdp.sxdp_flags = XDP_USE_NEED_WAKEUP | (zerocopy ? XDP_ZEROCOPY : XDP_COPY);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&sxdp), sizeof sxdp) != 0) {
    const int e = errno;
    const std::string where = std::string(ifname) + " queue " + std::to_string(cfg.queue);
    if (zerocopy && (e == EOPNOTSUPP || e == ENOTSUP || e == EINVAL || e == 524 /*ENOTSUPP*/)) {
      return make_error(
          EOPNOTSUPP, "AF_XDP socket: " + where + " does not offer zero-copy: " + std::strerror(e));
    }
    if (e == EBUSY) {
      return make_error(EBUSY, "AF_XDP socket: " + where + " already has a socket bound");
    }
    return sys_error(e, "bind " + where + " (" + xsk_mode_name(zerocopy) + ")");
  }
  xdp_options opts{};
  socklen_t optlen = sizeof opts;
  if (getsockopt(fd, SOL_XDP, XDP_OPTIONS, &opts, &optlen) == 0) {
    out.zerocopy = (opts.flags & XDP_OPTIONS_ZEROCOPY) != 0;
  }
  if (cfg.xsks_map_fd >= 0) {
    if (Status s = xskmap_insert(cfg.xsks_map_fd, cfg.queue, fd); !s) return s.error();
  }
  return out;
}

}  // namespace

Status validate_geometry(const XskGeometry& g) {
  if (g.frame_size != 2048 && g.frame_size != 4096) {
    return make_error(EINVAL, "AF_XDP geometry: frame_size must be 2048 or 4096");
  }
  if (!power_of_two(g.frame_count) || g.frame_count < 2) {
    return make_error(EINVAL, "AF_XDP geometry: frame_count must be a power of two >= 2");
  }
  if (g.umem_len() > kMaxUmem) return make_error(EINVAL, "AF_XDP geometry: UMEM above 1 GiB");
  const struct {
    uint32_t v;
    const char* name;
  } rings[] = {{g.fill_size, "fill_size"},
               {g.completion_size, "completion_size"},
               {g.rx_size, "rx_size"},
               {g.tx_size, "tx_size"}};
  for (const auto& r : rings) {
    if (!power_of_two(r.v) || r.v > kMaxRing) {
      return make_error(
          EINVAL, std::string("AF_XDP geometry: ") + r.name + " must be a power of two <= 32768");
    }
  }
  return {};
}

Result<XskSocket> create_xsk_socket(const XskSocketConfig& cfg) {
  if (Status s = validate_geometry(cfg.geometry); !s) return s.error();
  if (cfg.mode == XskBindMode::kCopy) return create_once(cfg, false);
  auto zc = create_once(cfg, true);
  if (zc.ok() || cfg.mode == XskBindMode::kZeroCopy || zc.error().code != EOPNOTSUPP) return zc;
  return create_once(cfg, false);
}

}  // namespace smt::link
