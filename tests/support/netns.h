// Network namespace harness for end-to-end tests (BRIEF §6):
//
//     A (a0) ---- veth ---- (wa) W (wb) ---- veth ---- (b0) B
//   10.201.1.1/24     10.201.1.2/24  10.201.2.2/24     10.201.2.1/24
//   fd53:1::1/64      fd53:1::2/64   fd53:2::2/64      fd53:2::1/64
//
// W forwards (IPv4 and IPv6); A and B route everything via W. Namespace names
// carry a random suffix so parallel runs do not collide; everything made is
// undone last-in-first-out when the owner is destroyed, also when a test fails
// (ASSERT returns through the destructors). Needs root; callers skip first.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace smt::test {

/// True when this process may create namespaces (root, `ip` and `nsenter`).
bool netns_available();

/// Undo actions run last-in-first-out on destruction.
class CleanupStack {
 public:
  CleanupStack() = default;
  CleanupStack(const CleanupStack&) = delete;
  CleanupStack& operator=(const CleanupStack&) = delete;
  ~CleanupStack() { run(); }
  void push(std::function<void()> undo) { undo_.push_back(std::move(undo)); }
  /// Runs every action now, newest first.
  void run();

 private:
  std::vector<std::function<void()>> undo_;
};

/// Runs `fn` on a dedicated thread switched (setns) into namespace `ns`, and
/// joins it. Sockets `fn` creates stay in that namespace and may be used from
/// any thread afterwards.
Status run_in_netns(const std::string& ns, const std::function<void()>& fn);

/// Runs a shell command inside namespace `ns` through
/// `nsenter --net=/run/netns/NS` (unlike `ip netns exec`, keeps /sys and
/// bpffs). Returns the exit status; stdout (and stderr) go to *out if given.
int run_in_netns_cmd(const std::string& ns, const std::string& cmd, std::string* out = nullptr);

/// Runs a command in the root namespace and turns a non-zero exit into an
/// error carrying its output.
Status run_checked(const std::string& cmd);

/// One network namespace, deleted on destruction.
class Netns {
 public:
  /// Creates "<prefix>-<random>".
  static Result<std::unique_ptr<Netns>> create(const std::string& prefix);
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  const std::string& name() const { return name_; }

 private:
  explicit Netns(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

struct TopologyOptions {
  uint32_t mtu = 1500;
  uint32_t queues = 1;  ///< numrxqueues/numtxqueues of every veth
};

/// The A — W — B topology.
class Topology {
 public:
  static Result<std::unique_ptr<Topology>> create(const TopologyOptions& opts = {});
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  const std::string& a() const { return a_->name(); }
  const std::string& w() const { return w_->name(); }
  const std::string& b() const { return b_->name(); }

  // Device names inside the namespaces.
  static constexpr const char* kDevA = "a0";
  static constexpr const char* kDevWA = "wa";
  static constexpr const char* kDevWB = "wb";
  static constexpr const char* kDevB = "b0";
  // Addresses as text and as 16 bytes (IPv4 as IPv4-mapped).
  static constexpr const char* kA4 = "10.201.1.1";
  static constexpr const char* kB4 = "10.201.2.1";
  static constexpr const char* kA6 = "fd53:1::1";
  static constexpr const char* kB6 = "fd53:2::1";
  static std::array<uint8_t, 16> addr(const char* text);

  /// Pushes an extra undo action run before the namespaces are deleted.
  void on_cleanup(std::function<void()> undo) { cleanup_.push(std::move(undo)); }

 private:
  Topology() = default;
  Status build(const TopologyOptions& opts);
  std::unique_ptr<Netns> a_, w_, b_;
  CleanupStack cleanup_;  // run by ~Topology before the namespaces go
};

/// One IP packet of the captured protocol.
struct CapturedIp {
  int family = 0;                 ///< 4 or 6
  std::array<uint8_t, 16> src{};  ///< IPv4 as IPv4-mapped
  std::array<uint8_t, 16> dst{};
  uint8_t tos = 0;        ///< IPv4 TOS or IPv6 traffic class
  bool fragment = false;  ///< IPv4 MF/offset, or an IPv6 fragment header
  int ifindex = 0;
  std::vector<uint8_t> payload;  ///< after the IP header(s): the SMT packet
};

/// Writes `pkts` to `path` as a classic pcap file (LINKTYPE_RAW: every record
/// is one IP packet; microsecond timestamps), readable by smt-decode, tcpdump
/// and Wireshark. The IP headers are rebuilt from the captured fields: family,
/// addresses, TOS/traffic class, `protocol`, and the fragment flag (IPv4 MF,
/// or an IPv6 fragment header); IPv4 gets TTL 64, DF and a valid checksum.
/// `time_ns[i]`, when given (one per packet), is packet i's timestamp;
/// otherwise packets are stamped 1 µs apart from the time of writing.
Status write_ip_pcap(const std::string& path, std::span<const CapturedIp> pkts, uint8_t protocol,
                     std::span<const uint64_t> time_ns = {});

/// Records every IP packet of one protocol that a namespace sends out of its
/// interfaces (on W: every packet W forwards), with an AF_PACKET socket.
class IpCapture {
 public:
  static Result<std::unique_ptr<IpCapture>> open(const std::string& ns, uint8_t protocol);
  ~IpCapture() = default;
  IpCapture(const IpCapture&) = delete;
  IpCapture& operator=(const IpCapture&) = delete;

  /// Reads packets until `count` have been collected in total or no packet
  /// arrived for `quiet_ms`; returns everything collected so far.
  const std::vector<CapturedIp>& collect(size_t count, int quiet_ms = 200);
  /// Collected packets whose SMT type byte (13) is `type` (SMT_TYPE_DATA: DATA).
  size_t count_type(uint8_t type) const;
  /// Whether any collected packet's payload contains `needle` (e.g. plaintext
  /// that must never cross the wire).
  bool payload_contains(std::span<const uint8_t> needle) const;
  /// Packets the kernel dropped before this socket read them.
  uint64_t kernel_drops();
  /// Writes everything collected so far as a pcap file (write_ip_pcap).
  Status write_pcap(const std::string& path) const;

 private:
  IpCapture(UniqueFd fd, uint8_t protocol) : fd_(std::move(fd)), protocol_(protocol) {}
  void parse(const uint8_t* p, size_t n, int ifindex);
  UniqueFd fd_;
  uint8_t protocol_;
  uint64_t drops_ = 0;
  std::vector<CapturedIp> packets_;
};

}  // namespace smt::test
