// libFuzzer harness for the DATA receive path (s2n-style: one harness per
// received message type). The input is a sequence of packets, each
// `u8 flags, u16 length, bytes`; flags bit 0 re-tags the header with k_ctl,
// as an attacker who read the key out of a BPF map could, so mutated headers
// reach the record and tiling checks instead of dying at the tag. Packets of
// one valid message (tools: --seed) make the corpus, so real records are there
// to reorder, duplicate and relabel. Any crash, leak or sanitizer report is a
// bug; so is a delivered message that is not the sealed one.
#include "data_packet_fuzz.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/bytes.h"
#include "record/data_receiver.h"
#include "record/sealed_message.h"
#include "smt/siphash.h"
#include "wire/data_packet.h"

namespace smt::fuzz {

constexpr uint8_t kCtlKey[16] = {7, 6, 5, 4, 3, 2, 1, 0, 8, 9, 10, 11, 12, 13, 14, 15};
constexpr uint64_t kMessageId = 40;

std::vector<uint8_t> secret() { return std::vector<uint8_t>(32, 0x33); }

std::vector<uint8_t> message() {
  std::vector<uint8_t> m(2500);
  for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<uint8_t>(i * 7);
  return m;
}

RecordCipher cipher(CipherDirection dir) {
  auto keys = derive_traffic_keys(Suite::kAes128GcmSha256, secret());
  auto c = RecordCipher::create(Suite::kAes128GcmSha256, *keys, dir);
  if (!c.ok()) std::abort();
  return std::move(c).value();
}

std::vector<std::vector<uint8_t>> valid_packets() {
  static const std::vector<uint8_t> data = message();
  RecordCipher s = cipher(CipherDirection::kSeal);
  s.set_nonce_oracle(nullptr);
  auto g = MessageGeometry::make(static_cast<uint32_t>(data.size()), 2560, 1000);
  auto m = SealedMessage::create(kMessageId, data, *g);
  std::vector<std::vector<uint8_t>> out;
  std::vector<uint8_t> scratch(1500);
  for (uint32_t i = 0; i < g->records; ++i) {
    auto rec = m->record(i, s);
    const DataHeader h = record_header(*m, i, DataHeader{});
    std::vector<uint8_t> p(kDataHeaderLen + rec->size());
    build_data_packet(p.data(), h, *rec, kCtlKey);
    out.push_back(p);
    tso_segment(p, 400, scratch.data(),
                [&](std::span<const uint8_t> sl) { out.emplace_back(sl.begin(), sl.end()); });
  }
  return out;
}

std::vector<uint8_t> encode(const std::vector<std::vector<uint8_t>>& pkts, uint8_t flags) {
  std::vector<uint8_t> out;
  for (const auto& p : pkts) {
    out.push_back(flags);
    out.push_back(static_cast<uint8_t>(p.size() >> 8));
    out.push_back(static_cast<uint8_t>(p.size()));
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

}  // namespace smt::fuzz

using namespace smt;
using namespace smt::fuzz;

size_t smt::fuzz::run(const uint8_t* in, size_t n) {
  size_t delivered = 0;
  static const std::vector<uint8_t> expected = message();
  DataReceiver r(kCtlKey, DataReceiver::Config{1u << 20});
  if (!r.set_epoch_key(0, cipher(CipherDirection::kOpen)).ok()) std::abort();
  std::vector<uint8_t> pkt;
  size_t pos = 0;
  while (pos + 3 <= n) {
    const uint8_t flags = in[pos];
    const size_t len = load_be16(in + pos + 1);
    pos += 3;
    if (len > n - pos) break;
    pkt.assign(in + pos, in + pos + len);
    pos += len;
    if ((flags & 1) != 0) {
      DataHeader h;
      DropReason why;
      if (parse_data_header(pkt, &h, &why)) {
        smt_siphash_store_tag(pkt.data() + 44, data_header_tag(h, kCtlKey));
      }
    }
    (void)r.on_packet(pkt);
    while (auto d = r.take_delivered()) {
      // Only the sealed message can ever be delivered, and only whole.
      if (d->message_id != kMessageId || d->data != expected) std::abort();
      ++delivered;
    }
  }
  return delivered;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* in, size_t n) {
  (void)run(in, n);
  return 0;
}

#ifdef SMT_FUZZ_SEED_MAIN
// Writes the seed corpus: one file per valid packet, and one with them all.
int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  auto pkts = valid_packets();
  std::vector<uint8_t> all = encode(pkts, 0);
  int i = 0;
  for (const auto& p : pkts) {
    std::vector<uint8_t> one = encode({p}, 0);
    std::string path = std::string(argv[1]) + "/packet-" + std::to_string(i++);
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return 1;
    std::fwrite(one.data(), 1, one.size(), f);
    std::fclose(f);
  }
  FILE* f = std::fopen((std::string(argv[1]) + "/message").c_str(), "wb");
  if (f == nullptr) return 1;
  std::fwrite(all.data(), 1, all.size(), f);
  std::fclose(f);
  return 0;
}
#endif
