/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Parsing stages of the XDP receive program: Ethernet, IPv4/IPv6, then the
 * SMT header of a DATA or control packet, copied to the stack and checked
 * exactly as user/wire/data_header.cc and user/wire/control_packet.cc check
 * it (bounds, version, type, doff and zero fields, lengths, field rules), so
 * XDP and the engine drop the same packets for the same reasons.
 *
 * Every stage returns an enum smt_xdp_stat verdict, or SMT_XDP_CONTINUE when
 * the packet goes on to the next stage.
 */
#ifndef SMT_BPF_PARSE_BPF_H
#define SMT_BPF_PARSE_BPF_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "smt/wire.h"

#define SMT_XDP_CONTINUE SMT_XDP_STAT_COUNT

/* IPv4 frag_off bits (include/net/ip.h is not uapi). */
#define SMT_IP_MF 0x2000
#define SMT_IP_OFFSET 0x1fff
#define SMT_IPV6_NEXTHDR_FRAGMENT 44

#define SMT_DATA_DOFF (SMT_DATA_HDR_WORDS << 4)
#define SMT_CTL_DOFF (SMT_CTL_HDR_WORDS << 4)
#define SMT_CTL_HDR_LEN ((__u32)sizeof(struct smt_ctl_hdr))
#define SMT_DATA_HDR_LEN ((__u32)sizeof(struct smt_data_hdr))
#define SMT_COMMON_HDR_LEN ((__u32)sizeof(struct smt_common_hdr))

/* The IP protocol number SMT uses; set by the loader before load. */
const volatile __u8 smt_ipproto = SMT_IPPROTO_DEFAULT;

/* What the stages learn about one frame. */
struct smt_rx {
	__u64 smt_off;              /* offset of the SMT header from ctx->data */
	__u32 smt_len;              /* SMT bytes per the IP length field */
	__u8 type;                  /* SMT packet type (byte 13) */
	__u8 body_len;              /* control: the type's body length */
	__u8 pad[2];
	struct smt_session_key key; /* local = destination, remote = source */
	__u8 hdr[SMT_DATA_HDR_LEN]; /* DATA header or control envelope */
	__u8 body[SMT_CTL_BODY_MAX]; /* control body */
};

/* The IPv6 Fragment header (RFC 8200 §4.5). */
struct smt_ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

static __always_inline __u16 smt_ld_be16(const __u8 *p)
{
	return (__u16)p[0] << 8 | p[1];
}

static __always_inline __u32 smt_ld_be32(const __u8 *p)
{
	return (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
}

static __always_inline __u64 smt_ld_be64(const __u8 *p)
{
	return (__u64)smt_ld_be32(p) << 32 | smt_ld_be32(p + 4);
}

/* IPv4, no options; IPv4-mapped addresses in the session key. A header too
 * short to hold its protocol is not claimed (the stack drops it). */
static __always_inline __u32 smt_parse_ipv4(void *data, void *end, struct smt_rx *rx)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u32 tot;

	if ((void *)(ip + 1) > end)
		return SMT_XDP_PASS_NOT_SMT;
	if (ip->version != 4 || ip->protocol != smt_ipproto)
		return SMT_XDP_PASS_NOT_SMT;
	if (ip->frag_off & bpf_htons(SMT_IP_MF | SMT_IP_OFFSET))
		return SMT_XDP_DROP_FRAGMENT;
	if (ip->ihl != 5)
		return SMT_XDP_DROP_BAD_IP;
	tot = bpf_ntohs(ip->tot_len);
	if (tot < sizeof(*ip))
		return SMT_XDP_DROP_BAD_IP;
	rx->smt_off = sizeof(struct ethhdr) + sizeof(*ip);
	rx->smt_len = tot - sizeof(*ip);
	if (data + rx->smt_off + rx->smt_len > end)
		return SMT_XDP_DROP_TRUNCATED;

	rx->key.local_addr[10] = 0xff;
	rx->key.local_addr[11] = 0xff;
	__builtin_memcpy(&rx->key.local_addr[12], &ip->daddr, 4);
	rx->key.remote_addr[10] = 0xff;
	rx->key.remote_addr[11] = 0xff;
	__builtin_memcpy(&rx->key.remote_addr[12], &ip->saddr, 4);
	return SMT_XDP_CONTINUE;
}

/* IPv6 without extension headers; a Fragment header is looked through only
 * to see whether it fragments SMT. */
