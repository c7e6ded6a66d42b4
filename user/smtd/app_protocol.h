/* smtd's unix-socket protocol for local applications (libsmt, smtd_client).
 * docs/smtd.md "Unix-socket protocol" is the prose spec.
 *
 * Transport: an AF_UNIX SOCK_SEQPACKET socket (smtd --socket PATH). One
 * message per packet; every message starts with struct smtd_app_hdr. Integers
 * are in host byte order (the socket never leaves the host). A request
 * carries a caller-chosen request_id that the reply repeats; notifications
 * smtd sends unasked carry request_id 0. smtd checks every request's size,
 * version, type and reserved fields before its meaning and answers a bad one
 * with SMTD_APP_ERROR; it never trusts a length it did not check.
 *
 * Callers are identified by SO_PEERCRED (uid, pid) when they connect; the
 * config says which uids may lease which ports. Closing the connection
 * closes every session the connection holds (CLOSE to the peer, map entries
 * deleted, secrets erased) and releases its leases.
 */
#ifndef SMTD_APP_PROTOCOL_H
#define SMTD_APP_PROTOCOL_H

#include <stdint.h>

#define SMTD_APP_VERSION 1
/* Largest message either side sends; a receiver's buffer is this big. */
#define SMTD_APP_MAX_MSG 16384
#define SMTD_APP_TOKEN_LEN 16
#define SMTD_APP_SECRET_MAX 48 /* Hash.length of SHA-384 */
#define SMTD_APP_CTL_KEY_LEN 16
#define SMTD_APP_IDENTITY_MAX 256 /* NUL-terminated */
#define SMTD_APP_MESSAGE_MAX 240  /* NUL-terminated error text */

enum smtd_app_type {
  /* requests */
  SMTD_APP_LEASE = 1,   /* struct smtd_app_lease -> SMTD_APP_LEASED */
  SMTD_APP_RELEASE = 2, /* struct smtd_app_lease -> SMTD_APP_RELEASED */
  SMTD_APP_OPEN = 3,    /* struct smtd_app_open -> SMTD_APP_OPENED */
  SMTD_APP_CLOSE = 4,   /* struct smtd_app_close -> SMTD_APP_CLOSED */
  SMTD_APP_ADOPT = 5,   /* struct smtd_app_adopt -> SMTD_APP_ADOPTED */
  SMTD_APP_LIST = 6,    /* struct smtd_app_list -> SMTD_APP_LIST_CHUNK... */
  SMTD_APP_TABLE = 7,   /* struct smtd_app_hdr -> SMTD_APP_TABLE_GRANTED + fd */
  SMTD_APP_STATS = 8,   /* struct smtd_app_stats + entries; no reply (the app's report) */
  SMTD_APP_GET_STATS = 9, /* struct smtd_app_hdr -> SMTD_APP_STATS_CHUNK... */
  SMTD_APP_DATAPATH = 10, /* struct smtd_app_datapath_req (+ fds with F_PRESENT)
                             -> SMTD_APP_DATAPATH_GRANTED + fds */
  /* replies */
  SMTD_APP_LEASED = 0x81,     /* struct smtd_app_lease */
  SMTD_APP_RELEASED = 0x82,   /* struct smtd_app_lease */
  SMTD_APP_OPENED = 0x83,     /* struct smtd_app_session */
  SMTD_APP_CLOSED = 0x84,     /* struct smtd_app_close */
  SMTD_APP_ADOPTED = 0x85,    /* struct smtd_app_session, no secrets */
  SMTD_APP_LIST_CHUNK = 0x86, /* struct smtd_app_list_chunk + JSON text */
  SMTD_APP_TABLE_GRANTED = 0x87, /* struct smtd_app_table; SCM_RIGHTS: the table's fd,
                                    then the connection's notification page */
  SMTD_APP_STATS_CHUNK = 0x88,   /* struct smtd_app_stats + entries, last flagged */
  SMTD_APP_DATAPATH_GRANTED = 0x89, /* struct smtd_app_datapath; SCM_RIGHTS: its sockets */
  SMTD_APP_ERROR = 0xff,      /* struct smtd_app_error */
  /* notifications (request_id 0) */
  SMTD_APP_INCOMING = 0x90,    /* struct smtd_app_session: a peer opened a session to a
                                  port this connection leases; this connection holds it */
  SMTD_APP_PEER_CLOSED = 0x91, /* struct smtd_app_close: the peer, idle expiry or the
                                  certificate lifetime closed one of its sessions */
};

