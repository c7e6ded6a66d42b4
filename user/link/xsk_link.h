// The AF_XDP link: the application half of the fast path. It adopts an
// AF_XDP socket and its memfd UMEM as smtd hands them over (xsk_socket.h),
// maps the UMEM and the four rings itself (XDP_MMAP_OFFSETS; libxdp 1.3
// cannot adopt fds), and moves SMT packets as Ethernet + IP frames
// (xsk_frame.h).
//
// Frames: the UMEM is split once. Up to half (at most the fill ring's size)
// are receive frames: they sit in the fill ring, the kernel fills them, and
// receive() hands their SMT bytes to the engine as views. A view stays valid
// until the next receive(), which first returns the previous batch's frames
// (and any dropped ones) to the fill ring in one batch. The rest (at most the
// completion ring's size) are transmit frames, kept on a free list and taken
// back from the completion ring. Neither ring can overflow, so no frame is
// ever lost. Nothing on the hot path allocates.
//
// Sending: each packet is copied into a free transmit frame behind freshly
// built headers, and the whole batch is published with one producer store;
// the kernel is kicked (sendto) only when the TX ring asks for a wake-up. In
// copy mode the kernel sends at most 32 frames per kick, so a batch of N costs
// about N/32 kicks; receive() kicks again for frames a busy device left in
// the ring, so an engine that polls fd() keeps the TX ring moving. A TSO
// segment is refused un-taken (supports_tso() is false); an empty packet, one
// above the MTU (DF semantics) or one with no route is consumed and counted in
// tx_errors, as on the raw link.
//
// Next hops: the peer's route and neighbour entry (neighbour.h) are cached
// per peer and looked up again every neighbour_refresh_ms (every
// neighbour_retry_ms while unresolved). While a peer has no MAC yet, or its
// route leaves through another interface, its packets go to the fallback link
// (the raw link) and are counted; resolution is triggered meanwhile. The
// fallback is for sending only: the peer's packets still arrive here, through
// the XDP program's redirect.
//
// Receiving treats every frame as hostile: descriptor bounds first (inside
// the UMEM, inside one frame), then the frame rules of xsk_frame.h; anything
// else is dropped, counted in rx_dropped and its frame recycled.
//
// Not thread-safe: use one XskLink from one thread at a time.
#pragma once

#include <linux/if_xdp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "link/link.h"
#include "link/neighbour.h"
#include "link/xsk_frame.h"
#include "link/xsk_ring.h"
#include "link/xsk_socket.h"
#include "smt/wire.h"

namespace smt::link {

struct XskLinkConfig {
  /// The socket, the UMEM memfd and the geometry, as received from smtd. The
  /// link takes ownership of both fds.
  XskSocket xsk;
  uint8_t protocol = SMT_IPPROTO_DEFAULT;  ///< IP protocol number; not 0 or 255
  std::optional<Addr> local_v4;  ///< source override (IPv4-mapped); else the route's source
  std::optional<Addr> local_v6;  ///< source override; else the route's source
  /// 0: the device's MTU. Either way at most what one frame holds.
  uint32_t mtu = 0;
  uint32_t batch = 64;  ///< packets per receive() at most, 1..1024
  /// Takes packets for peers without a next-hop MAC; not owned, outlives the
  /// link. nullptr: such packets are tx_errors.
  Link* fallback = nullptr;
  uint32_t neighbour_refresh_ms = 1000;
  uint32_t neighbour_retry_ms = 20;
  uint32_t max_peers = 4096;  ///< next-hop cache entries; a full cache evicts one
};

/// Counters beyond LinkStats.
struct XskLinkStats {
  bool zerocopy = false;
  uint32_t rx_frames = 0;            ///< UMEM frames set aside for receiving
  uint32_t tx_frames = 0;            ///< and for sending
  uint64_t fallback_tx_packets = 0;  ///< packets handed to the fallback link
  uint64_t tx_kicks = 0;             ///< sendto() wake-ups of the TX path
  uint64_t fill_kicks = 0;           ///< wake-ups for the fill ring (zero-copy drivers)
  uint64_t neighbour_lookups = 0;    ///< route + neighbour round trips
  uint64_t neighbour_triggers = 0;   ///< resolutions requested
  uint64_t no_route = 0;             ///< packets consumed for lack of a route (in tx_errors)
  uint64_t rx_bad_desc = 0;          ///< descriptors outside the UMEM or a frame (in rx_dropped)
  // From the kernel (XDP_STATISTICS):
  uint64_t kernel_rx_dropped = 0;       ///< frames the kernel dropped (too big, ...)
  uint64_t kernel_rx_ring_full = 0;     ///< dropped because the RX ring was full
  uint64_t kernel_fill_ring_empty = 0;  ///< times the fill ring had no frame
  uint64_t kernel_rx_invalid_descs = 0;
  uint64_t kernel_tx_invalid_descs = 0;
};

class XskLink final : public Link {
 public:
  /// Maps the UMEM and rings of cfg.xsk and fills the fill ring. Works in the
  /// calling thread's network namespace (route and neighbour lookups).
  static Result<std::unique_ptr<XskLink>> open(XskLinkConfig cfg);
  ~XskLink() override;
  XskLink(const XskLink&) = delete;
  XskLink& operator=(const XskLink&) = delete;

