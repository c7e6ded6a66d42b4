// docs/wire-format.md and docs/key-schedule.md are normative: their offset
// tables must match include/smt/wire.h, and every worked vector must be what
// the project's code computes (and what an independent implementation
// computes where one is at hand: OpenSSL's raw AEAD, the openssl CLI).
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "record/data_receiver.h"
#include "record/key_schedule.h"
#include "record/record_cipher.h"
#include "spec_vectors.h"
#include "struct_tables.h"
#include "support/test_support.h"
#include "wire/drop_reason.h"

namespace smt {
namespace {

using spec::check_struct_tables;
using spec::split_lines;
using spec::table_cells;
using test::hex;
using test::unhex;
using vectors::check_vector_blocks;
using vectors::VectorBlock;

std::string source_dir() {
  const char* env = std::getenv("SMT_SOURCE_DIR");
  if (env != nullptr && *env != '\0') return env;
  return SMT_SPEC_SOURCE_DIR;  // when run outside ctest
}

std::string read_doc(const std::string& name) {
  const std::string path = source_dir() + "/docs/" + name;
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "cannot read " << path;
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string wire_doc() { return read_doc("wire-format.md"); }
std::string key_doc() { return read_doc("key-schedule.md"); }

std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += "  " + l + "\n";
  return s;
}

// The documented block called `name`, parsed.
VectorBlock doc_vector(const std::string& markdown, const std::string& name) {
  auto blocks = vectors::parse_vector_blocks(markdown);
  EXPECT_TRUE(blocks.ok()) << blocks.error().message;
  if (blocks.ok()) {
    for (const auto& b : *blocks) {
      if (b.name == name) return b;
    }
  }
  ADD_FAILURE() << "no vector '" << name << "' in the doc";
  return {};
}

std::string field(const VectorBlock& b, const std::string& key) {
  const std::string* v = b.find(key);
  EXPECT_NE(v, nullptr) << b.name << " has no '" << key << "'";
  return v == nullptr ? std::string() : *v;
}

// Rewrites cell `cell` of the first table row after `marker` whose Field
// cell is `field_name`.
std::string mutate_row(const std::string& doc, const std::string& marker,
                       const std::string& field_name, size_t cell, const std::string& value) {
  auto lines = split_lines(doc);
  std::string out;
  bool after = false, done = false;
  for (auto l : lines) {
    std::string line(l);
    if (line.find(marker) != std::string::npos) after = true;
    auto cells = table_cells(line);
    if (after && !done && cells.size() == 4 && cells[2] == field_name) {
      cells[cell] = value;
      line = "| " + cells[0] + " | " + cells[1] + " | " + cells[2] + " | " + cells[3] + " |";
      done = true;
    }
    out += line + "\n";
  }
  EXPECT_TRUE(done) << "no row " << field_name << " after " << marker;
  return out;
}

std::string without_lines_containing(const std::string& doc, const std::string& needle,
                                     bool only_first) {
  std::string out;
  bool removed = false;
  for (auto l : split_lines(doc)) {
    if (l.find(needle) != std::string_view::npos && !(only_first && removed)) {
      removed = true;
      continue;
    }
    out += std::string(l) + "\n";
  }
  EXPECT_TRUE(removed) << needle;
  return out;
}

// ---- offset tables ----------------------------------------------------------

TEST(WireFormatDoc, WireFormatTablesMatchSharedHeader) {
  const auto problems = check_struct_tables(wire_doc());
  EXPECT_TRUE(problems.empty()) << "docs/wire-format.md disagrees with include/smt/wire.h:\n"
                                << join(problems);
}

TEST(WireFormatDoc, FieldTableCoversEverySharedHeaderByte) {
  // The C++ table the doc is checked against must itself list every field:
  // its fields tile [0, sizeof) in order, so a field added to wire.h and not
  // here leaves a gap or changes the size.
  for (const auto& s : spec::wire_structs()) {
    size_t next = 0;
    for (const auto& f : s.fields) {
      EXPECT_EQ(f.offset, next) << s.name << "." << f.name << " leaves a gap or overlaps";
      next = f.offset + f.size;
    }
    EXPECT_EQ(next, s.size) << s.name << ": fields do not reach sizeof";
  }
}

TEST(WireFormatDoc, TableCheckerRejectsWrongOffsetSizeUnknownFieldAndOmissions) {
  const std::string doc = wire_doc();
  ASSERT_TRUE(check_struct_tables(doc).empty());
  EXPECT_FALSE(
      check_struct_tables(mutate_row(doc, "<!-- struct: smt_data_hdr -->", "tag", 0, "45")).empty())
      << "a wrong offset passed";
  EXPECT_FALSE(
      check_struct_tables(mutate_row(doc, "<!-- struct: smt_common_hdr -->", "message_id", 1, "6"))
          .empty())
      << "a wrong size passed";
  EXPECT_FALSE(check_struct_tables(
                   mutate_row(doc, "<!-- struct: smt_ctl_hdr -->", "control_seq", 2, "ctl_seq"))
                   .empty())
      << "an unknown field passed";
  // A row left out: drop the first row naming `epoch` after the DATA marker.
  const std::string marker = "<!-- struct: smt_data_hdr -->";
  const size_t at = doc.find(marker);
  ASSERT_NE(at, std::string::npos);
  const size_t row = doc.find("| epoch |", at);
  ASSERT_NE(row, std::string::npos);
  const size_t row_end = doc.find('\n', row);
  const size_t row_begin = doc.rfind('\n', row) + 1;
  std::string no_row = doc;
  no_row.erase(row_begin, row_end + 1 - row_begin);
  EXPECT_FALSE(check_struct_tables(no_row).empty()) << "a left-out field passed";
  EXPECT_FALSE(check_struct_tables(
                   without_lines_containing(doc, "<!-- struct: smt_port_lease_value -->", true))
                   .empty())
      << "a missing table passed";
}

TEST(WireFormatDoc, DropReasonTableListsEveryReason) {
  const std::string doc = wire_doc();
  const auto lines = split_lines(doc);
  auto it = std::find_if(lines.begin(), lines.end(),
                         [](std::string_view l) { return l.find("<!-- drop-reasons -->") == 0; });
  ASSERT_NE(it, lines.end()) << "docs/wire-format.md has no <!-- drop-reasons --> table";
  std::set<std::string> documented;
  for (++it; it != lines.end(); ++it) {
    auto cells = table_cells(*it);
    if (cells.empty()) {
      if (documented.empty() && it->empty()) continue;
      break;
    }
    if (cells[0] == "Reason" || cells[0].find_first_not_of("-: ") == std::string::npos) continue;
    documented.insert(cells[0]);
  }
  std::set<std::string> code;
  for (int r = 0; r < static_cast<int>(DropReason::kCount); ++r) {
    code.insert(drop_reason_name(static_cast<DropReason>(r)));
  }
  EXPECT_EQ(documented, code) << "the drop reason table must list user/wire/drop_reason.h exactly";
}

// ---- worked vectors -----------------------------------------------------------

TEST(SpecVectors, DocumentedVectorsMatchCode) {
  const auto wire = check_vector_blocks(wire_doc(), vectors::kWireFormatDoc);
  EXPECT_TRUE(wire.empty()) << "docs/wire-format.md:\n" << join(wire);
  const auto keys = check_vector_blocks(key_doc(), vectors::kKeyScheduleDoc);
  EXPECT_TRUE(keys.empty()) << "docs/key-schedule.md:\n" << join(keys);
}

TEST(SpecVectors, DocsShowExactlyWhatSmtVectorsPrints) {
  // The docs are generated from code: every block is smt-vectors' output
  // (`smt-vectors --update docs/<doc>.md` regenerates them).
  const std::string wire = wire_doc(), keys = key_doc();
  for (const auto& def : vectors::vector_defs()) {
    auto b = vectors::generate_vector(def);
    ASSERT_TRUE(b.ok()) << b.error().message;
    const std::string& doc = def.doc == vectors::kWireFormatDoc ? wire : keys;
    EXPECT_NE(doc.find(vectors::format_vector_block(*b)), std::string::npos)
        << def.name << " differs from smt-vectors' output; run smt-vectors --update";
  }
}

TEST(SpecVectors, VectorCheckerRejectsChangedOutputUnknownNameAndOmission) {
  const std::string doc = wire_doc();
  ASSERT_TRUE(check_vector_blocks(doc, vectors::kWireFormatDoc).empty());
  // One hex digit of the DATA header changed.
  const VectorBlock b = doc_vector(doc, "data-header");
  std::string header = field(b, "header");
  ASSERT_FALSE(header.empty());
  std::string changed = header;
  changed[30] = changed[30] == '0' ? '1' : '0';
  std::string bad = doc;
  bad.replace(bad.find("header: " + header), 8 + header.size(), "header: " + changed);
  EXPECT_FALSE(check_vector_blocks(bad, vectors::kWireFormatDoc).empty())
      << "a changed output passed";
  // An input changed without updating the outputs.
  bad = doc;
  bad.replace(bad.find("seg_pos: 1428"), 13, "seg_pos: 1429");
  EXPECT_FALSE(check_vector_blocks(bad, vectors::kWireFormatDoc).empty())
      << "a changed input passed";
  // An unknown name, and thereby a missing vector.
  bad = doc;
  bad.replace(bad.find("name: data-header"), 17, "name: data-headr");
  EXPECT_FALSE(check_vector_blocks(bad, vectors::kWireFormatDoc).empty())
      << "an unknown name passed";
  // A key-schedule vector in the wrong doc.
  EXPECT_FALSE(
      check_vector_blocks(doc + "\n```vector\nname: usage-limits\n```\n", vectors::kWireFormatDoc)
          .empty());
}

TEST(SpecVectors, DocumentedNonceAndAadSealTheDocumentedRecord) {
  // Independent of RecordCipher: raw OpenSSL AES-128-GCM with the documented
  // key, nonce (IV xor seq), AAD (record header) and inner plaintext.
  for (const char* name : {"data-packet", "data-packet-empty"}) {
    const VectorBlock b = doc_vector(wire_doc(), name);
    ASSERT_EQ(field(b, "suite"), "TLS_AES_128_GCM_SHA256");
    const auto key = unhex(field(b, "key")), nonce = unhex(field(b, "nonce"));
    const auto aad = unhex(field(b, "aad")), pt = unhex(field(b, "inner_plaintext"));
    // nonce = iv xor (message_id << 16 | 0), seq left-padded to 12 bytes.
    auto iv = unhex(field(b, "iv"));
    const uint64_t seq = std::stoull(field(b, "seq"), nullptr, 16);
    for (int i = 0; i < 8; ++i) iv[11 - i] ^= static_cast<uint8_t>(seq >> (8 * i));
    EXPECT_EQ(hex(iv), field(b, "nonce")) << name;
    EXPECT_EQ(seq, std::stoull(field(b, "message_id"), nullptr, 16) << 16) << name;
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                        &EVP_CIPHER_CTX_free);
    std::vector<uint8_t> ct(pt.size() + 16);
    int n = 0, m = 0;
    ASSERT_EQ(EVP_EncryptInit_ex(ctx.get(), EVP_aes_128_gcm(), nullptr, key.data(), nonce.data()),
              1);
    ASSERT_EQ(EVP_EncryptUpdate(ctx.get(), nullptr, &n, aad.data(), static_cast<int>(aad.size())),
              1);
    ASSERT_EQ(EVP_EncryptUpdate(ctx.get(), ct.data(), &n, pt.data(), static_cast<int>(pt.size())),
              1);
    ASSERT_EQ(EVP_EncryptFinal_ex(ctx.get(), ct.data() + n, &m), 1);
    ASSERT_EQ(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, ct.data() + pt.size()), 1);
    std::vector<uint8_t> rec = aad;
    rec.insert(rec.end(), ct.begin(), ct.end());
    EXPECT_EQ(hex(rec), field(b, "record")) << name;
    EXPECT_EQ(field(b, "packet"), field(b, "header") + field(b, "record")) << name;
  }
}

