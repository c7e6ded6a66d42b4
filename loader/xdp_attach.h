// Attaching the XDP receive program (bpf/smt_xdp.bpf.c) to an interface and
// taking it off again. The program and its per-interface maps live on in
// bpffs pins after the process exits:
//
//   <root>/sessions_hash, port_leases_hash,
//          grant_tables                             global (global_maps.h)
//   <root>/if-<ifindex>/link                        the XDP bpf_link (or prog, see below)
//   <root>/if-<ifindex>/xsks_map, stats_percpu, session_mac_fail_percpu
//
// Detach removes the attachment and the if-<ifindex>/ pins only; the global
// maps stay (they hold live sessions, leases and owners' tables).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "smt/wire.h"

namespace smt::loader {

enum class XdpMode { kNative, kSkb };

/// "native" or "skb".
const char* xdp_mode_name(XdpMode mode);

struct AttachOptions {
  std::string pin_root;  ///< absolute, on bpffs
  std::string ifname;
  XdpMode mode = XdpMode::kNative;
  /// With kNative: fall back to SKB mode when the driver refuses native XDP.
  bool skb_fallback = true;
  uint8_t ipproto = SMT_IPPROTO_DEFAULT;  ///< the program's const volatile smt_ipproto
  /// Entries of xsks_map; 0: the interface's rx queue count (at most SMT_XSK_QUEUES_MAX).
  uint32_t xsk_queues = 0;
  /// Where a verifier rejection's log is written; "" = /tmp/smtctl-verifier-<ifname>.log.
  std::string verifier_log_path;
};

/// One attachment as its pins and the kernel describe it.
struct XdpAttachment {
  int ifindex = 0;
  std::string ifname;   ///< "" when the interface is gone (stale pins)
  std::string pin_dir;  ///< <root>/if-<ifindex>
  XdpMode mode = XdpMode::kNative;
  uint32_t prog_id = 0;      ///< the program attached now (0: none)
  bool ours = false;         ///< prog_id is the program our pins hold
  bool link_pinned = false;  ///< attached through a pinned bpf_link (else pinned prog)
};

/// Loads the program and attaches it to opts.ifname, pinning as above. Error
/// codes: ENODEV (no such interface), EEXIST (an XDP program is already on it,
/// or pins for it exist), ENOTSUP (no bpffs), EPERM (not privileged), EINVAL
/// (verifier rejection; the message names the saved log).
Result<XdpAttachment> attach_xdp(const AttachOptions& opts);

/// Reads the attachment pinned for `ifindex` under `pin_root` (adopting it:
/// nothing is changed). ENOENT if there is none.
Result<XdpAttachment> adopt_xdp(const std::string& pin_root, int ifindex);

/// Every attachment pinned under `pin_root`, by ifindex.
Result<std::vector<XdpAttachment>> list_xdp(const std::string& pin_root);

/// Takes the program off `ifindex` and removes if-<ifindex>/ with its pins.
/// ENOENT if nothing is pinned for it.
Status detach_xdp(const std::string& pin_root, int ifindex);

using XdpStats = std::array<uint64_t, SMT_XDP_STAT_COUNT>;

/// Name of enum smt_xdp_stat value `stat` ("drop_unknown_session"), "?" if out of range.
const char* xdp_stat_name(uint32_t stat);

/// The interface's stats_percpu, summed over CPUs.
Result<XdpStats> read_xdp_stats(const XdpAttachment& att);

/// Tag failures XDP counted on this interface for one session
/// (session_mac_fail_percpu, summed over CPUs); 0 when it has no entry.
Result<uint64_t> read_session_mac_failures(const XdpAttachment& att, const smt_session_key& key);

}  // namespace smt::loader