static __always_inline __u32 smt_parse_ipv6(void *data, void *end, struct smt_rx *rx)
{
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	struct smt_ipv6_frag_hdr *fh;

	if ((void *)(ip6 + 1) > end)
		return SMT_XDP_PASS_NOT_SMT;
	if (ip6->version != 6)
		return SMT_XDP_PASS_NOT_SMT;
	if (ip6->nexthdr == SMT_IPV6_NEXTHDR_FRAGMENT) {
		fh = (void *)(ip6 + 1);
		if ((void *)(fh + 1) > end)
			return SMT_XDP_PASS_NOT_SMT;
		return fh->nexthdr == smt_ipproto ? SMT_XDP_DROP_FRAGMENT
						  : SMT_XDP_PASS_NOT_SMT;
	}
	if (ip6->nexthdr != smt_ipproto)
		return SMT_XDP_PASS_NOT_SMT;
	rx->smt_off = sizeof(struct ethhdr) + sizeof(*ip6);
	rx->smt_len = bpf_ntohs(ip6->payload_len);
	if (data + rx->smt_off + rx->smt_len > end)
		return SMT_XDP_DROP_TRUNCATED;

	__builtin_memcpy(rx->key.local_addr, &ip6->daddr, 16);
	__builtin_memcpy(rx->key.remote_addr, &ip6->saddr, 16);
	return SMT_XDP_CONTINUE;
}

/* Ethernet, then IPv4 or IPv6 carrying SMT. Bytes past the IP length
 * (Ethernet padding) are ignored. */
static __always_inline __u32 smt_parse_l3(struct xdp_md *ctx, struct smt_rx *rx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return SMT_XDP_PASS_NOT_SMT;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return smt_parse_ipv4(data, end, rx);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return smt_parse_ipv6(data, end, rx);
	return SMT_XDP_PASS_NOT_SMT;
}

/* The common header's ports into the session key (the engine, too, finds the
 * session from the first 28 bytes before it parses the rest). */
static __always_inline __u32 smt_parse_common(struct xdp_md *ctx, struct smt_rx *rx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *h;

	if (rx->smt_off > sizeof(struct ethhdr) + sizeof(struct ipv6hdr))
		return SMT_XDP_DROP_TRUNCATED;
	if (rx->smt_len < SMT_COMMON_HDR_LEN)
		return SMT_XDP_DROP_TRUNCATED;
	h = data + rx->smt_off;
	if ((void *)(h + SMT_COMMON_HDR_LEN) > end)
		return SMT_XDP_DROP_TRUNCATED;
	__builtin_memcpy(&rx->key.local_port, h + 2, 2);
	__builtin_memcpy(&rx->key.remote_port, h + 0, 2);
	rx->type = h[13];
	return SMT_XDP_CONTINUE;
}

/* DATA header: parse_data_header's rules in its order. */
static __always_inline __u32 smt_parse_data(struct xdp_md *ctx, struct smt_rx *rx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	const __u8 *p = rx->hdr;
	__u8 *h;

	if (rx->smt_len < SMT_DATA_HDR_LEN)
		return SMT_XDP_DROP_TRUNCATED;
	if (rx->smt_off > sizeof(struct ethhdr) + sizeof(struct ipv6hdr))
		return SMT_XDP_DROP_TRUNCATED;
	h = data + rx->smt_off;
	if ((void *)(h + SMT_DATA_HDR_LEN) > end)
		return SMT_XDP_DROP_TRUNCATED;
	__builtin_memcpy(rx->hdr, h, SMT_DATA_HDR_LEN);

	if (p[14] != SMT_VERSION)
		return SMT_XDP_DROP_BAD_VERSION;
	if (p[13] != SMT_TYPE_DATA)
		return SMT_XDP_DROP_BAD_TYPE;
	if (p[12] != SMT_DATA_DOFF || (p[15] & ~SMT_DATA_F_ALL) != 0 || p[41] != 0 ||
	    p[42] != 0 || p[43] != 0 || p[40] > SMT_PRIORITY_MAX ||
	    smt_ld_be64(p + 20) > SMT_MESSAGE_ID_MAX)
		return SMT_XDP_DROP_BAD_HEADER;
	return SMT_XDP_CONTINUE;
}

/* Body length of a control type; -1 for DATA or an unknown type. */
static __always_inline int smt_ctl_body_len(__u8 type)
{
	switch (type) {
	case SMT_TYPE_GRANT:
		return sizeof(struct smt_grant_body);
	case SMT_TYPE_RESEND:
		return sizeof(struct smt_resend_body);
	case SMT_TYPE_RPC_UNKNOWN:
		return sizeof(struct smt_rpc_unknown_body);
	case SMT_TYPE_BUSY:
	case SMT_TYPE_NEED_ACK:
		return 0;
	case SMT_TYPE_ACK:
		return sizeof(struct smt_ack_body);
	default:
		return -1;
	}
}

