// The instance's global BPF maps (sessions_hash, port_leases_hash,
// grant_tables): created
// once, pinned under the pin root, reused by everyone after. smtd (at start)
// and `smtctl attach` (before loading the XDP object) both call
// open_global_maps(); the XDP object then takes the pinned maps with
// GlobalMaps::reuse_in(). The maps' definitions come from bpf/global_maps.bpf.h
// through the global_maps skeleton, so bpf/ stays the only definition.
//
// Pins are never deleted here: a pinned map holds live sessions. A stale pin
// whose layout differs from this build is refused with a message saying how
// to remove it.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

struct bpf_object;

namespace smt::loader {

/// CONTRACT §7: the default pin root (smtd --state-dir, smtctl --pin-root).
inline constexpr const char* kDefaultPinRoot = "/sys/fs/bpf/smt";

/// One pinned global map, held open.
struct PinnedMap {
  std::string name;      ///< map name, also the pin's file name (SMT_MAP_*)
  std::string pin_path;  ///< <pin root>/<name>
  UniqueFd fd;           ///< read-write fd of the map
  uint32_t id = 0;       ///< kernel map id (same for every process using the pin)
  bool created = false;  ///< this call created and pinned it; false: reused a pin
};

/// Open fds of the instance's global maps. Move-only; closing the fds leaves
/// the maps alive through their pins.
class GlobalMaps {
 public:
  const std::string& pin_root() const { return pin_root_; }
  const PinnedMap& sessions() const { return sessions_; }
  const PinnedMap& port_leases() const { return port_leases_; }
  int sessions_fd() const { return sessions_.fd.get(); }
  int port_leases_fd() const { return port_leases_.fd.get(); }
  const PinnedMap& grant_tables() const { return grant_tables_; }
  int grant_tables_fd() const { return grant_tables_.fd.get(); }

  /// Makes `obj` (opened, not yet loaded) use these maps instead of creating
  /// its own: every map of `obj` named like a global map gets
  /// the pinned fd through bpf_map__reuse_fd. Fails, naming the map and the
  /// field, if the object's definition differs from the pinned map's (an
  /// object built from another wire.h). Maps `obj` lacks are skipped.
  Status reuse_in(struct bpf_object* obj) const;

 private:
  friend Result<GlobalMaps> open_global_maps(const std::string& pin_root);
  std::string pin_root_;
  PinnedMap sessions_;
  PinnedMap port_leases_;
  PinnedMap grant_tables_;
};

/// Opens the global maps pinned under `pin_root`, creating and pinning any
/// that are missing:
///  - the pin root must be on a BPF filesystem (checked on its nearest
///    existing ancestor before anything is created); missing directories are
///    created with mode 0700;
///  - an existing pin must be a map whose type, key size, value size,
///    max_entries and flags equal the definition in bpf/global_maps.bpf.h,
///    else the error names the map, the pin, the field, found and expected
///    values and how to fix it; the pin is left in place;
///  - a missing map is created (with BTF) and pinned; if another process pins
///    it first, that pin is opened and checked instead, so concurrent callers
///    all end up with the same maps.
/// Needs CAP_BPF (root) to create or open pins. Error codes: ENOTSUP (not on
/// bpffs), EEXIST (a pin that is not this build's map; message lists every
/// such pin), EINVAL (relative path), otherwise the failing call's errno.
Result<GlobalMaps> open_global_maps(const std::string& pin_root = kDefaultPinRoot);

}  // namespace smt::loader
