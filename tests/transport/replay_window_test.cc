// The replay windows of CONTRACT §3 (requests) and §5 (control sequence
// numbers).
#include "transport/replay_window.h"

#include <gtest/gtest.h>

#include <set>

namespace smt {
namespace {

using V = RequestWindow::Verdict;

auto nothing_in_progress = [](uint64_t) { return false; };

TEST(RequestWindow, MemoryIsWidthOverEightBytes) {
  EXPECT_EQ(RequestWindow().memory_bytes(), 8192u) << "CONTRACT §3: 8 KiB for W = 2^16";
  EXPECT_EQ(RequestWindow().width(), 1u << 16);
  EXPECT_EQ(RequestWindow(128).memory_bytes(), 16u);
  EXPECT_EQ(RequestWindow(100).width(), 128u) << "rounded up to a multiple of 64";
  EXPECT_EQ(RequestWindow(100).memory_bytes(), 16u);
  EXPECT_EQ(RequestWindow(0).width(), 64u);
}

TEST(RequestWindow, VerdictsFreshDeliveredTooNewInvalid) {
  RequestWindow w(64, 2);
  EXPECT_EQ(w.base(), 2u);
  EXPECT_EQ(w.check(2), V::kFresh);
  EXPECT_EQ(w.check(2 + 2 * 63), V::kFresh) << "the last id inside the window";
  EXPECT_EQ(w.check(2 + 2 * 64), V::kTooNew) << "base + width";
  EXPECT_EQ(w.check(UINT64_MAX - 1), V::kTooNew);
  EXPECT_EQ(w.check(3), V::kInvalid) << "odd: a response id";
  EXPECT_EQ(w.check(0), V::kInvalid) << "below first_id";
  ASSERT_TRUE(w.mark(10));
  EXPECT_EQ(w.check(10), V::kDelivered);
  EXPECT_EQ(w.check(8), V::kFresh);
  EXPECT_EQ(w.check(12), V::kFresh);
}

TEST(RequestWindow, MarkAcceptsOnlyFreshIds) {
  RequestWindow w(64, 2);
  EXPECT_TRUE(w.mark(4));
  EXPECT_FALSE(w.mark(4)) << "a replay";
  EXPECT_FALSE(w.mark(5)) << "invalid";
  EXPECT_FALSE(w.mark(2 + 2 * 64)) << "too new";
  EXPECT_TRUE(w.mark(2));
  w.advance(nothing_in_progress);
  EXPECT_EQ(w.base(), 6u);
  EXPECT_FALSE(w.mark(2)) << "below the base";
  EXPECT_EQ(w.check(2), V::kDelivered);
}

TEST(RequestWindow, AdvancePassesMarkedAndInProgressAndStopsAtUnseen) {
  RequestWindow w(64, 2);
  w.mark(2);
  w.mark(4);
  // 6 in progress, 8 delivered, 10 unseen, 12 delivered.
  w.mark(8);
  w.mark(12);
  w.advance([](uint64_t id) { return id == 6; });
  EXPECT_EQ(w.base(), 10u) << "never passes an id not yet seen";
  EXPECT_EQ(w.check(6), V::kDelivered) << "below the base: RPC state decides";
  EXPECT_EQ(w.check(12), V::kDelivered);
  EXPECT_EQ(w.check(10), V::kFresh);
  w.advance(nothing_in_progress);
  EXPECT_EQ(w.base(), 10u) << "nothing changed, nothing passes";
  w.mark(10);
  w.advance(nothing_in_progress);
  EXPECT_EQ(w.base(), 14u);
}

TEST(RequestWindow, AdvanceAsksOnlyAboutUnmarkedIdsAtTheBase) {
  RequestWindow w(64, 2);
  w.mark(2);
  w.mark(6);
  std::set<uint64_t> asked;
  w.advance([&](uint64_t id) {
    asked.insert(id);
    return false;
  });
  EXPECT_EQ(asked, std::set<uint64_t>{4});
}

TEST(RequestWindow, AdvanceNeverPassesMoreThanTheWindow) {
  // An engine that claims everything is in progress cannot push the base past
  // ids it was never able to admit (they were kTooNew).
  RequestWindow w(64, 2);
  w.advance([](uint64_t) { return true; });
  EXPECT_EQ(w.base(), 2u + 2 * 64);
}

TEST(RequestWindow, SlotsAreCleanWhenTheRingReusesThem) {
  RequestWindow w(64, 2);
  for (uint64_t id = 2; id < 2 + 2 * 64; id += 2) ASSERT_TRUE(w.mark(id));
  EXPECT_EQ(w.check(2 + 2 * 64), V::kTooNew);
  w.advance(nothing_in_progress);
  EXPECT_EQ(w.base(), 2u + 2 * 64);
  // Every slot now belongs to the next lap, and none of those ids is marked.
  for (uint64_t id = w.base(); id < w.base() + 2 * 64; id += 2) {
    EXPECT_EQ(w.check(id), V::kFresh) << id;
  }
}

TEST(RequestWindow, AMillionIdsWrapTheRingManyTimes) {
  // W = 128: a million ids go round the ring ~7800 times, delivered out of
  // order within the window (pairs swapped) and with some in progress.
  RequestWindow w(128, 2);
  const uint64_t n = 1000000;
  std::set<uint64_t> in_progress;
  auto busy = [&](uint64_t id) { return in_progress.count(id) != 0; };
  for (uint64_t k = 0; k < n; k += 2) {
    const uint64_t a = 2 + 2 * k, b = a + 2;  // deliver b before a
    ASSERT_EQ(w.check(b), V::kFresh) << b;
    ASSERT_TRUE(w.mark(b));
    if (k % 1000 == 0) {
      in_progress.insert(a);  // a long message: passed while in progress
    } else {
      ASSERT_EQ(w.check(a), V::kFresh) << a;
      ASSERT_TRUE(w.mark(a));
    }
    ASSERT_FALSE(w.mark(b)) << "replay of " << b;
    w.advance(busy);
    ASSERT_EQ(w.base(), b + 2);
    in_progress.clear();
  }
  EXPECT_EQ(w.base(), 2 + 2 * n);
  for (uint64_t id : {uint64_t{2}, uint64_t{1000}, 2 * n}) EXPECT_EQ(w.check(id), V::kDelivered);
  EXPECT_EQ(w.check(w.base()), V::kFresh);
  EXPECT_EQ(w.memory_bytes(), 16u);
}

TEST(RequestWindow, AdvanceOverWholeWordsOfMarks) {
  RequestWindow w(1u << 16, 2);
  for (uint64_t id = 2; id < 2 + 2 * 1000; id += 2) ASSERT_TRUE(w.mark(id));
  w.advance(nothing_in_progress);
  EXPECT_EQ(w.base(), 2u + 2 * 1000);
  EXPECT_EQ(w.check(2 + 2 * 1000), V::kFresh);
  EXPECT_EQ(w.check(2 + 2 * 999), V::kDelivered);
}

TEST(RequestWindow, FirstIdIsRespected) {
  RequestWindow w(64, 1000);
  EXPECT_EQ(w.base(), 1000u);
  EXPECT_EQ(w.check(998), V::kInvalid);
  EXPECT_EQ(w.check(1000), V::kFresh);
  RequestWindow odd(64, 7);
  EXPECT_EQ(odd.base(), 8u);
}

TEST(ControlWindow, AcceptsEachNumberOnce) {
  ControlWindow w;
  EXPECT_TRUE(w.accept(1));
  EXPECT_FALSE(w.accept(1));
  EXPECT_TRUE(w.accept(2));
  EXPECT_FALSE(w.accept(2));
  EXPECT_EQ(w.highest(), 2u);
}

TEST(ControlWindow, RejectsZero) {
  ControlWindow w;
  EXPECT_FALSE(w.accept(0));
  EXPECT_TRUE(w.accept(1));
  EXPECT_FALSE(w.accept(0));
}

TEST(ControlWindow, OutOfOrderWithinTheWindow) {
  ControlWindow w;
  EXPECT_TRUE(w.accept(10));
  EXPECT_TRUE(w.accept(5));
  EXPECT_TRUE(w.accept(7));
  EXPECT_FALSE(w.accept(5));
  EXPECT_TRUE(w.accept(300));
  EXPECT_TRUE(w.accept(300 - ControlWindow::kWidth + 1)) << "the oldest number still inside";
  EXPECT_FALSE(w.accept(300 - ControlWindow::kWidth + 1));
  EXPECT_FALSE(w.accept(300 - ControlWindow::kWidth)) << "too old";
  EXPECT_FALSE(w.accept(10)) << "too old now, though never repeated";
  EXPECT_GE(ControlWindow::kWidth, 128u) << "CONTRACT §5";
}

TEST(ControlWindow, SlidingClearsReusedSlots) {
  ControlWindow w;
  for (uint64_t s = 1; s <= 10 * ControlWindow::kWidth; ++s) ASSERT_TRUE(w.accept(s)) << s;
  for (uint64_t s = 10 * ControlWindow::kWidth; s > 9 * ControlWindow::kWidth; --s) {
    ASSERT_FALSE(w.accept(s)) << s;
  }
  // Skip ahead by less than the width: the skipped numbers are fresh.
  const uint64_t h = w.highest();
  ASSERT_TRUE(w.accept(h + 100));
  for (uint64_t s = h + 1; s < h + 100; ++s) EXPECT_TRUE(w.accept(s)) << s;
  for (uint64_t s = h + 1; s <= h + 100; ++s) EXPECT_FALSE(w.accept(s)) << s;
}

TEST(ControlWindow, AJumpIsAcceptedOnceAndSlidesTheWindow) {
  // Documented: the numbers are MAC'd, so only a key holder can jump; after
  // a jump everything more than kWidth below it is too old.
  ControlWindow w;
  ASSERT_TRUE(w.accept(1));
  ASSERT_TRUE(w.accept(uint64_t{1} << 63));
  EXPECT_FALSE(w.accept(uint64_t{1} << 63));
  EXPECT_FALSE(w.accept(2)) << "too old after the jump";
  EXPECT_TRUE(w.accept((uint64_t{1} << 63) - 1));
  EXPECT_TRUE(w.accept(UINT64_MAX));
  EXPECT_FALSE(w.accept(UINT64_MAX)) << "never wraps";
  EXPECT_FALSE(w.accept(1));
}

}  // namespace
}  // namespace smt
