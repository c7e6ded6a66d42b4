// The namespace harness itself: the A — W — B topology is built as described,
// the thread switch is confined to its thread, cleanup is last-in-first-out.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "support/netns.h"
#include "support/test_support.h"

namespace smt::test {
namespace {

ino_t netns_inode(const char* path) {
  struct stat st {};
  return stat(path, &st) == 0 ? st.st_ino : 0;
}

bool netns_exists(const std::string& name) {
  struct stat st {};
  return stat(("/run/netns/" + name).c_str(), &st) == 0;
}

TEST(NetnsHarness, TopologyHasAddressesRoutesAndForwardingAndIsRemovedLifo) {
  SMT_REQUIRE_OR_SKIP(netns_available(), "needs root, iproute2 and nsenter");
  std::vector<std::string> names;
  std::vector<std::string> order;
  {
    auto t = Topology::create();
    ASSERT_TRUE(t.ok()) << t.error().message;
    Topology& topo = *t.value();
    names = {topo.a(), topo.w(), topo.b()};
    EXPECT_NE(topo.a(), topo.b());
    std::string out;
    ASSERT_EQ(run_in_netns_cmd(topo.a(), "ip -o addr show dev a0", &out), 0) << out;
    EXPECT_NE(out.find("10.201.1.1/24"), std::string::npos) << out;
    EXPECT_NE(out.find("fd53:1::1/64"), std::string::npos) << out;
    out.clear();
    ASSERT_EQ(run_in_netns_cmd(topo.b(), "ip -6 route show default", &out), 0);
    EXPECT_NE(out.find("via fd53:2::2"), std::string::npos) << out;
    out.clear();
    ASSERT_EQ(run_in_netns_cmd(topo.w(), "cat /proc/sys/net/ipv4/ip_forward", &out), 0);
    EXPECT_EQ(out, "1\n");
    EXPECT_NE(run_in_netns_cmd(topo.a(), "ip link show dev wa"), 0) << "wa lives in W only";
    topo.on_cleanup([&] {
      order.push_back("first");
      EXPECT_TRUE(netns_exists(names[1])) << "extra undo runs before the namespaces go";
    });
    topo.on_cleanup([&] { order.push_back("second"); });
  }
  EXPECT_EQ(order, (std::vector<std::string>{"second", "first"}));
  for (const auto& n : names) EXPECT_FALSE(netns_exists(n)) << n << " left behind";
}

TEST(NetnsHarness, RunInNetnsSwitchesOnlyItsOwnThread) {
  SMT_REQUIRE_OR_SKIP(netns_available(), "needs root, iproute2 and nsenter");
  auto ns = Netns::create("smt-t");
  ASSERT_TRUE(ns.ok()) << ns.error().message;
  const ino_t mine = netns_inode("/proc/thread-self/ns/net");
  const ino_t target = netns_inode(("/run/netns/" + ns.value()->name()).c_str());
  ino_t inside = 0;
  ASSERT_TRUE(run_in_netns(ns.value()->name(), [&] {
                inside = netns_inode("/proc/thread-self/ns/net");
              }).ok());
  EXPECT_EQ(inside, target);
  EXPECT_NE(inside, mine);
  EXPECT_EQ(netns_inode("/proc/thread-self/ns/net"), mine);
  EXPECT_FALSE(run_in_netns("smt-does-not-exist", [] {}).ok());
}

TEST(NetnsHarness, CleanupStackRunsNewestFirst) {
  std::vector<int> order;
  {
    CleanupStack c;
    for (int i = 0; i < 3; ++i) c.push([&order, i] { order.push_back(i); });
  }
  EXPECT_EQ(order, (std::vector<int>{2, 1, 0}));
}

}  // namespace
}  // namespace smt::test
