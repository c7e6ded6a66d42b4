// smt-bench's own code: the request and usage parsers refuse hostile input,
// the 4-byte framing survives arbitrary read boundaries and refuses oversize
// frames, the JSON lines report what was measured, and, against a real
// server on loopback, bulk requests get their small replies and handshake
// rounds resume only when the server issues tickets.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "bench_protocol.h"
#include "bench_report.h"
#include "bench_run.h"
#include "bench_server_usage.h"
#include "handshake_bench.h"
#include "stream_conn.h"
#include "stream_stack.h"
#include "support/test_support.h"

namespace smt::bench {
namespace {

std::vector<uint8_t> bytes_le(std::initializer_list<uint32_t> words) {
  std::vector<uint8_t> out;
  for (uint32_t w : words) {
    for (int i = 0; i < 4; ++i) out.push_back(uint8_t(w >> (8 * i)));
  }
  return out;
}

// ---- parsers ---------------------------------------------------------------

TEST(BenchProtocol, RequestShorterThanItsHeaderIsRejected) {
  const auto full = bytes_le({uint32_t(Op::kEcho), 64});
  for (size_t n = 0; n < kRequestHeaderLen; ++n) {
    auto h = parse_request_header({full.data(), n});
    ASSERT_FALSE(h.ok()) << n << " bytes";
    EXPECT_EQ(h.error().code, EPROTO);
    EXPECT_NE(h.error().message.find("no header"), std::string::npos) << h.error().message;
  }
  EXPECT_TRUE(parse_request_header(full).ok());
}

TEST(BenchProtocol, ReplyLengthPastTheMessageLimitIsRejected) {
  for (uint32_t len : {kMaxMessage + 1, 0xffffffffu}) {
    auto h = parse_request_header(bytes_le({uint32_t(Op::kEcho), len}));
    ASSERT_FALSE(h.ok()) << len;
    EXPECT_EQ(h.error().code, EPROTO);
    EXPECT_NE(h.error().message.find("too large"), std::string::npos) << h.error().message;
  }
  auto at_limit = parse_request_header(bytes_le({uint32_t(Op::kEcho), kMaxMessage}));
  ASSERT_TRUE(at_limit.ok());
  EXPECT_EQ(at_limit->reply_len, kMaxMessage);
}

TEST(BenchProtocol, UnknownOpIsRejected) {
  for (uint32_t op : {0u, 3u, 0x100u, 0xffffffffu}) {
    auto h = parse_request_header(bytes_le({op, 8}));
    ASSERT_FALSE(h.ok()) << op;
    EXPECT_EQ(h.error().code, EPROTO);
    EXPECT_NE(h.error().message.find("unknown request op"), std::string::npos);
  }
}

TEST(BenchProtocol, UsageOfAnyLengthButTwentyBytesIsRejected) {
  std::vector<uint8_t> buf(kServerUsageLen + 8, 0xab);
  for (size_t n :
       {size_t(0), size_t(1), kServerUsageLen - 1, kServerUsageLen + 1, kServerUsageLen + 8}) {
    auto u = parse_usage({buf.data(), n});
    ASSERT_FALSE(u.ok()) << n << " bytes";
    EXPECT_EQ(u.error().code, EPROTO);
  }
}

TEST(BenchProtocol, UsageRoundTrips) {
  const ServerUsage in{0x0102030405060708ull, 0x8000000000000003ull, 7};
  std::array<uint8_t, kServerUsageLen> buf{};
  encode_usage(in, buf);
  auto out = parse_usage(buf);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->cpu_us, in.cpu_us);
  EXPECT_EQ(out->ran_on, in.ran_on);
  EXPECT_EQ(out->threads, in.threads);
}

TEST(BenchProtocol, MadeRequestCarriesItsSizeOpAndReplyLength) {
  const auto req = make_request(Op::kEcho, 1000, 64);
  ASSERT_EQ(req.size(), 1000u);
  auto h = parse_request_header(req);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->op, Op::kEcho);
  EXPECT_EQ(h->reply_len, 64u);
  // A size below the header still yields a whole header.
  const auto tiny = make_request(Op::kCpu, 3, 0);
  ASSERT_EQ(tiny.size(), kRequestHeaderLen);
  auto t = parse_request_header(tiny);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->op, Op::kCpu);
}

