// The privileged half of the AF_XDP link: smtd creates, for a trusted uid,
// an AF_XDP socket bound to (interface, queue) with a memfd-backed UMEM, puts
// it into the interface's xsks_map under that queue (the session's owner
// queue, CONTRACT §7) and passes the two fds plus the geometry to the
// application over SCM_RIGHTS. The application maps the UMEM and the four
// rings itself (XskLink, xsk_link.h); nothing here is needed on its side but
// XskGeometry.
//
// The UMEM is a sealed memfd (no shrinking or growing), so the application
// can map it but not truncate pages the kernel has pinned. The creator's own
// mapping is removed before create_xsk_socket() returns: the kernel keeps the
// pages pinned for the socket's lifetime.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace smt::link {

/// Sizes of the UMEM and the rings; sent to the application with the fds.
struct XskGeometry {
  uint32_t frame_size = 2048;   ///< bytes per UMEM frame: 2048 or 4096
  uint32_t frame_count = 4096;  ///< frames in the UMEM; a power of two
  uint32_t fill_size = 2048;    ///< ring entries, each a power of two
  uint32_t completion_size = 2048;
  uint32_t rx_size = 2048;
  uint32_t tx_size = 2048;

  uint64_t umem_len() const { return uint64_t{frame_size} * frame_count; }
};

/// Checks the rules above, and that the UMEM is at most 1 GiB and every
/// ring at most 32768 entries. EINVAL with the offending field otherwise.
Status validate_geometry(const XskGeometry& g);

enum class XskBindMode : uint8_t {
  kCopy,      ///< XDP_COPY
  kZeroCopy,  ///< XDP_ZEROCOPY; fails where the driver does not offer it
  kAuto,      ///< zero-copy if the driver offers it, else copy
};

struct XskSocketConfig {
  int ifindex = 0;
  uint32_t queue = 0;  ///< the rx/tx queue to bind (the session's owner queue)
  XskGeometry geometry;
  XskBindMode mode = XskBindMode::kAuto;
  /// An XSKMAP (the interface's xsks_map) to insert the socket into under
  /// `queue`; -1: none (the caller inserts it).
  int xsks_map_fd = -1;
};

/// A bound AF_XDP socket and its UMEM: everything the application needs to
/// map it (XskLinkConfig takes it as it arrives over SCM_RIGHTS).
struct XskSocket {
  UniqueFd socket;  ///< the AF_XDP socket
  UniqueFd umem;    ///< the memfd holding the UMEM (geometry.umem_len() bytes)
  XskGeometry geometry;
  int ifindex = 0;
  uint32_t queue = 0;
  bool zerocopy = false;  ///< bound XDP_ZEROCOPY (false: XDP_COPY)
};

/// Creates the memfd UMEM and the socket, registers the UMEM, sizes the
/// rings, binds with XDP_USE_NEED_WAKEUP and the mode asked for, and inserts
/// the socket into cfg.xsks_map_fd. Errors: EINVAL (geometry, or the device
/// refuses the queue), ENODEV (no such interface), ENOENT (no such queue),
/// EPERM (needs CAP_NET_RAW; the map update needs CAP_BPF or CAP_SYS_ADMIN),
/// ENOMEM (locked memory: RLIMIT_MEMLOCK), EOPNOTSUPP (zero-copy asked for
/// but not offered), each with a message that says which step failed.
Result<XskSocket> create_xsk_socket(const XskSocketConfig& cfg);

/// "copy" or "zero-copy".
inline const char* xsk_mode_name(bool zerocopy) { return zerocopy ? "zero-copy" : "copy"; }

}  // namespace smt::link
