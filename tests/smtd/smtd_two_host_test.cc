// Two smtds in two network namespaces joined by a veth pair, each with its own
// pin root and socket: handshakes, session set-up, the alerts of bad peers,
// the unix socket's authorisation, restart and re-adoption, SIGHUP.
//
//   netns smtdA-<rand>            netns smtdB-<rand>
//   smtd A 10.77.0.1:7853 <-veth-> smtd B 10.77.0.2:7853
//     ^ a.sock (this test)          ^ b.sock (this test)
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "smt/wire.h"
#include "smtd/app_protocol.h"
#include "smtd/map_store.h"
#include "smtd/notify_page.h"
#include "smtd/smtd_client.h"
#include "wire/drop_reason.h"
#include "smtd_harness.h"
#include "support/test_support.h"

namespace smt::smtd::test {
namespace {

struct HostSpec {
  std::string cert = "";      // certificate name in the certs dir (default: host name)
  std::string peer_identity;  // identity this host allows for its peer
  std::string extra_local;    // more [local] lines
  std::string extra;          // more sections
};

HostSpec with_cert(std::string c) {
  HostSpec h;
  h.cert = std::move(c);
  return h;
}
HostSpec with_peer_identity(std::string id) {
  HostSpec h;
  h.peer_identity = std::move(id);
  return h;
}
HostSpec with_local(std::string lines) {
  HostSpec h;
  h.extra_local = std::move(lines);
  return h;
}
HostSpec with_sections(std::string text) {
  HostSpec h;
  h.extra = std::move(text);
  return h;
}

class TwoHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SMT_REQUIRE_OR_SKIP(::geteuid() == 0, "needs root (network namespaces, BPF maps)");
    SMT_REQUIRE_OR_SKIP(have_bpffs(), "needs bpffs at /sys/fs/bpf");
    SMT_REQUIRE_OR_SKIP(have_netns(), "needs ip netns and nsenter");
    dir_ = make_temp_dir(&cleanup_, "2h");
    ASSERT_FALSE(dir_.empty());
    ::chmod(dir_.c_str(), 0755);  // a second uid must reach the sockets
    std::string out;
    ASSERT_EQ(sh(smt_certs_tool() + " " + dir_ + "/certs hosta hostb hostc", &out), 0) << out;
    ASSERT_EQ(sh(smt_certs_tool() + " --ca other " + dir_ + "/certs rogue", &out), 0) << out;
    ASSERT_EQ(sh(smt_certs_tool() + " --expired " + dir_ + "/certs old", &out), 0) << out;
    std::string err;
    ASSERT_TRUE(make_netns_pair(&cleanup_, &ns_, &err)) << err;
    pin_a_ = make_pin_root(&cleanup_, "a");
    pin_b_ = make_pin_root(&cleanup_, "b");
  }
  void TearDown() override {
    a_.stop();
    b_.stop();
    cleanup_.run();
  }

  std::string config(bool is_a, const HostSpec& h) {
    std::string me = is_a ? "a" : "b";
    std::string host = is_a ? "hosta" : "hostb";
    std::string cert = h.cert.empty() ? host : h.cert;
    std::string peer = is_a ? "hostb" : "hosta";
    std::string my_addr = is_a ? ns_.addr_a : ns_.addr_b;
    std::string peer_addr = is_a ? ns_.addr_b : ns_.addr_a;
    std::string path = dir_ + "/" + me + ".conf";
    std::ofstream f(path);
    f << "[local]\naddress = " << my_addr << "\nlisten = " << my_addr << ":7853\n"
      << "certificate = " << dir_ << "/certs/" << cert << ".crt\n"
      << "key = " << dir_ << "/certs/" << cert << ".key\n"
      << "ca = " << dir_ << "/certs/ca.crt\n"
      << h.extra_local << "\n[peer " << peer << "]\naddress = " << peer_addr
      << "\ncontrol = " << peer_addr
      << ":7853\nidentity = " << (h.peer_identity.empty() ? "dns:" + peer : h.peer_identity) << "\n"
      << "\n[uid 0]\nports = any\nephemeral = yes\n"
      << "\n[uid 65534]\nports = 6000-6010\n"
      << h.extra;
    return path;
  }

