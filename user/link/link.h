// The link interface: how the transport engine moves SMT packets. A packet
// here starts at the SMT header; the link adds and strips IP (and, for
// AF_XDP later, Ethernet). Backends: the in-memory link pair (deterministic
// tests: loss, reordering, duplication, delay, bandwidth, priorities, software
// TSO), the raw IP socket link, and later AF_XDP and the kernel module.
//
// Buffers are zero-copy friendly: receive() hands out views into the link's
// own buffers (writable, so the engine decrypts in place) that stay valid until
// the next receive() call; send() copies or consumes packets before it returns.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace smt::link {

/// An IPv6 address; IPv4 as IPv4-mapped (::ffff:a.b.c.d), as in the maps.
using Addr = std::array<uint8_t, 16>;

inline bool is_v4_mapped(const Addr& a) {
  for (int i = 0; i < 10; ++i) {
    if (a[i] != 0) return false;
  }
  return a[10] == 0xff && a[11] == 0xff;
}

/// IP header bytes for a packet to or from `a`.
inline uint32_t ip_header_len(const Addr& a) { return is_v4_mapped(a) ? 20 : 40; }

struct TxPacket {
  const uint8_t* data = nullptr;  ///< SMT header onward
  uint32_t len = 0;
  Addr peer{};
  uint8_t priority = 0;  ///< 0 (lowest) .. 7: link queue order and DSCP (priority << 3)
  /// 0: one packet. Otherwise a TSO segment (one DATA header + one record)
  /// that the link cuts into packets of at most tso_mss payload bytes, each
  /// with the header copied and seg_pos advanced, exactly as a NIC does.
  uint32_t tso_mss = 0;
};

struct RxPacket {
  uint8_t* data = nullptr;  ///< SMT header onward; writable
  uint32_t len = 0;
  Addr peer{};   ///< IP source
  Addr local{};  ///< IP destination
  uint32_t queue = 0;  ///< receive queue (0 where the backend has none)
};

struct LinkStats {
  uint64_t tx_packets = 0;  ///< packets put on the wire (after TSO cutting)
  uint64_t tx_data_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_errors = 0;  ///< send failures other than a full queue
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_dropped = 0;  ///< malformed below SMT (bad IP header, fragment, ...)
};

class Link {
 public:
  virtual ~Link() = default;

  /// Takes packets in order until the link queue is full; returns how many it
  /// took. The caller retries the rest later (tx_room() says when).
  virtual size_t send(std::span<const TxPacket> pkts) = 0;

  /// Fills up to out.size() packets that have arrived; returns how many.
  /// Never blocks.
  virtual size_t receive(std::span<RxPacket> out) = 0;

  /// Readable (poll/epoll) when receive() may return packets.
  virtual int fd() const = 0;

  /// Packets send() would take now: the bounded link queue's free room.
  virtual size_t tx_room() const = 0;

  /// IP MTU (IP header included) towards peers.
  virtual uint32_t mtu() const = 0;

  /// Whether send() accepts TSO segments (tso_mss != 0).
  virtual bool supports_tso() const = 0;

  /// The address packets leave from, for a peer's address family.
  virtual Addr local_addr(const Addr& peer) const = 0;

  virtual LinkStats stats() const = 0;
};

}  // namespace smt::link
