// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * xdp-bench phase 3 (AF_XDP copy-mode limit): redirects every IPv4 or IPv6
 * frame of IP protocol smt_ipproto to the AF_XDP socket in xsks under the
 * frame's receive queue, and passes everything else. No SMT parsing, no
 * session lookup, no tag: the benchmark measures the AF_XDP path, not
 * smt_xdp. counts[0] counts frames offered to the socket, counts[1] those
 * passed (each per CPU).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "smt/wire.h"

const volatile __u8 smt_ipproto = SMT_IPPROTO_DEFAULT;

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void count(__u32 i)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &i);

	if (c)
		*c += 1;
}

SEC("xdp")
int xsk_redirect_all(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 proto;

	if ((void *)(eth + 1) > data_end)
		goto pass;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			goto pass;
		proto = ip->protocol;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			goto pass;
		proto = ip6->nexthdr;
	} else {
		goto pass;
	}
	if (proto != smt_ipproto)
		goto pass;
	count(0);
	/* No socket under this queue: the stack gets it (XDP_PASS). */
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
pass:
	count(1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
