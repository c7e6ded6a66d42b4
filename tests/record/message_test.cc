// Messages end to end through the record layer, without a network: seal,
// packetize (per-packet and TSO layouts), permute/duplicate/tamper, receive.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "common/bytes.h"
#include "record/data_receiver.h"
#include "record/sealed_message.h"
#include "smt/siphash.h"
#include "wire/data_packet.h"

namespace smt {
namespace {

using Packet = std::vector<uint8_t>;

enum class Layout { kPerPacket, kTso };

constexpr uint32_t kMtu = 1500;
constexpr uint8_t kCtlKey[16] = {0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
                                 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf};

class MessageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    secret_.assign(32, 0x42);
    auto keys = derive_traffic_keys(Suite::kAes128GcmSha256, secret_);
    ASSERT_TRUE(keys.ok());
    auto s = RecordCipher::create(Suite::kAes128GcmSha256, *keys, CipherDirection::kSeal);
    ASSERT_TRUE(s.ok());
    sealer_.emplace(std::move(s).value());
    // Every build checks this test's seals for nonce reuse; a fixture's own
    // oracle, because tests reuse one key and restart their message ids.
    sealer_->set_nonce_oracle(&oracle_);
  }

  std::unique_ptr<DataReceiver> receiver(DataReceiver::Config config = {}) {
    auto r = std::make_unique<DataReceiver>(kCtlKey, config);
    auto keys = derive_traffic_keys(Suite::kAes128GcmSha256, secret_);
    auto o = RecordCipher::create(Suite::kAes128GcmSha256, *keys, CipherDirection::kOpen);
    EXPECT_TRUE(r->set_epoch_key(0, std::move(o).value()).ok());
    return r;
  }

  static std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
    std::vector<uint8_t> v(n);
    std::mt19937 rng(seed);
    for (auto& b : v) b = static_cast<uint8_t>(rng());
    return v;
  }

  // Seals `data` as message `id` and cuts it into packets.
  std::vector<Packet> packets(uint64_t id, const std::vector<uint8_t>& data, Layout layout,
                              uint32_t record_data = 0, uint32_t padded = 0) {
    if (record_data == 0) {
      record_data =
          layout == Layout::kPerPacket ? record_data_for_mtu(kMtu, false) : SMT_RECORD_MAX_DATA;
    }
    if (padded == 0) padded = static_cast<uint32_t>(data.size());
    auto g = MessageGeometry::make(static_cast<uint32_t>(data.size()), padded, record_data);
    EXPECT_TRUE(g.ok());
    auto m = SealedMessage::create(id, data, *g);
    EXPECT_TRUE(m.ok());
    std::vector<Packet> out;
    std::vector<uint8_t> scratch(kMtu);
    for (uint32_t i = 0; i < g->records; ++i) {
      auto rec = m->record(i, *sealer_);
      EXPECT_TRUE(rec.ok());
      DataHeader base;
      base.sport = 40000;
      base.dport = 5000;
      base.incoming = g->padded_length;
      const DataHeader h = record_header(*m, i, base);
      Packet p(kDataHeaderLen + rec->size());
      build_data_packet(p.data(), h, *rec, kCtlKey);
      if (layout == Layout::kPerPacket) {
        out.push_back(std::move(p));
      } else {
        const size_t max_payload = kMtu - 20 - kDataHeaderLen;
        tso_segment(p, max_payload, scratch.data(),
                    [&](std::span<const uint8_t> s) { out.emplace_back(s.begin(), s.end()); });
      }
    }
    return out;
  }

  // Feeds packets; returns delivered messages.
  static std::vector<DataReceiver::Delivered> feed(DataReceiver& r, std::vector<Packet> pkts) {
    std::vector<DataReceiver::Delivered> got;
    for (auto& p : pkts) {
      (void)r.on_packet(p);
      while (auto d = r.take_delivered()) got.push_back(std::move(*d));
    }
    return got;
  }

  // Rewrites a DATA header field and recomputes the tag, as an attacker that
  // holds k_ctl (which lives in BPF maps) could.
  static void retag(Packet& p) {
    DataHeader h;
    DropReason why;
    ASSERT_TRUE(parse_data_header(p, &h, &why));
    smt_siphash_store_tag(p.data() + 44, data_header_tag(h, kCtlKey));
  }

  std::vector<uint8_t> secret_;
  NonceOracle oracle_;
  std::optional<RecordCipher> sealer_;
};