  size_t send(std::span<const TxPacket> pkts) override;
  size_t receive(std::span<RxPacket> out) override;
  /// The AF_XDP socket: POLLIN when the RX ring has frames.
  int fd() const override { return cfg_.xsk.socket.get(); }
  /// Free TX ring slots, bounded by the transmit frames free or completed.
  size_t tx_room() const override;
  uint32_t mtu() const override { return mtu_; }
  bool supports_tso() const override { return false; }
  /// The configured source of the peer's family, else the route's source
  /// (an all-zero Addr when there is no route).
  Addr local_addr(const Addr& peer) const override;
  LinkStats stats() const override { return stats_; }

  /// XskLinkStats; reads the kernel's counters (one getsockopt).
  XskLinkStats xsk_stats() const;
  /// The interface's MAC address (the frames' source).
  const MacAddr& mac() const { return own_mac_; }
  /// Whether packets to `peer` would leave through AF_XDP now (a cached
  /// next hop with a MAC; looks it up if it is due).
  bool has_next_hop(const Addr& peer);

 private:
  enum class Path : uint8_t {
    kNoRoute,     // the kernel has no route: tx_errors
    kElsewhere,   // the route is not a unicast one through our interface: fallback
    kUnresolved,  // through our interface, no MAC yet: fallback
    kReady,       // AF_XDP
  };
  struct Peer {
    Path path = Path::kNoRoute;
    MacAddr mac{};
    Addr source{};
    uint64_t next_check_ms = 0;
  };
  struct AddrHash {
    size_t operator()(const Addr& a) const;
  };
  struct Mapping {
    void* addr = nullptr;
    size_t len = 0;
  };

  explicit XskLink(XskLinkConfig cfg);
  Status init();
  Status map_rings();
  Peer& peer_for(const Addr& addr, uint64_t now_ms) const;
  void refresh(const Addr& addr, Peer* p, uint64_t now_ms) const;
  void reap_completions();
  void kick_tx();
  void recycle_held();

  XskLinkConfig cfg_;
  uint32_t mtu_ = 1500;
  MacAddr own_mac_{};
  uint8_t* umem_ = nullptr;
  uint64_t umem_len_ = 0;
  Mapping maps_[4];  // fill, completion, rx, tx
  ProducerRing<uint64_t> fill_;
  ConsumerRing<uint64_t> comp_;
  ConsumerRing<xdp_desc> rx_;
  ProducerRing<xdp_desc> tx_;
  std::vector<uint64_t> tx_free_;  // free transmit frame addresses (capacity reserved)
  std::vector<uint64_t> held_;     // receive frames to return on the next receive()
  uint16_t ip_id_ = 0;
  mutable std::optional<NeighbourResolver> resolver_;
  mutable std::unordered_map<Addr, Peer, AddrHash> peers_;
  // Cleared after EPERM (no CAP_NET_ADMIN): the fallback's own packets then
  // make the kernel resolve the hop.
  mutable bool trigger_allowed_ = true;
  LinkStats stats_;
  mutable XskLinkStats xstats_;
};

}  // namespace smt::link
