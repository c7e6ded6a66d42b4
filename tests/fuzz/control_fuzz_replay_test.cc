// Runs the control-packet fuzz harness without libFuzzer, so every build
// exercises it: the valid corpus is accepted once per packet, and seeded
// mutations of it (with and without a re-computed tag) never break the
// harness's invariants (it aborts if they do).
#include <gtest/gtest.h>

#include <random>

#include "control_packet_fuzz.h"

namespace smt::fuzz {
namespace {

TEST(ControlPacketFuzz, CorpusIsAcceptedOncePerPacket) {
  auto pkts = valid_control_packets();
  ASSERT_EQ(pkts.size(), 6u) << "one packet per control type";
  auto twice = pkts;
  twice.insert(twice.end(), pkts.begin(), pkts.end());
  auto in = encode_control(twice, 0);
  EXPECT_EQ(run_control(in.data(), in.size()), 6u) << "the replays are refused";
}

TEST(ControlPacketFuzz, TamperedTagsAreNeverAccepted) {
  auto pkts = valid_control_packets();
  for (auto& p : pkts) p[36] ^= 1;
  auto in = encode_control(pkts, 0);
  EXPECT_EQ(run_control(in.data(), in.size()), 0u);
}

TEST(ControlPacketFuzz, FiftyThousandMutationsKeepTheInvariants) {
  const auto base = encode_control(valid_control_packets(), 0);
  std::mt19937 rng(2027);
  for (int iter = 0; iter < 50000; ++iter) {
    auto in = base;
    const int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits && !in.empty(); ++e) {
      const size_t at = rng() % in.size();
      switch (rng() % 3) {
        case 0:
          in[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        case 1:
          in[at] = static_cast<uint8_t>(rng());
          break;
        default:
          in.erase(in.begin() + static_cast<long>(at));
      }
    }
    // Half the inputs re-tag every packet (the attacker holds k_ctl).
    if (iter % 2 == 1) {
      for (size_t pos = 0; pos + 2 <= in.size(); pos += 2 + in[pos + 1]) in[pos] |= 1;
    }
    ASSERT_LE(run_control(in.data(), in.size()), 6u + 6u);
  }
}

}  // namespace
}  // namespace smt::fuzz
