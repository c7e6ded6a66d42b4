#include "spec_vectors.h"

#include <arpa/inet.h>
#include <endian.h>
#include <openssl/sha.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <span>
#include <stdexcept>

#include "common/bytes.h"
#include "record/key_schedule.h"
#include "record/nonce_oracle.h"
#include "record/record_cipher.h"
#include "record/sealed_message.h"
#include "smt/siphash.h"
#include "smt/wire.h"
#include "wire/control_packet.h"
#include "wire/data_header.h"
#include "wire/data_packet.h"

namespace smt::vectors {
namespace {

// Inside this file a bad input or a failed derivation throws; the public
// functions turn it into an Error (this is a tool, never the data path).
struct VectorError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void fail(const std::string& m) { throw VectorError(m); }

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r.ok()) fail(std::string(what) + ": " + r.error().message);
  return std::move(r).value();
}

std::string hex(std::span<const uint8_t> b) {
  static const char d[] = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (uint8_t c : b) {
    s.push_back(d[c >> 4]);
    s.push_back(d[c & 15]);
  }
  return s;
}
std::string hex(const SecretBytes& s) { return hex(s.span()); }
std::string dec(uint64_t v) { return std::to_string(v); }
std::string hexnum(uint64_t v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%0*llx", digits, static_cast<unsigned long long>(v));
  return buf;
}
std::vector<uint8_t> counting(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i);
  return v;
}
std::string sha256_hex(std::span<const uint8_t> b) {
  uint8_t d[SHA256_DIGEST_LENGTH];
  SHA256(b.data(), b.size(), d);
  return hex(d);
}

// Typed access to a block's inputs.
class Inputs {
 public:
  explicit Inputs(const Fields& f) : f_(f) {}

