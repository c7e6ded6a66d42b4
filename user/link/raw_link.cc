#include "link/raw_link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/bytes.h"

// From linux/in.h and linux/in6.h (Linux 4.10+); glibc does not name them.
#ifndef IP_RECVFRAGSIZE
#define IP_RECVFRAGSIZE 25
#endif
#ifndef IPV6_RECVFRAGSIZE
#define IPV6_RECVFRAGSIZE 77
#endif

namespace smt::link {

namespace {

constexpr size_t kBufSize = 65536;         // any IP datagram, so none is truncated
constexpr uint32_t kMinMtu = 40 + 52 + 1;  // an IPv6 header and a DATA header
constexpr uint32_t kIpv4HeaderMin = 20;

struct alignas(cmsghdr) ControlBuf {
  uint8_t bytes[128];
};

Error sys_error(const std::string& what) {
  const int e = errno;
  if (e == EPERM || e == EACCES) {
    return make_error(e, "raw link: " + what + ": raw socket needs CAP_NET_RAW");
  }
  return make_error(e, "raw link: " + what + ": " + std::strerror(e));
}

Addr mapped_v4(const uint8_t* ip4) {
  Addr a{};
  a[10] = 0xff;
  a[11] = 0xff;
  std::memcpy(a.data() + 12, ip4, 4);
  return a;
}

sockaddr_in to_sin(const Addr& a) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  std::memcpy(&s.sin_addr, a.data() + 12, 4);
  return s;
}

sockaddr_in6 to_sin6(const Addr& a) {
  sockaddr_in6 s{};
  s.sin6_family = AF_INET6;
  std::memcpy(&s.sin6_addr, a.data(), 16);
  return s;
}

bool set_int(int fd, int level, int opt, int v) {
  return setsockopt(fd, level, opt, &v, sizeof v) == 0;
}

}  // namespace

struct RawLink::Batch {
  explicit Batch(size_t n) : bufs(n * kBufSize), msgs(n), iovs(n), names(n), ctrl(n), tos(n) {}
  std::vector<uint8_t> bufs;
  std::vector<mmsghdr> msgs;
  std::vector<iovec> iovs;
  std::vector<sockaddr_in6> names;  // large enough for sockaddr_in too
  std::vector<ControlBuf> ctrl;
  std::vector<int> tos;
  uint8_t* buf(size_t i) { return bufs.data() + i * kBufSize; }
};

RawLink::RawLink(const RawLinkConfig& cfg) : cfg_(cfg) {}

RawLink::~RawLink() = default;

Result<RawLinkConfig> RawLink::check_config(const RawLinkConfig& in) {
  RawLinkConfig cfg = in;
  if (cfg.protocol == 0 || cfg.protocol == IPPROTO_RAW) {
    return make_error(EINVAL, "raw link: IP protocol must be 1..254");
  }
  if (cfg.local_v4) {
    if (!is_v4_mapped(*cfg.local_v4)) {
      return make_error(EINVAL, "raw link: local_v4 must be an IPv4-mapped address");
    }
    cfg.ipv4 = true;
  }
  if (cfg.local_v6) {
    if (is_v4_mapped(*cfg.local_v6)) {
      return make_error(EINVAL, "raw link: local_v6 must be an IPv6 address");
    }
    cfg.ipv6 = true;
  }
  if (!cfg.ipv4 && !cfg.ipv6) return make_error(EINVAL, "raw link: no address family enabled");
  if (cfg.batch == 0 || cfg.batch > 1024) {
    return make_error(EINVAL, "raw link: batch must be 1..1024");
  }
  if (cfg.device.size() >= IFNAMSIZ) return make_error(EINVAL, "raw link: device name too long");
  return cfg;
}

Result<std::unique_ptr<RawLink>> RawLink::open(const RawLinkConfig& in) {
  auto cfg = check_config(in);
  if (!cfg) return cfg.error();
  std::unique_ptr<RawLink> link(new RawLink(*cfg));
  if (Status s = link->init(UniqueFd(), UniqueFd(), false); !s) return s.error();
  return link;
}

Result<std::unique_ptr<RawLink>> RawLink::adopt(const RawLinkConfig& in, UniqueFd v4,
                                                UniqueFd v6) {
  RawLinkConfig want = in;
  want.ipv4 = v4.valid();
  want.ipv6 = v6.valid();
  if (!want.ipv4) want.local_v4.reset();
  if (!want.ipv6) want.local_v6.reset();
  auto cfg = check_config(want);
  if (!cfg) return cfg.error();
  std::unique_ptr<RawLink> link(new RawLink(*cfg));
  if (Status s = link->init(std::move(v4), std::move(v6), true); !s) return s.error();
  return link;
}

