/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Maps and counters of the two programs that guard the raw-socket datapath
 * smtd hands to applications (docs/smtd.md "Datapath sockets"), shared by
 * the BPF sources (smt_rawfilter.bpf.c, smt_sockopt.bpf.c) and C++
 * (loader/datapath_progs.cc, smtd, tests).
 *
 * raw_owners_hash (pinned as <root>/raw_owners_hash)
 *   Key:    __u64 socket cookie (SO_COOKIE) of a raw socket smtd created.
 *   Value:  struct smt_raw_owner.
 *   Writer: smtd (when it creates a datapath socket, when an application
 *           presents it again after an smtd restart, when the application's
 *           connection ends).
 *   Reader: the socket filter smt_rawfilter.
 *
 * rawfilter_stats_percpu (pinned as <root>/rawfilter_stats_percpu)
 *   Key:    __u32 enum smt_rawfilter_stat. Value: __u64 packets.
 *   Writer: smt_rawfilter. Readers: smtctl, tests.
 *
 * sockopt_trusted_uids_hash (not pinned: the program holds it)
 *   Key:    __u32 uid. Value: __u8 1.
 *   Writer: smtd at start and on SIGHUP ([uid N] trusted = yes, and uid 0).
 *   Reader: smt_sockopt.
 *
 * sockopt_stats (not pinned): ARRAY, key __u32 enum smt_sockopt_stat,
 *   value __u64; writer smt_sockopt, readers smtd and tests (through the
 *   loader).
 */
#ifndef SMT_BPF_DATAPATH_LAYOUT_H
#define SMT_BPF_DATAPATH_LAYOUT_H

#include <linux/types.h>

#define SMT_MAP_RAW_OWNERS "raw_owners_hash"
#define SMT_MAP_RAWFILTER_STATS "rawfilter_stats_percpu"
#define SMT_PIN_SOCKOPT_LINK "sockopt_link"

/* Datapath sockets a whole instance may have handed out at once. */
#define SMT_RAW_OWNERS_MAX 4096
/* uids the setsockopt guard lets set IP_HDRINCL / IPV6_HDRINCL. */
#define SMT_TRUSTED_UIDS_MAX 256

/* Who a datapath socket receives for: packets whose destination port is
 * leased (port_leases_hash) by owner_id, or by prev_owner_id. prev_owner_id
 * is the socket's owner id under the previous smtd (0: none): after a restart
 * the application presents its sockets again under a new owner id while its
 * ports may still be leased under the old one until it re-adopts them. */
struct smt_raw_owner {
	__u32 owner_id;      /* 0 */
	__u32 prev_owner_id; /* 4 */
};

enum smt_rawfilter_stat {
	SMT_RAWF_ACCEPT = 0,          /* leased by the socket's owner */
	SMT_RAWF_DROP_MALFORMED = 1,  /* not IPv4/IPv6 + SMT, or too short for the ports */
	SMT_RAWF_DROP_NO_OWNER = 2,   /* the socket has no raw_owners_hash entry */
	SMT_RAWF_DROP_NOT_LEASED = 3, /* no lease for the destination port */
	SMT_RAWF_DROP_OTHER_OWNER = 4, /* the port is leased by someone else */
	SMT_RAWF_STAT_COUNT = 5,
};

enum smt_sockopt_stat {
	SMT_SOCKOPT_REFUSED = 0, /* IP_HDRINCL / IPV6_HDRINCL refused */
	SMT_SOCKOPT_TRUSTED = 1, /* ... allowed because the uid is trusted */
	SMT_SOCKOPT_STAT_COUNT = 2,
};

#ifdef __cplusplus
static_assert(sizeof(struct smt_raw_owner) == 8, "smt_raw_owner size");
#endif

#endif /* SMT_BPF_DATAPATH_LAYOUT_H */
