// The key-log parser: smtd's own lines parse into sessions; both hosts' logs
// concatenated are fine; every malformed line is rejected with its line
// number, and no error message carries secret bytes.
#include "keylog_file.h"

#include <gtest/gtest.h>

#include "decode_test_util.h"

namespace smt::decode::test {
namespace {

SessionContextInput session(uint64_t serial, const char* i, const char* r) {
  SessionContextInput in;
  in.serial = serial;
  in.initiator_addr = smtd::parse_addr(i).value();
  in.initiator_port = 40000;
  in.responder_addr = smtd::parse_addr(r).value();
  in.responder_port = 5000;
  return in;
}

std::vector<uint8_t> filled(size_t n, uint8_t v) { return std::vector<uint8_t>(n, v); }

std::string two_sessions() {
  return "# SMT key log v1\n\n" +
         keylog_lines(session(2, "10.0.0.1", "10.0.0.2"), filled(32, 0x11), filled(32, 0x22),
                      filled(16, 0x33), filled(16, 0x44)) +
         keylog_lines(session(7, "fd00::1", "fd00::2"), filled(32, 0x55), filled(32, 0x66),
                      filled(16, 0x77), filled(16, 0x88));
}

TEST(KeylogFile, SmtdLinesParseIntoSessions) {
  auto r = parse_keylog(two_sessions(), "k");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  const LoggedSession& a = (*r)[0];
  EXPECT_EQ(a.serial, 2u);
  EXPECT_EQ(a.initiator_port, 40000);
  EXPECT_EQ(a.responder_port, 5000);
  EXPECT_EQ(a.protocol, 253);
  EXPECT_EQ(a.suite, Suite::kAes128GcmSha256);
  ASSERT_EQ(a.traffic[kInitToResp].count(0), 1u);
  EXPECT_EQ(a.traffic[kInitToResp].at(0).span()[0], 0x11);
  EXPECT_EQ(a.traffic[kRespToInit].at(0).span()[0], 0x22);
  ASSERT_TRUE(a.ctl[kInitToResp] && a.ctl[kRespToInit]);
  EXPECT_EQ(a.ctl[kRespToInit]->span()[0], 0x44);
  EXPECT_EQ((*r)[1].initiator_addr[0], 0xfd) << "[v6]:port endpoints";
}

TEST(KeylogFile, BothHostsLogsConcatenatedAndLaterEpochsAreAccepted) {
  const std::string later =
      smtd::keylog_line("SMT_I_AP_3", session(2, "10.0.0.1", "10.0.0.2"), filled(32, 0x99));
  auto r = parse_keylog(two_sessions() + "\r\n" + two_sessions() + later + "\r\n", "k");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].traffic[kInitToResp].size(), 2u);
  EXPECT_EQ((*r)[0].traffic[kInitToResp].at(3).span()[0], 0x99);
}

TEST(KeylogFile, MalformedLinesAreRejectedWithTheirLineNumber) {
  const std::string hex32(64, 'a'), hex16(32, 'b');
  const std::string ep = " 2 10.0.0.1:40000 10.0.0.2:5000 253 1301 ";
  const std::pair<std::string, std::string> cases[] = {
      {"SMT_I_AP_0 2 10.0.0.1:40000 10.0.0.2:5000 253 1301", "expected 7 fields"},
      {"SMT_I_AP_0" + ep + hex32 + " extra", "expected 7 fields"},
      {"CLIENT_RANDOM" + ep + hex32, "unknown label"},
      {"SMT_I_AP_01" + ep + hex32, "unknown label"},
      {"SMT_I_AP_x" + ep + hex32, "unknown label"},
      {"SMT_I_AP_70000" + ep + hex32, "unknown label"},
      {"SMT_I_AP_0 -2 10.0.0.1:40000 10.0.0.2:5000 253 1301 " + hex32, "serial"},
      {"SMT_I_AP_0 2 10.0.0.1 10.0.0.2:5000 253 1301 " + hex32, "initiator"},
      {"SMT_I_AP_0 2 10.0.0.1:40000 host:5000 253 1301 " + hex32, "responder"},
      {"SMT_I_AP_0 2 10.0.0.1:40000 10.0.0.2:5000 256 1301 " + hex32, "protocol"},
      {"SMT_I_AP_0 2 10.0.0.1:40000 10.0.0.2:5000 253 13010 " + hex32, "suite is not 4 hex"},
      {"SMT_I_AP_0 2 10.0.0.1:40000 10.0.0.2:5000 253 1304 " + hex32, "unknown cipher suite"},
      {"SMT_I_AP_0" + ep + hex16, "must be 32 bytes"},
      {"SMT_I_CTL" + ep + hex32, "must be 16 bytes"},
      {"SMT_I_AP_0 2 10.0.0.1:40000 10.0.0.2:5000 253 1302 " + hex32, "must be 48 bytes"},
      {"SMT_I_AP_0" + ep + std::string(63, 'a') + "g", "not hex"},
  };
  for (const auto& [line, want] : cases) {
    auto r = parse_keylog("# header\n" + line + "\n", "k.log");
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_NE(r.error().message.find("k.log:2: "), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(want), std::string::npos)
        << "line: " << line << "\nerror: " << r.error().message;
    EXPECT_EQ(r.error().message.find("aaaaaaaa"), std::string::npos) << "secret in the error";
  }
}

TEST(KeylogFile, ConflictingSecretsForOneSessionAreRejected) {
  const auto in = session(2, "10.0.0.1", "10.0.0.2");
  const std::string text = smtd::keylog_line("SMT_R_CTL", in, filled(16, 1)) + "\n" +
                           smtd::keylog_line("SMT_R_CTL", in, filled(16, 2)) + "\n";
  auto r = parse_keylog(text, "k");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("k:2: SMT_R_CTL of session 2 conflicts"), std::string::npos)
      << r.error().message;
  auto other = in;
  other.suite = Suite::kChaCha20Poly1305Sha256;
  auto s = parse_keylog(smtd::keylog_line("SMT_I_AP_0", in, filled(32, 1)) + "\n" +
                            smtd::keylog_line("SMT_R_AP_0", other, filled(32, 1)) + "\n",
                        "k");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("another suite"), std::string::npos) << s.error().message;
}

TEST(KeylogFile, MissingFileIsAClearError) {
  auto r = read_keylog("/nonexistent/smt.keylog");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/smt.keylog: cannot open key log"),
            std::string::npos);
}

}  // namespace
}  // namespace smt::decode::test