  const std::string& str(std::string_view key) const {
    for (const auto& [k, v] : f_) {
      if (k == key) return v;
    }
    fail("missing input '" + std::string(key) + "'");
  }
  // Decimal, or hex with 0x.
  uint64_t num(std::string_view key, uint64_t max) const {
    const std::string& s = str(key);
    const bool is_hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    const std::string digits = is_hex ? s.substr(2) : s;
    if (digits.empty() || digits.size() > 20) fail("input '" + std::string(key) + "' is no number");
    uint64_t v = 0;
    for (char c : digits) {
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (is_hex && c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else if (is_hex && c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
      } else {
        fail("input '" + std::string(key) + "' is no number");
      }
      const uint64_t base = is_hex ? 16 : 10;
      if (v > (UINT64_MAX - d) / base) fail("input '" + std::string(key) + "' overflows");
      v = v * base + d;
    }
    if (v > max) fail("input '" + std::string(key) + "' exceeds " + std::to_string(max));
    return v;
  }
  // Lower- or upper-case hex without separators; exactly `len` bytes unless
  // len is npos.
  std::vector<uint8_t> bytes(std::string_view key, size_t len = std::string::npos) const {
    const std::string& s = str(key);
    if (s.size() % 2 != 0) fail("input '" + std::string(key) + "': odd number of hex digits");
    std::vector<uint8_t> out;
    for (size_t i = 0; i < s.size(); i += 2) {
      auto nib = [&](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        fail("input '" + std::string(key) + "': not hex");
      };
      out.push_back(static_cast<uint8_t>(nib(s[i]) << 4 | nib(s[i + 1])));
    }
    if (len != std::string::npos && out.size() != len) {
      fail("input '" + std::string(key) + "' must be " + std::to_string(len) + " bytes");
    }
    return out;
  }
  // An IANA suite name, e.g. TLS_AES_128_GCM_SHA256.
  Suite suite(std::string_view key) const {
    const std::string& s = str(key);
    for (Suite c :
         {Suite::kAes128GcmSha256, Suite::kAes256GcmSha384, Suite::kChaCha20Poly1305Sha256}) {
      if (s == suite_info(c)->name) return c;
    }
    fail("unknown suite '" + s + "'");
  }
  // An IPv6 address in text form (IPv4 as ::ffff:a.b.c.d).
  std::array<uint8_t, 16> addr(std::string_view key) const {
    std::array<uint8_t, 16> a{};
    if (inet_pton(AF_INET6, str(key).c_str(), a.data()) != 1) {
      fail("input '" + std::string(key) + "' is no IPv6 address");
    }
    return a;
  }

 private:
  const Fields& f_;
};

const char* suite_name(Suite s) { return suite_info(s)->name; }

// ---- key schedule -------------------------------------------------------

// The session of tests/record/key_schedule_test.cc doc_session():
// 10.0.0.1:40000 (initiator) -> 10.0.0.2:5000, protocol 253, serial 2.
Fields session_inputs(Suite s) {
  return {{"suite", suite_name(s)},
          {"root", hex(counting(suite_info(s)->hash_len))},
          {"version", "1"},
          {"initiator_addr", "::ffff:10.0.0.1"},
          {"initiator_port", "40000"},
          {"responder_addr", "::ffff:10.0.0.2"},
          {"responder_port", "5000"},
          {"protocol", "253"},
          {"serial", "2"}};
}
Fields session_aes128_inputs() { return session_inputs(Suite::kAes128GcmSha256); }
Fields session_aes256_inputs() { return session_inputs(Suite::kAes256GcmSha384); }

Fields compute_session_secrets(const Fields& f) {
  Inputs in(f);
  SessionContextInput c;
  c.suite = in.suite("suite");
  c.version = static_cast<uint8_t>(in.num("version", 0xff));
  c.initiator_addr = in.addr("initiator_addr");
  c.initiator_port = static_cast<uint16_t>(in.num("initiator_port", 0xffff));
  c.responder_addr = in.addr("responder_addr");
  c.responder_port = static_cast<uint16_t>(in.num("responder_port", 0xffff));
  c.protocol = static_cast<uint8_t>(in.num("protocol", 0xff));
  c.serial = in.num("serial", UINT64_MAX);
  const auto root = in.bytes("root", suite_info(c.suite)->hash_len);
  size_t n = 0;
  const auto ctx_bytes = session_context_bytes(c, &n);
  SessionSecrets s = must(derive_session_secrets(root, c), "session secrets");
  return {{"context_bytes", hex({ctx_bytes.data(), n})},
          {"ctx", hex(s.ctx)},
          {"secret_i_0", hex(s.initiator_secret)},
          {"secret_r_0", hex(s.responder_secret)},
          {"k_ctl_i", hex(s.initiator_ctl)},
          {"k_ctl_r", hex(s.responder_ctl)}};
}

// One output of the default session of a suite (for other vectors' inputs).
std::string session_output(Suite s, std::string_view key) {
  for (auto& [k, v] : compute_session_secrets(session_inputs(s))) {
    if (k == key) return v;
  }
  fail("no session output " + std::string(key));
}

Fields epochs_inputs(Suite s, const char* secret_key) {
  return {{"suite", suite_name(s)}, {"secret_0", session_output(s, secret_key)}};
}
Fields epochs_i_aes128_inputs() { return epochs_inputs(Suite::kAes128GcmSha256, "secret_i_0"); }
Fields epochs_r_aes128_inputs() { return epochs_inputs(Suite::kAes128GcmSha256, "secret_r_0"); }
Fields epochs_i_aes256_inputs() { return epochs_inputs(Suite::kAes256GcmSha384, "secret_i_0"); }

Fields compute_epochs(const Fields& f) {
  Inputs in(f);
  const Suite s = in.suite("suite");
  SecretBytes secret(in.bytes("secret_0", suite_info(s)->hash_len));
  Fields out;
  for (int e = 0; e < 3; ++e) {
    const std::string n = std::to_string(e);
    if (e > 0) {
      secret = must(next_traffic_secret(s, secret.span()), "traffic upd");
      out.emplace_back("secret_" + n, hex(secret));
    }
    TrafficKeys k = must(derive_traffic_keys(s, secret.span()), "traffic keys");
    out.emplace_back("epoch_" + n + "_key", hex(k.key));
    out.emplace_back("epoch_" + n + "_iv", hex(k.iv));
  }
  return out;
}

// RFC 8446 §7.1 HkdfLabel, encoded here for display (key_schedule.cc keeps
// its own; the spec test runs the resulting openssl command to compare).
std::vector<uint8_t> hkdf_label_bytes(size_t len, const std::string& label,
                                      std::span<const uint8_t> context) {
  const std::string full = "tls13 " + label;
  if (full.size() > 255 || context.size() > 255 || len > 0xffff) fail("HkdfLabel too long");
  std::vector<uint8_t> b{static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len),
                         static_cast<uint8_t>(full.size())};
  b.insert(b.end(), full.begin(), full.end());
  b.push_back(static_cast<uint8_t>(context.size()));
  b.insert(b.end(), context.begin(), context.end());
  return b;
}

Fields hkdf_inputs() {
  const Suite s = Suite::kAes128GcmSha256;
  return {{"suite", suite_name(s)},
          {"secret", hex(counting(32))},
          {"label", "smt i ctl"},
          {"context", session_output(s, "ctx")},
          {"length", "16"}};
}

Fields compute_hkdf(const Fields& f) {
  Inputs in(f);
  const Suite s = in.suite("suite");
  const auto secret = in.bytes("secret");
  const std::string& label = in.str("label");
  const auto context = in.bytes("context");
  const size_t len = in.num("length", 255 * suite_info(s)->hash_len);
  std::vector<uint8_t> out(len);
  if (auto st = hkdf_expand_label(s, secret, label, context, out); !st) {
    fail("HKDF-Expand-Label: " + st.error().message);
  }
  const std::string info = hex(hkdf_label_bytes(len, label, context));
  const std::string cmd = "openssl kdf -keylen " + dec(len) +
                          " -kdfopt digest:" + suite_info(s)->digest +
                          " -kdfopt mode:EXPAND_ONLY -kdfopt hexkey:" + hex(secret) +
                          " -kdfopt hexinfo:" + info + " HKDF";
  return {{"hkdf_label", info}, {"output", hex(out)}, {"openssl", cmd}};
}

