#include "smtd/map_store.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <dirent.h>

#include <cstring>
#include <vector>

#include <bpf/libbpf.h>

namespace smt::smtd {
namespace {

Error map_error(const char* what, const std::string& map) {
  int e = errno;
  return make_error(e, std::string(what) + " in " + map + " failed: " + std::strerror(e));
}

template <typename K>
std::vector<K> all_keys(int fd) {
  std::vector<K> keys;
  K cur{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    cur = next;
    prev = &cur;
    if (keys.size() > 1u << 20) break;  // a map cannot hold more; guard against churn
  }
  return keys;
}

Result<UniqueFd> open_holders(const std::string& root) {
  const std::string path = root + "/" + SMTD_MAP_HOLDERS;
  for (int attempt = 0; attempt < 3; ++attempt) {
    int fd = bpf_obj_get(path.c_str());
    if (fd >= 0) {
      UniqueFd owned(fd);
      struct bpf_map_info info;
      std::memset(&info, 0, sizeof info);
      uint32_t len = sizeof info;
      if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return map_error("reading info", path);
      if (info.type != BPF_MAP_TYPE_HASH || info.key_size != sizeof(smt_session_key) ||
          info.value_size != sizeof(smtd_holder_record)) {
        return make_error(EEXIST, path + " is not this smtd's holder map (key " +
                                      std::to_string(info.key_size) + ", value " +
                                      std::to_string(info.value_size) +
                                      " bytes); if no smtd runs on this state dir, rm it");
      }
      return owned;
    }
    if (errno != ENOENT) return map_error("opening", path);
    // LIBBPF_OPTS is C only; fill the struct by hand. No preallocation: the map
    // is usually near empty and a full one would pin 20 MiB.
    struct bpf_map_create_opts opts;
    std::memset(&opts, 0, sizeof opts);
    opts.sz = sizeof opts;
    opts.map_flags = BPF_F_NO_PREALLOC;
    int created = bpf_map_create(BPF_MAP_TYPE_HASH, SMTD_MAP_HOLDERS, sizeof(smt_session_key),
                                 sizeof(smtd_holder_record), SMT_SESSIONS_MAX, &opts);
    if (created < 0) return map_error("creating", path);
    UniqueFd owned(created);
    if (bpf_obj_pin(created, path.c_str()) == 0) return owned;
    if (errno != EEXIST) return map_error("pinning", path);
    // Another smtd pinned it first: open theirs.
  }
  return make_error(EAGAIN, "could not create or open " + path);
}

}  // namespace

Result<MapStore> MapStore::open(const std::string& pin_root) {
  auto maps = loader::open_global_maps(pin_root);
  if (!maps) return maps.error();
  auto holders = open_holders(maps->pin_root());
  if (!holders) return holders.error();
  return MapStore(std::move(*maps), std::move(*holders));
}

Status MapStore::put_session(const smt_session_key& k, const smt_session_value& v) {
  if (bpf_map_update_elem(maps_.sessions_fd(), &k, &v, BPF_ANY) != 0) {
    return map_error("update", SMT_MAP_SESSIONS);
  }
  return {};
}

Status MapStore::delete_session(const smt_session_key& k) {
  if (bpf_map_delete_elem(maps_.sessions_fd(), &k) != 0 && errno != ENOENT) {
    return map_error("delete", SMT_MAP_SESSIONS);
  }
  return {};
}

bool MapStore::has_session(const smt_session_key& k) const {
  smt_session_value v;
  return bpf_map_lookup_elem(maps_.sessions_fd(), &k, &v) == 0;
}

Result<smt_session_value> MapStore::get_session(const smt_session_key& k) const {
  smt_session_value v;
  if (bpf_map_lookup_elem(maps_.sessions_fd(), &k, &v) != 0) {
    return map_error("lookup", SMT_MAP_SESSIONS);
  }
  return v;
}

Status MapStore::put_lease(uint16_t port, const smt_port_lease_value& v) {
  smt_port_lease_key k{htons(port), 0};
  if (bpf_map_update_elem(maps_.port_leases_fd(), &k, &v, BPF_ANY) != 0) {
    return map_error("update", SMT_MAP_PORT_LEASES);
  }
  return {};
}

Status MapStore::delete_lease(uint16_t port) {
  smt_port_lease_key k{htons(port), 0};
  if (bpf_map_delete_elem(maps_.port_leases_fd(), &k) != 0 && errno != ENOENT) {
    return map_error("delete", SMT_MAP_PORT_LEASES);
  }
  return {};
}

Status MapStore::put_holder(const smt_session_key& k, const smtd_holder_record& r) {
  if (bpf_map_update_elem(holders_.get(), &k, &r, BPF_ANY) != 0) {
    return map_error("update", SMTD_MAP_HOLDERS);
  }
  return {};
}

Status MapStore::delete_holder(const smt_session_key& k) {
  if (bpf_map_delete_elem(holders_.get(), &k) != 0 && errno != ENOENT) {
    return map_error("delete", SMTD_MAP_HOLDERS);
  }
  return {};
}

Result<UniqueFd> MapStore::create_owner_table(uint32_t owner) {
  struct bpf_map_create_opts opts;
  std::memset(&opts, 0, sizeof opts);
  opts.sz = sizeof opts;
  opts.map_flags = BPF_F_MMAPABLE;
  const std::string name = "smt_owner_" + std::to_string(owner % 100000);
  UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_ARRAY, name.c_str(), sizeof(uint32_t),
                             sizeof(smt_owner_table_entry), SMT_OWNER_TABLE_SESSIONS, &opts));
  if (!fd) return map_error("creating", "the owner table of application " + std::to_string(owner));
  int inner = fd.get();
  if (bpf_map_update_elem(maps_.grant_tables_fd(), &owner, &inner, BPF_ANY) != 0) {
    return map_error("update", SMT_MAP_GRANT_TABLES);
  }
  return fd;
}