struct SizeCase {
  const char* name;
  size_t size;
};

// ---- delivery under permutation and duplication ----------------------------

TEST_F(MessageTest, EverySizeClassSurvivesPermutationAndDuplication) {
  const uint32_t rd = record_data_for_mtu(kMtu, false);
  const SizeCase sizes[] = {
      {"empty", 0}, {"1B", 1}, {"one-packet", rd}, {"two-packets", rd + 1}, {"many", 300 * 1000}};
  uint64_t next_id = 0;
  for (Layout layout : {Layout::kPerPacket, Layout::kTso}) {
    for (const auto& sc : sizes) {
      for (uint32_t seed = 1; seed <= 20; ++seed) {
        SCOPED_TRACE(std::string(sc.name) + (layout == Layout::kTso ? " tso" : " per-packet") +
                     " seed " + std::to_string(seed));
        auto data = pattern(sc.size, seed);
        next_id += 2;  // one key: every sealed message gets a fresh id
        const uint64_t id = next_id;
        auto pkts = packets(id, data, layout);
        std::mt19937 rng(seed);
        std::vector<Packet> wire = pkts;
        for (const auto& p : pkts) {
          if (rng() % 3 == 0) wire.push_back(p);  // duplicates
        }
        std::shuffle(wire.begin(), wire.end(), rng);
        // Any order at all: every record of the message may be in flight at
        // once, so this receiver may stage all of them.
        DataReceiver::Config config;
        config.max_staged_records_per_message = 64;
        auto r = receiver(config);
        auto got = feed(*r, wire);
        ASSERT_EQ(got.size(), 1u);
        EXPECT_EQ(got[0].message_id, id);
        EXPECT_EQ(got[0].data, data);
        EXPECT_EQ(r->messages_in_progress(), 0u);
        EXPECT_EQ(r->drops().total(), r->drops().get(DropReason::kDuplicate));
      }
    }
  }
}

TEST_F(MessageTest, MaximumSizeMessageSurvivesPermutationOnBothLayouts) {
  // 2^16 records: the largest message each geometry can carry.
  for (Layout layout : {Layout::kPerPacket, Layout::kTso}) {
    const uint32_t rd = layout == Layout::kPerPacket ? record_data_for_mtu(kMtu, false) : 1024;
    const size_t size = size_t{rd} * SMT_MAX_RECORDS_PER_MESSAGE;
    auto data = pattern(size, 99);
    auto pkts = packets(layout == Layout::kPerPacket ? 1000 : 1002, data, layout, rd);
    EXPECT_EQ(layout == Layout::kPerPacket ? pkts.size() : 0u,
              layout == Layout::kPerPacket ? SMT_MAX_RECORDS_PER_MESSAGE : 0u);
    // Reordering within windows of 32 packets (a TSO record is two packets
    // here, so at most a few records are staged at once).
    std::mt19937 rng(7);
    for (size_t at = 0; at < pkts.size(); at += 32) {
      std::shuffle(pkts.begin() + static_cast<long>(at),
                   pkts.begin() + static_cast<long>(std::min(at + 32, pkts.size())), rng);
    }
    pkts.push_back(pkts[12345]);
    auto r = receiver();
    auto got = feed(*r, std::move(pkts));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(got[0].data == data);
  }
}

