#include "link/xsk_link.h"

#include <linux/neighbour.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#ifndef SOL_XDP
#define SOL_XDP 283
#endif

namespace smt::link {

namespace {

constexpr uint32_t kMinMtu = 40 + 52 + 1;     // an IPv6 header and a DATA header
constexpr uint32_t kRxHeadroom = 256;         // XDP_PACKET_HEADROOM: received data starts here
constexpr uint32_t kCopyModeKickBudget = 32;  // frames the kernel sends per copy-mode kick

Error sys_error(const std::string& what) {
  const int e = errno;
  return make_error(e, "AF_XDP link: " + what + ": " + std::strerror(e));
}

uint64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

bool is_zero(const Addr& a) { return a == Addr{}; }

}  // namespace

size_t XskLink::AddrHash::operator()(const Addr& a) const {
  uint64_t lo, hi;
  std::memcpy(&lo, a.data(), 8);
  std::memcpy(&hi, a.data() + 8, 8);
  return std::hash<uint64_t>()(lo * 0x9e3779b97f4a7c15ull ^ hi);
}

XskLink::XskLink(XskLinkConfig cfg) : cfg_(std::move(cfg)) {}

XskLink::~XskLink() {
  for (Mapping& m : maps_) {
    if (m.addr != nullptr) munmap(m.addr, m.len);
  }
  if (umem_ != nullptr) munmap(umem_, umem_len_);
}

Result<std::unique_ptr<XskLink>> XskLink::open(XskLinkConfig cfg) {
  if (cfg.protocol == 0 || cfg.protocol == 255) {
    return make_error(EINVAL, "AF_XDP link: IP protocol must be 1..254");
  }
  if (cfg.batch == 0 || cfg.batch > 1024) {
    return make_error(EINVAL, "AF_XDP link: batch must be 1..1024");
  }
  if (cfg.local_v4 && !is_v4_mapped(*cfg.local_v4)) {
    return make_error(EINVAL, "AF_XDP link: local_v4 must be an IPv4-mapped address");
  }
  if (cfg.local_v6 && is_v4_mapped(*cfg.local_v6)) {
    return make_error(EINVAL, "AF_XDP link: local_v6 must be an IPv6 address");
  }
  if (!cfg.xsk.socket.valid() || !cfg.xsk.umem.valid()) {
    return make_error(EBADF, "AF_XDP link: socket and UMEM fds are required");
  }
  if (cfg.max_peers == 0) return make_error(EINVAL, "AF_XDP link: max_peers must be >= 1");
  if (Status s = validate_geometry(cfg.xsk.geometry); !s) return s.error();
  std::unique_ptr<XskLink> link(new XskLink(std::move(cfg)));
  if (Status s = link->init(); !s) return s.error();
  return link;
}

Status XskLink::map_rings() {
  const int fd = cfg_.xsk.socket.get();
  const XskGeometry& g = cfg_.xsk.geometry;
  xdp_mmap_offsets off{};
  socklen_t len = sizeof off;
  if (getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &len) != 0) {
    return sys_error("XDP_MMAP_OFFSETS (is this an AF_XDP socket?)");
  }
  if (len != sizeof off) return make_error(EPROTO, "AF_XDP link: unexpected XDP_MMAP_OFFSETS size");
  const struct {
    const xdp_ring_offset& o;
    uint32_t entries;
    size_t entry_size;
    off_t pgoff;
    const char* name;
  } rings[4] = {
      {off.fr, g.fill_size, sizeof(uint64_t), off_t(XDP_UMEM_PGOFF_FILL_RING), "fill ring"},
      {off.cr, g.completion_size, sizeof(uint64_t), off_t(XDP_UMEM_PGOFF_COMPLETION_RING),
       "completion ring"},
      {off.rx, g.rx_size, sizeof(xdp_desc), off_t(XDP_PGOFF_RX_RING), "rx ring"},
      {off.tx, g.tx_size, sizeof(xdp_desc), off_t(XDP_PGOFF_TX_RING), "tx ring"},
  };
  XskRingMemory mem[4];
  for (int i = 0; i < 4; ++i) {
    const auto& r = rings[i];
    const size_t bytes = r.o.desc + size_t{r.entries} * r.entry_size;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, r.pgoff);
    if (p == MAP_FAILED) {
      return sys_error(std::string("mmap ") + r.name + " (geometry larger than the socket's?)");
    }
    maps_[i] = Mapping{p, bytes};
    auto* base = static_cast<uint8_t*>(p);
    mem[i] =
        XskRingMemory{reinterpret_cast<uint32_t*>(base + r.o.producer),
                      reinterpret_cast<uint32_t*>(base + r.o.consumer),
                      reinterpret_cast<uint32_t*>(base + r.o.flags), base + r.o.desc, r.entries};
  }
  fill_ = ProducerRing<uint64_t>(mem[0]);
  comp_ = ConsumerRing<uint64_t>(mem[1]);
  rx_ = ConsumerRing<xdp_desc>(mem[2]);
  tx_ = ProducerRing<xdp_desc>(mem[3]);
  return {};
}

