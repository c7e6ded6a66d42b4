// Control packets: layout, round trips, every parse rule (bounds first), tag
// coverage and domain separation from DATA.
#include "wire/control_packet.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <vector>

#include "common/bytes.h"
#include "smt/siphash.h"

namespace smt {
namespace {

constexpr uint8_t kKey[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

ControlPacket base(uint8_t type) {
  ControlPacket p;
  p.type = type;
  p.sport = 5000;
  p.dport = 40000;
  p.message_id = 0x0000abcdef012346ULL;
  p.control_seq = 0x0102030405060708ULL;
  return p;
}

ControlPacket grant() {
  ControlPacket p = base(SMT_TYPE_GRANT);
  p.grant_offset = 30000;
  p.priority = 5;
  p.window_base = 0x1000;
  return p;
}
ControlPacket resend() {
  ControlPacket p = base(SMT_TYPE_RESEND);
  p.resend_offset = 2780;
  p.resend_length = 1390;
  p.priority = 7;
  return p;
}
// A range ending just below 2^32.
ControlPacket resend_high() {
  ControlPacket p = resend();
  p.resend_offset = 0xffff0000u;
  p.resend_length = 0x1000;
  return p;
}
ControlPacket unknown() {
  ControlPacket p = base(SMT_TYPE_RPC_UNKNOWN);
  p.unknown_flags = SMT_UNKNOWN_F_DELIVERED;
  return p;
}
ControlPacket busy() { return base(SMT_TYPE_BUSY); }
ControlPacket need_ack() { return base(SMT_TYPE_NEED_ACK); }
ControlPacket ack() {
  ControlPacket p = base(SMT_TYPE_ACK);
  p.message_id = 0;
  p.window_base = 0x2000;
  p.acked_ids[0] = 0x0000abcdef012347ULL;
  p.acked_ids[1] = 0x11;
  return p;
}

std::vector<ControlPacket> every_type() {
  return {grant(), resend(), unknown(), busy(), need_ack(), ack()};
}

std::vector<uint8_t> build(const ControlPacket& p) {
  std::vector<uint8_t> b(kCtlPacketMax);
  const size_t n = build_control_packet(b.data(), p, kKey);
  EXPECT_NE(n, 0u) << "type " << int{p.type};
  b.resize(n);
  return b;
}

bool same(const ControlPacket& a, const ControlPacket& b) {
  return a.type == b.type && a.sport == b.sport && a.dport == b.dport &&
         a.message_id == b.message_id && a.control_seq == b.control_seq &&
         a.grant_offset == b.grant_offset && a.priority == b.priority &&
         a.window_base == b.window_base && a.resend_offset == b.resend_offset &&
         a.resend_length == b.resend_length && a.unknown_flags == b.unknown_flags &&
         std::memcmp(a.acked_ids, b.acked_ids, sizeof a.acked_ids) == 0;
}

DropReason parse_reason(const std::vector<uint8_t>& b) {
  ControlPacket p;
  DropReason why = DropReason::kCount;
  if (parse_control_packet(b, &p, &why)) return DropReason::kCount;
  return why;
}

TEST(ControlPacket, BodyLengthsFollowWireH) {
  EXPECT_EQ(control_body_len(SMT_TYPE_GRANT), 16);
  EXPECT_EQ(control_body_len(SMT_TYPE_RESEND), 12);
  EXPECT_EQ(control_body_len(SMT_TYPE_RPC_UNKNOWN), 4);
  EXPECT_EQ(control_body_len(SMT_TYPE_BUSY), 0);
  EXPECT_EQ(control_body_len(SMT_TYPE_NEED_ACK), 0);
  EXPECT_EQ(control_body_len(SMT_TYPE_ACK), 72);
  EXPECT_EQ(control_body_len(SMT_TYPE_DATA), -1);
  for (int t : {0x00, 0x15, 0x16, 0x19, 0xff}) {
    EXPECT_EQ(control_body_len(static_cast<uint8_t>(t)), -1) << t;
  }
}

TEST(ControlPacket, WritesTheEnvelopeLayout) {
  const auto b = build(grant());
  ASSERT_EQ(b.size(), kCtlHeaderLen + 16);
  EXPECT_EQ(load_be16(b.data() + 0), 5000);
  EXPECT_EQ(load_be16(b.data() + 2), 40000);
  EXPECT_EQ(load_be32(b.data() + 4), 0u);
  EXPECT_EQ(load_be32(b.data() + 8), 0u);
  EXPECT_EQ(b[12], 0xb0) << "doff counts the 44-byte envelope only";
  EXPECT_EQ(b[13], SMT_TYPE_GRANT);
  EXPECT_EQ(b[14], SMT_VERSION);
  EXPECT_EQ(b[15], 0);
  EXPECT_EQ(load_be64(b.data() + 20), grant().message_id);
  EXPECT_EQ(load_be64(b.data() + 28), grant().control_seq);
  EXPECT_EQ(load_be32(b.data() + 44), 30000u);
  EXPECT_EQ(b[48], 5);
  EXPECT_EQ(load_be64(b.data() + 52), 0x1000u);
  uint8_t tag[8];
  smt_siphash_store_tag(tag, control_tag(grant(), kKey));
  EXPECT_EQ(std::memcmp(b.data() + 36, tag, 8), 0);
}

TEST(ControlPacket, EveryTypeRoundTripsAndVerifies) {
  for (const auto& p : every_type()) {
    const auto b = build(p);
    EXPECT_EQ(b.size(), kCtlHeaderLen + static_cast<size_t>(control_body_len(p.type)));
    ControlPacket q;
    DropReason why = DropReason::kCount;
    ASSERT_TRUE(parse_control_packet(b, &q, &why)) << "type " << int{p.type};
    EXPECT_TRUE(same(p, q)) << "type " << int{p.type};
    EXPECT_TRUE(verify_control_tag(b, q, kKey)) << "type " << int{p.type};
    uint8_t other[16] = {};
    EXPECT_FALSE(verify_control_tag(b, q, other)) << "type " << int{p.type};
  }
}

TEST(ControlPacket, BuildRefusesInvalidPackets) {
  std::vector<std::function<void(ControlPacket&)>> bad = {
      [](ControlPacket& p) { p.type = SMT_TYPE_DATA; },
      [](ControlPacket& p) { p.type = 0x15; },
      [](ControlPacket& p) { p.message_id = SMT_MESSAGE_ID_MAX + 1; },
      [](ControlPacket& p) { p.control_seq = 0; },
      [](ControlPacket& p) { p.priority = 8; },
      [](ControlPacket& p) { p.window_base = 3; },
      [](ControlPacket& p) { p.window_base = SMT_MESSAGE_ID_MAX + 3; },
      [](ControlPacket& p) { p.resend_length = 1; },  // a field GRANT does not carry
      [](ControlPacket& p) { p.unknown_flags = 1; },
      [](ControlPacket& p) { p.acked_ids[0] = 1; },
  };
  uint8_t out[kCtlPacketMax];
  for (size_t i = 0; i < bad.size(); ++i) {
    ControlPacket p = grant();
    bad[i](p);
    EXPECT_EQ(build_control_packet(out, p, kKey), 0u) << "case " << i;
  }
  ControlPacket u = unknown();
  u.unknown_flags = 0x02;
  EXPECT_EQ(build_control_packet(out, u, kKey), 0u);
  ControlPacket r = resend();
  r.resend_length = 0;
  EXPECT_EQ(build_control_packet(out, r, kKey), 0u);
  ControlPacket a = ack();
  a.message_id = 2;
  EXPECT_EQ(build_control_packet(out, a, kKey), 0u);
}

TEST(ControlPacket, TruncationAtEveryByteIsDroppedAsTruncated) {
  for (const auto& p : every_type()) {
    const auto b = build(p);
    for (size_t n = 0; n < b.size(); ++n) {
      EXPECT_EQ(parse_reason({b.begin(), b.begin() + static_cast<long>(n)}), DropReason::kTruncated)
          << "type " << int{p.type} << " cut at " << n;
    }
  }
}

TEST(ControlPacket, TrailingBytesAreABadHeader) {
  for (const auto& p : every_type()) {
    auto b = build(p);
    b.push_back(0);
    EXPECT_EQ(parse_reason(b), DropReason::kBadHeader) << "type " << int{p.type};
  }
}

TEST(ControlPacket, ABodyOfAnotherTypesLengthIsDropped) {
  // BUSY relabelled GRANT is 16 bytes short; GRANT relabelled BUSY 16 too long.
  auto b = build(busy());
  b[13] = SMT_TYPE_GRANT;
  EXPECT_EQ(parse_reason(b), DropReason::kTruncated);
  b = build(grant());
  b[13] = SMT_TYPE_BUSY;
  EXPECT_EQ(parse_reason(b), DropReason::kBadHeader);
}

struct ByteCase {
  ControlPacket (*make)();
  size_t byte;
  uint8_t value;
  DropReason why;
};

TEST(ControlPacket, EachParseRuleDropsAOneByteChangeWithItsReason) {
  const ByteCase cases[] = {
      // envelope, every type
      {busy, 14, 2, DropReason::kBadVersion},
      {busy, 14, 0, DropReason::kBadVersion},
      {busy, 13, SMT_TYPE_DATA, DropReason::kBadType},
      {busy, 13, 0x15, DropReason::kBadType},
      {busy, 13, 0x16, DropReason::kBadType},
      {busy, 13, 0x19, DropReason::kBadType},
      {busy, 12, 0xd0, DropReason::kBadHeader},
      {busy, 12, 0xb1, DropReason::kBadHeader},
      {busy, 4, 1, DropReason::kBadHeader},  // seg_pos
      {busy, 7, 1, DropReason::kBadHeader},
      {busy, 8, 1, DropReason::kBadHeader},  // incoming
      {busy, 11, 1, DropReason::kBadHeader},
      {busy, 15, 1, DropReason::kBadHeader},  // flags
      {busy, 20, 1, DropReason::kBadHeader},  // message id over 48 bits
      {busy, 21, 0x80, DropReason::kBadHeader},
      // GRANT: priority, reserved, window base parity and range
      {grant, 48, 8, DropReason::kBadHeader},
      {grant, 49, 1, DropReason::kBadHeader},
      {grant, 51, 1, DropReason::kBadHeader},
      {grant, 59, 1, DropReason::kBadHeader},
      {grant, 53, 1, DropReason::kBadHeader},
      // RESEND: priority, reserved
      {resend, 52, 8, DropReason::kBadHeader},
      {resend, 53, 1, DropReason::kBadHeader},
      {resend, 55, 1, DropReason::kBadHeader},
      // RESEND: a range past 2^32, an empty range
      {resend_high, 48, 0x01, DropReason::kBadHeader},
      {resend_high, 50, 0x00, DropReason::kBadHeader},
      // RPC_UNKNOWN: unknown flag, reserved
      {unknown, 44, 0x02, DropReason::kBadHeader},
      {unknown, 44, 0x81, DropReason::kBadHeader},
      {unknown, 45, 1, DropReason::kBadHeader},
      {unknown, 47, 1, DropReason::kBadHeader},
      // ACK: message id must be 0, window base even and <= 2^48
      {ack, 27, 2, DropReason::kBadHeader},
      {ack, 51, 1, DropReason::kBadHeader},
      {ack, 45, 2, DropReason::kBadHeader},
      // ACK: ids odd, 48 bits, used slots first
      {ack, 59, 0x46, DropReason::kBadHeader},
      {ack, 52, 1, DropReason::kBadHeader},
      {ack, 67, 0x10, DropReason::kBadHeader},
  };
  for (const auto& c : cases) {
    auto b = build(c.make());
    ASSERT_LT(c.byte, b.size());
    b[c.byte] = c.value;
    EXPECT_EQ(parse_reason(b), c.why) << "type " << int{b[13]} << " byte " << c.byte;
  }
}

TEST(ControlPacket, AckIdsAreCanonical) {
  uint8_t out[kCtlPacketMax];
  ControlPacket a = ack();
  a.acked_ids[1] = 0;
  a.acked_ids[2] = 0x11;  // a used slot after an unused one
  EXPECT_EQ(build_control_packet(out, a, kKey), 0u);
  a = ack();
  a.acked_ids[1] = a.acked_ids[0];  // the same id twice
  EXPECT_EQ(build_control_packet(out, a, kKey), 0u);
  a = ack();
  a.acked_ids[1] = 0x10;  // a request id
  EXPECT_EQ(build_control_packet(out, a, kKey), 0u);
  // On the wire: move slot 1 to slot 2.
  auto b = build(ack());
  std::memcpy(b.data() + 68, b.data() + 60, 8);
  std::memset(b.data() + 60, 0, 8);
  EXPECT_EQ(parse_reason(b), DropReason::kBadHeader);
  // Zero ids and all three slots used are fine.
  a = ack();
  a.acked_ids[0] = a.acked_ids[1] = 0;
  EXPECT_NE(build_control_packet(out, a, kKey), 0u);
  a = ack();
  a.acked_ids[2] = 0x13;
  EXPECT_NE(build_control_packet(out, a, kKey), 0u);
}

TEST(ControlPacket, ControlSeqZeroIsDropped) {
  auto b = build(need_ack());
  std::memset(b.data() + 28, 0, 8);
  EXPECT_EQ(parse_reason(b), DropReason::kBadHeader);
}

TEST(ControlPacket, BoundaryValuesParse) {
  ControlPacket g = grant();
  g.grant_offset = UINT32_MAX;
  g.priority = SMT_PRIORITY_MAX;
  g.window_base = SMT_MESSAGE_ID_MAX + 1;
  g.message_id = SMT_MESSAGE_ID_MAX;
  g.control_seq = UINT64_MAX;
  ControlPacket r = resend();
  r.resend_offset = 1;
  r.resend_length = UINT32_MAX;  // ends exactly at 2^32
  for (const auto& p : {g, r}) {
    const auto b = build(p);
    ControlPacket q;
    DropReason why;
    ASSERT_TRUE(parse_control_packet(b, &q, &why));
    EXPECT_TRUE(same(p, q));
  }
}

TEST(ControlPacket, FlippedBitInAnyMacdByteOrTheTagFailsVerification) {
  for (const auto& p : every_type()) {
    const auto good = build(p);
    for (size_t byte = 0; byte < good.size(); ++byte) {
      if (byte >= 16 && byte < 20) continue;  // checksum, urgent: below
      for (int bit = 0; bit < 8; ++bit) {
        auto b = good;
        b[byte] ^= static_cast<uint8_t>(1 << bit);
        ControlPacket q;
        DropReason why;
        // Either the parse rules drop it or the tag does; never both accept.
        const bool accepted = parse_control_packet(b, &q, &why) && verify_control_tag(b, q, kKey);
        EXPECT_FALSE(accepted) << "type " << int{p.type} << " byte " << byte << " bit " << bit;
      }
    }
  }
}

TEST(ControlPacket, FlipsThatParseAreCaughtByTheTag) {
  // The fields that are free to take any value (ports, message id, control
  // seq, offsets, lengths): parse succeeds, so the tag alone must catch them.
  struct Flip {
    ControlPacket (*make)();
    size_t byte;
    uint8_t mask;
  } flips[] = {{grant, 0, 1},   {grant, 3, 1},   {grant, 27, 1},   {grant, 28, 1}, {grant, 35, 1},
               {grant, 44, 1},  {grant, 47, 1},  {grant, 48, 1},   {grant, 58, 1}, {resend, 44, 1},
               {resend, 50, 1}, {resend, 52, 1}, {unknown, 44, 1}, {ack, 50, 1},   {ack, 59, 2},
               {ack, 66, 2},    {busy, 22, 1},   {need_ack, 35, 1}};
  for (const auto& f : flips) {
    auto b = build(f.make());
    b[f.byte] ^= f.mask;
    ControlPacket q;
    DropReason why;
    ASSERT_TRUE(parse_control_packet(b, &q, &why)) << "byte " << f.byte;
    EXPECT_FALSE(verify_control_tag(b, q, kKey)) << "type " << int{b[13]} << " byte " << f.byte;
  }
}

TEST(ControlPacket, ChecksumAndUrgentAreOutsideTheTagAndIgnored) {
  for (const auto& p : every_type()) {
    auto b = build(p);
    b[16] = 0xab;
    b[17] = 0xcd;
    b[18] = 0x12;
    b[19] = 0x34;
    ControlPacket q;
    DropReason why;
    ASSERT_TRUE(parse_control_packet(b, &q, &why)) << "type " << int{p.type};
    EXPECT_TRUE(same(p, q));
    EXPECT_TRUE(verify_control_tag(b, q, kKey)) << "type " << int{p.type};
  }
}

TEST(ControlPacket, TagCoversEveryFieldOfItsType) {
  auto differs = [](ControlPacket (*make)(), auto mutate) {
    ControlPacket m = make();
    mutate(m);
    return control_tag(m, kKey) != control_tag(make(), kKey);
  };
  EXPECT_TRUE(differs(grant, [](ControlPacket& m) { m.sport ^= 1; }));
  EXPECT_TRUE(differs(grant, [](ControlPacket& m) { m.dport ^= 1; }));
  EXPECT_TRUE(differs(grant, [](ControlPacket& m) { m.message_id ^= 1; }));
  EXPECT_TRUE(differs(grant, [](ControlPacket& m) { m.control_seq ^= 1; }));
  EXPECT_TRUE(differs(grant, [](ControlPacket& m) { m.grant_offset ^= 1; }));
  EXPECT_TRUE(differs(grant, [](ControlPacket& m) { m.priority ^= 1; }));
  EXPECT_TRUE(differs(grant, [](ControlPacket& m) { m.window_base ^= 2; }));
  EXPECT_TRUE(differs(grant, [](ControlPacket& m) { m.type = SMT_TYPE_BUSY; }));
  EXPECT_TRUE(differs(resend, [](ControlPacket& m) { m.resend_offset ^= 1; }));
  EXPECT_TRUE(differs(resend, [](ControlPacket& m) { m.resend_length ^= 1; }));
  EXPECT_TRUE(differs(resend, [](ControlPacket& m) { m.priority ^= 1; }));
  EXPECT_TRUE(differs(unknown, [](ControlPacket& m) { m.unknown_flags ^= 1; }));
  EXPECT_TRUE(differs(ack, [](ControlPacket& m) { m.window_base ^= 2; }));
  for (size_t i = 0; i < SMT_ACK_IDS; ++i) {
    EXPECT_TRUE(differs(ack, [i](ControlPacket& m) { m.acked_ids[i] ^= 4; })) << i;
  }
}

TEST(ControlPacket, TagIsTheSipHashOfTheDocumentedMacInput) {
  // prefix (version, type, ports, zero, message id) || body as sent || seq.
  const ControlPacket p = resend();
  const auto b = build(p);
  std::vector<uint8_t> in = {SMT_VERSION, SMT_TYPE_RESEND, 0, 0, 0, 0, 0, 0};
  store_be16(in.data() + 2, p.sport);
  store_be16(in.data() + 4, p.dport);
  in.resize(16);
  store_be64(in.data() + 8, p.message_id);
  in.insert(in.end(), b.begin() + 44, b.end());
  in.resize(in.size() + 8);
  store_be64(in.data() + in.size() - 8, p.control_seq);
  EXPECT_EQ(control_tag(p, kKey), smt_siphash24(kKey, in.data(), static_cast<__u32>(in.size())));
}

TEST(ControlPacket, DataHeaderTagNeverVerifiesAsAControlTag) {
  // The same ports and message id, a DATA header tagged under the same key:
  // its tag must not verify as any control packet's, because the MAC inputs
  // differ in the type byte (and in length).
  DataHeader h;
  h.sport = 5000;
  h.dport = 40000;
  h.message_id = 0x0000abcdef012346ULL;
  const uint64_t data_tag = data_header_tag(h, kKey);
  for (auto p : every_type()) {
    p.message_id = p.type == SMT_TYPE_ACK ? 0 : h.message_id;
    auto b = build(p);
    smt_siphash_store_tag(b.data() + 36, data_tag);
    ControlPacket q;
    DropReason why;
    ASSERT_TRUE(parse_control_packet(b, &q, &why));
    EXPECT_FALSE(verify_control_tag(b, q, kKey)) << "type " << int{p.type};
  }
  // And a DATA packet relabelled as a control type never parses as one.
  uint8_t d[kDataHeaderLen];
  write_data_header(d, h, kKey);
  for (const auto& p : every_type()) {
    d[13] = p.type;
    ControlPacket q;
    DropReason why;
    EXPECT_FALSE(parse_control_packet({d, sizeof d}, &q, &why));
  }
}

TEST(ControlPacket, TypesAreSeparatedInsideTheMac) {
  // BUSY and NEED_ACK have identical empty bodies: relabelling one as the
  // other must break the tag.
  auto b = build(busy());
  b[13] = SMT_TYPE_NEED_ACK;
  ControlPacket q;
  DropReason why;
  ASSERT_TRUE(parse_control_packet(b, &q, &why));
  EXPECT_FALSE(verify_control_tag(b, q, kKey));
}

TEST(ControlPacket, VerifyOnAShortBufferFails) {
  const auto b = build(busy());
  EXPECT_FALSE(verify_control_tag({b.data(), kCtlHeaderLen - 1}, busy(), kKey));
}

}  // namespace
}  // namespace smt
