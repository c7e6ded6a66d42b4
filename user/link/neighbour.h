// Next-hop resolution over rtnetlink for links that write their own Ethernet
// headers (the AF_XDP link): destination → route (RTM_GETROUTE: output
// interface, gateway, preferred source) → neighbour entry (RTM_GETNEIGH: the
// next hop's MAC). When the kernel has no usable entry, trigger() asks it to
// resolve one (RTM_NEWNEIGH with NTF_USE: the ARP request or neighbour
// solicitation a packet to that hop would cause, without sending the packet).
//
// Works in the calling thread's network namespace at open(). Every reply is
// hostile input: lengths are checked before any attribute is read. Each call
// is a synchronous netlink round trip: keep it off the per-packet path.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "link/link.h"
#include "link/xsk_frame.h"

namespace smt::link {

/// The route and neighbour state for one destination.
struct NextHop {
  int ifindex = 0;       ///< the route's output interface
  Addr source{};         ///< the route's preferred source (all zero if none)
  Addr via{};            ///< the gateway, or the destination itself when on-link
  bool has_mac = false;  ///< a usable neighbour entry exists
  MacAddr mac{};
  uint16_t nud_state = 0;  ///< NUD_* of the entry (0: no entry)
};

class NeighbourResolver {
 public:
  /// Opens a NETLINK_ROUTE socket.
  static Result<NeighbourResolver> open();
  NeighbourResolver(NeighbourResolver&&) = default;
  NeighbourResolver& operator=(NeighbourResolver&&) = default;

  /// Route and neighbour lookup for `dst` (IPv4 as IPv4-mapped). Errors: the
  /// kernel's (ENETUNREACH, EHOSTUNREACH, ...) for no route, EADDRNOTAVAIL for
  /// a route that is not unicast (local, broadcast, blackhole, ...), EPROTO
  /// for a malformed reply. A missing neighbour entry is not an error.
  Result<NextHop> resolve(const Addr& dst);

  /// Starts resolution of `via` on `ifindex` (no-op if the entry is valid).
  Status trigger(int ifindex, const Addr& via);

 private:
  explicit NeighbourResolver(UniqueFd fd);
  /// Sends `req` and reads the answer into buf_; returns its length.
  Result<size_t> transact(void* req, uint32_t len);
  Status lookup_neighbour(NextHop* hop);

  UniqueFd fd_;
  uint32_t seq_ = 0;
  std::vector<uint8_t> buf_ = std::vector<uint8_t>(8192);  // the last answer
};

}  // namespace smt::link
