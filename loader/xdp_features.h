// What an interface's driver says it can do with XDP, from the kernel's
// netdev generic-netlink family (Linux 6.3+; Documentation/netlink/specs/netdev.yaml):
// native XDP (basic actions), XDP_REDIRECT, being a redirect target, AF_XDP
// zero-copy. smtctl features prints it; no guessing from driver names.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

namespace smt::loader {

/// Bits of NETDEV_A_DEV_XDP_FEATURES (enum netdev_xdp_act).
enum XdpFeatureBit : uint64_t {
  kXdpBasic = 1,         ///< XDP_ABORTED/DROP/PASS/TX in the driver: native XDP
  kXdpRedirect = 2,      ///< XDP_REDIRECT (AF_XDP receive)
  kXdpNdoXmit = 4,       ///< can be the target of a redirect
  kXdpXskZeroCopy = 8,   ///< AF_XDP zero-copy
  kXdpHwOffload = 16,
  kXdpRxSg = 32,         ///< multi-buffer receive
  kXdpNdoXmitSg = 64,
};

struct XdpFeatures {
  uint64_t flags = 0;         ///< XdpFeatureBit
  uint32_t zc_max_segs = 0;   ///< AF_XDP zero-copy multi-buffer segments (0: not reported)
};

/// Asks the kernel. ENOTSUP: the kernel has no netdev family (before 6.3);
/// ENODEV: no such interface; otherwise the netlink error.
Result<XdpFeatures> query_xdp_features(int ifindex);

/// "basic redirect ndo_xmit ..." ("none" for 0).
std::string xdp_feature_names(uint64_t flags);

}  // namespace smt::loader