  void start(bool is_a, const HostSpec& h, std::vector<std::string> extra_args = {}) {
    std::string me = is_a ? "a" : "b";
    SmtdProcess::Options o;
    o.config = config(is_a, h);
    o.state_dir = is_a ? pin_a_ : pin_b_;
    o.socket = dir_ + "/" + me + ".sock";
    o.netns = is_a ? ns_.a : ns_.b;
    o.log = dir_ + "/" + me + ".log";
    o.extra_args = std::move(extra_args);
    std::string err;
    ASSERT_TRUE((is_a ? a_ : b_).start(o, &err)) << err;
  }

  SmtdClient client(bool is_a) {
    auto c = SmtdClient::connect(dir_ + "/" + (is_a ? "a" : "b") + ".sock");
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
    return std::move(c.value());
  }

  Addr16 addr(const std::string& s) { return parse_addr(s).value(); }

  /// The pinned session entry of `pin` for (local, peer), if any.
  bool lookup(const std::string& pin, const std::string& local, uint16_t lport,
              const std::string& peer, uint16_t pport, smt_session_value* v) {
    UniqueFd fd(bpf_obj_get((pin + "/" SMT_MAP_SESSIONS).c_str()));
    if (!fd) return false;
    smt_session_key k;
    std::memset(&k, 0, sizeof k);
    auto la = addr(local), pa = addr(peer);
    std::memcpy(k.local_addr, la.data(), 16);
    std::memcpy(k.remote_addr, pa.data(), 16);
    k.local_port = htons(lport);
    k.remote_port = htons(pport);
    return bpf_map_lookup_elem(fd.get(), &k, v) == 0;
  }

  /// Opens 40000 -> B:5000 with both applications attached; returns both views.
  void open_session(SmtdClient* ca, SmtdClient* cb, HeldSession* sa, HeldSession* sb) {
    ASSERT_EQ(cb->lease(5000).value(), 5000);
    ASSERT_EQ(ca->lease(40000).value(), 40000);
    auto opened = ca->open(addr(ns_.addr_b), 5000, 40000);
    ASSERT_TRUE(opened.ok()) << opened.error().message << "\nA:\n"
                             << a_.log() << "\nB:\n"
                             << b_.log();
    *sa = std::move(*opened);
    auto note = cb->next_notification(5000);
    ASSERT_TRUE(note.ok()) << note.error().message;
    ASSERT_EQ(note->kind, SmtdNotification::Kind::kIncoming);
    *sb = std::move(note->session);
  }

  /// Opens and expects a handshake failure; returns the error details.
  SmtdErrorInfo open_expecting_failure(std::string* message) {
    auto ca = client(true);
    EXPECT_TRUE(ca.lease(40000).ok());
    auto opened = ca.open(addr(ns_.addr_b), 5000, 40000);
    EXPECT_FALSE(opened.ok());
    if (!opened.ok()) *message = opened.error().message;
    return ca.last_error();
  }

  Cleanup cleanup_;
  std::string dir_, pin_a_, pin_b_;
  NetnsPair ns_;
  SmtdProcess a_, b_;
};

