// libsmt over the in-memory wire in real time: two sockets in one process,
// the server on its own thread doing blocking receives and replies.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "lib/smt.hpp"
#include "lib/smt_test_session.h"
#include "link/memory_link.h"

namespace smt::test {
namespace {

link::Addr v4(uint8_t last) {
  link::Addr a{};
  a[10] = 0xff;
  a[11] = 0xff;
  a[12] = 10;
  a[15] = last;
  return a;
}

std::vector<uint8_t> pattern(size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937_64 rng(seed);
  for (auto& x : v) x = static_cast<uint8_t>(rng());
  return v;
}

// `seed` picks the keys: each socket pair gets its own, so no two tests in
// one process seal under the same key (debug builds' nonce oracle would
// rightly abort on that).
smt_test_secrets test_secrets(bool initiator, const char* identity, uint64_t seed) {
  smt_test_secrets s{};
  std::mt19937_64 rng(seed);
  for (auto& b : s.initiator_secret) b = static_cast<uint8_t>(rng());
  for (auto& b : s.responder_secret) b = static_cast<uint8_t>(rng());
  for (auto& b : s.initiator_ctl) b = static_cast<uint8_t>(rng());
  for (auto& b : s.responder_ctl) b = static_cast<uint8_t>(rng());
  s.initiator = initiator ? 1 : 0;
  s.serial = 2;
  s.peer_identity = identity;
  return s;
}

// One counter for every Pair instantiation (a static in the template would
// be one per clock type).
uint64_t fresh_key_seed() {
  static std::atomic<uint64_t> next{42};
  return next++;
}

void open_session(Socket& sock, const PeerAddr& peer, bool initiator, const char* identity,
                  uint64_t seed) {
  sockaddr_storage ss;
  socklen_t len;
  peer.to_sockaddr(&ss, &len);
  auto secrets = test_secrets(initiator, identity, seed);
  ASSERT_EQ(smt_session_open_test(sock.raw(), reinterpret_cast<sockaddr*>(&ss), len, &secrets), 0)
      << smt_last_error();
}

// Client socket on endpoint A (port 1000), server socket on B (port 2000).
template <typename ClockT>
struct Pair {
  explicit Pair(lib::SocketConfig cfg = {}) {
    link::MemoryWireConfig wc;
    wc.addr_a = v4(1);
    wc.addr_b = v4(2);
    auto w = link::MemoryWire::create(clock, wc);
    EXPECT_TRUE(w.ok());
    wire = std::move(*w);
    auto c = Socket::over_link(wire->a(), clock, cfg);
    auto s = Socket::over_link(wire->b(), clock, cfg);
    EXPECT_TRUE(c.ok() && s.ok());
    client.emplace(std::move(*c));
    server.emplace(std::move(*s));
    EXPECT_TRUE(client->bind(1000).ok());
    EXPECT_TRUE(server->bind(2000).ok());
    const uint64_t seed = fresh_key_seed();
    open_session(*client, to_server, true, "server-b", seed);
    open_session(*server, to_client, false, "client-a", seed);
  }
  ClockT clock;
  std::unique_ptr<link::MemoryWire> wire;
  // Sockets close before the wire they use.
  std::optional<Socket> client;
  std::optional<Socket> server;
  PeerAddr to_server{v4(2), 2000};
  PeerAddr to_client{v4(1), 1000};
};

// The server thread: blocking receives of requests, echo replies.
class EchoServer {
 public:
  explicit EchoServer(Socket& s) : s_(s), t_([this] { run(); }) {}
  ~EchoServer() {
    stop_ = true;
    t_.join();
  }
  std::atomic<uint64_t> served{0};
  std::atomic<uint64_t> errors{0};

