// The set-up protocol codec against docs/setup-protocol.md: every vector in
// the doc encodes and decodes to exactly its hex, every reject is refused with
// its reason, and hostile frames never read out of bounds.
#include "smtd/setup_protocol.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "smtd/address.h"
#include "support/test_support.h"

namespace smt::smtd {
namespace {

using Block = std::map<std::string, std::string>;

std::string read_doc() {
  const char* src = std::getenv("SMT_SOURCE_DIR");
  std::ifstream in(std::string(src != nullptr ? src : SMT_SOURCE_DIR_FALLBACK) +
                   "/docs/setup-protocol.md");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The ```<kind> blocks of the doc as key: value maps.
std::vector<Block> blocks(const std::string& doc, const std::string& kind) {
  std::vector<Block> out;
  std::istringstream in(doc);
  std::string line;
  Block* cur = nullptr;
  while (std::getline(in, line)) {
    if (line == "```" + kind) {
      out.emplace_back();
      cur = &out.back();
    } else if (line == "```") {
      cur = nullptr;
    } else if (cur != nullptr) {
      size_t colon = line.find(": ");
      if (colon != std::string::npos) (*cur)[line.substr(0, colon)] = line.substr(colon + 2);
    }
  }
  return out;
}

uint64_t num(const Block& b, const std::string& k) { return std::stoull(b.at(k)); }

SetupMessage from_fields(const Block& b) {
  const std::string& t = b.at("type");
  if (t == "OPEN") {
    OpenMsg m;
    m.serial = num(b, "serial");
    m.smt_version = static_cast<uint8_t>(num(b, "smt_version"));
    m.protocol = static_cast<uint8_t>(num(b, "protocol"));
    m.initiator_addr = parse_addr(b.at("initiator_addr")).value();
    m.initiator_port = static_cast<uint16_t>(num(b, "initiator_port"));
    m.responder_addr = parse_addr(b.at("responder_addr")).value();
    m.responder_port = static_cast<uint16_t>(num(b, "responder_port"));
    m.rx_queue = static_cast<uint32_t>(num(b, "rx_queue"));
    return m;
  }
  if (t == "READY") return ReadyMsg{num(b, "serial"), static_cast<uint32_t>(num(b, "rx_queue"))};
  if (t == "REFUSED") {
    return RefusedMsg{num(b, "serial"), static_cast<RefuseReason>(num(b, "reason"))};
  }
  return CloseMsg{num(b, "serial")};
}

TEST(SetupProtocolDoc, EveryVectorEncodesAndDecodesToItsHex) {
  auto vs = blocks(read_doc(), "setup-vector");
  ASSERT_EQ(vs.size(), 4u) << "one vector per message type";
  for (const auto& b : vs) {
    SCOPED_TRACE(b.at("name"));
    SetupMessage m = from_fields(b);
    auto bytes = encode_setup(m);
    EXPECT_EQ(smt::test::hex(bytes), b.at("hex"));
    auto wire = smt::test::unhex(b.at("hex"));
    auto len = setup_frame_length(wire);
    ASSERT_TRUE(len.ok());
    EXPECT_EQ(*len, wire.size());
    auto decoded = decode_setup(wire);
    ASSERT_TRUE(std::holds_alternative<SetupMessage>(decoded))
        << std::get<SetupDecodeError>(decoded).message;
    EXPECT_TRUE(std::get<SetupMessage>(decoded) == m) << describe_setup(m);
  }
}

TEST(SetupProtocolDoc, EveryRejectIsRefusedWithItsReason) {
  auto rs = blocks(read_doc(), "setup-reject");
  ASSERT_GE(rs.size(), 6u);
  for (const auto& b : rs) {
    SCOPED_TRACE(b.at("name"));
    auto wire = smt::test::unhex(b.at("hex"));
    auto len = setup_frame_length(wire);
    ASSERT_TRUE(len.ok()) << "rejects are well-framed; they must not close the channel";
    ASSERT_EQ(*len, wire.size());
    auto decoded = decode_setup(wire);
    ASSERT_TRUE(std::holds_alternative<SetupDecodeError>(decoded));
    const auto& e = std::get<SetupDecodeError>(decoded);
    EXPECT_STREQ(refuse_reason_name(e.reason), b.at("reason").c_str()) << e.message;
    EXPECT_EQ(e.serial, num(b, "serial"));
    EXPECT_FALSE(e.message.empty());
  }
}

TEST(SetupProtocolDoc, ReasonTableMatchesTheCode) {
  std::string doc = read_doc();
  size_t at = doc.find("<!-- refuse-reasons -->");
  ASSERT_NE(at, std::string::npos);
  std::istringstream in(doc.substr(at));
  std::string line;
  int rows = 0;
  while (std::getline(in, line)) {
    if (line.rfind("| ", 0) != 0 || line.find("---") != std::string::npos) {
      if (rows > 0 && line.empty()) break;
      continue;
    }
    int n = 0;
    char name[64] = {};
    if (std::sscanf(line.c_str(), "| %d | %63s |", &n, name) == 2) {
      EXPECT_STREQ(refuse_reason_name(static_cast<RefuseReason>(n)), name) << line;
      ++rows;
    }
  }
  EXPECT_EQ(rows, 11);
  EXPECT_STREQ(refuse_reason_name(static_cast<RefuseReason>(12)), "unknown");
}

TEST(SetupProtocol, LengthOutsideBoundsClosesTheStream) {
  EXPECT_FALSE(setup_frame_length(smt::test::unhex("0001")).ok());
  EXPECT_FALSE(setup_frame_length(smt::test::unhex("0000")).ok());
  EXPECT_FALSE(setup_frame_length(smt::test::unhex("0201")).ok());
  // 512 is the largest accepted length: incomplete, so 0 until it all arrives.
  auto ok = setup_frame_length(smt::test::unhex("0200"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 0u);
}

TEST(SetupProtocol, IncompleteFrameWaitsForMoreBytes) {
  auto full = encode_setup(CloseMsg{7});
  for (size_t n = 0; n < full.size(); ++n) {
    auto len = setup_frame_length(std::span(full).first(n));
    ASSERT_TRUE(len.ok());
    EXPECT_EQ(*len, 0u) << n << " bytes";
  }
}

TEST(SetupProtocol, TruncatedFramesNeverDecode) {
  auto open = encode_setup(OpenMsg{2, 1, 253, {}, 1, {}, 2, 0});
  for (size_t n = 0; n < open.size(); ++n) {
    auto d = decode_setup(std::span(open).first(n));
    EXPECT_TRUE(std::holds_alternative<SetupDecodeError>(d)) << n;
  }
}

TEST(SetupProtocol, OpenWithSerialZeroIsMalformed) {
  OpenMsg m;
  m.serial = 0;
  m.initiator_port = 1;
  m.responder_port = 2;
  auto d = decode_setup(encode_setup(m));
  ASSERT_TRUE(std::holds_alternative<SetupDecodeError>(d));
  EXPECT_EQ(std::get<SetupDecodeError>(d).reason, RefuseReason::kMalformed);
}

}  // namespace
}  // namespace smt::smtd