// A receiver keyed from a data-packet vector (opening key, peer's k_ctl).
std::unique_ptr<DataReceiver> receiver_for(const VectorBlock& b) {
  auto ctl = unhex(field(b, "ctl_key"));
  EXPECT_EQ(ctl.size(), 16u);
  ctl.resize(16);
  auto r = std::make_unique<DataReceiver>(std::span<const uint8_t, 16>(ctl.data(), 16),
                                          DataReceiver::Config{});
  TrafficKeys k;
  k.key = SecretBytes(unhex(field(b, "key")));
  auto iv = unhex(field(b, "iv"));
  std::copy(iv.begin(), iv.end(), k.iv.begin());
  auto opener = RecordCipher::create(Suite::kAes128GcmSha256, k, CipherDirection::kOpen);
  EXPECT_TRUE(opener.ok());
  auto st = r->set_epoch_key(static_cast<uint16_t>(std::stoul(field(b, "epoch"))),
                             std::move(opener).value());
  EXPECT_TRUE(st.ok()) << st.error().message;
  return r;
}

TEST(SpecVectors, DocumentedPacketsAreDeliveredByTheReceiver) {
  const std::string doc = wire_doc();
  for (const char* name : {"data-packet", "data-packet-empty"}) {
    const VectorBlock b = doc_vector(doc, name);
    auto r = receiver_for(b);
    auto pkt = unhex(field(b, "packet"));
    RxResult res = r->on_packet(pkt);
    EXPECT_TRUE(res.accepted && res.completed) << name;
    auto d = r->take_delivered();
    ASSERT_TRUE(d.has_value()) << name;
    EXPECT_EQ(hex(d->data), field(b, "data")) << name;
  }
  // The TSO example: the emulator's packets carry the documented headers and
  // reassemble in any order (here: last first).
  const VectorBlock tso = doc_vector(doc, "tso-segment");
  vectors::Fields inputs;
  for (const auto& def_input : vectors::find_vector_def("tso-segment")->default_inputs()) {
    inputs.emplace_back(def_input.first, field(tso, def_input.first));
  }
  auto pkts = vectors::tso_vector_packets(inputs);
  ASSERT_TRUE(pkts.ok()) << pkts.error().message;
  ASSERT_EQ(std::to_string(pkts->size()), field(tso, "packets"));
  for (size_t i = 0; i < pkts->size(); ++i) {
    EXPECT_EQ(hex((*pkts)[i].data(), 52), field(tso, "packet_" + std::to_string(i) + "_header"));
  }
  VectorBlock keyed = doc_vector(doc, "data-packet");  // same secret and k_ctl as tso-segment
  ASSERT_EQ(field(keyed, "traffic_secret"), field(tso, "traffic_secret"));
  auto r = receiver_for(keyed);
  for (auto it = pkts->rbegin(); it != pkts->rend(); ++it) (void)r->on_packet(*it);
  auto d = r->take_delivered();
  ASSERT_TRUE(d.has_value());
  ASSERT_EQ(std::to_string(d->data.size()), field(tso, "data_len"));
  for (size_t i = 0; i < d->data.size(); ++i) ASSERT_EQ(d->data[i], static_cast<uint8_t>(i));
}

