// smtctl end to end: the real binary, run with nsenter in B of a fresh
// A — W — B topology, attaches SMT's XDP program to b0; traffic from A moves
// its counters; detach leaves no XDP on b0 and the global maps pinned.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>

#include "../bpf/xdp_frames.h"
#include "common/unique_fd.h"
#include "smt/wire.h"
#include "support/netns.h"
#include "support/test_support.h"

namespace smt::test {
namespace {

struct CtlRun {
  int rc = -1;
  std::string out;
};

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

/// The number after "key": in a JSON text, or -1.
long long json_number(const std::string& text, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  size_t pos = text.find(needle);
  if (pos == std::string::npos) return -1;
  return std::stoll(text.substr(pos + needle.size()));
}

class SmtctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SMT_REQUIRE_OR_SKIP(geteuid() == 0 && netns_available(),
                        "smtctl needs root, network namespaces and nsenter");
    SMT_REQUIRE_OR_SKIP(
        exists("/sys/fs/bpf") && run_command("mountpoint -q /sys/fs/bpf", nullptr) == 0,
        "bpffs is not mounted at /sys/fs/bpf");
    std::random_device rd;
    root_ = "/sys/fs/bpf/smtctl-test-" + std::to_string(rd() % 1000000);
    auto topo = Topology::create();
    ASSERT_TRUE(topo) << topo.error().message;
    topo_ = std::move(*topo);
  }

  void TearDown() override {
    if (topo_) smtctl(topo_->b(), "detach b0");
    topo_.reset();
    if (!root_.empty()) run_command("rm -rf " + root_, nullptr);
  }

  /// Runs smtctl with our pin root inside namespace `ns`.
  CtlRun smtctl(const std::string& ns, const std::string& args) {
    CtlRun r;
    r.rc =
        run_in_netns_cmd(ns, std::string(SMTCTL_BIN) + " --pin-root " + root_ + " " + args, &r.out);
    return r;
  }

  /// Raw protocol-253 DATA packets from A to B for a session B does not know.
  void send_unknown_session_packets(int n) {
    Status s = run_in_netns(topo_->a(), [&] {
      UniqueFd fd(::socket(AF_INET, SOCK_RAW, SMT_IPPROTO_DEFAULT));
      ASSERT_TRUE(fd.valid()) << std::strerror(errno);
      sockaddr_in to{};
      to.sin_family = AF_INET;
      ASSERT_EQ(inet_pton(AF_INET, Topology::kB4, &to.sin_addr), 1);
      DataHeader h;
      h.sport = 40000;
      h.dport = 5000;
      h.incoming = 1000;
      h.message_id = 2;
      h.message_length = 1000;
      h.priority = 1;
      uint8_t key[kCtlKeyLen] = {1, 2, 3};
      Bytes pkt = data_packet(h, key);
      for (int i = 0; i < n; ++i) {
        ASSERT_EQ(::sendto(fd.get(), pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&to),
                           sizeof to),
                  static_cast<ssize_t>(pkt.size()))
            << std::strerror(errno);
      }
    });
    ASSERT_TRUE(s) << s.error().message;
  }

  long long counter(const std::string& name) {
    CtlRun r = smtctl(topo_->b(), "stats --json");
    EXPECT_EQ(r.rc, 0) << r.out;
    return json_number(r.out, name);
  }

  std::string root_;
  std::unique_ptr<Topology> topo_;
};

TEST_F(SmtctlTest, AttachShowsInStatusCountsTrafficAndDetachLeavesGlobalMaps) {
  CtlRun r = smtctl(topo_->b(), "attach b0");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out, "") << "smtctl is quiet unless -v";

  std::string link;
  run_in_netns_cmd(topo_->b(), "ip link show b0", &link);
  EXPECT_NE(link.find("prog/xdp"), std::string::npos) << link;

  r = smtctl(topo_->b(), "status --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("\"ifname\":\"b0\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"mode\":\"native\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"attached\":true"), std::string::npos) << r.out;
  EXPECT_GT(json_number(r.out, "prog_id"), 0) << r.out;

  // Warm-up until one packet arrives, so neighbours are resolved and every
  // packet counted below reaches b0.
  long long before = 0;
  for (int i = 0; i < 50 && before <= 0; ++i) {
    send_unknown_session_packets(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    before = counter("drop_unknown_session");
  }
  ASSERT_GT(before, 0) << "no SMT packet from A reached b0's program";
  constexpr int kPackets = 7;
  send_unknown_session_packets(kPackets);
  long long after = before;
  for (int i = 0; i < 50 && after < before + kPackets; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    after = counter("drop_unknown_session");
  }
  EXPECT_EQ(after, before + kPackets);

  r = smtctl(topo_->b(), "detach b0");
  ASSERT_EQ(r.rc, 0) << r.out;
  link.clear();
  run_in_netns_cmd(topo_->b(), "ip link show b0", &link);
  EXPECT_EQ(link.find("xdp"), std::string::npos) << link;
  EXPECT_FALSE(exists(root_ + "/if-" + link.substr(0, link.find(':'))));
  EXPECT_TRUE(exists(root_ + "/" SMT_MAP_SESSIONS));
  EXPECT_TRUE(exists(root_ + "/" SMT_MAP_PORT_LEASES));
  EXPECT_TRUE(exists(root_ + "/" SMT_MAP_GRANT_TABLES));
  r = smtctl(topo_->b(), "status --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out.find("b0"), std::string::npos) << r.out;
}

TEST_F(SmtctlTest, SkbModeIsReportedAsSkb) {
  CtlRun r = smtctl(topo_->b(), "attach b0 --mode skb");
  ASSERT_EQ(r.rc, 0) << r.out;
  std::string link;
  run_in_netns_cmd(topo_->b(), "ip link show b0", &link);
  EXPECT_NE(link.find("xdpgeneric"), std::string::npos) << link;
  r = smtctl(topo_->b(), "status --json");
  EXPECT_NE(r.out.find("\"mode\":\"skb\""), std::string::npos) << r.out;
}

TEST_F(SmtctlTest, AttachTwiceFailsWithClearError) {
  ASSERT_EQ(smtctl(topo_->b(), "attach b0").rc, 0);
  CtlRun r = smtctl(topo_->b(), "attach b0");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("already has an XDP program"), std::string::npos) << r.out;
  // The first attachment is untouched.
  r = smtctl(topo_->b(), "status --json");
  EXPECT_NE(r.out.find("\"attached\":true"), std::string::npos) << r.out;
}