Fields usage_inputs() {
  return {{"suite", suite_name(Suite::kAes128GcmSha256)}, {"content_len", "1406"}};
}

Fields compute_usage(const Fields& f) {
  Inputs in(f);
  const Suite s = in.suite("suite");
  const size_t content = in.num("content_len", SMT_RECORD_MAX_CONTENT);
  // σ as the sealing cipher counts it, under a throwaway key.
  TrafficKeys k =
      must(derive_traffic_keys(s, std::vector<uint8_t>(suite_info(s)->hash_len)), "traffic keys");
  RecordCipher c = must(RecordCipher::create(s, k, CipherDirection::kSeal), "cipher");
  NonceOracle oracle;
  c.set_nonce_oracle(&oracle);
  std::vector<uint8_t> rec(RecordCipher::record_size(content));
  (void)must(c.seal(0, rec.data(), content), "seal");
  return {
      {"aead_plaintext_len", dec(content + 1)},
      {"sealed_blocks", dec(c.sealed_blocks())},
      {"rekey_blocks", dec(kRekeyBlocks)},
      {"seal_limit_blocks", dec(kSealLimitBlocks)},
      {"failed_open_new_session", dec(kFailedOpenSoftLimit)},
      {"failed_open_integrity_limit",
       dec(s == Suite::kChaCha20Poly1305Sha256 ? kFailedOpenLimitChaCha : kFailedOpenLimitAesGcm)}};
}

// ---- DATA header ----------------------------------------------------------

Fields data_mac_inputs() {
  return {{"ctl_key", hex(counting(16))},
          {"sport", "40000"},
          {"dport", "5000"},
          {"incoming", "10000"},
          {"flags", "0x01"},
          {"message_id", "0x00000000002a"},
          {"message_length", "100000"},
          {"record_offset", "2780"},
          {"record_index", "2"},
          {"epoch", "0"},
          {"priority", "3"}};
}

Fields data_header_inputs() {
  Fields f = data_mac_inputs();
  f.insert(f.begin() + 3, Fields::value_type("seg_pos", "1428"));
  return f;
}

DataHeader data_header_from(const Inputs& in, bool with_seg_pos) {
  DataHeader h;
  h.sport = static_cast<uint16_t>(in.num("sport", 0xffff));
  h.dport = static_cast<uint16_t>(in.num("dport", 0xffff));
  if (with_seg_pos) h.seg_pos = static_cast<uint32_t>(in.num("seg_pos", UINT32_MAX));
  h.incoming = static_cast<uint32_t>(in.num("incoming", UINT32_MAX));
  h.flags = static_cast<uint8_t>(in.num("flags", SMT_DATA_F_ALL));
  h.message_id = in.num("message_id", SMT_MESSAGE_ID_MAX);
  h.message_length = static_cast<uint32_t>(in.num("message_length", UINT32_MAX));
  h.record_offset = static_cast<uint32_t>(in.num("record_offset", UINT32_MAX));
  h.record_index = static_cast<uint16_t>(in.num("record_index", 0xffff));
  h.epoch = static_cast<uint16_t>(in.num("epoch", 0xffff));
  h.priority = static_cast<uint8_t>(in.num("priority", SMT_PRIORITY_MAX));
  return h;
}

template <typename T>
std::vector<uint8_t> struct_bytes(const T& t) {
  const auto* p = reinterpret_cast<const uint8_t*>(&t);
  return {p, p + sizeof t};
}

// The MAC input laid out through wire.h's struct (not data_header.cc's byte
// offsets), then checked against data_header_tag: the two must agree.
std::vector<uint8_t> data_mac_input(const DataHeader& h, const uint8_t key[16]) {
  struct smt_data_mac_input m;
  std::memset(&m, 0, sizeof m);
  m.prefix.version = SMT_VERSION;
  m.prefix.type = SMT_TYPE_DATA;
  m.prefix.sport = htobe16(h.sport);
  m.prefix.dport = htobe16(h.dport);
  m.prefix.message_id = htobe64(h.message_id);
  m.incoming = htobe32(h.incoming);
  m.message_length = htobe32(h.message_length);
  m.record_offset = htobe32(h.record_offset);
  m.record_index = htobe16(h.record_index);
  m.epoch = htobe16(h.epoch);
  m.doff = SMT_DATA_HDR_WORDS << 4;
  m.flags = h.flags;
  m.priority = h.priority;
  auto b = struct_bytes(m);
  if (smt_siphash24(key, b.data(), static_cast<__u32>(b.size())) != data_header_tag(h, key)) {
    fail("struct smt_data_mac_input and data_header.cc build different MAC inputs");
  }
  return b;
}