TEST_F(TwoHostTest, BothApplicationsGetTheSameSessionSecrets) {
  start(true, {});
  start(false, {}, {"--keylog", dir_ + "/b.keylog"});
  auto ca = client(true), cb = client(false);
  HeldSession sa, sb;
  open_session(&ca, &cb, &sa, &sb);
  if (HasFatalFailure()) return;

  EXPECT_EQ(sa.serial, sb.serial);
  EXPECT_EQ(sa.serial % 2, 0u) << "A dialled B, so A is the TLS client: even serial";
  EXPECT_TRUE(sa.initiator);
  EXPECT_FALSE(sb.initiator);
  EXPECT_EQ(sa.suite, Suite::kAes128GcmSha256);
  EXPECT_EQ(sb.suite, Suite::kAes128GcmSha256);
  ASSERT_TRUE(sa.has_secrets && sb.has_secrets);
  EXPECT_EQ(sa.secret_i_0.size(), 32u);
  EXPECT_TRUE(sa.secret_i_0 == sb.secret_i_0);
  EXPECT_TRUE(sa.secret_r_0 == sb.secret_r_0);
  EXPECT_TRUE(sa.k_ctl_i == sb.k_ctl_i);
  EXPECT_TRUE(sa.k_ctl_r == sb.k_ctl_r);
  EXPECT_FALSE(sa.secret_i_0 == sa.secret_r_0);
  EXPECT_EQ(sa.peer_identity, "dns:hostb");
  EXPECT_EQ(sb.peer_identity, "dns:hosta");
  EXPECT_EQ(format_addr(sa.local_addr), ns_.addr_a);
  EXPECT_EQ(format_addr(sb.peer_addr), ns_.addr_a);
  EXPECT_EQ(sa.local_port, 40000);
  EXPECT_EQ(sb.local_port, 5000);
  EXPECT_EQ(sb.peer_port, 40000);
  EXPECT_NE(sa.holder_token, sb.holder_token);

  // Both pinned entries hold the control keys the right way round (key-schedule.md §6).
  smt_session_value va, vb;
  ASSERT_TRUE(lookup(pin_a_, ns_.addr_a, 40000, ns_.addr_b, 5000, &va));
  ASSERT_TRUE(lookup(pin_b_, ns_.addr_b, 5000, ns_.addr_a, 40000, &vb));
  EXPECT_EQ(va.serial, sa.serial);
  EXPECT_EQ(va.initiator, 1);
  EXPECT_EQ(vb.initiator, 0);
  EXPECT_EQ(std::memcmp(va.tx_ctl_key, sa.k_ctl_i.data(), 16), 0);
  EXPECT_EQ(std::memcmp(va.rx_ctl_key, sa.k_ctl_r.data(), 16), 0);
  EXPECT_EQ(std::memcmp(vb.tx_ctl_key, sa.k_ctl_r.data(), 16), 0);
  EXPECT_EQ(std::memcmp(vb.rx_ctl_key, sa.k_ctl_i.data(), 16), 0);

  // B's key log names the session and carries the same secret.
  std::ifstream kl(dir_ + "/b.keylog");
  std::string text((std::istreambuf_iterator<char>(kl)), std::istreambuf_iterator<char>());
  std::string want = "SMT_I_AP_0 " + std::to_string(sa.serial) + " " + ns_.addr_a + ":40000 " +
                     ns_.addr_b + ":5000 253 1301 " +
                     smt::test::hex(sa.secret_i_0.data(), sa.secret_i_0.size());
  EXPECT_NE(text.find(want), std::string::npos) << text;
  EXPECT_NE(b_.log().find("SESSION SECRETS ARE WRITTEN TO DISK"), std::string::npos);
  // smtd never logs key material.
  std::string hex_secret = smt::test::hex(sa.secret_i_0.data(), sa.secret_i_0.size());
  EXPECT_EQ(a_.log().find(hex_secret), std::string::npos);
  EXPECT_EQ(b_.log().find(hex_secret), std::string::npos);

  // The application closes: the peer's holder hears of it, both entries go.
  ASSERT_TRUE(ca.close(addr(ns_.addr_b), 5000, 40000).ok());
  auto note = cb.next_notification(5000);
  ASSERT_TRUE(note.ok()) << note.error().message;
  EXPECT_EQ(note->kind, SmtdNotification::Kind::kPeerClosed);
  EXPECT_EQ(note->closed.serial, sa.serial);
  EXPECT_EQ(note->closed.reason, static_cast<uint32_t>(SMTD_CLOSE_BY_PEER));
  EXPECT_FALSE(lookup(pin_a_, ns_.addr_a, 40000, ns_.addr_b, 5000, &va));
  EXPECT_FALSE(lookup(pin_b_, ns_.addr_b, 5000, ns_.addr_a, 40000, &vb));
}

