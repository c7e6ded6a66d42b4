#include "loader/global_maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <string_view>

#include "global_maps.skel.h"
#include "loader/libbpf_log.h"
#include "smt/wire.h"

namespace smt::loader {
namespace {

// Pin, then find the pin gone or taken: how often to start over before
// giving up. Only a process deleting pins while we run makes us loop.
constexpr int kAttempts = 4;

constexpr std::string_view kMountHint = "mount it with: mount -t bpf bpf /sys/fs/bpf";

struct SkelDeleter {
  void operator()(global_maps_bpf* s) const { global_maps_bpf__destroy(s); }
};
using SkelPtr = std::unique_ptr<global_maps_bpf, SkelDeleter>;

/// The fields that make two maps interchangeable.
struct MapDef {
  uint32_t type = 0;
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint32_t map_flags = 0;
};

MapDef def_of(const struct bpf_map* m) {
  return MapDef{static_cast<uint32_t>(bpf_map__type(m)), bpf_map__key_size(m),
                bpf_map__value_size(m), bpf_map__max_entries(m), bpf_map__map_flags(m)};
}

MapDef def_of(const struct bpf_map_info& info) {
  return MapDef{info.type, info.key_size, info.value_size, info.max_entries, info.map_flags};
}

std::string type_name(uint32_t type) {
  const char* s = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(type));
  return s != nullptr ? std::string(s) + " (" + std::to_string(type) + ")"
                      : "unknown (" + std::to_string(type) + ")";
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%" PRIx32, v);
  return buf;
}

/// "value_size is 64, expected 56; ..." for each differing field, or "".
std::string describe_mismatch(const MapDef& found, const MapDef& want) {
  std::string out;
  auto add = [&out](const char* field, const std::string& f, const std::string& w) {
    if (!out.empty()) out += "; ";
    out += std::string(field) + " is " + f + ", expected " + w;
  };
  if (found.type != want.type) add("type", type_name(found.type), type_name(want.type));
  if (found.key_size != want.key_size) {
    add("key_size", std::to_string(found.key_size), std::to_string(want.key_size));
  }
  if (found.value_size != want.value_size) {
    add("value_size", std::to_string(found.value_size), std::to_string(want.value_size));
  }
  if (found.max_entries != want.max_entries) {
    add("max_entries", std::to_string(found.max_entries), std::to_string(want.max_entries));
  }
  if (found.map_flags != want.map_flags) {
    add("map_flags", hex32(found.map_flags), hex32(want.map_flags));
  }
  return out;
}

std::string strerr(int err) { return libbpf_error_string(err); }

/// Appends libbpf's own warnings (captured while quiet) to a message.
std::string with_libbpf_reason(std::string msg) {
  std::string w = take_libbpf_warnings();
  if (!w.empty()) msg += "\nlibbpf said:\n" + w;
  return msg;
}

std::string privilege_hint(int err) {
  return (err == EPERM || err == EACCES) ? " (needs CAP_BPF: run as root)" : "";
}

Result<struct bpf_map_info> map_info(int fd) {
  struct bpf_map_info info;
  std::memset(&info, 0, sizeof info);
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
    int err = errno;
    return make_error(err, "reading map info failed: " + strerr(err));
  }
  return info;
}

// ---- pin root ---------------------------------------------------------------

const char* fs_name(int64_t magic) {
  switch (magic) {
    case TMPFS_MAGIC:
      return "tmpfs";
    case SYSFS_MAGIC:
      return "sysfs";
    case PROC_SUPER_MAGIC:
      return "proc";
    case EXT4_SUPER_MAGIC:
      return "ext2/3/4";
    case OVERLAYFS_SUPER_MAGIC:
      return "overlayfs";
    case BTRFS_SUPER_MAGIC:
      return "btrfs";
    case XFS_SUPER_MAGIC:
      return "xfs";
    default:
      return nullptr;
  }
}

std::string parent_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == 0 || slash == std::string::npos) return "/";
  return path.substr(0, slash);
}

