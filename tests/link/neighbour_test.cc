// Next-hop resolution over rtnetlink on A — W — B: the route's interface,
// gateway and source; no neighbour entry until trigger() makes the kernel
// resolve one (no packet to the destination needed), then W's MAC, in both
// address families; errors for unreachable and local destinations.
#include "link/neighbour.h"

#include <gtest/gtest.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "support/netns.h"
#include "support/test_support.h"

namespace smt::link {
namespace {

using test::Topology;

class NeighbourTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SMT_REQUIRE_OR_SKIP(test::netns_available(), "needs root, iproute2 and nsenter");
    auto t = Topology::create();
    ASSERT_TRUE(t.ok()) << t.error().message;
    topo_ = std::move(t).value();
    ASSERT_EQ(test::run_in_netns_cmd(topo_->a(), "ip neigh flush all"), 0);
    ASSERT_TRUE(test::run_in_netns(topo_->a(), [&] {
                  a_ifindex_ = static_cast<int>(if_nametoindex(Topology::kDevA));
                  auto r = NeighbourResolver::open();
                  ASSERT_TRUE(r.ok()) << r.error().message;
                  resolver_.emplace(std::move(r).value());
                }).ok());
    ASSERT_TRUE(test::run_in_netns(topo_->w(), [&] {
                  UniqueFd s(socket(AF_INET, SOCK_DGRAM, 0));
                  ifreq ifr{};
                  std::strcpy(ifr.ifr_name, Topology::kDevWA);
                  ASSERT_EQ(ioctl(s.get(), SIOCGIFHWADDR, &ifr), 0);
                  std::memcpy(w_mac_.data(), ifr.ifr_hwaddr.sa_data, 6);
                }).ok());
    ASSERT_GT(a_ifindex_, 0);
  }

  // Resolves until the hop has a MAC or `ms` passed.
  NextHop wait_for_mac(const Addr& dst, int ms) {
    NextHop hop;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    do {
      auto r = resolver_->resolve(dst);
      EXPECT_TRUE(r.ok()) << r.error().message;
      if (!r.ok()) break;
      hop = *r;
      if (hop.has_mac) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (std::chrono::steady_clock::now() < end);
    return hop;
  }

  void check_family(const char* dst, const char* gateway, const char* source) {
    auto first = resolver_->resolve(Topology::addr(dst));
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_EQ(first->ifindex, a_ifindex_);
    EXPECT_EQ(first->via, Topology::addr(gateway));
    EXPECT_EQ(first->source, Topology::addr(source));
    EXPECT_FALSE(first->has_mac) << "flushed: no entry yet";
    // Nothing asks the kernel to resolve: still nothing a while later.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto still = resolver_->resolve(Topology::addr(dst));
    ASSERT_TRUE(still.ok());
    EXPECT_FALSE(still->has_mac);
    ASSERT_TRUE(resolver_->trigger(first->ifindex, first->via).ok());
    const NextHop hop = wait_for_mac(Topology::addr(dst), 5000);
    ASSERT_TRUE(hop.has_mac) << "resolution never completed, state " << hop.nud_state;
    EXPECT_EQ(hop.mac, w_mac_);
    EXPECT_NE(hop.nud_state, 0);
  }

  std::unique_ptr<Topology> topo_;
  std::optional<NeighbourResolver> resolver_;
  int a_ifindex_ = 0;
  MacAddr w_mac_{};
};

TEST_F(NeighbourTest, Ipv4RouteViaGatewayResolvesToTheGatewaysMacAfterTrigger) {
  check_family(Topology::kB4, "10.201.1.2", Topology::kA4);
}

TEST_F(NeighbourTest, Ipv6RouteViaGatewayResolvesToTheGatewaysMacAfterTrigger) {
  check_family(Topology::kB6, "fd53:1::2", Topology::kA6);
}

TEST_F(NeighbourTest, OnLinkDestinationIsItsOwnNextHop) {
  auto hop = resolver_->resolve(Topology::addr("10.201.1.2"));
  ASSERT_TRUE(hop.ok()) << hop.error().message;
  EXPECT_EQ(hop->via, Topology::addr("10.201.1.2"));
  EXPECT_EQ(hop->ifindex, a_ifindex_);
}

TEST_F(NeighbourTest, TriggerOnAValidEntryKeepsItsMac) {
  const Addr w4 = Topology::addr("10.201.1.2");
  ASSERT_TRUE(resolver_->trigger(a_ifindex_, w4).ok());
  ASSERT_TRUE(wait_for_mac(w4, 3000).has_mac);
  ASSERT_TRUE(resolver_->trigger(a_ifindex_, w4).ok());
  const auto again = resolver_->resolve(w4);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->has_mac);
  EXPECT_EQ(again->mac, w_mac_);
}

TEST_F(NeighbourTest, UnreachableAndLocalDestinationsAreErrors) {
  ASSERT_EQ(test::run_in_netns_cmd(topo_->a(), "ip route add unreachable 10.99.0.0/16"), 0);
  auto unreachable = resolver_->resolve(Topology::addr("10.99.1.1"));
  ASSERT_FALSE(unreachable.ok());
  EXPECT_EQ(unreachable.error().code, EHOSTUNREACH) << unreachable.error().message;
  auto local = resolver_->resolve(Topology::addr(Topology::kA4));
  ASSERT_FALSE(local.ok());
  EXPECT_EQ(local.error().code, EADDRNOTAVAIL) << local.error().message;
}

}  // namespace
}  // namespace smt::link