TEST(BenchProtocol, FrameLengthPastTheLimitIsEmsgsize) {
  const auto big = bytes_le({kMaxMessage + 1});
  auto r = parse_frame_len(std::span<const uint8_t, kFrameHeaderLen>(big.data(), 4));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, EMSGSIZE);
  const auto ok = bytes_le({kMaxMessage});
  EXPECT_TRUE(parse_frame_len(std::span<const uint8_t, kFrameHeaderLen>(ok.data(), 4)).ok());
}

// ---- StreamConn framing over a socket pair -------------------------------------

// One end as a plain (non-TLS) StreamConn, the other as a raw fd.
struct Pair {
  std::unique_ptr<StreamConn> conn;
  UniqueFd peer;
};

Pair make_pair() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  return {std::make_unique<StreamConn>(UniqueFd(fds[0]), Ssl()), UniqueFd(fds[1])};
}

std::vector<uint8_t> framed(const std::vector<uint8_t>& msg) {
  auto out = bytes_le({uint32_t(msg.size())});
  out.insert(out.end(), msg.begin(), msg.end());
  return out;
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed + i * 7 + (i >> 8));
  return v;
}

TEST(StreamConnFraming, FramesSplitAcrossReadsArriveWholeAndInOrder) {
  auto [conn, peer] = make_pair();
  const std::vector<std::vector<uint8_t>> msgs = {
      pattern(1, 1), {}, pattern(300, 2), pattern(70000, 3)};
  std::vector<uint8_t> stream;
  for (const auto& m : msgs) {
    const auto f = framed(m);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  std::vector<std::vector<uint8_t>> got;
  auto on_msg = [&](std::span<const uint8_t> m) -> Status {
    got.emplace_back(m.begin(), m.end());
    return {};
  };
  // Chunks of 1, 2, 3 ... bytes: every header and body is cut somewhere.
  size_t off = 0;
  for (size_t step = 1; off < stream.size(); ++step) {
    const size_t n = std::min(step, stream.size() - off);
    ASSERT_EQ(::send(peer.get(), stream.data() + off, n, 0), ssize_t(n));
    off += n;
    ASSERT_TRUE(conn->receive(on_msg).ok());
  }
  ASSERT_EQ(got.size(), msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) EXPECT_EQ(got[i], msgs[i]) << "message " << i;
}

TEST(StreamConnFraming, FrameAboveTheMaximumIsRefusedBeforeItsBody) {
  auto [conn, peer] = make_pair();
  const auto hdr = bytes_le({kMaxMessage + 1});
  ASSERT_EQ(::send(peer.get(), hdr.data(), hdr.size(), 0), 4);
  bool called = false;
  auto st = conn->receive([&](std::span<const uint8_t>) -> Status {
    called = true;
    return {};
  });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, EMSGSIZE);
  EXPECT_NE(st.error().message.find("exceeds the limit"), std::string::npos) << st.error().message;
  EXPECT_FALSE(called);
}

TEST(StreamConnFraming, PeerCloseIsEconnreset) {
  auto [conn, peer] = make_pair();
  auto noop = [](std::span<const uint8_t>) -> Status { return {}; };
  ASSERT_TRUE(conn->receive(noop).ok());  // nothing yet: would block, no error
  peer.reset();
  auto st = conn->receive(noop);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ECONNRESET);
}

TEST(StreamConnFraming, PeerCloseInsideAFrameIsEconnreset) {
  auto [conn, peer] = make_pair();
  const auto f = framed(pattern(100, 9));
  ASSERT_EQ(::send(peer.get(), f.data(), 50, 0), 50);
  peer.reset();
  bool called = false;
  auto st = conn->receive([&](std::span<const uint8_t>) -> Status {
    called = true;
    return {};
  });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ECONNRESET);
  EXPECT_FALSE(called);
}