Fields compute_data_mac(const Fields& f) {
  Inputs in(f);
  const auto key = in.bytes("ctl_key", kCtlKeyLen);
  const DataHeader h = data_header_from(in, false);
  const auto mi = data_mac_input(h, key.data());
  const uint64_t tag = smt_siphash24(key.data(), mi.data(), static_cast<__u32>(mi.size()));
  uint8_t wire[8];
  smt_siphash_store_tag(wire, tag);
  return {{"mac_input", hex(mi)}, {"siphash", hexnum(tag, 16)}, {"tag", hex(wire)}};
}

// The header through wire.h's struct, checked against write_data_header.
std::vector<uint8_t> data_header_bytes(const DataHeader& h, const uint8_t key[16]) {
  struct smt_data_hdr d;
  std::memset(&d, 0, sizeof d);
  d.common.sport = htobe16(h.sport);
  d.common.dport = htobe16(h.dport);
  d.common.seg_pos = htobe32(h.seg_pos);
  d.common.incoming = htobe32(h.incoming);
  d.common.doff = SMT_DATA_HDR_WORDS << 4;
  d.common.type = SMT_TYPE_DATA;
  d.common.version = SMT_VERSION;
  d.common.flags = h.flags;
  d.common.message_id = htobe64(h.message_id);
  d.message_length = htobe32(h.message_length);
  d.record_offset = htobe32(h.record_offset);
  d.record_index = htobe16(h.record_index);
  d.epoch = htobe16(h.epoch);
  d.priority = h.priority;
  uint8_t tag[8];
  smt_siphash_store_tag(tag, data_header_tag(h, key));
  std::memcpy(d.tag, tag, sizeof tag);
  auto b = struct_bytes(d);
  std::vector<uint8_t> w(kDataHeaderLen);
  write_data_header(w.data(), h, key);
  if (b != w) fail("struct smt_data_hdr and write_data_header lay the header out differently");
  return w;
}

Fields compute_data_header(const Fields& f) {
  Inputs in(f);
  const auto key = in.bytes("ctl_key", kCtlKeyLen);
  const auto b = data_header_bytes(data_header_from(in, true), key.data());
  return {{"header", hex(b)}, {"tag", hex({b.data() + 44, 8})}};
}

// ---- records and packets ---------------------------------------------------

RecordCipher cipher(Suite s, const TrafficKeys& k, CipherDirection dir) {
  return must(RecordCipher::create(s, k, dir), "cipher");
}

// RFC 8446 §5.3 nonce, written out for the doc (RecordCipher keeps its own).
std::array<uint8_t, kIvLen> nonce_of(const std::array<uint8_t, kIvLen>& iv, uint64_t seq) {
  auto n = iv;
  for (int i = 0; i < 8; ++i) n[kIvLen - 1 - i] ^= static_cast<uint8_t>(seq >> (8 * i));
  return n;
}

Fields data_packet_inputs_with(const std::string& message_id, const std::string& data_hex) {
  const Suite s = Suite::kAes128GcmSha256;
  return {{"suite", suite_name(s)},
          {"traffic_secret", session_output(s, "secret_i_0")},
          {"ctl_key", session_output(s, "k_ctl_i")},
          {"epoch", "0"},
          {"sport", "40000"},
          {"dport", "5000"},
          {"message_id", message_id},
          {"incoming", dec(data_hex.size() / 2)},
          {"priority", "0"},
          {"data", data_hex}};
}
Fields data_packet_inputs() {
  const std::string text = "hello, SMT!";
  return data_packet_inputs_with("0x000000000004",
                                 hex({reinterpret_cast<const uint8_t*>(text.data()), text.size()}));
}
Fields data_packet_empty_inputs() { return data_packet_inputs_with("0x000000000006", ""); }

