/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012): the one implementation of the SMT header and control-packet tags,
 * compiled into the BPF programs, the kernel module and the C++ code.
 *
 * Written for the BPF verifier: no pointer casts to wider types (every word
 * is assembled from bytes, so alignment never matters), and the loops are
 * bounded by SMT_SIPHASH_MAX_LEN.
 */
#ifndef SMT_SIPHASH_H
#define SMT_SIPHASH_H

#include <linux/types.h>

#ifdef __cplusplus
#define SMT_SIPHASH_INLINE static inline
#else
#define SMT_SIPHASH_INLINE static inline __attribute__((always_inline))
#endif

#define SMT_SIPHASH_KEY_LEN 16
#define SMT_SIPHASH_TAG_LEN 8
/* Longest input the loops accept; longer inputs hash only this prefix, so
 * callers must stay below it (every SMT MAC input is under 64 bytes). */
#define SMT_SIPHASH_MAX_LEN 256

SMT_SIPHASH_INLINE __u64 smt_sip_rotl(__u64 x, int b)
{
	return (x << b) | (x >> (64 - b));
}

SMT_SIPHASH_INLINE __u64 smt_sip_load_le64(const __u8 *p)
{
	return (__u64)p[0] | (__u64)p[1] << 8 | (__u64)p[2] << 16 |
	       (__u64)p[3] << 24 | (__u64)p[4] << 32 | (__u64)p[5] << 40 |
	       (__u64)p[6] << 48 | (__u64)p[7] << 56;
}

#define SMT_SIPROUND(v0, v1, v2, v3)                                          \
	do {                                                                  \
		v0 += v1;                                                     \
		v1 = smt_sip_rotl(v1, 13);                                    \
		v1 ^= v0;                                                     \
		v0 = smt_sip_rotl(v0, 32);                                    \
		v2 += v3;                                                     \
		v3 = smt_sip_rotl(v3, 16);                                    \
		v3 ^= v2;                                                     \
		v0 += v3;                                                     \
		v3 = smt_sip_rotl(v3, 21);                                    \
		v3 ^= v0;                                                     \
		v2 += v1;                                                     \
		v1 = smt_sip_rotl(v1, 17);                                    \
		v1 ^= v2;                                                     \
		v2 = smt_sip_rotl(v2, 32);                                    \
	} while (0)

/* SipHash-2-4 of in[0..len) under a 16-byte key. */
SMT_SIPHASH_INLINE __u64 smt_siphash24(const __u8 *key, const __u8 *in, __u32 len)
{
	__u64 k0 = smt_sip_load_le64(key);
	__u64 k1 = smt_sip_load_le64(key + 8);
	__u64 v0 = k0 ^ 0x736f6d6570736575ULL;
	__u64 v1 = k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = k0 ^ 0x6c7967656e657261ULL;
	__u64 v3 = k1 ^ 0x7465646279746573ULL;
	__u64 m, last;
	__u32 i, full, rem;

	if (len > SMT_SIPHASH_MAX_LEN)
		len = SMT_SIPHASH_MAX_LEN;
	full = len & ~7u;
	rem = len & 7u;

	for (i = 0; i < SMT_SIPHASH_MAX_LEN; i += 8) {
		if (i >= full)
			break;
		m = smt_sip_load_le64(in + i);
		v3 ^= m;
		SMT_SIPROUND(v0, v1, v2, v3);
		SMT_SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}

	last = (__u64)len << 56;
	for (i = 0; i < 7; i++) {
		if (i >= rem)
			break;
		last |= (__u64)in[full + i] << (8 * i);
	}
	v3 ^= last;
	SMT_SIPROUND(v0, v1, v2, v3);
	SMT_SIPROUND(v0, v1, v2, v3);
	v0 ^= last;

	v2 ^= 0xff;
	SMT_SIPROUND(v0, v1, v2, v3);
	SMT_SIPROUND(v0, v1, v2, v3);
	SMT_SIPROUND(v0, v1, v2, v3);
	SMT_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* Stores a tag as the 8 bytes the wire carries (little-endian). */
SMT_SIPHASH_INLINE void smt_siphash_store_tag(__u8 *out, __u64 tag)
{
	int i;

	for (i = 0; i < 8; i++)
		out[i] = (__u8)(tag >> (8 * i));
}

/* Compares a computed tag with the 8 bytes on the wire, without an early exit. */
SMT_SIPHASH_INLINE int smt_siphash_tag_equal(const __u8 *wire, __u64 tag)
{
	__u64 diff = smt_sip_load_le64(wire) ^ tag;

	return diff == 0;
}

#endif /* SMT_SIPHASH_H */
