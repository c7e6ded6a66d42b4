// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Loss injection on the forwarding namespace W (docs/selftests.md, and item 4
 * of tools/bench.sh): a tc classifier on W's ingress that drops the packets of
 * one IP protocol (cfg_array key 1: 253 for SMT in the selftests, SMT or TCP
 * in the benchmark; IPv4 or IPv6 without extension headers) with the
 * probability in cfg_array key 0, and counts every packet of that protocol it
 * saw and every one it dropped. Other traffic (ARP, ND, and smtd's TCP control
 * channels when the protocol is SMT's) always passes. Loaded once with bpftool
 * and attached by pin to both of W's interfaces, so the two share the maps.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

enum loss_stat {
	LOSS_SEEN = 0,
	LOSS_DROPPED = 1,
	LOSS_STAT_COUNT,
};

enum loss_cfg {
	/* A packet is dropped when bpf_get_prandom_u32() is below this
	 * (probability threshold / 2^32). */
	LOSS_CFG_THRESHOLD = 0,
	/* The IP protocol whose packets are subject to loss; 0: none. */
	LOSS_CFG_PROTOCOL = 1,
	LOSS_CFG_COUNT,
};

/* Written with bpftool before attaching (selftests/lib.sh, tools/bench.sh);
 * read here. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LOSS_CFG_COUNT);
	__type(key, __u32);
	__type(value, __u32);
} cfg_array SEC(".maps");

/* Key enum loss_stat: SMT packets seen and dropped, per CPU. Written here;
 * read (summed) by lib.sh with bpftool. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOSS_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats_percpu SEC(".maps");

static __always_inline void loss_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&stats_percpu, &stat);

	if (v)
		*v += 1;
}

/* The IP protocol (IPv4) or first next header (IPv6) of the frame, or -1. */
static __always_inline int loss_ip_proto(const struct __sk_buff *skb)
{
	const __u8 *data = (const __u8 *)(long)skb->data;
	const __u8 *end = (const __u8 *)(long)skb->data_end;
	const struct ethhdr *eth = (const struct ethhdr *)data;

	if ((const __u8 *)(eth + 1) > end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		/* version/IHL, ..., protocol at byte 9 */
		if ((const __u8 *)(eth + 1) + 20 > end)
			return -1;
		return ((const __u8 *)(eth + 1))[9];
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		/* next header at byte 6 of the 40-byte fixed header */
		if ((const __u8 *)(eth + 1) + 40 > end)
			return -1;
		return ((const __u8 *)(eth + 1))[6];
	}
	return -1;
}

SEC("tc")
int smt_selftest_loss(struct __sk_buff *skb)
{
	__u32 key = LOSS_CFG_PROTOCOL;
	__u32 *protocol = bpf_map_lookup_elem(&cfg_array, &key);
	__u32 *threshold;
	int proto = loss_ip_proto(skb);

	if (!protocol || *protocol == 0 || proto < 0 || (__u32)proto != *protocol)
		return TC_ACT_OK;
	loss_count(LOSS_SEEN);
	key = LOSS_CFG_THRESHOLD;
	threshold = bpf_map_lookup_elem(&cfg_array, &key);
	if (threshold && bpf_get_prandom_u32() < *threshold) {
		loss_count(LOSS_DROPPED);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