TEST_F(MessageTest, UnauthenticatedSlicesCannotExhaustMemory) {
  // Slices stage before their record authenticates; a k_ctl holder (or an
  // on-path rewrite of seg_pos) must not make the receiver allocate freely.
  DataReceiver::Config config;
  auto r = receiver(config);
  size_t no_buffer = 0;
  for (uint64_t id = 2; id < 2 + 2 * 200; id += 2) {
    for (uint16_t index = 0; index < 40; ++index) {
      DataHeader h;
      h.message_id = id;
      h.message_length = 1u << 20;
      h.record_index = index;
      h.seg_pos = 100;
      Packet p(kDataHeaderLen + 1, 0xee);
      write_data_header(p.data(), h, kCtlKey);
      RxResult res = r->on_packet(p);
      no_buffer += !res.accepted && res.why == DropReason::kNoBuffer;
    }
  }
  EXPECT_LE(r->messages_in_progress(), config.max_unauthenticated_messages);
  EXPECT_EQ(no_buffer, 200u * 40 - config.max_staged_records);
  EXPECT_EQ(r->drops().get(DropReason::kNoBuffer), no_buffer);
  // A genuine message still gets through once the sender retransmits.
  auto data = pattern(5000, 31);
  auto got = feed(*r, packets(1000, data, Layout::kPerPacket));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, data);
}

TEST_F(MessageTest, EpochKeyIsInstalledOnceAndCountsItsFailedOpens) {
  auto r = receiver();
  auto keys = derive_traffic_keys(Suite::kAes128GcmSha256, secret_);
  auto again = r->set_epoch_key(
      0, std::move(RecordCipher::create(Suite::kAes128GcmSha256, *keys, CipherDirection::kOpen))
             .value());
  ASSERT_FALSE(again.ok()) << "re-installing an epoch would reset its failed-open count";
  EXPECT_EQ(again.error().code, EEXIST);
  auto pkts = packets(50, pattern(800, 32), Layout::kPerPacket, 400);
  for (int i = 0; i < 5; ++i) {
    auto bad = pkts[0];
    bad[kDataHeaderLen + 30] ^= 4;
    (void)r->on_packet(bad);
  }
  EXPECT_EQ(r->failed_opens(0), 5u);
  EXPECT_FALSE(r->needs_new_session());
  EXPECT_FALSE(r->must_close());
}

TEST_F(MessageTest, PerPacketRecordsFillTheMtuForIpv4AndIpv6) {
  // IP header + 52-byte DATA header + 38 bytes of record framing + data.
  EXPECT_EQ(record_data_for_mtu(1500, false), 1500u - 20 - 52 - 38);
  EXPECT_EQ(record_data_for_mtu(1500, true), 1500u - 40 - 52 - 38);
  EXPECT_EQ(record_data_for_mtu(9000, false), 9000u - 20 - 52 - 38);
  EXPECT_EQ(record_data_for_mtu(65535, false), SMT_RECORD_MAX_DATA) << "TLS caps a record";
  EXPECT_EQ(record_data_for_mtu(110, false), 0u) << "no room for data";
  EXPECT_FALSE(MessageGeometry::make(10, 10, record_data_for_mtu(110, false)).ok());
  for (bool v6 : {false, true}) {
    auto pkts =
        packets(v6 ? 62 : 60, pattern(5000, 33), Layout::kPerPacket, record_data_for_mtu(1500, v6));
    for (const auto& p : pkts) EXPECT_LE(p.size() + (v6 ? 40 : 20), 1500u);
  }
}

TEST_F(MessageTest, MoreThan65536RecordsIsEmsgsize) {
  const uint32_t rd = 1000;
  auto g = MessageGeometry::make(rd * 65536 + 1, rd * 65536 + 1, rd);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, EMSGSIZE);
  EXPECT_TRUE(MessageGeometry::make(rd * 65536, rd * 65536, rd).ok());
  // A geometry built by hand cannot wrap the 16-bit record index or
  // overflow the ciphertext store.
  MessageGeometry forged;
  forged.true_length = forged.padded_length = 70000;
  forged.record_data = 1;
  forged.records = 70000;
  EXPECT_FALSE(SealedMessage::create(2, std::vector<uint8_t>(70000), forged).ok());
  MessageGeometry wrong = *MessageGeometry::make(0, 0, 1000);
  wrong.records = 2;
  EXPECT_FALSE(SealedMessage::create(2, {}, wrong).ok());
}