struct smtd_app_hdr {
  uint16_t version;    /*  0 SMTD_APP_VERSION */
  uint16_t type;       /*  2 enum smtd_app_type */
  uint32_t length;     /*  4 whole message, header included */
  uint32_t request_id; /*  8 echoed in the reply; 0 in notifications */
  uint32_t reserved;   /* 12 must be 0 */
};

/* LEASE, RELEASE, LEASED, RELEASED. */
#define SMTD_LEASE_F_EPHEMERAL 0x0001 /* LEASE: port must be 0; smtd picks one */
struct smtd_app_lease {
  struct smtd_app_hdr hdr;
  uint16_t port;     /* 16 local SMT port; LEASED: the port granted */
  uint16_t flags;    /* 18 SMTD_LEASE_F_* */
  uint32_t reserved; /* 20 must be 0 */
};

/* OPEN: a session from local_port (leased by this connection) to the peer. */
struct smtd_app_open {
  struct smtd_app_hdr hdr;
  uint8_t peer_addr[16]; /* 16 IPv6 or IPv4-mapped */
  uint16_t peer_port;    /* 32 */
  uint16_t local_port;   /* 34 */
  uint32_t rx_queue;     /* 36 queue this app receives on (goes into OPEN and the map) */
  uint32_t reserved[2];  /* 40 must be 0 */
};

/* OPENED, INCOMING, ADOPTED: everything the holder of a session needs.
 * ADOPTED carries no secrets (has_secrets 0, secret fields zero): smtd does
 * not keep them; the re-adopting process still has its own. */
struct smtd_app_session {
  struct smtd_app_hdr hdr;
  uint64_t serial;                           /*  16 CONTRACT §6 serial */
  uint16_t suite;                            /*  24 TLS cipher suite code point */
  uint8_t initiator;                         /*  26 1 if this host sent OPEN */
  uint8_t smt_version;                       /*  27 */
  uint8_t protocol;                          /*  28 IP protocol number */
  uint8_t secret_len;                        /*  29 Hash.length: 32 or 48 */
  uint8_t has_secrets;                       /*  30 0 in ADOPTED */
  uint8_t reserved0;                         /*  31 */
  uint8_t local_addr[16];                    /*  32 */
  uint8_t peer_addr[16];                     /*  48 */
  uint16_t local_port;                       /*  64 */
  uint16_t peer_port;                        /*  66 */
  uint32_t peer_rx_queue;                    /*  68 the peer's receive queue */
  uint8_t holder_token[SMTD_APP_TOKEN_LEN];  /*  72 present it to ADOPT after an smtd restart */
  uint8_t secret_i_0[SMTD_APP_SECRET_MAX];   /*  88 first secret_len bytes valid */
  uint8_t secret_r_0[SMTD_APP_SECRET_MAX];   /* 136 */
  uint8_t k_ctl_i[SMTD_APP_CTL_KEY_LEN];     /* 184 */
  uint8_t k_ctl_r[SMTD_APP_CTL_KEY_LEN];     /* 200 */
  char peer_identity[SMTD_APP_IDENTITY_MAX]; /* 216 what the peer's certificate proved */
  uint32_t session_slot; /* 472 entry in the connection's owner table (TABLE), or
                          *     SMTD_APP_SLOT_NONE: XDP has none for this session */
  uint32_t reserved1;    /* 476 0 */
};
#define SMTD_APP_SLOT_NONE 0xffffffffu

