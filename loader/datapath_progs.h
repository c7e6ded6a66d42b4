// The two BPF programs that guard the raw-socket datapath smtd hands to
// applications (CONTRACT §7, docs/smtd.md "Datapath sockets"):
//
//  - SockoptGuard: bpf/smt_sockopt.bpf.c on the cgroup v2 root through a
//    bpf_link pinned as <root>/sockopt_link. A restarted smtd swaps its freshly
//    loaded program into the pinned link (BPF_LINK_UPDATE) instead of
//    attaching a second one, so the protocol number and namespace it checks
//    are always the running smtd's. The link stays attached when smtd exits
//    (the sockets it handed out live on); removing the pin and every holder
//    of the link detaches it.
//  - RawFilter: bpf/smt_rawfilter.bpf.c, attached to each raw socket with
//    SO_ATTACH_BPF and locked with SO_LOCK_FILTER. Its raw_owners_hash and
//    rawfilter_stats_percpu are pinned under the pin root and reused by every
//    later load, so sockets filtered by a previous smtd's program instance
//    and the new smtd's see one map.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "bpf/smt_datapath_layout.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "smt/wire.h"

namespace smt::loader {

/// Where a unified (v2) cgroup hierarchy is mounted: /sys/fs/cgroup when it
/// is cgroup2 (Debian 12's default), else the first cgroup2 mount in
/// /proc/self/mounts (a hybrid setup's /sys/fs/cgroup/unified). ENOENT if none.
Result<std::string> find_cgroup2_root();

struct SockoptGuardOptions {
  std::string pin_root;                   ///< absolute, on bpffs
  std::string cgroup_path;                ///< cgroup v2 directory; "": find_cgroup2_root()
  uint8_t ipproto = SMT_IPPROTO_DEFAULT;  ///< the raw sockets' protocol it guards
  uint64_t netns_cookie = 0;              ///< only sockets of this netns; 0: every netns
};

/// The setsockopt guard of one instance, attached while the pin exists.
class SockoptGuard {
 public:
  /// Loads the program and puts it on the cgroup: into the pinned link when
  /// one exists (adopted() is then true), else through a new link it pins.
  /// Error codes: ENOTSUP (cgroup_path is not cgroup v2), EPERM (not
  /// privileged), others from the failing call. The trusted set starts as
  /// {0}; call set_trusted_uids before relying on it.
  static Result<std::unique_ptr<SockoptGuard>> attach(const SockoptGuardOptions& opts);
  ~SockoptGuard();
  SockoptGuard(const SockoptGuard&) = delete;
  SockoptGuard& operator=(const SockoptGuard&) = delete;

  /// Makes exactly `uids` plus uid 0 (root can open its own raw sockets
  /// anyway) trusted to set IP_HDRINCL / IPV6_HDRINCL.
  Status set_trusted_uids(std::span<const uint32_t> uids);
  /// A counter of enum smt_sockopt_stat.
  Result<uint64_t> stat(uint32_t which) const;
  /// True if an existing pinned link was updated rather than a new one made.
  bool adopted() const { return adopted_; }
  /// The program's kernel id (what the cgroup now runs).
  uint32_t prog_id() const;
  /// The cgroup v2 directory it is attached to.
  const std::string& cgroup_path() const { return cgroup_; }

 private:
  struct Skel;
  SockoptGuard() = default;
  std::unique_ptr<Skel> skel_;
  UniqueFd link_;
  std::string cgroup_;
  bool adopted_ = false;
};

/// The raw sockets' port filter of one instance.
class RawFilter {
 public:
  /// Loads the filter with the instance's global maps (port_leases_hash) and
  /// its pinned raw_owners_hash / rawfilter_stats_percpu, creating and
  /// pinning those two if missing (a pin of another layout is refused with
  /// EEXIST, naming it).
  static Result<std::unique_ptr<RawFilter>> load(const std::string& pin_root, uint8_t ipproto);
  ~RawFilter();
  RawFilter(const RawFilter&) = delete;
  RawFilter& operator=(const RawFilter&) = delete;

  /// Attaches the filter to `sock` and locks it, then discards what the
  /// socket queued before the filter was there.
  Status attach(int sock) const;
  Status set_owner(uint64_t cookie, const smt_raw_owner& owner) const;
  Status delete_owner(uint64_t cookie) const;
  Result<smt_raw_owner> owner(uint64_t cookie) const;
  /// Visits every entry (smtd's start-up and sweeps).
  void for_each_owner(const std::function<void(uint64_t, const smt_raw_owner&)>& fn) const;
  /// A counter of enum smt_rawfilter_stat, summed over CPUs.
  Result<uint64_t> stat(uint32_t which) const;
  int prog_fd() const;

 private:
  struct Skel;
  RawFilter() = default;
  std::unique_ptr<Skel> skel_;
  UniqueFd owners_;
  UniqueFd stats_;
};

/// The socket cookie (SO_COOKIE) of `fd`.
Result<uint64_t> socket_cookie(int fd);
/// The cookie of the calling thread's network namespace (SO_NETNS_COOKIE).
Result<uint64_t> current_netns_cookie();

}  // namespace smt::loader