TEST_F(MessageTest, PaddingIsDiscardedAndTrueLengthDelivered) {
  auto data = pattern(1000, 5);
  auto pkts = packets(4, data, Layout::kPerPacket, 300, 1800);
  EXPECT_EQ(pkts.size(), 6u);
  auto r = receiver();
  auto got = feed(*r, pkts);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, data);
}

// ---- records are sealed once ------------------------------------------------

TEST_F(MessageTest, RecordsAreSealedOnceAndResentByteIdentical) {
  auto data = pattern(5000, 3);
  auto g = MessageGeometry::make(5000, 5000, 1000);
  auto m = SealedMessage::create(6, data, *g);
  ASSERT_TRUE(m.ok());
  auto first = m->record(2, *sealer_);
  ASSERT_TRUE(first.ok());
  std::vector<uint8_t> copy(first->begin(), first->end());
  const uint64_t blocks = sealer_->sealed_blocks();
  auto again = m->record(2, *sealer_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(std::vector<uint8_t>(again->begin(), again->end()), copy);
  EXPECT_EQ(sealer_->sealed_blocks(), blocks) << "a resend seals nothing";
  // Another key cannot seal records of a message whose geometry is fixed.
  auto other_keys = derive_traffic_keys(Suite::kAes128GcmSha256, std::vector<uint8_t>(32, 9));
  auto other = RecordCipher::create(Suite::kAes128GcmSha256, *other_keys, CipherDirection::kSeal);
  EXPECT_FALSE(m->record(3, *other).ok());
  EXPECT_FALSE(m->record(2, *other).ok());
}

// ---- tampering --------------------------------------------------------------

// Where in a packet a bit sits, to say whether flipping it may be harmless.
bool flip_may_be_harmless(size_t byte) {
  // seg_pos (4..7: outside the MAC; a moved slice fails or is superseded),
  // checksum (16..17) and urgent (18..19) are outside every MAC.
  return (byte >= 4 && byte < 8) || (byte >= 16 && byte < 20);
}

// The TLS record length: a flip there can make a whole record look like the
// first slice of a longer TSO record, which is only found forged later.
bool is_record_length(size_t byte) {
  return byte == kDataHeaderLen + 3 || byte == kDataHeaderLen + 4;
}

TEST_F(MessageTest, EverySingleBitFlipIsRejectedOrDeliversIdenticalBytes) {
  auto data = pattern(400, 11);
  auto pkts = packets(8, data, Layout::kPerPacket, 150);
  ASSERT_EQ(pkts.size(), 3u);
  for (size_t pi = 0; pi < pkts.size(); ++pi) {
    for (size_t bit = 0; bit < pkts[pi].size() * 8; ++bit) {
      auto bad = pkts[pi];
      bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      auto r = receiver();
      RxResult res = r->on_packet(bad);
      if (!flip_may_be_harmless(bit / 8) && !is_record_length(bit / 8)) {
        ASSERT_FALSE(res.accepted) << "packet " << pi << " bit " << bit;
      }
      if (!res.accepted) {
        ASSERT_EQ(r->drops().total(), 1u) << "a rejection is counted";
      }
      auto got = feed(*r, pkts);
      ASSERT_EQ(got.size(), 1u) << "packet " << pi << " bit " << bit;
      ASSERT_EQ(got[0].data, data) << "packet " << pi << " bit " << bit;
      if (!flip_may_be_harmless(bit / 8)) {
        // Taken as a TSO slice at first (a flipped record length looks like
        // one), it must be counted as forged once its record completes.
        ASSERT_GE(r->drops().total() - r->drops().get(DropReason::kDuplicate), 1u)
            << "packet " << pi << " bit " << bit << " was never counted as rejected";
      }
    }
  }
}

TEST_F(MessageTest, CiphertextFlipUnderValidHeaderTagIsRejectedAsAuthFailure) {
  auto data = pattern(1000, 12);
  auto pkts = packets(10, data, Layout::kPerPacket, 500);
  auto bad = pkts[1];
  bad[kDataHeaderLen + 40] ^= 0x80;  // inside the ciphertext; the header tag stays valid
  auto r = receiver();
  RxResult res = r->on_packet(bad);
  EXPECT_FALSE(res.accepted);
  EXPECT_EQ(r->drops().get(DropReason::kAuthFailed), 1u);
  EXPECT_EQ(r->messages_in_progress(), 0u) << "a forged first packet leaves no state";
}

TEST_F(MessageTest, RewrittenLengthIsRejected) {
  // The reference prototype's truncation: rewrite message_length to a record
  // boundary and the receiver delivers a prefix. Here the attacker even holds
  // k_ctl and re-tags the header; the inner header still binds the length.
  auto data = pattern(1500, 13);
  auto pkts = packets(12, data, Layout::kPerPacket, 500);
  ASSERT_EQ(pkts.size(), 3u);
  for (auto& p : pkts) {
    store_be32(p.data() + 28, 1000);
    retag(p);
  }
  auto r = receiver();
  auto got = feed(*r, pkts);
  EXPECT_TRUE(got.empty()) << "a truncated message was delivered";
  EXPECT_EQ(r->drops().get(DropReason::kLengthMismatch), 3u);
}

TEST_F(MessageTest, RecordMovedToAnotherMessageIsRejected) {
  auto a = pattern(1000, 14), b = pattern(1000, 15);
  auto pa = packets(20, a, Layout::kPerPacket, 500);
  auto pb = packets(22, b, Layout::kPerPacket, 500);
  // Record 1 of message 20 relabelled as record 1 of message 22.
  auto moved = pa[1];
  store_be64(moved.data() + 20, 22);
  retag(moved);
  auto r = receiver();
  EXPECT_FALSE(r->on_packet(moved).accepted);
  EXPECT_EQ(r->drops().get(DropReason::kAuthFailed), 1u);
  auto got = feed(*r, pb);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, b);
}

