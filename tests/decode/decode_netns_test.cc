// smt-decode on a real capture: two smtds (TLS 1.3 control channel, --keylog)
// and smt-echo client and server in namespaces A and B, W forwarding and
// capturing; W's capture written as pcap decodes to every payload sent.
//
//   A: smtd 10.201.1.1:7853, smt-echo client :40000
//      —— W (forwards, captures IP protocol 253) ——
//   B: smtd 10.201.2.1:7853, smt-echo server :5000
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "decode_test_util.h"
#include "echo_payload.h"
#include "smt/wire.h"
#include "smtd_harness.h"
#include "support/netns.h"
#include "support/test_support.h"

namespace smt::decode::test {
namespace {

using smt::test::Topology;

constexpr const char* kSizes = "64,1500,70000";
constexpr size_t kSizeList[] = {64, 1500, 70000};
constexpr uint64_t kCount = 2;
constexpr uint64_t kSeed = 11;

std::string read_all(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool wait_for_text(const std::string& path, const std::string& text, int timeout_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (read_all(path).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(DecodeNetns, CaptureOfTwoSmtdsAndSmtEchoDecodesEveryPayloadWithoutNonceReuse) {
  using namespace smt::smtd::test;
  SMT_REQUIRE_OR_SKIP(smt::test::netns_available(), "needs root, iproute2 and nsenter");
  SMT_REQUIRE_OR_SKIP(have_bpffs(), "needs bpffs at /sys/fs/bpf");
  Cleanup cleanup;
  auto t = Topology::create();
  ASSERT_TRUE(t.ok()) << t.error().message;
  Topology& topo = *t.value();
  const std::string dir = make_temp_dir(&cleanup, "decode");
  ASSERT_FALSE(dir.empty());
  std::string out;
  ASSERT_EQ(sh(smt_certs_tool() + " " + dir + "/certs hosta hostb", &out), 0) << out;

  SmtdProcess smtd_a, smtd_b;
  auto start = [&](bool is_a) {
    const std::string me = is_a ? "a" : "b";
    const std::string mine = is_a ? Topology::kA4 : Topology::kB4;
    const std::string peer_addr = is_a ? Topology::kB4 : Topology::kA4;
    const std::string host = is_a ? "hosta" : "hostb", peer = is_a ? "hostb" : "hosta";
    const std::string conf = dir + "/" + me + ".conf";
    std::ofstream(conf) << "[local]\naddress = " << mine << "\nlisten = " << mine
                        << ":7853\ncertificate = " << dir << "/certs/" << host
                        << ".crt\nkey = " << dir << "/certs/" << host << ".key\nca = " << dir
                        << "/certs/ca.crt\n\n[peer " << peer << "]\naddress = " << peer_addr
                        << "\ncontrol = " << peer_addr << ":7853\nidentity = dns:" << peer
                        << "\n\n[uid 0]\nports = any\nephemeral = yes\n";
    SmtdProcess::Options o;
    o.config = conf;
    o.state_dir = make_pin_root(&cleanup, "dec" + me);
    o.socket = dir + "/" + me + ".sock";
    o.netns = is_a ? topo.a() : topo.b();
    o.log = dir + "/" + me + ".log";
    o.extra_args = {"--keylog", dir + "/" + me + ".keylog"};
    std::string err;
    EXPECT_TRUE((is_a ? smtd_a : smtd_b).start(o, &err)) << err;
  };
  start(true);
  start(false);
  ASSERT_FALSE(HasFailure());

  auto cap = smt::test::IpCapture::open(topo.w(), SMT_IPPROTO_DEFAULT);
  ASSERT_TRUE(cap.ok()) << cap.error().message;
  smt::test::IpCapture& capture = **cap;

  // The client's first (empty) request opens the session; then kCount RPCs
  // per size. The server answers them all and exits.
  const uint64_t rpcs = std::size(kSizeList) * kCount + 1;
  const std::string echo = SMT_ECHO_PATH;
  const std::string server_log = dir + "/server.log";
  out.clear();
  ASSERT_EQ(
      smt::test::run_in_netns_cmd(topo.b(),
                                  echo + " server --port 5000 --raw-v4 " + Topology::kB4 +
                                      " --smtd " + dir + "/b.sock --max-rpcs " +
                                      std::to_string(rpcs) + " > " + server_log + " 2>&1 & echo $!",
                                  &out),
      0)
      << out;
  const pid_t server_pid = static_cast<pid_t>(std::stol(out));
  ASSERT_GT(server_pid, 1);
  cleanup.push([server_pid] { ::kill(server_pid, SIGKILL); });
  ASSERT_TRUE(wait_for_text(server_log, "ready", 10'000)) << read_all(server_log);

  std::thread collector([&] { capture.collect(SIZE_MAX, 1000); });
  out.clear();
  const int rc = smt::test::run_in_netns_cmd(
      topo.a(),
      echo + " client --peer " + Topology::kB4 + " --port 5000 --local-port 40000 --raw-v4 " +
          Topology::kA4 + " --sizes " + kSizes + " --count " + std::to_string(kCount) + " --seed " +
          std::to_string(kSeed) + " --smtd " + dir + "/a.sock",
      &out);
  collector.join();
  ASSERT_EQ(rc, 0) << out << smtd_a.log() << smtd_b.log();
  ASSERT_NE(out.find(std::to_string(rpcs - 1) + " rpcs, 0 failed, 0 mismatched"), std::string::npos)
      << out;
  capture.collect(SIZE_MAX, 200);
  ASSERT_EQ(capture.kernel_drops(), 0u) << "the capture missed packets";
  ASSERT_GT(capture.count_type(SMT_TYPE_DATA), 0u);

  const std::string pcap = dir + "/w.pcap";
  ASSERT_TRUE(capture.write_pcap(pcap).ok());
  // Both hosts' key logs, concatenated: every session appears twice.
  write_text(dir + "/both.keylog", read_all(dir + "/a.keylog") + read_all(dir + "/b.keylog"));
  ASSERT_NE(read_all(dir + "/both.keylog").find("SMT_I_AP_0"), std::string::npos);

  DecodeOptions o;
  o.keylog_path = dir + "/both.keylog";
  o.capture_path = pcap;
  o.json = true;
  o.max_bytes = 0;
  o.check_nonces = true;
  o.quiet_control = true;
  o.leak_check = true;
  const DecodeRun r = decode(o);
  EXPECT_EQ(r.status, 0) << r.err << r.out.substr(0, 3000);
  EXPECT_NE(r.err.find(" 0 failures, "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" 0 nonce reuses"), std::string::npos) << r.err;
  // No plaintext on W's wire: none of the decrypted messages' windows is in the file.
  EXPECT_NE(r.err.find(" capture bytes: 0 found"), std::string::npos) << r.err;

  // Every payload once from the client (i->r: smtd A opened the session)
  // and once back from the server, plus the empty first RPC.
  std::map<std::pair<std::string, std::vector<uint8_t>>, int> want;
  for (const char* d : {"i->r", "r->i"}) {
    want[{d, {}}] = 1;
    for (size_t size : kSizeList) {
      for (uint64_t i = 0; i < kCount; ++i) want[{d, echo::echo_payload(kSeed, size, i)}] += 1;
    }
  }
  std::map<std::pair<std::string, std::vector<uint8_t>>, int> got;
  for (const auto& line : lines(r.out)) {
    ASSERT_EQ(json_field(line, "type"), "message") << line.substr(0, 300);
    EXPECT_EQ(json_field(line, "src")
                  .find(json_field(line, "direction") == "i->r" ? Topology::kA4 : Topology::kB4),
              0u)
        << line.substr(0, 300);
    got[{json_field(line, "direction"), smt::test::unhex(json_field(line, "data_hex"))}] += 1;
  }
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "decoded messages differ from the payloads sent";
}

}  // namespace
}  // namespace smt::decode::test