TEST(StreamConnFraming, BorrowedBulkFramesKeepTheirPlaceBetweenCopiedOnes) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  StreamConn tx{UniqueFd(fds[0]), Ssl()}, rx{UniqueFd(fds[1]), Ssl()};
  const auto small1 = pattern(10, 1), bulk1 = pattern(3 << 20, 2), small2 = pattern(20, 3),
             bulk2 = pattern(1 << 20, 4), small3 = pattern(30, 5);
  ASSERT_TRUE(tx.send_frame(small1).ok());
  ASSERT_TRUE(tx.send_frame_borrowed(bulk1).ok());
  ASSERT_TRUE(tx.send_frame(small2).ok());
  ASSERT_TRUE(tx.send_frame_borrowed(bulk2).ok());
  ASSERT_TRUE(tx.send_frame_borrowed(small3).ok());  // small: copied
  ASSERT_TRUE(tx.has_pending_output());              // megabytes do not fit a socket buffer
  std::vector<std::vector<uint8_t>> got;
  for (int spins = 0; got.size() < 5 && spins < 100000; ++spins) {
    ASSERT_TRUE(tx.flush().ok());
    ASSERT_TRUE(rx.receive([&](std::span<const uint8_t> m) -> Status {
                    got.emplace_back(m.begin(), m.end());
                    return {};
                  }).ok());
  }
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0], small1);
  EXPECT_TRUE(got[1] == bulk1);
  EXPECT_EQ(got[2], small2);
  EXPECT_TRUE(got[3] == bulk2);
  EXPECT_EQ(got[4], small3);
  EXPECT_FALSE(tx.has_pending_output());
}

TEST(StreamConnFraming, MessageAboveTheMaximumIsNotSent) {
  auto [conn, peer] = make_pair();
  std::vector<uint8_t> huge(size_t(kMaxMessage) + 1);
  auto st = conn->send_frame(huge);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, EMSGSIZE);
  EXPECT_FALSE(conn->has_pending_output());
}

// ---- JSON lines ------------------------------------------------------------------

// The value text of `"key": value` in a flat JSON line ("" when absent).
std::string field(const std::string& json, const std::string& key) {
  const std::string k = "\"" + key + "\": ";
  const size_t at = json.find(k);
  if (at == std::string::npos) return "";
  const size_t from = at + k.size();
  return json.substr(from, json.find_first_of(",}", from) - from);
}

TEST(BenchJson, RunLineReportsPercentilesRatesAndReplySize) {
  ClientOptions o;
  o.size = 1000;
  o.reply_size = 64;
  RunResult r;
  for (int i = 1; i <= 100; ++i) r.rtt_us.push_back(i);
  std::shuffle(r.rtt_us.begin(), r.rtt_us.end(), std::mt19937(7));
  r.seconds = 2;
  r.client_cpu_us = 500;
  r.server_before.cpu_us = 1000;
  r.server_after.cpu_us = 1300;
  const std::string j = run_json(o, r);
  EXPECT_EQ(field(j, "count"), "100");
  EXPECT_EQ(field(j, "size"), "1000");
  EXPECT_EQ(field(j, "reply_size"), "64");
  EXPECT_EQ(field(j, "p50_us"), "50.000");
  EXPECT_EQ(field(j, "p99_us"), "99.000");
  EXPECT_EQ(field(j, "p999_us"), "100.000");
  EXPECT_EQ(field(j, "mean_us"), "50.500");
  EXPECT_EQ(field(j, "rpcs_per_s"), "50.000");
  EXPECT_EQ(field(j, "request_bytes_per_s"), "50000.000");
  EXPECT_EQ(field(j, "client_cpu_us_per_rpc"), "5.000");
  EXPECT_EQ(field(j, "server_cpu_us_per_rpc"), "3.000");
}

TEST(BenchJson, ReplySizeDefaultsToTheRequestSize) {
  ClientOptions o;
  o.size = 4096;
  RunResult r;
  EXPECT_EQ(reply_size(o), 4096u);
  EXPECT_EQ(field(run_json(o, r), "reply_size"), "4096");
}

TEST(BenchJson, HandshakeLineReportsEachPartAndTheirSum) {
  ClientOptions o;
  o.common.stack = Stack::kTls;
  o.resume = true;
  HandshakeResult r;
  for (int i = 10; i >= 1; --i) {
    r.handshake_us.push_back(i * 100);
    r.rpc_us.push_back(11 - i);  // the slowest handshake had the fastest RPC
  }
  r.resumed = 10;
  const std::string j = handshake_json(o, r);
  EXPECT_EQ(field(j, "rounds"), "10");
  EXPECT_EQ(field(j, "resumed"), "10");
  EXPECT_EQ(field(j, "resume"), "true");
  EXPECT_EQ(field(j, "p50_us"), "500.000");
  EXPECT_EQ(field(j, "p90_us"), "900.000");
  EXPECT_EQ(field(j, "p99_us"), "1000.000");
  EXPECT_EQ(field(j, "rpc_p50_us"), "5.000");
  // Sums per round (i*100 + 11-i), not sums of percentiles.
  EXPECT_EQ(field(j, "both_p50_us"), "506.000");
  EXPECT_EQ(field(j, "both_p99_us"), "1001.000");
}