Status XskLink::init() {
  const XskGeometry& g = cfg_.xsk.geometry;
  const int fd = cfg_.xsk.socket.get();
  struct stat st {};
  if (fstat(cfg_.xsk.umem.get(), &st) != 0) return sys_error("fstat UMEM memfd");
  if (st.st_size < 0 || uint64_t(st.st_size) < g.umem_len()) {
    return make_error(EINVAL, "AF_XDP link: the UMEM memfd is smaller than the geometry says");
  }
  umem_len_ = g.umem_len();
  void* u = mmap(nullptr, umem_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                 cfg_.xsk.umem.get(), 0);
  if (u == MAP_FAILED) return sys_error("mmap UMEM");
  umem_ = static_cast<uint8_t*>(u);
  if (Status s = map_rings(); !s) return s;
  xdp_options opts{};
  socklen_t optlen = sizeof opts;
  if (getsockopt(fd, SOL_XDP, XDP_OPTIONS, &opts, &optlen) == 0) {
    cfg_.xsk.zerocopy = (opts.flags & XDP_OPTIONS_ZEROCOPY) != 0;
  }

  char ifname[IF_NAMESIZE] = {};
  if (if_indextoname(static_cast<unsigned>(cfg_.xsk.ifindex), ifname) == nullptr) {
    return make_error(ENODEV, "AF_XDP link: no interface with index " +
                                  std::to_string(cfg_.xsk.ifindex) + " in this namespace");
  }
  UniqueFd probe(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return sys_error("ioctl socket");
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname, std::strlen(ifname));
  if (ioctl(probe.get(), SIOCGIFHWADDR, &ifr) != 0) return sys_error("SIOCGIFHWADDR");
  if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
    return make_error(EPROTONOSUPPORT,
                      "AF_XDP link: " + std::string(ifname) + " is not an Ethernet interface");
  }
  std::memcpy(own_mac_.data(), ifr.ifr_hwaddr.sa_data, own_mac_.size());
  uint32_t mtu = cfg_.mtu;
  if (mtu == 0) {
    if (ioctl(probe.get(), SIOCGIFMTU, &ifr) != 0) return sys_error("SIOCGIFMTU");
    mtu = static_cast<uint32_t>(ifr.ifr_mtu);
  }
  mtu_ = std::min(mtu, g.frame_size - kRxHeadroom - kEthHeaderLen);
  if (mtu_ < kMinMtu || mtu_ > 65535) {
    return make_error(EINVAL, "AF_XDP link: MTU " + std::to_string(mtu_) + " out of range");
  }

  auto resolver = NeighbourResolver::open();
  if (!resolver) return resolver.error();
  resolver_.emplace(std::move(resolver).value());

  const uint32_t rx_frames = std::min(g.fill_size, g.frame_count / 2);
  const uint32_t tx_frames = std::min(g.frame_count - rx_frames, g.completion_size);
  xstats_.rx_frames = rx_frames;
  xstats_.tx_frames = tx_frames;
  tx_free_.reserve(tx_frames);
  for (uint32_t i = 0; i < tx_frames; ++i) {
    tx_free_.push_back(uint64_t{rx_frames + i} * g.frame_size);
  }
  held_.reserve(std::max(rx_frames, cfg_.batch));
  for (uint32_t i = 0; i < rx_frames; ++i) held_.push_back(uint64_t{i} * g.frame_size);
  recycle_held();
  peers_.reserve(cfg_.max_peers);
  return {};
}

