// The smt-echo binary: its in-process selftest and its key-file checks.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <string>

#include "support/test_support.h"

namespace smt::test {
namespace {

const std::string kEcho = SMT_ECHO_PATH;

TEST(SmtEchoTool, SelftestEchoesEverySizeAndPrintsPercentilesAndSummary) {
  std::string out;
  const int rc = run_command(kEcho + " selftest --sizes 64,1024,65536 --count 20 2>&1", &out);
  ASSERT_EQ(rc, 0) << out;
  for (const char* size : {"size 64 B: 20 ok", "size 1024 B: 20 ok", "size 65536 B: 20 ok"}) {
    EXPECT_NE(out.find(size), std::string::npos) << out;
  }
  EXPECT_NE(out.find("p99.9"), std::string::npos) << out;
  EXPECT_NE(out.find("smt-echo: 60 rpcs, 0 failed, 0 mismatched"), std::string::npos) << out;
}

TEST(SmtEchoTool, KeyFileThatIsNotExactly32HexBytesIsRefused) {
  char tmpl[] = "/tmp/smt-echo-key-XXXXXX";
  const int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  const std::string path = tmpl;
  const std::string bads[] = {"00112233", "zz", std::string(66, 'a'), ""};
  for (const std::string& bad : bads) {
    std::ofstream(path) << bad;
    std::string out;
    const int rc = run_command(
        kEcho + " client --peer 127.0.0.1 --port 2000 --secret-file " + path + " 2>&1", &out);
    EXPECT_NE(rc, 0) << "accepted key file '" << bad << "'";
    EXPECT_NE(out.find("secret file"), std::string::npos) << out;
  }
  std::string key;
  ASSERT_EQ(run_command(kEcho + " genkey", &key), 0);
  EXPECT_EQ(key.size(), 65u) << key;
  unlink(path.c_str());
}

}  // namespace
}  // namespace smt::test
