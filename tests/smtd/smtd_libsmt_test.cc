// libsmt over smtd end to end (issue 4's engine tests): two smtds in two
// network namespaces with separate pin roots and sockets, real libsmt sockets
// over the raw IP link, sessions opened implicitly by the first request.
//
//   netns smtdA-<rand>                           netns smtdB-<rand>
//   smtd A 10.77.0.1:7853  <---- TLS 1.3 ---->   smtd B 10.77.0.2:7853
//   client socket(s) :40000 <-- SMT, IP 253 -->  server socket :5000
//   (or smt-echo client)                          (thread of this test)
#include "lib/smt.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include "smt/wire.h"
#include "smtd/map_store.h"
#include "smtd/smtd_client.h"
#include "smtd_harness.h"
#include "support/netns.h"
#include "support/test_support.h"

namespace smt::smtd::test {
namespace {

constexpr uint16_t kServerPort = 5000;

template <typename F>
bool eventually(F f, int timeout_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (f()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// Answers every request with its own bytes until stopped.
class EchoServer {
 public:
  explicit EchoServer(Socket& s) : s_(s), t_([this] { run(); }) {}
  ~EchoServer() {
    stop_ = true;
    t_.join();
  }
  uint64_t served() const { return served_; }
  /// While held, requests wait in the socket unanswered (RPCs stay in flight).
  void hold(bool on) { hold_ = on; }

 private:
  void run() {
    while (!stop_) {
      if (hold_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      auto m = s_.recv(SMT_RECV_REQUEST, 0, 20);
      if (!m.ok()) continue;
      auto p = m->peer();
      if (p.ok() && s_.reply(*p, m->id(), m->data()).ok()) ++served_;
    }
  }
  Socket& s_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> hold_{false};
  std::atomic<uint64_t> served_{0};
  std::thread t_;
};

class LibsmtOverSmtdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SMT_REQUIRE_OR_SKIP(::geteuid() == 0, "needs root (network namespaces, BPF maps, raw IP)");
    SMT_REQUIRE_OR_SKIP(have_bpffs(), "needs bpffs at /sys/fs/bpf");
    SMT_REQUIRE_OR_SKIP(have_netns(), "needs ip netns and nsenter");
    dir_ = make_temp_dir(&cleanup_, "lib");
    ASSERT_FALSE(dir_.empty());
    std::string out;
    ASSERT_EQ(sh(smt_certs_tool() + " " + dir_ + "/certs hosta hostb", &out), 0) << out;
    std::string err;
    ASSERT_TRUE(make_netns_pair(&cleanup_, &ns_, &err)) << err;
    pin_a_ = make_pin_root(&cleanup_, "la");
    pin_b_ = make_pin_root(&cleanup_, "lb");
  }
  void TearDown() override {
    // As a test body's locals would: the echo pair goes before the smtds.
    echo_.reset();
    cli_.reset();
    srv_.reset();
    a_.stop();
    b_.stop();
    cleanup_.run();
  }

  std::string sock_path(bool is_a) const { return dir_ + (is_a ? "/a.sock" : "/b.sock"); }

  void start(bool is_a, const std::string& extra_local = "",
             std::vector<std::string> extra_args = {}) {
    const std::string me = is_a ? "a" : "b";
    const std::string my_addr = is_a ? ns_.addr_a : ns_.addr_b;
    const std::string peer_addr = is_a ? ns_.addr_b : ns_.addr_a;
    const std::string host = is_a ? "hosta" : "hostb", peer = is_a ? "hostb" : "hosta";
    const std::string conf = dir_ + "/" + me + ".conf";
    std::ofstream(conf) << "[local]\naddress = " << my_addr << "\nlisten = " << my_addr
                        << ":7853\ncertificate = " << dir_ << "/certs/" << host
                        << ".crt\nkey = " << dir_ << "/certs/" << host << ".key\nca = " << dir_
                        << "/certs/ca.crt\n"
                        << extra_local << "\n[peer " << peer << "]\naddress = " << peer_addr
                        << "\ncontrol = " << peer_addr << ":7853\nidentity = dns:" << peer
                        << "\n\n[uid 0]\nports = any\nephemeral = yes\n";
    SmtdProcess::Options o;
    o.config = conf;
    o.state_dir = is_a ? pin_a_ : pin_b_;
    o.socket = sock_path(is_a);
    o.netns = is_a ? ns_.a : ns_.b;
    o.log = dir_ + "/" + me + ".log";
    o.extra_args = std::move(extra_args);
    std::string err;
    ASSERT_TRUE((is_a ? a_ : b_).start(o, &err)) << err;
  }

  /// Both smtds (A's with `a_local` in its [local] section), an echo server on
  /// B's kServerPort (srv_, echo_), a client on A's port 40000 (cli_), and one
  /// 64 B RPC that opens their session. Callers check HasFatalFailure().
  void start_echo_pair(const std::string& a_local = "") {
    start(true, a_local);
    start(false);
    srv_ = socket(false, kServerPort);
    ASSERT_TRUE(srv_.has_value());
    echo_ = std::make_unique<EchoServer>(*srv_);
    cli_ = socket(true, 40000);
    ASSERT_TRUE(cli_.has_value());
    ASSERT_EQ(rpc(*cli_, 64), 0) << a_.log() << b_.log();  // opens the session
  }

  /// A libsmt socket in host A's or B's namespace, connected to its smtd.
  std::optional<Socket> socket(bool is_a, uint16_t port, unsigned datapath = SMT_DATAPATH_AUTO) {
    std::optional<Socket> out;
    const std::string local = is_a ? ns_.addr_a : ns_.addr_b;
    const std::string path = sock_path(is_a);
    Status st = smt::test::run_in_netns(is_a ? ns_.a : ns_.b, [&] {
      smt_socket_opts o{};
      o.families = SMT_FAMILY_V4;
      o.local_v4 = local.c_str();
      o.smtd_socket = path.c_str();
      o.open_timeout_ms = 15000;
      o.datapath = datapath;
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

  PeerAddr server() const { return PeerAddr::parse(ns_.addr_b, kServerPort).value(); }

  /// One echo RPC; the error code, 0 on success.
  int rpc(Socket& s, size_t size, int timeout_ms = 5000) {
    std::vector<uint8_t> data(size, static_cast<uint8_t>(size));
    auto id = s.send_request(server(), data);
    if (!id.ok()) return id.error().code;
    auto m = s.recv(SMT_RECV_RESPONSE, *id, timeout_ms);
    if (!m.ok()) return m.error().code;
    if (m->kind() != SMT_MSG_RESPONSE) return m->error();
    return std::equal(m->data().begin(), m->data().end(), data.begin(), data.end()) ? 0 : EBADMSG;
  }

  smt_socket_stats stats(Socket& s) { return s.stats().value(); }

  /// smtd's sessions as JSON (LIST).
  std::string list(bool is_a) {
    auto c = SmtdClient::connect(sock_path(is_a));
    if (!c.ok()) return "";
    auto j = c->list_json();
    return j.ok() ? *j : "";
  }

  /// The pinned session entry of host A or B for (local port, peer port).
  bool map_entry(bool is_a, uint16_t lport, uint16_t pport, smt_session_value* v) {
    UniqueFd fd(bpf_obj_get(((is_a ? pin_a_ : pin_b_) + "/" SMT_MAP_SESSIONS).c_str()));
    if (!fd) return false;
    smt_session_key k;
    std::memset(&k, 0, sizeof k);
    auto la = parse_addr(is_a ? ns_.addr_a : ns_.addr_b).value();
    auto pa = parse_addr(is_a ? ns_.addr_b : ns_.addr_a).value();
    std::memcpy(k.local_addr, la.data(), 16);
    std::memcpy(k.remote_addr, pa.data(), 16);
    k.local_port = htons(lport);
    k.remote_port = htons(pport);
    return bpf_map_lookup_elem(fd.get(), &k, v) == 0;
  }

  /// The owner table entry XDP reads for session value `v` (grant_tables ->
  /// the owner's table -> v.session_slot); false if there is none.
  bool owner_entry(bool is_a, const smt_session_value& v, smt_owner_table_entry* out) {
    UniqueFd tables(bpf_obj_get(((is_a ? pin_a_ : pin_b_) + "/" SMT_MAP_GRANT_TABLES).c_str()));
    uint32_t inner_id = 0;
    if (!tables || bpf_map_lookup_elem(tables.get(), &v.owner_id, &inner_id) != 0) return false;
    UniqueFd table(bpf_map_get_fd_by_id(inner_id));
    uint32_t slot = v.session_slot;
    return table && bpf_map_lookup_elem(table.get(), &slot, out) == 0;
  }
  bool has_owner_table(bool is_a, uint32_t owner) {
    UniqueFd tables(bpf_obj_get(((is_a ? pin_a_ : pin_b_) + "/" SMT_MAP_GRANT_TABLES).c_str()));
    uint32_t inner_id = 0;
    return tables && bpf_map_lookup_elem(tables.get(), &owner, &inner_id) == 0;
  }

  /// Issue 5's namespace test, on the raw-socket path or on AF_XDP (body below).
  void xdp_on_both_hosts(unsigned datapath);

  /// Runs smtctl in host A's or B's namespace on its pin root; its exit code.
  int smtctl(bool is_a, const std::string& args, std::string* out = nullptr) {
    std::string o;
    int rc = sh("nsenter --net=/run/netns/" + (is_a ? ns_.a : ns_.b) + " " + SMTCTL_BIN +
                    " --pin-root " + (is_a ? pin_a_ : pin_b_) + " " + args + " 2>&1",
                &o);
    if (out != nullptr) *out = o;
    return rc;
  }

  Cleanup cleanup_;
  std::string dir_, pin_a_, pin_b_;
  NetnsPair ns_;
  SmtdProcess a_, b_;
  std::optional<Socket> srv_, cli_;  // start_echo_pair()
  std::unique_ptr<EchoServer> echo_;
};

// "LABEL SERIAL ..." lines of a key log: serial -> secret hex, per label.
std::map<std::string, std::string> keylog_secrets(const std::string& text,
                                                  const std::string& label) {
  std::map<std::string, std::string> out;
  std::regex re(label + " ([0-9]+) \\S+ \\S+ \\d+ \\w+ ([0-9a-f]+)");
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) {
    out[(*it)[1].str()] = (*it)[2].str();
  }
  return out;
}

TEST_F(LibsmtOverSmtdTest, ApplicationThatExitsHasItsSessionsClosedOnBothHostsAndNextKeysDiffer) {
  start(true, "", {"--keylog", dir_ + "/a.keylog"});
  start(false);
  auto srv = socket(false, kServerPort);
  ASSERT_TRUE(srv.has_value());
  EchoServer echo(*srv);

  // An application (smt-echo, its own process) opens a session by sending,
  // runs its RPCs and exits without closing anything.
  const std::string client = std::string("nsenter --net=/run/netns/") + ns_.a + " " +
                             SMT_ECHO_PATH + " client --peer " + ns_.addr_b + " --port 5000" +
                             " --local-port 40000 --sizes 64,70000 --count 5 --smtd " +
                             sock_path(true);
  std::string out;
  ASSERT_EQ(sh(client, &out), 0) << out << a_.log() << b_.log();
  EXPECT_NE(out.find("peer identity dns:hostb"), std::string::npos) << out;
  EXPECT_NE(out.find("10 rpcs, 0 failed, 0 mismatched"), std::string::npos) << out;

  auto first = keylog_secrets(read_text(dir_ + "/a.keylog"), "SMT_I_AP_0");
  ASSERT_EQ(first.size(), 1u) << read_text(dir_ + "/a.keylog");
  const std::string serial = first.begin()->first;
  // Both hosts close the session: LIST shows it nowhere, both map entries go,
  // and the server's socket dropped it from its engine.
  smt_session_value v;
  EXPECT_TRUE(eventually(
      [&] {
        return list(true).find("\"serial\": " + serial) == std::string::npos &&
               list(false).find("\"serial\": " + serial) == std::string::npos;
      },
      5000))
      << list(true) << list(false);
  EXPECT_FALSE(map_entry(true, 40000, kServerPort, &v));
  EXPECT_FALSE(map_entry(false, kServerPort, 40000, &v));
  EXPECT_TRUE(eventually([&] { return stats(*srv).sessions_closed == 1; }, 5000));
  EXPECT_EQ(stats(*srv).sessions_incoming, 1u);
  EXPECT_NE(a_.log().find("gone (the application closed its connection): closed 1 sessions"),
            std::string::npos)
      << a_.log();

  // The same application again: a new session with a new serial and new keys,
  // traffic and control keys alike.
  out.clear();
  ASSERT_EQ(sh(client, &out), 0) << out;
  const std::string log = read_text(dir_ + "/a.keylog");
  auto ap = keylog_secrets(log, "SMT_I_AP_0"), ctl = keylog_secrets(log, "SMT_I_CTL");
  ASSERT_EQ(ap.size(), 2u) << log;
  ASSERT_EQ(ctl.size(), 2u) << log;
  EXPECT_NE(ap.begin()->second, ap.rbegin()->second);
  EXPECT_NE(ctl.begin()->second, ctl.rbegin()->second);
  EXPECT_TRUE(eventually([&] { return stats(*srv).sessions_closed == 2; }, 5000));
}

// docs/smtd.md "Notifications": a busy-polling client makes no system call
// on smtd's socket per call; it reads it when smtd's count moved, and at
// most about once a millisecond besides.
TEST_F(LibsmtOverSmtdTest, BusyPollingClientReadsSmtdsSocketOnlyWhenNotified) {
  start_echo_pair();
  if (HasFatalFailure()) return;

  const uint64_t reads0 = stats(*cli_).smtd_socket_reads;
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t calls = 0;
  std::vector<uint8_t> data(64, 7);
  for (int i = 0; i < 2000; ++i) {
    auto id = cli_->send_request(server(), data);
    ASSERT_TRUE(id.ok()) << id.error().message;
    ++calls;
    for (;;) {
      ++calls;
      auto m = cli_->recv(SMT_RECV_RESPONSE | SMT_RECV_NONBLOCK, *id, 0);
      if (m.ok()) {
        ASSERT_EQ(m->kind(), SMT_MSG_RESPONSE);
        break;
      }
      ASSERT_EQ(m.error().code, EAGAIN) << m.error().message;
    }
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const uint64_t reads = stats(*cli_).smtd_socket_reads - reads0;
  EXPECT_LE(reads, static_cast<uint64_t>(ms) + 20) << calls << " calls in " << ms << " ms";
  EXPECT_LT(reads * 10, calls) << reads << " reads of smtd's socket in " << calls << " calls";
  EXPECT_EQ(stats(*cli_).rpcs_failed, 0u);
}

TEST_F(LibsmtOverSmtdTest, KilledSmtdLosesNoRpcInFlightAndItsRestartIsReadopted) {
  start_echo_pair();
  if (HasFatalFailure()) return;
  EXPECT_EQ(stats(*cli_).sessions_opened, 1u);

  // 100 RPCs in flight (the server holds its answers), then smtd A dies
  // without a word.
  echo_->hold(true);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // its last recv has returned
  std::vector<uint64_t> ids;
  std::vector<uint8_t> data(20000);
  for (int i = 0; i < 100; ++i) {
    data[0] = static_cast<uint8_t>(i);
    auto id = cli_->send_request(server(), data);
    ASSERT_TRUE(id.ok()) << id.error().message;
    ids.push_back(*id);
  }
  const pid_t old_pid = a_.pid();
  a_.signal(SIGKILL);
  ASSERT_EQ(a_.wait_exit(5000), -1);
  EXPECT_EQ(stats(*cli_).rpcs_active, 100u) << "every RPC was in flight when smtd died";
  echo_->hold(false);
  size_t ok = 0;
  for (int i = 0; i < 100; ++i) {
    auto m = cli_->recv(SMT_RECV_RESPONSE, ids[i], 10000);
    ASSERT_TRUE(m.ok()) << "rpc " << i << ": " << m.error().message;
    ASSERT_EQ(m->kind(), SMT_MSG_RESPONSE) << "rpc " << i << ": " << strerror(m->error());
    ok += m->data().size() == data.size() && m->data()[0] == static_cast<uint8_t>(i);
  }
  EXPECT_EQ(ok, 100u);
  EXPECT_EQ(stats(*cli_).smtd_connected, 0u) << "the socket noticed smtd was gone";
  EXPECT_EQ(rpc(*cli_, 64), 0) << "the session works without smtd";

  // smtd comes back: the socket reconnects and re-adopts on its own (helper
  // thread), and nothing in the engine changes.
  start(true);
  ASSERT_NE(a_.pid(), old_pid);
  ASSERT_TRUE(eventually([&] { return stats(*cli_).sessions_readopted == 1; }, 5000)) << a_.log();
  EXPECT_EQ(stats(*cli_).smtd_reconnects, 1u);
  EXPECT_TRUE(a_.wait_log("re-adopted session serial", 1000)) << a_.log();
  const std::string listed = list(true);
  EXPECT_NE(listed.find("\"state\": \"live\""), std::string::npos) << listed;
  EXPECT_NE(listed.find("\"owner_pid\": " + std::to_string(::getpid())), std::string::npos)
      << listed;
  EXPECT_EQ(rpc(*cli_, 64), 0);
  EXPECT_EQ(stats(*cli_).sessions_closed, 0u);
  EXPECT_EQ(stats(*cli_).rpcs_failed, 0u);

  // A new session through the restarted smtd works.
  auto cli2 = socket(true, 40001);
  ASSERT_TRUE(cli2.has_value());
  EXPECT_EQ(rpc(*cli2, 1000), 0) << a_.log() << b_.log();
  EXPECT_EQ(stats(*cli2).sessions_opened, 1u);
  auto ident = cli2->peer_identity(server());
  ASSERT_TRUE(ident.ok());
  EXPECT_EQ(*ident, "dns:hostb");
}

TEST_F(LibsmtOverSmtdTest, PeerSmtdRestartKeepsSessionsWorkingUntilIdleExpiry) {
  start_echo_pair("idle_timeout = 2\n");
  if (HasFatalFailure()) return;

  // The peer's smtd restarts: RPCs complete while it is down and after; the
  // server re-adopts; the channel comes back, so nothing goes idle.
  b_.signal(SIGKILL);
  ASSERT_EQ(b_.wait_exit(5000), -1);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(rpc(*cli_, 5000), 0) << i;
  start(false);
  ASSERT_TRUE(eventually([&] { return stats(*srv_).sessions_readopted == 1; }, 5000)) << b_.log();
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));  // > idle_timeout
  for (int i = 0; i < 10; ++i) ASSERT_EQ(rpc(*cli_, 5000), 0) << i;
  EXPECT_EQ(stats(*cli_).sessions_closed, 0u) << a_.log();
  smt_session_value v;
  EXPECT_TRUE(map_entry(true, 40000, kServerPort, &v));

  // Now it stays down: the session keeps working until A's idle expiry
  // closes it on A (PEER_CLOSED to the client socket, map entry deleted).
  ASSERT_EQ(b_.stop(), 0);
  const auto down = std::chrono::steady_clock::now();
  EXPECT_EQ(rpc(*cli_, 5000), 0) << "still working with the peer's smtd down";
  ASSERT_TRUE(eventually(
      [&] {
        (void)cli_->recv(SMT_RECV_RESPONSE, 0, 20);  // lets the socket read smtd's notices
        return stats(*cli_).sessions_closed == 1;
      },
      8000))
      << a_.log();
  const double after_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - down).count();
  EXPECT_GE(after_s, 1.0) << "closed by idle expiry (2 s), not at once";
  EXPECT_NE(a_.log().find("closed (idle)"), std::string::npos) << a_.log();
  EXPECT_FALSE(map_entry(true, 40000, kServerPort, &v));
  // The next request tries a new session and fails fast instead of hanging.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(rpc(*cli_, 64), ECONNREFUSED);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(12));

  // B's smtd returns: A's CLOSE reaches it, and the server's session goes too.
  start(false);
  EXPECT_TRUE(eventually([&] { return !map_entry(false, kServerPort, 40000, &v); }, 8000))
      << b_.log();
  EXPECT_TRUE(eventually([&] { return stats(*srv_).sessions_closed == 1; }, 5000)) << b_.log();
}

TEST_F(LibsmtOverSmtdTest, ForkedChildDoesNotKeepTheParentsSessionsOpen) {
  start_echo_pair();
  if (HasFatalFailure()) return;
  ASSERT_NE(list(true).find("\"local_port\": 40000"), std::string::npos);

  // A child inherits the process's fds, smtd's connection included; it must
  // not keep the parent's sessions alive once the parent lets go of them.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::sleep(3);
    ::_exit(0);
  }
  cli_.reset();  // smt_close: the connection ends, smtd closes the session
  EXPECT_TRUE(eventually(
      [&] { return list(true).find("\"local_port\": 40000") == std::string::npos; }, 1500))
      << list(true);
  ::kill(child, SIGKILL);
  int st = 0;
  ::waitpid(child, &st, 0);
}

// docs/xdp.md "The owner table": smtd gives each libsmt connection a table in
// grant_tables and each session a slot; the engine keeps its window base
// there for XDP, on the new table too after smtd restarts.
TEST_F(LibsmtOverSmtdTest, EachSessionPublishesItsWindowBaseInItsOwnersTableAcrossAnSmtdRestart) {
  start(true);
  start(false);
  auto srv = socket(false, kServerPort);
  ASSERT_TRUE(srv.has_value());
  EchoServer echo(*srv);
  auto cli = socket(true, 40000);
  ASSERT_TRUE(cli.has_value());
  for (int i = 0; i < 20; ++i) ASSERT_EQ(rpc(*cli, 64), 0) << a_.log() << b_.log();

  smt_session_value va, vb;
  ASSERT_TRUE(map_entry(true, 40000, kServerPort, &va));
  ASSERT_TRUE(map_entry(false, kServerPort, 40000, &vb));
  ASSERT_LT(va.session_slot, static_cast<uint32_t>(SMT_OWNER_TABLE_SESSIONS));
  ASSERT_LT(vb.session_slot, static_cast<uint32_t>(SMT_OWNER_TABLE_SESSIONS));
  smt_owner_table_entry ea, eb;
  ASSERT_TRUE(owner_entry(true, va, &ea)) << "no table for the client's owner " << va.owner_id;
  ASSERT_TRUE(owner_entry(false, vb, &eb)) << "no table for the server's owner " << vb.owner_id;
  // The server delivered requests 2, 4, ..., 40; the client received none.
  EXPECT_EQ(eb.published_base, 42u);
  EXPECT_EQ(ea.published_base, 2u);

  // smtd B dies and comes back: the server's socket re-adopts, gets a new
  // table under a new owner id and publishes its base there at once.
  const uint32_t old_owner = vb.owner_id;
  b_.signal(SIGKILL);
  ASSERT_EQ(b_.wait_exit(5000), -1);
  start(false);
  ASSERT_TRUE(eventually([&] { return stats(*srv).sessions_readopted == 1; }, 5000)) << b_.log();
  ASSERT_TRUE(map_entry(false, kServerPort, 40000, &vb));
  EXPECT_NE(vb.owner_id, old_owner);
  EXPECT_FALSE(has_owner_table(false, old_owner)) << "a dead smtd's owner kept its table";
  ASSERT_TRUE(owner_entry(false, vb, &eb)) << "no table for the re-adopting owner";
  EXPECT_EQ(eb.published_base, 42u);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(rpc(*cli, 64), 0);
  ASSERT_TRUE(owner_entry(false, vb, &eb));
  EXPECT_EQ(eb.published_base, 52u);

  // The application goes: smtd takes its table out of grant_tables.
  const uint32_t client_owner = va.owner_id;
  EXPECT_TRUE(has_owner_table(true, client_owner));
  cli.reset();
  EXPECT_TRUE(eventually([&] { return !has_owner_table(true, client_owner); }, 5000));
}

// Issue 5: XDP attached with smtctl on both hosts while libsmt sessions run
// through smtd. Every SMT packet one host's link sent is counted exactly once
// by the other's XDP (passed to the stack for raw sockets, redirected for
// AF_XDP), GRANTs meet their armed slots, nothing is dropped, and detaching
// leaves smtd's maps and sessions alone.
void LibsmtOverSmtdTest::xdp_on_both_hosts(unsigned datapath) {
  start(true);
  start(false);
  // One counter of `smtctl stats --json` (a single interface per host).
  auto counter = [&](bool is_a, const std::string& name) -> int64_t {
    std::string out;
    if (smtctl(is_a, "stats --json", &out) != 0) return -1;
    std::smatch m;
    if (!std::regex_search(out, m, std::regex("\"" + name + "\":([0-9]+)"))) return -1;
    return std::stoll(m[1].str());
  };
  std::string out;
  ASSERT_EQ(smtctl(true, "attach " + ns_.dev_a, &out), 0) << out;
  ASSERT_EQ(smtctl(false, "attach " + ns_.dev_b, &out), 0) << out;

  auto srv = socket(false, kServerPort, datapath);
  ASSERT_TRUE(srv.has_value());
  EchoServer echo(*srv);
  auto cli = socket(true, 40000, datapath);
  ASSERT_TRUE(cli.has_value());
  // Small RPCs, and large ones in both directions: their GRANTs find armed slots.
  for (int i = 0; i < 50; ++i) ASSERT_EQ(rpc(*cli, 64), 0) << a_.log() << b_.log();
  for (int i = 0; i < 5; ++i) ASSERT_EQ(rpc(*cli, 300000), 0);
  ASSERT_TRUE(eventually([&] { return stats(*srv).rpcs_active == 0; }, 5000));

  const uint64_t a_sent = stats(*cli).link_tx_packets, b_sent = stats(*srv).link_tx_packets;
  std::printf("A sent %llu SMT packets, B %llu; GRANTs that grew a slot: A %lld, B %lld\n",
              static_cast<unsigned long long>(a_sent), static_cast<unsigned long long>(b_sent),
              static_cast<long long>(counter(true, "grant_grew")),
              static_cast<long long>(counter(false, "grant_grew")));
  // Raw sockets: XDP passes every packet to the stack. AF_XDP: it redirects
  // every one to the owner's socket and the stack sees none.
  const bool xsk = datapath == SMT_DATAPATH_AUTO;
  EXPECT_EQ(counter(false, xsk ? "redirect_xsk" : "pass_stack"), static_cast<int64_t>(a_sent))
      << "B's XDP must see every SMT packet A sent";
  EXPECT_EQ(counter(true, xsk ? "redirect_xsk" : "pass_stack"), static_cast<int64_t>(b_sent));
  EXPECT_EQ(counter(true, xsk ? "pass_stack" : "redirect_xsk"), 0);
  EXPECT_EQ(counter(false, xsk ? "pass_stack" : "redirect_xsk"), 0);
  for (bool host : {true, false}) {
    EXPECT_GT(counter(host, "pass_not_smt"), 0) << "smtd's TCP control channel passes untouched";
    EXPECT_GT(counter(host, "grant_grew"), 0) << "no GRANT met its armed slot";
    for (const char* d : {"drop_fragment", "drop_bad_ip", "drop_truncated", "drop_bad_version",
                          "drop_bad_type", "drop_bad_header", "drop_unknown_session",
                          "drop_bad_tag", "drop_old_request", "drop_wrong_queue", "drop_no_xsk"}) {
      EXPECT_EQ(counter(host, d), 0) << (host ? "A " : "B ") << d;
    }
  }
  EXPECT_EQ(stats(*cli).drops + stats(*srv).drops, 0u);

  // CONTRACT §7 counters: XDP's per-session tag failures from the maps, the
  // engine's counters from the holder's last report to smtd (once a second).
  ASSERT_TRUE(eventually(
      [&] {
        smtctl(false, "sessions --json --socket " + sock_path(false), &out);
        return out.find("\"engine\":{") != std::string::npos;
      },
      3000))
      << out;
  EXPECT_NE(out.find("\"local_port\":5000"), std::string::npos) << out;
  EXPECT_NE(out.find("\"mac_failures\":0"), std::string::npos) << out;
  EXPECT_NE(out.find("\"tx_epoch\":0,\"rx_epoch\":0"), std::string::npos) << out;
  EXPECT_NE(out.find("\"auth_failures\":0,\"replays\":0,\"drops\":{}"), std::string::npos) << out;
  std::smatch sigma;
  ASSERT_TRUE(std::regex_search(out, sigma, std::regex("\"sigma\":([0-9]+)"))) << out;
  EXPECT_GT(std::stoull(sigma[1].str()), 55u) << "the server sealed a record per reply at least";

  // Detach: nothing attached, smtd's maps and the session still there. The
  // raw-socket path carries on without XDP; AF_XDP traffic stops (nothing
  // redirects it any more), which is how a test notices it was not AF_XDP.
  ASSERT_EQ(smtctl(true, "detach " + ns_.dev_a, &out), 0) << out;
  ASSERT_EQ(smtctl(false, "detach " + ns_.dev_b, &out), 0) << out;
  ASSERT_EQ(smtctl(false, "status --json", &out), 0) << out;
  EXPECT_NE(out.find("\"interfaces\":[]"), std::string::npos) << out;
  EXPECT_EQ(
      sh("nsenter --net=/run/netns/" + ns_.b + " ip link show " + ns_.dev_b + " | grep -q xdp"), 1)
      << "a program is still attached";
  smt_session_value v;
  EXPECT_TRUE(map_entry(false, kServerPort, 40000, &v));
  EXPECT_TRUE(has_owner_table(false, v.owner_id));
  if (xsk) {
    EXPECT_EQ(rpc(*cli, 64, 500), ETIMEDOUT);
  } else {
    EXPECT_EQ(rpc(*cli, 64), 0);
  }
}

TEST_F(LibsmtOverSmtdTest, XdpPassesEveryPacketOfRawSocketSessionsAndDetachLeavesSmtdsMaps) {
  xdp_on_both_hosts(SMT_DATAPATH_RAW);
}

TEST_F(LibsmtOverSmtdTest, XdpRedirectsEveryPacketToAfXdpSessionsAndDetachStopsThem) {
  xdp_on_both_hosts(SMT_DATAPATH_AUTO);
}

// CONTRACT §5: smtd closes a session once XDP has counted 2^32 tag failures
// for it, on both hosts, and forgets the count with the session. (The count
// is written into the per-CPU map; sending 2^32 forgeries is not feasible.)
TEST_F(LibsmtOverSmtdTest, SessionWithTwoToTheThirtyTwoTagFailuresIsClosedOnBothHosts) {
  start(true);
  start(false);
  std::string out;
  ASSERT_EQ(smtctl(false, "attach " + ns_.dev_b, &out), 0) << out;
  auto srv = socket(false, kServerPort);
  ASSERT_TRUE(srv.has_value());
  EchoServer echo(*srv);
  auto cli = socket(true, 40000);
  ASSERT_TRUE(cli.has_value());
  ASSERT_EQ(rpc(*cli, 64), 0) << a_.log() << b_.log();

  smt_session_key k;
  std::memset(&k, 0, sizeof k);
  auto la = parse_addr(ns_.addr_b).value(), pa = parse_addr(ns_.addr_a).value();
  std::memcpy(k.local_addr, la.data(), 16);
  std::memcpy(k.remote_addr, pa.data(), 16);
  k.local_port = htons(kServerPort);
  k.remote_port = htons(40000);
  ASSERT_EQ(sh("ls -d " + pin_b_ + "/if-*", &out), 0) << out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  UniqueFd fails(bpf_obj_get((out + "/" SMT_MAP_SESSION_MAC_FAIL).c_str()));
  ASSERT_TRUE(fails) << out << ": " << std::strerror(errno);
  std::vector<uint64_t> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()), 0);
  // One short of the limit, split over two CPUs: the session lives on.
  per_cpu[0] = (uint64_t{1} << 32) - 2;
  per_cpu[per_cpu.size() - 1] += 1;
  ASSERT_EQ(bpf_map_update_elem(fails.get(), &k, per_cpu.data(), BPF_ANY), 0) << strerror(errno);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // two smtd ticks
  EXPECT_EQ(stats(*srv).sessions_closed, 0u);
  EXPECT_EQ(rpc(*cli, 64), 0);

