// bpf/smt_xdp.bpf.c through BPF_PROG_TEST_RUN: fixture tables of frames
// (built with the C++ DATA and control builders) → verdict, unchanged output
// and exact per-CPU counter deltas. Grants are in xdp_grant_test.cc.
#include <linux/bpf.h>

#include <cstring>

#include "common/bytes.h"
#include "support/test_support.h"
#include "xdp_harness.h"

namespace smt::test {
namespace {

constexpr uint8_t kTcp = 6;
constexpr uint8_t kUdp = 17;
constexpr uint8_t kIcmpv6 = 58;

TEST_F(XdpRxTest, NonSmtTrafficPassesUntouched) {
  const Fixture rows[] = {
      {"arp", arp_frame()},
      {"ipv4 tcp", ipv4_frame(0x0a000001, 0x0a000002, kTcp, tcp_segment(40000, 5000))},
      {"ipv4 udp", ipv4_frame(0x0a000001, 0x0a000002, kUdp, Bytes(16, 0))},
      {"ipv6 tcp", ipv6_frame(xsk6_.remote6, xsk6_.local6, kTcp, tcp_segment(40001, 5000))},
      {"icmpv6 neighbor solicitation", ipv6_frame(xsk6_.remote6, xsk6_.local6, kIcmpv6,
                                                  icmpv6_neighbor_solicitation(xsk6_.local6))},
      {"ipv6 fragment of tcp",
       ipv6_fragment_frame(xsk6_.remote6, xsk6_.local6, kTcp, tcp_segment(1, 2))},
      {"ipv4 tcp fragment",
       ipv4_frame(0x0a000001, 0x0a000002, kTcp, tcp_segment(1, 2), kIpv4MoreFragments)},
  };
  for (const auto& f : rows) check(f);
}

TEST_F(XdpRxTest, GoodPacketsReachTheirOwnerOnEachPath) {
  const Fixture rows[] = {
      {"ipv4 DATA request, raw path", raw4_.data_frame(42), 0, XDP_PASS, SMT_XDP_PASS_STACK},
      {"ipv4 DATA response, raw path", raw4_.data_frame(43), 1, XDP_PASS, SMT_XDP_PASS_STACK},
      {"ipv4 GRANT, raw path, no armed slot",
       raw4_.control_frame(raw4_.grant(42, 30000, 1)),
       0,
       XDP_PASS,
       SMT_XDP_PASS_STACK,
       {SMT_XDP_GRANT_SLOT_MISS}},
      {"ipv4 DATA of a second session", raw4b_.data_frame(8), 0, XDP_PASS, SMT_XDP_PASS_STACK},
  };
  for (const auto& f : rows) check(f);
}

TEST_F(XdpRxTest, EveryControlTypeWithAGoodTagIsDelivered) {
  ControlPacket resend;
  resend.type = SMT_TYPE_RESEND;
  resend.message_id = 42;
  resend.control_seq = 2;
  resend.resend_offset = 1390;
  resend.resend_length = 1390;
  resend.priority = 7;
  ControlPacket unknown;
  unknown.type = SMT_TYPE_RPC_UNKNOWN;
  unknown.message_id = 42;
  unknown.control_seq = 3;
  unknown.unknown_flags = SMT_UNKNOWN_F_DELIVERED;
  ControlPacket busy;
  busy.type = SMT_TYPE_BUSY;
  busy.message_id = 43;
  busy.control_seq = 4;
  ControlPacket need_ack;
  need_ack.type = SMT_TYPE_NEED_ACK;
  need_ack.message_id = 43;
  need_ack.control_seq = 5;
  ControlPacket ack;
  ack.type = SMT_TYPE_ACK;
  ack.control_seq = 6;
  ack.window_base = 46;
  ack.acked_ids[0] = 43;
  ack.acked_ids[1] = 39;
  for (ControlPacket c : {resend, unknown, busy, need_ack, ack}) {
    c.sport = raw4_.remote_port;
    c.dport = raw4_.local_port;
    check({"control type " + std::to_string(c.type), raw4_.control_frame(c), 0, XDP_PASS,
           SMT_XDP_PASS_STACK});
  }
}

TEST_F(XdpRxTest, FragmentsOfSmtAreDropped) {
  const Bytes smt = data_packet(raw4_.data(42), raw4_.ctl_key.data());
  const Fixture rows[] = {
      {"ipv4 more-fragments", ipv4_frame(raw4_.remote4, raw4_.local4, 253, smt, 0x2000), 0,
       XDP_DROP, SMT_XDP_DROP_FRAGMENT},
      {"ipv4 fragment offset", ipv4_frame(raw4_.remote4, raw4_.local4, 253, smt, 0x0010), 0,
       XDP_DROP, SMT_XDP_DROP_FRAGMENT},
      {"ipv4 offset with DF", ipv4_frame(raw4_.remote4, raw4_.local4, 253, smt, 0x4001), 0,
       XDP_DROP, SMT_XDP_DROP_FRAGMENT},
      {"ipv6 fragment header", ipv6_fragment_frame(xsk6_.remote6, xsk6_.local6, 253, smt), 0,
       XDP_DROP, SMT_XDP_DROP_FRAGMENT},
  };
  for (const auto& f : rows) check(f);
}

TEST_F(XdpRxTest, BadIpHeadersOfSmtAreDropped) {
  Bytes options = raw4_.data_frame(42);
  options[kEthLen] = 0x46;  // IHL 6: SMT never carries IPv4 options
  Bytes short_len = raw4_.data_frame(42);
  store_be16(short_len.data() + kEthLen + 2, 19);  // total length below the header
  Bytes long_len = raw4_.data_frame(42);
  store_be16(long_len.data() + kEthLen + 2,
             static_cast<uint16_t>(long_len.size() - kEthLen + 1));  // one byte past the frame
  Bytes long_len6 = xsk6_.data_frame(42);
  store_be16(long_len6.data() + kEthLen + 4,
             static_cast<uint16_t>(long_len6.size() - kEthLen - kIpv6Len + 1));
  const Fixture rows[] = {
      {"ipv4 options", options, 0, XDP_DROP, SMT_XDP_DROP_BAD_IP},
      {"ipv4 total length below header", short_len, 0, XDP_DROP, SMT_XDP_DROP_BAD_IP},
      {"ipv4 total length past the frame", long_len, 0, XDP_DROP, SMT_XDP_DROP_TRUNCATED},
      {"ipv6 payload length past the frame", long_len6, 0, XDP_DROP, SMT_XDP_DROP_TRUNCATED},
  };
  for (const auto& f : rows) check(f);
}

TEST_F(XdpRxTest, EthernetPaddingPastTheIpLengthIsIgnored) {
  ControlPacket busy;
  busy.type = SMT_TYPE_BUSY;
  busy.sport = raw4_.remote_port;
  busy.dport = raw4_.local_port;
  busy.message_id = 43;
  busy.control_seq = 9;
  Bytes padded = raw4_.control_frame(busy);
  padded.resize(padded.size() + 6, 0);  // trailer the IP length does not count
  check({"padded BUSY", padded, 0, XDP_PASS, SMT_XDP_PASS_STACK});
}

TEST_F(XdpRxTest, TruncationAtEveryHeaderByteIsNeverDelivered) {
  ControlPacket ack;
  ack.type = SMT_TYPE_ACK;
  ack.sport = raw4_.remote_port;
  ack.dport = raw4_.local_port;
  ack.control_seq = 1;
  ack.window_base = 2;
  struct Case {
    const char* name;
    Bytes frame;
    size_t l3_end;   // end of the IP header
    size_t smt_end;  // end of the SMT header (+ control body)
  };
  const Case cases[] = {
      {"ipv4 DATA", raw4_.data_frame(42), kEthLen + kIpv4Len, kEthLen + kIpv4Len + kDataHeaderLen},
      {"ipv6 DATA", xsk6_.data_frame(42), kEthLen + kIpv6Len, kEthLen + kIpv6Len + kDataHeaderLen},
      {"ipv4 GRANT", raw4_.control_frame(raw4_.grant(42, 100, 1)), kEthLen + kIpv4Len,
       kEthLen + kIpv4Len + kCtlHeaderLen + sizeof(smt_grant_body)},
      {"ipv6 ACK", xsk6_.control_frame([&] {
         ControlPacket a = ack;
         a.sport = xsk6_.remote_port;
         a.dport = xsk6_.local_port;
         return a;
       }()),
       kEthLen + kIpv6Len, kEthLen + kIpv6Len + kCtlHeaderLen + sizeof(smt_ack_body)},
  };
  for (const auto& c : cases) {
    // Test-run refuses frames below ETH_HLEN, as no driver delivers one.
    for (size_t cut = kEthLen; cut < c.smt_end; ++cut) {
      // The frame ends early while the IP length still claims the whole packet.
      Bytes frame(c.frame.begin(), c.frame.begin() + static_cast<long>(cut));
      const bool ip_readable = cut >= c.l3_end;
      check({std::string(c.name) + " frame cut at " + std::to_string(cut), frame, 0,
             ip_readable ? XDP_DROP : XDP_PASS,
             ip_readable ? SMT_XDP_DROP_TRUNCATED : SMT_XDP_PASS_NOT_SMT});
      if (!ip_readable) continue;
      // The IP length says the packet ends there too: the SMT parse catches it.
      const bool v6 = c.l3_end == kEthLen + kIpv6Len;
      if (v6) {
        store_be16(frame.data() + kEthLen + 4, static_cast<uint16_t>(cut - c.l3_end));
      } else {
        store_be16(frame.data() + kEthLen + 2, static_cast<uint16_t>(cut - kEthLen));
      }
      check({std::string(c.name) + " packet cut at " + std::to_string(cut), frame, 0, XDP_DROP,
             SMT_XDP_DROP_TRUNCATED});
    }
  }
}

TEST_F(XdpRxTest, UnknownVersionsTypesAndBadHeadersAreDropped) {
  auto mutated = [](Bytes f, size_t at, uint8_t v) {
    f[at] = v;
    return f;
  };
  const size_t smt4 = kEthLen + kIpv4Len;
  const Bytes data = raw4_.data_frame(42);
  const Bytes grant = raw4_.control_frame(raw4_.grant(42, 100, 1));
  Bytes grant_long = grant;  // one byte past the GRANT body, counted by the IP length
  grant_long.push_back(0);
  store_be16(grant_long.data() + kEthLen + 2, static_cast<uint16_t>(grant_long.size() - kEthLen));
  const Fixture rows[] = {
      {"DATA version 2", mutated(data, smt4 + 14, 2), 0, XDP_DROP, SMT_XDP_DROP_BAD_VERSION},
      {"DATA version 0", mutated(data, smt4 + 14, 0), 0, XDP_DROP, SMT_XDP_DROP_BAD_VERSION},
      {"GRANT version 2", mutated(grant, smt4 + 14, 2), 0, XDP_DROP, SMT_XDP_DROP_BAD_VERSION},
      {"type 0x15 (Homa CUTOFFS)", mutated(grant, smt4 + 13, 0x15), 0, XDP_DROP,
       SMT_XDP_DROP_BAD_TYPE},
      {"type 0xff", mutated(grant, smt4 + 13, 0xff), 0, XDP_DROP, SMT_XDP_DROP_BAD_TYPE},
      {"DATA doff 0xb0", mutated(data, smt4 + 12, 0xb0), 0, XDP_DROP, SMT_XDP_DROP_BAD_HEADER},
      {"DATA unknown flag", mutated(data, smt4 + 15, 0x02), 0, XDP_DROP, SMT_XDP_DROP_BAD_HEADER},
      {"DATA priority 8", mutated(data, smt4 + 40, 8), 0, XDP_DROP, SMT_XDP_DROP_BAD_HEADER},
      {"DATA reserved byte", mutated(data, smt4 + 42, 1), 0, XDP_DROP, SMT_XDP_DROP_BAD_HEADER},
      {"DATA message id over 48 bits", mutated(data, smt4 + 21, 1), 0, XDP_DROP,
       SMT_XDP_DROP_BAD_HEADER},
      {"control doff 0xd0", mutated(grant, smt4 + 12, 0xd0), 0, XDP_DROP, SMT_XDP_DROP_BAD_HEADER},
      {"control seg_pos set", mutated(grant, smt4 + 7, 1), 0, XDP_DROP, SMT_XDP_DROP_BAD_HEADER},
      {"control incoming set", mutated(grant, smt4 + 8, 1), 0, XDP_DROP, SMT_XDP_DROP_BAD_HEADER},
      {"control flags set", mutated(grant, smt4 + 15, 1), 0, XDP_DROP, SMT_XDP_DROP_BAD_HEADER},
      {"control_seq 0",
       [&] {
         Bytes f = grant;
         std::memset(f.data() + smt4 + 28, 0, 8);
         return f;
       }(),
       0, XDP_DROP, SMT_XDP_DROP_BAD_HEADER},
      {"GRANT body too long", grant_long, 0, XDP_DROP, SMT_XDP_DROP_BAD_HEADER},
      {"GRANT priority 8", mutated(grant, smt4 + 44 + 4, 8), 0, XDP_DROP, SMT_XDP_DROP_BAD_HEADER},
      {"GRANT reserved byte", mutated(grant, smt4 + 44 + 6, 1), 0, XDP_DROP,
       SMT_XDP_DROP_BAD_HEADER},
      {"GRANT odd window base", mutated(grant, smt4 + 44 + 15, 0x2d), 0, XDP_DROP,
       SMT_XDP_DROP_BAD_HEADER},
  };
  for (const auto& f : rows) check(f);
}

// The ACK rules of docs/wire-format.md §9.7 over all SMT_ACK_IDS slots: used
// slots first, odd ids, each at most once.
TEST_F(XdpRxTest, AcksWithEveryIdSlotPassAndMalformedIdListsAreDropped) {
  ControlPacket full;
  full.type = SMT_TYPE_ACK;
  full.sport = raw4_.remote_port;
  full.dport = raw4_.local_port;
  full.control_seq = 7;
  full.window_base = 46;
  for (size_t i = 0; i < SMT_ACK_IDS; ++i) full.acked_ids[i] = 43 - 4 * i;  // 43, 39, ... 15
  const Bytes frame = raw4_.control_frame(full);
  const size_t ids = kEthLen + kIpv4Len + 44 + 8;  // first byte of slot 0
  auto with_slot = [&](size_t slot, uint8_t low_byte) {
    Bytes f = frame;
    std::memset(f.data() + ids + 8 * slot, 0, 8);
    f[ids + 8 * slot + 7] = low_byte;
    return f;
  };
  const Fixture rows[] = {
      {"eight ids", frame, 0, XDP_PASS, SMT_XDP_PASS_STACK},
      {"last slot repeats the first", with_slot(SMT_ACK_IDS - 1, 43), 0, XDP_DROP,
       SMT_XDP_DROP_BAD_HEADER},
      {"second slot repeats the first", with_slot(1, 43), 0, XDP_DROP, SMT_XDP_DROP_BAD_HEADER},
      {"a request id (even)", with_slot(SMT_ACK_IDS - 1, 16), 0, XDP_DROP,
       SMT_XDP_DROP_BAD_HEADER},
      {"a used slot after an unused one", with_slot(SMT_ACK_IDS - 2, 0), 0, XDP_DROP,
       SMT_XDP_DROP_BAD_HEADER},
  };
  for (const auto& f : rows) check(f);
}

TEST_F(XdpRxTest, UnknownSessionIsDropped) {
  TestSession wrong_port = raw4_;
  wrong_port.remote_port = 40999;
  TestSession wrong_addr = raw4_;
  wrong_addr.remote4 = 0x0a000009;
  TestSession swapped = raw4_;  // our own address as the source: local/remote swapped
  std::swap(swapped.local4, swapped.remote4);
  std::swap(swapped.local_port, swapped.remote_port);
  TestSession v6_as_v4 = xsk6_;  // the IPv6 session's ports over IPv4
  v6_as_v4.v6 = false;
  v6_as_v4.local4 = raw4_.local4;
  v6_as_v4.remote4 = raw4_.remote4;
  const Fixture rows[] = {
      {"unknown remote port", wrong_port.data_frame(42), 0, XDP_DROP, SMT_XDP_DROP_UNKNOWN_SESSION},
      {"unknown remote address", wrong_addr.data_frame(42), 0, XDP_DROP,
       SMT_XDP_DROP_UNKNOWN_SESSION},
      {"local and remote swapped", swapped.data_frame(42), 0, XDP_DROP,
       SMT_XDP_DROP_UNKNOWN_SESSION},
      {"ipv6 session's ports over ipv4", v6_as_v4.control_frame(v6_as_v4.grant(4, 1, 1)), 0,
       XDP_DROP, SMT_XDP_DROP_UNKNOWN_SESSION},
  };
  for (const auto& f : rows) check(f);
}

TEST_F(XdpRxTest, BadTagsAreDroppedAndCountedPerSession) {
  const size_t smt4 = kEthLen + kIpv4Len;
  auto flipped = [](Bytes f, size_t at) {
    f[at] ^= 0x01;
    return f;
  };
  const Bytes data = raw4_.data_frame(42);
  const Bytes grant = raw4_.control_frame(raw4_.grant(42, 100, 1));
  TestSession other_key = raw4_;
  other_key.ctl_key = raw4b_.ctl_key;  // a real key, but another session's
  const Fixture rows[] = {
      {"DATA tag byte", flipped(data, smt4 + 44), 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG},
      {"DATA incoming", flipped(data, smt4 + 8), 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG},
      {"DATA message_length", flipped(data, smt4 + 31), 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG},
      {"DATA record_offset", flipped(data, smt4 + 35), 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG},
      {"DATA record_index", flipped(data, smt4 + 37), 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG},
      {"DATA epoch", flipped(data, smt4 + 39), 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG},
      {"DATA retransmit flag", flipped(data, smt4 + 15), 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG},
      {"DATA priority", flipped(data, smt4 + 40), 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG},
      {"DATA message id", flipped(data, smt4 + 27), 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG},
      {"DATA under another session's key", other_key.data_frame(42), 0, XDP_DROP,
       SMT_XDP_DROP_BAD_TAG},
      {"GRANT tag byte", flipped(grant, smt4 + 43), 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG},
      {"GRANT offset", flipped(grant, smt4 + 44 + 3), 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG},
      {"GRANT window base", flipped(grant, smt4 + 44 + 14), 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG},
      {"GRANT control_seq", flipped(grant, smt4 + 34), 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG},
      {"GRANT under another session's key", other_key.control_frame(other_key.grant(42, 1, 1)), 0,
       XDP_DROP, SMT_XDP_DROP_BAD_TAG},
  };
  uint64_t n = 0;
  for (const auto& f : rows) {
    check(f);
    EXPECT_EQ(mac_failures(raw4_), ++n) << f.name;
  }
  EXPECT_EQ(mac_failures(raw4b_), 0u) << "another session's failures must not move";
}

TEST_F(XdpRxTest, FieldsOutsideTheTagDoNotChangeTheVerdict) {
  const size_t smt4 = kEthLen + kIpv4Len;
  Bytes f = raw4_.data_frame(42);
  store_be32(f.data() + smt4 + 4, 1428);       // seg_pos: TSO advances it
  store_be16(f.data() + smt4 + 16, 0xbeef);    // checksum
  store_be16(f.data() + smt4 + 18, 0x0001);    // urgent
  store_be16(f.data() + kEthLen + 4, 0x9999);  // IP ID
  f[kEthLen + 8] = 3;                          // TTL
  check({"seg_pos, checksum, urgent, IP ID, TTL rewritten", f, 0, XDP_PASS, SMT_XDP_PASS_STACK});
}

TEST_F(XdpRxTest, RequestBelowThePublishedBaseIsDropped) {
  publish_base(raw4_, 100);
  const Bytes forged_old = [&] {
    Bytes f = raw4_.data_frame(98);
    f[kEthLen + kIpv4Len + 44] ^= 0xff;
    return f;
  }();
  const Fixture rows[] = {
      {"request 98 < base 100", raw4_.data_frame(98), 0, XDP_DROP, SMT_XDP_DROP_OLD_REQUEST},
      {"request 0 < base 100", raw4_.data_frame(0), 0, XDP_DROP, SMT_XDP_DROP_OLD_REQUEST},
      {"request 100 = base", raw4_.data_frame(100), 0, XDP_PASS, SMT_XDP_PASS_STACK},
      {"request 102 > base", raw4_.data_frame(102), 0, XDP_PASS, SMT_XDP_PASS_STACK},
      {"response 99 below base: engine decides", raw4_.data_frame(99), 0, XDP_PASS,
       SMT_XDP_PASS_STACK},
      {"forged old request counts as bad tag", forged_old, 0, XDP_DROP, SMT_XDP_DROP_BAD_TAG},
      {"another session's base is its own", raw4b_.data_frame(98), 0, XDP_PASS, SMT_XDP_PASS_STACK},
  };
  for (const auto& f : rows) check(f);
}

TEST_F(XdpRxTest, AfXdpSessionOnAnotherQueueIsDroppedAsWrongQueue) {
  const Fixture rows[] = {
      {"queue 0, owner on 3", xsk6_.data_frame(42), 0, XDP_DROP, SMT_XDP_DROP_WRONG_QUEUE},
      {"queue 2, owner on 3", xsk6_.data_frame(42), 2, XDP_DROP, SMT_XDP_DROP_WRONG_QUEUE},
      {"GRANT on queue 1, owner on 3",
       xsk6_.control_frame(xsk6_.grant(42, 10, 1)),
       1,
       XDP_DROP,
       SMT_XDP_DROP_WRONG_QUEUE,
       {SMT_XDP_GRANT_SLOT_MISS}},
      {"raw-path session ignores the queue", raw4_.data_frame(42), 3, XDP_PASS, SMT_XDP_PASS_STACK},
  };
  for (const auto& f : rows) check(f);
}

TEST_F(XdpRxTest, AfXdpSessionWithoutASocketOnItsQueueIsDropped) {
  check({"owner queue 2 has no socket", nosock4_.data_frame(42), 2, XDP_DROP, SMT_XDP_DROP_NO_XSK});
}

TEST_F(XdpRxTest, AfXdpSessionIsRedirectedToTheSocketOfItsQueue) {
  std::string why;
  ASSERT_TRUE(add_xsk_socket(&why)) << why;
  const Fixture rows[] = {
      {"ipv6 DATA on the owner queue", xsk6_.data_frame(42), kXskQueue, XDP_REDIRECT,
       SMT_XDP_REDIRECT_XSK},
      {"same DATA on queue 0", xsk6_.data_frame(42), 0, XDP_DROP, SMT_XDP_DROP_WRONG_QUEUE},
      {"a session owning queue 2 never reaches queue 3's socket", nosock4_.data_frame(42),
       kXskQueue, XDP_DROP, SMT_XDP_DROP_WRONG_QUEUE},
  };
  for (const auto& f : rows) check(f);
}

TEST_F(XdpRxTest, ProtocolNumberIsSetAtLoadTime) {
  load(254);
  const Bytes smt = data_packet(raw4_.data(42), raw4_.ctl_key.data());
  const Fixture rows[] = {
      {"proto 253 is not SMT now", raw4_.frame(smt, 253), 0, XDP_PASS, SMT_XDP_PASS_NOT_SMT},
      {"proto 254 is SMT", raw4_.frame(smt, 254), 0, XDP_PASS, SMT_XDP_PASS_STACK},
      {"proto 254 fragment", ipv4_frame(raw4_.remote4, raw4_.local4, 254, smt, 0x2000), 0, XDP_DROP,
       SMT_XDP_DROP_FRAGMENT},
  };
  for (const auto& f : rows) check(f);
}

}  // namespace
}  // namespace smt::test
