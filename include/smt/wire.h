/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * SMT v1 wire format: the one header shared by the BPF programs, the kernel
 * module and the C++ user-space code. docs/wire-format.md is the prose spec;
 * tests/spec/ checks its offset tables against the structs below.
 *
 * Every multi-byte integer on the wire is big-endian (__be*). The 8-byte tags
 * are SipHash-2-4 outputs stored little-endian, as the SipHash reference does.
 * Structs are packed because the TCP-shaped layout puts a 64-bit message id
 * at byte 20; every size and offset is asserted at the bottom of this file.
 */
#ifndef SMT_WIRE_H
#define SMT_WIRE_H

#include <linux/types.h>

#define SMT_VERSION 1
/* RFC 3692 experimentation value; configurable. Never 146 (Homa) by default. */
#define SMT_IPPROTO_DEFAULT 253

/* ---- packet types (byte 13, where TCP keeps its flags) -------------------
 * DATA is 0x10, TCP's bare ACK flag, which TSO engines copy unchanged into
 * every segment. Values follow Homa's numbering. */
enum smt_packet_type {
	SMT_TYPE_DATA = 0x10,
	SMT_TYPE_GRANT = 0x11,
	SMT_TYPE_RESEND = 0x12,
	SMT_TYPE_RPC_UNKNOWN = 0x13,
	SMT_TYPE_BUSY = 0x14,
	SMT_TYPE_NEED_ACK = 0x17,
	SMT_TYPE_ACK = 0x18,
};

/* ---- common header: 28 bytes, overlays TCP -------------------------------
 * Fields TSO rewrites or that carry nothing (seg_pos, checksum, urgent) are
 * outside every MAC. */
struct smt_common_hdr {
	__be16 sport;      /*  0 TCP source port */
	__be16 dport;      /*  2 TCP destination port */
	__be32 seg_pos;    /*  4 TCP seq. DATA: byte position of this packet's
			    *    payload inside its TLS record; TSO advances it.
			    *    Control packets: 0. Outside every MAC. */
	__be32 incoming;   /*  8 TCP ack. DATA: bytes the sender may send of
			    *    this message without a further grant. Control: 0. */
	__u8 doff;         /* 12 high nibble: header length in 32-bit words */
	__u8 type;         /* 13 enum smt_packet_type */
	__u8 version;      /* 14 SMT_VERSION */
	__u8 flags;        /* 15 DATA: SMT_DATA_F_*; control: 0 */
	__be16 checksum;   /* 16 outside every MAC; 0 on the user-space path */
	__be16 urgent;     /* 18 sent as 0, ignored, outside every MAC */
	__be64 message_id; /* 20 48-bit id (top 16 bits 0); bit 0 = response */
} __attribute__((packed));

/* common.flags of DATA */
#define SMT_DATA_F_RETRANSMIT 0x01
#define SMT_DATA_F_ALL SMT_DATA_F_RETRANSMIT

/* ---- DATA header: 52 bytes, all inside TCP's 60-byte header space --------
 * TSO copies it into every segment; only common.seg_pos differs between the
 * segments of one TSO segment. The TLS record (or, on the TSO path, a slice of
 * it starting at seg_pos) follows at byte 52. */
struct smt_data_hdr {
	struct smt_common_hdr common; /*  0 */
	__be32 message_length;        /* 28 padded length of the message */
	__be32 record_offset;         /* 32 message offset of the record's
				       *    first byte (= inner header offset) */
	__be16 record_index;          /* 36 low 16 bits of the record seq */
	__be16 epoch;                 /* 38 key epoch of the record */
	__u8 priority;                /* 40 0 (lowest) .. 7 */
	__u8 reserved[3];             /* 41 must be 0 */
	__u8 tag[8];                  /* 44 SipHash-2-4 header tag */
} __attribute__((packed));

#define SMT_DATA_HDR_WORDS (sizeof(struct smt_data_hdr) / 4)
#define SMT_PRIORITY_MAX 7

