#include "smtd/key_arena.h"

#include <openssl/crypto.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <utility>

namespace smt::smtd {

LockedSlot& LockedSlot::operator=(LockedSlot&& o) noexcept {
  if (this != &o) {
    reset();
    arena_ = std::exchange(o.arena_, nullptr);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

size_t LockedSlot::capacity() const { return data_ != nullptr ? KeyArena::kSlotSize : 0; }

void LockedSlot::set_size(size_t n) { size_ = n < capacity() ? n : capacity(); }

void LockedSlot::reset() {
  if (data_ != nullptr) {
    OPENSSL_cleanse(data_, KeyArena::kSlotSize);
    arena_->give_back(data_);
  }
  arena_ = nullptr;
  data_ = nullptr;
  size_ = 0;
}

Result<std::unique_ptr<KeyArena>> KeyArena::create(size_t slots) {
  if (slots == 0) return make_error(EINVAL, "key arena needs at least one slot");
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_t bytes = (slots * kSlotSize + page - 1) / page * page;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return make_error(errno, "key arena: mmap failed");
  if (::mlock(p, bytes) != 0) {
    int e = errno;
    ::munmap(p, bytes);
    return make_error(e, "key arena: mlock of " + std::to_string(bytes) +
                             " bytes failed: " + std::strerror(e) + " (raise RLIMIT_MEMLOCK)");
  }
  if (::madvise(p, bytes, MADV_DONTDUMP) != 0) {
    int e = errno;
    ::munlock(p, bytes);
    ::munmap(p, bytes);
    return make_error(e, "key arena: madvise(MADV_DONTDUMP) failed");
  }
  std::unique_ptr<KeyArena> a(new KeyArena());  // private constructor
  a->base_ = static_cast<uint8_t*>(p);
  a->bytes_ = bytes;
  a->total_ = bytes / kSlotSize;
  a->free_.reserve(a->total_);
  for (size_t i = a->total_; i > 0; --i) a->free_.push_back(a->base_ + (i - 1) * kSlotSize);
  return a;
}

KeyArena::~KeyArena() {
  if (base_ != nullptr) {
    OPENSSL_cleanse(base_, bytes_);
    ::munlock(base_, bytes_);
    ::munmap(base_, bytes_);
  }
}

Result<LockedSlot> KeyArena::take() {
  if (free_.empty()) {
    return make_error(ENOMEM, "key arena exhausted (" + std::to_string(total_) + " slots)");
  }
  uint8_t* p = free_.back();
  free_.pop_back();
  return LockedSlot(this, p);
}

void KeyArena::give_back(uint8_t* p) { free_.push_back(p); }

}  // namespace smt::smtd