TEST_F(TwoHostTest, ApplicationExitClosesItsSessionsOnBothHosts) {
  start(true, {});
  start(false, {});
  auto cb = client(false);
  smt_session_value v;
  {
    auto ca = client(true);
    HeldSession sa, sb;
    open_session(&ca, &cb, &sa, &sb);
    if (HasFatalFailure()) return;
    ASSERT_TRUE(lookup(pin_b_, ns_.addr_b, 5000, ns_.addr_a, 40000, &v));
  }  // A's application goes away without a word
  auto note = cb.next_notification(5000);
  ASSERT_TRUE(note.ok()) << note.error().message << "\n" << a_.log();
  EXPECT_EQ(note->kind, SmtdNotification::Kind::kPeerClosed);
  EXPECT_FALSE(lookup(pin_a_, ns_.addr_a, 40000, ns_.addr_b, 5000, &v));
  EXPECT_FALSE(lookup(pin_b_, ns_.addr_b, 5000, ns_.addr_a, 40000, &v));
  // Its lease is gone too: another connection may take the port.
  auto again = client(true);
  EXPECT_TRUE(again.lease(40000).ok());
}

// Whether `page` shows `n` within a second (and never more).
bool count_reaches(const NotifyPage& page, uint64_t n) {
  for (int i = 0; i < 1000 && page.count() < n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return page.count() == n;
}

// docs/smtd.md "Notifications": the count on the connection's page moves
// once per notification, after the notification is in the socket, and the
// application can only read the page.
TEST_F(TwoHostTest, NotificationCountRisesOnceForEachNotificationItsHolderCanRead) {
  start(true, {});
  start(false, {});
  auto ca = client(true), cb = client(false);
  auto grant = cb.owner_table();
  ASSERT_TRUE(grant.ok()) << grant.error().message;
  ASSERT_TRUE(grant->notify_fd.valid());
  void* w = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, grant->notify_fd.get(), 0);
  EXPECT_EQ(w, MAP_FAILED) << "the holder could map its notification page writable";
  EXPECT_EQ(errno, EPERM);
  auto page = NotifyPage::map_readonly(std::move(grant->notify_fd));
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->count(), 0u);

  HeldSession sa, sb;
  open_session(&ca, &cb, &sa, &sb);  // reads B's INCOMING
  if (HasFatalFailure()) return;
  // smtd raises the count just after its sendmsg, so allow it that moment.
  EXPECT_TRUE(count_reaches(*page, 1)) << "INCOMING";
  auto none = cb.next_notification(0);
  EXPECT_FALSE(none.ok()) << "a notification the count did not announce";

  ASSERT_TRUE(ca.close(addr(ns_.addr_b), 5000, 40000).ok());
  auto note = cb.next_notification(5000);
  ASSERT_TRUE(note.ok()) << note.error().message;
  EXPECT_EQ(note->kind, SmtdNotification::Kind::kPeerClosed);
  EXPECT_TRUE(count_reaches(*page, 2)) << "PEER_CLOSED";

  // Asking again hands out the same page.
  auto again = cb.owner_table();
  ASSERT_TRUE(again.ok()) << again.error().message;
  auto page2 = NotifyPage::map_readonly(std::move(again->notify_fd));
  ASSERT_TRUE(page2.ok()) << page2.error().message;
  EXPECT_EQ(page2->count(), 2u);
}

TEST_F(TwoHostTest, PeerWithCertificateFromAnotherCaGetsUnknownCa) {
  start(true, with_peer_identity("dns:rogue"));
  start(false, with_cert("rogue"));
  auto cb = client(false);
  ASSERT_TRUE(cb.lease(5000).ok());
  std::string msg;
  SmtdErrorInfo e = open_expecting_failure(&msg);
  EXPECT_EQ(e.tls_alert, 48) << msg;
  EXPECT_TRUE(e.alert_sent) << "A verified B's certificate and sent the alert";
  EXPECT_NE(msg.find("unknown_ca"), std::string::npos) << msg;
  EXPECT_TRUE(b_.wait_log("received TLS alert 48 (unknown_ca)", 3000)) << b_.log();
}