/// Checks that `root` is (or would be) on a BPF filesystem and creates it and
/// any missing parents with mode 0700. Nothing is created outside bpffs.
Status prepare_pin_root(const std::string& root) {
  if (root.empty() || root[0] != '/') {
    return make_error(EINVAL, "pin root '" + root + "' must be an absolute path");
  }
  // Nearest existing ancestor: the filesystem the new directories would be on.
  std::string existing = root;
  struct stat st;
  while (::stat(existing.c_str(), &st) != 0) {
    int err = errno;
    if (err != ENOENT) {
      return make_error(err, "cannot inspect pin root " + existing + ": " + strerr(err));
    }
    existing = parent_of(existing);
  }
  struct statfs sfs;
  if (::statfs(existing.c_str(), &sfs) != 0) {
    int err = errno;
    return make_error(err, "cannot inspect pin root " + existing + ": " + strerr(err));
  }
  if (static_cast<uint32_t>(sfs.f_type) != BPF_FS_MAGIC) {
    const char* fs = fs_name(sfs.f_type);
    std::string msg = "pin root " + root + " is not on a BPF filesystem (" + existing + " is on " +
                      (fs != nullptr ? std::string(fs) : "filesystem " + hex32(sfs.f_type)) +
                      "); " + std::string(kMountHint);
    if (root.rfind("/sys/fs/bpf/", 0) != 0) msg += ", and choose a pin root below it";
    return make_error(ENOTSUP, msg);
  }
  // Create the missing components, outermost first. EEXIST: a concurrent
  // caller made it; the final check below still insists on a directory.
  for (size_t pos = existing.size() == 1 ? 1 : existing.size() + 1; pos <= root.size();) {
    size_t next = root.find('/', pos);
    if (next == std::string::npos) next = root.size();
    if (next > pos) {
      std::string dir = root.substr(0, next);
      if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        int err = errno;
        return make_error(
            err, "cannot create pin directory " + dir + ": " + strerr(err) + privilege_hint(err));
      }
    }
    pos = next + 1;
  }
  if (::stat(root.c_str(), &st) != 0) {
    int err = errno;
    return make_error(err, "cannot inspect pin root " + root + ": " + strerr(err));
  }
  if (!S_ISDIR(st.st_mode)) {
    return make_error(ENOTDIR, "pin root " + root + " exists but is not a directory");
  }
  return {};
}

// ---- one pin ----------------------------------------------------------------

/// What /proc says the fd is ("map", "prog", "link", ...), or "" if unknown.
std::string bpf_object_kind(int fd) {
  char link[64];
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
  if (n <= 0) return "";
  std::string_view target(link, static_cast<size_t>(n));
  constexpr std::string_view prefix = "anon_inode:bpf-";
  if (target.substr(0, prefix.size()) != prefix) return std::string(target);
  return std::string(target.substr(prefix.size()));
}

std::string stale_pin_advice(const std::string& path) {
  return ". If no smtd is running for this pin root, remove the stale pin with: rm " + path +
         " (smtd recreates it at start)";
}

/// Opens the pin at pm->pin_path and checks it against `want`. Leaves pm->fd
/// invalid if there is no pin; errors if it is not the map this build wants.
Status open_existing(PinnedMap* pm, const MapDef& want) {
  int fd = bpf_obj_get(pm->pin_path.c_str());
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return {};
    return make_error(err, "cannot open pinned map " + pm->name + " at " + pm->pin_path + ": " +
                               strerr(err) + privilege_hint(err));
  }
  UniqueFd owned(fd);
  std::string kind = bpf_object_kind(owned.get());
  if (!kind.empty() && kind != "map") {
    return make_error(EEXIST, pm->pin_path + " is pinned but is not a map (it is a " + kind + ")" +
                                  stale_pin_advice(pm->pin_path));
  }
  auto info = map_info(owned.get());
  if (!info) {
    return make_error(info.error().code, "pinned map " + pm->name + " at " + pm->pin_path + ": " +
                                             info.error().message);
  }
  std::string diff = describe_mismatch(def_of(*info), want);
  if (!diff.empty()) {
    return make_error(
        EEXIST, "pinned map " + pm->name + " at " + pm->pin_path + " does not match this build: " +
                    diff + " (left by another SMT version?)" + stale_pin_advice(pm->pin_path));
  }
  pm->fd = std::move(owned);
  pm->id = info->id;
  pm->created = false;
  return {};
}

/// Pins the freshly created map `m` at pm->pin_path. Returns false (and no
/// error) if another process pinned one there first.
Result<bool> pin_created(PinnedMap* pm, struct bpf_map* m) {
  int mfd = bpf_map__fd(m);
  if (bpf_obj_pin(mfd, pm->pin_path.c_str()) != 0) {
    int err = errno;
    if (err == EEXIST) return false;
    return make_error(err, "pinning map " + pm->name + " at " + pm->pin_path +
                               " failed: " + strerr(err) + privilege_hint(err));
  }
  UniqueFd dup(::fcntl(mfd, F_DUPFD_CLOEXEC, 0));
  if (!dup) {
    int err = errno;
    return make_error(err, "dup of map " + pm->name + " failed: " + strerr(err));
  }
  auto info = map_info(dup.get());
  if (!info) return info.error();
  pm->fd = std::move(dup);
  pm->id = info->id;
  pm->created = true;
  return true;
}

}  // namespace

