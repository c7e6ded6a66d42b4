// smtd's config parser: the example in docs/smtd.md parses, every error names
// its line, and the lease rules do what the reference says.
#include "smtd/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace smt::smtd {
namespace {

std::string doc_example() {
  const char* src = std::getenv("SMT_SOURCE_DIR");
  std::ifstream in(std::string(src != nullptr ? src : SMT_SOURCE_DIR_FALLBACK) + "/docs/smtd.md");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string doc = ss.str();
  size_t start = doc.find("```ini\n");
  if (start == std::string::npos) return "";
  start += 7;
  return doc.substr(start, doc.find("```", start) - start);
}

constexpr const char* kMinimal =
    "[local]\naddress = 10.0.0.1\nlisten = 10.0.0.1:7853\ncertificate = /c\nkey = /k\nca = /ca\n";

TEST(SmtdConfig, DocumentedExampleParses) {
  std::string text = doc_example();
  ASSERT_FALSE(text.empty()) << "docs/smtd.md has no ```ini example";
  auto cfg = parse_config(text, "smtd.md");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(format_addr(cfg->address), "10.0.0.1");
  EXPECT_EQ(cfg->listen.port, 7853);
  EXPECT_TRUE(cfg->mutual_tls);
  EXPECT_EQ(cfg->ciphersuites, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(cfg->reconnect_interval_s, 3600u);
  ASSERT_EQ(cfg->peers.size(), 2u);
  EXPECT_EQ(cfg->peers[0].name, "hostb");
  EXPECT_TRUE(cfg->peers[0].control.has_value());
  EXPECT_EQ(cfg->peers[0].identities.front(), "dns:hostb.smt.example");
  EXPECT_FALSE(cfg->peers[1].control.has_value());
  EXPECT_TRUE(may_lease(*cfg, 1000, 5000));
  EXPECT_TRUE(may_lease(*cfg, 1000, 5010));
  EXPECT_FALSE(may_lease(*cfg, 1000, 5011));
  EXPECT_TRUE(may_lease(*cfg, 1000, 0));
  EXPECT_FALSE(may_lease(*cfg, 1001, 5000)) << "a uid without a rule may do nothing";
}

TEST(SmtdConfig, DefaultsMatchTheContract) {
  auto cfg = parse_config(kMinimal, "t");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->reconnect_interval_s, 3600u) << "CONTRACT §1: default 1 h";
  EXPECT_EQ(cfg->protocol, 253);
  EXPECT_TRUE(cfg->mutual_tls);
  EXPECT_EQ(cfg->ciphersuites, "TLS_AES_128_GCM_SHA256");
  EXPECT_FALSE(may_lease(*cfg, 0, 5000)) << "not even root leases without a [uid 0] rule";
}

TEST(SmtdConfig, ErrorsNameTheLine) {
  struct Case {
    std::string text;
    std::string want;
  } cases[] = {
      {std::string(kMinimal) + "bogus = 1\n", "t:7: unknown key 'bogus' in [local]"},
      {"[nope]\n", "t:1: unknown section [nope]"},
      {"address = 1.2.3.4\n", "t:1: 'address' outside any section"},
      {std::string(kMinimal) + "protocol = 0\n", "t:7: bad value for 'protocol'"},
      {std::string(kMinimal) + "[uid 5]\nports = 9-3\n", "t:8: bad value for 'ports'"},
      {std::string(kMinimal) + "[peer x]\naddress = 10.0.0.2\nidentity = bob\n",
       "t:9: bad value for 'identity'"},
      {std::string(kMinimal) + "[peer x]\naddress = 10.0.0.2\n", "missing 'identity' in [peer x]"},
      {"[local]\naddress = 10.0.0.1\n", "missing 'listen'"},
      {std::string(kMinimal) + "listen = 10.0.0.1\n", "t:7: bad endpoint"},
      {std::string(kMinimal) + "mutual_tls = maybe\n", "t:7: bad value for 'mutual_tls'"},
  };
  for (const auto& c : cases) {
    auto cfg = parse_config(c.text, "t");
    ASSERT_FALSE(cfg.ok()) << c.text;
    EXPECT_NE(cfg.error().message.find(c.want), std::string::npos)
        << "got: " << cfg.error().message << "\nwant: " << c.want;
  }
}

TEST(SmtdConfig, TwoPeersWithOneAddressAreRefused) {
  auto cfg = parse_config(std::string(kMinimal) +
                              "[peer a]\naddress = 10.0.0.2\nidentity = dns:a\n"
                              "[peer b]\naddress = 10.0.0.2\nidentity = dns:b\n",
                          "t");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.error().message.find("same address"), std::string::npos);
}

}  // namespace
}  // namespace smt::smtd
