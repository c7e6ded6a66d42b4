// smtd's datapath for untrusted uids (CONTRACT §7, docs/smtd.md "Datapath
// sockets"): an application running as uid 65534 with no capabilities gets
// its raw socket from smtd, runs RPCs through it, cannot turn it into an
// IP_HDRINCL socket or unlock its filter, and never sees packets for ports
// another application leases.
//
//   netns smtdA-<rand>                           netns smtdB-<rand>
//   smtd A 10.77.0.1:7853  <---- TLS 1.3 ---->   smtd B 10.77.0.2:7853
//   uid 65534 app :6000  <--- SMT, IP 253 --->   root echo server :5000
//   root socket :5000 (another app's lease)      raw sender (this test)
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <thread>

#include "bpf/smt_datapath_layout.h"
#include "lib/smt.hpp"
#include "smtd/smtd_client.h"
#include "smtd_harness.h"
#include "support/netns.h"
#include "support/test_support.h"

namespace smt::smtd::test {
namespace {

constexpr uint16_t kServerPort = 5000;
constexpr uint16_t kUntrustedPort = 6000;
constexpr uint32_t kUntrustedUid = 65534;
constexpr uint32_t kTrustedUid = 65533;
constexpr int kIpv6Hdrincl = 36;

/// Answers every request with its own bytes until stopped.
class EchoServer {
 public:
  explicit EchoServer(Socket& s) : s_(s), t_([this] { run(); }) {}
  ~EchoServer() {
    stop_ = true;
    t_.join();
  }

 private:
  void run() {
    while (!stop_) {
      auto m = s_.recv(SMT_RECV_REQUEST, 0, 20);
      if (!m.ok()) continue;
      auto p = m->peer();
      if (p.ok()) (void)s_.reply(*p, m->id(), m->data());
    }
  }
  Socket& s_;
  std::atomic<bool> stop_{false};
  std::thread t_;
};

/// `key=value` from the helper's output, or -1.
int value_of(const std::string& out, const std::string& key) {
  const auto pos = out.find(key + "=");
  if (pos == std::string::npos) return -1;
  return std::atoi(out.c_str() + pos + key.size() + 1);
}

class UntrustedDatapathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SMT_REQUIRE_OR_SKIP(::geteuid() == 0, "needs root (network namespaces, BPF, cgroups)");
    SMT_REQUIRE_OR_SKIP(have_bpffs(), "needs bpffs at /sys/fs/bpf");
    SMT_REQUIRE_OR_SKIP(have_netns(), "needs ip netns and nsenter");
    SMT_REQUIRE_OR_SKIP(sh("command -v setpriv >/dev/null") == 0, "needs setpriv (util-linux)");
    SMT_REQUIRE_OR_SKIP(sh("grep -q ' cgroup2 ' /proc/self/mounts") == 0,
                        "needs a cgroup v2 hierarchy mounted");
    dir_ = make_temp_dir(&cleanup_, "untrusted");
    ASSERT_FALSE(dir_.empty());
    // The unprivileged application must reach smtd's socket in here.
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
    std::string out;
    ASSERT_EQ(sh(smt_certs_tool() + " " + dir_ + "/certs hosta hostb", &out), 0) << out;
    std::string err;
    ASSERT_TRUE(make_netns_pair(&cleanup_, &ns_, &err)) << err;
    pin_a_ = make_pin_root(&cleanup_, "ua");
    pin_b_ = make_pin_root(&cleanup_, "ub");
    start(true);
    start(false);
  }
  void TearDown() override {
    a_.stop();
    b_.stop();
    cleanup_.run();
  }

  std::string sock_path(bool is_a) const { return dir_ + (is_a ? "/a.sock" : "/b.sock"); }