/* ---- control envelope: 44 bytes, then the type's body --------------------
 * doff is always SMT_CTL_HDR_WORDS (the envelope alone: 4 bits cannot count
 * a larger body); the body follows as payload, its length fixed per type and
 * at most SMT_CTL_BODY_MAX. Control packets never go through TSO. */
struct smt_ctl_hdr {
	struct smt_common_hdr common; /*  0 */
	__be64 control_seq;           /* 28 per session and direction, from 1 */
	__u8 tag[8];                  /* 36 SipHash-2-4 tag */
} __attribute__((packed));

#define SMT_CTL_HDR_WORDS (sizeof(struct smt_ctl_hdr) / 4)

/* ---- control bodies (docs/wire-format.md §9.2) ---------------------------
 * The common header's message_id names the message the packet is about (for
 * ACK: 0). Receivers drop a body of the wrong length. "window_base" is the
 * sender's request replay window base over the receiver's request ids
 * (CONTRACT §3): every request id below it is delivered or in progress. */

/* GRANT: the receiver of a message lets its sender send [0, offset). */
struct smt_grant_body {
	__be32 offset;       /* 0 bytes the sender may send; only grows */
	__u8 priority;       /* 4 priority for the granted bytes, 0..7 */
	__u8 reserved[3];    /* 5 must be 0 */
	__be64 window_base;  /* 8 */
} __attribute__((packed));

/* RESEND: the receiver asks for [offset, offset + length) again. */
struct smt_resend_body {
	__be32 offset;     /* 0 */
	__be32 length;     /* 4 */
	__u8 priority;     /* 8 */
	__u8 reserved[3];  /* 9 must be 0 */
} __attribute__((packed));

/* RPC_UNKNOWN: the sender of this packet holds no state for message_id. */
struct smt_rpc_unknown_body {
	__u8 flags;        /* 0 SMT_UNKNOWN_F_* */
	__u8 reserved[3];  /* 1 must be 0 */
} __attribute__((packed));

/* The request behind message_id was delivered to the application (its id is
 * marked in the replay window), so it must not be sent again. */
#define SMT_UNKNOWN_F_DELIVERED 0x01

/* BUSY and NEED_ACK have an empty body. */

/* ACK: the client no longer needs the server's state for up to eight of its
 * RPCs (each named by its response id, odd, so never 0; unused slots are 0).
 * Eight, not fewer: an ACK is a packet of its own (CONTRACT §5), and with three
 * ids a client calling one RPC at a time sent 2.33 packets per RPC, 2.125 now. */
#define SMT_ACK_IDS 8
struct smt_ack_body {
	__be64 window_base;       /* 0 */
	__be64 ids[SMT_ACK_IDS];  /* 8 */
} __attribute__((packed));

/* ---- TLS 1.3 record ------------------------------------------------------ */
#define SMT_TLS_CONTENT_APPLICATION_DATA 23
#define SMT_TLS_LEGACY_VERSION 0x0303
#define SMT_TLS_TAG_LEN 16

/* The record header: also the AEAD's additional data. */
struct smt_tls_hdr {
	__u8 type;             /* 0 always 23 (application_data) */
	__be16 legacy_version; /* 1 always 0x0303 */
	__be16 length;         /* 3 ciphertext length including the tag */
} __attribute__((packed));

/* Inside the AEAD, first in every record's plaintext. The same in every
 * record of a message except offset and the LAST flag. */
struct smt_inner_hdr {
	__be32 offset;        /*  0 message offset of the record's first byte */
	__be32 padded_length; /*  4 = DATA message_length */
	__be32 true_length;   /*  8 bytes at or past it are discarded */
	__u8 flags;           /* 12 SMT_INNER_F_* */
	__u8 reserved[3];     /* 13 must be 0 */
} __attribute__((packed));

#define SMT_INNER_F_LAST 0x01

/* TLS 1.3 limit on the record content (inner header + data) */
#define SMT_RECORD_MAX_CONTENT 16384u
#define SMT_RECORD_MAX_DATA (SMT_RECORD_MAX_CONTENT - sizeof(struct smt_inner_hdr))
/* Bytes a record adds around its data: header, inner header, content type, tag */
#define SMT_RECORD_OVERHEAD                                                   \
	(sizeof(struct smt_tls_hdr) + sizeof(struct smt_inner_hdr) + 1 +      \
	 SMT_TLS_TAG_LEN)
