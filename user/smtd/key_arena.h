// A small arena of locked memory for key material (CONTRACT §7): one mmap'd
// region, mlock'ed so it never reaches swap and MADV_DONTDUMP so it never
// reaches a core file. Slots are wiped when released.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/result.h"

namespace smt::smtd {

class KeyArena;

/// One slot of locked memory; wiped and returned to its arena on destruction.
class LockedSlot {
 public:
  LockedSlot() = default;
  LockedSlot(const LockedSlot&) = delete;
  LockedSlot& operator=(const LockedSlot&) = delete;
  LockedSlot(LockedSlot&& o) noexcept { *this = std::move(o); }
  LockedSlot& operator=(LockedSlot&& o) noexcept;
  ~LockedSlot() { reset(); }

  explicit operator bool() const { return data_ != nullptr; }
  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t capacity() const;
  /// Bytes in use (set by the owner; what span() shows).
  size_t size() const { return size_; }
  void set_size(size_t n);
  std::span<const uint8_t> span() const { return {data_, size_}; }
  std::span<uint8_t> mutable_span() { return {data_, size_}; }
  /// Wipes and releases the slot now.
  void reset();

 private:
  friend class KeyArena;
  LockedSlot(KeyArena* a, uint8_t* d) : arena_(a), data_(d) {}
  KeyArena* arena_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

class KeyArena {
 public:
  static constexpr size_t kSlotSize = 512;

  /// Maps, locks and marks `slots` slots. Fails if mlock fails (RLIMIT_MEMLOCK).
  static Result<std::unique_ptr<KeyArena>> create(size_t slots);
  ~KeyArena();
  KeyArena(const KeyArena&) = delete;
  KeyArena& operator=(const KeyArena&) = delete;

  /// A zeroed slot, or ENOMEM when every slot is taken.
  Result<LockedSlot> take();
  size_t in_use() const { return total_ - free_.size(); }

 private:
  friend class LockedSlot;
  KeyArena() = default;
  void give_back(uint8_t* p);
  uint8_t* base_ = nullptr;
  size_t bytes_ = 0;
  size_t total_ = 0;
  std::vector<uint8_t*> free_;
};

}  // namespace smt::smtd