  void start(bool is_a) {
    const std::string me = is_a ? "a" : "b";
    const std::string my_addr = is_a ? ns_.addr_a : ns_.addr_b;
    const std::string peer_addr = is_a ? ns_.addr_b : ns_.addr_a;
    const std::string host = is_a ? "hosta" : "hostb", peer = is_a ? "hostb" : "hosta";
    const std::string conf = dir_ + "/" + me + ".conf";
    std::ofstream(conf) << "[local]\naddress = " << my_addr << "\nlisten = " << my_addr
                        << ":7853\ncertificate = " << dir_ << "/certs/" << host
                        << ".crt\nkey = " << dir_ << "/certs/" << host << ".key\nca = " << dir_
                        << "/certs/ca.crt\n\n[peer " << peer << "]\naddress = " << peer_addr
                        << "\ncontrol = " << peer_addr << ":7853\nidentity = dns:" << peer
                        << "\n\n[uid 0]\nports = any\nephemeral = yes\n\n[uid " << kUntrustedUid
                        << "]\nports = 6000-6010\n\n[uid " << kTrustedUid
                        << "]\nports = 7000\ntrusted = yes\n";
    SmtdProcess::Options o;
    o.config = conf;
    o.state_dir = is_a ? pin_a_ : pin_b_;
    o.socket = sock_path(is_a);
    o.netns = is_a ? ns_.a : ns_.b;
    o.log = dir_ + "/" + me + ".log";
    std::string err;
    ASSERT_TRUE((is_a ? a_ : b_).start(o, &err)) << err;
  }

  /// `cmd` in host A's namespace as uid 65534 with no capabilities at all.
  std::string untrusted(const std::string& cmd) const {
    return "nsenter --net=/run/netns/" + ns_.a +
           " setpriv --reuid=" + std::to_string(kUntrustedUid) +
           " --regid=" + std::to_string(kUntrustedUid) +
           " --clear-groups --inh-caps=-all --bounding-set=-all " + cmd;
  }

  /// A root libsmt socket in host A's or B's namespace bound to `port`.
  std::optional<Socket> root_socket(bool is_a, uint16_t port) {
    std::optional<Socket> out;
    const std::string path = sock_path(is_a);
    Status st = smt::test::run_in_netns(is_a ? ns_.a : ns_.b, [&] {
      smt_socket_opts o{};
      o.families = SMT_FAMILY_V4;
      o.smtd_socket = path.c_str();
      o.open_timeout_ms = 15000;
      auto s = Socket::raw(o);
      EXPECT_TRUE(s.ok()) << s.error().message;
      if (!s.ok()) return;
      Status b = s->bind(port);
      EXPECT_TRUE(b.ok()) << b.error().message;
      if (b.ok()) out.emplace(std::move(*s));
    });
    EXPECT_TRUE(st.ok()) << st.error().message;
    return out;
  }

  /// Sends `n` minimal SMT packets (ports only matter here) from host B to
  /// host A's destination port `port`.
  void send_from_b(uint16_t port, int n) {
    Status st = smt::test::run_in_netns(ns_.b, [&] {
      UniqueFd s(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, 253));
      ASSERT_TRUE(s.valid()) << std::strerror(errno);
      sockaddr_in to{};
      to.sin_family = AF_INET;
      inet_pton(AF_INET, ns_.addr_a.c_str(), &to.sin_addr);
      uint8_t pkt[60] = {};
      pkt[0] = 0x1e;  // source port 7777
      pkt[1] = 0x61;
      pkt[2] = static_cast<uint8_t>(port >> 8);
      pkt[3] = static_cast<uint8_t>(port);
      for (int i = 0; i < n; ++i) {
        ASSERT_EQ(
            ::sendto(s.get(), pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
            static_cast<ssize_t>(sizeof pkt))
            << std::strerror(errno);
      }
    });
    ASSERT_TRUE(st.ok()) << st.error().message;
  }