 private:
  void run() {
    while (!stop_) {
      auto m = s_.recv(SMT_RECV_REQUEST, 0, 20);
      if (!m.ok()) {
        if (m.error().code != ETIMEDOUT) ++errors;
        continue;
      }
      auto peer = m->peer();
      if (!peer.ok() || !s_.reply(*peer, m->id(), m->data()).ok()) {
        ++errors;
        continue;
      }
      ++served;
    }
  }
  Socket& s_;
  std::atomic<bool> stop_{false};
  std::thread t_;
};

using RealPair = Pair<MonotonicClock>;

TEST(LibSocket, EchoRpcsOfSeveralSizesReturnTheSameBytes) {
  // The wire loses nothing, so no packet may be dropped: not even a duplicate
  // from a RESEND. With 1 ms ticks a thread descheduled for 3 ms (a loaded
  // sanitizer run) triggers one; 20 ms ticks keep the test about the echo.
  lib::SocketConfig cfg;
  cfg.engine.tick_ns = 20'000'000;
  RealPair p(cfg);
  EchoServer srv(*p.server);
  for (size_t n : {0ul, 1ul, 64ul, 1400ul, 4096ul, 65536ul, 1ul << 20}) {
    auto data = pattern(n, n + 1);
    auto id = p.client->send_request(p.to_server, data);
    ASSERT_TRUE(id.ok()) << id.error().message;
    auto m = p.client->recv(SMT_RECV_RESPONSE, *id, 10'000);
    ASSERT_TRUE(m.ok()) << "size " << n << ": " << m.error().message;
    EXPECT_EQ(m->kind(), SMT_MSG_RESPONSE);
    EXPECT_EQ(m->id(), *id);
    EXPECT_EQ(std::vector<uint8_t>(m->data().begin(), m->data().end()), data) << "size " << n;
    auto peer = m->peer();
    ASSERT_TRUE(peer.ok());
    EXPECT_EQ(*peer, p.to_server);
  }
  EXPECT_EQ(srv.errors, 0u);
  auto st = p.client->stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->requests_sent, 7u);
  EXPECT_EQ(st->responses_received, 7u);
  EXPECT_EQ(st->drops, 0u);
}

TEST(LibSocket, NonBlockingReceiveWithNothingReadyFailsWithEagain) {
  RealPair p;
  auto m = p.client->recv(SMT_RECV_NONBLOCK);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, EAGAIN);
}

TEST(LibSocket, BlockingReceiveWithNothingComingTimesOutWithEtimedout) {
  RealPair p;
  const auto t0 = std::chrono::steady_clock::now();
  auto m = p.client->recv(0, 0, 50);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ETIMEDOUT);
  EXPECT_GE(waited, std::chrono::milliseconds(50));
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST(LibSocket, BlockingReceiveWaitsForTheResponse) {
  RealPair p;
  auto id = p.client->send_request(p.to_server, pattern(100, 1));
  ASSERT_TRUE(id.ok());
  // Nothing answers yet: the client's blocking receive must still be waiting
  // when the server starts 30 ms later, and then return the response.
  std::optional<EchoServer> srv;
  std::thread starter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    srv.emplace(*p.server);
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto m = p.client->recv(SMT_RECV_RESPONSE, *id, 5'000);
  starter.join();
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(30));
  EXPECT_EQ(m->data().size(), 100u);
}

TEST(LibSocket, PollOnSmtFdBecomesReadableWhenTheResponseIsReady) {
  RealPair p;
  auto fd = p.client->fd();
  ASSERT_TRUE(fd.ok()) << fd.error().message;
  pollfd pfd{*fd, POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 0), 0) << "readable with nothing to receive";
  EchoServer srv(*p.server);
  auto data = pattern(5000, 3);
  auto id = p.client->send_request(p.to_server, data);
  ASSERT_TRUE(id.ok());
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::optional<Message> got;
  while (!got && std::chrono::steady_clock::now() < end) {
    pfd.revents = 0;
    ASSERT_GE(poll(&pfd, 1, 1000), 0);
    if (!(pfd.revents & POLLIN)) continue;
    auto m = p.client->recv(SMT_RECV_RESPONSE | SMT_RECV_NONBLOCK, *id);
    if (m.ok()) {
      got.emplace(std::move(*m));
    } else {
      ASSERT_EQ(m.error().code, EAGAIN);
    }
  }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(std::vector<uint8_t>(got->data().begin(), got->data().end()), data);
}

