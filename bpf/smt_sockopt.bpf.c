// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The setsockopt guard of SMT's raw sockets (CONTRACT §7, docs/smtd.md
 * "Datapath sockets"). smtd attaches it to the cgroup v2 root through a
 * pinned bpf_link, so it sees every setsockopt on the machine.
 *
 * Refused (return 0, the caller gets EPERM): IP_HDRINCL at SOL_IP and
 * IPV6_HDRINCL at SOL_IPV6 on a raw socket of SMT's protocol number in
 * smtd's network namespace, unless the calling task's uid is in
 * sockopt_trusted_uids_hash (smtd puts uid 0 and every `trusted = yes` uid
 * there). A raw socket without HDRINCL lets the kernel write the IP header:
 * the holder cannot forge source addresses or the protocol number.
 *
 * Everything else passes untouched: return 1 with optlen as it came, so the
 * kernel's own handler runs on the caller's buffer.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "smt/wire.h"
#include "smt_datapath_layout.h"

#ifndef SOL_IP
#define SOL_IP 0
#endif
#ifndef SOL_IPV6
#define SOL_IPV6 41
#endif
#ifndef IP_HDRINCL
#define IP_HDRINCL 3
#endif
#define SMT_IPV6_HDRINCL 36 /* linux/in6.h, Linux 4.5+ */
#define SMT_SOCK_RAW 3

/* SMT's IP protocol number and smtd's network namespace (0: every
 * namespace); the loader sets both before load. */
const volatile __u8 smt_ipproto = SMT_IPPROTO_DEFAULT;
const volatile __u64 smt_netns_cookie = 0;

/* See smt_datapath_layout.h. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u8);
	__uint(max_entries, SMT_TRUSTED_UIDS_MAX);
} sockopt_trusted_uids_hash SEC(".maps");

/* See smt_datapath_layout.h. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, SMT_SOCKOPT_STAT_COUNT);
} sockopt_stats SEC(".maps");

static __always_inline void smt_sockopt_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&sockopt_stats, &stat);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("cgroup/setsockopt")
int smt_sockopt(struct bpf_sockopt *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	__u32 uid;

	if (!((ctx->level == SOL_IP && ctx->optname == IP_HDRINCL) ||
	      (ctx->level == SOL_IPV6 && ctx->optname == SMT_IPV6_HDRINCL)))
		return 1;
	if (!sk || sk->type != SMT_SOCK_RAW || sk->protocol != smt_ipproto)
		return 1;
	if (smt_netns_cookie != 0 && bpf_get_netns_cookie(ctx) != smt_netns_cookie)
		return 1;
	/* The real uid of the calling task (bpf_get_current_uid_gid). */
	uid = (__u32)bpf_get_current_uid_gid();
	if (bpf_map_lookup_elem(&sockopt_trusted_uids_hash, &uid)) {
		smt_sockopt_count(SMT_SOCKOPT_TRUSTED);
		return 1;
	}
	smt_sockopt_count(SMT_SOCKOPT_REFUSED);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
