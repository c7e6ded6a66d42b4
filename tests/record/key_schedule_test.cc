// Key schedule: RFC 8448 §3 application keys, and every SMT derivation of
// docs/key-schedule.md recomputed with the `openssl kdf` command line (an
// implementation that is not ours).
#include "record/key_schedule.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "common/bytes.h"
#include "support/test_support.h"

namespace smt {
namespace {

using test::hex;
using test::unhex;

// RFC 8448 §3, {server} and {client} "derive write traffic keys for
// application data".
constexpr const char* kRfc8448ClientAppSecret =
    "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5";
constexpr const char* kRfc8448ClientAppKey = "17422dda596ed5d9acd890e3c63f5051";
constexpr const char* kRfc8448ClientAppIv = "5b78923dee08579033e523d9";
constexpr const char* kRfc8448ServerAppSecret =
    "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643";
constexpr const char* kRfc8448ServerAppKey = "9f02283b6c9c07efc26bb9f2ac92e356";
constexpr const char* kRfc8448ServerAppIv = "cf782b88dd83549aadf1e984";

TEST(KeySchedule, Rfc8448ApplicationTrafficKeysAndIvs) {
  auto c = derive_traffic_keys(Suite::kAes128GcmSha256, unhex(kRfc8448ClientAppSecret));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(hex(c->key.data(), c->key.size()), kRfc8448ClientAppKey);
  EXPECT_EQ(hex(c->iv.data(), c->iv.size()), kRfc8448ClientAppIv);
  auto s = derive_traffic_keys(Suite::kAes128GcmSha256, unhex(kRfc8448ServerAppSecret));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(hex(s->key.data(), s->key.size()), kRfc8448ServerAppKey);
  EXPECT_EQ(hex(s->iv.data(), s->iv.size()), kRfc8448ServerAppIv);
}

// ---- independent recomputation with the openssl command line -------------

bool have_openssl_cli() {
  return test::run_command("openssl version >/dev/null 2>&1", nullptr) == 0;
}

// The HkdfLabel structure of RFC 8446 §7.1, encoded here by the test itself.
std::string hkdf_label_hex(size_t len, const std::string& label, const std::string& ctx_hex) {
  std::vector<uint8_t> b;
  b.push_back(static_cast<uint8_t>(len >> 8));
  b.push_back(static_cast<uint8_t>(len));
  std::string full = "tls13 " + label;
  b.push_back(static_cast<uint8_t>(full.size()));
  b.insert(b.end(), full.begin(), full.end());
  auto ctx = unhex(ctx_hex);
  b.push_back(static_cast<uint8_t>(ctx.size()));
  b.insert(b.end(), ctx.begin(), ctx.end());
  return hex(b);
}

std::string openssl_expand_label(const char* digest, const std::string& secret_hex,
                                 const std::string& label, const std::string& ctx_hex, size_t len) {
  std::string cmd = "openssl kdf -keylen " + std::to_string(len) + " -kdfopt digest:" + digest +
                    " -kdfopt mode:EXPAND_ONLY -kdfopt hexkey:" + secret_hex +
                    " -kdfopt hexinfo:" + hkdf_label_hex(len, label, ctx_hex) + " HKDF";
  std::string out;
  EXPECT_EQ(test::run_command(cmd, &out), 0) << cmd;
  std::string h;
  for (char ch : out) {
    if (std::isxdigit(static_cast<unsigned char>(ch)))
      h.push_back(static_cast<char>(std::tolower(ch)));
  }
  return h;
}

std::string openssl_digest(const char* digest, const std::vector<uint8_t>& data) {
  char path[] = "/tmp/smt-ctx-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  FILE* f = fdopen(fd, "wb");
  fwrite(data.data(), 1, data.size(), f);
  fclose(f);
  std::string out;
  std::string cmd = std::string("openssl dgst -") + digest + " -r " + path;
  EXPECT_EQ(test::run_command(cmd, &out), 0);
  std::remove(path);
  return out.substr(0, out.find(' '));
}

// The vectors of docs/key-schedule.md: root = 00 01 .. 1f (SHA-256 suites)
// and a fixed IPv4 session.
SessionContextInput doc_session(Suite suite) {
  SessionContextInput in;
  in.version = 1;
  in.suite = suite;
  const uint8_t a[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
  const uint8_t b[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2};
  std::copy(a, a + 16, in.initiator_addr.begin());
  std::copy(b, b + 16, in.responder_addr.begin());
  in.initiator_port = 40000;
  in.responder_port = 5000;
  in.protocol = 253;
  in.serial = 2;
  return in;
}

TEST(KeySchedule, SessionSecretsMatchOpensslKdfCommandLine) {
  SMT_REQUIRE_OR_SKIP(have_openssl_cli(), "the openssl command line is not installed");
  for (Suite suite : {Suite::kAes128GcmSha256, Suite::kAes256GcmSha384}) {
    const SuiteInfo* info = suite_info(suite);
    std::vector<uint8_t> root(info->hash_len);
    for (size_t i = 0; i < root.size(); ++i) root[i] = static_cast<uint8_t>(i);
    SessionContextInput in = doc_session(suite);
    auto s = derive_session_secrets(root, in);
    ASSERT_TRUE(s.ok()) << s.error().message;

    size_t n = 0;
    auto ctx_bytes = session_context_bytes(in, &n);
    ASSERT_EQ(n, 48u);
    std::string ctx = openssl_digest(info->digest, {ctx_bytes.begin(), ctx_bytes.begin() + n});
    EXPECT_EQ(hex(s->ctx.data(), s->ctx.size()), ctx);
    const std::string r = hex(root);
    EXPECT_EQ(hex(s->initiator_secret.data(), s->initiator_secret.size()),
              openssl_expand_label(info->digest, r, "smt i ap", ctx, info->hash_len));
    EXPECT_EQ(hex(s->responder_secret.data(), s->responder_secret.size()),
              openssl_expand_label(info->digest, r, "smt r ap", ctx, info->hash_len));
    EXPECT_EQ(hex(s->initiator_ctl.data(), s->initiator_ctl.size()),
              openssl_expand_label(info->digest, r, "smt i ctl", ctx, 16));
    EXPECT_EQ(hex(s->responder_ctl.data(), s->responder_ctl.size()),
              openssl_expand_label(info->digest, r, "smt r ctl", ctx, 16));
    EXPECT_FALSE(s->initiator_secret == s->responder_secret);
  }
}

TEST(KeySchedule, EpochKeysAndRatchetMatchOpensslKdfCommandLine) {
  SMT_REQUIRE_OR_SKIP(have_openssl_cli(), "the openssl command line is not installed");
  for (Suite suite :
       {Suite::kAes128GcmSha256, Suite::kAes256GcmSha384, Suite::kChaCha20Poly1305Sha256}) {
    const SuiteInfo* info = suite_info(suite);
    std::vector<uint8_t> secret(info->hash_len, 0x5a);
    std::string cur = hex(secret);
    SecretBytes s(secret);
    for (int epoch = 0; epoch < 3; ++epoch) {
      auto k = derive_traffic_keys(suite, s.span());
      ASSERT_TRUE(k.ok());
      EXPECT_EQ(hex(k->key.data(), k->key.size()),
                openssl_expand_label(info->digest, cur, "key", "", info->key_len));
      EXPECT_EQ(hex(k->iv.data(), k->iv.size()),
                openssl_expand_label(info->digest, cur, "iv", "", 12));
      auto next = next_traffic_secret(suite, s.span());
      ASSERT_TRUE(next.ok());
      std::string expect =
          openssl_expand_label(info->digest, cur, "traffic upd", "", info->hash_len);
      EXPECT_EQ(hex(next->data(), next->size()), expect);
      s = *next;
      cur = expect;
    }
  }
}

TEST(KeySchedule, ContextBytesAreBigEndianInDocumentedOrder) {
  size_t n = 0;
  auto b = session_context_bytes(doc_session(Suite::kAes128GcmSha256), &n);
  EXPECT_EQ(hex(b.data(), n),
            "01"
            "1301"
            "00000000000000000000ffff0a000001"
            "9c40"
            "00000000000000000000ffff0a000002"
            "1388"
            "fd"
            "0000000000000002");
}

TEST(KeySchedule, UnknownSuiteIsAnError) {
  std::vector<uint8_t> secret(32, 1);
  EXPECT_FALSE(derive_traffic_keys(static_cast<Suite>(0x1304), secret).ok());
  SessionContextInput in = doc_session(Suite::kAes128GcmSha256);
  EXPECT_FALSE(derive_session_secrets(std::vector<uint8_t>(16, 0), in).ok())
      << "a root of the wrong length must be refused";
}

}  // namespace
}  // namespace smt
