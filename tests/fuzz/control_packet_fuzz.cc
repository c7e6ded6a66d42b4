// libFuzzer harness for the control receive path: parse_control_packet,
// verify_control_tag and the ControlWindow, as the engine runs them. The input
// is a sequence of packets, each `u8 flags, u8 length, bytes`; flags bit 0
// re-tags a packet that parses with k_ctl (an attacker who read the key), so
// mutated fields reach the window instead of dying at the tag. Invariants
// (a violation aborts):
//   - a drop is one of the envelope reasons, never another;
//   - a packet that parses re-encodes to the same bytes, except checksum and
//     urgent (ignored) and the tag: one encoding per packet, so the MAC input
//     rebuilt from the fields is the wire body;
//   - verify_control_tag agrees with a plain comparison against control_tag;
//   - the window never accepts the same control_seq twice, nor 0.
#include "control_packet_fuzz.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "smt/siphash.h"
#include "transport/replay_window.h"
#include "wire/control_packet.h"

namespace smt::fuzz {
namespace {

constexpr uint8_t kCtlKey[16] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 10, 11, 12, 13, 14, 15};

}  // namespace

std::vector<std::vector<uint8_t>> valid_control_packets() {
  std::vector<ControlPacket> ps(6);
  for (auto& p : ps) {
    p.sport = 5000;
    p.dport = 40000;
    p.message_id = 0x2a;
  }
  ps[0].type = SMT_TYPE_GRANT;
  ps[0].grant_offset = 30000;
  ps[0].priority = 3;
  ps[0].window_base = 0x28;
  ps[1].type = SMT_TYPE_RESEND;
  ps[1].resend_offset = 1390;
  ps[1].resend_length = 1390;
  ps[1].priority = 7;
  ps[2].type = SMT_TYPE_RPC_UNKNOWN;
  ps[2].unknown_flags = SMT_UNKNOWN_F_DELIVERED;
  ps[3].type = SMT_TYPE_BUSY;
  ps[4].type = SMT_TYPE_NEED_ACK;
  ps[4].message_id = 0x2b;
  ps[5].type = SMT_TYPE_ACK;
  ps[5].message_id = 0;
  ps[5].window_base = 0x2c;
  ps[5].acked_ids[0] = 0x2b;
  ps[5].acked_ids[1] = 0x27;
  std::vector<std::vector<uint8_t>> out;
  uint64_t seq = 1;
  for (auto& p : ps) {
    p.control_seq = seq++;
    std::vector<uint8_t> b(kCtlPacketMax);
    const size_t n = build_control_packet(b.data(), p, kCtlKey);
    if (n == 0) std::abort();
    b.resize(n);
    out.push_back(b);
  }
  return out;
}

std::vector<uint8_t> encode_control(const std::vector<std::vector<uint8_t>>& pkts, uint8_t flags) {
  std::vector<uint8_t> out;
  for (const auto& p : pkts) {
    out.push_back(flags);
    out.push_back(static_cast<uint8_t>(p.size()));
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

size_t run_control(const uint8_t* in, size_t n) {
  ControlWindow window;
  std::set<uint64_t> accepted;
  std::vector<uint8_t> pkt;
  size_t pos = 0;
  while (pos + 2 <= n) {
    const uint8_t flags = in[pos];
    const size_t len = in[pos + 1];
    pos += 2;
    if (len > n - pos) break;
    pkt.assign(in + pos, in + pos + len);
    pos += len;
    ControlPacket p;
    DropReason why = DropReason::kCount;
    if (!parse_control_packet(pkt, &p, &why)) {
      if (why != DropReason::kTruncated && why != DropReason::kBadVersion &&
          why != DropReason::kBadType && why != DropReason::kBadHeader) {
        std::abort();
      }
      continue;
    }
    if ((flags & 1) != 0) smt_siphash_store_tag(pkt.data() + 36, control_tag(p, kCtlKey));
    uint8_t again[kCtlPacketMax];
    const size_t m = build_control_packet(again, p, kCtlKey);
    if (m != pkt.size() || std::memcmp(again, pkt.data(), 16) != 0 ||
        std::memcmp(again + 20, pkt.data() + 20, 16) != 0 ||
        std::memcmp(again + 44, pkt.data() + 44, m - 44) != 0) {
      std::abort();  // a second encoding of the same fields
    }
    uint8_t want[8];
    smt_siphash_store_tag(want, control_tag(p, kCtlKey));
    const bool tag_ok = std::memcmp(want, pkt.data() + 36, 8) == 0;
    if (verify_control_tag(pkt, p, kCtlKey) != tag_ok) std::abort();
    if (!tag_ok) continue;
    if (window.accept(p.control_seq)) {
      if (p.control_seq == 0 || !accepted.insert(p.control_seq).second) std::abort();
    }
  }
  return accepted.size();
}

}  // namespace smt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* in, size_t n) {
  (void)smt::fuzz::run_control(in, n);
  return 0;
}

#ifdef SMT_FUZZ_SEED_MAIN
// Writes the seed corpus: one file per valid packet, and one with them all
// (twice, so the window sees replays).
int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  auto write = [&](const std::string& name, const std::vector<uint8_t>& b) {
    FILE* f = std::fopen((std::string(argv[1]) + "/" + name).c_str(), "wb");
    if (f == nullptr) return false;
    const bool ok = std::fwrite(b.data(), 1, b.size(), f) == b.size();
    return std::fclose(f) == 0 && ok;
  };
  auto pkts = smt::fuzz::valid_control_packets();
  int i = 0;
  for (const auto& p : pkts) {
    if (!write("control-" + std::to_string(i++), smt::fuzz::encode_control({p}, 0))) return 1;
  }
  auto twice = pkts;
  twice.insert(twice.end(), pkts.begin(), pkts.end());
  return write("control-all", smt::fuzz::encode_control(twice, 0)) ? 0 : 1;
}
#endif
