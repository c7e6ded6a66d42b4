// smt-record-demo: the SMT record layer at a glance, without a network.
//
// One session direction (initiator -> responder) is keyed from a fixed demo
// root exactly as smtd will key it from a TLS exporter (CONTRACT §1). Messages
// of several sizes are sealed into DATA packets on both layouts (one record per
// packet, and one record per TSO segment cut by the software TSO emulator),
// interleaved, duplicated and reordered, and delivered through a DataReceiver; the
// delivered bytes must equal what was sent. Then tampered packets must be
// dropped, each with the reason the receiver counts for it.
//
// Exit status: 0 when everything verified, 1 on any mismatch, 2 when the
// binary was built with a deliberate fault (SMT_FAULT) and must not run.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iterator>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/fault.h"
#include "record/data_receiver.h"
#include "record/key_schedule.h"
#include "record/record_cipher.h"
#include "record/sealed_message.h"
#include "smt/siphash.h"
#include "smt/wire.h"
#include "wire/data_header.h"
#include "wire/data_packet.h"

namespace smt {
namespace {

using Packet = std::vector<uint8_t>;

constexpr uint32_t kMtu = 1500;  // IPv4: 20-byte IP header, then the SMT packet
constexpr uint16_t kInitiatorPort = 40000;
constexpr uint16_t kResponderPort = 5000;
constexpr Suite kSuite = Suite::kAes128GcmSha256;
constexpr uint32_t kShuffleSeed = 2024;
constexpr size_t kReorderWindow = 32;  // packets reordered within windows of this many

enum class Layout { kPerPacket, kTso };

const char* layout_name(Layout l) { return l == Layout::kPerPacket ? "per-packet" : "tso"; }

struct SizeCase {
  const char* name;
  size_t bytes;
};
constexpr SizeCase kSizes[] = {{"empty", 0}, {"64 B", 64}, {"4 KiB", 4096}, {"1 MiB", 1 << 20}};

/// The demo's stand-in for a TLS exporter secret. Never a real secret.
std::array<uint8_t, 32> demo_root() {
  std::array<uint8_t, 32> r{};
  for (size_t i = 0; i < r.size(); ++i) r[i] = static_cast<uint8_t>(0xa0 + i);
  return r;
}

std::array<uint8_t, 16> ipv4_mapped(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  std::array<uint8_t, 16> v{};
  v[10] = 0xff;
  v[11] = 0xff;
  v[12] = a;
  v[13] = b;
  v[14] = c;
  v[15] = d;
  return v;
}

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

/// The keys of one session direction, as the engine would hold them.
struct Direction {
  std::array<uint8_t, kCtlKeyLen> ctl_key{};  // the sender's k_ctl: tags DATA headers
  SecretBytes traffic_secret;                 // secret_i_0