Status MapStore::delete_owner_table(uint32_t owner) {
  if (bpf_map_delete_elem(maps_.grant_tables_fd(), &owner) != 0 && errno != ENOENT) {
    return map_error("delete", SMT_MAP_GRANT_TABLES);
  }
  return {};
}

size_t MapStore::clear_owner_tables() {
  size_t n = 0;
  for (uint32_t owner : all_keys<uint32_t>(maps_.grant_tables_fd())) {
    if (bpf_map_delete_elem(maps_.grant_tables_fd(), &owner) == 0) ++n;
  }
  return n;
}

Status MapStore::clear_owner_entry(int table_fd, uint32_t slot) {
  smt_owner_table_entry zero;
  std::memset(&zero, 0, sizeof zero);
  if (bpf_map_update_elem(table_fd, &slot, &zero, BPF_ANY) != 0) {
    return map_error("update", "an owner table");
  }
  return {};
}

std::vector<UniqueFd> MapStore::open_mac_fail_maps() const {
  std::vector<UniqueFd> out;
  DIR* d = ::opendir(maps_.pin_root().c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strncmp(e->d_name, "if-", 3) != 0) continue;
    const std::string path =
        maps_.pin_root() + "/" + e->d_name + "/" + SMT_MAP_SESSION_MAC_FAIL;
    UniqueFd fd(bpf_obj_get(path.c_str()));
    if (fd) out.push_back(std::move(fd));
  }
  ::closedir(d);
  return out;
}

uint64_t MapStore::mac_failures(const std::vector<UniqueFd>& maps, const smt_session_key& k) {
  static const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return 0;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  uint64_t sum = 0;
  for (const UniqueFd& fd : maps) {
    if (bpf_map_lookup_elem(fd.get(), &k, per_cpu.data()) != 0) continue;
    for (uint64_t v : per_cpu) sum += v;
  }
  return sum;
}

void MapStore::delete_mac_failures(const smt_session_key& k) const {
  for (const UniqueFd& fd : open_mac_fail_maps()) (void)bpf_map_delete_elem(fd.get(), &k);
}

void MapStore::for_each_holder(
    const std::function<void(const smt_session_key&, const smtd_holder_record&)>& fn) const {
  for (const auto& k : all_keys<smt_session_key>(holders_.get())) {
    smtd_holder_record r;
    if (bpf_map_lookup_elem(holders_.get(), &k, &r) == 0) {
      r.peer_identity[sizeof r.peer_identity - 1] = '\0';
      fn(k, r);
    }
  }
}

void MapStore::for_each_session(const std::function<void(const smt_session_key&)>& fn) const {
  for (const auto& k : all_keys<smt_session_key>(maps_.sessions_fd())) fn(k);
}

void MapStore::for_each_lease(
    const std::function<void(uint16_t, const smt_port_lease_value&)>& fn) const {
  for (const auto& k : all_keys<smt_port_lease_key>(maps_.port_leases_fd())) {
    smt_port_lease_value v;
    if (bpf_map_lookup_elem(maps_.port_leases_fd(), &k, &v) == 0) fn(ntohs(k.port), v);
  }
}

}  // namespace smt::smtd