TEST_F(TwoHostTest, ClientWithCertificateFromAnotherCaGetsUnknownCaFromTheServer) {
  start(true, with_cert("rogue"));
  start(false, with_peer_identity("dns:rogue"));
  auto cb = client(false);
  ASSERT_TRUE(cb.lease(5000).ok());
  std::string msg;
  // A (rogue) trusts B, B refuses A's certificate under mutual TLS. With TLS
  // 1.3 the client learns of it on its first read after the handshake.
  SmtdErrorInfo e = open_expecting_failure(&msg);
  EXPECT_EQ(e.tls_alert, 48) << msg;
  EXPECT_FALSE(e.alert_sent);
  EXPECT_TRUE(b_.wait_log("sent TLS alert 48 (unknown_ca)", 3000)) << b_.log();
}

TEST_F(TwoHostTest, ExpiredPeerCertificateGetsCertificateExpired) {
  start(true, with_peer_identity("dns:old"));
  start(false, with_cert("old"));
  auto cb = client(false);
  ASSERT_TRUE(cb.lease(5000).ok());
  std::string msg;
  SmtdErrorInfo e = open_expecting_failure(&msg);
  EXPECT_EQ(e.tls_alert, 45) << msg;
  EXPECT_TRUE(e.alert_sent);
  EXPECT_NE(msg.find("certificate has expired"), std::string::npos) << msg;
}

TEST_F(TwoHostTest, DisallowedPeerIdentityGetsHandshakeFailure) {
  // B presents hostc: a valid certificate of the right CA, but A expects hostb.
  start(true, {});
  start(false, with_cert("hostc"));
  auto cb = client(false);
  ASSERT_TRUE(cb.lease(5000).ok());
  std::string msg;
  SmtdErrorInfo e = open_expecting_failure(&msg);
  EXPECT_EQ(e.tls_alert, 40) << msg;
  EXPECT_TRUE(e.alert_sent);
  EXPECT_NE(msg.find("peer identity not allowed"), std::string::npos) << msg;
  EXPECT_NE(msg.find("dns:hostc"), std::string::npos) << msg;
}

TEST_F(TwoHostTest, OpenToAPortNobodyLeasedIsRefused) {
  start(true, {});
  start(false, {});
  std::string msg;
  SmtdErrorInfo e = open_expecting_failure(&msg);
  EXPECT_EQ(e.err, ECONNREFUSED);
  EXPECT_EQ(e.refused_reason, 4) << msg;  // port_not_leased
  EXPECT_NE(msg.find("port_not_leased"), std::string::npos) << msg;
}