Status RawLink::init(UniqueFd adopt_v4, UniqueFd adopt_v6, bool adopted) {
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) return sys_error("epoll_create1");
  for (const bool v4 : {true, false}) {
    if (v4 ? !cfg_.ipv4 : !cfg_.ipv6) continue;
    const int family = v4 ? AF_INET : AF_INET6;
    UniqueFd s;
    if (adopted) {
      s = std::move(v4 ? adopt_v4 : adopt_v6);
      int domain = -1, type = -1, proto = -1;
      socklen_t len = sizeof(int);
      getsockopt(s.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len);
      len = sizeof(int);
      getsockopt(s.get(), SOL_SOCKET, SO_TYPE, &type, &len);
      len = sizeof(int);
      getsockopt(s.get(), SOL_SOCKET, SO_PROTOCOL, &proto, &len);
      if (domain != family || type != SOCK_RAW || proto != cfg_.protocol) {
        return make_error(EINVAL, std::string("raw link: the adopted ") +
                                      (v4 ? "IPv4" : "IPv6") + " fd is not a raw socket of " +
                                      "protocol " + std::to_string(cfg_.protocol));
      }
      const int fl = fcntl(s.get(), F_GETFL);
      if (fl < 0 || fcntl(s.get(), F_SETFL, fl | O_NONBLOCK) != 0) return sys_error("fcntl");
    } else {
      s.reset(socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, cfg_.protocol));
      if (!s.valid()) return sys_error(v4 ? "AF_INET raw socket" : "AF_INET6 raw socket");
    }
    bool ok;
    if (v4) {
      ok = set_int(s.get(), IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO) &&
           set_int(s.get(), IPPROTO_IP, IP_RECVFRAGSIZE, 1);
    } else {
      ok = set_int(s.get(), IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO) &&
           set_int(s.get(), IPPROTO_IPV6, IPV6_DONTFRAG, 1) &&
           set_int(s.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, 1) &&
           set_int(s.get(), IPPROTO_IPV6, IPV6_RECVFRAGSIZE, 1);
    }
    if (!ok) return sys_error("setsockopt (DF, pktinfo, fragsize)");
    if (!adopted && !cfg_.device.empty() &&
        setsockopt(s.get(), SOL_SOCKET, SO_BINDTODEVICE, cfg_.device.c_str(),
                   static_cast<socklen_t>(cfg_.device.size())) != 0) {
      return sys_error("SO_BINDTODEVICE " + cfg_.device);
    }
    if (v4 && cfg_.local_v4 && !adopted) {
      const sockaddr_in sin = to_sin(*cfg_.local_v4);
      if (bind(s.get(), reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0) {
        return sys_error("bind IPv4");
      }
    }
    if (!v4 && cfg_.local_v6 && !adopted) {
      const sockaddr_in6 sin6 = to_sin6(*cfg_.local_v6);
      if (bind(s.get(), reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6) != 0) {
        return sys_error("bind IPv6");
      }
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = v4 ? 4 : 6;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, s.get(), &ev) != 0) return sys_error("epoll_ctl");
    UniqueFd route(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!route.valid()) return sys_error("route lookup socket");
    if (!cfg_.device.empty()) {
      // Best effort: route lookups then match the device the raw socket uses.
      setsockopt(route.get(), SOL_SOCKET, SO_BINDTODEVICE, cfg_.device.c_str(),
                 static_cast<socklen_t>(cfg_.device.size()));
    }
    (v4 ? sock4_ : sock6_) = std::move(s);
    (v4 ? route4_ : route6_) = std::move(route);
  }
  mtu_ = cfg_.mtu;
  if (mtu_ == 0 && !cfg_.device.empty()) {
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, cfg_.device.c_str(), cfg_.device.size());
    const int fd = sock4_.valid() ? sock4_.get() : sock6_.get();
    if (ioctl(fd, SIOCGIFMTU, &ifr) != 0) return sys_error("SIOCGIFMTU " + cfg_.device);
    mtu_ = static_cast<uint32_t>(ifr.ifr_mtu);
  }
  if (mtu_ == 0) mtu_ = 1500;
  if (mtu_ < kMinMtu || mtu_ > 65535) {
    return make_error(EINVAL, "raw link: MTU " + std::to_string(mtu_) + " out of range");
  }
  batch_ = std::make_unique<Batch>(cfg_.batch);
  return {};
}