// ---- against a real server on loopback --------------------------------------------

std::string source_dir() {
  const char* src = std::getenv("SMT_SOURCE_DIR");
  return src != nullptr ? src : SMT_SOURCE_DIR_FALLBACK;
}

// A port nobody listens on now (the kernel's pick for an ephemeral bind).
uint16_t free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    return 0;
  }
  return ntohs(sa.sin_port);
}

// True once some socket listens on `port` (/proc/net/tcp, state 0A).
bool listening(uint16_t port) {
  std::ifstream in("/proc/net/tcp");
  char want[8];
  std::snprintf(want, sizeof want, ":%04X", port);
  for (std::string line; std::getline(in, line);) {
    if (line.find(std::string(want) + " ") != std::string::npos &&
        line.find(" 0A ") != std::string::npos) {
      return true;
    }
  }
  return false;
}

class LoopbackServer : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/smt-bench-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::string out;
    ASSERT_EQ(
        test::run_command(source_dir() + "/tools/smt-certs " + dir_ + " srv client 2>&1", &out), 0)
        << out;
    port_ = free_port();
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    stop_ = true;
    if (server_.joinable()) server_.join();
    test::run_command("rm -rf '" + dir_ + "'", nullptr);
  }

  void start(Stack stack, bool tickets, bool client_auth) {
    so_.common.stack = stack;
    so_.common.port = port_;
    so_.threads = 1;
    so_.cert = dir_ + "/srv.crt";
    so_.key = dir_ + "/srv.key";
    so_.tickets = tickets;
    if (client_auth) so_.client_ca = dir_ + "/ca.crt";
    server_ = std::thread([this] { server_status_ = run_stream_server(so_, stop_); });
    for (int i = 0; i < 200 && !listening(port_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(listening(port_)) << "server never listened on " << port_;
  }

  ClientOptions client(Stack stack, bool with_cert) {
    ClientOptions o;
    o.common.stack = stack;
    o.common.port = port_;
    o.common.timeout_ms = 5000;
    o.host = "127.0.0.1";
    o.ca = dir_ + "/ca.crt";
    o.tls_name = "srv";
    if (with_cert) {
      o.client_cert = dir_ + "/client.crt";
      o.client_key = dir_ + "/client.key";
    }
    return o;
  }

  std::string dir_;
  uint16_t port_ = 0;
  ServerOptions so_;
  std::atomic<bool> stop_{false};
  std::thread server_;
  Status server_status_;
};

TEST_F(LoopbackServer, BulkRequestsGetTheSmallReplyTheyAskFor) {
  for (Stack stack : {Stack::kTcp, Stack::kTls}) {
    SCOPED_TRACE(stack_name(stack));
    stop_ = false;
    port_ = free_port();
    start(stack, false, false);
    ClientOptions o = client(stack, false);
    o.size = 1 << 20;
    o.reply_size = 64;
    o.count = 6;
    o.warmup = 1;
    o.concurrency = 2;
    auto r = run_stream_client(o);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->failures, 0u);
    EXPECT_EQ(r->rtt_us.size(), 6u);
    const std::string j = run_json(o, *r);
    EXPECT_EQ(field(j, "reply_size"), "64");
    EXPECT_GT(std::stod(field(j, "request_bytes_per_s")), 0.0) << j;
    stop_ = true;
    server_.join();
    ASSERT_TRUE(server_status_.ok());
  }
}

// A paced background stream: the 1 MiB messages beside the measured RPCs
// go at the rate asked for (here 50 MB/s over ~0.5 s), where unpaced
// loopback TCP moves well over 100 MB/s.
TEST_F(LoopbackServer, PacedBackgroundStreamKeepsToItsRate) {
  start(Stack::kTcp, false, false);
  ClientOptions o = client(Stack::kTcp, false);
  o.size = 64;
  o.count = 20000;
  o.warmup = 10;
  o.background = true;
  o.connections = 2;
  o.background_mb_per_s = 50;
  auto r = run_stream_client(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->failures, 0u);
  const double mb_per_s = double(r->background_messages) * o.background_size / 1e6 / r->seconds;
  EXPECT_LE(mb_per_s, 50 * 1.25) << r->background_messages << " messages in " << r->seconds << " s";
  EXPECT_GE(r->background_messages, 3u) << r->seconds << " s";
  stop_ = true;
  server_.join();
  ASSERT_TRUE(server_status_.ok());
}

