// The notification page smtd shares with each connection (docs/smtd.md
// "Notifications"): smtd's side writes, the holder's side can only read, and
// the holder refuses an fd that is not a sealed memfd.
#include "smtd/notify_page.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

namespace smt::smtd {
namespace {

TEST(NotifyPage, HolderSeesEveryBumpAndCannotMapThePageWritable) {
  auto page = NotifyPage::create();
  ASSERT_TRUE(page.ok()) << page.error().message;
  auto view = NotifyPage::map_readonly(UniqueFd(fcntl(page->fd(), F_DUPFD_CLOEXEC, 0)));
  ASSERT_TRUE(view.ok()) << view.error().message;
  EXPECT_EQ(view->count(), 0u);
  page->bump();
  page->bump();
  EXPECT_EQ(view->count(), 2u);
  EXPECT_EQ(page->count(), 2u);

  void* w = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, view->fd(), 0);
  EXPECT_EQ(w, MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
  EXPECT_LT(::write(view->fd(), "x", 1), 0) << "the sealed page took a write()";
  EXPECT_NE(ftruncate(view->fd(), 0), 0) << "the sealed page could shrink";
}

TEST(NotifyPage, HolderRefusesAnUnsealedMemfdAPipeAndNoFd) {
  UniqueFd plain(memfd_create("not-sealed", MFD_CLOEXEC));
  ASSERT_TRUE(plain.valid());
  ASSERT_EQ(ftruncate(plain.get(), 4096), 0);
  auto unsealed = NotifyPage::map_readonly(std::move(plain));
  ASSERT_FALSE(unsealed.ok());
  EXPECT_EQ(unsealed.error().code, EPROTO);

  int p[2];
  ASSERT_EQ(pipe(p), 0);
  UniqueFd keep(p[1]);
  EXPECT_FALSE(NotifyPage::map_readonly(UniqueFd(p[0])).ok());

  auto none = NotifyPage::map_readonly(UniqueFd());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, EINVAL);
}

}  // namespace
}  // namespace smt::smtd