Addr RawLink::local_addr(const Addr& peer) const {
  const bool v4 = is_v4_mapped(peer);
  if (v4 && cfg_.local_v4) return *cfg_.local_v4;
  if (!v4 && cfg_.local_v6) return *cfg_.local_v6;
  const int fd = v4 ? route4_.get() : route6_.get();
  if (fd < 0) return Addr{};
  // Connecting a UDP socket sends nothing; it makes the kernel pick a source.
  sockaddr_in6 name{};
  socklen_t len;
  int rc;
  if (v4) {
    sockaddr_in sin = to_sin(peer);
    sin.sin_port = htons(9);
    rc = connect(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
    len = sizeof(sockaddr_in);
  } else {
    sockaddr_in6 sin6 = to_sin6(peer);
    sin6.sin6_port = htons(9);
    rc = connect(fd, reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
    len = sizeof(sockaddr_in6);
  }
  if (rc != 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&name), &len) != 0) return Addr{};
  if (v4)
    return mapped_v4(
        reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(&name)->sin_addr));
  Addr a;
  std::memcpy(a.data(), &name.sin6_addr, 16);
  return a;
}

size_t RawLink::send(std::span<const TxPacket> pkts) {
  size_t i = 0;
  while (i < pkts.size()) {
    const TxPacket& p = pkts[i];
    if (p.tso_mss != 0) {
      ++stats_.tx_errors;  // refused, not taken: see the header
      return i;
    }
    const bool v4 = is_v4_mapped(p.peer);
    if (p.data == nullptr || p.len == 0 || !(v4 ? sock4_ : sock6_).valid()) {
      ++stats_.tx_errors;
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < pkts.size() && j - i < cfg_.batch && pkts[j].tso_mss == 0 && pkts[j].len != 0 &&
           pkts[j].data != nullptr && is_v4_mapped(pkts[j].peer) == v4) {
      ++j;
    }
    const size_t done = send_run(pkts.subspan(i, j - i), v4);
    if (done < j - i) return i + done;  // the socket queue is full
    i = j;
  }
  return i;
}

size_t RawLink::send_run(std::span<const TxPacket> run, bool v4) {
  Batch& b = *batch_;
  for (size_t k = 0; k < run.size(); ++k) {
    const TxPacket& p = run[k];
    mmsghdr& m = b.msgs[k];
    m = mmsghdr{};
    b.iovs[k] = iovec{const_cast<uint8_t*>(p.data), p.len};
    m.msg_hdr.msg_iov = &b.iovs[k];
    m.msg_hdr.msg_iovlen = 1;
    if (v4) {
      const sockaddr_in sin = to_sin(p.peer);
      std::memcpy(&b.names[k], &sin, sizeof sin);
      m.msg_hdr.msg_namelen = sizeof sin;
    } else {
      b.names[k] = to_sin6(p.peer);
      m.msg_hdr.msg_namelen = sizeof(sockaddr_in6);
    }
    m.msg_hdr.msg_name = &b.names[k];
    // DSCP = priority << 3, so the TOS / traffic class byte is priority << 5.
    const int tos = std::min<int>(p.priority, SMT_PRIORITY_MAX) << 5;
    m.msg_hdr.msg_control = b.ctrl[k].bytes;
    m.msg_hdr.msg_controllen = CMSG_SPACE(sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr);
    c->cmsg_level = v4 ? IPPROTO_IP : IPPROTO_IPV6;
    c->cmsg_type = v4 ? IP_TOS : IPV6_TCLASS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &tos, sizeof tos);
  }
  const int fd = v4 ? sock4_.get() : sock6_.get();
  size_t off = 0;
  while (off < run.size()) {
    const int r =
        sendmmsg(fd, b.msgs.data() + off, static_cast<unsigned>(run.size() - off), MSG_DONTWAIT);
    if (r > 0) {
      for (size_t k = off; k < off + static_cast<size_t>(r); ++k) {
        ++stats_.tx_packets;
        stats_.tx_bytes += run[k].len;
        if (run[k].len > 13 && run[k].data[13] == SMT_TYPE_DATA) ++stats_.tx_data_packets;
      }
      off += static_cast<size_t>(r);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) break;
    ++stats_.tx_errors;  // EMSGSIZE (DF), no route, ...: the packet is consumed
    ++off;
  }
  return off;
}

