#include "link/neighbour.h"

#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>

namespace smt::link {

namespace {

// The kernel's NUD_VALID (include/net/neighbour.h), not in the uapi headers.
constexpr uint16_t kNudValid =
    NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY;

// One request: header, family message, room for one address attribute.
struct alignas(NLMSG_ALIGNTO) Request {
  nlmsghdr hdr;
  uint8_t body[256];
};

uint8_t family_of(const Addr& a) { return is_v4_mapped(a) ? AF_INET : AF_INET6; }

template <typename Msg>
Msg* start(Request* r, uint16_t type, uint16_t flags) {
  std::memset(r, 0, sizeof *r);
  r->hdr.nlmsg_len = NLMSG_LENGTH(sizeof(Msg));
  r->hdr.nlmsg_type = type;
  r->hdr.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
  return reinterpret_cast<Msg*>(NLMSG_DATA(&r->hdr));
}

void add_addr(Request* r, uint16_t type, const Addr& a) {
  const bool v4 = is_v4_mapped(a);
  const uint16_t n = v4 ? 4 : 16;
  auto* rta = reinterpret_cast<rtattr*>(reinterpret_cast<uint8_t*>(&r->hdr) +
                                        NLMSG_ALIGN(r->hdr.nlmsg_len));
  rta->rta_type = type;
  rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(n));
  std::memcpy(RTA_DATA(rta), v4 ? a.data() + 12 : a.data(), n);
  r->hdr.nlmsg_len = NLMSG_ALIGN(r->hdr.nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

// An address attribute of the family's exact size, as an Addr.
bool read_addr(const rtattr* rta, bool v4, Addr* out) {
  const size_t n = RTA_PAYLOAD(rta);
  if (n != (v4 ? 4u : 16u)) return false;
  *out = Addr{};
  if (v4) {
    (*out)[10] = 0xff;
    (*out)[11] = 0xff;
    std::memcpy(out->data() + 12, RTA_DATA(rta), 4);
  } else {
    std::memcpy(out->data(), RTA_DATA(rta), 16);
  }
  return true;
}

Error proto_error(const char* what) {
  return make_error(EPROTO, std::string("neighbour: malformed netlink reply: ") + what);
}

}  // namespace

NeighbourResolver::NeighbourResolver(UniqueFd fd) : fd_(std::move(fd)) {}

Result<NeighbourResolver> NeighbourResolver::open() {
  UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd.valid()) {
    return make_error(errno, std::string("neighbour: netlink socket: ") + std::strerror(errno));
  }
  // The kernel answers at once; the timeout only bounds a broken exchange.
  timeval tv{1, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
    return make_error(errno, std::string("neighbour: netlink bind: ") + std::strerror(errno));
  }
  return NeighbourResolver(std::move(fd));
}

Result<size_t> NeighbourResolver::transact(void* req, uint32_t len) {
  auto* hdr = static_cast<nlmsghdr*>(req);
  hdr->nlmsg_seq = ++seq_;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd_.get(), req, len, 0, reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel) !=
      static_cast<ssize_t>(len)) {
    return make_error(errno, std::string("neighbour: netlink send: ") + std::strerror(errno));
  }
  // Skip answers to earlier requests (a timed-out exchange) until ours.
  for (int tries = 0; tries < 16; ++tries) {
    sockaddr_nl from{};
    socklen_t fromlen = sizeof from;
    const ssize_t n = recvfrom(fd_.get(), buf_.data(), buf_.size(), 0,
                               reinterpret_cast<sockaddr*>(&from), &fromlen);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(errno, std::string("neighbour: netlink receive: ") + std::strerror(errno));
    }
    if (from.nl_pid != 0) continue;  // only the kernel answers
    const auto* h = reinterpret_cast<const nlmsghdr*>(buf_.data());
    // Later reads stay inside nlmsg_len, which must fit what arrived.
    if (size_t(n) < sizeof(nlmsghdr) || h->nlmsg_len < sizeof(nlmsghdr) ||
        h->nlmsg_len > size_t(n)) {
      return proto_error("short message");
    }
    if (h->nlmsg_seq != seq_) continue;
    return static_cast<size_t>(n);
  }
  return make_error(EPROTO, "neighbour: no netlink answer to our request");
}