TEST_F(MessageTest, SwappedRecordOffsetsAreRejected) {
  auto data = pattern(1500, 16);
  auto pkts = packets(24, data, Layout::kPerPacket, 500);
  uint8_t off0[4], off1[4];
  std::memcpy(off0, pkts[0].data() + 32, 4);
  std::memcpy(off1, pkts[1].data() + 32, 4);
  std::memcpy(pkts[0].data() + 32, off1, 4);
  std::memcpy(pkts[1].data() + 32, off0, 4);
  retag(pkts[0]);
  retag(pkts[1]);
  auto r = receiver();
  auto got = feed(*r, pkts);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(r->drops().get(DropReason::kOffsetMismatch), 2u);
}

TEST_F(MessageTest, SwappedRecordIndicesAreRejected) {
  auto data = pattern(1500, 17);
  auto pkts = packets(26, data, Layout::kPerPacket, 500);
  store_be16(pkts[0].data() + 36, 1);
  store_be16(pkts[1].data() + 36, 0);
  retag(pkts[0]);
  retag(pkts[1]);
  auto r = receiver();
  auto got = feed(*r, pkts);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(r->drops().get(DropReason::kAuthFailed), 2u);
}

TEST_F(MessageTest, MessageWithoutItsLastRecordIsNeverDelivered) {
  auto data = pattern(1500, 18);
  auto pkts = packets(28, data, Layout::kPerPacket, 500);
  pkts.pop_back();
  auto r = receiver();
  auto got = feed(*r, pkts);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(r->messages_in_progress(), 1u);
}

