// A connection's notification count (docs/smtd.md "Notifications"): one
// page that smtd shares with the application holding the connection. smtd
// raises the count after every notification (INCOMING, PEER_CLOSED) it has
// written to the connection's socket, so libsmt reads the socket only when
// the count moved instead of making a system call on every libsmt call.
//
// The page is a memfd that smtd maps read-write and seals before it hands
// it out (F_SEAL_FUTURE_WRITE, F_SEAL_SHRINK, F_SEAL_GROW): the application
// can map it read-only and never change what smtd reads or writes.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/result.h"
#include "common/unique_fd.h"

namespace smt::smtd {

class NotifyPage {
 public:
  /// smtd: a new sealed page, mapped read-write, count 0.
  static Result<NotifyPage> create();
  /// libsmt: maps the page smtd passed read-only. Refuses an fd that is not
  /// a sealed memfd of at least the count's size.
  static Result<NotifyPage> map_readonly(UniqueFd fd);

  NotifyPage(NotifyPage&& o) noexcept;
  NotifyPage& operator=(NotifyPage&& o) noexcept;
  NotifyPage(const NotifyPage&) = delete;
  NotifyPage& operator=(const NotifyPage&) = delete;
  ~NotifyPage();

  /// smtd: one more notification is in the socket (call after sendmsg).
  void bump() { count_->fetch_add(1, std::memory_order_release); }
  /// How many notifications smtd has written so far.
  uint64_t count() const { return count_->load(std::memory_order_acquire); }
  int fd() const { return fd_.get(); }

 private:
  NotifyPage(UniqueFd fd, void* map) : fd_(std::move(fd)), map_(map) {
    count_ = static_cast<std::atomic<uint64_t>*>(map);
  }
  void unmap();
  UniqueFd fd_;
  void* map_ = nullptr;
  std::atomic<uint64_t>* count_ = nullptr;
};

}  // namespace smt::smtd
