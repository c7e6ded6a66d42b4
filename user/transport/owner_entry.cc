#include "transport/owner_entry.h"

namespace smt {

void OwnerEntry::publish_base(uint64_t base) {
  if (e_ == nullptr || base == published_) return;
  __atomic_store_n(&e_->published_base, base, __ATOMIC_RELEASE);
  published_ = base;
}

void OwnerEntry::arm(uint64_t id, uint32_t offset) {
  if (e_ == nullptr) return;
  __atomic_store_n(&e_->grant[SMT_GRANT_SLOT_INDEX(id)], SMT_GRANT_SLOT(id, offset),
                   __ATOMIC_RELEASE);
}

void OwnerEntry::disarm(uint64_t id) {
  if (e_ == nullptr) return;
  __u64* word = &e_->grant[SMT_GRANT_SLOT_INDEX(id)];
  __u64 cur = __atomic_load_n(word, __ATOMIC_ACQUIRE);
  // XDP may raise the offset between the load and the exchange; retry then.
  while (static_cast<uint32_t>(cur >> 32) == SMT_GRANT_SLOT_HIGH(id)) {
    if (__atomic_compare_exchange_n(word, &cur, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      return;
    }
  }
}

uint64_t OwnerEntry::slot(uint64_t id) const {
  if (e_ == nullptr) return 0;
  return __atomic_load_n(&e_->grant[SMT_GRANT_SLOT_INDEX(id)], __ATOMIC_ACQUIRE);
}

}  // namespace smt