/// In a child running as `uid`: the results of a few requests as a bitmask.
int probe_as_uid(const std::string& sock, uid_t uid) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(uid) != 0 || ::setuid(uid) != 0) ::_exit(100);
    auto c = SmtdClient::connect(sock);
    if (!c.ok()) ::_exit(101);
    int bits = 0;
    auto own = c->lease(5000);  // not in [uid 65534]'s ports
    if (!own.ok() && c->last_error().err == EACCES) bits |= 1;
    auto taken = c->lease(6001);  // allowed, but root holds it
    if (!taken.ok() && c->last_error().err == EADDRINUSE) bits |= 2;
    auto mine = c->lease(6002);
    if (mine.ok() && *mine == 6002) bits |= 4;
    auto eph = c->lease(0);  // no ephemeral = yes for this uid
    if (!eph.ok() && c->last_error().err == EACCES) bits |= 8;
    ::_exit(bits);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST_F(TwoHostTest, UnixSocketRefusesAnotherUidsPortsAndMalformedRequests) {
  start(true, {});
  auto root = client(true);
  ASSERT_TRUE(root.lease(6001).ok());
  EXPECT_EQ(probe_as_uid(dir_ + "/a.sock", 65534), 1 | 2 | 4 | 8) << a_.log();

  // Malformed requests: each gets an error reply, and smtd keeps serving.
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    int err;
  };
  smtd_app_lease lease{};
  lease.hdr = {SMTD_APP_VERSION, SMTD_APP_LEASE, sizeof lease, 7, 0};
  lease.port = 6003;
  auto as_bytes = [](const auto& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    return std::vector<uint8_t>(p, p + sizeof v);
  };
  std::vector<Case> cases;
  cases.push_back({"short", {1, 0, 1}, EBADMSG});
  auto bad_version = lease;
  bad_version.hdr.version = 9;
  cases.push_back({"version", as_bytes(bad_version), EPROTONOSUPPORT});
  auto bad_length = lease;
  bad_length.hdr.length = 4000;
  cases.push_back({"length", as_bytes(bad_length), EBADMSG});
  auto bad_type = lease;
  bad_type.hdr.type = 0x77;
  cases.push_back({"type", as_bytes(bad_type), EOPNOTSUPP});
  auto bad_reserved = lease;
  bad_reserved.reserved = 1;
  cases.push_back({"reserved", as_bytes(bad_reserved), EBADMSG});
  auto truncated = as_bytes(lease);
  truncated.resize(20);
  smtd_app_hdr th{SMTD_APP_VERSION, SMTD_APP_LEASE, 20, 7, 0};
  std::memcpy(truncated.data(), &th, sizeof th);
  cases.push_back({"truncated body", truncated, EBADMSG});
  auto eph_with_port = lease;
  eph_with_port.flags = SMTD_LEASE_F_EPHEMERAL;
  cases.push_back({"ephemeral with a port", as_bytes(eph_with_port), EBADMSG});
  std::vector<uint8_t> huge(SMTD_APP_MAX_MSG + 100, 0);
  cases.push_back({"oversized", huge, EMSGSIZE});
  for (const auto& c : cases) {
    ASSERT_TRUE(root.send_raw(c.bytes).ok()) << c.what;
    auto reply = root.recv_raw(3000);
    ASSERT_TRUE(reply.ok()) << c.what << ": " << reply.error().message;
    ASSERT_EQ(reply->size(), sizeof(smtd_app_error)) << c.what;
    smtd_app_error e;
    std::memcpy(&e, reply->data(), sizeof e);
    EXPECT_EQ(e.hdr.type, SMTD_APP_ERROR) << c.what;
    EXPECT_EQ(e.err, c.err) << c.what << ": " << e.message;
    EXPECT_NE(e.message[0], '\0') << c.what;
  }
  // Still alive and serving.
  EXPECT_TRUE(root.lease(6004).ok());
  EXPECT_NE(a_.log().find("malformed request"), std::string::npos);
}

TEST_F(TwoHostTest, SessionsSurviveAnSmtdRestartAndOnlyTheTokenHolderReadoptsThem) {
  start(true, {});
  start(false, {});
  auto cb = client(false);
  HeldSession sa, sb;
  {
    auto ca = client(true);
    open_session(&ca, &cb, &sa, &sb);
    if (HasFatalFailure()) return;
    ASSERT_EQ(a_.stop(), 0) << a_.log();
  }
  smt_session_value v;
  ASSERT_TRUE(lookup(pin_a_, ns_.addr_a, 40000, ns_.addr_b, 5000, &v))
      << "a stopped smtd leaves its sessions in the pinned map";
  start(true, {});
  EXPECT_TRUE(a_.wait_log("picked up 1 sessions", 1000)) << a_.log();

  auto ca = client(true);
  std::array<uint8_t, SMTD_APP_TOKEN_LEN> wrong = sa.holder_token;
  wrong[0] ^= 1;
  auto refused = ca.adopt(wrong);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(ca.last_error().err, ENOENT);

  auto adopted = ca.adopt(sa.holder_token);
  ASSERT_TRUE(adopted.ok()) << adopted.error().message << "\n" << a_.log();
  EXPECT_EQ(adopted->serial, sa.serial);
  EXPECT_FALSE(adopted->has_secrets);
  EXPECT_EQ(adopted->peer_identity, "dns:hostb");
  EXPECT_EQ(adopted->local_port, 40000);
  // Only once.
  auto twice = client(true).adopt(sa.holder_token);
  EXPECT_FALSE(twice.ok());

  // The peer still has the session, and accepts CLOSE for it over the new
  // control channel from the same identity.
  ASSERT_TRUE(lookup(pin_b_, ns_.addr_b, 5000, ns_.addr_a, 40000, &v));
  ASSERT_TRUE(ca.close(addr(ns_.addr_b), 5000, 40000).ok());
  auto note = cb.next_notification(5000);
  ASSERT_TRUE(note.ok()) << note.error().message << "\n" << a_.log() << "\n" << b_.log();
  EXPECT_EQ(note->kind, SmtdNotification::Kind::kPeerClosed);
  EXPECT_EQ(note->closed.serial, sa.serial);
}

