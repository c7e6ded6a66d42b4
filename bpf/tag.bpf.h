/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Tag checks of the XDP receive program: the DATA header tag over struct
 * smt_data_mac_input and the control tag over prefix ‖ body ‖ control_seq,
 * rebuilt from the header and body the parse stage copied and checked
 * (docs/wire-format.md §6.2, §9.1), with include/smt/siphash.h, the same C
 * the C++ side runs.
 */
#ifndef SMT_BPF_TAG_BPF_H
#define SMT_BPF_TAG_BPF_H

#include "parse.bpf.h"
#include "smt/siphash.h"

/* The MAC prefix: version ‖ type ‖ sport ‖ dport ‖ 0 ‖ message_id. */
static __always_inline void smt_fill_prefix(__u8 *in, const __u8 *hdr, __u8 type)
{
	in[0] = SMT_VERSION;
	in[1] = type;
	__builtin_memcpy(in + 2, hdr + 0, 4); /* sport, dport */
	in[6] = 0;
	in[7] = 0;
	__builtin_memcpy(in + 8, hdr + 20, 8); /* message_id */
}

/* 1 if the DATA header tag verifies under key. Every byte of the input comes
 * from a parsed header whose doff and reserved bytes were checked, so it
 * equals what data_header_tag() builds from the parsed fields. */
static __always_inline int smt_data_tag_ok(const struct smt_rx *rx, const __u8 *key)
{
	__u8 in[sizeof(struct smt_data_mac_input)];
	const __u8 *p = rx->hdr;

	smt_fill_prefix(in, p, SMT_TYPE_DATA);
	__builtin_memcpy(in + 16, p + 8, 4);   /* incoming */
	__builtin_memcpy(in + 20, p + 28, 12); /* length, offset, index, epoch */
	in[32] = p[12];                        /* doff */
	in[33] = p[15];                        /* flags */
	in[34] = p[40];                        /* priority */
	__builtin_memcpy(in + 35, p + 41, 3);  /* reserved */
	in[38] = 0;
	in[39] = 0;
	return smt_siphash_tag_equal(p + 44, smt_siphash24(key, in, sizeof(in)));
}

/* 1 if the control tag verifies under key. */
static __always_inline int smt_ctl_tag_ok(const struct smt_rx *rx, const __u8 *key)
{
	/* one spare word so the tail after the input is never read past */
	__u8 in[SMT_CTL_MAC_INPUT_MAX + 8] = {};
	const __u8 *p = rx->hdr;
	__u32 body = rx->body_len;
	__u32 i;

	if (body > SMT_CTL_BODY_MAX)
		return 0;
	smt_fill_prefix(in, p, rx->type);
	/* The whole body buffer: bytes past body_len are 0 and are either
	 * overwritten by control_seq or lie past the hashed length. */
	__builtin_memcpy(in + sizeof(struct smt_mac_prefix), rx->body, SMT_CTL_BODY_MAX);
	for (i = 0; i < 8; i++)
		in[sizeof(struct smt_mac_prefix) + body + i] = p[28 + i]; /* control_seq */
	return smt_siphash_tag_equal(
		p + 36, smt_siphash24(key, in, sizeof(struct smt_mac_prefix) + body + 8));
}

#endif /* SMT_BPF_TAG_BPF_H */