void XskLink::recycle_held() {
  if (held_.empty()) return;
  uint32_t first;
  const uint32_t n = fill_.reserve(static_cast<uint32_t>(held_.size()), &first);
  for (uint32_t i = 0; i < n; ++i) fill_.slot(first + i) = held_[i];
  fill_.submit();
  // The fill ring holds every receive frame, so n is all of them; keep any
  // rest for next time rather than lose a frame.
  held_.erase(held_.begin(), held_.begin() + n);
  if (cfg_.xsk.zerocopy && fill_.needs_wakeup()) {
    recvfrom(cfg_.xsk.socket.get(), nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
    ++xstats_.fill_kicks;
  }
}

void XskLink::reap_completions() {
  uint32_t first;
  const uint32_t n = comp_.peek(comp_.available(), &first);
  if (n == 0) return;
  const uint64_t tx_begin = uint64_t{xstats_.rx_frames} * cfg_.xsk.geometry.frame_size;
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t addr = comp_.slot(first + i);
    // Only addresses we handed out come back; anything else is ignored
    // rather than allowed to alias a frame in use.
    if (addr < tx_begin || addr >= umem_len_ || tx_free_.size() == tx_free_.capacity()) continue;
    tx_free_.push_back(addr & ~uint64_t{cfg_.xsk.geometry.frame_size - 1});
  }
  comp_.release();
}

void XskLink::kick_tx() {
  if (tx_.outstanding() == 0) return;
  // Copy mode sends only inside the syscall; zero-copy only needs a kick
  // when the driver asks for one.
  if (cfg_.xsk.zerocopy && !tx_.needs_wakeup()) return;
  const uint32_t attempts = tx_.outstanding() / kCopyModeKickBudget + 2;
  for (uint32_t k = 0; k < attempts; ++k) {
    const ssize_t r = sendto(cfg_.xsk.socket.get(), nullptr, 0, MSG_DONTWAIT, nullptr, 0);
    ++xstats_.tx_kicks;
    if (tx_.outstanding() == 0) return;
    if (r < 0 && errno != EAGAIN && errno != EINTR && errno != EBUSY) return;  // retried later
  }
}

XskLink::Peer& XskLink::peer_for(const Addr& addr, uint64_t now) const {
  auto it = peers_.find(addr);
  if (it == peers_.end()) {
    if (peers_.size() >= cfg_.max_peers) peers_.erase(peers_.begin());
    it = peers_.emplace(addr, Peer{}).first;
    refresh(addr, &it->second, now);
  } else if (now >= it->second.next_check_ms) {
    refresh(addr, &it->second, now);
  }
  return it->second;
}

void XskLink::refresh(const Addr& addr, Peer* p, uint64_t now) const {
  ++xstats_.neighbour_lookups;
  auto hop = resolver_->resolve(addr);
  if (!hop) {
    const int e = hop.error().code;
    p->path = (e == EADDRNOTAVAIL || e == EPROTONOSUPPORT) ? Path::kElsewhere : Path::kNoRoute;
    p->next_check_ms = now + cfg_.neighbour_retry_ms;
    return;
  }
  p->source = hop->source;
  if (hop->ifindex != cfg_.xsk.ifindex) {
    p->path = Path::kElsewhere;
    p->next_check_ms = now + cfg_.neighbour_refresh_ms;
    return;
  }
  if (hop->has_mac) {
    p->path = Path::kReady;
    p->mac = hop->mac;
    p->next_check_ms = now + cfg_.neighbour_refresh_ms;
  } else {
    p->path = Path::kUnresolved;
    p->next_check_ms = now + cfg_.neighbour_retry_ms;
  }
  // Our frames bypass the kernel's neighbour state machine, so nothing else
  // would confirm a stale entry or keep it from being collected.
  constexpr uint16_t kConfirmed = NUD_REACHABLE | NUD_PERMANENT | NUD_NOARP;
  if (trigger_allowed_ && (hop->nud_state & kConfirmed) == 0) {
    ++xstats_.neighbour_triggers;
    Status s = resolver_->trigger(hop->ifindex, hop->via);
    if (!s && s.error().code == EPERM) trigger_allowed_ = false;
  }
}

bool XskLink::has_next_hop(const Addr& peer) {
  return peer_for(peer, now_ms()).path == Path::kReady;
}

Addr XskLink::local_addr(const Addr& peer) const {
  const bool v4 = is_v4_mapped(peer);
  if (v4 && cfg_.local_v4) return *cfg_.local_v4;
  if (!v4 && cfg_.local_v6) return *cfg_.local_v6;
  const Peer& p = peer_for(peer, now_ms());
  return p.path == Path::kNoRoute ? Addr{} : p.source;
}

size_t XskLink::tx_room() const {
  const size_t frames = tx_free_.size() + comp_.available();
  return std::min<size_t>(tx_.free_entries(), frames);
}

