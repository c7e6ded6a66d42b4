// include/smt/siphash.h compiled for BPF (bpf/siphash_test.bpf.c) passes the
// verifier and computes SipHash-2-4: the reference vectors and random inputs,
// run through BPF_PROG_TEST_RUN.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>

#include "siphash_test.skel.h"
#include "siphash_test_layout.h"
#include "support/siphash_vectors.h"
#include "smt/siphash.h"
#include "support/test_support.h"

namespace {

using Packet = std::array<uint8_t, SMT_SIPHASH_TEST_PKT_LEN>;

struct SkelDeleter {
  void operator()(siphash_test_bpf* s) const { siphash_test_bpf__destroy(s); }
};

struct RunResult {
  int err = 0;
  uint32_t retval = 0;
  Packet out{};
  uint32_t out_len = 0;
};

uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

Packet make_packet(const uint8_t* key, const uint8_t* msg, uint8_t n) {
  Packet p{};
  std::memcpy(p.data() + SMT_SIPHASH_TEST_KEY_OFF, key, SMT_SIPHASH_KEY_LEN);
  p[SMT_SIPHASH_TEST_LEN_OFF] = n;
  size_t copy = n <= SMT_SIPHASH_TEST_MSG_MAX ? n : SMT_SIPHASH_TEST_MSG_MAX;
  if (copy > 0) std::memcpy(p.data() + SMT_SIPHASH_TEST_MSG_OFF, msg, copy);
  return p;
}

class SipHashInBpfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SMT_REQUIRE_OR_SKIP(geteuid() == 0, "loading a BPF program needs root (CAP_BPF)");
    // libbpf's default logging stays on here: a verifier rejection prints
    // the verifier's log, which is what one needs to fix it.
    skel_.reset(siphash_test_bpf__open_and_load());
    ASSERT_NE(skel_, nullptr) << "siphash_test.bpf.o failed to load (verifier log above): "
                              << std::strerror(errno);
    prog_fd_ = bpf_program__fd(skel_->progs.siphash_test);
    ASSERT_GE(prog_fd_, 0);
  }

  RunResult run(const uint8_t* data, uint32_t len) {
    RunResult r;
    struct bpf_test_run_opts opts;
    std::memset(&opts, 0, sizeof opts);
    opts.sz = sizeof opts;  // LIBBPF_OPTS does not compile as C++ in libbpf 1.1
    opts.data_in = data;
    opts.data_size_in = len;
    opts.data_out = r.out.data();
    opts.data_size_out = r.out.size();
    opts.repeat = 1;
    r.err = bpf_prog_test_run_opts(prog_fd_, &opts);
    if (r.err != 0) r.err = errno;
    r.retval = opts.retval;
    r.out_len = opts.data_size_out;
    return r;
  }

  RunResult run(const Packet& p) { return run(p.data(), p.size()); }

  std::unique_ptr<siphash_test_bpf, SkelDeleter> skel_;
  int prog_fd_ = -1;
};

TEST_F(SipHashInBpfTest, ReferenceVectorsMatchInsideBpf) {
  uint8_t key[SMT_SIPHASH_KEY_LEN];
  uint8_t msg[smt::test::kSipHashVectorCount];
  for (size_t i = 0; i < sizeof key; ++i) key[i] = static_cast<uint8_t>(i);
  for (size_t i = 0; i < sizeof msg; ++i) msg[i] = static_cast<uint8_t>(i);
  static_assert(smt::test::kSipHashVectorCount == SMT_SIPHASH_TEST_MSG_MAX + 1);

  for (size_t n = 0; n < smt::test::kSipHashVectorCount; ++n) {
    RunResult r = run(make_packet(key, msg, static_cast<uint8_t>(n)));
    ASSERT_EQ(r.err, 0) << std::strerror(r.err);
    ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX)) << "n=" << n;
    ASSERT_EQ(r.out_len, SMT_SIPHASH_TEST_PKT_LEN);
    EXPECT_EQ(load_le64(r.out.data() + SMT_SIPHASH_TEST_TAG_OFF), smt::test::kSipHash24Vectors[n])
        << "message length " << n;
  }
}

TEST_F(SipHashInBpfTest, BpfAndHostSipHashAgreeOnRandomInputs) {
  std::mt19937_64 rng(0x5eed5eed);
  for (int iter = 0; iter < 2000; ++iter) {
    uint8_t key[SMT_SIPHASH_KEY_LEN];
    uint8_t msg[SMT_SIPHASH_TEST_MSG_MAX];
    for (auto& b : key) b = static_cast<uint8_t>(rng());
    for (auto& b : msg) b = static_cast<uint8_t>(rng());
    auto n = static_cast<uint8_t>(rng() % (SMT_SIPHASH_TEST_MSG_MAX + 1));
    Packet p = make_packet(key, msg, n);
    // Bytes past the message must not change the tag: fill them with noise.
    for (size_t i = SMT_SIPHASH_TEST_MSG_OFF + n; i < p.size(); ++i) {
      p[i] = static_cast<uint8_t>(rng());
    }
    RunResult r = run(p);
    ASSERT_EQ(r.err, 0) << std::strerror(r.err);
    ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX));
    EXPECT_EQ(load_le64(r.out.data() + SMT_SIPHASH_TEST_TAG_OFF), smt_siphash24(key, msg, n))
        << "iteration " << iter << ", length " << int{n};
  }
}

TEST_F(SipHashInBpfTest, MessageLengthAboveMaximumIsDroppedUnchanged) {
  uint8_t key[SMT_SIPHASH_KEY_LEN] = {};
  uint8_t msg[SMT_SIPHASH_TEST_MSG_MAX] = {};
  Packet p = make_packet(key, msg, 0);
  p[SMT_SIPHASH_TEST_LEN_OFF] = SMT_SIPHASH_TEST_MSG_MAX + 1;
  RunResult r = run(p);
  ASSERT_EQ(r.err, 0) << std::strerror(r.err);
  EXPECT_EQ(r.retval, static_cast<uint32_t>(XDP_DROP));
  EXPECT_EQ(r.out, p);
}

TEST_F(SipHashInBpfTest, PacketShorterThanLayoutIsDropped) {
  uint8_t key[SMT_SIPHASH_KEY_LEN] = {};
  Packet p = make_packet(key, nullptr, 0);
  RunResult r = run(p.data(), SMT_SIPHASH_TEST_PKT_LEN - 1);
  ASSERT_EQ(r.err, 0) << std::strerror(r.err);
  EXPECT_EQ(r.retval, static_cast<uint32_t>(XDP_DROP));
}

}  // namespace
