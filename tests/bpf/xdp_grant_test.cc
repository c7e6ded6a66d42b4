// GRANT handling of bpf/smt_xdp.bpf.c (CONTRACT §5): after the tag, an
// atomic maximum on the owner's (session, id) grant slot; the owner is woken
// only when the offset grew, gets the GRANT on a slot miss, and a replayed or
// stale GRANT is dropped. XDP writes nothing but the slot's offset.
#include <linux/bpf.h>

#include "support/test_support.h"
#include "xdp_harness.h"

namespace smt::test {
namespace {

TEST_F(XdpRxTest, GrantRaisesTheArmedSlotAndReplaysAreDropped) {
  arm_grant(raw4_, 42, 1000);
  const Bytes g30k = raw4_.control_frame(raw4_.grant(42, 30000, 1));
  check({"GRANT 30000 over 1000", g30k, 0, XDP_PASS, SMT_XDP_PASS_STACK, {SMT_XDP_GRANT_GREW}});
  EXPECT_EQ(grant_word(raw4_, 42), SMT_GRANT_SLOT(42, 30000));
  check({"the same GRANT replayed", g30k, 0, XDP_DROP, SMT_XDP_DROP_GRANT_STALE});
  check({"stale GRANT 20000 with a fresh control_seq",
         raw4_.control_frame(raw4_.grant(42, 20000, 2)), 0, XDP_DROP, SMT_XDP_DROP_GRANT_STALE});
  check({"equal GRANT 30000", raw4_.control_frame(raw4_.grant(42, 30000, 3)), 0, XDP_DROP,
         SMT_XDP_DROP_GRANT_STALE});
  EXPECT_EQ(grant_word(raw4_, 42), SMT_GRANT_SLOT(42, 30000));
  check({"GRANT 40000",
         raw4_.control_frame(raw4_.grant(42, 40000, 4)),
         0,
         XDP_PASS,
         SMT_XDP_PASS_STACK,
         {SMT_XDP_GRANT_GREW}});
  EXPECT_EQ(grant_word(raw4_, 42), SMT_GRANT_SLOT(42, 40000));
}

TEST_F(XdpRxTest, ForgedGrantChangesNoSlot) {
  arm_grant(raw4_, 42, 1000);
  Bytes forged = raw4_.control_frame(raw4_.grant(42, 1000000, 1));
  forged[kEthLen + kIpv4Len + 36] ^= 0x80;  // tag
  check({"forged GRANT", forged, 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG});
  TestSession attacker = raw4_;
  attacker.ctl_key[0] ^= 1;
  check({"GRANT under a wrong key", attacker.control_frame(attacker.grant(42, 1000000, 2)), 0,
         XDP_DROP, SMT_XDP_DROP_BAD_TAG});
  EXPECT_EQ(grant_word(raw4_, 42), SMT_GRANT_SLOT(42, 1000));
  EXPECT_EQ(mac_failures(raw4_), 2u);
}

TEST_F(XdpRxTest, GrantWithoutAnArmedSlotGoesToTheOwner) {
  // A slot armed for another id sharing the index: 42 + 15 maps to the same slot.
  arm_grant(raw4_, 42 + SMT_GRANT_SLOTS_PER_SESSION, 500);
  check({"GRANT for id 42, slot holds id 57",
         raw4_.control_frame(raw4_.grant(42, 9000, 1)),
         0,
         XDP_PASS,
         SMT_XDP_PASS_STACK,
         {SMT_XDP_GRANT_SLOT_MISS}});
  EXPECT_EQ(grant_word(raw4_, 42), SMT_GRANT_SLOT(42 + SMT_GRANT_SLOTS_PER_SESSION, 500));
  check({"GRANT for an unarmed slot",
         raw4_.control_frame(raw4_.grant(44, 9000, 2)),
         0,
         XDP_PASS,
         SMT_XDP_PASS_STACK,
         {SMT_XDP_GRANT_SLOT_MISS}});
  EXPECT_EQ(grant_word(raw4_, 44), 0u);
}

TEST_F(XdpRxTest, GrantOfOneSessionNeverTouchesAnotherSessionsSlot) {
  arm_grant(raw4b_, 42, 100);  // session B's slot for its message 42
  check({"session A's GRANT for id 42",
         raw4_.control_frame(raw4_.grant(42, 50000, 1)),
         0,
         XDP_PASS,
         SMT_XDP_PASS_STACK,
         {SMT_XDP_GRANT_SLOT_MISS}});
  EXPECT_EQ(grant_word(raw4b_, 42), SMT_GRANT_SLOT(42, 100));
  // B's ports tagged with A's key: the tag decides, not the ports.
  TestSession a_as_b = raw4b_;
  a_as_b.ctl_key = raw4_.ctl_key;
  check({"A's key with B's ports", a_as_b.control_frame(a_as_b.grant(42, 50000, 2)), 0, XDP_DROP,
         SMT_XDP_DROP_BAD_TAG});
  EXPECT_EQ(grant_word(raw4b_, 42), SMT_GRANT_SLOT(42, 100));
  check({"B's own GRANT",
         raw4b_.control_frame(raw4b_.grant(42, 50000, 3)),
         0,
         XDP_PASS,
         SMT_XDP_PASS_STACK,
         {SMT_XDP_GRANT_GREW}});
  EXPECT_EQ(grant_word(raw4b_, 42), SMT_GRANT_SLOT(42, 50000));
}

TEST_F(XdpRxTest, GrantOnAnAfXdpSessionWakesTheOwnerOnlyWhenTheOffsetGrew) {
  std::string why;
  ASSERT_TRUE(add_xsk_socket(&why)) << why;
  arm_grant(xsk6_, 43, 0);
  const Bytes g = xsk6_.control_frame(xsk6_.grant(43, 4096, 1));
  check({"GRANT grew: redirect",
         g,
         kXskQueue,
         XDP_REDIRECT,
         SMT_XDP_REDIRECT_XSK,
         {SMT_XDP_GRANT_GREW}});
  check({"replay: dropped, no wake-up", g, kXskQueue, XDP_DROP, SMT_XDP_DROP_GRANT_STALE});
  check({"slot miss: to the owner",
         xsk6_.control_frame(xsk6_.grant(45, 4096, 2)),
         kXskQueue,
         XDP_REDIRECT,
         SMT_XDP_REDIRECT_XSK,
         {SMT_XDP_GRANT_SLOT_MISS}});
  EXPECT_EQ(grant_word(xsk6_, 43), SMT_GRANT_SLOT(43, 4096));
}

TEST_F(XdpRxTest, DisarmedSlotTakesNoGrant) {
  arm_grant(raw4_, 42, 1000);
  publish_base(raw4_, 0);
  // The owner disarms the slot (message done); a late GRANT must not re-arm it.
  __atomic_store_n(&entry(raw4_)->grant[SMT_GRANT_SLOT_INDEX(42)], 0ull, __ATOMIC_RELEASE);
  check({"late GRANT after disarm",
         raw4_.control_frame(raw4_.grant(42, 5000, 1)),
         0,
         XDP_PASS,
         SMT_XDP_PASS_STACK,
         {SMT_XDP_GRANT_SLOT_MISS}});
  EXPECT_EQ(grant_word(raw4_, 42), 0u);
}

}  // namespace
}  // namespace smt::test
