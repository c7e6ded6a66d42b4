// smtd's view of the pinned maps of its instance: the global sessions_hash and
// port_leases_hash (through loader::open_global_maps) and smtd's own
// smtd_holders_hash, which keeps what smtd needs to re-adopt sessions after a
// restart (docs/smtd.md "Restart and re-adoption"). All three live under the
// pin root (--state-dir), so they survive smtd but not a reboot.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "loader/global_maps.h"
#include "smt/wire.h"
#include "smtd/app_protocol.h"

/* smtd_holders_hash: key struct smt_session_key, value struct smtd_holder_record.
 * Writer and reader: smtd only. No key material: a SHA-256 digest of the
 * holder token, never the token itself. */
#define SMTD_MAP_HOLDERS "smtd_holders_hash"

struct smtd_holder_record {
  uint8_t token_digest[32];                  /*   0 SHA-256(holder token) */
  uint64_t serial;                           /*  32 */
  int64_t not_after;                         /*  40 unix time the session must end by */
  uint32_t owner_uid;                        /*  48 */
  uint32_t owner_pid;                        /*  52 */
  uint32_t peer_rx_queue;                    /*  56 */
  uint16_t suite;                            /*  60 */
  uint8_t initiator;                         /*  62 */
  uint8_t protocol;                          /*  63 */
  char peer_identity[SMTD_APP_IDENTITY_MAX]; /*  64 NUL-terminated */
};
static_assert(sizeof(smtd_holder_record) == 320, "smtd_holder_record size");

namespace smt::smtd {

class MapStore {
 public:
  /// Opens (creating if needed) the three maps under `pin_root`.
  static Result<MapStore> open(const std::string& pin_root);

  Status put_session(const smt_session_key& k, const smt_session_value& v);
  Status delete_session(const smt_session_key& k);
  bool has_session(const smt_session_key& k) const;
  Result<smt_session_value> get_session(const smt_session_key& k) const;
  Status put_lease(uint16_t port, const smt_port_lease_value& v);
  Status delete_lease(uint16_t port);
  Status put_holder(const smt_session_key& k, const smtd_holder_record& r);
  Status delete_holder(const smt_session_key& k);

  /// Creates owner `owner`'s table (docs/xdp.md "The owner table": an
  /// mmapable array of SMT_OWNER_TABLE_SESSIONS entries) and inserts it into
  /// grant_tables; returns its fd, which smtd hands to the owner.
  Result<UniqueFd> create_owner_table(uint32_t owner);
  /// Removes owner `owner`'s table from grant_tables (XDP stops using it).
  Status delete_owner_table(uint32_t owner);
  /// Removes every owner's table: a previous smtd's owners are gone.
  size_t clear_owner_tables();
  /// Zeroes one entry of a table: no published base, no armed grant slot.
  static Status clear_owner_entry(int table_fd, uint32_t slot);

  /// The session_mac_fail_percpu map of every interface attached under the
  /// pin root (<root>/if-*/), opened once per sweep.
  std::vector<UniqueFd> open_mac_fail_maps() const;
  /// One session's tag failures, summed over those maps and their CPUs.
  static uint64_t mac_failures(const std::vector<UniqueFd>& maps, const smt_session_key& k);
  /// Forgets a deleted session's tag failures on every interface.
  void delete_mac_failures(const smt_session_key& k) const;

  /// Visits every entry (used once, at start, to pick up state a previous smtd left).
  void for_each_holder(
      const std::function<void(const smt_session_key&, const smtd_holder_record&)>& fn) const;
  void for_each_session(const std::function<void(const smt_session_key&)>& fn) const;
  void for_each_lease(
      const std::function<void(uint16_t port, const smt_port_lease_value&)>& fn) const;

  const std::string& pin_root() const { return maps_.pin_root(); }

 private:
  MapStore(loader::GlobalMaps m, UniqueFd h)
      : maps_(std::move(m)), holders_(std::move(h)) {}
  loader::GlobalMaps maps_;
  UniqueFd holders_;
};

}  // namespace smt::smtd
