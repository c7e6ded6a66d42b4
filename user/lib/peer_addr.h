// A peer as libsmt names it: an IP address (IPv4 as IPv4-mapped, as the
// engine and the maps hold it) and an SMT port, converted from and to the
// sockaddr_in / sockaddr_in6 the C API takes.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "common/result.h"
#include "link/link.h"

namespace smt::lib {

struct PeerAddr {
  link::Addr addr{};
  uint16_t port = 0;

  /// Checks the length for the family before reading anything else.
  static Result<PeerAddr> from_sockaddr(const sockaddr* sa, socklen_t len) {
    if (sa == nullptr || len < socklen_t(sizeof(sa_family_t))) {
      return make_error(EINVAL, "peer address missing or too short");
    }
    PeerAddr p;
    if (sa->sa_family == AF_INET) {
      if (len < socklen_t(sizeof(sockaddr_in))) return make_error(EINVAL, "sockaddr_in too short");
      sockaddr_in in;
      std::memcpy(&in, sa, sizeof in);
      p.addr[10] = 0xff;
      p.addr[11] = 0xff;
      std::memcpy(&p.addr[12], &in.sin_addr, 4);
      p.port = ntohs(in.sin_port);
    } else if (sa->sa_family == AF_INET6) {
      if (len < socklen_t(sizeof(sockaddr_in6))) {
        return make_error(EINVAL, "sockaddr_in6 too short");
      }
      sockaddr_in6 in6;
      std::memcpy(&in6, sa, sizeof in6);
      std::memcpy(p.addr.data(), &in6.sin6_addr, 16);
      p.port = ntohs(in6.sin6_port);
    } else {
      return make_error(EAFNOSUPPORT, "peer address is neither AF_INET nor AF_INET6");
    }
    if (p.port == 0) return make_error(EINVAL, "peer port 0");
    return p;
  }

  /// Parses a numeric IPv4 or IPv6 address.
  static Result<PeerAddr> parse(const std::string& ip, uint16_t port) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, ip.c_str(), &in->sin_addr) == 1) {
      in->sin_family = AF_INET;
      in->sin_port = htons(port);
      len = sizeof *in;
    } else if (inet_pton(AF_INET6, ip.c_str(), &in6->sin6_addr) == 1) {
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(port);
      len = sizeof *in6;
    } else {
      return make_error(EINVAL, "not an IPv4 or IPv6 address: " + ip);
    }
    return from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
  }

  /// sockaddr_in for an IPv4-mapped address, sockaddr_in6 otherwise.
  void to_sockaddr(sockaddr_storage* ss, socklen_t* len) const {
    std::memset(ss, 0, sizeof *ss);
    if (link::is_v4_mapped(addr)) {
      auto* in = reinterpret_cast<sockaddr_in*>(ss);
      in->sin_family = AF_INET;
      in->sin_port = htons(port);
      std::memcpy(&in->sin_addr, &addr[12], 4);
      *len = sizeof *in;
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(ss);
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(port);
      std::memcpy(&in6->sin6_addr, addr.data(), 16);
      *len = sizeof *in6;
    }
  }

  std::string to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (link::is_v4_mapped(addr)) {
      inet_ntop(AF_INET, &addr[12], buf, sizeof buf);
      return std::string(buf) + ":" + std::to_string(port);
    }
    inet_ntop(AF_INET6, addr.data(), buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(port);
  }

  bool operator==(const PeerAddr&) const = default;
};

}  // namespace smt::lib