/* TABLE_GRANTED: the connection's owner table (docs/xdp.md "The owner
 * table"), an mmapable BPF array passed as an SCM_RIGHTS fd. The application
 * maps it and keeps each session's entry (session_slot) current: published
 * window base and armed grant slots. One table per connection; asking again
 * returns the same table.
 *
 * The second fd is the connection's notification page (docs/smtd.md
 * "Notifications"): a sealed memfd whose first 8 bytes are a uint64_t that
 * smtd raises by one after each notification (INCOMING, PEER_CLOSED) it has
 * written to this connection. The application maps it read-only and reads
 * its socket when the count moved; the socket stays the source of truth. */
struct smtd_app_table {
  struct smtd_app_hdr hdr;
  uint32_t owner_id;   /* 16 the connection's owner id (smt_session_value.owner_id) */
  uint32_t entries;    /* 20 SMT_OWNER_TABLE_SESSIONS */
  uint32_t entry_size; /* 24 sizeof(struct smt_owner_table_entry) */
  uint32_t reserved;   /* 28 0 */
};

/* DATAPATH: the sockets the application moves its packets through
 * (CONTRACT §7, docs/smtd.md "Datapath sockets"). smtd creates them, so the
 * application needs no CAP_NET_RAW. Today every uid gets raw IP sockets of
 * SMT's protocol bound to smtd's address, each with a locked port filter: it
 * receives only SMT packets for ports this connection leases. Trusted uids
 * will get AF_XDP here (kind SMTD_DATAPATH_AF_XDP) without a new message.
 * Asking again on one connection returns the same sockets. After an smtd
 * restart the application presents the sockets it holds (flag F_PRESENT,
 * the sockets attached as SCM_RIGHTS) so that their filter follows its new
 * connection; the reply then carries no fds. */
#define SMTD_DATAPATH_F_PRESENT 0x0001
#define SMTD_DATAPATH_F_RAW_ONLY 0x0002 /* do not offer AF_XDP: raw sockets only */
#define SMTD_DATAPATH_FAMILY_V4 0x0001
#define SMTD_DATAPATH_FAMILY_V6 0x0002
#define SMTD_DATAPATH_MAX_FDS 4
struct smtd_app_datapath_req {
  struct smtd_app_hdr hdr;
  uint32_t flags;       /* 16 SMTD_DATAPATH_F_* */
  uint32_t families;    /* 20 SMTD_DATAPATH_FAMILY_* wanted; 0: whatever smtd's address has */
  uint32_t rx_queue;    /* 24 receive queue (AF_XDP; 0 for raw) */
  uint32_t reserved;    /* 28 must be 0 */
};
enum smtd_datapath_kind {
  SMTD_DATAPATH_RAW = 1,    /* raw IP sockets, one per family in `families` order v4, v6 */
  SMTD_DATAPATH_AF_XDP = 2, /* an AF_XDP socket and its UMEM memfd, then the raw sockets */
};
/* AF_XDP details: the socket is bound to (ifindex, queue) and already in that
 * interface's xsks_map; the application maps the UMEM memfd and the four
 * rings (XDP_MMAP_OFFSETS) with these sizes (user/link/xsk_socket.h). */
