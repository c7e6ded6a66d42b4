// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The port filter of the raw sockets smtd hands to applications that may not
 * have AF_XDP (CONTRACT §7, docs/smtd.md "Datapath sockets"). smtd attaches
 * it with SO_ATTACH_BPF and locks it (SO_LOCK_FILTER), so the holder can
 * neither remove nor replace it.
 *
 * A packet is kept only if its SMT destination port is leased
 * (port_leases_hash) by the owner smtd recorded for this very socket
 * (raw_owners_hash, keyed by the socket cookie); everything else is dropped
 * and counted. The filter runs in the socket's receive path with skb->sk set
 * to the socket, so bpf_get_socket_cookie names it. Headers are read relative
 * to the network header: an IPv4 raw socket's skb starts at the IP header, an
 * IPv6 one's at the payload.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "global_maps.bpf.h"
#include "smt_datapath_layout.h"

/* SMT's IP protocol number; the loader sets it before load. */
const volatile __u8 smt_ipproto = SMT_IPPROTO_DEFAULT;

/* See smt_datapath_layout.h. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, struct smt_raw_owner);
	__uint(max_entries, SMT_RAW_OWNERS_MAX);
} raw_owners_hash SEC(".maps");

/* See smt_datapath_layout.h. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, SMT_RAWF_STAT_COUNT);
} rawfilter_stats_percpu SEC(".maps");

#define SMT_KEEP 0xffffffffu /* keep the whole packet */
#define SMT_DROP 0u

static __always_inline __u32 smt_rawf_verdict(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&rawfilter_stats_percpu, &stat);

	if (v)
		*v += 1;
	return stat == SMT_RAWF_ACCEPT ? SMT_KEEP : SMT_DROP;
}

/* Offset of the SMT header from the network header, or -1 if the packet is
 * not SMT over IPv4 or IPv6 without extension headers. */
static __always_inline int smt_rawf_l4_offset(struct __sk_buff *skb)
{
	__u8 ip[40];

	if (bpf_skb_load_bytes_relative(skb, 0, ip, 1, BPF_HDR_START_NET))
		return -1;
	if ((ip[0] >> 4) == 4) {
		__u32 ihl = (ip[0] & 0x0f) * 4;

		if (ihl < 20)
			return -1;
		if (bpf_skb_load_bytes_relative(skb, 0, ip, 20, BPF_HDR_START_NET))
			return -1;
		if (ip[9] != smt_ipproto)
			return -1;
		return (int)ihl;
	}
	if ((ip[0] >> 4) == 6) {
		if (bpf_skb_load_bytes_relative(skb, 0, ip, 40, BPF_HDR_START_NET))
			return -1;
		/* next header: SMT directly (the XDP program and the raw link
		 * drop extension headers too) */
		if (ip[6] != smt_ipproto)
			return -1;
		return 40;
	}
	return -1;
}

SEC("socket")
int smt_rawfilter(struct __sk_buff *skb)
{
	struct smt_port_lease_key lk = {};
	struct smt_port_lease_value *lease;
	struct smt_raw_owner *owner;
	__u16 ports[2];
	__u64 cookie;
	int off;

	off = smt_rawf_l4_offset(skb);
	if (off < 0 || off > 60)
		return smt_rawf_verdict(SMT_RAWF_DROP_MALFORMED);
	/* source port at 0, destination port at 2 (network order) */
	if (bpf_skb_load_bytes_relative(skb, off, ports, sizeof(ports), BPF_HDR_START_NET))
		return smt_rawf_verdict(SMT_RAWF_DROP_MALFORMED);

	cookie = bpf_get_socket_cookie(skb);
	owner = bpf_map_lookup_elem(&raw_owners_hash, &cookie);
	if (!owner)
		return smt_rawf_verdict(SMT_RAWF_DROP_NO_OWNER);

	lk.port = ports[1];
	lease = bpf_map_lookup_elem(&port_leases_hash, &lk);
	if (!lease)
		return smt_rawf_verdict(SMT_RAWF_DROP_NOT_LEASED);
	if (lease->owner_id != 0 &&
	    (lease->owner_id == owner->owner_id || lease->owner_id == owner->prev_owner_id))
		return smt_rawf_verdict(SMT_RAWF_ACCEPT);
	return smt_rawf_verdict(SMT_RAWF_DROP_OTHER_OWNER);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
