// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The benchmark baseline (tools/xdp-bench): an XDP program that passes every
 * frame and does nothing else, so the cost of smt_xdp's parse, session
 * lookup and tag check shows as the difference between the two.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass_only(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