Fields compute_data_packet(const Fields& f) {
  Inputs in(f);
  const Suite s = in.suite("suite");
  const auto secret = in.bytes("traffic_secret", suite_info(s)->hash_len);
  const auto key = in.bytes("ctl_key", kCtlKeyLen);
  const auto data = in.bytes("data");
  const uint64_t id = in.num("message_id", SMT_MESSAGE_ID_MAX);
  const uint32_t per_record = record_data_for_mtu(1500, false);
  if (data.size() > per_record) {
    fail("data-packet shows one record: at most " + dec(per_record) + " data bytes");
  }
  const auto n = static_cast<uint32_t>(data.size());
  TrafficKeys k = must(derive_traffic_keys(s, secret), "traffic keys");
  RecordCipher sealer = cipher(s, k, CipherDirection::kSeal);
  NonceOracle oracle;
  sealer.set_nonce_oracle(&oracle);
  MessageGeometry g = must(MessageGeometry::make(n, n, per_record), "geometry");
  SealedMessage m = must(SealedMessage::create(id, data, g), "message");
  auto rec_span = must(m.record(0, sealer), "seal");
  const std::vector<uint8_t> rec(rec_span.begin(), rec_span.end());

  DataHeader h;
  h.sport = static_cast<uint16_t>(in.num("sport", 0xffff));
  h.dport = static_cast<uint16_t>(in.num("dport", 0xffff));
  h.incoming = static_cast<uint32_t>(in.num("incoming", UINT32_MAX));
  h.message_id = id;
  h.message_length = n;
  h.record_offset = 0;
  h.record_index = 0;
  h.epoch = static_cast<uint16_t>(in.num("epoch", 0xffff));
  h.priority = static_cast<uint8_t>(in.num("priority", SMT_PRIORITY_MAX));
  std::vector<uint8_t> pkt(kDataHeaderLen + rec.size());
  build_data_packet(pkt.data(), h, rec, key.data());

  // Open it again to show the plaintext the AEAD protected.
  RecordCipher opener = cipher(s, k, CipherDirection::kOpen);
  std::vector<uint8_t> copy = rec;
  OpenError err;
  auto opened = opener.open(record_seq(id, 0), copy.data(), copy.size(), &err);
  if (opened.content == nullptr || opened.len != kInnerHeaderLen + n ||
      !std::equal(data.begin(), data.end(), opened.content + kInnerHeaderLen)) {
    fail("the sealed record does not open to its data");
  }
  std::vector<uint8_t> inner(opened.content, opened.content + opened.len);
  inner.push_back(SMT_TLS_CONTENT_APPLICATION_DATA);
  const uint64_t seq = record_seq(id, 0);
  return {{"key", hex(k.key)},
          {"iv", hex(k.iv)},
          {"seq", hexnum(seq, 16)},
          {"nonce", hex(nonce_of(k.iv, seq))},
          {"inner_header", hex({inner.data(), kInnerHeaderLen})},
          {"inner_plaintext", hex(inner)},
          {"aad", hex({rec.data(), kTlsHeaderLen})},
          {"record", hex(rec)},
          {"header", hex({pkt.data(), kDataHeaderLen})},
          {"packet", hex(pkt)}};
}

Fields geometry_inputs() {
  return {{"true_length", "3000"}, {"padded_length", "4096"}, {"mtu", "1500"}, {"ip_version", "4"}};
}

Fields compute_geometry(const Fields& f) {
  Inputs in(f);
  const auto true_len = static_cast<uint32_t>(in.num("true_length", UINT32_MAX));
  const auto padded = static_cast<uint32_t>(in.num("padded_length", UINT32_MAX));
  const auto mtu = static_cast<uint32_t>(in.num("mtu", 65535));
  const uint64_t ipv = in.num("ip_version", 6);
  if (ipv != 4 && ipv != 6) fail("ip_version is 4 or 6");
  const uint32_t rd = record_data_for_mtu(mtu, ipv == 6);
  MessageGeometry g = must(MessageGeometry::make(true_len, padded, rd), "geometry");
  if (g.records > 16) fail("keep the example under 16 records");
  Fields out{{"record_data", dec(rd)}, {"records", dec(g.records)}};
  for (uint32_t i = 0; i < g.records; ++i) {
    const std::string p = "record_" + dec(i) + "_";
    out.emplace_back(p + "offset", dec(g.offset(i)));
    out.emplace_back(p + "data_len", dec(g.data_len(i)));
    out.emplace_back(p + "flags", hexnum(i + 1 == g.records ? SMT_INNER_F_LAST : 0, 2));
    out.emplace_back(p + "wire_len", dec(g.wire_len(i)));
  }
  return out;
}

// The TSO example: one record carrying data_len bytes (byte i = i mod 256)
// handed to the NIC as one TSO segment and cut at max_payload bytes.
Fields tso_inputs() {
  const Suite s = Suite::kAes128GcmSha256;
  return {{"suite", suite_name(s)},
          {"traffic_secret", session_output(s, "secret_i_0")},
          {"ctl_key", session_output(s, "k_ctl_i")},
          {"sport", "40000"},
          {"dport", "5000"},
          {"message_id", "0x000000000008"},
          {"data_len", "2962"},
          {"max_payload", "1428"}};
}

struct TsoResult {
  std::vector<uint8_t> record;
  std::vector<uint8_t> segment;
  std::vector<std::vector<uint8_t>> packets;
};

