// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Test-only XDP program: runs include/smt/siphash.h inside BPF so a test can
 * check, through BPF_PROG_TEST_RUN, that the very C source the datapath uses
 * passes the verifier and computes SipHash-2-4 correctly. Packet layout in
 * siphash_test_layout.h. Never attached to an interface.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "smt/siphash.h"
#include "siphash_test_layout.h"

_Static_assert(SMT_SIPHASH_TEST_MSG_OFF + SMT_SIPHASH_TEST_MSG_MAX <=
		       SMT_SIPHASH_TEST_TAG_OFF,
	       "message and tag do not overlap");
_Static_assert(SMT_SIPHASH_TEST_TAG_OFF + SMT_SIPHASH_TAG_LEN <=
		       SMT_SIPHASH_TEST_PKT_LEN,
	       "tag fits the packet");

SEC("xdp")
int siphash_test(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *data_end = (__u8 *)(long)ctx->data_end;
	__u8 key[SMT_SIPHASH_KEY_LEN];
	/* one spare byte so the buffer is a whole number of 64-bit words */
	__u8 msg[SMT_SIPHASH_TEST_MSG_MAX + 1] = {};
	__u32 i, n;
	__u64 tag;

	if (data + SMT_SIPHASH_TEST_PKT_LEN > data_end)
		return XDP_DROP;
	n = data[SMT_SIPHASH_TEST_LEN_OFF];
	if (n > SMT_SIPHASH_TEST_MSG_MAX)
		return XDP_DROP;

	for (i = 0; i < SMT_SIPHASH_KEY_LEN; i++)
		key[i] = data[SMT_SIPHASH_TEST_KEY_OFF + i];
	/*
	 * Hash a stack copy, as the datapath hashes its MAC input buffers. The
	 * whole message area is copied (the packet has a fixed length): a copy
	 * of n bytes would become a memcpy call, which BPF cannot make.
	 */
	for (i = 0; i < SMT_SIPHASH_TEST_MSG_MAX; i++)
		msg[i] = data[SMT_SIPHASH_TEST_MSG_OFF + i];

	tag = smt_siphash24(key, msg, n);
	smt_siphash_store_tag(data + SMT_SIPHASH_TEST_TAG_OFF, tag);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
