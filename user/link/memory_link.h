// The in-memory link pair: two Link endpoints (A and B) joined by a simulated
// wire, for deterministic tests of the transport engine.
//
// Each direction is a pipeline driven only by a smt::Clock:
//
//   send() -> egress queue (bounded, 8 priorities) -> serializer (rate) ->
//   propagation (delay + reorder jitter; loss; duplication) -> peer rx queue
//
// Nothing runs in the background: pump() (called by send/receive and public)
// moves the state up to clock.now_ns(), and next_event_ns() says when anything
// changes next, so a virtual-time driver can advance a VirtualClock to it. With
// a real clock fd() becomes readable when packets are deliverable (an eventfd
// for arrivals plus a timerfd armed for the next event towards the endpoint).
//
// Choices worth knowing:
// - The egress queue counts descriptors: a TSO segment takes one slot (as on a
//   NIC ring) and is cut with tso_segment() when it reaches the serializer;
//   its packets leave back to back.
// - A TSO segment sent while TSO is off is a caller bug: send() stops there
//   and returns its index without taking it (tx_errors counts it), so
//   `taken < pkts.size() && tx_room() > 0` identifies the refused packet.
// - Packets the link cannot carry (too long for the MTU, empty, a peer address
//   other than the other endpoint's, a malformed TSO segment) are consumed and
//   counted in tx_errors, as a socket's EMSGSIZE would be.
// - Within one send() call the queue is filled before the serializer looks
//   at it, so a batch leaves in priority order.
// - Randomness: one std::mt19937_64 per direction, seeded from the
//   direction's seed (B->A mixes in a constant so equal seeds differ). Draws
//   happen in serializer order, so runs are identical for the same seeds,
//   clock times and call sequence.
// - All state sits behind one mutex: the endpoints may be used from two
//   threads. The tap callback runs under it and must not call into the wire.
// - No heap allocation per packet in steady state: packet buffers come from a
//   free list and are recycled (capture mode, a test tool, does allocate).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <vector>

#include "common/result.h"
#include "link/link.h"
#include "common/unique_fd.h"
#include "transport/clock.h"

namespace smt::link {

/// A direction across the wire.
enum class Direction : uint8_t { kAToB = 0, kBToA = 1 };

/// The tap's decision on a packet that is landing.
enum class TapVerdict : uint8_t { kPass, kDrop };

/// Conditions of one direction.
struct PathConfig {
  uint64_t seed = 1;
  double loss = 0.0;       ///< probability a packet is lost in flight
  double duplicate = 0.0;  ///< probability a (not lost) packet arrives twice
  double reorder = 0.0;    ///< probability a packet gets extra delay in [0, reorder_max_ns]
  uint64_t reorder_max_ns = 0;
  uint64_t delay_ns = 0;              ///< one-way propagation delay
  uint64_t rate_bps = 0;              ///< serializer rate, IP header included; 0 = infinite
  uint32_t queue_packets = 16;        ///< egress queue bound (descriptors)
  uint32_t rx_queue_packets = 65536;  ///< receiver's queue bound; beyond it: rx_dropped
};

struct MemoryWireConfig {
  Addr addr_a{};        ///< endpoint A's address (IPv4-mapped or IPv6)
  Addr addr_b{};        ///< endpoint B's address, same family as A's
  uint32_t mtu = 1500;  ///< IP MTU, IP header included
  bool tso = false;     ///< whether send() accepts TSO segments
  PathConfig a_to_b;
  PathConfig b_to_a;
};

/// Counters of one direction's wire (beyond the endpoints' LinkStats).
struct WireStats {
  uint64_t lost = 0;
  uint64_t duplicated = 0;
  uint64_t reordered = 0;  ///< packets given extra delay
  uint64_t tap_dropped = 0;
  uint64_t injected = 0;
  uint64_t rx_overflow = 0;  ///< dropped at a full receive queue
  uint64_t landed = 0;       ///< put in the receiver's queue
};

/// One packet that crossed the wire (capture mode).
struct CapturedPacket {
  Direction dir = Direction::kAToB;
  uint64_t time_ns = 0;  ///< when it landed
  bool injected = false;
  std::vector<uint8_t> bytes;  ///< as it arrived, before the tap saw it
};

class MemoryWire {
 public:
  using Tap = std::function<TapVerdict(Direction, std::span<uint8_t>)>;

  /// Creates the wire and its two endpoints. Fails on a bad configuration
  /// (mixed address families, an MTU too small for an SMT header, a queue
  /// bound of 0, probabilities outside [0, 1]) or when no eventfd can be made.
  static Result<std::unique_ptr<MemoryWire>> create(Clock& clock, const MemoryWireConfig& cfg);
  ~MemoryWire();
  MemoryWire(const MemoryWire&) = delete;
  MemoryWire& operator=(const MemoryWire&) = delete;

  /// The endpoints; they live as long as the wire.
  Link& a();
  Link& b();

  /// Moves every direction up to clock.now_ns().
  void pump();
  /// The earliest future time at which something changes (a packet finishes
  /// serialization or lands), or UINT64_MAX when nothing is pending.
  uint64_t next_event_ns();

  /// Replaces one direction's conditions (the random generator keeps its
  /// state; a changed seed is ignored). Fails on the checks of create().
  Status set_path(Direction d, const PathConfig& p);

  /// Called for every packet as it lands (not for injected ones), with the
  /// packet's bytes from the SMT header on; may modify them or drop the packet.
  /// An empty function removes the tap.
  void set_tap(Tap tap);

  /// Starts (true) or stops recording every packet that lands.
  void set_capture(bool on);
  std::vector<CapturedPacket> captured() const;
  void clear_capture();

  /// Delivers `bytes` now into the receiving endpoint's queue, as if sent
  /// across `d` (peer = the sender's address): forged or replayed packets.
  /// Bypasses loss, delay and the tap. Fails on an empty or over-64-KiB packet.
  Status inject(Direction d, std::span<const uint8_t> bytes);

  WireStats wire_stats(Direction d) const;
  /// Packets waiting in a direction's egress queue (TSO segments count once).
  size_t queued(Direction d) const;

 private:
  class Endpoint;
  struct Slot;
  struct Path;
  struct Side;
  class IndexRing;

  MemoryWire(Clock& clock, const MemoryWireConfig& cfg);
  Status init_fds();

  // Everything below runs with mu_ held.
  size_t send_locked(int side, std::span<const TxPacket> pkts);
  size_t receive_locked(int side, std::span<RxPacket> out);
  void pump_locked(uint64_t now);
  void advance(int dir, uint64_t now);
  bool next_packet(int dir, uint32_t* slot);
  void launch(int dir, uint32_t slot, uint64_t start_ns);
  void land(int dir, uint32_t slot, uint64_t now, bool injected);
  uint64_t next_event_locked(int dir) const;
  void sync_fds(int side, uint64_t now);
  uint32_t alloc_slot(uint32_t len);
  void free_slot(uint32_t slot);
  double draw_unit(int dir);

  Clock& clock_;
  MemoryWireConfig cfg_;
  bool real_time_;
  mutable std::mutex mu_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  std::unique_ptr<Path> paths_[2];
  std::unique_ptr<Side> sides_[2];
  std::unique_ptr<Endpoint> endpoints_[2];
  std::vector<uint8_t> tso_scratch_;
  uint64_t seq_ = 0;
  Tap tap_;
  bool capture_ = false;
  std::vector<CapturedPacket> capture_log_;
};

}  // namespace smt::link