  /// rawfilter_stats_percpu[which] of host A, summed over CPUs.
  uint64_t filter_stat(uint32_t which) {
    UniqueFd fd(bpf_obj_get((pin_a_ + "/" SMT_MAP_RAWFILTER_STATS).c_str()));
    if (!fd) return 0;
    std::vector<uint64_t> v(static_cast<size_t>(libbpf_num_possible_cpus()));
    if (bpf_map_lookup_elem(fd.get(), &which, v.data()) != 0) return 0;
    uint64_t sum = 0;
    for (uint64_t x : v) sum += x;
    return sum;
  }

  /// In host A's namespace: a raw socket of `family`/`proto` made as root,
  /// then (in a forked child) setuid to `uid` and *HDRINCL set; the errno.
  int hdrincl_errno_as(uint32_t uid, int family, int proto) {
    int result = -1;
    Status st = smt::test::run_in_netns(ns_.a, [&] {
      const pid_t pid = ::fork();
      if (pid == 0) {
        const int s = ::socket(family, SOCK_RAW, proto);
        if (s < 0) ::_exit(200);
        if (uid != 0 && ::setresuid(uid, uid, uid) != 0) ::_exit(201);
        const int one = 1;
        const int rc = family == AF_INET
                           ? ::setsockopt(s, IPPROTO_IP, IP_HDRINCL, &one, sizeof one)
                           : ::setsockopt(s, IPPROTO_IPV6, kIpv6Hdrincl, &one, sizeof one);
        ::_exit(rc == 0 ? 0 : errno);
      }
      int status = 0;
      ::waitpid(pid, &status, 0);
      result = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    });
    EXPECT_TRUE(st.ok());
    return result;
  }

  Cleanup cleanup_;
  std::string dir_, pin_a_, pin_b_;
  NetnsPair ns_;
  SmtdProcess a_, b_;
};

TEST_F(UntrustedDatapathTest, UnprivilegedApplicationRunsEchoRpcsThroughSmtdsRawSocket) {
  auto srv = root_socket(false, kServerPort);
  ASSERT_TRUE(srv.has_value());
  EchoServer echo(*srv);

  // smt-echo as uid 65534 without capabilities: it cannot open a raw socket
  // itself, so every packet goes through the one smtd made for it.
  std::string out;
  ASSERT_EQ(sh(untrusted(std::string(SMT_ECHO_PATH) + " client --peer " + ns_.addr_b +
                         " --port 5000 --local-port 6000 --sizes 1,1000,5000,70000 --count 3" +
                         " --smtd " + sock_path(true) + " 2>&1"),
               &out),
            0)
      << out << a_.log() << b_.log();
  EXPECT_NE(out.find("12 rpcs, 0 failed, 0 mismatched"), std::string::npos) << out;
  EXPECT_EQ(out.find("using this process's own raw sockets"), std::string::npos) << out;
  EXPECT_NE(a_.log().find("handed uid 65534"), std::string::npos) << a_.log();
  EXPECT_GT(filter_stat(SMT_RAWF_ACCEPT), 0u);
}

TEST_F(UntrustedDatapathTest, UntrustedHolderCannotSetHdrinclNorUnlockItsFilter) {
  std::string out;
  ASSERT_EQ(
      sh(untrusted(std::string(SMTD_UNTRUSTED_HELPER) + " datapath " + sock_path(true)), &out), 0)
      << out << a_.log();
  EXPECT_EQ(value_of(out, "datapath_errno"), 0) << out;
  EXPECT_EQ(value_of(out, "hdrincl_errno"), EPERM) << out;
  EXPECT_EQ(value_of(out, "detach_errno"), EPERM) << out;  // SO_LOCK_FILTER
  EXPECT_EQ(value_of(out, "rcvbuf_errno"), 0) << out;      // other options pass untouched
  EXPECT_EQ(value_of(out, "own_raw_errno"), EPERM) << out;

  // The guard looks at uid and protocol, not at who made the socket.
  EXPECT_EQ(hdrincl_errno_as(kUntrustedUid, AF_INET6, 253), EPERM);
  EXPECT_EQ(hdrincl_errno_as(kUntrustedUid, AF_INET, 253), EPERM);
  // Other software is left alone: another protocol, a trusted uid, root.
  EXPECT_EQ(hdrincl_errno_as(kUntrustedUid, AF_INET, 254), 0);
  EXPECT_EQ(hdrincl_errno_as(kTrustedUid, AF_INET6, 253), 0);
  EXPECT_EQ(hdrincl_errno_as(0, AF_INET, 253), 0);
  EXPECT_EQ(hdrincl_errno_as(0, AF_INET6, 253), 0);

  // A restarted smtd takes over its pinned guard instead of adding a second
  // one, and the guard still holds.
  a_.stop();
  start(true);
  EXPECT_NE(a_.log().find("setsockopt guard taken over from the pinned link"), std::string::npos)
      << a_.log();
  EXPECT_EQ(hdrincl_errno_as(kUntrustedUid, AF_INET, 253), EPERM);
  EXPECT_EQ(hdrincl_errno_as(kTrustedUid, AF_INET, 253), 0);
}

