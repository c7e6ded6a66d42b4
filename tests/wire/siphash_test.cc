// SipHash-2-4 reference vectors (key 00..0f, message 00..n-1 for n = 0..63),
// through the same C source the BPF programs compile.
#include "smt/siphash.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "support/siphash_vectors.h"

namespace {

TEST(SipHash, SixtyFourReferenceVectors) {
  uint8_t key[16], msg[64];
  for (int i = 0; i < 16; ++i) key[i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 64; ++i) msg[i] = static_cast<uint8_t>(i);
  for (size_t n = 0; n < smt::test::kSipHashVectorCount; ++n) {
    EXPECT_EQ(smt_siphash24(key, msg, static_cast<uint32_t>(n)), smt::test::kSipHash24Vectors[n])
        << "length " << n;
  }
}

TEST(SipHash, TagBytesAreLittleEndianAndCompareExactly) {
  uint8_t wire[8];
  smt_siphash_store_tag(wire, 0x0102030405060708ULL);
  EXPECT_EQ(wire[0], 0x08);
  EXPECT_EQ(wire[7], 0x01);
  EXPECT_TRUE(smt_siphash_tag_equal(wire, 0x0102030405060708ULL));
  EXPECT_FALSE(smt_siphash_tag_equal(wire, 0x0102030405060709ULL));
  EXPECT_FALSE(smt_siphash_tag_equal(wire, 0x8102030405060708ULL));
}

}  // namespace
