/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The maps the XDP receive program (smt_xdp.bpf.c) owns, besides the global
 * maps it reuses from global_maps.bpf.h (sessions, port leases, grant tables).
 * Layouts and sizes come from include/smt/wire.h; docs/xdp.md explains them.
 */
#ifndef SMT_BPF_XDP_MAPS_BPF_H
#define SMT_BPF_XDP_MAPS_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "smt/wire.h"

/*
 * xsks_map (per interface, <root>/if-<ifindex>/xsks_map)
 * Key:    __u32 rx queue index.
 * Value:  __u32 AF_XDP socket fd (the kernel keeps the socket).
 * Writer: smtd, when it hands an owner its AF_XDP socket for that queue.
 * Reader: the XDP program (redirect of an AF_XDP session's packets).
 */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, SMT_XSK_QUEUES_MAX);
} xsks_map SEC(".maps");

/*
 * stats_percpu (per interface, <root>/if-<ifindex>/stats_percpu)
 * Key:    __u32, enum smt_xdp_stat.
 * Value:  __u64 frames (per CPU; readers sum the CPUs).
 * Writer: the XDP program. Readers: smtctl, tests.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, SMT_XDP_STAT_COUNT);
} stats_percpu SEC(".maps");

/*
 * session_mac_fail_percpu (per interface)
 * Key:    struct smt_session_key of the session whose tag failed.
 * Value:  __u64 tag failures (per CPU; readers sum the CPUs).
 * Writer: the XDP program; smtd deletes the entry when it deletes the session.
 * Readers: smtd (closes a session after 2^32 failures, CONTRACT §5), smtctl.
 * LRU so that failures for sessions smtd forgot to clean never fill it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__type(key, struct smt_session_key);
	__type(value, __u64);
	__uint(max_entries, SMT_SESSIONS_MAX);
} session_mac_fail_percpu SEC(".maps");

#endif /* SMT_BPF_XDP_MAPS_BPF_H */
