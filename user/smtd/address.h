// SMT addresses: 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), the form
// of the session context and the session map key.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace smt::smtd {

using Addr16 = std::array<uint8_t, 16>;

/// Parses "10.0.0.1", "::ffff:10.0.0.1" or any IPv6 text form.
Result<Addr16> parse_addr(std::string_view text);

/// "10.0.0.1" for IPv4-mapped addresses, RFC 5952 text otherwise.
std::string format_addr(const Addr16& a);

/// A TCP endpoint "HOST:PORT" or "[V6]:PORT"; HOST must be a numeric address.
struct Endpoint {
  Addr16 addr{};
  uint16_t port = 0;
};
Result<Endpoint> parse_endpoint(std::string_view text);
std::string format_endpoint(const Endpoint& e);

/// A sockaddr for `e`: AF_INET for IPv4-mapped addresses, AF_INET6 otherwise.
socklen_t to_sockaddr(const Endpoint& e, sockaddr_storage* out);
/// The endpoint of an AF_INET or AF_INET6 sockaddr.
Result<Endpoint> from_sockaddr(const sockaddr* sa, socklen_t len);

}  // namespace smt::smtd
