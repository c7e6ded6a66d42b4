// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Test-only: an XDP program the verifier must reject (it reads the packet
 * without a bounds check), so tests/loader can check that a rejection's log
 * is saved and named (loader/libbpf_log.h load_with_verifier_log). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int unchecked_read(struct xdp_md *ctx)
{
	const unsigned char *data = (const unsigned char *)(long)ctx->data;

	return data[0] == 0 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