TEST_F(UntrustedDatapathTest, UntrustedSocketSeesOnlyPacketsForPortsItLeases) {
  // Another application (root) holds port 5000 on host A, and 6005 inside
  // the untrusted uid's own range.
  auto other = root_socket(true, kServerPort);
  ASSERT_TRUE(other.has_value());
  auto root_client = SmtdClient::connect(sock_path(true));
  ASSERT_TRUE(root_client.ok());
  ASSERT_TRUE(root_client->lease(6005).ok());

  // smtd still refuses the untrusted uid ports that are not its own.
  std::string out;
  ASSERT_EQ(
      sh(untrusted(std::string(SMTD_UNTRUSTED_HELPER) + " lease " + sock_path(true) + " 5000"),
         &out),
      0);
  EXPECT_EQ(value_of(out, "lease_errno"), EACCES) << out;
  out.clear();
  ASSERT_EQ(
      sh(untrusted(std::string(SMTD_UNTRUSTED_HELPER) + " lease " + sock_path(true) + " 6005"),
         &out),
      0);
  EXPECT_EQ(value_of(out, "lease_errno"), EADDRINUSE) << out;

  const uint64_t other_before = filter_stat(SMT_RAWF_DROP_OTHER_OWNER);
  const uint64_t unleased_before = filter_stat(SMT_RAWF_DROP_NOT_LEASED);
  FILE* helper = ::popen(
      untrusted(std::string(SMTD_UNTRUSTED_HELPER) + " listen " + sock_path(true) + " 6000 1500")
          .c_str(),
      "r");
  ASSERT_NE(helper, nullptr);
  char line[256];
  std::string got;
  while (std::fgets(line, sizeof line, helper) != nullptr) {
    got += line;
    if (got.find("ready") != std::string::npos) break;
  }
  ASSERT_NE(got.find("ready"), std::string::npos) << got << a_.log();
  send_from_b(kServerPort, 10);    // leased by root
  send_from_b(6005, 10);           // leased by root, in the untrusted uid's range
  send_from_b(6001, 10);           // leased by nobody
  send_from_b(kUntrustedPort, 7);  // its own: the filter must let these through
  while (std::fgets(line, sizeof line, helper) != nullptr) got += line;
  ASSERT_EQ(::pclose(helper), 0) << got;

  EXPECT_NE(got.find("port=6000 count=7"), std::string::npos) << got;
  EXPECT_EQ(got.find("port=5000"), std::string::npos) << got;
  EXPECT_EQ(got.find("port=6005"), std::string::npos) << got;
  EXPECT_EQ(got.find("port=6001"), std::string::npos) << got;
  // Each foreign packet was dropped by the untrusted socket's filter (and by
  // root's own datapath socket's, which sees the same packets).
  EXPECT_GE(filter_stat(SMT_RAWF_DROP_OTHER_OWNER) - other_before, 20u);
  EXPECT_GE(filter_stat(SMT_RAWF_DROP_NOT_LEASED) - unleased_before, 10u);
}

}  // namespace
}  // namespace smt::smtd::test