TEST_F(TwoHostTest, UnadoptedSessionsAreClosedAfterTheGracePeriod) {
  start(true, with_local("adopt_grace = 1\n"));
  start(false, {});
  auto cb = client(false);
  HeldSession sa, sb;
  {
    auto ca = client(true);
    open_session(&ca, &cb, &sa, &sb);
    if (HasFatalFailure()) return;
    ASSERT_EQ(a_.stop(), 0);
  }
  start(true, with_local("adopt_grace = 1\n"));
  auto note = cb.next_notification(8000);
  ASSERT_TRUE(note.ok()) << note.error().message << "\n" << a_.log();
  EXPECT_EQ(note->kind, SmtdNotification::Kind::kPeerClosed);
  smt_session_value v;
  EXPECT_FALSE(lookup(pin_a_, ns_.addr_a, 40000, ns_.addr_b, 5000, &v));
}

TEST_F(TwoHostTest, SighupReloadsConfigurationAndKeepsSessions) {
  start(true, {});
  start(false, {});
  auto ca = client(true), cb = client(false);
  HeldSession sa, sb;
  open_session(&ca, &cb, &sa, &sb);
  if (HasFatalFailure()) return;
  config(true, with_sections("\n[uid 1234]\nports = 7000\n"));
  a_.signal(SIGHUP);
  ASSERT_TRUE(a_.wait_log("SIGHUP: reloaded", 3000)) << a_.log();
  EXPECT_NE(a_.log().find("1 sessions kept"), std::string::npos);
  smt_session_value v;
  EXPECT_TRUE(lookup(pin_a_, ns_.addr_a, 40000, ns_.addr_b, 5000, &v));
  auto list = ca.list_json();
  ASSERT_TRUE(list.ok());
  EXPECT_NE(list->find("\"serial\": " + std::to_string(sa.serial)), std::string::npos) << *list;
  // A broken config is refused and the running one kept.
  { std::ofstream(dir_ + "/a.conf") << "[local]\nbogus = 1\n"; }
  a_.signal(SIGHUP);
  ASSERT_TRUE(a_.wait_log("keeping the running configuration", 3000)) << a_.log();
  EXPECT_TRUE(ca.lease(40001).ok());
}

TEST_F(TwoHostTest, ChannelsAreReestablishedWithResumptionAndSessionsOutliveThem) {
  start(true, with_local("reconnect_interval = 1\n"));
  start(false, {});
  auto ca = client(true), cb = client(false);
  HeldSession sa, sb;
  open_session(&ca, &cb, &sa, &sb);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(a_.wait_log("re-establishing after reconnect_interval", 4000)) << a_.log();
  ASSERT_TRUE(a_.wait_log("resumed)", 8000)) << a_.log();
  smt_session_value v;
  EXPECT_TRUE(lookup(pin_b_, ns_.addr_b, 5000, ns_.addr_a, 40000, &v));
  // A new session over the resumed channel still gets fresh, matching keys.
  ASSERT_TRUE(ca.lease(40001).ok());
  auto second = ca.open(addr(ns_.addr_b), 5000, 40001);
  ASSERT_TRUE(second.ok()) << second.error().message;
  auto note = cb.next_notification(5000);
  ASSERT_TRUE(note.ok());
  EXPECT_TRUE(note->session.secret_i_0 == second->secret_i_0);
  EXPECT_FALSE(second->secret_i_0 == sa.secret_i_0);
}

TEST_F(TwoHostTest, StartRefusesAKeyReadableByOthers) {
  ::chmod((dir_ + "/certs/hosta.key").c_str(), 0644);
  SmtdProcess::Options o;
  o.config = config(true, {});
  o.state_dir = pin_a_;
  o.socket = dir_ + "/a.sock";
  o.netns = ns_.a;
  o.log = dir_ + "/a.log";
  std::string err;
  EXPECT_FALSE(a_.start(o, &err));
  EXPECT_NE(err.find("mode 0644"), std::string::npos) << err;
  EXPECT_NE(err.find("chmod 600"), std::string::npos) << err;
}