bool have_openssl_cli() {
  return test::run_command("openssl version >/dev/null 2>&1", nullptr) == 0;
}

TEST(SpecVectors, DocumentedOpensslCommandReproducesItsVector) {
  const std::string doc = key_doc();
  const VectorBlock b = doc_vector(doc, "hkdf-expand-label");
  // The command shown in prose (a ```sh block) is the vector's, verbatim.
  std::string shown;
  for (auto l : split_lines(doc)) {
    if (l.rfind("openssl kdf ", 0) == 0) shown = std::string(l);
  }
  ASSERT_FALSE(shown.empty()) << "docs/key-schedule.md shows no `openssl kdf` command";
  EXPECT_EQ(shown, field(b, "openssl"));
  SMT_REQUIRE_OR_SKIP(have_openssl_cli(), "the openssl command line is not installed");
  std::string out;
  ASSERT_EQ(test::run_command(shown, &out), 0) << shown;
  std::string got;
  for (char c : out) {
    if (std::isxdigit(static_cast<unsigned char>(c)))
      got.push_back(static_cast<char>(std::tolower(c)));
  }
  EXPECT_EQ(got, field(b, "output"));
  // ...and it is k_ctl_i of the documented session.
  EXPECT_EQ(got, field(doc_vector(doc, "session-secrets-aes128"), "k_ctl_i"));
}

