// The raw IP socket link: the portable fallback datapath. SMT packets go out
// through SOCK_RAW sockets of the SMT protocol number (one per address
// family), batched with sendmmsg/recvmmsg.
//
// Sending: DF always (IP_PMTUDISC_DO, IPV6_DONTFRAG), DSCP = priority << 3 per
// packet through a cmsg. EAGAIN/ENOBUFS mean the socket queue is full: send()
// stops and returns how many it took. Any other failure (EMSGSIZE, no route,
// a family with no socket) consumes the packet and counts tx_errors. TSO is
// not supported: a TSO segment is refused un-taken, as on the memory link.
//
// Receiving treats every datagram as hostile: IPv4 headers are checked
// (version, IHL, total length, protocol); IP fragments — whether they show in
// the header or the kernel reassembled them (IP_RECVFRAGSIZE /
// IPV6_RECVFRAGSIZE) — truncated and empty datagrams are dropped and counted in
// rx_dropped.
//
// Not thread-safe: use one RawLink from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "link/link.h"
#include "common/unique_fd.h"
#include "smt/wire.h"

namespace smt::link {

struct RawLinkConfig {
  uint8_t protocol = SMT_IPPROTO_DEFAULT;  ///< IP protocol number; not 0 or 255
  bool ipv4 = true;                        ///< open an AF_INET socket
  bool ipv6 = true;                        ///< open an AF_INET6 socket
  std::optional<Addr> local_v4;            ///< bind (IPv4-mapped); implies ipv4
  std::optional<Addr> local_v6;            ///< bind; implies ipv6
  std::string device;                      ///< SO_BINDTODEVICE when not empty
  uint32_t mtu = 0;                        ///< 0: the device's MTU, or 1500 without a device
  uint32_t batch = 32;                     ///< packets per sendmmsg/recvmmsg and per receive()
};

class RawLink final : public Link {
 public:
  /// Opens the sockets in the calling thread's network namespace. Fails with
  /// a clear message, e.g. EPERM "raw socket needs CAP_NET_RAW".
  static Result<std::unique_ptr<RawLink>> open(const RawLinkConfig& cfg);
  /// Takes over raw sockets another process created and bound (smtd's
  /// DATAPATH sockets, passed over SCM_RIGHTS), so the caller needs no
  /// CAP_NET_RAW. Either fd may be invalid (no socket of that family); each
  /// valid one must be a SOCK_RAW socket of its family and cfg.protocol
  /// (EINVAL otherwise). cfg.local_v4/local_v6 name the addresses they are
  /// bound to; cfg.ipv4/ipv6 are taken from the fds; cfg.device is used only
  /// to look up the MTU (binding to it would need CAP_NET_RAW). Sets the same
  /// unprivileged options open() does (DF, pktinfo, fragment size).
  static Result<std::unique_ptr<RawLink>> adopt(const RawLinkConfig& cfg, UniqueFd v4,
                                                UniqueFd v6);
  ~RawLink() override;
  RawLink(const RawLink&) = delete;
  RawLink& operator=(const RawLink&) = delete;

  size_t send(std::span<const TxPacket> pkts) override;
  size_t receive(std::span<RxPacket> out) override;
  int fd() const override { return epoll_.get(); }
  /// The batch size: raw sockets have no visible queue.
  size_t tx_room() const override { return cfg_.batch; }
  uint32_t mtu() const override { return mtu_; }
  bool supports_tso() const override { return false; }
  /// The bound address of the peer's family, else the kernel's route choice
  /// (an all-zero Addr when there is no route).
  Addr local_addr(const Addr& peer) const override;
  LinkStats stats() const override { return stats_; }

 private:
  struct Batch;

  explicit RawLink(const RawLinkConfig& cfg);
  Status init(UniqueFd adopt_v4, UniqueFd adopt_v6, bool adopted);
  static Result<RawLinkConfig> check_config(const RawLinkConfig& in);
  size_t send_run(std::span<const TxPacket> run, bool v4);
  size_t receive_from(bool v4, std::span<RxPacket> out, size_t first_buf);
  bool accept_v4(size_t buf, size_t n, bool reassembled, RxPacket* out);

  RawLinkConfig cfg_;
  uint32_t mtu_ = 1500;
  UniqueFd sock4_;
  UniqueFd sock6_;
  UniqueFd epoll_;
  UniqueFd route4_;  // UDP sockets for route lookups in the link's namespace
  UniqueFd route6_;
  std::unique_ptr<Batch> batch_;
  bool v6_first_ = false;  // alternates so neither family starves the other
  LinkStats stats_;
};

}  // namespace smt::link
