// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Queue steering for the selftests' multi-queue topology (docs/selftests.md):
 * a tc classifier on the egress of W's interfaces that sends an SMT packet
 * (IP protocol 253, IPv4 or IPv6 without extension headers) out on queue
 * (destination port % queue count). On veth the queue a packet leaves on is
 * the queue it arrives on at the peer, so this stands in for the flow
 * steering rules (ethtool -N) a NIC would need to give each AF_XDP
 * application its own queue: application pair N uses ports with N = port %
 * queues. Everything else leaves as the kernel chose.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define SMT_SELFTEST_IPPROTO 253

/* Set by lib.sh (bpftool) before attaching: the interfaces' queue count. */
const volatile __u32 steer_queues = 2;

SEC("tc")
int smt_selftest_steer(struct __sk_buff *skb)
{
	const __u8 *data = (const __u8 *)(long)skb->data;
	const __u8 *end = (const __u8 *)(long)skb->data_end;
	const struct ethhdr *eth = (const struct ethhdr *)data;
	const __u8 *l4;
	__u16 dport;

	if ((const __u8 *)(eth + 1) > end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		const __u8 *ip = (const __u8 *)(eth + 1);

		if (ip + 20 > end || ip[9] != SMT_SELFTEST_IPPROTO)
			return TC_ACT_OK;
		l4 = ip + (ip[0] & 0x0f) * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		const __u8 *ip = (const __u8 *)(eth + 1);

		if (ip + 40 > end || ip[6] != SMT_SELFTEST_IPPROTO)
			return TC_ACT_OK;
		l4 = ip + 40;
	} else {
		return TC_ACT_OK;
	}
	/* The SMT header starts like TCP's: source port, destination port. */
	if (l4 + 4 > end)
		return TC_ACT_OK;
	dport = ((__u16)l4[2] << 8) | l4[3];
	/* Written as a recorded receive queue (queue + 1): for a forwarded
	 * packet the stack then picks that transmit queue (skb_tx_hash), as
	 * it does for a packet that came in on that queue. */
	if (steer_queues > 1)
		skb->queue_mapping = dport % steer_queues + 1;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