TEST_F(MessageTest, RecordFromAnotherEpochOrUnknownEpochIsRejected) {
  auto data = pattern(100, 19);
  auto pkts = packets(30, data, Layout::kPerPacket);
  store_be16(pkts[0].data() + 38, 1);
  retag(pkts[0]);
  auto r = receiver();
  EXPECT_FALSE(r->on_packet(pkts[0]).accepted);
  EXPECT_EQ(r->drops().get(DropReason::kUnknownEpoch), 1u);
  // With a key for epoch 1 installed (a different key), it fails the AEAD.
  auto k1 = derive_traffic_keys(Suite::kAes128GcmSha256, std::vector<uint8_t>(32, 0x43));
  auto c1 = RecordCipher::create(Suite::kAes128GcmSha256, *k1, CipherDirection::kOpen);
  ASSERT_TRUE(r->set_epoch_key(1, std::move(c1).value()).ok());
  EXPECT_FALSE(r->on_packet(pkts[0]).accepted);
  EXPECT_EQ(r->drops().get(DropReason::kAuthFailed), 1u);
}

TEST_F(MessageTest, ForgedTsoSliceIsDiscardedAndRetransmissionCompletes) {
  auto data = pattern(16000, 20);
  auto pkts = packets(32, data, Layout::kTso);
  ASSERT_GT(pkts.size(), 3u);
  auto r = receiver();
  auto bad = pkts[2];
  bad[kDataHeaderLen + 10] ^= 1;  // payload bytes are only protected by the AEAD
  (void)r->on_packet(bad);
  for (size_t i = 0; i < pkts.size(); ++i) {
    if (i != 2) (void)r->on_packet(pkts[i]);
  }
  EXPECT_FALSE(r->take_delivered().has_value());
  EXPECT_EQ(r->drops().get(DropReason::kAuthFailed), 1u);
  // The sender retransmits the whole TSO segment.
  auto got = feed(*r, pkts);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, data);
}

TEST_F(MessageTest, HeaderFieldsAreBoundByTheTag) {
  auto data = pattern(100, 21);
  auto pkts = packets(34, data, Layout::kPerPacket);
  // Every byte inside the tag's coverage, flipped without re-tagging.
  for (size_t byte :
       {0u, 2u, 8u, 12u, 13u, 14u, 15u, 20u, 27u, 28u, 32u, 36u, 38u, 40u, 41u, 44u}) {
    auto bad = pkts[0];
    bad[byte] ^= 0x01;
    auto r = receiver();
    EXPECT_FALSE(r->on_packet(bad).accepted) << "byte " << byte;
  }
}

}  // namespace
}  // namespace smt

// ---- tiling, against a sender that holds the key ----------------------------
// A buggy or malicious peer can seal any inner header it likes; the receiver
// still delivers only an exact tiling of [0, padded length).