  per_cpu[per_cpu.size() - 1] += 1;  // the 2^32nd
  ASSERT_EQ(bpf_map_update_elem(fails.get(), &k, per_cpu.data(), BPF_ANY), 0);
  EXPECT_TRUE(eventually([&] { return stats(*srv).sessions_closed == 1; }, 5000)) << b_.log();
  EXPECT_TRUE(b_.wait_log("(2^32 tag failures)", 1000)) << b_.log();
  EXPECT_TRUE(a_.wait_log("closed (closed by the peer)", 5000)) << a_.log();
  smt_session_value v;
  EXPECT_FALSE(map_entry(false, kServerPort, 40000, &v));
  EXPECT_NE(bpf_map_lookup_elem(fails.get(), &k, per_cpu.data()), 0)
      << "the count outlived its session";
  // The idle client learns of it on its next call, which opens a new session.
  EXPECT_EQ(rpc(*cli, 64), 0);
  EXPECT_EQ(stats(*cli).sessions_closed, 1u);
  EXPECT_EQ(stats(*cli).sessions_opened, 2u);
}


// A connection that got an AF_XDP socket and then asks DATAPATH for raw
// sockets only (libsmt does, when it cannot map the AF_XDP socket) gives the
// socket back: smtd moves its sessions to the raw socket (no AF_XDP flag, so
// XDP passes their packets to the stack) and the queue is free again.
TEST_F(LibsmtOverSmtdTest, AConnectionThatGivesBackItsAfXdpSocketHasItsSessionsMovedToTheRawSocket) {
  start(true);
  start(false);
  std::string out;
  ASSERT_EQ(smtctl(false, "attach " + ns_.dev_b, &out), 0) << out;
  auto cb = SmtdClient::connect(sock_path(false));
  ASSERT_TRUE(cb.ok()) << cb.error().message;
  ASSERT_EQ(cb->lease(kServerPort).value(), kServerPort);
  auto g = cb->datapath();
  ASSERT_TRUE(g.ok()) << g.error().message;
  ASSERT_EQ(g->kind, static_cast<uint32_t>(SMTD_DATAPATH_AF_XDP)) << g->note;
  auto ca = SmtdClient::connect(sock_path(true));
  ASSERT_TRUE(ca.ok()) << ca.error().message;
  ASSERT_EQ(ca->lease(40000).value(), 40000);
  auto opened = ca->open(parse_addr(ns_.addr_b).value(), kServerPort, 40000);
  ASSERT_TRUE(opened.ok()) << opened.error().message << b_.log();
  smt_session_value v;
  ASSERT_TRUE(map_entry(false, kServerPort, 40000, &v));
  EXPECT_NE(v.flags & SMT_SESSION_F_AF_XDP, 0) << "the holder is on AF_XDP";

  auto raw = cb->datapath(0, 0, /*raw_only=*/true);
  ASSERT_TRUE(raw.ok()) << raw.error().message;
  EXPECT_EQ(raw->kind, static_cast<uint32_t>(SMTD_DATAPATH_RAW));
  EXPECT_TRUE(b_.wait_log("gave back its AF_XDP socket on queue 0", 2000)) << b_.log();
  ASSERT_TRUE(map_entry(false, kServerPort, 40000, &v));
  EXPECT_EQ(v.flags & SMT_SESSION_F_AF_XDP, 0) << "the session still points XDP at AF_XDP";

  // The queue is free again once our copies of the socket are closed.
  g->xsk.reset();
  g->xsk_umem.reset();
  auto other = SmtdClient::connect(sock_path(false));
  ASSERT_TRUE(other.ok());
  auto g2 = other->datapath();
  ASSERT_TRUE(g2.ok()) << g2.error().message;
  EXPECT_EQ(g2->kind, static_cast<uint32_t>(SMTD_DATAPATH_AF_XDP)) << g2->note;
}

}  // namespace
}  // namespace smt::smtd::test