size_t RawLink::receive(std::span<RxPacket> out) {
  const size_t limit = std::min<size_t>(out.size(), cfg_.batch);
  const bool v4_first = !v6_first_;
  v6_first_ = !v6_first_;
  size_t got = 0;
  size_t next_buf = 0;
  for (const bool v4 : {v4_first, !v4_first}) {
    const int fd = v4 ? sock4_.get() : sock6_.get();
    if (fd < 0) continue;
    int errors = 0;
    while (got < limit && next_buf < cfg_.batch) {
      Batch& b = *batch_;
      const size_t want = std::min(limit - got, cfg_.batch - next_buf);
      for (size_t k = 0; k < want; ++k) {
        mmsghdr& m = b.msgs[k];
        m = mmsghdr{};
        b.iovs[k] = iovec{b.buf(next_buf + k), kBufSize};
        m.msg_hdr.msg_iov = &b.iovs[k];
        m.msg_hdr.msg_iovlen = 1;
        m.msg_hdr.msg_name = &b.names[k];
        m.msg_hdr.msg_namelen = sizeof(sockaddr_in6);
        m.msg_hdr.msg_control = b.ctrl[k].bytes;
        m.msg_hdr.msg_controllen = sizeof b.ctrl[k].bytes;
      }
      const int r = recvmmsg(fd, b.msgs.data(), static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
      if (r < 0) {
        if (errno == EINTR) continue;
        // A pending socket error (e.g. an ICMP report) is returned once.
        if (errno != EAGAIN && errno != EWOULDBLOCK && ++errors < 2) continue;
        break;
      }
      for (size_t k = 0; k < static_cast<size_t>(r); ++k) {
        const mmsghdr& m = b.msgs[k];
        const size_t buf = next_buf + k;
        bool reassembled = false;
        bool have_dst = false;
        Addr dst{};
        for (cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr); c != nullptr;
             c = CMSG_NXTHDR(const_cast<msghdr*>(&m.msg_hdr), c)) {
          if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVFRAGSIZE) ||
              (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVFRAGSIZE)) {
            reassembled = true;
          } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                     c->cmsg_len >= CMSG_LEN(sizeof(in6_pktinfo))) {
            in6_pktinfo pi;
            std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
            std::memcpy(dst.data(), &pi.ipi6_addr, 16);
            have_dst = true;
          }
        }
        const bool truncated = (m.msg_hdr.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
        RxPacket& o = out[got];
        bool ok;
        if (truncated) {
          ok = false;
        } else if (v4) {
          ok = accept_v4(buf, m.msg_len, reassembled, &o);
        } else {
          const auto* src = reinterpret_cast<const sockaddr_in6*>(m.msg_hdr.msg_name);
          ok = !reassembled && have_dst && m.msg_len > 0 &&
               m.msg_hdr.msg_namelen >= sizeof(sockaddr_in6) && src->sin6_family == AF_INET6;
          if (ok) {
            o.data = b.buf(buf);
            o.len = m.msg_len;
            std::memcpy(o.peer.data(), &src->sin6_addr, 16);
            o.local = dst;
            o.queue = 0;
          }
        }
        if (!ok) {
          ++stats_.rx_dropped;
          continue;
        }
        ++stats_.rx_packets;
        stats_.rx_bytes += o.len;
        ++got;
      }
      next_buf += static_cast<size_t>(r);
      if (static_cast<size_t>(r) < want) break;  // drained
    }
  }
  return got;
}

bool RawLink::accept_v4(size_t buf, size_t n, bool reassembled, RxPacket* out) {
  // The kernel hands IPv4 raw sockets the IP header: bounds first, then meaning.
  const uint8_t* ip = batch_->buf(buf);
  if (n < kIpv4HeaderMin || reassembled) return false;
  const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
  if ((ip[0] >> 4) != 4 || ihl < kIpv4HeaderMin || ihl > n) return false;
  if (load_be16(ip + 2) != n) return false;
  if ((load_be16(ip + 6) & 0x3fff) != 0) return false;  // MF or a fragment offset
  if (ip[9] != cfg_.protocol) return false;
  if (n == ihl) return false;  // no SMT header at all
  out->data = batch_->buf(buf) + ihl;
  out->len = static_cast<uint32_t>(n - ihl);
  out->peer = mapped_v4(ip + 12);
  out->local = mapped_v4(ip + 16);
  out->queue = 0;
  return true;
}

}  // namespace smt::link