TEST(SpecVectors, DataPacketUsesTheDocumentedInitiatorKeys) {
  // The initiator seals with secret_i and tags with k_ctl_i.
  const VectorBlock s = doc_vector(key_doc(), "session-secrets-aes128");
  const VectorBlock e = doc_vector(key_doc(), "epochs-initiator-aes128");
  const VectorBlock p = doc_vector(wire_doc(), "data-packet");
  EXPECT_EQ(field(p, "traffic_secret"), field(s, "secret_i_0"));
  EXPECT_EQ(field(e, "secret_0"), field(s, "secret_i_0"));
  EXPECT_EQ(field(p, "ctl_key"), field(s, "k_ctl_i"));
  EXPECT_EQ(field(p, "key"), field(e, "epoch_0_key"));
  EXPECT_EQ(field(p, "iv"), field(e, "epoch_0_iv"));
}

// ---- the block format ----------------------------------------------------------

TEST(VectorBlockFormat, MalformedBlocksAreErrors) {
  for (const char* text : {"```vector\nname: x\nkey: v\n",           // not closed
                           "```vector\nkey: v\n```\n",               // no name first
                           "```vector\nname: x\nk: 1\nk: 2\n```\n",  // duplicate key
                           "```vector\nname: x\nBad-Key: 1\n```\n",  // bad key
                           "```vector\nname: x\nno colon\n```\n",    // no key
                           "```vector\n```\n"}) {
    EXPECT_FALSE(vectors::parse_vector_blocks(text).ok()) << text;
  }
  auto ok = vectors::parse_vector_blocks("text\n```vector\nname: x\nempty:\nk: v w\n```\nmore\n");
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(ok->size(), 1u);
  EXPECT_EQ((*ok)[0].fields, (vectors::Fields{{"empty", ""}, {"k", "v w"}}));
  EXPECT_EQ(vectors::format_vector_block((*ok)[0]), "```vector\nname: x\nempty:\nk: v w\n```\n");
}

}  // namespace
}  // namespace smt
