/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The global maps of one SMT instance: the single definition every BPF object
 * includes. loader/global_maps.cc creates them from the global_maps object,
 * pins them under the instance's pin root (CONTRACT §7) as <root>/<map name>,
 * and hands the pinned fds to every later object (the XDP program) through
 * bpf_map__reuse_fd, so all objects share one instance of each map.
 *
 * Pinning is done by the loader, not by libbpf's LIBBPF_PIN_BY_NAME, so that
 * a stale pin with another layout is refused with a clear message.
 *
 * The hashes are preallocated (no BPF_F_NO_PREALLOC): the XDP program looks
 * them up on every packet and smtd's updates must not fail on allocation.
 */
#ifndef SMT_BPF_GLOBAL_MAPS_BPF_H
#define SMT_BPF_GLOBAL_MAPS_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "smt/wire.h"

/*
 * sessions_hash (pinned as <root>/sessions_hash)
 * Key:    struct smt_session_key (addresses and ports of one session).
 * Value:  struct smt_session_value (serial, per-direction control keys,
 *         owner, owner queue, slot in the owner's grant table).
 * Writer: smtd (session set-up and tear-down).
 * Readers: the XDP program (demux, control-packet tags), smtctl.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct smt_session_key);
	__type(value, struct smt_session_value);
	__uint(max_entries, SMT_SESSIONS_MAX);
} sessions_hash SEC(".maps");

/*
 * port_leases_hash (pinned as <root>/port_leases_hash)
 * Key:    struct smt_port_lease_key (a local SMT port).
 * Value:  struct smt_port_lease_value (owning uid, pid and application).
 * Writer: smtd, when it grants or releases a port lease.
 * Readers: the XDP program, smtctl.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct smt_port_lease_key);
	__type(value, struct smt_port_lease_value);
	__uint(max_entries, SMT_PORT_LEASES_MAX);
} port_leases_hash SEC(".maps");

/*
 * The inner map of grant_tables: one owner's table, mmapped by that owner.
 * Key:    __u32 session_slot (smt_session_value.session_slot).
 * Value:  struct smt_owner_table_entry (published base, grant slots).
 */
struct smt_owner_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	/* Sizes, not types: clang emits a value type two pointers deep as a
	 * bare forward declaration, which libbpf cannot size. The tables are
	 * created without BTF by smtd anyway. */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct smt_owner_table_entry));
	__uint(max_entries, SMT_OWNER_TABLE_SESSIONS);
};

/*
 * grant_tables (pinned as <root>/grant_tables; smtd creates it at start if
 * no attach has yet)
 * Key:    __u32 owner_id.
 * Value:  the owner's struct smt_owner_table (an inner map fd on update).
 * Writers: smtd inserts and removes owners' tables; the owning engine writes
 *          its table's published_base and arms grant slots through mmap; the
 *          XDP program raises armed grant offsets (compare-and-swap), nothing
 *          else.
 * Reader: the XDP program (old-request filter, GRANT handling).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, SMT_OWNERS_MAX);
	__array(values, struct smt_owner_table);
} grant_tables SEC(".maps");

#endif /* SMT_BPF_GLOBAL_MAPS_BPF_H */