Result<NextHop> NeighbourResolver::resolve(const Addr& dst) {
  const bool v4 = is_v4_mapped(dst);
  Request req;
  rtmsg* rtm = start<rtmsg>(&req, RTM_GETROUTE, 0);
  rtm->rtm_family = family_of(dst);
  rtm->rtm_dst_len = v4 ? 32 : 128;
  add_addr(&req, RTA_DST, dst);
  auto got = transact(&req, req.hdr.nlmsg_len);
  if (!got) return got.error();
  const auto* h = reinterpret_cast<const nlmsghdr*>(buf_.data());
  if (h->nlmsg_type == NLMSG_ERROR) {
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return proto_error("short error");
    const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
    const int code = e->error < 0 ? -e->error : EPROTO;
    return make_error(code, std::string("neighbour: no route: ") + std::strerror(code));
  }
  if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) {
    return proto_error("not a route");
  }
  const auto* r = static_cast<const rtmsg*>(NLMSG_DATA(h));
  if (r->rtm_family != family_of(dst)) return proto_error("route family");
  if (r->rtm_type != RTN_UNICAST) {
    return make_error(EADDRNOTAVAIL, "neighbour: the route is not unicast (type " +
                                         std::to_string(r->rtm_type) + ")");
  }
  NextHop hop;
  hop.via = dst;
  int attr_len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(rtmsg)));
  for (const rtattr* a = RTM_RTA(r); RTA_OK(a, attr_len); a = RTA_NEXT(a, attr_len)) {
    switch (a->rta_type) {
      case RTA_OIF:
        if (RTA_PAYLOAD(a) != sizeof(uint32_t)) return proto_error("RTA_OIF size");
        uint32_t oif;
        std::memcpy(&oif, RTA_DATA(a), sizeof oif);
        hop.ifindex = static_cast<int>(oif);
        break;
      case RTA_GATEWAY:
        if (!read_addr(a, v4, &hop.via)) return proto_error("RTA_GATEWAY size");
        break;
      case RTA_PREFSRC:
        if (!read_addr(a, v4, &hop.source)) return proto_error("RTA_PREFSRC size");
        break;
      case RTA_VIA:
        return make_error(EPROTONOSUPPORT, "neighbour: a gateway of another family");
      default:
        break;
    }
  }
  if (hop.ifindex <= 0) return proto_error("no output interface");
  if (Status s = lookup_neighbour(&hop); !s) return s.error();
  return hop;
}

Status NeighbourResolver::lookup_neighbour(NextHop* hop) {
  Request req;
  ndmsg* nd = start<ndmsg>(&req, RTM_GETNEIGH, 0);
  nd->ndm_family = family_of(hop->via);
  nd->ndm_ifindex = hop->ifindex;
  add_addr(&req, NDA_DST, hop->via);
  auto got = transact(&req, req.hdr.nlmsg_len);
  if (!got) return got.error();
  const auto* h = reinterpret_cast<const nlmsghdr*>(buf_.data());
  if (h->nlmsg_type == NLMSG_ERROR) {
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return proto_error("short error");
    const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
    if (e->error == -ENOENT) return {};  // no entry yet
    const int code = e->error < 0 ? -e->error : EPROTO;
    return make_error(code, std::string("neighbour: lookup: ") + std::strerror(code));
  }
  if (h->nlmsg_type != RTM_NEWNEIGH || h->nlmsg_len < NLMSG_LENGTH(sizeof(ndmsg))) {
    return proto_error("not a neighbour");
  }
  const auto* n = static_cast<const ndmsg*>(NLMSG_DATA(h));
  if (n->ndm_family != family_of(hop->via) || n->ndm_ifindex != hop->ifindex) {
    return proto_error("neighbour of another family or interface");
  }
  hop->nud_state = n->ndm_state;
  bool have_lladdr = false;
  MacAddr mac{};
  int attr_len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ndmsg)));
  const auto* first = reinterpret_cast<const rtattr*>(reinterpret_cast<const uint8_t*>(n) +
                                                      NLMSG_ALIGN(sizeof(ndmsg)));
  for (const rtattr* a = first; RTA_OK(a, attr_len); a = RTA_NEXT(a, attr_len)) {
    if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == mac.size()) {
      std::memcpy(mac.data(), RTA_DATA(a), mac.size());
      have_lladdr = true;
    }
  }
  const bool zero = mac == MacAddr{};
  hop->has_mac = have_lladdr && !zero && (n->ndm_state & kNudValid) != 0;
  if (hop->has_mac) hop->mac = mac;
  return {};
}

Status NeighbourResolver::trigger(int ifindex, const Addr& via) {
  Request req;
  ndmsg* nd = start<ndmsg>(&req, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_ACK);
  nd->ndm_family = family_of(via);
  nd->ndm_ifindex = ifindex;
  nd->ndm_state = NUD_NONE;
  nd->ndm_flags = NTF_USE;
  add_addr(&req, NDA_DST, via);
  auto got = transact(&req, req.hdr.nlmsg_len);
  if (!got) return got.error();
  const auto* h = reinterpret_cast<const nlmsghdr*>(buf_.data());
  if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
    return proto_error("no acknowledgement");
  }
  const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
  if (e->error != 0) {
    const int code = -e->error;
    return make_error(code, std::string("neighbour: trigger resolution: ") + std::strerror(code) +
                                (code == EPERM ? " (needs CAP_NET_ADMIN)" : ""));
  }
  return {};
}

}  // namespace smt::link
