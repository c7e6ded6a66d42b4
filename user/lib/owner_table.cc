#include "lib/owner_table.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace smt::lib {

Result<std::unique_ptr<OwnerTable>> OwnerTable::map(smtd::OwnerTableGrant grant) {
  if (!grant.fd || grant.entries == 0 || grant.entries > SMT_OWNER_TABLE_SESSIONS) {
    return make_error(EINVAL, "owner table grant without a usable fd or size");
  }
  const size_t len = size_t{grant.entries} * sizeof(smt_owner_table_entry);
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, grant.fd.get(), 0);
  if (p == MAP_FAILED) {
    int e = errno;
    return make_error(e, std::string("cannot map the owner table smtd granted: ") +
                             std::strerror(e));
  }
  std::unique_ptr<OwnerTable> t(new OwnerTable());
  t->fd_ = std::move(grant.fd);
  t->entries_ = static_cast<smt_owner_table_entry*>(p);
  t->count_ = grant.entries;
  t->owner_id_ = grant.owner_id;
  return t;
}

OwnerTable::~OwnerTable() {
  if (entries_ != nullptr) ::munmap(entries_, size_t{count_} * sizeof(smt_owner_table_entry));
}

smt_owner_table_entry* OwnerTable::entry(uint32_t slot) const {
  return slot < count_ ? &entries_[slot] : nullptr;
}

}  // namespace smt::lib
