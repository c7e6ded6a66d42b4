// smt-decode against captures made in-process: two real engines exchange RPCs
// over the in-memory wire (loss, duplication, reordering, TSO, fast epochs),
// the wire's capture is written as pcap with the netns writer and the session
// as an smtd key log, and the decoder must recover every message byte for
// byte. Crafted captures check nonce-reuse detection and failure reporting.
#include <gtest/gtest.h>

#include <map>

#include "decode_test_util.h"
#include "record/sealed_message.h"
#include "support/netns.h"
#include "support/test_support.h"
#include "transport/engine_harness.h"
#include "wire/data_packet.h"

namespace smt::decode::test {
namespace {

using smt::test::CapturedIp;
using smt::test::EnginePair;

constexpr uint16_t kPortA = 1000, kPortB = 2000;  // EnginePair's ports; A initiates

std::vector<uint8_t> pattern(uint64_t seed, size_t n) {
  std::vector<uint8_t> v(n);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + n;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<uint8_t>(x);
  }
  return v;
}

SessionContextInput pair_context(uint64_t serial) {
  SessionContextInput in;
  in.serial = serial;
  in.initiator_addr = smt::test::v4(1);
  in.initiator_port = kPortA;
  in.responder_addr = smt::test::v4(2);
  in.responder_port = kPortB;
  return in;
}

std::string pair_keylog(uint64_t seed, uint64_t serial) {
  SessionParams p;
  smt::test::fill_test_secrets(&p, seed);
  return keylog_lines(pair_context(serial), p.initiator_secret.span(), p.responder_secret.span(),
                      p.initiator_ctl.span(), p.responder_ctl.span());
}

CapturedIp ip_packet(bool a_to_b, std::vector<uint8_t> smt) {
  CapturedIp c;
  c.family = 4;
  c.src = smt::test::v4(a_to_b ? 1 : 2);
  c.dst = smt::test::v4(a_to_b ? 2 : 1);
  c.payload = std::move(smt);
  return c;
}

// Expected messages: (direction, wire message id) -> bytes.
using Expected = std::map<std::pair<std::string, uint64_t>, std::vector<uint8_t>>;

struct PairRun {
  Expected expected;
  std::vector<CapturedIp> packets;
  std::vector<uint64_t> times;
  uint64_t epochs_advanced = 0;
  size_t slices = 0;  // captured DATA packets that are TSO slices (seg_pos != 0)
};

// Client A sends one request per size; B answers each with the bytes
// reversed. Everything that lands on either side is captured.
PairRun run_pair(uint64_t seed, bool tso, uint64_t rekey_blocks, double loss, double dup,
                 double reorder) {
  PairRun out;
  EngineConfig cfg;
  if (rekey_blocks != 0) cfg.limits.rekey_blocks = rekey_blocks;
  link::MemoryWireConfig wc;
  wc.tso = tso;
  for (auto* path : {&wc.a_to_b, &wc.b_to_a}) {
    path->delay_ns = 20'000;
    path->rate_bps = 10'000'000'000;
    path->loss = loss;
    path->duplicate = dup;
    path->reorder = reorder;
    path->reorder_max_ns = 50'000;
    path->queue_packets = 256;
  }
  wc.b_to_a.seed = 2;
  EnginePair pair(cfg, cfg, wc, seed);
  if (!pair.wire) return out;
  pair.wire->set_capture(true);
  const size_t sizes[] = {0, 1, 17, 1000, 1389, 1390, 1391, 5000, 20000, 70000, 200000};
  std::map<uint64_t, std::vector<uint8_t>> sent;
  for (size_t i = 0; i < std::size(sizes); ++i) {
    auto data = pattern(seed + i, sizes[i]);
    auto id = pair.a->send_request(pair.sa, data);
    EXPECT_TRUE(id.ok()) << id.error().message;
    if (!id.ok()) return out;
    out.expected[{"i->r", *id}] = data;
    sent[*id] = data;
  }
  size_t responses = 0;
  const bool done = pair.run_until(
      [&] {
        while (auto e = pair.b->next_event()) {
          if (e->kind != Event::Kind::kRequest) continue;
          std::vector<uint8_t> reply(e->data.rbegin(), e->data.rend());
          out.expected[{"r->i", e->id | 1}] = reply;
          EXPECT_TRUE(pair.b->send_reply(pair.sb, e->id, std::move(reply)).ok());
        }
        while (auto e = pair.a->next_event()) {
          EXPECT_EQ(e->kind, Event::Kind::kResponse) << e->error;
          ++responses;
        }
        return responses == std::size(sizes);
      },
      20'000'000'000ull);
  EXPECT_TRUE(done) << "a:" << smt::test::drop_summary(*pair.a)
                    << " b:" << smt::test::drop_summary(*pair.b);
  out.epochs_advanced = pair.a->stats().epochs_advanced + pair.b->stats().epochs_advanced;
  for (auto& cp : pair.wire->captured()) {
    if (cp.bytes.size() >= kDataHeaderLen && cp.bytes[13] == SMT_TYPE_DATA &&
        load_be32(&cp.bytes[4]) != 0) {
      ++out.slices;
    }
    out.times.push_back(cp.time_ns);
    out.packets.push_back(ip_packet(cp.dir == link::Direction::kAToB, std::move(cp.bytes)));
  }
  return out;
}

// Decodes `run` and checks every expected message came out exactly once,
// byte for byte, and nothing else failed.
void expect_recovers_everything(const PairRun& run, uint64_t seed, bool want_epochs) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  ASSERT_FALSE(run.expected.empty());
  ASSERT_TRUE(
      smt::test::write_ip_pcap(dir.file("c.pcap"), run.packets, SMT_IPPROTO_DEFAULT, run.times)
          .ok());
  write_text(dir.file("k.log"), pair_keylog(seed, 42));
  DecodeOptions o;
  o.keylog_path = dir.file("k.log");
  o.capture_path = dir.file("c.pcap");
  o.json = true;
  o.max_bytes = 0;
  o.check_nonces = true;
  const DecodeRun r = decode(o);
  EXPECT_EQ(r.status, 0) << r.err << r.out.substr(0, 4000);
  Expected got;
  size_t controls = 0, later_epochs = 0;
  for (const auto& line : lines(r.out)) {
    const std::string type = json_field(line, "type");
    if (type == "control") {
      ++controls;
      EXPECT_EQ(json_field(line, "verified"), "false");
      continue;
    }
    ASSERT_EQ(type, "message") << line.substr(0, 300);
    EXPECT_EQ(json_field(line, "serial"), "42");
    EXPECT_EQ(json_field(line, "truncated"), "false");
    const auto key =
        std::make_pair(json_field(line, "direction"), std::stoull(json_field(line, "id")));
    EXPECT_EQ(got.count(key), 0u) << "message printed twice: " << key.first << " " << key.second;
    got[key] = smt::test::unhex(json_field(line, "data_hex"));
    EXPECT_EQ(json_field(line, "length"), std::to_string(got[key].size()));
    later_epochs += json_field(line, "epoch") != "0";
  }
  EXPECT_EQ(got.size(), run.expected.size());
  for (const auto& [key, bytes] : run.expected) {
    auto it = got.find(key);
    ASSERT_NE(it, got.end()) << "not decoded: " << key.first << " id " << key.second;
    EXPECT_TRUE(it->second == bytes) << key.first << " id " << key.second << " differs";
  }
  EXPECT_GT(controls, 0u) << "grants and acks are listed";
  if (want_epochs) {
    EXPECT_GT(later_epochs, 0u) << "messages sealed under ratcheted epochs";
  }
  EXPECT_NE(r.err.find(" 0 failures, "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" 0 nonce reuses"), std::string::npos) << r.err;
}

TEST(DecodeCapture, RecoversEveryPayloadOverALossyDuplicatingReorderingWire) {
  const uint64_t seed = 0xdec0de01;
  const PairRun run = run_pair(seed, false, 0, 0.02, 0.05, 0.1);
  ASSERT_EQ(run.slices, 0u);
  expect_recovers_everything(run, seed, false);
}

TEST(DecodeCapture, RecoversEveryPayloadFromTsoSlicesAndRatchetedEpochs) {
  const uint64_t seed = 0xdec0de02;
  const PairRun run = run_pair(seed, true, 3000, 0.01, 0.02, 0.05);
  ASSERT_GT(run.slices, 0u) << "the capture must hold TSO slices";
  ASSERT_GT(run.epochs_advanced, 0u) << "the engines must have moved past epoch 0";
  expect_recovers_everything(run, seed, true);
}

// One RPC at a time, so a build that restarts ids whenever none is in flight
// (SMT_FAULT_REUSE_ID, the reference prototype's bug) seals different
// requests under one (key, id): --check-nonces must find nothing here and
// must find exactly that in such a build (tools/mutation-gate.sh).
TEST(DecodeCapture, CheckNoncesFindsNoReuseInOneAtATimeRpcsOfARealEngine) {
  const uint64_t seed = 0xdec0de03;
  EnginePair pair(EngineConfig{}, EngineConfig{}, link::MemoryWireConfig{}, seed);
  ASSERT_TRUE(pair.wire);
  pair.wire->set_capture(true);
  for (int i = 0; i < 20; ++i) {
    auto id = pair.a->send_request(pair.sa, pattern(seed + i, 100 + i));
    ASSERT_TRUE(id.ok()) << id.error().message;
    bool answered = false;
    // Not fatal: in a REUSE_ID build the server drops the reused id as a
    // replay, the RPC stalls, and the capture is what the check must judge.
    const bool done = pair.run_until(
        [&] {
          while (auto e = pair.b->next_event()) {
            if (e->kind == Event::Kind::kRequest) {
              EXPECT_TRUE(pair.b->send_reply(pair.sb, e->id, std::move(e->data)).ok());
            }
          }
          while (auto e = pair.a->next_event()) answered |= e->kind == Event::Kind::kResponse;
          return answered && pair.b->rpc_count() == 0;
        },
        200'000'000ull);
    EXPECT_TRUE(done) << "RPC " << i << " did not complete";
    if (!answered) (void)pair.a->abort(pair.sa, *id);
  }
  std::vector<CapturedIp> packets;
  std::vector<uint64_t> times;
  for (auto& cp : pair.wire->captured()) {
    times.push_back(cp.time_ns);
    packets.push_back(ip_packet(cp.dir == link::Direction::kAToB, std::move(cp.bytes)));
  }
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(smt::test::write_ip_pcap(dir.file("c.pcap"), packets, SMT_IPPROTO_DEFAULT, times)
                  .ok());
  write_text(dir.file("k.log"), pair_keylog(seed, 42));
  DecodeOptions o;
  o.keylog_path = dir.file("k.log");
  o.capture_path = dir.file("c.pcap");
  o.check_nonces = true;
  const DecodeRun r = decode(o);
  EXPECT_NE(r.err.find(" 0 nonce reuses"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" 40 messages"), std::string::npos) << r.err;
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST(DecodeCapture, ATamperedRecordIsReportedAndTheRestStillDecodes) {
  const uint64_t seed = 0xdec0de03;
  PairRun run = run_pair(seed, false, 0, 0, 0, 0);
  // Flip the last ciphertext byte of the first DATA packet (a 0-byte request).
  size_t tampered = SIZE_MAX;
  for (size_t i = 0; i < run.packets.size(); ++i) {
    auto& p = run.packets[i].payload;
    if (p.size() > kDataHeaderLen && p[13] == SMT_TYPE_DATA) {
      p.back() ^= 1;
      tampered = i;
      break;
    }
  }
  ASSERT_NE(tampered, SIZE_MAX);
  TempDir dir;
  ASSERT_TRUE(smt::test::write_ip_pcap(dir.file("c.pcap"), run.packets, 253, run.times).ok());
  write_text(dir.file("k.log"), pair_keylog(seed, 42));
  DecodeOptions o;
  o.keylog_path = dir.file("k.log");
  o.capture_path = dir.file("c.pcap");
  const DecodeRun r = decode(o);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.out.find("ERROR record does not open (auth_failed)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("incomplete at the end of the capture"), std::string::npos) << r.out;
  // Every other message still decodes: all but the tampered request.
  EXPECT_NE(r.err.find(std::to_string(run.expected.size() - 1) + " messages"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(" 1 failures"), std::string::npos) << r.err;
}

TEST(DecodeCapture, PacketsOfASessionMissingFromTheKeyLogAreReportedOncePerFlow) {
  const uint64_t seed = 0xdec0de04;
  PairRun run = run_pair(seed, false, 0, 0, 0, 0);
  TempDir dir;
  ASSERT_TRUE(smt::test::write_ip_pcap(dir.file("c.pcap"), run.packets, 253, run.times).ok());
  // The right secrets under other ports: no session matches.
  SessionParams p;
  smt::test::fill_test_secrets(&p, seed);
  auto in = pair_context(42);
  in.responder_port = 2001;
  write_text(dir.file("k.log"),
             keylog_lines(in, p.initiator_secret.span(), p.responder_secret.span(),
                          p.initiator_ctl.span(), p.responder_ctl.span()));
  DecodeOptions o;
  o.keylog_path = dir.file("k.log");
  o.capture_path = dir.file("c.pcap");
  o.quiet_control = true;
  const DecodeRun r = decode(o);
  EXPECT_EQ(r.status, 1);
  const auto out = lines(r.out);
  ASSERT_EQ(out.size(), 2u) << r.out << "one line per direction of the unknown flow";
  for (const auto& l : out) EXPECT_NE(l.find("no session in the key log"), std::string::npos);
  EXPECT_NE(r.err.find(" 0 messages"), std::string::npos) << r.err;
}

// A message of one record sealed under the initiator's epoch-0 key, as a
// DATA packet from A to B.
std::vector<uint8_t> crafted_packet(const SessionParams& p, RecordCipher& cipher, uint64_t id,
                                    const std::string& text) {
  auto geo = MessageGeometry::make(static_cast<uint32_t>(text.size()),
                                   static_cast<uint32_t>(text.size()), 1390);
  EXPECT_TRUE(geo.ok());
  auto m = SealedMessage::create(id, std::vector<uint8_t>(text.begin(), text.end()), *geo);
  EXPECT_TRUE(m.ok());
  auto rec = m->record(0, cipher);
  EXPECT_TRUE(rec.ok()) << rec.error().message;
  DataHeader base;
  base.sport = kPortA;
  base.dport = kPortB;
  const DataHeader h = record_header(*m, 0, base);
  std::vector<uint8_t> pkt(kDataHeaderLen + rec->size());
  build_data_packet(pkt.data(), h, *rec, p.initiator_ctl.data());
  return pkt;
}

TEST(DecodeCapture, CheckNoncesFindsTwoCiphertextsUnderOneKeyAndSeqButNotRetransmissions) {
  const uint64_t seed = 0xdec0de05;
  SessionParams p;
  smt::test::fill_test_secrets(&p, seed);
  auto keys = derive_traffic_keys(Suite::kAes128GcmSha256, p.initiator_secret.span());
  ASSERT_TRUE(keys.ok());
  auto cipher = RecordCipher::create(Suite::kAes128GcmSha256, *keys, CipherDirection::kSeal);
  ASSERT_TRUE(cipher.ok());
  cipher->set_nonce_oracle(nullptr);  // the reuse is the point of this test
  const auto first = crafted_packet(p, *cipher, 2, "attack at dawn");
  const auto again = crafted_packet(p, *cipher, 2, "attack at dawn");
  const auto other = crafted_packet(p, *cipher, 2, "attack at dusk");
  ASSERT_EQ(first, again) << "re-sealing identical plaintext gives identical ciphertext";
  ASSERT_NE(first, other);
  const auto next = crafted_packet(p, *cipher, 4, "retreat");

  TempDir dir;
  write_text(dir.file("k.log"), pair_keylog(seed, 9));
  DecodeOptions o;
  o.keylog_path = dir.file("k.log");
  o.capture_path = dir.file("c.pcap");
  o.check_nonces = true;

  // Clean: a retransmission (same ciphertext) and another message.
  std::vector<CapturedIp> clean = {ip_packet(true, first), ip_packet(true, again),
                                   ip_packet(true, next)};
  ASSERT_TRUE(smt::test::write_ip_pcap(o.capture_path, clean, 253).ok());
  DecodeRun r = decode(o);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out.find("NONCE REUSE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("request id 2 epoch 0 len 14: \"attack at dawn\""), std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("2 authentic records checked, 0 nonce reuses"), std::string::npos) << r.err;

  // Reuse: the same (key, seq) with a different ciphertext.
  std::vector<CapturedIp> reuse = {ip_packet(true, first), ip_packet(true, next),
                                   ip_packet(true, other)};
  ASSERT_TRUE(smt::test::write_ip_pcap(o.capture_path, reuse, 253).ok());
  r = decode(o);
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("serial 9 i->r: NONCE REUSE: two different authentic ciphertexts under "
                       "epoch 0 with seq 0x20000 (id 2 record 0)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find(", 1 nonce reuses"), std::string::npos) << r.err;

  // Without --check-nonces the same capture decodes and says nothing of it.
  o.check_nonces = false;
  r = decode(o);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("NONCE"), std::string::npos);

  // A forged record (not authentic) under the same seq is no reuse finding.
  auto forged = other;
  forged.back() ^= 0x80;
  std::vector<uint8_t> none;
  std::vector<CapturedIp> forgery = {ip_packet(true, first), ip_packet(true, forged)};
  ASSERT_TRUE(smt::test::write_ip_pcap(o.capture_path, forgery, 253).ok());
  o.check_nonces = true;
  r = decode(o);
  EXPECT_EQ(r.out.find("NONCE REUSE"), std::string::npos) << r.out;
}

TEST(DecodeCapture, SmtPacketCutShortBySnaplenIsAFailureOtherTrafficIsIgnored) {
  const uint64_t seed = 0xdec0de07;
  SessionParams p;
  smt::test::fill_test_secrets(&p, seed);
  auto keys = derive_traffic_keys(Suite::kAes128GcmSha256, p.initiator_secret.span());
  auto cipher = RecordCipher::create(Suite::kAes128GcmSha256, *keys, CipherDirection::kSeal);
  ASSERT_TRUE(cipher.ok());
  TempDir dir;
  write_text(dir.file("k.log"), pair_keylog(seed, 9));
  auto smt_pkt = ip_packet(true, crafted_packet(p, *cipher, 2, std::string(200, 'x')));
  auto udp = ip_packet(true, std::vector<uint8_t>(30, 0));
  ASSERT_TRUE(smt::test::write_ip_pcap(dir.file("udp.pcap"), {&udp, 1}, 17).ok());
  ASSERT_TRUE(smt::test::write_ip_pcap(dir.file("c.pcap"), {&smt_pkt, 1}, 253).ok());
  // Keep 60 bytes of the one record, as a 60-byte snaplen would.
  std::ifstream in(dir.file("c.pcap"), std::ios::binary);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GT(b.size(), 24u + 16 + 60);
  const uint32_t orig = static_cast<uint32_t>(b.size() - 40);
  b[32] = 60;
  b[33] = b[34] = b[35] = 0;
  b.resize(24 + 16 + 60);
  write_bytes(dir.file("c.pcap"), b);
  DecodeOptions o;
  o.keylog_path = dir.file("k.log");
  o.capture_path = dir.file("c.pcap");
  DecodeRun r = decode(o);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.out.find("record 1: IP packet cut short (captured 60 of " + std::to_string(orig) +
                       " bytes; raise the snaplen)"),
            std::string::npos)
      << r.out;
  o.capture_path = dir.file("udp.pcap");
  r = decode(o);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("1 frames, 0 SMT packets"), std::string::npos) << r.err;
}

TEST(DecodeCapture, TextOutputEscapesAndTruncatesPlaintext) {
  const uint64_t seed = 0xdec0de06;
  SessionParams p;
  smt::test::fill_test_secrets(&p, seed);
  auto keys = derive_traffic_keys(Suite::kAes128GcmSha256, p.initiator_secret.span());
  auto cipher = RecordCipher::create(Suite::kAes128GcmSha256, *keys, CipherDirection::kSeal);
  ASSERT_TRUE(cipher.ok());
  const std::string text = std::string("a\"b\\c\n\x01") + std::string(100, 'z');
  TempDir dir;
  write_text(dir.file("k.log"), pair_keylog(seed, 9));
  std::vector<CapturedIp> pkts = {ip_packet(true, crafted_packet(p, *cipher, 6, text))};
  ASSERT_TRUE(
      smt::test::write_ip_pcap(dir.file("c.pcap"), pkts, 253, {{1'700'000'000'123'456'000ull}})
          .ok());
  DecodeOptions o;
  o.keylog_path = dir.file("k.log");
  o.capture_path = dir.file("c.pcap");
  o.max_bytes = 10;
  DecodeRun r = decode(o);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "1700000000.123456000 10.0.0.1:1000 > 10.0.0.2:2000 serial 9 i->r request id 6 "
            "epoch 0 len 107: \"a\\\"b\\\\c\\n\\x01zzz\" ... (97 more bytes)\n");
  o.hex = true;
  o.max_bytes = 3;
  r = decode(o);
  EXPECT_NE(r.out.find("len 107: 612262 ... (104 more bytes)"), std::string::npos) << r.out;
}

