// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Test-only XDP program for the AF_XDP link tests: hands every frame to the
 * AF_XDP socket of its rx queue (xsks_map), malformed ones included, so the
 * link's own checks are what the tests exercise. Only neighbour resolution
 * (ARP, ICMPv6 for neighbour discovery, hop-by-hop for MLD) goes to the stack. Frames on a
 * queue without a socket pass.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

SEC("xdp")
int xsk_redirect_test(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *data_end = (__u8 *)(long)ctx->data_end;

	if (data + ETH_HLEN <= data_end) {
		__u16 type = bpf_ntohs(*(__u16 *)(data + 12));

		if (type == ETH_P_ARP)
			return XDP_PASS;
		/* IPv6 next header 58: ICMPv6 (neighbour discovery); 0:
		 * hop-by-hop options (MLD reports) */
		if (type == ETH_P_IPV6 && data + ETH_HLEN + 40 <= data_end &&
		    (data[ETH_HLEN + 6] == 58 || data[ETH_HLEN + 6] == 0))
			return XDP_PASS;
	}
	return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