Result<GlobalMaps> open_global_maps(const std::string& pin_root) {
  install_libbpf_logging();
  std::string root = pin_root;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (Status s = prepare_pin_root(root); !s) return s.error();

  GlobalMaps out;
  out.pin_root_ = root;
  out.sessions_.name = SMT_MAP_SESSIONS;
  out.port_leases_.name = SMT_MAP_PORT_LEASES;
  out.grant_tables_.name = SMT_MAP_GRANT_TABLES;
  PinnedMap* pinned[] = {&out.sessions_, &out.port_leases_, &out.grant_tables_};
  for (PinnedMap* pm : pinned) pm->pin_path = root + "/" + pm->name;

  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    take_libbpf_warnings();
    SkelPtr skel(global_maps_bpf__open());
    if (!skel) {
      int err = errno;
      return make_error(err, with_libbpf_reason("opening the embedded global maps object failed: " +
                                                strerr(err)));
    }
    struct bpf_map* maps[] = {skel->maps.sessions_hash, skel->maps.port_leases_hash,
                              skel->maps.grant_tables};

    bool missing = false;
    Error refused{0, ""};  // every bad pin, so one run tells the operator all
    for (size_t i = 0; i < std::size(pinned); ++i) {
      PinnedMap* pm = pinned[i];
      if (pm->name != bpf_map__name(maps[i])) {
        return make_error(EINVAL, "global maps object names map " + std::to_string(i) + " '" +
                                      bpf_map__name(maps[i]) + "', wire.h says '" + pm->name + "'");
      }
      if (!pm->fd) {
        if (Status s = open_existing(pm, def_of(maps[i])); !s) {
          if (!refused.message.empty()) refused.message += "\n";
          refused.message += s.error().message;
          refused.code = s.error().code;
          continue;
        }
      }
      if (!pm->fd) {
        missing = true;
        continue;
      }
      // Loading below must not create a second copy of a map we already have.
      if (int err = bpf_map__reuse_fd(maps[i], pm->fd.get()); err != 0) {
        return make_error(
            -err, with_libbpf_reason("reusing map " + pm->name + " failed: " + strerr(err)));
      }
    }
    if (refused.code != 0) return refused;
    if (!missing) return out;

    if (int err = global_maps_bpf__load(skel.get()); err != 0) {
      return make_error(-err, with_libbpf_reason("creating the global maps under " + root +
                                                 " failed: " + strerr(err) + privilege_hint(-err)));
    }
    for (size_t i = 0; i < std::size(pinned); ++i) {
      if (pinned[i]->fd) continue;
      auto won = pin_created(pinned[i], maps[i]);
      if (!won) return won.error();
      // Lost the race: the next attempt opens and checks the winner's pin.
    }
  }
  return make_error(EAGAIN, "global maps under " + root +
                                " kept disappearing while being pinned; is something "
                                "deleting pins there?");
}

Status GlobalMaps::reuse_in(struct bpf_object* obj) const {
  install_libbpf_logging();
  if (obj == nullptr) return make_error(EINVAL, "reuse_in: no BPF object");
  for (const PinnedMap* pm : {&sessions_, &port_leases_, &grant_tables_}) {
    struct bpf_map* m = bpf_object__find_map_by_name(obj, pm->name.c_str());
    if (m == nullptr) continue;
    const std::string where = "map " + pm->name + " of object " + bpf_object__name(obj);
    if (bpf_map__fd(m) >= 0) {
      // Already reused (a second call) is fine; already created is not.
      auto cur = map_info(bpf_map__fd(m));
      if (cur && cur->id == pm->id) continue;
      return make_error(EBUSY, where + " already has its own map; call reuse_in before loading");
    }
    auto info = map_info(pm->fd.get());
    if (!info) return make_error(info.error().code, pm->pin_path + ": " + info.error().message);
    std::string diff = describe_mismatch(def_of(m), def_of(*info));
    if (!diff.empty()) {
      return make_error(EINVAL, where + " differs from the pinned map at " + pm->pin_path + ": " +
                                    diff + " (object built from another wire.h?)");
    }
    take_libbpf_warnings();
    if (int err = bpf_map__reuse_fd(m, pm->fd.get()); err != 0) {
      return make_error(-err, with_libbpf_reason("reusing " + pm->pin_path + " for " + where +
                                                 " failed: " + strerr(err)));
    }
  }
  return {};
}

}  // namespace smt::loader
