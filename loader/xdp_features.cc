#include "loader/xdp_features.h"

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/unique_fd.h"

namespace smt::loader {
namespace {

// From the netdev family's spec (not in Debian 12's 6.1 uapi headers).
constexpr const char* kNetdevFamily = "netdev";
constexpr uint8_t kNetdevCmdDevGet = 1;
constexpr uint16_t kNetdevAttrIfindex = 1;
constexpr uint16_t kNetdevAttrXdpFeatures = 3;
constexpr uint16_t kNetdevAttrXdpZcMaxSegs = 4;

struct Request {
  std::vector<uint8_t> buf;

  Request(uint16_t type, uint8_t cmd) {
    buf.resize(NLMSG_HDRLEN + GENL_HDRLEN);
    auto* nh = reinterpret_cast<nlmsghdr*>(buf.data());
    nh->nlmsg_type = type;
    nh->nlmsg_flags = NLM_F_REQUEST;
    nh->nlmsg_seq = 1;
    auto* gh = reinterpret_cast<genlmsghdr*>(buf.data() + NLMSG_HDRLEN);
    gh->cmd = cmd;
    gh->version = 1;
  }
  void attr(uint16_t type, const void* data, size_t len) {
    const size_t at = buf.size();
    buf.resize(at + NLA_ALIGN(NLA_HDRLEN + len));
    auto* a = reinterpret_cast<nlattr*>(buf.data() + at);
    a->nla_type = type;
    a->nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
    std::memcpy(buf.data() + at + NLA_HDRLEN, data, len);
  }
  std::vector<uint8_t>& done() {
    reinterpret_cast<nlmsghdr*>(buf.data())->nlmsg_len = static_cast<uint32_t>(buf.size());
    return buf;
  }
};

// Sends one request and returns the first reply's attributes (bounds checked).
Result<std::vector<std::pair<uint16_t, std::vector<uint8_t>>>> call(int fd,
                                                                     std::vector<uint8_t>& req) {
  if (::send(fd, req.data(), req.size(), 0) != static_cast<ssize_t>(req.size())) {
    return make_error(errno, std::string("netlink send: ") + std::strerror(errno));
  }
  std::vector<uint8_t> buf(8192);
  const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
  if (n < 0) return make_error(errno, std::string("netlink recv: ") + std::strerror(errno));
  const size_t len = static_cast<size_t>(n);
  if (len < NLMSG_HDRLEN) return make_error(EPROTO, "short netlink reply");
  const auto* nh = reinterpret_cast<const nlmsghdr*>(buf.data());
  if (nh->nlmsg_len < NLMSG_HDRLEN || nh->nlmsg_len > len) {
    return make_error(EPROTO, "malformed netlink reply");
  }
  if (nh->nlmsg_type == NLMSG_ERROR) {
    if (nh->nlmsg_len < NLMSG_HDRLEN + sizeof(nlmsgerr)) {
      return make_error(EPROTO, "short netlink error");
    }
    const auto* e = reinterpret_cast<const nlmsgerr*>(buf.data() + NLMSG_HDRLEN);
    return make_error(-e->error, std::strerror(-e->error));
  }
  std::vector<std::pair<uint16_t, std::vector<uint8_t>>> attrs;
  size_t off = NLMSG_HDRLEN + GENL_HDRLEN;
  while (off + NLA_HDRLEN <= nh->nlmsg_len) {
    nlattr a;
    std::memcpy(&a, buf.data() + off, sizeof a);
    if (a.nla_len < NLA_HDRLEN || off + a.nla_len > nh->nlmsg_len) break;
    attrs.push_back({static_cast<uint16_t>(a.nla_type & NLA_TYPE_MASK),
                     std::vector<uint8_t>(buf.begin() + static_cast<long>(off + NLA_HDRLEN),
                                          buf.begin() + static_cast<long>(off + a.nla_len))});
    off += NLA_ALIGN(a.nla_len);
  }
  return attrs;
}

}  // namespace

Result<XdpFeatures> query_xdp_features(int ifindex) {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC));
  if (!fd) return make_error(errno, std::string("netlink socket: ") + std::strerror(errno));
  Request family(GENL_ID_CTRL, CTRL_CMD_GETFAMILY);
  family.attr(CTRL_ATTR_FAMILY_NAME, kNetdevFamily, std::strlen(kNetdevFamily) + 1);
  auto fa = call(fd.get(), family.done());
  if (!fa) {
    if (fa.error().code == ENOENT) {
      return make_error(ENOTSUP, "this kernel has no netdev netlink family (Linux 6.3+ reports "
                                 "XDP features)");
    }
    return fa.error();
  }
  uint16_t family_id = 0;
  for (const auto& [type, data] : *fa) {
    if (type == CTRL_ATTR_FAMILY_ID && data.size() >= 2) std::memcpy(&family_id, data.data(), 2);
  }
  if (family_id == 0) return make_error(EPROTO, "no id for the netdev family");

  Request get(family_id, kNetdevCmdDevGet);
  const uint32_t idx = static_cast<uint32_t>(ifindex);
  get.attr(kNetdevAttrIfindex, &idx, sizeof idx);
  auto da = call(fd.get(), get.done());
  if (!da) return da.error();
  XdpFeatures f;
  for (const auto& [type, data] : *da) {
    if (type == kNetdevAttrXdpFeatures && data.size() >= 8) std::memcpy(&f.flags, data.data(), 8);
    if (type == kNetdevAttrXdpZcMaxSegs && data.size() >= 4) {
      std::memcpy(&f.zc_max_segs, data.data(), 4);
    }
  }
  return f;
}

std::string xdp_feature_names(uint64_t flags) {
  static const char* const kNames[] = {"basic",   "redirect", "ndo_xmit",   "xsk_zerocopy",
                                       "hw_offload", "rx_sg", "ndo_xmit_sg"};
  std::string out;
  for (size_t i = 0; i < std::size(kNames); ++i) {
    if (flags & (uint64_t{1} << i)) out += (out.empty() ? "" : " ") + std::string(kNames[i]);
  }
  if (flags >> std::size(kNames)) out += (out.empty() ? "" : " ") + std::string("(more)");
  return out.empty() ? "none" : out;
}

}  // namespace smt::loader
