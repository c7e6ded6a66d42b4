// smt-echo end to end across namespaces (BRIEF §6): server in B, client in A,
// W forwarding and capturing. Every DATA packet a sender's link put on the
// wire crosses W, and no 16 bytes of any message appear in W's capture.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "echo_payload.h"
#include "smt/wire.h"
#include "support/netns.h"
#include "support/test_support.h"

namespace smt::test {
namespace {

constexpr const char* kSizes = "64,1024,65536,1048576";
constexpr size_t kSizeList[] = {64, 1024, 65536, 1048576};
constexpr uint64_t kCount = 3;

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The number after "<key>=" on the line starting with `line_prefix`.
std::optional<uint64_t> stat_value(const std::string& out, const std::string& line_prefix,
                                   const std::string& key) {
  std::smatch m;
  const std::regex re(line_prefix + "[^\n]* " + key + "=([0-9]+)");
  if (!std::regex_search(out, m, re)) return std::nullopt;
  return std::stoull(m[1].str());
}

bool wait_for_text(const std::string& path, const std::string& text, int timeout_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (read_file(path).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

uint64_t fingerprint(const uint8_t* p) {
  uint64_t a, b;
  std::memcpy(&a, p, 8);
  std::memcpy(&b, p + 8, 8);
  return (a ^ (b * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
}

// Every 16-byte window of the captured payloads, for fast "does this appear
// anywhere" queries (a hit is confirmed byte for byte).
class WindowIndex {
 public:
  explicit WindowIndex(const std::vector<CapturedIp>& pkts) : pkts_(pkts) {
    for (const auto& c : pkts) {
      for (size_t i = 0; i + 16 <= c.payload.size(); ++i)
        prints_.push_back(fingerprint(&c.payload[i]));
    }
    std::sort(prints_.begin(), prints_.end());
  }
  bool contains(const uint8_t* w) const {
    if (!std::binary_search(prints_.begin(), prints_.end(), fingerprint(w))) return false;
    for (const auto& c : pkts_) {
      if (std::search(c.payload.begin(), c.payload.end(), w, w + 16) != c.payload.end()) {
        return true;
      }
    }
    return false;
  }

 private:
  const std::vector<CapturedIp>& pkts_;
  std::vector<uint64_t> prints_;
};

TEST(EchoNetns, EchoAcrossAForwarderCountsEveryDataPacketAndLeaksNoPlaintext) {
  SMT_REQUIRE_OR_SKIP(netns_available(), "needs root, iproute2 and nsenter");
  auto t = Topology::create();
  ASSERT_TRUE(t.ok()) << t.error().message;
  Topology& topo = *t.value();

  char dir_tmpl[] = "/tmp/smt-echo-netns-XXXXXX";
  ASSERT_NE(mkdtemp(dir_tmpl), nullptr);
  const std::string dir = dir_tmpl;
  topo.on_cleanup([dir] { run_command("rm -rf " + dir, nullptr); });
  const std::string key = dir + "/key";
  const std::string log = dir + "/server.log";
  const std::string echo = SMT_ECHO_PATH;
  ASSERT_EQ(run_command(echo + " genkey > " + key, nullptr), 0);
  const uint64_t serial = std::random_device{}() | 1;
  const std::string common = " --secret-file " + key + " --serial " + std::to_string(serial);

  // Resolve neighbours on every hop first (a UDP datagram each way and the
  // ICMP error back): a packet sent while its neighbour is unresolved may be
  // dropped before W sees it, and this test counts packets exactly.
  for (const char* b : {Topology::kB4, Topology::kB6}) {
    run_in_netns_cmd(topo.a(), std::string("bash -c 'echo > /dev/udp/") + b + "/9'");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  auto cap = IpCapture::open(topo.w(), SMT_IPPROTO_DEFAULT);
  ASSERT_TRUE(cap.ok()) << cap.error().message;
  IpCapture& capture = **cap;

  // The server answers both clients' RPCs, then prints its counters and exits.
  const uint64_t total_rpcs = 2 * std::size(kSizeList) * kCount;
  std::string out;
  ASSERT_EQ(run_in_netns_cmd(topo.b(),
                             echo + " server --port 2000 --peer " + Topology::kA4 + " --peer " +
                                 Topology::kA6 + " --max-rpcs " + std::to_string(total_rpcs) +
                                 common + " > " + log + " 2>&1 & echo $!",
                             &out),
            0)
      << out;
  const pid_t server_pid = static_cast<pid_t>(std::stol(out));
  ASSERT_GT(server_pid, 1);
  topo.on_cleanup([server_pid] { kill(server_pid, SIGKILL); });
  ASSERT_TRUE(wait_for_text(log, "ready", 10'000)) << read_file(log);

  std::thread collector([&] { capture.collect(SIZE_MAX, 1000); });
  struct Run {
    const char* peer;
    uint64_t seed;
    uint64_t tx_data = 0;
  };
  Run runs[] = {{Topology::kB4, 1}, {Topology::kB6, 2}};
  for (Run& r : runs) {
    std::string cout;
    const int rc = run_in_netns_cmd(topo.a(),
                                    echo + " client --peer " + r.peer + " --port 2000 --sizes " +
                                        kSizes + " --count " + std::to_string(kCount) + " --seed " +
                                        std::to_string(r.seed) + " --stats" + common,
                                    &cout);
    EXPECT_EQ(rc, 0) << cout;
    EXPECT_NE(
        cout.find(std::to_string(std::size(kSizeList) * kCount) + " rpcs, 0 failed, 0 mismatched"),
        std::string::npos)
        << cout;
    auto v = stat_value(cout, "stats client:", "link_tx_data_packets");
    ASSERT_TRUE(v.has_value()) << cout;
    r.tx_data = *v;
  }
  ASSERT_TRUE(wait_for_text(log, "stats server:", 10'000)) << read_file(log);
  auto server_tx = stat_value(read_file(log), "stats server:", "link_tx_data_packets");
  ASSERT_TRUE(server_tx.has_value());
  collector.join();
  capture.collect(SIZE_MAX, 300);
  ASSERT_EQ(capture.kernel_drops(), 0u) << "the capture missed packets";

  const auto& pkts = capture.collect(0, 0);
  const auto a4 = Topology::addr(Topology::kA4), a6 = Topology::addr(Topology::kA6);
  const auto b4 = Topology::addr(Topology::kB4), b6 = Topology::addr(Topology::kB6);
  uint64_t from_a4 = 0, from_a6 = 0, from_b = 0;
  for (const auto& c : pkts) {
    if (c.payload.size() <= 13 || c.payload[13] != SMT_TYPE_DATA) continue;
    EXPECT_FALSE(c.fragment);
    from_a4 += c.src == a4;
    from_a6 += c.src == a6;
    from_b += c.src == b4 || c.src == b6;
  }
  EXPECT_GT(runs[0].tx_data, 0u);
  EXPECT_EQ(from_a4, runs[0].tx_data) << "client DATA packets over IPv4";
  EXPECT_EQ(from_a6, runs[1].tx_data) << "client DATA packets over IPv6";
  EXPECT_EQ(from_b, *server_tx) << "server DATA packets, both families";

  WindowIndex index(pkts);
  // Positive control: the index finds bytes that did cross.
  ASSERT_FALSE(pkts.empty());
  ASSERT_GE(pkts.back().payload.size(), 16u);
  ASSERT_TRUE(index.contains(pkts.back().payload.data()));
  uint64_t leaks = 0;
  for (const Run& r : runs) {
    for (size_t size : kSizeList) {
      for (uint64_t i = 0; i < kCount; ++i) {
        const auto p = echo::echo_payload(r.seed, size, i);
        for (size_t off = 0; off + 16 <= p.size(); ++off) leaks += index.contains(&p[off]);
      }
    }
  }
  EXPECT_EQ(leaks, 0u) << "16-byte windows of message plaintext seen on W";
}

}  // namespace
}  // namespace smt::test