#define SMT_MAX_RECORDS_PER_MESSAGE 65536u
#define SMT_MESSAGE_ID_BITS 48
#define SMT_MESSAGE_ID_MAX ((1ULL << SMT_MESSAGE_ID_BITS) - 1)

/* ---- MAC inputs (SipHash-2-4 under k_ctl of the sending direction) -------
 * Every input starts with version and type, so a DATA input never equals a
 * control input. */
struct smt_mac_prefix {
	__u8 version;      /*  0 */
	__u8 type;         /*  1 */
	__be16 sport;      /*  2 */
	__be16 dport;      /*  4 */
	__be16 zero;       /*  6 */
	__be64 message_id; /*  8 */
} __attribute__((packed));

/* DATA: every header field except seg_pos, checksum, urgent and the tag. */
struct smt_data_mac_input {
	struct smt_mac_prefix prefix; /*  0 */
	__be32 incoming;              /* 16 */
	__be32 message_length;        /* 20 */
	__be32 record_offset;         /* 24 */
	__be16 record_index;          /* 28 */
	__be16 epoch;                 /* 30 */
	__u8 doff;                    /* 32 */
	__u8 flags;                   /* 33 */
	__u8 priority;                /* 34 */
	__u8 reserved[5];             /* 35 header reserved[3], then 2 zero bytes */
} __attribute__((packed));

/* Control: prefix, then the type's body exactly as on the wire, then the
 * control sequence number. The largest body is SMT_CTL_BODY_MAX bytes. */
#define SMT_CTL_BODY_MAX 72
#define SMT_CTL_MAC_INPUT_MAX                                                 \
	(sizeof(struct smt_mac_prefix) + SMT_CTL_BODY_MAX + sizeof(__be64))

/* ---- global maps (pinned under the instance's pin root) ------------------
 * sessions_hash: key smt_session_key, value smt_session_value.
 *   Writer: smtd. Readers: the XDP program, smtctl.
 * port_leases_hash: key smt_port_lease_key, value smt_port_lease_value.
 *   Writer: smtd. Readers: the XDP program, smtctl. */
#define SMT_MAP_SESSIONS "sessions_hash"
#define SMT_MAP_PORT_LEASES "port_leases_hash"
#define SMT_SESSIONS_MAX 65536
#define SMT_PORT_LEASES_MAX 65536

/* Addresses are 16 bytes; IPv4 is IPv4-mapped (::ffff:a.b.c.d). */
struct smt_session_key {
	__u8 local_addr[16];  /*  0 */
	__u8 remote_addr[16]; /* 16 */
	__be16 local_port;    /* 32 */
	__be16 remote_port;   /* 34 */
	__u32 reserved;       /* 36 must be 0 */
};

struct smt_session_value {
	__u64 serial;          /*  0 CONTRACT §6 serial (even: TLS client's) */
	__u8 rx_ctl_key[16];   /*  8 verifies tags of packets from the peer */
	__u8 tx_ctl_key[16];   /* 24 tags packets this host sends */
	__u32 owner_id;        /* 40 owning application (grant table, XSK) */
	__u32 owner_queue;     /* 44 rx queue of the owner's AF_XDP socket */
	__u32 session_slot;    /* 48 this session's slot in the owner's table */
	__u16 version;         /* 52 SMT_VERSION */
	__u8 initiator;        /* 54 1 if this host sent OPEN */
	__u8 flags;            /* 55 SMT_SESSION_F_* */
};

#define SMT_SESSION_F_AF_XDP 0x01 /* owner receives through AF_XDP */

struct smt_port_lease_key {
	__be16 port;     /* 0 */
	__u16 reserved;  /* 2 must be 0 */
};

struct smt_port_lease_value {
	__u32 owner_uid; /*  0 */
	__u32 owner_pid; /*  4 */
	__u32 owner_id;  /*  8 */
	__u32 flags;     /* 12 SMT_LEASE_F_* */
};