TsoResult tso_compute(const Inputs& in) {
  const Suite s = in.suite("suite");
  const auto secret = in.bytes("traffic_secret", suite_info(s)->hash_len);
  const auto key = in.bytes("ctl_key", kCtlKeyLen);
  const uint64_t id = in.num("message_id", SMT_MESSAGE_ID_MAX);
  const auto n = static_cast<uint32_t>(in.num("data_len", SMT_RECORD_MAX_DATA));
  const size_t max_payload = in.num("max_payload", 65535);
  if (n == 0 || max_payload == 0) fail("data_len and max_payload must be positive");
  const auto data = counting(n);
  TrafficKeys k = must(derive_traffic_keys(s, secret), "traffic keys");
  RecordCipher sealer = cipher(s, k, CipherDirection::kSeal);
  NonceOracle oracle;
  sealer.set_nonce_oracle(&oracle);
  MessageGeometry g = must(MessageGeometry::make(n, n, n), "geometry");
  SealedMessage m = must(SealedMessage::create(id, data, g), "message");
  auto rec = must(m.record(0, sealer), "seal");
  DataHeader h;
  h.sport = static_cast<uint16_t>(in.num("sport", 0xffff));
  h.dport = static_cast<uint16_t>(in.num("dport", 0xffff));
  h.incoming = n;
  h.message_id = id;
  h.message_length = n;
  TsoResult r;
  r.record.assign(rec.begin(), rec.end());
  r.segment.resize(kDataHeaderLen + rec.size());
  build_data_packet(r.segment.data(), h, rec, key.data());
  std::vector<uint8_t> scratch(kDataHeaderLen + max_payload);
  tso_segment(r.segment, max_payload, scratch.data(),
              [&](std::span<const uint8_t> p) { r.packets.emplace_back(p.begin(), p.end()); });
  if (r.packets.size() > 16) fail("keep the example under 16 packets");
  return r;
}

Fields compute_tso(const Fields& f) {
  Inputs in(f);
  TsoResult r = tso_compute(in);
  Fields out{{"record_len", dec(r.record.size())},
             {"record_sha256", sha256_hex(r.record)},
             {"segment_header", hex({r.segment.data(), kDataHeaderLen})},
             {"packets", dec(r.packets.size())}};
  for (size_t i = 0; i < r.packets.size(); ++i) {
    const std::string p = "packet_" + dec(i) + "_";
    out.emplace_back(p + "seg_pos", dec(load_be32(r.packets[i].data() + 4)));
    out.emplace_back(p + "payload_len", dec(r.packets[i].size() - kDataHeaderLen));
    out.emplace_back(p + "header", hex({r.packets[i].data(), kDataHeaderLen}));
  }
  return out;
}

// ---- control packets ---------------------------------------------------------

// Every vector: the responder (port 5000) answering the initiator (40000)
// about message 0x2a, tagged with the example key 00 01 .. 0f.
Fields control_common_inputs(const char* type, const char* message_id, const char* seq) {
  return {
      {"ctl_key", hex(counting(16))}, {"type", type},      {"sport", "5000"}, {"dport", "40000"},
      {"message_id", message_id},     {"control_seq", seq}};
}
Fields control_grant_inputs() {
  Fields f = control_common_inputs("0x11", "0x00000000002a", "1");
  f.insert(f.end(), {{"offset", "30000"}, {"priority", "3"}, {"window_base", "0x00000000002c"}});
  return f;
}
Fields control_resend_inputs() {
  Fields f = control_common_inputs("0x12", "0x00000000002a", "2");
  f.insert(f.end(), {{"offset", "1390"}, {"length", "1390"}, {"priority", "7"}});
  return f;
}
Fields control_unknown_inputs() {
  Fields f = control_common_inputs("0x13", "0x00000000002a", "3");
  f.emplace_back("flags", "0x01");
  return f;
}
Fields control_busy_inputs() { return control_common_inputs("0x14", "0x00000000002b", "4"); }
Fields control_need_ack_inputs() { return control_common_inputs("0x17", "0x00000000002b", "5"); }
Fields control_ack_inputs() {
  // The initiator (the client) acknowledging two responses; its own direction,
  // so its own control sequence.
  Fields f = control_common_inputs("0x18", "0x000000000000", "1");
  f[2].second = "40000";
  f[3].second = "5000";
  f.insert(f.end(), {{"window_base", "0x00000000002e"},
                     {"id_0", "0x00000000002b"},
                     {"id_1", "0x000000000027"}});
  for (size_t i = 2; i < SMT_ACK_IDS; ++i) f.emplace_back("id_" + dec(i), "0x000000000000");
  return f;
}

// The body laid out through the wire.h struct of its type.
std::vector<uint8_t> control_body_struct_bytes(const ControlPacket& p) {
  switch (p.type) {
    case SMT_TYPE_GRANT: {
      struct smt_grant_body b;
      std::memset(&b, 0, sizeof b);
      b.offset = htobe32(p.grant_offset);
      b.priority = p.priority;
      b.window_base = htobe64(p.window_base);
      return struct_bytes(b);
    }
    case SMT_TYPE_RESEND: {
      struct smt_resend_body b;
      std::memset(&b, 0, sizeof b);
      b.offset = htobe32(p.resend_offset);
      b.length = htobe32(p.resend_length);
      b.priority = p.priority;
      return struct_bytes(b);
    }
    case SMT_TYPE_RPC_UNKNOWN: {
      struct smt_rpc_unknown_body b;
      std::memset(&b, 0, sizeof b);
      b.flags = p.unknown_flags;
      return struct_bytes(b);
    }
    case SMT_TYPE_ACK: {
      struct smt_ack_body b;
      std::memset(&b, 0, sizeof b);
      b.window_base = htobe64(p.window_base);
      for (size_t i = 0; i < SMT_ACK_IDS; ++i) b.ids[i] = htobe64(p.acked_ids[i]);
      return struct_bytes(b);
    }
    default:
      return {};
  }
}

