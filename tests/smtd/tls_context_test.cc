// smtd's TLS set-up refuses what it must: a key file others can read, a
// missing or unreadable certificate, a key that does not match, a CA file
// without a certificate, a non-P-256 certificate; and matches identities on
// SAN DNS (case-insensitive), SAN URI and CN.
#include "smtd/tls_context.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "support/test_support.h"

namespace smt::smtd {
namespace {

std::string source_dir() {
  const char* src = std::getenv("SMT_SOURCE_DIR");
  return src != nullptr ? src : SMT_SOURCE_DIR_FALLBACK;
}

class TlsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/smtd-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::string out;
    ASSERT_EQ(smt::test::run_command(source_dir() + "/tools/smt-certs --uri spiffe://smt.test/a " +
                                         dir_ + " hosta hostb 2>&1",
                                     &out),
              0)
        << out;
    ASSERT_EQ(smt::test::run_command(
                  source_dir() + "/tools/smt-certs --no-san " + dir_ + " cnonly 2>&1", &out),
              0)
        << out;
    cfg_.certificate = dir_ + "/hosta.crt";
    cfg_.key = dir_ + "/hosta.key";
    cfg_.ca = dir_ + "/ca.crt";
  }
  void TearDown() override { smt::test::run_command("rm -rf '" + dir_ + "'", nullptr); }

  X509* load(const std::string& name) {
    FILE* f = std::fopen((dir_ + "/" + name + ".crt").c_str(), "r");
    if (f == nullptr) return nullptr;
    X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    return x;
  }

  std::string dir_;
  Config cfg_;
};

TEST_F(TlsContextTest, GoodFilesLoad) {
  auto t = make_tls_contexts(cfg_);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_GT(t->cert_not_after, 0);
}

TEST_F(TlsContextTest, KeyReadableByGroupOrOthersIsRefused) {
  for (mode_t m : {0640, 0604, 0660}) {
    ::chmod(cfg_.key.c_str(), m);
    auto t = make_tls_contexts(cfg_);
    ASSERT_FALSE(t.ok()) << m;
    EXPECT_EQ(t.error().code, EPERM);
    EXPECT_NE(t.error().message.find("must not be accessible to group or others"),
              std::string::npos);
  }
  ::chmod(cfg_.key.c_str(), 0400);
  EXPECT_TRUE(make_tls_contexts(cfg_).ok());
}

TEST_F(TlsContextTest, MissingFilesAreNamed) {
  Config c = cfg_;
  c.certificate = dir_ + "/nope.crt";
  auto t = make_tls_contexts(c);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("cannot load certificate " + c.certificate), std::string::npos)
      << t.error().message;
  c = cfg_;
  c.key = dir_ + "/nope.key";
  t = make_tls_contexts(c);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("cannot open private key " + c.key), std::string::npos);
}

TEST_F(TlsContextTest, MismatchedKeyIsRefused) {
  Config c = cfg_;
  c.key = dir_ + "/hostb.key";
  auto t = make_tls_contexts(c);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("does not match certificate"), std::string::npos)
      << t.error().message;
}

TEST_F(TlsContextTest, BadCaFileIsRefused) {
  std::ofstream(dir_ + "/junk.crt") << "not a certificate\n";
  Config c = cfg_;
  c.ca = dir_ + "/junk.crt";
  auto t = make_tls_contexts(c);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find(c.ca), std::string::npos) << t.error().message;
}

TEST_F(TlsContextTest, NonP256CertificateIsRefused) {
  std::string out;
  ASSERT_EQ(smt::test::run_command(
                "cd " + dir_ +
                    " && openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.crt "
                    "-subj /CN=rsa -days 1 2>&1 && chmod 600 rsa.key",
                &out),
            0)
      << out;
  Config c = cfg_;
  c.certificate = dir_ + "/rsa.crt";
  c.key = dir_ + "/rsa.key";
  auto t = make_tls_contexts(c);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("ECDSA P-256"), std::string::npos) << t.error().message;
}

TEST_F(TlsContextTest, IdentitiesMatchSanDnsUriAndCn) {
  X509* a = load("hosta");
  X509* cn = load("cnonly");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(cn, nullptr);
  auto ids = certificate_identities(a);
  EXPECT_NE(std::find(ids.begin(), ids.end(), "dns:hosta"), ids.end());
  EXPECT_NE(std::find(ids.begin(), ids.end(), "uri:spiffe://smt.test/a"), ids.end());
  EXPECT_NE(std::find(ids.begin(), ids.end(), "cn:hosta"), ids.end());
  EXPECT_EQ(match_identity(a, {"dns:HostA"}), "dns:HostA") << "DNS names ignore case";
  EXPECT_EQ(match_identity(a, {"uri:spiffe://smt.test/a"}), "uri:spiffe://smt.test/a");
  EXPECT_EQ(match_identity(a, {"uri:SPIFFE://smt.test/a"}), "") << "URIs compare exactly";
  EXPECT_EQ(match_identity(a, {"dns:hostb", "cn:hostb"}), "");
  EXPECT_EQ(match_identity(a, {"anonymous"}), "");
  EXPECT_EQ(match_identity(cn, {"dns:cnonly"}), "") << "a CN is not a DNS name";
  EXPECT_EQ(match_identity(cn, {"cn:cnonly"}), "cn:cnonly");
  X509_free(a);
  X509_free(cn);
}

TEST(TlsAlertNames, AlertsTheTestsRelyOnHaveTheirRfcNames) {
  EXPECT_EQ(tls_alert_name(40), "handshake_failure");
  EXPECT_EQ(tls_alert_name(45), "certificate_expired");
  EXPECT_EQ(tls_alert_name(48), "unknown_ca");
  EXPECT_EQ(tls_alert_name(116), "certificate_required");
  EXPECT_EQ(tls_alert_name(120), "no_application_protocol");
  EXPECT_EQ(tls_alert_name(200), "alert_200");
}

}  // namespace
}  // namespace smt::smtd