TEST(LibSocket, AbortedRequestDeliversNoMessage) {
  RealPair p;
  EchoServer srv(*p.server);
  auto id = p.client->send_request(p.to_server, pattern(64, 4));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(p.client->abort(p.to_server, *id).ok());
  auto m = p.client->recv(SMT_RECV_RESPONSE, 0, 200);
  ASSERT_FALSE(m.ok()) << "a message for an aborted RPC";
  EXPECT_EQ(m.error().code, ETIMEDOUT);
  auto again = p.client->abort(p.to_server, *id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ENOENT);
  // The socket still works.
  auto id2 = p.client->send_request(p.to_server, pattern(64, 5));
  ASSERT_TRUE(id2.ok());
  EXPECT_TRUE(p.client->recv(SMT_RECV_RESPONSE, *id2, 5'000).ok());
}

TEST(LibSocket, ReplyToAnUnknownIdFailsWithEnoent) {
  RealPair p;
  auto st = p.server->reply(p.to_client, 1234, pattern(8, 6));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ENOENT);
}

TEST(LibSocket, SendToAPeerWithoutSessionFailsWithEnotconn) {
  RealPair p;
  auto id = p.client->send_request(PeerAddr{v4(2), 2001}, pattern(8, 7));
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.error().code, ENOTCONN);
}

TEST(LibSocket, ForkedChildGetsEpermFromEveryCall) {
  RealPair p;
  EchoServer srv(*p.server);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child: every call must fail with EPERM and send nothing.
    int bad = 0;
    sockaddr_storage ss;
    socklen_t len;
    p.to_server.to_sockaddr(&ss, &len);
    const auto* sa = reinterpret_cast<const sockaddr*>(&ss);
    smt_sock* s = p.client->raw();
    uint64_t id = 0;
    smt_msg m{};
    smt_socket_stats st{};
    char ident[64];
    if (smt_send_request(s, sa, len, "x", 1, &id) != -1 || errno != EPERM) bad |= 1;
    if (smt_recv(s, SMT_RECV_NONBLOCK, 0, &m, 0) != -1 || errno != EPERM) bad |= 2;
    if (smt_reply(s, sa, len, 2, "x", 1) != -1 || errno != EPERM) bad |= 4;
    if (smt_peer_identity(s, sa, len, ident, sizeof ident) != -1 || errno != EPERM) bad |= 8;
    if (smt_stats(s, &st) != -1 || errno != EPERM) bad |= 16;
    if (smt_fd(s) != -1 || errno != EPERM) bad |= 32;
    if (smt_close(s) != -1 || errno != EPERM) bad |= 64;
    _exit(bad);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "calls that did not fail with EPERM (bit mask)";
  auto st = p.client->stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->requests_sent, 0u) << "the child sent a request";
  // The parent's socket is unaffected.
  auto id = p.client->send_request(p.to_server, pattern(32, 8));
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(p.client->recv(SMT_RECV_RESPONSE, *id, 5'000).ok());
}

TEST(LibSocket, SingleThreadedClientPerformsZeroHandoffsPerRpc) {
  // The helper may legitimately take over when this thread is preempted for
  // a tick between two calls; a long quiet period keeps scheduler noise on a
  // loaded test machine out of a count that is about the data path.
  lib::SocketConfig cfg;
  cfg.helper_quiet_ns = 200'000'000;
  RealPair p(cfg);
  EchoServer srv(*p.server);
  const auto data = pattern(64, 9);
  for (int i = 0; i < 1000; ++i) {
    auto id = p.client->send_request(p.to_server, data);
    ASSERT_TRUE(id.ok()) << id.error().message;
    auto m = p.client->recv(SMT_RECV_RESPONSE, *id, 5'000);
    ASSERT_TRUE(m.ok()) << "rpc " << i << ": " << m.error().message;
    ASSERT_EQ(m->data().size(), data.size());
  }
  auto st = p.client->stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->responses_received, 1000u);
  EXPECT_EQ(st->handoffs, 0u);
  auto ss = p.server->stats();
  ASSERT_TRUE(ss.ok());
  RecordProperty("server_handoffs", std::to_string(ss->handoffs));
  RecordProperty("client_helper_runs", std::to_string(st->helper_runs));
}

TEST(LibSocket, HandoffCounterCountsAMessageConsumedByAnotherThread) {
  RealPair p;
  auto fd = p.client->fd();
  ASSERT_TRUE(fd.ok());
  EchoServer srv(*p.server);
  auto id = p.client->send_request(p.to_server, pattern(64, 10));
  ASSERT_TRUE(id.ok());
  // This thread's progress delivers the response without taking it (it asks
  // for requests only)...
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    auto m = p.client->recv(SMT_RECV_REQUEST | SMT_RECV_NONBLOCK);
    ASSERT_FALSE(m.ok());
    auto st = p.client->stats();
    ASSERT_TRUE(st.ok());
    if (st->messages_queued == 1) break;
    ASSERT_LT(std::chrono::steady_clock::now(), end) << "response never arrived";
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  // ...so smt_fd is readable through the queue alone (the link is drained)...
  pollfd pfd{*fd, POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, 0), 1);
  // ...and another thread takes it: one hand-off.
  std::thread other([&] {
    auto m = p.client->recv(SMT_RECV_RESPONSE, *id, 1'000);
    EXPECT_TRUE(m.ok());
  });
  other.join();
  auto st = p.client->stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->handoffs, 1u);
  EXPECT_EQ(st->messages_queued, 0u);
}