Fields compute_control(const Fields& f) {
  Inputs in(f);
  const auto key = in.bytes("ctl_key", kCtlKeyLen);
  ControlPacket p;
  p.type = static_cast<uint8_t>(in.num("type", 0xff));
  p.sport = static_cast<uint16_t>(in.num("sport", 0xffff));
  p.dport = static_cast<uint16_t>(in.num("dport", 0xffff));
  p.message_id = in.num("message_id", SMT_MESSAGE_ID_MAX);
  p.control_seq = in.num("control_seq", UINT64_MAX);
  switch (p.type) {
    case SMT_TYPE_GRANT:
      p.grant_offset = static_cast<uint32_t>(in.num("offset", UINT32_MAX));
      p.priority = static_cast<uint8_t>(in.num("priority", 0xff));
      p.window_base = in.num("window_base", UINT64_MAX);
      break;
    case SMT_TYPE_RESEND:
      p.resend_offset = static_cast<uint32_t>(in.num("offset", UINT32_MAX));
      p.resend_length = static_cast<uint32_t>(in.num("length", UINT32_MAX));
      p.priority = static_cast<uint8_t>(in.num("priority", 0xff));
      break;
    case SMT_TYPE_RPC_UNKNOWN:
      p.unknown_flags = static_cast<uint8_t>(in.num("flags", 0xff));
      break;
    case SMT_TYPE_ACK:
      p.window_base = in.num("window_base", UINT64_MAX);
      for (size_t i = 0; i < SMT_ACK_IDS; ++i) p.acked_ids[i] = in.num("id_" + dec(i), UINT64_MAX);
      break;
    case SMT_TYPE_BUSY:
    case SMT_TYPE_NEED_ACK:
      break;
    default:
      fail("type is no control packet type");
  }
  std::vector<uint8_t> pkt(kCtlPacketMax);
  const size_t n = build_control_packet(pkt.data(), p, key.data());
  if (n == 0) fail("build_control_packet refuses these fields (docs/wire-format.md §9.8)");
  pkt.resize(n);

  // The same packet and MAC input through the wire.h structs: the vector is
  // printed only if both layouts agree.
  const std::vector<uint8_t> body = control_body_struct_bytes(p);
  struct smt_mac_prefix mp;
  std::memset(&mp, 0, sizeof mp);
  mp.version = SMT_VERSION;
  mp.type = p.type;
  mp.sport = htobe16(p.sport);
  mp.dport = htobe16(p.dport);
  mp.message_id = htobe64(p.message_id);
  std::vector<uint8_t> mi = struct_bytes(mp);
  mi.insert(mi.end(), body.begin(), body.end());
  uint8_t seq_be[8];
  store_be64(seq_be, p.control_seq);
  mi.insert(mi.end(), seq_be, seq_be + 8);
  const uint64_t tag = smt_siphash24(key.data(), mi.data(), static_cast<__u32>(mi.size()));
  if (tag != control_tag(p, key.data()))
    fail("control_tag disagrees with the documented MAC input");
  struct smt_ctl_hdr c;
  std::memset(&c, 0, sizeof c);
  c.common.sport = htobe16(p.sport);
  c.common.dport = htobe16(p.dport);
  c.common.doff = static_cast<__u8>(SMT_CTL_HDR_WORDS << 4);
  c.common.type = p.type;
  c.common.version = SMT_VERSION;
  c.common.message_id = htobe64(p.message_id);
  c.control_seq = htobe64(p.control_seq);
  uint8_t t[8];
  smt_siphash_store_tag(t, tag);
  std::memcpy(c.tag, t, sizeof t);
  std::vector<uint8_t> want = struct_bytes(c);
  want.insert(want.end(), body.begin(), body.end());
  if (want != pkt)
    fail("the wire.h structs and build_control_packet lay the packet out differently");
  return {{"body", hex(body)},
          {"mac_input", hex(mi)},
          {"siphash", hexnum(tag, 16)},
          {"tag", hex(t)},
          {"packet", hex(pkt)}};
}

// ---- the registry ------------------------------------------------------------

