// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The SMT XDP receive program (docs/xdp.md). Stages, in order:
 *   1. Ethernet + IPv4/IPv6: non-SMT frames pass untouched; SMT fragments and
 *      bad IP lengths are dropped.
 *   2. Common header bounds, then the session (sessions_hash) by addresses
 *      and ports, as the engine looks it up.
 *   3. DATA or control header parse (the C++ parsers' rules and order).
 *   4. Tag under the session's rx_ctl_key; failures counted globally and per
 *      session.
 *   5. DATA: request ids below the owner's published base are dropped.
 *      GRANT: atomic maximum on the owner's grant slot; a stale GRANT is
 *      dropped, a raised one or a slot miss goes on to the owner.
 *   6. Delivery: AF_XDP sessions are redirected to the socket of their
 *      owner queue (only from that queue); raw-socket sessions pass.
 * Every frame is counted once in stats_percpu under its verdict.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "global_maps.bpf.h"
#include "parse.bpf.h"
#include "tag.bpf.h"
#include "xdp_maps.bpf.h"

/* Bounded retries of the grant compare-and-swap; on contention the GRANT is
 * handed to the owner, whose engine applies it in full. */
#define SMT_GRANT_CAS_TRIES 4

static __always_inline void smt_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&stats_percpu, &stat);

	if (v)
		*v += 1;
}

static __always_inline void smt_count_session_mac_fail(const struct smt_session_key *key)
{
	__u64 one = 1;
	__u64 *v = bpf_map_lookup_elem(&session_mac_fail_percpu, key);

	if (v) {
		*v += 1;
		return;
	}
	if (bpf_map_update_elem(&session_mac_fail_percpu, key, &one, BPF_NOEXIST) == 0)
		return;
	/* another CPU inserted it first */
	v = bpf_map_lookup_elem(&session_mac_fail_percpu, key);
	if (v)
		*v += 1;
}

/* The session's entry in its owner's table, or NULL (no table, slot out of
 * range). */
static __always_inline struct smt_owner_table_entry *
smt_owner_entry(const struct smt_session_value *s)
{
	__u32 owner = s->owner_id;
	__u32 slot = s->session_slot;
	void *table = bpf_map_lookup_elem(&grant_tables, &owner);

	if (!table)
		return NULL;
	return bpf_map_lookup_elem(table, &slot);
}

/* Stage 5, DATA: the engine's replay window has moved past request ids below
 * the published base, so such a request can only be a replay. */
static __always_inline __u32 smt_check_old_request(const struct smt_rx *rx,
						   const struct smt_session_value *s)
{
	__u64 id = smt_ld_be64(rx->hdr + 20);
	struct smt_owner_table_entry *e;

	if (id & 1)
		return SMT_XDP_CONTINUE; /* responses: the engine's RPC state decides */
	e = smt_owner_entry(s);
	if (e && id < *(volatile __u64 *)&e->published_base)
		return SMT_XDP_DROP_OLD_REQUEST;
	return SMT_XDP_CONTINUE;
}

/* Stage 5, GRANT: raise the (session, id) slot's offset to the granted one
 * if the slot is armed for this id. */
static __always_inline __u32 smt_apply_grant(const struct smt_rx *rx,
					     const struct smt_session_value *s)
{
	__u64 id = smt_ld_be64(rx->hdr + 20);
	__u32 offset = smt_ld_be32(rx->body);
	__u64 want_high = (__u64)SMT_GRANT_SLOT_HIGH(id) << 32;
	struct smt_owner_table_entry *e;
	__u64 old, new;
	__u32 idx, i;

	e = smt_owner_entry(s);
	if (!e)
		goto miss;
	idx = SMT_GRANT_SLOT_INDEX(id);
	/* The verifier does not bound a modulo; hide idx from clang so the
	 * check that does bound it is kept. */
	asm volatile("" : "+r"(idx));
	if (idx >= SMT_GRANT_SLOTS_PER_SESSION)
		goto miss;
	for (i = 0; i < SMT_GRANT_CAS_TRIES; i++) {
		old = *(volatile __u64 *)&e->grant[idx];
		if ((old & 0xffffffff00000000ULL) != want_high)
			goto miss;
		if (SMT_GRANT_SLOT_OFFSET(old) >= offset)
			return SMT_XDP_DROP_GRANT_STALE;
		new = want_high | offset;
		if (__sync_val_compare_and_swap(&e->grant[idx], old, new) == old) {
			smt_count(SMT_XDP_GRANT_GREW);
			return SMT_XDP_CONTINUE;
		}
	}
miss:
	smt_count(SMT_XDP_GRANT_SLOT_MISS);
	return SMT_XDP_CONTINUE;
}

/* Stage 6: to the owner. AF_XDP only from the owner's queue (CONTRACT §7). */
static __always_inline int smt_deliver(struct xdp_md *ctx, const struct smt_session_value *s)
{
	__u32 queue = ctx->rx_queue_index;
	long ret;

	if (!(s->flags & SMT_SESSION_F_AF_XDP)) {
		smt_count(SMT_XDP_PASS_STACK);
		return XDP_PASS;
	}
	if (s->owner_queue != queue) {
		smt_count(SMT_XDP_DROP_WRONG_QUEUE);
		return XDP_DROP;
	}
	ret = bpf_redirect_map(&xsks_map, queue, 0);
	if (ret != XDP_REDIRECT) {
		smt_count(SMT_XDP_DROP_NO_XSK);
		return XDP_DROP;
	}
	smt_count(SMT_XDP_REDIRECT_XSK);
	return XDP_REDIRECT;
}

static __always_inline int smt_verdict(__u32 stat)
{
	smt_count(stat);
	return stat == SMT_XDP_PASS_NOT_SMT || stat == SMT_XDP_PASS_STACK ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int smt_xdp_rx(struct xdp_md *ctx)
{
	struct smt_rx rx = {};
	struct smt_session_value *s;
	__u32 stat;

	stat = smt_parse_l3(ctx, &rx);
	if (stat != SMT_XDP_CONTINUE)
		return smt_verdict(stat);
	stat = smt_parse_common(ctx, &rx);
	if (stat != SMT_XDP_CONTINUE)
		return smt_verdict(stat);
	s = bpf_map_lookup_elem(&sessions_hash, &rx.key);
	if (!s)
		return smt_verdict(SMT_XDP_DROP_UNKNOWN_SESSION);

	if (rx.type == SMT_TYPE_DATA) {
		stat = smt_parse_data(ctx, &rx);
		if (stat != SMT_XDP_CONTINUE)
			return smt_verdict(stat);
		if (!smt_data_tag_ok(&rx, s->rx_ctl_key)) {
			smt_count_session_mac_fail(&rx.key);
			return smt_verdict(SMT_XDP_DROP_BAD_TAG);
		}
		stat = smt_check_old_request(&rx, s);
	} else {
		stat = smt_parse_control(ctx, &rx);
		if (stat != SMT_XDP_CONTINUE)
			return smt_verdict(stat);
		if (!smt_ctl_tag_ok(&rx, s->rx_ctl_key)) {
			smt_count_session_mac_fail(&rx.key);
			return smt_verdict(SMT_XDP_DROP_BAD_TAG);
		}
		if (rx.type == SMT_TYPE_GRANT)
			stat = smt_apply_grant(&rx, s);
	}
	if (stat != SMT_XDP_CONTINUE)
		return smt_verdict(stat);
	return smt_deliver(ctx, s);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
