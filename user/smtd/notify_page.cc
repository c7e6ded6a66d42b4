#include "smtd/notify_page.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010  // Linux 5.1
#endif

namespace smt::smtd {
namespace {

constexpr size_t kPageBytes = 4096;
static_assert(sizeof(std::atomic<uint64_t>) == 8 && std::atomic<uint64_t>::is_always_lock_free,
              "the shared count is one lock-free 64-bit word");

Error sys_error(const char* what) {
  const int e = errno;
  return make_error(e, std::string("notification page: ") + what + ": " + std::strerror(e));
}

}  // namespace

Result<NotifyPage> NotifyPage::create() {
  UniqueFd fd(memfd_create("smtd-notify", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return sys_error("memfd_create");
  if (ftruncate(fd.get(), kPageBytes) != 0) return sys_error("ftruncate");
  void* p = mmap(nullptr, kPageBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return sys_error("mmap");
  NotifyPage page(std::move(fd), p);
  // Our mapping stays writable; every mapping made after this is read-only.
  if (fcntl(page.fd(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE) != 0) {
    return sys_error("F_ADD_SEALS");
  }
  return page;
}

Result<NotifyPage> NotifyPage::map_readonly(UniqueFd fd) {
  if (!fd) return make_error(EINVAL, "notification page: no fd");
  const int seals = fcntl(fd.get(), F_GET_SEALS);
  if (seals < 0) return sys_error("F_GET_SEALS (not a memfd?)");
  // Without these the page could shrink under our mapping (SIGBUS).
  if ((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
    return make_error(EPROTO, "notification page: the memfd is not sealed against resizing");
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return sys_error("fstat");
  if (st.st_size < static_cast<off_t>(sizeof(uint64_t))) {
    return make_error(EPROTO, "notification page: smaller than its count");
  }
  void* p = mmap(nullptr, sizeof(uint64_t), PROT_READ, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return sys_error("mmap");
  return NotifyPage(std::move(fd), p);
}

NotifyPage::NotifyPage(NotifyPage&& o) noexcept
    : fd_(std::move(o.fd_)),
      map_(std::exchange(o.map_, nullptr)),
      count_(std::exchange(o.count_, nullptr)) {}

NotifyPage& NotifyPage::operator=(NotifyPage&& o) noexcept {
  if (this != &o) {
    unmap();
    fd_ = std::move(o.fd_);
    map_ = std::exchange(o.map_, nullptr);
    count_ = std::exchange(o.count_, nullptr);
  }
  return *this;
}

NotifyPage::~NotifyPage() { unmap(); }

void NotifyPage::unmap() {
  // munmap rounds the length up to whole pages: one page either way.
  if (map_ != nullptr) munmap(map_, kPageBytes);
  map_ = nullptr;
  count_ = nullptr;
}

}  // namespace smt::smtd
