// The DATA header: layout, parse checks (bounds first), tag coverage.
#include "wire/data_header.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/bytes.h"

namespace smt {
namespace {

constexpr uint8_t kKey[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

DataHeader sample() {
  DataHeader h;
  h.sport = 0x1234;
  h.dport = 0x5678;
  h.seg_pos = 0;
  h.incoming = 70000;
  h.flags = SMT_DATA_F_RETRANSMIT;
  h.message_id = 0x0000abcdef012346ULL;
  h.message_length = 100000;
  h.record_offset = 2782;
  h.record_index = 2;
  h.epoch = 3;
  h.priority = 5;
  return h;
}

TEST(DataHeader, WritesTcpShapedLayout) {
  uint8_t b[kDataHeaderLen];
  write_data_header(b, sample(), kKey);
  EXPECT_EQ(load_be16(b + 0), 0x1234);
  EXPECT_EQ(load_be16(b + 2), 0x5678);
  EXPECT_EQ(b[12], 13 << 4) << "TCP data offset covers the 52-byte header";
  EXPECT_EQ(b[13], SMT_TYPE_DATA);
  EXPECT_EQ(b[14], SMT_VERSION);
  EXPECT_EQ(load_be64(b + 20), 0x0000abcdef012346ULL);
  EXPECT_EQ(load_be32(b + 28), 100000u);
  EXPECT_EQ(load_be16(b + 38), 3);
}

TEST(DataHeader, ParseRoundTripsAndVerifiesTag) {
  uint8_t b[kDataHeaderLen];
  write_data_header(b, sample(), kKey);
  DataHeader h;
  DropReason why;
  ASSERT_TRUE(parse_data_header(b, &h, &why));
  EXPECT_EQ(h.message_id, sample().message_id);
  EXPECT_EQ(h.record_offset, 2782u);
  EXPECT_EQ(h.priority, 5);
  EXPECT_TRUE(verify_data_header_tag(b, h, kKey));
  uint8_t other[16] = {};
  EXPECT_FALSE(verify_data_header_tag(b, h, other));
}

TEST(DataHeader, TruncationAtEveryByteIsDroppedAsTruncated) {
  uint8_t b[kDataHeaderLen];
  write_data_header(b, sample(), kKey);
  for (size_t n = 0; n < kDataHeaderLen; ++n) {
    DataHeader h;
    DropReason why = DropReason::kCount;
    EXPECT_FALSE(parse_data_header({b, n}, &h, &why));
    EXPECT_EQ(why, DropReason::kTruncated);
  }
}

TEST(DataHeader, UnknownVersionTypeAndBadFieldsAreDroppedWithReasons) {
  struct Case {
    size_t byte;
    uint8_t value;
    DropReason why;
  } cases[] = {
      {14, 2, DropReason::kBadVersion},
      {13, 0x19, DropReason::kBadType},
      {13, SMT_TYPE_GRANT, DropReason::kBadType},
      {12, 12 << 4, DropReason::kBadHeader},
      {15, 0x02, DropReason::kBadHeader},
      {41, 1, DropReason::kBadHeader},
      {40, 8, DropReason::kBadHeader},
      {20, 1, DropReason::kBadHeader},
  };
  for (const auto& c : cases) {
    uint8_t b[kDataHeaderLen];
    write_data_header(b, sample(), kKey);
    b[c.byte] = c.value;
    DataHeader h;
    DropReason why = DropReason::kCount;
    EXPECT_FALSE(parse_data_header(b, &h, &why)) << "byte " << c.byte;
    EXPECT_EQ(why, c.why) << "byte " << c.byte;
  }
}

TEST(DataHeader, SegPosChecksumAndUrgentAreOutsideTheTag) {
  DataHeader h = sample();
  uint64_t t = data_header_tag(h, kKey);
  h.seg_pos = 4000;
  EXPECT_EQ(data_header_tag(h, kKey), t);
  // ...and every other field is inside it.
  auto differs = [&](auto mutate) {
    DataHeader m = sample();
    mutate(m);
    return data_header_tag(m, kKey) != t;
  };
  EXPECT_TRUE(differs([](DataHeader& m) { m.sport ^= 1; }));
  EXPECT_TRUE(differs([](DataHeader& m) { m.dport ^= 1; }));
  EXPECT_TRUE(differs([](DataHeader& m) { m.incoming ^= 1; }));
  EXPECT_TRUE(differs([](DataHeader& m) { m.flags ^= 1; }));
  EXPECT_TRUE(differs([](DataHeader& m) { m.message_id ^= 1; }));
  EXPECT_TRUE(differs([](DataHeader& m) { m.message_length ^= 1; }));
  EXPECT_TRUE(differs([](DataHeader& m) { m.record_offset ^= 1; }));
  EXPECT_TRUE(differs([](DataHeader& m) { m.record_index ^= 1; }));
  EXPECT_TRUE(differs([](DataHeader& m) { m.epoch ^= 1; }));
  EXPECT_TRUE(differs([](DataHeader& m) { m.priority ^= 1; }));
}

}  // namespace
}  // namespace smt
