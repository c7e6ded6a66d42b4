// TLS 1.3 record protection: RFC 8448 byte for byte, every suite, nonce
// construction, tampering, and the debug nonce-reuse oracle.
#include "record/record_cipher.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "support/test_support.h"

namespace smt {
namespace {

using test::hex;
using test::unhex;

// RFC 8448 §3: 50 bytes 00..31 each way. The client's record is its first
// application record (seq 0); the server's is its second (seq 1, after the
// NewSessionTicket).
constexpr const char* kClientAppSecret =
    "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5";
constexpr const char* kServerAppSecret =
    "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643";
constexpr const char* kClientAppRecord =
    "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a"
    "9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4";
constexpr const char* kServerAppRecord =
    "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602d"
    "cb501a59a8fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d";

RecordCipher make(Suite suite, const std::vector<uint8_t>& secret, CipherDirection dir) {
  auto keys = derive_traffic_keys(suite, secret);
  EXPECT_TRUE(keys.ok());
  auto c = RecordCipher::create(suite, *keys, dir);
  EXPECT_TRUE(c.ok());
  return std::move(c).value();
}

std::vector<uint8_t> payload50() {
  std::vector<uint8_t> p(50);
  for (int i = 0; i < 50; ++i) p[i] = static_cast<uint8_t>(i);
  return p;
}

struct Rfc8448Case {
  const char* secret;
  uint64_t seq;
  const char* record;
};

TEST(RecordCipher, Rfc8448ApplicationRecordsAreReproducedByteForByte) {
  for (const Rfc8448Case& c : {Rfc8448Case{kClientAppSecret, 0, kClientAppRecord},
                               Rfc8448Case{kServerAppSecret, 1, kServerAppRecord}}) {
    RecordCipher sealer = make(Suite::kAes128GcmSha256, unhex(c.secret), CipherDirection::kSeal);
    std::vector<uint8_t> rec(RecordCipher::record_size(50));
    auto p = payload50();
    std::memcpy(rec.data() + kTlsHeaderLen, p.data(), p.size());
    auto n = sealer.seal(c.seq, rec.data(), p.size());
    ASSERT_TRUE(n.ok());
    rec.resize(*n);
    EXPECT_EQ(hex(rec), c.record);

    RecordCipher opener = make(Suite::kAes128GcmSha256, unhex(c.secret), CipherDirection::kOpen);
    auto wire = unhex(c.record);
    OpenError err;
    auto opened = opener.open(c.seq, wire.data(), wire.size(), &err);
    ASSERT_NE(opened.content, nullptr);
    EXPECT_EQ(std::vector<uint8_t>(opened.content, opened.content + opened.len), p);
  }
}

TEST(RecordCipher, EverySuiteRoundTripsAndCountsSealedBlocks) {
  for (Suite suite :
       {Suite::kAes128GcmSha256, Suite::kAes256GcmSha384, Suite::kChaCha20Poly1305Sha256}) {
    std::vector<uint8_t> secret(suite_info(suite)->hash_len, 7);
    RecordCipher s = make(suite, secret, CipherDirection::kSeal);
    RecordCipher o = make(suite, secret, CipherDirection::kOpen);
    uint64_t expect_blocks = 0;
    for (size_t len : {0u, 1u, 15u, 16u, 1400u, 16384u}) {
      std::vector<uint8_t> rec(RecordCipher::record_size(len));
      for (size_t i = 0; i < len; ++i) rec[kTlsHeaderLen + i] = static_cast<uint8_t>(i * 31);
      const uint64_t seq = record_seq(0x123456789abcULL, static_cast<uint16_t>(len));
      auto n = s.seal(seq, rec.data(), len);
      ASSERT_TRUE(n.ok()) << suite_info(suite)->name << " " << len;
      expect_blocks += (len + 1 + 15) / 16 + 1;
      OpenError err;
      auto opened = o.open(seq, rec.data(), *n, &err);
      ASSERT_NE(opened.content, nullptr) << suite_info(suite)->name << " " << len;
      ASSERT_EQ(opened.len, len);
      for (size_t i = 0; i < len; ++i) ASSERT_EQ(opened.content[i], static_cast<uint8_t>(i * 31));
    }
    EXPECT_EQ(s.sealed_blocks(), expect_blocks);
  }
}

TEST(RecordCipher, RecordOverTlsLimitIsEmsgsize) {
  RecordCipher s =
      make(Suite::kAes128GcmSha256, std::vector<uint8_t>(32, 1), CipherDirection::kSeal);
  std::vector<uint8_t> rec(RecordCipher::record_size(16385));
  auto n = s.seal(0, rec.data(), 16385);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code, EMSGSIZE);
}

TEST(RecordCipher, WrongSeqMessageIdOrRecordIndexFailsAuthentication) {
  std::vector<uint8_t> secret(32, 3);
  RecordCipher s = make(Suite::kAes128GcmSha256, secret, CipherDirection::kSeal);
  RecordCipher o = make(Suite::kAes128GcmSha256, secret, CipherDirection::kOpen);
  std::vector<uint8_t> rec(RecordCipher::record_size(100), 0xab);
  auto n = s.seal(record_seq(42, 3), rec.data(), 100);
  ASSERT_TRUE(n.ok());
  for (uint64_t seq : {record_seq(43, 3), record_seq(42, 4), record_seq(42 | (1ULL << 47), 3)}) {
    auto copy = rec;
    OpenError err = OpenError::kMalformed;
    EXPECT_EQ(o.open(seq, copy.data(), *n, &err).content, nullptr);
    EXPECT_EQ(err, OpenError::kAuthFailed);
  }
  EXPECT_EQ(o.failed_opens(), 3u);
}

TEST(RecordCipher, CiphertextBitFlipIsRejected) {
  std::vector<uint8_t> secret(32, 4);
  RecordCipher s = make(Suite::kAes128GcmSha256, secret, CipherDirection::kSeal);
  RecordCipher o = make(Suite::kAes128GcmSha256, secret, CipherDirection::kOpen);
  std::vector<uint8_t> rec(RecordCipher::record_size(64), 0x11);
  auto n = s.seal(9, rec.data(), 64);
  ASSERT_TRUE(n.ok());
  // Every bit of the ciphertext and tag: header bits are the malformed case.
  for (size_t bit = kTlsHeaderLen * 8; bit < *n * 8; ++bit) {
    auto copy = rec;
    copy[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    OpenError err = OpenError::kMalformed;
    ASSERT_EQ(o.open(9, copy.data(), *n, &err).content, nullptr) << "bit " << bit;
    ASSERT_EQ(err, OpenError::kAuthFailed);
  }
}

TEST(RecordCipher, MalformedRecordHeadersAreRejectedBeforeDecryption) {
  std::vector<uint8_t> secret(32, 5);
  RecordCipher s = make(Suite::kAes128GcmSha256, secret, CipherDirection::kSeal);
  RecordCipher o = make(Suite::kAes128GcmSha256, secret, CipherDirection::kOpen);
  std::vector<uint8_t> rec(RecordCipher::record_size(10));
  auto n = s.seal(1, rec.data(), 10);
  ASSERT_TRUE(n.ok());
  for (size_t byte = 0; byte < kTlsHeaderLen; ++byte) {
    auto copy = rec;
    copy[byte] ^= 0x01;
    OpenError err;
    EXPECT_EQ(o.open(1, copy.data(), *n, &err).content, nullptr);
  }
  OpenError err;
  EXPECT_EQ(o.open(1, rec.data(), 4, &err).content, nullptr);
  EXPECT_EQ(err, OpenError::kMalformed);
  EXPECT_EQ(o.failed_opens(), 0u) << "malformed records never reach the AEAD";
}

TEST(RecordCipher, SealingStopsAtTheUsageLimitAndRekeyIsSignalledBefore) {
  auto keys = derive_traffic_keys(Suite::kAes128GcmSha256, std::vector<uint8_t>(32, 8));
  ASSERT_TRUE(keys.ok());
  // Each 64-byte record costs ceil(65 / 16) + 1 = 6 blocks.
  RecordCipher::Limits limits{60, 120};
  auto s = RecordCipher::create(Suite::kAes128GcmSha256, *keys, CipherDirection::kSeal, limits);
  ASSERT_TRUE(s.ok());
  std::vector<uint8_t> rec(RecordCipher::record_size(64), 0x5c);
  for (uint64_t i = 0; i < 20; ++i) {
    EXPECT_EQ(s->needs_rekey(), i * 6 >= 60) << i;
    ASSERT_TRUE(s->seal(i, rec.data(), 64).ok()) << i;
  }
  EXPECT_EQ(s->sealed_blocks(), 120u);
  std::vector<uint8_t> before = rec;
  auto refused = s->seal(20, rec.data(), 64);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, EKEYEXPIRED);
  EXPECT_EQ(s->sealed_blocks(), 120u);
  // Limits can only be lowered: asking for more gets the contract's values.
  auto high =
      RecordCipher::create(Suite::kAes128GcmSha256, *keys, CipherDirection::kSeal, {~0ULL, ~0ULL});
  ASSERT_TRUE(high.ok());
  EXPECT_FALSE(high->needs_rekey());
}

TEST(NonceOracle, SameSeqOverDifferentPlaintextIsReported) {
  NonceOracle oracle;
  const uint8_t a[3] = {1, 2, 3}, b[3] = {1, 2, 4};
  EXPECT_TRUE(oracle.record(7, 100, a));
  EXPECT_TRUE(oracle.record(7, 100, a)) << "re-sealing identical plaintext is allowed";
  EXPECT_FALSE(oracle.record(7, 100, b));
  EXPECT_TRUE(oracle.record(8, 100, b)) << "another key has its own nonce space";
}

TEST(NonceOracleDeathTest, SealingTwoPlaintextsUnderOneSeqAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  NonceOracle oracle;
  RecordCipher s =
      make(Suite::kAes128GcmSha256, std::vector<uint8_t>(32, 6), CipherDirection::kSeal);
  s.set_nonce_oracle(&oracle);
  std::vector<uint8_t> rec(RecordCipher::record_size(4), 1);
  ASSERT_TRUE(s.seal(55, rec.data(), 4).ok());
  rec.assign(rec.size(), 2);
  EXPECT_DEATH((void)s.seal(55, rec.data(), 4), "nonce reuse");
}

}  // namespace
}  // namespace smt