#define SMT_LEASE_F_EPHEMERAL 0x01

/* ---- XDP receive program maps (bpf/xdp_maps.bpf.h, docs/xdp.md) ---------
 * Per interface (pinned under <root>/if-<ifindex>/ by the loader):
 *   xsks_map: XSKMAP, key rx queue index, value AF_XDP socket fd.
 *   stats_percpu: PERCPU_ARRAY, key enum smt_xdp_stat, value __u64 count.
 *   session_mac_fail_percpu: LRU_PERCPU_HASH, key smt_session_key, value
 *     __u64 tag failures of that session.
 * Shared by every interface of an instance:
 *   grant_tables: HASH_OF_MAPS, key owner_id (smt_session_value.owner_id),
 *     value the owner's table: an mmapable ARRAY of SMT_OWNER_TABLE_SESSIONS
 *     struct smt_owner_table_entry, indexed by session_slot. */
#define SMT_MAP_XSKS "xsks_map"
#define SMT_MAP_XDP_STATS "stats_percpu"
#define SMT_MAP_SESSION_MAC_FAIL "session_mac_fail_percpu"
#define SMT_MAP_GRANT_TABLES "grant_tables"
#define SMT_XSK_QUEUES_MAX 64
#define SMT_OWNERS_MAX 4096
#define SMT_OWNER_TABLE_SESSIONS 1024
#define SMT_GRANT_SLOTS_PER_SESSION 15

/* What the XDP program did with a frame. Every frame increments exactly one
 * PASS_*, REDIRECT_* or DROP_* counter; the GRANT_* counters are events
 * counted in addition to the verdict. */
enum smt_xdp_stat {
	SMT_XDP_PASS_NOT_SMT = 0,     /* not SMT (or IP too short to tell): untouched */
	SMT_XDP_PASS_STACK,           /* SMT for a raw-socket session: XDP_PASS */
	SMT_XDP_REDIRECT_XSK,         /* SMT redirected to the owner's AF_XDP socket */
	SMT_XDP_DROP_FRAGMENT,        /* IPv4 MF/offset or IPv6 Fragment header */
	SMT_XDP_DROP_BAD_IP,          /* IPv4 options or an IP length below its header */
	SMT_XDP_DROP_TRUNCATED,       /* shorter than its headers claim */
	SMT_XDP_DROP_BAD_VERSION,     /* unknown SMT version */
	SMT_XDP_DROP_BAD_TYPE,        /* unknown packet type */
	SMT_XDP_DROP_BAD_HEADER,      /* doff, zero fields, reserved, body rules */
	SMT_XDP_DROP_UNKNOWN_SESSION, /* no sessions_hash entry */
	SMT_XDP_DROP_BAD_TAG,         /* DATA or control tag mismatch */
	SMT_XDP_DROP_OLD_REQUEST,     /* request DATA below the published base */
	SMT_XDP_DROP_WRONG_QUEUE,     /* AF_XDP session, other rx queue */
	SMT_XDP_DROP_NO_XSK,          /* AF_XDP session, no socket on the queue */
	SMT_XDP_DROP_GRANT_STALE,     /* GRANT offset not above the slot's */
	SMT_XDP_GRANT_GREW,           /* event: a GRANT raised its slot */
	SMT_XDP_GRANT_SLOT_MISS,      /* event: no slot armed for the GRANT */
	SMT_XDP_STAT_COUNT
};

/* One grant slot: a __u64 word. The high half holds SMT_GRANT_SLOT_ARMED and
 * the low 31 bits of the message id the slot is armed for, the low half the
 * granted offset, so one compare-and-swap checks the id and raises the offset
 * together. The owner arms a slot by storing SMT_GRANT_SLOT(id, offset) (one
 * aligned 64-bit store) and disarms it by storing 0; XDP only raises the
 * offset of an armed slot whose id matches. Two live ids of one session with
 * the same slot and low 31 bits are 2^31 ids apart, which no session has in
 * flight. */
