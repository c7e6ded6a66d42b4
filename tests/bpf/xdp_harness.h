// Test harness for bpf/smt_xdp.bpf.c: loads the program from its skeleton
// with fresh (unpinned) maps, installs sessions and an owner's grant table,
// runs frames through BPF_PROG_TEST_RUN on a veth with several rx queues in
// a private network namespace, and reads the per-CPU counters.
#pragma once

#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/unique_fd.h"
#include "smt/wire.h"
#include "xdp_frames.h"

struct smt_xdp_bpf;

namespace smt::test {

/// One session as the receiving host's sessions_hash holds it, plus what the
/// peer needs to send it packets.
struct TestSession {
  bool v6 = false;
  uint32_t local4 = 0, remote4 = 0;  // host order
  Ip6 local6{}, remote6{};
  uint16_t local_port = 0, remote_port = 0;
  std::array<uint8_t, 16> ctl_key{};  // the peer's k_ctl = our rx_ctl_key
  uint32_t slot = 0;
  uint32_t queue = 0;
  uint8_t flags = 0;  // SMT_SESSION_F_*

  smt_session_key map_key() const;
  /// Wraps an SMT packet from the peer in Ethernet + IP (proto 253 unless set).
  Bytes frame(const Bytes& smt, uint8_t proto = SMT_IPPROTO_DEFAULT) const;
  /// A valid DATA header from the peer for `id`.
  DataHeader data(uint64_t id) const;
  /// A tagged DATA frame from the peer.
  Bytes data_frame(uint64_t id) const;
  /// A GRANT from the peer (valid fields).
  ControlPacket grant(uint64_t id, uint32_t offset, uint64_t seq) const;
  /// A control frame from the peer, tagged with its key.
  Bytes control_frame(const ControlPacket& c) const;
};

using Stats = std::array<uint64_t, SMT_XDP_STAT_COUNT>;


struct RunResult {
  uint32_t retval = 0;
  Bytes out;
};

/// One fixture row: input frame, expected verdict and counter movement.
struct Fixture {
  Fixture(std::string n, Bytes f, uint32_t q = 0, uint32_t v = XDP_PASS,
          uint32_t st = SMT_XDP_PASS_NOT_SMT, std::vector<uint32_t> ev = {})
      : name(std::move(n)),
        frame(std::move(f)),
        queue(q),
        verdict(v),
        stat(st),
        events(std::move(ev)) {}

  std::string name;
  Bytes frame;
  uint32_t queue = 0;
  uint32_t verdict = XDP_PASS;
  uint32_t stat = SMT_XDP_PASS_NOT_SMT;  ///< the one verdict counter that grows by 1
  std::vector<uint32_t> events;          ///< event counters that grow by 1
};

class XdpRxTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kOwner = 7;
  static constexpr uint32_t kQueues = 4;
  static constexpr uint32_t kXskQueue = 3;

  void SetUp() override;
  void TearDown() override;

  /// Loads the program with `proto` as its SMT protocol number and installs
  /// the sessions and the owner's table. Called by SetUp with 253.
  void load(uint8_t proto);

  RunResult run(const Bytes& frame, uint32_t queue = 0);
  Stats stats() const;
  /// Runs the row and checks verdict, unchanged output and exact counter deltas.
  void check(const Fixture& f);
  /// Tag failures counted for the session, summed over CPUs.
  uint64_t mac_failures(const TestSession& s) const;

  /// The session's entry of the owner's table (mmapped as the owner would).
  smt_owner_table_entry* entry(const TestSession& s) const;
  void arm_grant(const TestSession& s, uint64_t id, uint32_t offset) const;
  uint64_t grant_word(const TestSession& s, uint64_t id) const;
  void publish_base(const TestSession& s, uint64_t base) const;

  /// Binds an AF_XDP socket to the veth's queue kXskQueue and puts it in
  /// xsks_map. Returns false (with a reason) if the kernel refuses.
  bool add_xsk_socket(std::string* why);

  // The sessions (see xdp_harness.cc for addresses and flags).
  TestSession raw4_;     // IPv4, raw socket path, slot 0
  TestSession raw4b_;    // IPv4, same hosts, another port and key, slot 2
  TestSession xsk6_;     // IPv6, AF_XDP on kXskQueue, slot 1
  TestSession nosock4_;  // IPv4, AF_XDP on queue 2 where no socket is bound, slot 3

  struct SkelDeleter {
    void operator()(smt_xdp_bpf* s) const;
  };
  std::unique_ptr<smt_xdp_bpf, SkelDeleter> skel_;
  int prog_fd_ = -1;
  int ifindex_ = 0;
  UniqueFd table_fd_;
  void* table_map_ = nullptr;
  size_t table_len_ = 0;
  UniqueFd xsk_fd_;
  void* umem_ = nullptr;
  size_t umem_len_ = 0;
};

}  // namespace smt::test