#define SMTD_XSK_F_ZEROCOPY 0x01
struct smtd_datapath_xsk {
  uint32_t frame_size;      /*  0 bytes per UMEM frame */
  uint32_t frame_count;     /*  4 frames in the UMEM */
  uint32_t fill_size;       /*  8 ring entries */
  uint32_t completion_size; /* 12 */
  uint32_t rx_size;         /* 16 */
  uint32_t tx_size;         /* 20 */
  uint32_t ifindex;         /* 24 the interface the socket is bound to */
  uint32_t queue;           /* 28 its queue: the sessions' owner queue */
};
struct smtd_app_datapath {
  struct smtd_app_hdr hdr;
  uint32_t kind;          /* 16 enum smtd_datapath_kind */
  uint32_t fd_count;      /* 20 fds attached (0 answering F_PRESENT) */
  uint32_t families;      /* 24 SMTD_DATAPATH_FAMILY_* of the raw sockets, fds in v4, v6 order */
  uint8_t protocol;       /* 28 SMT's IP protocol number */
  uint8_t xsk_flags;      /* 29 AF_XDP: SMTD_XSK_F_* */
  uint8_t reserved0[2];   /* 30 0 */
  uint8_t local_addr[16]; /* 32 smtd's SMT address (IPv4-mapped for IPv4), the sockets' bind */
  struct smtd_datapath_xsk xsk; /* 48 AF_XDP only; zero for RAW */
  char note[128];         /* 80 RAW to a caller that did not ask F_RAW_ONLY: why not AF_XDP
                           *    (NUL-terminated, for the application's one log line) */
};

/* CLOSE, CLOSED, PEER_CLOSED: a session named by its local port and peer. */
struct smtd_app_close {
  struct smtd_app_hdr hdr;
  uint8_t peer_addr[16]; /* 16 */
  uint16_t peer_port;    /* 32 */
  uint16_t local_port;   /* 34 */
  uint32_t reason;       /* 36 PEER_CLOSED: enum smtd_close_reason; else 0 */
  uint64_t serial;       /* 40 CLOSED/PEER_CLOSED: the session's serial; CLOSE: 0 */
};

enum smtd_close_reason {
  SMTD_CLOSE_BY_PEER = 1,     /* the peer sent CLOSE */
  SMTD_CLOSE_IDLE = 2,        /* no control channel for idle_timeout */
  SMTD_CLOSE_LIFETIME = 3,    /* a certificate the session relied on expired */
  SMTD_CLOSE_OPEN_FAILED = 4, /* reserved */
  SMTD_CLOSE_MAC_FAILURES = 5, /* XDP counted 2^32 tag failures (CONTRACT §5) */
  SMTD_CLOSE_KEYS_SPENT = 6,   /* the holder's engine reported its keys spent (CONTRACT §4) */
};

struct smtd_app_adopt {
  struct smtd_app_hdr hdr;
  uint8_t holder_token[SMTD_APP_TOKEN_LEN]; /* 16 */
};

#define SMTD_LIST_F_LAST 0x0001
struct smtd_app_list {
  struct smtd_app_hdr hdr;
  uint32_t flags;    /* 16 must be 0 */
  uint32_t reserved; /* 20 must be 0 */
};
struct smtd_app_list_chunk {
  struct smtd_app_hdr hdr;
  uint32_t flags;    /* 16 SMTD_LIST_F_LAST on the final chunk */
  uint32_t text_len; /* 20 bytes of JSON text that follow */
  /* 24: text_len bytes of UTF-8 JSON; the chunks concatenated form one document */
};

/* STATS: a holder's engine counters of its sessions (CONTRACT §7), sent about
 * once a second while it holds sessions; smtd keeps the latest per session
 * for GET_STATS and LIST, and replaces a session whose keys are spent.
 * STATS_CHUNK: GET_STATS's answer, the same layout (root: every session's
 * latest report; others: their own), SMTD_LIST_F_LAST on the final chunk. */