const std::vector<VectorDef> kDefs = {
    {"data-mac", kWireFormatDoc, data_mac_inputs, compute_data_mac},
    {"data-header", kWireFormatDoc, data_header_inputs, compute_data_header},
    {"message-geometry", kWireFormatDoc, geometry_inputs, compute_geometry},
    {"data-packet", kWireFormatDoc, data_packet_inputs, compute_data_packet},
    {"data-packet-empty", kWireFormatDoc, data_packet_empty_inputs, compute_data_packet},
    {"tso-segment", kWireFormatDoc, tso_inputs, compute_tso},
    {"control-grant", kWireFormatDoc, control_grant_inputs, compute_control},
    {"control-resend", kWireFormatDoc, control_resend_inputs, compute_control},
    {"control-rpc-unknown", kWireFormatDoc, control_unknown_inputs, compute_control},
    {"control-busy", kWireFormatDoc, control_busy_inputs, compute_control},
    {"control-need-ack", kWireFormatDoc, control_need_ack_inputs, compute_control},
    {"control-ack", kWireFormatDoc, control_ack_inputs, compute_control},
    {"session-secrets-aes128", kKeyScheduleDoc, session_aes128_inputs, compute_session_secrets},
    {"hkdf-expand-label", kKeyScheduleDoc, hkdf_inputs, compute_hkdf},
    {"epochs-initiator-aes128", kKeyScheduleDoc, epochs_i_aes128_inputs, compute_epochs},
    {"epochs-responder-aes128", kKeyScheduleDoc, epochs_r_aes128_inputs, compute_epochs},
    {"session-secrets-aes256", kKeyScheduleDoc, session_aes256_inputs, compute_session_secrets},
    {"epochs-initiator-aes256", kKeyScheduleDoc, epochs_i_aes256_inputs, compute_epochs},
    {"usage-limits", kKeyScheduleDoc, usage_inputs, compute_usage},
};

}  // namespace

const std::vector<VectorDef>& vector_defs() { return kDefs; }

const VectorDef* find_vector_def(std::string_view name) {
  for (const auto& d : kDefs) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

Result<VectorBlock> generate_vector(const VectorDef& def) {
  try {
    VectorBlock b;
    b.name = std::string(def.name);
    b.fields = def.default_inputs();
    Fields out = def.compute(b.fields);
    b.fields.insert(b.fields.end(), out.begin(), out.end());
    return b;
  } catch (const VectorError& e) {
    return make_error(EINVAL, std::string(def.name) + ": " + e.what());
  }
}

Result<VectorBlock> recompute_vector(const VectorBlock& documented) {
  const VectorDef* def = find_vector_def(documented.name);
  if (def == nullptr) return make_error(ENOENT, "unknown vector name '" + documented.name + "'");
  try {
    VectorBlock b;
    b.name = documented.name;
    b.line = documented.line;
    for (const auto& [k, v] : def->default_inputs()) {
      const std::string* doc_value = documented.find(k);
      if (doc_value == nullptr) fail("input '" + k + "' is missing");
      b.fields.emplace_back(k, *doc_value);
    }
    Fields out = def->compute(b.fields);
    b.fields.insert(b.fields.end(), out.begin(), out.end());
    return b;
  } catch (const VectorError& e) {
    return make_error(EINVAL, documented.name + ": " + e.what());
  }
}

std::vector<std::string> compare_vector(const VectorBlock& documented,
                                        const VectorBlock& computed) {
  std::vector<std::string> diffs;
  for (const auto& [k, v] : computed.fields) {
    const std::string* d = documented.find(k);
    if (d == nullptr) {
      diffs.push_back("'" + k + "' is missing (expected " + v + ")");
    } else if (*d != v) {
      diffs.push_back("'" + k + "' is " + *d + ", the code computes " + v);
    }
  }
  for (const auto& [k, v] : documented.fields) {
    if (computed.find(k) == nullptr) diffs.push_back("'" + k + "' is no field of this vector");
  }
  return diffs;
}

std::vector<std::string> check_vector_blocks(std::string_view markdown, std::string_view doc) {
  std::vector<std::string> problems;
  auto blocks = parse_vector_blocks(markdown);
  if (!blocks.ok()) return {blocks.error().message};
  std::set<std::string> seen;
  for (const auto& b : *blocks) {
    const std::string where = "vector '" + b.name + "' (line " + std::to_string(b.line) + "): ";
    const VectorDef* def = find_vector_def(b.name);
    if (def == nullptr) {
      problems.push_back(where + "unknown vector name");
      continue;
    }
    if (def->doc != doc)
      problems.push_back(where + "belongs in docs/" + std::string(def->doc) + ".md");
    if (!seen.insert(b.name).second) problems.push_back(where + "documented twice");
    auto computed = recompute_vector(b);
    if (!computed.ok()) {
      problems.push_back(where + computed.error().message);
      continue;
    }
    for (auto& d : compare_vector(b, *computed)) problems.push_back(where + d);
  }
  for (const auto& d : kDefs) {
    if (d.doc == doc && seen.count(std::string(d.name)) == 0) {
      problems.push_back("vector '" + std::string(d.name) + "' is missing from docs/" +
                         std::string(doc) + ".md");
    }
  }
  return problems;
}

Result<std::vector<std::vector<uint8_t>>> tso_vector_packets(const Fields& inputs) {
  try {
    Inputs in(inputs);
    return tso_compute(in).packets;
  } catch (const VectorError& e) {
    return make_error(EINVAL, std::string("tso-segment: ") + e.what());
  }
}

}  // namespace smt::vectors