TEST(DecodeCapture, CommandLineExitCodesAndMessages) {
  const std::string tool = SMT_DECODE_PATH;
  std::string out;
  EXPECT_EQ(smt::test::run_command(tool + " -r x.pcap 2>&1", &out), 2);
  EXPECT_NE(out.find("--keylog FILE is required"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(smt::test::run_command(tool + " --keylog k --bogus 2>&1", &out), 2);
  EXPECT_NE(out.find("unknown argument '--bogus'"), std::string::npos) << out;
  TempDir dir;
  write_text(dir.file("k.log"), pair_keylog(1, 1));
  write_text(dir.file("bad.pcap"), "this is not a capture");
  out.clear();
  EXPECT_EQ(
      smt::test::run_command(
          tool + " --keylog " + dir.file("k.log") + " -r " + dir.file("bad.pcap") + " 2>&1", &out),
      2);
  EXPECT_NE(out.find("not a pcap file"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(smt::test::run_command(tool + " --keylog " + dir.file("missing.log") + " -r " +
                                       dir.file("bad.pcap") + " 2>&1",
                                   &out),
            2);
  EXPECT_NE(out.find("missing.log: cannot open key log"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(smt::test::run_command(tool + " --help", &out), 0);
  EXPECT_NE(out.find("usage: smt-decode"), std::string::npos);
}

}  // namespace
}  // namespace smt::decode::test