TEST(LibSocket, ThreadBlockedOnAnotherRpcIsWokenForItsOwnResponse) {
  RealPair p;
  EchoServer srv(*p.server);
  // Two client threads each wait for their own RPC; whichever thread's
  // progress receives the other's response must wake it.
  std::atomic<int> ok{0};
  auto worker = [&](uint64_t seed) {
    for (int i = 0; i < 200; ++i) {
      auto data = pattern(64 + seed * 1000, seed * 10'000 + i);
      auto id = p.client->send_request(p.to_server, data);
      if (!id.ok()) return;
      auto m = p.client->recv(SMT_RECV_RESPONSE, *id, 5'000);
      if (!m.ok() || std::vector<uint8_t>(m->data().begin(), m->data().end()) != data) return;
    }
    ++ok;
  };
  std::thread t1(worker, 1);
  std::thread t2(worker, 2);
  t1.join();
  t2.join();
  EXPECT_EQ(ok, 2);
}

TEST(LibSocket, PeerIdentityIsTheSessionsAuthenticatedPeer) {
  RealPair p;
  auto a = p.client->peer_identity(p.to_server);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, "server-b");
  auto b = p.server->peer_identity(p.to_client);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, "client-a");
  auto none = p.client->peer_identity(PeerAddr{v4(9), 2000});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ENOTCONN);
  sockaddr_storage ss;
  socklen_t len;
  p.to_server.to_sockaddr(&ss, &len);
  char small[4];
  EXPECT_EQ(smt_peer_identity(p.client->raw(), reinterpret_cast<sockaddr*>(&ss), len, small,
                              sizeof small),
            -1);
  EXPECT_EQ(errno, ERANGE);
}

TEST(LibSocket, MalformedPeerAddressesAreRefused) {
  RealPair p;
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(2000);
  uint64_t id;
  EXPECT_EQ(smt_send_request(p.client->raw(), reinterpret_cast<sockaddr*>(&in), sizeof in - 1, "x",
                             1, &id),
            -1);
  EXPECT_EQ(errno, EINVAL);
  in.sin_family = AF_UNIX;
  EXPECT_EQ(
      smt_send_request(p.client->raw(), reinterpret_cast<sockaddr*>(&in), sizeof in, "x", 1, &id),
      -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);
  EXPECT_EQ(smt_recv(p.client->raw(), 1 << 7, 0, nullptr, 0), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST(LibSocket, VirtualClockSocketsEchoWithNonBlockingCallsAndRefuseToBlock) {
  Pair<VirtualClock> p;
  auto data = pattern(20'000, 11);
  auto id = p.client->send_request(p.to_server, data);
  ASSERT_TRUE(id.ok());
  auto blocked = p.client->recv(SMT_RECV_RESPONSE, *id, 10);
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.error().code, EINVAL);
  std::optional<Message> got;
  for (int step = 0; step < 10'000 && !got; ++step) {
    if (auto req = p.server->recv(SMT_RECV_REQUEST | SMT_RECV_NONBLOCK); req.ok()) {
      ASSERT_TRUE(p.server->reply(p.to_client, req->id(), req->data()).ok());
    }
    if (auto m = p.client->recv(SMT_RECV_RESPONSE | SMT_RECV_NONBLOCK, *id); m.ok()) {
      got.emplace(std::move(*m));
    }
    p.clock.advance_by(100'000);
  }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(std::vector<uint8_t>(got->data().begin(), got->data().end()), data);
  auto st = p.client->stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->helper_runs, 0u) << "a helper thread ran on a virtual clock";
}

}  // namespace
}  // namespace smt::test