namespace smt {
namespace {

struct ForgedRecord {
  uint16_t index;
  uint32_t offset;
  uint32_t data_len;
  uint32_t padded;
  uint32_t true_len;
  uint8_t flags;
  uint8_t reserved = 0;
};

class TilingTest : public MessageTest {
 protected:
  Packet forge(uint64_t id, const ForgedRecord& f) {
    std::vector<uint8_t> rec(RecordCipher::record_size(kInnerHeaderLen + f.data_len));
    uint8_t* inner = rec.data() + kTlsHeaderLen;
    store_be32(inner + 0, f.offset);
    store_be32(inner + 4, f.padded);
    store_be32(inner + 8, f.true_len);
    inner[12] = f.flags;
    inner[13] = f.reserved;
    for (uint32_t i = 0; i < f.data_len; ++i) inner[kInnerHeaderLen + i] = static_cast<uint8_t>(i);
    auto n = sealer_->seal(record_seq(id, f.index), rec.data(), kInnerHeaderLen + f.data_len);
    EXPECT_TRUE(n.ok());
    DataHeader h;
    h.message_id = id;
    h.message_length = f.padded;
    h.record_offset = f.offset;
    h.record_index = f.index;
    Packet p(kDataHeaderLen + *n);
    build_data_packet(p.data(), h, {rec.data(), *n}, kCtlKey);
    return p;
  }
};

enum class Verdict { kDelivered, kNever, kOrderDependent };

struct TilingCase {
  const char* name;
  std::vector<ForgedRecord> records;
  Verdict verdict;
  DropReason why;  // of the rejected record(s), when not delivered
};

TEST_F(TilingTest, OnlyAnExactTilingOfThePaddedLengthIsDelivered) {
  constexpr uint8_t L = SMT_INNER_F_LAST;
  const TilingCase cases[] = {
      {"exact",
       {{0, 0, 500, 1000, 900, 0}, {1, 500, 500, 1000, 900, L}},
       Verdict::kDelivered,
       DropReason::kCount},
      {"gap",
       {{0, 0, 500, 1000, 1000, 0}, {1, 600, 400, 1000, 1000, L}},
       Verdict::kNever,
       DropReason::kTiling},
      {"overlap",
       {{0, 0, 500, 1000, 1000, 0}, {1, 400, 600, 1000, 1000, L}},
       Verdict::kNever,
       DropReason::kTiling},
      {"second LAST",
       {{0, 0, 500, 1000, 1000, 0}, {1, 500, 500, 1000, 1000, L}, {2, 500, 500, 1000, 1000, L}},
       // Delivered when index 1 arrives before index 2, never otherwise; the
       // delivered bytes are always records 0 and 1.
       Verdict::kOrderDependent,
       DropReason::kCount},
      {"past padded length", {{0, 0, 1200, 1000, 1000, L}}, Verdict::kNever, DropReason::kTiling},
      {"LAST before the end", {{0, 0, 500, 1000, 1000, L}}, Verdict::kNever, DropReason::kTiling},
      {"no LAST at the end", {{0, 0, 1000, 1000, 1000, 0}}, Verdict::kNever, DropReason::kTiling},
      {"first record not at 0",
       {{0, 10, 990, 1000, 1000, L}},
       Verdict::kNever,
       DropReason::kTiling},
      {"empty record in a message",
       {{0, 0, 1000, 1000, 1000, 0}, {1, 1000, 0, 1000, 1000, L}},
       Verdict::kNever,
       DropReason::kTiling},
      {"true length over padded",
       {{0, 0, 1000, 1000, 1001, L}},
       Verdict::kNever,
       DropReason::kLengthMismatch},
      {"true length differs between records",
       {{0, 0, 500, 1000, 900, 0}, {1, 500, 500, 1000, 800, L}},
       Verdict::kNever,
       DropReason::kLengthMismatch},
      {"unknown inner flag",
       {{0, 0, 1000, 1000, 1000, L | 0x02}},
       Verdict::kNever,
       DropReason::kBadRecord},
      {"reserved inner byte",
       {{0, 0, 1000, 1000, 1000, L, 1}},
       Verdict::kNever,
       DropReason::kBadRecord},
      {"record after LAST",
       {{1, 500, 500, 1000, 1000, L}, {2, 1000, 1, 1000, 1000, 0}},
       Verdict::kNever,
       DropReason::kTiling},
  };
  uint64_t id = 100;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    id += 2;
    std::vector<Packet> pkts;
    for (const auto& f : c.records) pkts.push_back(forge(id, f));
    // Every order: the verdict may not depend on arrival order.
    std::vector<size_t> order(pkts.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    do {
      auto rr = receiver();
      std::vector<Packet> wire;
      for (size_t i : order) wire.push_back(pkts[i]);
      auto got = feed(*rr, wire);
      if (c.verdict == Verdict::kDelivered) {
        ASSERT_EQ(got.size(), 1u);
      }
      if (c.verdict == Verdict::kNever) {
        EXPECT_TRUE(got.empty());
        EXPECT_GE(rr->drops().get(c.why), 1u);
      }
      if (!got.empty()) {
        // Each forged record carries bytes 0, 1, 2, ... of its own.
        std::vector<uint8_t> expect;
        for (int i = 0; i < 500; ++i) expect.push_back(static_cast<uint8_t>(i));
        for (int i = 0; i < 500; ++i) expect.push_back(static_cast<uint8_t>(i));
        expect.resize(c.records[0].true_len);
        EXPECT_EQ(got[0].data, expect);
      }
    } while (std::next_permutation(order.begin(), order.end()));
  }
}

}  // namespace
}  // namespace smt
