// smtd's locked key arena (CONTRACT §7): key material never reaches swap
// (mlock) or a core file (MADV_DONTDUMP), and a released slot is wiped.
#include "smtd/key_arena.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

// AddressSanitizer turns mlock into a no-op (it says so on stderr), so the
// sanitizer build can only check the core-dump exclusion.
#if defined(__SANITIZE_ADDRESS__)
#define SMT_MLOCK_IS_REAL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SMT_MLOCK_IS_REAL 0
#endif
#endif
#ifndef SMT_MLOCK_IS_REAL
#define SMT_MLOCK_IS_REAL 1
#endif

namespace smt::smtd {
namespace {

// The smaps block of the mapping that contains `p`.
std::string smaps_block(const void* p) {
  std::ifstream f("/proc/self/smaps");
  std::string line, block;
  bool in = false;
  const auto addr = reinterpret_cast<uintptr_t>(p);
  while (std::getline(f, line)) {
    unsigned long lo, hi;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > 8) {
      if (in) break;
      in = addr >= lo && addr < hi;
    }
    if (in) block += line + "\n";
  }
  return block;
}

TEST(KeyArena, SlotsAreLockedAndExcludedFromCoreDumps) {
  auto arena = KeyArena::create(4);
  ASSERT_TRUE(arena.ok()) << arena.error().message;
  auto slot = (*arena)->take();
  ASSERT_TRUE(slot.ok());
  const std::string block = smaps_block(slot->data());
  ASSERT_FALSE(block.empty()) << "slot not found in /proc/self/smaps";
  std::istringstream in(block);
  std::string line;
  long locked_kb = -1;
  std::string flags;
  while (std::getline(in, line)) {
    if (line.rfind("Locked:", 0) == 0) locked_kb = std::stol(line.substr(7));
    if (line.rfind("VmFlags:", 0) == 0) flags = line.substr(8);
  }
  if (SMT_MLOCK_IS_REAL) {
    EXPECT_GT(locked_kb, 0) << block;
    EXPECT_NE(flags.find(" lo"), std::string::npos) << "not mlocked: " << flags;
  }
  EXPECT_NE(flags.find(" dd"), std::string::npos) << "not MADV_DONTDUMP: " << flags;
}

TEST(KeyArena, ReleasedSlotIsWipedAndTheArenaIsBounded) {
  auto arena = KeyArena::create(2);
  ASSERT_TRUE(arena.ok());
  // At least the slots asked for (the arena may round up to a page), and
  // then ENOMEM rather than unlocked memory.
  std::vector<LockedSlot> held;
  for (;;) {
    auto s = (*arena)->take();
    if (!s.ok()) {
      EXPECT_EQ(s.error().code, ENOMEM);
      break;
    }
    held.push_back(std::move(*s));
    ASSERT_LT(held.size(), 1000u) << "the arena does not run out";
  }
  ASSERT_GE(held.size(), 2u);
  uint8_t* p = held[0].data();
  std::memset(p, 0xab, KeyArena::kSlotSize);
  held[0].reset();
  for (size_t i = 0; i < KeyArena::kSlotSize; ++i) ASSERT_EQ(p[i], 0) << "byte " << i;
  EXPECT_EQ((*arena)->in_use(), held.size() - 1);
}

}  // namespace
}  // namespace smt::smtd
