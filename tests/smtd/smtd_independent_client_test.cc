// smtd against TLS 1.3 clients that share no code with it: `openssl s_client`
// and GnuTLS's `gnutls-cli` complete a handshake and a session set-up (a canned
// OPEN from smt-setup-msg on stdin), print the exporter root, and the test
// recomputes every per-session value smtd installed with the `openssl kdf` and
// `openssl dgst` command lines, building the HKDF labels by hand.
//
//   netns smtdI-<rand>: smtd on 127.0.0.1:7853 (address 10.0.0.2)
//                       clients via nsenter, claiming 10.0.0.1
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "smt/wire.h"
#include "smtd/smtd_client.h"
#include "smtd_harness.h"
#include "support/test_support.h"

namespace smt::smtd::test {
namespace {

std::string hex_of(const std::string& s) {
  return smt::test::hex(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string lower_hex(std::string s) {
  std::string out;
  for (char c : s) {
    if (std::isxdigit(static_cast<unsigned char>(c))) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

class IndependentClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SMT_REQUIRE_OR_SKIP(::geteuid() == 0, "needs root (network namespace, BPF maps)");
    SMT_REQUIRE_OR_SKIP(have_bpffs(), "needs bpffs at /sys/fs/bpf");
    SMT_REQUIRE_OR_SKIP(have_netns(), "needs ip netns and nsenter");
    dir_ = make_temp_dir(&cleanup_, "ic");
    std::string out;
    ASSERT_EQ(sh(smt_certs_tool() + " " + dir_ + "/certs smtd client", &out), 0) << out;
    ns_ = "smtdI-" + random_suffix();
    ASSERT_EQ(sh("ip netns add " + ns_, &out), 0) << out;
    cleanup_.push([ns = ns_] { sh("ip netns del " + ns); });
    ASSERT_EQ(sh("ip -n " + ns_ + " link set lo up", &out), 0) << out;
    pin_ = make_pin_root(&cleanup_, "ic");
    std::ofstream(dir_ + "/smtd.conf")
        << "[local]\naddress = 10.0.0.2\nlisten = 127.0.0.1:7853\n"
        << "certificate = " << dir_ << "/certs/smtd.crt\nkey = " << dir_ << "/certs/smtd.key\n"
        << "ca = " << dir_ << "/certs/ca.crt\n\n"
        << "[peer client]\naddress = 10.0.0.1\nidentity = dns:client\n\n"
        << "[uid 0]\nports = any\n";
    SmtdProcess::Options o;
    o.config = dir_ + "/smtd.conf";
    o.state_dir = pin_;
    o.socket = dir_ + "/smtd.sock";
    o.netns = ns_;
    o.log = dir_ + "/smtd.log";
    o.extra_args = {"--keylog", dir_ + "/keylog"};
    std::string err;
    ASSERT_TRUE(smtd_.start(o, &err)) << err;
    auto c = SmtdClient::connect(o.socket);
    ASSERT_TRUE(c.ok()) << c.error().message;
    app_.emplace(std::move(*c));
    ASSERT_TRUE(app_->lease(5000).ok());
  }
  void TearDown() override {
    app_.reset();
    smtd_.stop();
    cleanup_.run();
  }

  /// Runs `client` inside the namespace with `frames` (smt-setup-msg
  /// arguments, one set per frame) on stdin; returns everything it printed.
  std::string run_client(const std::string& client, const std::vector<std::string>& frames) {
    std::string feed = dir_ + "/feed.bin";
    ::unlink(feed.c_str());
    for (const auto& f : frames) {
      EXPECT_EQ(sh(std::string(SMT_SETUP_MSG) + " " + f + " >> " + feed), 0) << f;
    }
    std::string out;
    sh("(cat " + feed + "; sleep 1) | timeout 20 nsenter --net=/run/netns/" + ns_ + " -- " + client,
       &out);
    return out;
  }

  std::string openssl_client(const std::vector<std::string>& frames,
                             const std::string& extra = "") {
    return run_client(
        "openssl s_client -connect 127.0.0.1:7853 -tls1_3 -alpn smt/1 "
        "-keymatexport 'EXPERIMENTAL smt v1' -keymatexportlen 32 -cert " +
            dir_ + "/certs/client.crt -key " + dir_ + "/certs/client.key -CAfile " + dir_ +
            "/certs/ca.crt -verify_return_error -nocommands " + extra,
        frames);
  }

  /// The 48 context bytes of key-schedule.md §3, written out by hand.
  std::string context_hex(const std::string& init_v4hex, int init_port,
                          const std::string& resp_v4hex, int resp_port, uint64_t serial) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "01"
                  "1301"
                  "00000000000000000000ffff%s%04x"
                  "00000000000000000000ffff%s%04x"
                  "fd"
                  "%016llx",
                  init_v4hex.c_str(), init_port, resp_v4hex.c_str(), resp_port,
                  static_cast<unsigned long long>(serial));
    return buf;
  }

  std::string sha256_hex(const std::string& bytes_hex) {
    std::string path = dir_ + "/ctx.bin";
    auto bytes = smt::test::unhex(bytes_hex);
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    std::string out;
    EXPECT_EQ(sh("openssl dgst -sha256 -r " + path, &out), 0) << out;
    return out.substr(0, 64);
  }

  /// HKDF-Expand-Label with the openssl command line; the HkdfLabel is built here.
  std::string hkdf_expand_label(const std::string& secret_hex, const std::string& label,
                                const std::string& context_hex, int len) {
    std::string full = "tls13 " + label;
    char head[32];
    std::snprintf(head, sizeof head, "%04x%02zx", len, full.size());
    char clen[24];
    std::snprintf(clen, sizeof clen, "%02zx", context_hex.size() / 2);
    std::string info = head + hex_of(full) + clen + context_hex;
    std::string out;
    EXPECT_EQ(sh("openssl kdf -keylen " + std::to_string(len) +
                     " -kdfopt digest:SHA256 -kdfopt mode:EXPAND_ONLY -kdfopt hexkey:" +
                     secret_hex + " -kdfopt hexinfo:" + info + " HKDF",
                 &out),
              0)
        << out;
    return lower_hex(out);
  }

  /// Checks what smtd handed the application and installed against values
  /// recomputed from the client's exporter output.
  void check_session(const std::string& root_hex, int init_port, uint64_t serial) {
    ASSERT_EQ(root_hex.size(), 64u) << "no exporter output from the client";
    auto note = app_->next_notification(5000);
    ASSERT_TRUE(note.ok()) << note.error().message << "\n" << smtd_.log();
    ASSERT_EQ(note->kind, SmtdNotification::Kind::kIncoming);
    const HeldSession& s = note->session;
    EXPECT_EQ(s.serial, serial);
    EXPECT_FALSE(s.initiator);
    EXPECT_EQ(s.peer_identity, "dns:client");

    std::string ctx = sha256_hex(context_hex("0a000001", init_port, "0a000002", 5000, serial));
    std::string si = hkdf_expand_label(root_hex, "smt i ap", ctx, 32);
    std::string sr = hkdf_expand_label(root_hex, "smt r ap", ctx, 32);
    std::string ki = hkdf_expand_label(root_hex, "smt i ctl", ctx, 16);
    std::string kr = hkdf_expand_label(root_hex, "smt r ctl", ctx, 16);
    EXPECT_EQ(smt::test::hex(s.secret_i_0.data(), s.secret_i_0.size()), si);
    EXPECT_EQ(smt::test::hex(s.secret_r_0.data(), s.secret_r_0.size()), sr);
    EXPECT_EQ(smt::test::hex(s.k_ctl_i.data(), 16), ki);
    EXPECT_EQ(smt::test::hex(s.k_ctl_r.data(), 16), kr);

    // The pinned entry: smtd is the responder, so it tags with k_ctl_r.
    UniqueFd fd(bpf_obj_get((pin_ + "/" SMT_MAP_SESSIONS).c_str()));
    ASSERT_TRUE(fd);
    smt_session_key k;
    std::memset(&k, 0, sizeof k);
    auto la = smt::test::unhex("00000000000000000000ffff0a000002");
    auto ra = smt::test::unhex("00000000000000000000ffff0a000001");
    std::memcpy(k.local_addr, la.data(), 16);
    std::memcpy(k.remote_addr, ra.data(), 16);
    k.local_port = htons(5000);
    k.remote_port = htons(static_cast<uint16_t>(init_port));
    smt_session_value v;
    ASSERT_EQ(bpf_map_lookup_elem(fd.get(), &k, &v), 0);
    EXPECT_EQ(v.serial, serial);
    EXPECT_EQ(v.initiator, 0);
    EXPECT_EQ(smt::test::hex(v.tx_ctl_key, 16), kr);
    EXPECT_EQ(smt::test::hex(v.rx_ctl_key, 16), ki);

    std::ifstream kl(dir_ + "/keylog");
    std::string text((std::istreambuf_iterator<char>(kl)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("SMT_R_AP_0 " + std::to_string(serial) +
                        " 10.0.0.1:" + std::to_string(init_port) + " 10.0.0.2:5000 253 1301 " + sr),
              std::string::npos)
        << text;
  }

  static bool contains_frame(const std::string& out, const std::string& frame_hex) {
    auto f = smt::test::unhex(frame_hex);
    return out.find(std::string(f.begin(), f.end())) != std::string::npos;
  }

  Cleanup cleanup_;
  std::string dir_, ns_, pin_;
  SmtdProcess smtd_;
  std::optional<SmtdClient> app_;
};

TEST_F(IndependentClientTest, OpensslSClientSessionMatchesIndependentKeyDerivation) {
  std::string out = openssl_client({"open 2 10.0.0.1 40000 10.0.0.2 5000"});
  EXPECT_NE(out.find("ALPN protocol: smt/1"), std::string::npos) << out;
  EXPECT_NE(out.find("Protocol  : TLSv1.3"), std::string::npos) << out;
  EXPECT_NE(out.find("TLS_AES_128_GCM_SHA256"), std::string::npos) << out;
  size_t at = out.find("Keying material: ");
  ASSERT_NE(at, std::string::npos) << out;
  std::string root = lower_hex(out.substr(at + 17, 64));
  check_session(root, 40000, 2);
  // READY{serial 2, rx_queue 0} came back over the TLS connection.
  EXPECT_TRUE(contains_frame(out, "000e0102000000000000000200000000")) << smtd_.log();
}

TEST_F(IndependentClientTest, GnutlsCliSessionMatchesIndependentKeyDerivation) {
  std::string out = run_client(
      "gnutls-cli --alpn=smt/1 --keymatexport='EXPERIMENTAL smt v1' --keymatexportsize=32 "
      "--x509cafile " +
          dir_ + "/certs/ca.crt --x509certfile " + dir_ + "/certs/client.crt --x509keyfile " +
          dir_ + "/certs/client.key --verify-hostname=smtd -p 7853 127.0.0.1",
      {"open 4 10.0.0.1 40001 10.0.0.2 5000"});
  size_t at = out.find("- Key material: ");
  ASSERT_NE(at, std::string::npos) << out << "\n" << smtd_.log();
  std::string root = lower_hex(out.substr(at + 16, 64));
  check_session(root, 40001, 4);
  EXPECT_TRUE(contains_frame(out, "000e0102000000000000000400000000")) << smtd_.log();
}

TEST_F(IndependentClientTest, MalformedControlMessagesAreRefusedWithAClearError) {
  std::string out = openssl_client({
      "raw 000a01090000000000000010",         // unknown type 9, serial 16
      "open 3 10.0.0.1 40000 10.0.0.2 5000",  // odd serial from the TLS client
      "open 6 10.0.0.9 40000 10.0.0.2 5000",  // initiator address not the peer's
      "open 8 10.0.0.1 40000 10.0.0.2 5001",  // nobody leases 5001
      "raw 000b010400000000000000120a",       // CLOSE with a byte too many
      "raw 0001ff",                           // length 1: cannot resynchronise
  });
  EXPECT_TRUE(contains_frame(out, "000e0103000000000000001000030000")) << "unknown_type";
  EXPECT_TRUE(contains_frame(out, "000e0103000000000000000300070000")) << "bad_serial";
  EXPECT_TRUE(contains_frame(out, "000e0103000000000000000600060000")) << "address_mismatch";
  EXPECT_TRUE(contains_frame(out, "000e0103000000000000000800040000")) << "port_not_leased";
  EXPECT_TRUE(contains_frame(out, "000e0103000000000000001200010000")) << "malformed";
  std::string log = smtd_.log();
  EXPECT_NE(log.find("malformed set-up message from client (dns:client): unknown set-up message "
                     "type 9; answered REFUSED unknown_type"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("serial parity must be even from the TLS client"), std::string::npos) << log;
  EXPECT_NE(log.find("set-up frame length 1 outside [2, 512]"), std::string::npos) << log;
  // No session came of it, and smtd still serves.
  auto list = app_->list_json();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->find("\"serial\""), std::string::npos) << *list;
}

TEST_F(IndependentClientTest, ClientsThatAreNotTls13SmtPeersGetTheRightAlert) {
  std::string base =
      "openssl s_client -connect 127.0.0.1:7853 -CAfile " + dir_ + "/certs/ca.crt -nocommands ";
  std::string cert = "-cert " + dir_ + "/certs/client.crt -key " + dir_ + "/certs/client.key ";
  run_client(base + cert + "-tls1_2 -alpn smt/1", {"close 2"});
  EXPECT_TRUE(smtd_.wait_log("sent TLS alert 70 (protocol_version)", 2000)) << smtd_.log();
  run_client(base + cert + "-tls1_3", {"close 2"});
  EXPECT_TRUE(smtd_.wait_log("sent TLS alert 120 (no_application_protocol)", 2000)) << smtd_.log();
  run_client(base + "-tls1_3 -alpn smt/1", {"close 2"});
  EXPECT_TRUE(smtd_.wait_log("sent TLS alert 116 (certificate_required)", 2000)) << smtd_.log();
}

}  // namespace
}  // namespace smt::smtd::test