TEST(BenchPacer, AllowsTheFirstMessageThenHoldsToTheRate) {
  Pacer unpaced(0);
  unpaced.sent(1 << 30);
  EXPECT_TRUE(unpaced.allow());
  Pacer p(1000);  // 1000 MB/s: 1 MB per ms
  EXPECT_TRUE(p.allow());
  p.sent(10'000'000);  // 10 ms worth
  EXPECT_FALSE(p.allow());
  std::this_thread::sleep_for(std::chrono::milliseconds(12));
  EXPECT_TRUE(p.allow());
}

// A peer that answers every echo with one byte short of what was asked:
// the client must count each such reply as a failure, not a measurement.
TEST_F(LoopbackServer, ReplyOfTheWrongSizeCountsAsAFailure) {
  UniqueFd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto sa = ipv4_endpoint("127.0.0.1", port_);
  ASSERT_TRUE(sa.ok());
  ASSERT_EQ(::bind(lfd.get(), reinterpret_cast<const sockaddr*>(&*sa), sizeof *sa), 0);
  ASSERT_EQ(::listen(lfd.get(), 4), 0);
  server_ = std::thread([&] {
    UniqueFd cfd(::accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    StreamConn c{std::move(cfd), Ssl()};
    ServerAccounting acct(1);
    const std::vector<uint8_t> filler(1024, 0x5a);
    while (!stop_) {
      pollfd p{c.fd(), POLLIN, 0};
      ::poll(&p, 1, 50);
      auto st = c.receive([&](std::span<const uint8_t> msg) -> Status {
        auto h = parse_request_header(msg);
        if (!h.ok()) return h.error();
        if (h->op == Op::kCpu) return c.send_frame(acct.usage_reply());
        return c.send_frame({filler.data(), h->reply_len - 1});
      });
      if (!st.ok()) return;
    }
  });
  ClientOptions o = client(Stack::kTcp, false);
  o.size = 100;
  o.reply_size = 64;
  o.count = 3;
  o.warmup = 0;
  auto r = run_stream_client(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->failures, 3u);
  EXPECT_TRUE(r->rtt_us.empty());
}

TEST_F(LoopbackServer, ResumedHandshakesResumeEveryRoundWhenTheServerIssuesTickets) {
  start(Stack::kTls, true, true);
  ClientOptions o = client(Stack::kTls, true);
  o.handshakes = 5;
  o.resume = true;
  auto r = run_handshake_client(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->handshake_us.size(), 5u);
  EXPECT_EQ(r->rpc_us.size(), 5u);
  EXPECT_EQ(r->resumed, 5u);
}

TEST_F(LoopbackServer, FullHandshakesNeverResume) {
  start(Stack::kTls, true, true);
  ClientOptions o = client(Stack::kTls, true);
  o.handshakes = 3;
  auto r = run_handshake_client(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->handshake_us.size(), 3u);
  EXPECT_EQ(r->resumed, 0u);
}

TEST_F(LoopbackServer, ResumeFailsLoudlyWhenTheServerIssuesNoTickets) {
  start(Stack::kTls, false, true);
  ClientOptions o = client(Stack::kTls, true);
  o.handshakes = 3;
  o.resume = true;
  auto r = run_handshake_client(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, EPROTO);
  EXPECT_NE(r.error().message.find("ticket"), std::string::npos) << r.error().message;
}

TEST_F(LoopbackServer, ServerRequiringClientCertificatesRefusesAClientWithout) {
  start(Stack::kTls, true, true);
  ClientOptions o = client(Stack::kTls, false);
  o.handshakes = 2;
  auto r = run_handshake_client(o);
  // A TLS 1.3 client finishes its handshake before the server has checked
  // its certificate: the refusal surfaces on the first round's RPC, as the
  // alert or as the closed connection, whichever the client meets first.
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("round 0: ", 0), 0u) << r.error().message;
}

TEST_F(LoopbackServer, TcpConnectRoundsNeedNoTls) {
  start(Stack::kTcp, false, false);
  ClientOptions o = client(Stack::kTcp, false);
  o.handshakes = 3;
  auto r = run_handshake_client(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->handshake_us.size(), 3u);
  EXPECT_EQ(r->resumed, 0u);
  o.resume = true;
  auto refused = run_handshake_client(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, EINVAL);
}

}  // namespace
}  // namespace smt::bench