#define SMT_GRANT_SLOT_ARMED 0x80000000u
#define SMT_GRANT_SLOT_ID_MASK 0x7fffffffu
#define SMT_GRANT_SLOT_HIGH(id) (SMT_GRANT_SLOT_ARMED | ((__u32)(id) & SMT_GRANT_SLOT_ID_MASK))
#define SMT_GRANT_SLOT(id, offset) (((__u64)SMT_GRANT_SLOT_HIGH(id) << 32) | (__u32)(offset))
#define SMT_GRANT_SLOT_OFFSET(word) ((__u32)(word))
/* Slot of message id within its session's entry. */
#define SMT_GRANT_SLOT_INDEX(id) ((__u32)((id) % SMT_GRANT_SLOTS_PER_SESSION))

/* One session's entry in its owner's table (128 bytes, mmapped by the owner).
 * Writer: the owning engine (published_base, arming grant slots); XDP raises
 * armed grant offsets with compare-and-swap. Reader: XDP, the owner. */
struct smt_owner_table_entry {
	__u64 published_base; /*   0 min(request window base, oldest request in
			       *     progress): XDP drops request DATA below it */
	__u64 grant[SMT_GRANT_SLOTS_PER_SESSION]; /* 8 SMT_GRANT_SLOT words */
};

/* ---- size and offset checks ---------------------------------------------- */
#ifdef __cplusplus
#define SMT_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define SMT_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif
#define SMT_CHECK_SIZE(t, n) SMT_STATIC_ASSERT(sizeof(struct t) == (n), #t " size")
#define SMT_CHECK_OFF(t, f, n)                                                \
	SMT_STATIC_ASSERT(__builtin_offsetof(struct t, f) == (n), #t "." #f)

SMT_CHECK_SIZE(smt_common_hdr, 28);
SMT_CHECK_OFF(smt_common_hdr, seg_pos, 4);
SMT_CHECK_OFF(smt_common_hdr, doff, 12);
SMT_CHECK_OFF(smt_common_hdr, type, 13);
SMT_CHECK_OFF(smt_common_hdr, checksum, 16);
SMT_CHECK_OFF(smt_common_hdr, message_id, 20);
SMT_CHECK_SIZE(smt_data_hdr, 52);
SMT_CHECK_OFF(smt_data_hdr, message_length, 28);
SMT_CHECK_OFF(smt_data_hdr, record_offset, 32);
SMT_CHECK_OFF(smt_data_hdr, record_index, 36);
SMT_CHECK_OFF(smt_data_hdr, epoch, 38);
SMT_CHECK_OFF(smt_data_hdr, priority, 40);
SMT_CHECK_OFF(smt_data_hdr, tag, 44);
SMT_STATIC_ASSERT(sizeof(struct smt_data_hdr) <= 60, "DATA header fits TCP's header space");
SMT_CHECK_SIZE(smt_ctl_hdr, 44);
SMT_CHECK_OFF(smt_ctl_hdr, control_seq, 28);
SMT_CHECK_OFF(smt_ctl_hdr, tag, 36);
SMT_CHECK_SIZE(smt_grant_body, 16);
SMT_CHECK_OFF(smt_grant_body, window_base, 8);
SMT_CHECK_SIZE(smt_resend_body, 12);
SMT_CHECK_SIZE(smt_rpc_unknown_body, 4);
SMT_CHECK_SIZE(smt_ack_body, 72);
SMT_STATIC_ASSERT(sizeof(struct smt_ack_body) <= SMT_CTL_BODY_MAX, "ACK body fits");
SMT_CHECK_SIZE(smt_tls_hdr, 5);
SMT_CHECK_SIZE(smt_inner_hdr, 16);
SMT_CHECK_SIZE(smt_mac_prefix, 16);
SMT_CHECK_SIZE(smt_data_mac_input, 40);
SMT_CHECK_SIZE(smt_session_key, 40);
SMT_CHECK_SIZE(smt_session_value, 56);
SMT_CHECK_SIZE(smt_port_lease_key, 4);
SMT_CHECK_SIZE(smt_port_lease_value, 16);
SMT_CHECK_SIZE(smt_owner_table_entry, 128);
SMT_CHECK_OFF(smt_owner_table_entry, grant, 8);

#endif /* SMT_WIRE_H */