  Result<RecordCipher> cipher(CipherDirection dir) const {
    auto keys = derive_traffic_keys(kSuite, traffic_secret.span());
    if (!keys.ok()) return keys.error();
    return RecordCipher::create(kSuite, *keys, dir);
  }
};

/// One message on one layout: what was sent and what became of it.
struct Row {
  const char* size_name = "";
  Layout layout = Layout::kPerPacket;
  uint64_t message_id = 0;
  std::vector<uint8_t> data;
  uint32_t records = 0;
  size_t packets = 0;     // distinct packets
  size_t duplicates = 0;  // extra copies put on the wire
  int deliveries = 0;
  bool bytes_equal = false;
  DropCounters drops;
};

/// Seals `data` as message `id` and cuts it into DATA packets on `layout`.
Result<std::vector<Packet>> packetize(uint64_t id, std::span<const uint8_t> data, Layout layout,
                                      RecordCipher& sealer, const Direction& dir,
                                      uint32_t* records) {
  const uint32_t record_data =
      layout == Layout::kPerPacket ? record_data_for_mtu(kMtu, false) : SMT_RECORD_MAX_DATA;
  const auto len = static_cast<uint32_t>(data.size());
  auto g = MessageGeometry::make(len, len, record_data);
  if (!g.ok()) return g.error();
  auto m = SealedMessage::create(id, std::vector<uint8_t>(data.begin(), data.end()), *g);
  if (!m.ok()) return m.error();
  *records = g->records;

  std::vector<Packet> out;
  const size_t max_payload = kMtu - 20 - kDataHeaderLen;  // what the NIC puts in each packet
  std::vector<uint8_t> scratch(kDataHeaderLen + max_payload);
  for (uint32_t i = 0; i < g->records; ++i) {
    auto rec = m->record(i, sealer);
    if (!rec.ok()) return rec.error();
    DataHeader base;
    base.sport = kInitiatorPort;
    base.dport = kResponderPort;
    base.incoming = g->padded_length;
    const DataHeader h = record_header(*m, i, base);
    Packet p(kDataHeaderLen + rec->size());
    build_data_packet(p.data(), h, *rec, dir.ctl_key.data());
    if (layout == Layout::kPerPacket) {
      out.push_back(std::move(p));
    } else {
      tso_segment(p, max_payload, scratch.data(),
                  [&](std::span<const uint8_t> s) { out.emplace_back(s.begin(), s.end()); });
    }
  }
  return out;
}

/// Counter deltas of one on_packet call, added to `into`.
void add_delta(const DropCounters& before, const DropCounters& after, DropCounters* into) {
  for (size_t r = 0; r < static_cast<size_t>(DropReason::kCount); ++r) {
    const auto reason = static_cast<DropReason>(r);
    for (uint64_t n = after.get(reason) - before.get(reason); n > 0; --n) into->add(reason);
  }
}

std::string drops_text(const DropCounters& d) {
  std::string s;
  for (size_t r = 0; r < static_cast<size_t>(DropReason::kCount); ++r) {
    const auto reason = static_cast<DropReason>(r);
    if (d.get(reason) == 0) continue;
    if (!s.empty()) s += ", ";
    s += drop_reason_name(reason);
    s += ' ';
    s += std::to_string(d.get(reason));
  }
  return s.empty() ? "-" : s;
}

/// Runs every message of one layout through one receiver: the messages are in
/// flight together (their packets interleaved round-robin), about one packet
/// in three arrives twice, and packets are reordered within windows of
/// kReorderWindow. (The receiver stages TSO slices before their record
/// authenticates, within a bounded budget; a full shuffle of a 1 MiB message
/// would exceed it and need retransmissions, which come with the transport.)
bool deliver_layout(Layout layout, std::vector<Row>& rows, RecordCipher& sealer,
                    const Direction& dir, uint64_t* next_id) {
  struct Tagged {
    size_t row;
    Packet pkt;
  };
  std::mt19937 rng(kShuffleSeed + static_cast<uint32_t>(layout));
  const size_t first = rows.size();
  std::vector<std::vector<Packet>> per_message;
  for (const SizeCase& sc : kSizes) {
    Row row;
    row.size_name = sc.name;
    row.layout = layout;
    row.message_id = *next_id;
    *next_id += 2;  // bit 0 marks responses; these are all requests
    row.data = pattern(sc.bytes, static_cast<uint32_t>(row.message_id));
    rows.push_back(std::move(row));
    Row& r = rows.back();
    auto pkts = packetize(r.message_id, r.data, layout, sealer, dir, &r.records);
    if (!pkts.ok()) {
      std::fprintf(stderr, "smt-record-demo: sealing %s failed: %s\n", sc.name,
                   pkts.error().message.c_str());
      return false;
    }
    r.packets = pkts->size();
    per_message.push_back(std::move(pkts).value());
  }
  std::vector<Tagged> wire;
  for (size_t k = 0, left = 1; left != 0; ++k) {
    left = 0;
    for (size_t m = 0; m < per_message.size(); ++m) {
      if (k >= per_message[m].size()) continue;
      ++left;
      const size_t row = first + m;
      if (rng() % 3 == 0) {
        wire.push_back({row, per_message[m][k]});
        ++rows[row].duplicates;
      }
      wire.push_back({row, std::move(per_message[m][k])});
    }
  }
  for (size_t at = 0; at < wire.size(); at += kReorderWindow) {
    const size_t end = std::min(at + kReorderWindow, wire.size());
    std::shuffle(wire.begin() + static_cast<std::ptrdiff_t>(at),
                 wire.begin() + static_cast<std::ptrdiff_t>(end), rng);
  }

  auto opener = dir.cipher(CipherDirection::kOpen);
  if (!opener.ok()) return false;
  DataReceiver rx(dir.ctl_key, DataReceiver::Config{});
  if (!rx.set_epoch_key(0, std::move(opener).value()).ok()) return false;
  for (auto& t : wire) {
    const DropCounters before = rx.drops();
    (void)rx.on_packet(t.pkt);
    add_delta(before, rx.drops(), &rows[t.row].drops);
    while (auto d = rx.take_delivered()) {
      for (size_t i = first; i < rows.size(); ++i) {
        if (rows[i].message_id != d->message_id) continue;
        ++rows[i].deliveries;
        rows[i].bytes_equal = d->data == rows[i].data;
      }
    }
  }
  return rx.messages_in_progress() == 0;
}

/// One way an attacker alters a packet, and the reason it must be dropped for.
struct Tamper {
  const char* what;
  DropReason expected;
  std::function<void(Packet&)> apply;
};

/// Re-tags a rewritten header with k_ctl: the attacker the inner header
/// defends against holds that key (it lives in BPF maps).
void retag(Packet& p, const Direction& dir) {
  DataHeader h;
  DropReason why;
  if (parse_data_header(p, &h, &why)) {
    smt_siphash_store_tag(p.data() + offsetof(struct smt_data_hdr, tag),
                          data_header_tag(h, dir.ctl_key.data()));
  }
}

int run() {
  if (kFaultBuild) {
    std::fprintf(stderr,
                 "smt-record-demo: this binary was built with SMT_FAULT (a deliberately "
                 "insecure build for the mutation gate); refusing to run\n");
    return 2;
  }

  // ---- keys: the session's secrets from a demo root (CONTRACT §1) ----------
  SessionContextInput ctx;
  ctx.suite = kSuite;
  ctx.initiator_addr = ipv4_mapped(10, 0, 0, 1);
  ctx.initiator_port = kInitiatorPort;
  ctx.responder_addr = ipv4_mapped(10, 0, 0, 2);
  ctx.responder_port = kResponderPort;
  ctx.serial = 2;
  const auto root = demo_root();
  auto secrets = derive_session_secrets(root, ctx);
  if (!secrets.ok()) {
    std::fprintf(stderr, "smt-record-demo: key derivation failed: %s\n",
                 secrets.error().message.c_str());
    return 1;
  }
  Direction dir;
  if (secrets->initiator_ctl.size() != kCtlKeyLen) {
    std::fprintf(stderr, "smt-record-demo: control key has %zu bytes, want %zu\n",
                 secrets->initiator_ctl.size(), kCtlKeyLen);
    return 1;
  }
  std::copy_n(secrets->initiator_ctl.data(), kCtlKeyLen, dir.ctl_key.begin());
  dir.traffic_secret = secrets->initiator_secret;

  auto sealer = dir.cipher(CipherDirection::kSeal);
  if (!sealer.ok()) {
    std::fprintf(stderr, "smt-record-demo: %s\n", sealer.error().message.c_str());
    return 1;
  }
  const SuiteInfo* info = suite_info(kSuite);
  std::printf(
      "SMT record layer demo: %s, session secrets derived from a fixed demo root "
      "(no key material is printed)\n",
      info != nullptr ? info->name : "?");
  std::printf(
      "one direction (initiator -> responder), MTU %u; per layout, all messages in flight "
      "together through one receiver,\n~1 packet in 3 duplicated, reordered within windows of "
      "%zu packets\n\n",
      kMtu, kReorderWindow);

  // ---- delivery on both layouts ---------------------------------------------
  bool ok = true;
  std::vector<Row> rows;
  rows.reserve(2 * std::size(kSizes));
  uint64_t next_id = 2;
  for (Layout layout : {Layout::kPerPacket, Layout::kTso}) {
    if (!deliver_layout(layout, rows, *sealer, dir, &next_id)) {
      std::printf("%s: a message was left incomplete\n", layout_name(layout));
      ok = false;
    }
  }
  std::printf("%-7s %-10s %7s %5s %7s  %-9s  %s\n", "size", "layout", "packets", "dups", "records",
              "delivered", "drops by reason");
  for (const Row& r : rows) {
    const bool row_ok = r.deliveries == 1 && r.bytes_equal &&
                        r.drops.total() == r.drops.get(DropReason::kDuplicate);
    ok = ok && row_ok;
    std::printf("%-7s %-10s %7zu %5zu %7u  %-9s  %s\n", r.size_name, layout_name(r.layout),
                r.packets, r.duplicates, r.records,
                row_ok ? "ok" : (r.deliveries == 0 ? "MISSING" : "MISMATCH"),
                drops_text(r.drops).c_str());
  }

  // ---- tampering --------------------------------------------------------------
  // A 4 KiB message on the per-packet layout; each tampered copy of one of its
  // packets goes to the receiver first and must be dropped for the expected
  // reason without leaving state; then the genuine packets must still deliver,
  // and a replay of a delivered message must be dropped too.
  const uint64_t id = next_id;
  next_id += 2;
  const auto data = pattern(4096, static_cast<uint32_t>(id));
  uint32_t records = 0;
  auto genuine = packetize(id, data, Layout::kPerPacket, *sealer, dir, &records);
  auto opener = dir.cipher(CipherDirection::kOpen);
  if (!genuine.ok() || genuine->size() < 2 || !opener.ok()) {
    std::printf("tamper set-up failed\n");
    return 1;
  }
  DataReceiver rx(dir.ctl_key, DataReceiver::Config{});
  if (!rx.set_epoch_key(0, std::move(opener).value()).ok()) {
    std::printf("tamper set-up failed\n");
    return 1;
  }

  const size_t body = kDataHeaderLen + kTlsHeaderLen;  // first ciphertext byte
  const std::vector<Tamper> tampers = {
      {"one ciphertext bit flipped (header tag still valid)", DropReason::kAuthFailed,
       [&](Packet& p) { p[body + 20] ^= 0x04; }},
      {"one header bit flipped (message id), not re-tagged", DropReason::kBadTag,
       [&](Packet& p) { p[offsetof(struct smt_data_hdr, common.message_id) + 7] ^= 0x02; }},
      {"message length rewritten and re-tagged with k_ctl", DropReason::kLengthMismatch,
       [&](Packet& p) {
         store_be32(p.data() + offsetof(struct smt_data_hdr, message_length), 1024);
         retag(p, dir);
       }},
      {"record moved to another message id, re-tagged", DropReason::kAuthFailed,
       [&](Packet& p) {
         store_be64(p.data() + offsetof(struct smt_data_hdr, common.message_id), id + 2);
         retag(p, dir);
       }},
      {"record offset rewritten and re-tagged", DropReason::kOffsetMismatch,
       [&](Packet& p) {
         const size_t at = offsetof(struct smt_data_hdr, record_offset);
         store_be32(p.data() + at, load_be32(p.data() + at) + 1024);
         retag(p, dir);
       }},
      {"epoch with no key, re-tagged", DropReason::kUnknownEpoch,
       [&](Packet& p) {
         store_be16(p.data() + offsetof(struct smt_data_hdr, epoch), 7);
         retag(p, dir);
       }},
      {"cut inside the DATA header", DropReason::kTruncated,
       [&](Packet& p) { p.resize(kDataHeaderLen - 8); }},
  };

  std::printf("\n%-52s %-16s %s\n", "tampered packet (4 KiB message, per-packet)", "dropped as",
              "verdict");
  size_t tamper_ok = 0;
  auto report = [&](const char* what, DropReason expected, const RxResult& res,
                    const DropCounters& before) {
    DropCounters delta;
    add_delta(before, rx.drops(), &delta);
    const bool good = !res.accepted && delta.total() == 1 && delta.get(expected) == 1;
    tamper_ok += good ? 1 : 0;
    ok = ok && good;
    std::printf("%-52s %-16s %s\n", what, res.accepted ? "(accepted!)" : drop_reason_name(res.why),
                good ? "ok" : "WRONG");
  };
  for (const Tamper& t : tampers) {
    Packet bad = (*genuine)[1];
    t.apply(bad);
    const DropCounters before = rx.drops();
    const RxResult res = rx.on_packet(bad);
    report(t.what, t.expected, res, before);
  }
  if (rx.messages_in_progress() != 0) {
    std::printf("tampered packets left state behind\n");
    ok = false;
  }
  int delivered = 0;
  bool equal = false;
  for (Packet p : *genuine) {
    (void)rx.on_packet(p);
    while (auto d = rx.take_delivered()) {
      ++delivered;
      equal = d->message_id == id && d->data == data;
    }
  }
  {
    Packet replay = genuine->front();
    const DropCounters before = rx.drops();
    const RxResult res = rx.on_packet(replay);
    report("replay of a packet of the delivered message", DropReason::kDuplicate, res, before);
  }
  const bool after_ok = delivered == 1 && equal;
  ok = ok && after_ok;
  std::printf("%-52s %-16s %s\n", "genuine packets after the tampered ones", "-",
              after_ok ? "delivered, bytes equal" : "NOT DELIVERED INTACT");

  const size_t messages = rows.size() + 1;
  if (ok) {
    std::printf(
        "\nverified: %zu messages delivered byte-identical, %zu tampered or replayed "
        "packets dropped for the expected reason\n",
        messages, tamper_ok);
    return 0;
  }
  std::printf("\nNOT verified: see the rows marked MISSING, MISMATCH or WRONG above\n");
  return 1;
}

}  // namespace
}  // namespace smt

int main() { return smt::run(); }