TEST_F(SmtctlTest, UnknownInterfaceFailsWithMessage) {
  for (const char* cmd : {"attach nosuch0", "detach nosuch0", "features nosuch0"}) {
    CtlRun r = smtctl(topo_->b(), cmd);
    EXPECT_EQ(r.rc, 1) << cmd;
    EXPECT_NE(r.out.find("no such interface 'nosuch0'"), std::string::npos) << cmd << ": " << r.out;
  }
}

TEST_F(SmtctlTest, NotRootFailsWithMessage) {
  CtlRun r;
  r.rc = run_in_netns_cmd(topo_->b(),
                          "setpriv --reuid=65534 --regid=65534 --clear-groups " +
                              std::string(SMTCTL_BIN) + " --pin-root " + root_ + " status",
                          &r.out);
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("must run as root"), std::string::npos) << r.out;
}

TEST_F(SmtctlTest, PinRootOffBpffsFailsWithMessage) {
  CtlRun r;
  r.rc =
      run_in_netns_cmd(topo_->b(), std::string(SMTCTL_BIN) + " --pin-root /tmp attach b0", &r.out);
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("not on a BPF filesystem"), std::string::npos) << r.out;
  std::string link;
  run_in_netns_cmd(topo_->b(), "ip link show b0", &link);
  EXPECT_EQ(link.find("xdp"), std::string::npos) << link;
}

TEST_F(SmtctlTest, BadUsageExitsTwo) {
  for (const char* cmd : {"", "attach", "attach b0 --mode turbo", "frobnicate", "status --xml"}) {
    CtlRun r = smtctl(topo_->b(), cmd);
    EXPECT_EQ(r.rc, 2) << "'" << cmd << "': " << r.out;
  }
}

TEST_F(SmtctlTest, SessionsListsIdentifiersNeverKeys) {
  ASSERT_EQ(smtctl(topo_->b(), "attach b0").rc, 0);
  UniqueFd fd(bpf_obj_get((root_ + "/" SMT_MAP_SESSIONS).c_str()));
  ASSERT_TRUE(fd.valid()) << std::strerror(errno);
  smt_session_key k;
  std::memset(&k, 0, sizeof k);
  auto local = Topology::addr(Topology::kB4), remote = Topology::addr(Topology::kA4);
  std::memcpy(k.local_addr, local.data(), 16);
  std::memcpy(k.remote_addr, remote.data(), 16);
  k.local_port = htons(5000);
  k.remote_port = htons(40000);
  smt_session_value v;
  std::memset(&v, 0, sizeof v);
  v.serial = 42;
  std::memset(v.rx_ctl_key, 0xab, sizeof v.rx_ctl_key);
  std::memset(v.tx_ctl_key, 0xcd, sizeof v.tx_ctl_key);
  v.owner_id = 7;
  v.owner_queue = 3;
  v.session_slot = 9;
  v.flags = SMT_SESSION_F_AF_XDP;
  ASSERT_EQ(bpf_map_update_elem(fd.get(), &k, &v, BPF_ANY), 0) << std::strerror(errno);

  CtlRun r = smtctl(topo_->b(), "sessions --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("\"local\":\"10.201.2.1\",\"local_port\":5000,\"remote\":\"10.201.1.1\","
                       "\"remote_port\":40000,\"serial\":42,\"owner\":7,\"queue\":3,\"slot\":9,"
                       "\"flags\":1"),
            std::string::npos)
      << r.out;
  CtlRun text = smtctl(topo_->b(), "sessions");
  for (const std::string& out : {r.out, text.out}) {
    for (const char* secret : {"abab", "ABAB", "cdcd", "CDCD", "171", "205"}) {
      EXPECT_EQ(out.find(secret), std::string::npos) << secret << " in " << out;
    }
  }
}

TEST_F(SmtctlTest, FeaturesReportsWhatTheDriverSaysQueuesAndMtu) {
  CtlRun r = smtctl(topo_->b(), "features b0");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("driver veth"), std::string::npos) << r.out;
  // veth: native XDP and redirect, copy-mode AF_XDP only (PLATFORM.md).
  EXPECT_NE(r.out.find("xdp features basic redirect"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("native XDP yes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("AF_XDP yes, zero-copy no"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mtu 1500"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("queues rx 1"), std::string::npos) << r.out;
  // The loopback device implements no XDP in its driver.
  r = smtctl(topo_->b(), "features lo");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("xdp features none"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("native XDP no"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace smt::test