size_t XskLink::send(std::span<const TxPacket> pkts) {
  if (pkts.empty()) return 0;
  const uint64_t now = now_ms();
  reap_completions();
  uint32_t queued = 0;
  size_t i = 0;
  for (; i < pkts.size(); ++i) {
    const TxPacket& p = pkts[i];
    if (p.tso_mss != 0) {
      ++stats_.tx_errors;  // refused, not taken
      break;
    }
    if (p.data == nullptr || p.len == 0 || ip_header_len(p.peer) + uint64_t{p.len} > mtu_) {
      ++stats_.tx_errors;
      continue;
    }
    const Peer& peer = peer_for(p.peer, now);
    if (peer.path == Path::kNoRoute) {
      ++stats_.tx_errors;
      ++xstats_.no_route;
      continue;
    }
    if (peer.path != Path::kReady) {
      if (cfg_.fallback == nullptr) {
        ++stats_.tx_errors;
        continue;
      }
      if (cfg_.fallback->send(std::span<const TxPacket>(&p, 1)) == 0) break;  // full: later
      ++xstats_.fallback_tx_packets;
      continue;
    }
    const bool v4 = is_v4_mapped(p.peer);
    const Addr& src = v4 ? (cfg_.local_v4 ? *cfg_.local_v4 : peer.source)
                         : (cfg_.local_v6 ? *cfg_.local_v6 : peer.source);
    if (is_zero(src)) {
      ++stats_.tx_errors;
      ++xstats_.no_route;
      continue;
    }
    if (tx_free_.empty()) reap_completions();
    if (tx_free_.empty()) break;
    uint32_t slot;
    if (tx_.reserve(1, &slot) == 0) break;
    const uint64_t addr = tx_free_.back();
    tx_free_.pop_back();
    uint8_t* frame = umem_ + addr;
    const FrameAddressing fa{peer.mac, own_mac_, src, p.peer};
    const uint32_t hdr = build_frame_headers(frame, fa, cfg_.protocol, p.priority, p.len, ip_id_++);
    // hdr + len <= 14 + mtu_ <= frame_size by construction of mtu_.
    std::memcpy(frame + hdr, p.data, p.len);
    xdp_desc& d = tx_.slot(slot);
    d.addr = addr;
    d.len = hdr + p.len;
    d.options = 0;
    ++queued;
    ++stats_.tx_packets;
    stats_.tx_bytes += p.len;
    if (p.len > 13 && p.data[13] == SMT_TYPE_DATA) ++stats_.tx_data_packets;
  }
  if (queued > 0) tx_.submit();
  kick_tx();
  return i;
}

size_t XskLink::receive(std::span<RxPacket> out) {
  recycle_held();  // the previous batch's views end here
  kick_tx();
  reap_completions();
  const uint32_t limit = static_cast<uint32_t>(std::min<size_t>(out.size(), cfg_.batch));
  uint32_t first;
  const uint32_t n = rx_.peek(limit, &first);
  const uint64_t frame_size = cfg_.xsk.geometry.frame_size;
  size_t got = 0;
  for (uint32_t k = 0; k < n; ++k) {
    const xdp_desc d = rx_.slot(first + k);
    if (d.addr >= umem_len_) {
      ++stats_.rx_dropped;  // not a frame of ours: nothing to recycle
      ++xstats_.rx_bad_desc;
      continue;
    }
    const uint64_t base = d.addr & ~(frame_size - 1);
    held_.push_back(base);
    if (d.addr - base + d.len > frame_size) {
      ++stats_.rx_dropped;
      ++xstats_.rx_bad_desc;
      continue;
    }
    ParsedFrame pf;
    uint8_t* frame = umem_ + d.addr;
    if (parse_frame(frame, d.len, own_mac_, cfg_.protocol, &pf) != FrameVerdict::kOk) {
      ++stats_.rx_dropped;
      continue;
    }
    RxPacket& o = out[got++];
    o.data = frame + pf.smt_offset;
    o.len = pf.smt_len;
    o.peer = pf.src;
    o.local = pf.dst;
    o.queue = cfg_.xsk.queue;
    ++stats_.rx_packets;
    stats_.rx_bytes += pf.smt_len;
  }
  if (n > 0) rx_.release();
  return got;
}

XskLinkStats XskLink::xsk_stats() const {
  XskLinkStats s = xstats_;
  s.zerocopy = cfg_.xsk.zerocopy;
  xdp_statistics k{};
  socklen_t len = sizeof k;
  if (getsockopt(cfg_.xsk.socket.get(), SOL_XDP, XDP_STATISTICS, &k, &len) == 0) {
    s.kernel_rx_dropped = k.rx_dropped;
    s.kernel_rx_ring_full = k.rx_ring_full;
    s.kernel_fill_ring_empty = k.rx_fill_ring_empty_descs;
    s.kernel_rx_invalid_descs = k.rx_invalid_descs;
    s.kernel_tx_invalid_descs = k.tx_invalid_descs;
  }
  return s;
}

}  // namespace smt::link