#define SMTD_APP_STATS_DROPS 32 /* drops[i]: enum DropReason i (user/wire/drop_reason.h) */
#define SMTD_STATS_F_NEEDS_NEW_SESSION 0x01 /* a receive key passed 2^20 failed opens */
#define SMTD_STATS_F_EPOCHS_EXHAUSTED 0x02  /* the sending epochs are used up */
struct smtd_app_session_stats {
  uint8_t peer_addr[16];  /*  0 */
  uint16_t peer_port;     /* 16 */
  uint16_t local_port;    /* 18 */
  uint16_t tx_epoch;      /* 20 */
  uint16_t rx_epoch;      /* 22 */
  uint32_t flags;         /* 24 SMTD_STATS_F_* */
  uint32_t reserved;      /* 28 0 */
  uint64_t serial;        /* 32 */
  uint64_t sigma;         /* 40 records sealed under the current epoch's key */
  uint64_t sigma_limit;   /* 48 where that epoch ends */
  uint64_t auth_failures; /* 56 records that failed to open */
  uint64_t replays;       /* 64 requests the replay window dropped */
  uint64_t drops[SMTD_APP_STATS_DROPS]; /* 72 the engine's drops by reason */
};
#define SMTD_APP_STATS_MAX_ENTRIES 48 /* per message: 24 + 48 * 328 <= SMTD_APP_MAX_MSG */
struct smtd_app_stats {
  struct smtd_app_hdr hdr;
  uint32_t count; /* 16 entries that follow, <= SMTD_APP_STATS_MAX_ENTRIES */
  uint32_t flags; /* 20 STATS: 0; STATS_CHUNK: SMTD_LIST_F_LAST on the final one */
  /* 24: count struct smtd_app_session_stats */
};

/* ERROR: why a request failed. */
#define SMTD_ALERT_F_VALID 0x01 /* tls_alert is meaningful */
#define SMTD_ALERT_F_SENT 0x02  /* this smtd sent the alert (else it received it) */
struct smtd_app_error {
  struct smtd_app_hdr hdr;
  int32_t err;                        /* 16 errno value: EACCES, EADDRINUSE, ECONNREFUSED ... */
  uint16_t refused_reason;            /* 20 the peer's REFUSED reason, 0 if none */
  uint8_t tls_alert;                  /* 22 TLS alert number of a failed handshake */
  uint8_t alert_flags;                /* 23 SMTD_ALERT_F_* */
  char message[SMTD_APP_MESSAGE_MAX]; /* 24 human-readable, NUL-terminated */
};

#ifdef __cplusplus
#include <cstddef>
static_assert(sizeof(smtd_app_hdr) == 16, "smtd_app_hdr size");
static_assert(sizeof(smtd_app_lease) == 24, "smtd_app_lease size");
static_assert(sizeof(smtd_app_open) == 48, "smtd_app_open size");
static_assert(offsetof(smtd_app_session, holder_token) == 72, "smtd_app_session.holder_token");
static_assert(offsetof(smtd_app_session, secret_i_0) == 88, "smtd_app_session.secret_i_0");
static_assert(offsetof(smtd_app_session, k_ctl_i) == 184, "smtd_app_session.k_ctl_i");
static_assert(offsetof(smtd_app_session, peer_identity) == 216, "smtd_app_session.peer_identity");
static_assert(offsetof(smtd_app_session, session_slot) == 472, "smtd_app_session.session_slot");
static_assert(sizeof(smtd_app_session) == 480, "smtd_app_session size");
static_assert(sizeof(smtd_app_table) == 32, "smtd_app_table size");
static_assert(sizeof(smtd_app_session_stats) == 328, "smtd_app_session_stats size");
static_assert(sizeof(smtd_app_stats) == 24, "smtd_app_stats size");
static_assert(24 + SMTD_APP_STATS_MAX_ENTRIES * 328 <= SMTD_APP_MAX_MSG, "STATS fits");
static_assert(sizeof(smtd_app_close) == 48, "smtd_app_close size");
static_assert(sizeof(smtd_app_datapath_req) == 32, "smtd_app_datapath_req size");
static_assert(sizeof(smtd_datapath_xsk) == 32, "smtd_datapath_xsk size");
static_assert(sizeof(smtd_app_datapath) == 208, "smtd_app_datapath size");
static_assert(sizeof(smtd_app_adopt) == 32, "smtd_app_adopt size");
static_assert(sizeof(smtd_app_list) == 24, "smtd_app_list size");
static_assert(sizeof(smtd_app_list_chunk) == 24, "smtd_app_list_chunk size");
static_assert(sizeof(smtd_app_error) == 264, "smtd_app_error size");
#endif

#endif /* SMTD_APP_PROTOCOL_H */