/* Request window bases are even and at most 2^48. */
static __always_inline int smt_window_base_ok(__u64 b)
{
	return (b & 1) == 0 && b <= SMT_MESSAGE_ID_MAX + 1;
}

/* The control field rules of docs/wire-format.md §9.8 step 6 (the bits of
 * control_packet.cc's read_body and fields_valid a parsed packet can break). */
static __always_inline int smt_ctl_fields_ok(const struct smt_rx *rx)
{
	const __u8 *b = rx->body;
	__u64 id = smt_ld_be64(rx->hdr + 20);
	__u64 ids[SMT_ACK_IDS];
	__u64 off, len;
	int i, j, unused_seen;

	if (id > SMT_MESSAGE_ID_MAX || smt_ld_be64(rx->hdr + 28) == 0)
		return 0;
	switch (rx->type) {
	case SMT_TYPE_GRANT:
		return b[4] <= SMT_PRIORITY_MAX && (b[5] | b[6] | b[7]) == 0 &&
		       smt_window_base_ok(smt_ld_be64(b + 8));
	case SMT_TYPE_RESEND:
		off = smt_ld_be32(b);
		len = smt_ld_be32(b + 4);
		return len != 0 && off + len <= 0x100000000ULL && b[8] <= SMT_PRIORITY_MAX &&
		       (b[9] | b[10] | b[11]) == 0;
	case SMT_TYPE_RPC_UNKNOWN:
		return (b[0] & ~SMT_UNKNOWN_F_DELIVERED) == 0 && (b[1] | b[2] | b[3]) == 0;
	case SMT_TYPE_ACK:
		if (id != 0 || !smt_window_base_ok(smt_ld_be64(b)))
			return 0;
		unused_seen = 0;
		for (i = 0; i < SMT_ACK_IDS; i++) {
			ids[i] = smt_ld_be64(b + 8 + 8 * i);
			if (ids[i] == 0) {
				unused_seen = 1;
				continue;
			}
			if (unused_seen || (ids[i] & 1) == 0 || ids[i] > SMT_MESSAGE_ID_MAX)
				return 0;
			/* Each used id at most once; used slots come first, so every
			 * earlier slot is a used one. */
			for (j = 0; j < i; j++) {
				if (ids[j] == ids[i])
					return 0;
			}
		}
		return 1;
	default: /* BUSY, NEED_ACK: nothing beyond the envelope */
		return 1;
	}
}

/* Control packet: parse_control_packet's rules in its order. */
static __always_inline __u32 smt_parse_control(struct xdp_md *ctx, struct smt_rx *rx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	const __u8 *p = rx->hdr;
	__u8 *h;
	int body;
	__u32 i;

	if (rx->smt_len < SMT_CTL_HDR_LEN)
		return SMT_XDP_DROP_TRUNCATED;
	if (rx->smt_off > sizeof(struct ethhdr) + sizeof(struct ipv6hdr))
		return SMT_XDP_DROP_TRUNCATED;
	h = data + rx->smt_off;
	if ((void *)(h + SMT_CTL_HDR_LEN) > end)
		return SMT_XDP_DROP_TRUNCATED;
	__builtin_memcpy(rx->hdr, h, SMT_CTL_HDR_LEN);

	if (p[14] != SMT_VERSION)
		return SMT_XDP_DROP_BAD_VERSION;
	body = smt_ctl_body_len(p[13]);
	if (body < 0)
		return SMT_XDP_DROP_BAD_TYPE;
	/* seg_pos, incoming and flags are outside the MAC, so they must be 0. */
	if (p[12] != SMT_CTL_DOFF || (p[4] | p[5] | p[6] | p[7]) != 0 ||
	    (p[8] | p[9] | p[10] | p[11]) != 0 || p[15] != 0)
		return SMT_XDP_DROP_BAD_HEADER;
	if (rx->smt_len < SMT_CTL_HDR_LEN + (__u32)body)
		return SMT_XDP_DROP_TRUNCATED;
	if (rx->smt_len > SMT_CTL_HDR_LEN + (__u32)body)
		return SMT_XDP_DROP_BAD_HEADER;
	rx->body_len = (__u8)body;

	for (i = 0; i < SMT_CTL_BODY_MAX; i++) {
		if (i >= (__u32)body)
			break;
		if ((void *)(h + SMT_CTL_HDR_LEN + i + 1) > end)
			return SMT_XDP_DROP_TRUNCATED;
		rx->body[i] = h[SMT_CTL_HDR_LEN + i];
	}
	if (!smt_ctl_fields_ok(rx))
		return SMT_XDP_DROP_BAD_HEADER;
	return SMT_XDP_CONTINUE;
}

#endif /* SMT_BPF_PARSE_BPF_H */
