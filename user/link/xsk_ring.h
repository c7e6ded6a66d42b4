// The index math of AF_XDP rings, on memory the kernel shares with us (or,
// in unit tests, plain memory). A ring is a power-of-two array of entries with
// free-running 32-bit producer and consumer indexes that wrap modulo 2^32; the
// slot of index i is i & (size - 1). The side that produces writes entries,
// then publishes its index with a release store; the other side reads the
// index with an acquire load before it reads the entries. Each side keeps a
// private copy of its own index and publishes it in batches, so a batch of N
// entries costs one store, not N.
//
// Fill and TX rings: user space produces (ProducerRing). RX and completion
// rings: the kernel produces, user space consumes (ConsumerRing).
#pragma once

#include <linux/if_xdp.h>

#include <algorithm>
#include <cstdint>

namespace smt::link {

/// Where one mapped ring's parts are.
struct XskRingMemory {
  uint32_t* producer = nullptr;
  uint32_t* consumer = nullptr;
  uint32_t* flags = nullptr;  ///< XDP_RING_NEED_WAKEUP; may be null
  void* entries = nullptr;
  uint32_t size = 0;  ///< entries; a power of two
};

namespace xsk_detail {
inline uint32_t load_acquire(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline void store_release(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
}  // namespace xsk_detail

/// The user-space producer side (fill: uint64_t frame addresses; TX: xdp_desc).
template <typename Entry>
class ProducerRing {
 public:
  ProducerRing() = default;
  explicit ProducerRing(const XskRingMemory& m)
      : mem_(m), mask_(m.size - 1), prod_(xsk_detail::load_acquire(m.producer)) {}

  /// Slots free for reserve(): the size less what the consumer has not taken.
  uint32_t free_entries() const {
    return mem_.size - (prod_ - xsk_detail::load_acquire(mem_.consumer));
  }
  /// Reserves up to `n` slots; returns how many, the first at *first.
  uint32_t reserve(uint32_t n, uint32_t* first) {
    n = std::min(n, free_entries());
    *first = prod_;
    prod_ += n;
    return n;
  }
  Entry& slot(uint32_t index) { return static_cast<Entry*>(mem_.entries)[index & mask_]; }
  /// Publishes every reserved slot to the consumer.
  void submit() { xsk_detail::store_release(mem_.producer, prod_); }
  /// Entries published but not yet taken by the consumer.
  uint32_t outstanding() const {
    return xsk_detail::load_acquire(mem_.producer) - xsk_detail::load_acquire(mem_.consumer);
  }
  bool needs_wakeup() const {
    return mem_.flags != nullptr &&
           (__atomic_load_n(mem_.flags, __ATOMIC_RELAXED) & XDP_RING_NEED_WAKEUP) != 0;
  }

 private:
  XskRingMemory mem_;
  uint32_t mask_ = 0;
  uint32_t prod_ = 0;  // reserved up to here; published by submit()
};

/// The user-space consumer side (RX: xdp_desc; completion: uint64_t).
template <typename Entry>
class ConsumerRing {
 public:
  ConsumerRing() = default;
  explicit ConsumerRing(const XskRingMemory& m)
      : mem_(m), mask_(m.size - 1), cons_(xsk_detail::load_acquire(m.consumer)) {}

  /// Entries the producer has published that peek() has not taken.
  uint32_t available() const { return xsk_detail::load_acquire(mem_.producer) - cons_; }
  /// Takes up to `n` entries; returns how many, the first at *first. They
  /// stay readable until release().
  uint32_t peek(uint32_t n, uint32_t* first) {
    n = std::min(n, available());
    *first = cons_;
    cons_ += n;
    return n;
  }
  const Entry& slot(uint32_t index) const {
    return static_cast<const Entry*>(mem_.entries)[index & mask_];
  }
  /// Hands every peeked slot back to the producer.
  void release() { xsk_detail::store_release(mem_.consumer, cons_); }

 private:
  XskRingMemory mem_;
  uint32_t mask_ = 0;
  uint32_t cons_ = 0;
};

}  // namespace smt::link
