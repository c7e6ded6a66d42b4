// Runs the DATA fuzz harness without libFuzzer, so every build exercises it:
// the valid corpus delivers, and seeded mutations of it (with and without a
// re-computed header tag) never crash and never deliver other bytes (the
// harness aborts if they do).
#include <gtest/gtest.h>

#include <random>

#include "data_packet_fuzz.h"
#include "record/data_receiver.h"

namespace smt::fuzz {
namespace {

TEST(DataPacketFuzz, CorpusMessageIsComplete) {
  auto pkts = valid_packets();
  EXPECT_EQ(pkts.size(), 3u + 3 + 3 + 2) << "three records, each also as 400-byte TSO slices";
  auto in = encode(pkts, 0);
  EXPECT_EQ(run(in.data(), in.size()), 1u);
}

TEST(DataPacketFuzz, TwentyThousandMutationsNeverDeliverOtherBytes) {
  const auto base = encode(valid_packets(), 0);
  std::mt19937 rng(2026);
  for (int iter = 0; iter < 20000; ++iter) {
    auto in = base;
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % in.size();
      switch (rng() % 4) {
        case 0:
          in[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        case 1:
          in[at] = static_cast<uint8_t>(rng());
          break;
        case 2:
          in.erase(in.begin() + static_cast<long>(at));
          break;
        default: {  // duplicate a run, as a network might
          size_t len = std::min<size_t>(rng() % 200, in.size() - at);
          std::vector<uint8_t> run(in.begin() + static_cast<long>(at),
                                   in.begin() + static_cast<long>(at + len));
          in.insert(in.begin() + static_cast<long>(rng() % in.size()), run.begin(), run.end());
        }
      }
      if (in.empty()) break;
    }
    // Half the inputs re-tag every header (the attacker holds k_ctl).
    if (iter % 2 == 1) {
      for (size_t pos = 0; pos + 3 <= in.size();) {
        in[pos] |= 1;
        pos += 3 + (size_t{in[pos + 1]} << 8 | in[pos + 2]);
      }
    }
    ASSERT_LE(run(in.data(), in.size()), 1u);
  }
}

}  // namespace
}  // namespace smt::fuzz