// STATS (docs/smtd.md §4): smtd keeps a holder's engine counters for
// GET_STATS, ignores reports about sessions the sender does not hold, refuses
// malformed ones, and replaces a session whose holder reports its keys spent
// (CONTRACT §4): closed on both hosts, the holder told why.
TEST_F(TwoHostTest, HolderReportsAreKeptAndSpentKeysCloseTheSessionOnBothHosts) {
  start(true, {});
  start(false, {});
  auto ca = client(true);
  auto cb = client(false);
  HeldSession sa, sb;
  open_session(&ca, &cb, &sa, &sb);
  if (HasFatalFailure()) return;

  smtd_app_session_stats e;
  std::memset(&e, 0, sizeof e);
  std::memcpy(e.peer_addr, sa.peer_addr.data(), 16);
  e.peer_port = sa.peer_port;
  e.local_port = sa.local_port;
  e.serial = sa.serial;
  e.tx_epoch = 3;
  e.sigma = 77;
  e.auth_failures = 5;
  e.drops[static_cast<size_t>(DropReason::kReplay)] = 9;
  ASSERT_TRUE(ca.send_stats({&e, 1}).ok());
  // Another application's report about A's session changes nothing.
  auto other = client(true);
  smtd_app_session_stats forged = e;
  forged.sigma = 1;
  ASSERT_TRUE(other.send_stats({&forged, 1}).ok());
  auto got = ca.session_stats();
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].serial, sa.serial);
  EXPECT_EQ((*got)[0].sigma, 77u) << "a non-holder's report was taken";
  EXPECT_EQ((*got)[0].tx_epoch, 3u);
  const std::string listed = ca.list_json().value();
  EXPECT_NE(listed.find("\"auth_failures\": 5"), std::string::npos) << listed;
  EXPECT_NE(listed.find("\"replay\": 9"), std::string::npos) << listed;

  // Malformed: a count the length does not carry.
  std::vector<uint8_t> bad(sizeof(smtd_app_stats) + sizeof e);
  smtd_app_stats h;
  std::memset(&h, 0, sizeof h);
  h.hdr.version = SMTD_APP_VERSION;
  h.hdr.type = SMTD_APP_STATS;
  h.hdr.length = static_cast<uint32_t>(bad.size());
  h.hdr.request_id = 77;
  h.count = 2;
  std::memcpy(bad.data(), &h, sizeof h);
  ASSERT_TRUE(ca.send_raw(bad).ok());
  auto reply = ca.recv_raw(5000);
  ASSERT_TRUE(reply.ok());
  smtd_app_error err;
  ASSERT_EQ(reply->size(), sizeof err);
  std::memcpy(&err, reply->data(), sizeof err);
  EXPECT_EQ(err.hdr.type, SMTD_APP_ERROR);
  EXPECT_EQ(err.err, EBADMSG);

  e.flags = SMTD_STATS_F_NEEDS_NEW_SESSION;
  ASSERT_TRUE(ca.send_stats({&e, 1}).ok());
  auto note = ca.next_notification(5000);
  ASSERT_TRUE(note.ok()) << note.error().message << a_.log();
  ASSERT_EQ(note->kind, SmtdNotification::Kind::kPeerClosed);
  EXPECT_EQ(note->closed.reason, static_cast<uint32_t>(SMTD_CLOSE_KEYS_SPENT));
  auto peer_note = cb.next_notification(5000);
  ASSERT_TRUE(peer_note.ok()) << peer_note.error().message << b_.log();
  EXPECT_EQ(peer_note->kind, SmtdNotification::Kind::kPeerClosed);
  smt_session_value v;
  EXPECT_FALSE(lookup(pin_a_, ns_.addr_a, 40000, ns_.addr_b, 5000, &v));
  EXPECT_FALSE(lookup(pin_b_, ns_.addr_b, 5000, ns_.addr_a, 40000, &v));
}

}  // namespace
}  // namespace smt::smtd::test
