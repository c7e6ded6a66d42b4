#include "smtd/address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace smt::smtd {

Result<Addr16> parse_addr(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
    return make_error(EINVAL, "bad address '" + std::string(text) + "'");
  }
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  Addr16 out{};
  in_addr v4;
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(&out[12], &v4, 4);
    return out;
  }
  if (inet_pton(AF_INET6, buf, out.data()) == 1) return out;
  return make_error(EINVAL, "bad address '" + std::string(text) + "' (want IPv4 or IPv6)");
}

namespace {
bool is_v4_mapped(const Addr16& a) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.data(), kPrefix, 12) == 0;
}
}  // namespace

std::string format_addr(const Addr16& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4_mapped(a)) {
    inet_ntop(AF_INET, &a[12], buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, a.data(), buf, sizeof buf);
  }
  return buf;
}

Result<Endpoint> parse_endpoint(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return make_error(EINVAL, "bad endpoint '" + std::string(text) + "' (want [V6]:PORT)");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return make_error(EINVAL,
                        "bad endpoint '" + std::string(text) + "' (want HOST:PORT or [V6]:PORT)");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto addr = parse_addr(host);
  if (!addr) return addr.error();
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
    return make_error(EINVAL, "bad port in endpoint '" + std::string(text) + "'");
  }
  return Endpoint{*addr, static_cast<uint16_t>(value)};
}

std::string format_endpoint(const Endpoint& e) {
  std::string host = format_addr(e.addr);
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return host + ":" + std::to_string(e.port);
}

socklen_t to_sockaddr(const Endpoint& e, sockaddr_storage* out) {
  std::memset(out, 0, sizeof *out);
  if (is_v4_mapped(e.addr)) {
    auto* sin = reinterpret_cast<sockaddr_in*>(out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(e.port);
    std::memcpy(&sin->sin_addr, &e.addr[12], 4);
    return sizeof *sin;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(e.port);
  std::memcpy(&sin6->sin6_addr, e.addr.data(), 16);
  return sizeof *sin6;
}

Result<Endpoint> from_sockaddr(const sockaddr* sa, socklen_t len) {
  Endpoint e;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    e.addr[10] = e.addr[11] = 0xff;
    std::memcpy(&e.addr[12], &sin->sin_addr, 4);
    e.port = ntohs(sin->sin_port);
    return e;
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    std::memcpy(e.addr.data(), &sin6->sin6_addr, 16);
    e.port = ntohs(sin6->sin6_port);
    return e;
  }
  return make_error(EAFNOSUPPORT, "not an IPv4 or IPv6 socket address");
}

}  // namespace smt::smtd
