/*
 * libsmt: the application's view of SMT, a thin socket shim over the
 * transport engine (user/transport). Homa's API is the model: a socket sends
 * requests, receives requests and responses, and replies by (peer, id).
 *
 * Threading (BRIEF §3): the engine runs to completion in the application
 * thread that is inside a libsmt call. Every call takes the socket's lock and
 * lets the engine make progress (receive, open, deliver, timers, seal, send);
 * a blocking smt_recv sleeps in poll() on the link and wakes at the engine's
 * next timer. A helper thread runs timers and progress only while no
 * application thread has been inside a libsmt call for at least one timer
 * tick. Calls from several threads are safe; smt_close must not race them.
 *
 * Errors: -1 (or NULL) with errno set, Homa style; smt_last_error() gives the
 * failing call's message (per thread; never key material).
 *
 * Fork (CONTRACT §2): a socket belongs to the process that created it. Every
 * call from another process (a forked child) fails with EPERM and touches no
 * state, keys included.
 *
 * Sessions (CONTRACT §6, docs/smtd.md §8): a socket keeps a connection to
 * smtd's unix socket for its whole life. smt_bind leases the port from smtd;
 * the first smt_send_request to a new peer opens a session through smtd
 * (blocking, bounded) and installs the keys smtd derived; sessions peers open
 * to this port arrive as smtd notifications, handled inside libsmt calls
 * before each receive batch (and by the helper thread). When the socket
 * closes or the process exits, smtd closes its sessions on both hosts. When
 * smtd restarts, the socket reconnects and re-adopts its sessions with their
 * holder tokens; the engine keeps its keys, so RPCs in flight never notice.
 */
#ifndef SMT_LIB_SMT_H_
#define SMT_LIB_SMT_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/// An SMT socket: one local port, one transport engine, any number of peers.
typedef struct smt_sock smt_sock;

/// smt_recv flags. Neither REQUEST nor RESPONSE means both.
enum {
  SMT_RECV_REQUEST = 1 << 0,   ///< accept incoming requests
  SMT_RECV_RESPONSE = 1 << 1,  ///< accept responses (and failures) of this socket's requests
  SMT_RECV_NONBLOCK = 1 << 2,  ///< fail with EAGAIN instead of waiting
};

/// What a received message is.
enum smt_msg_kind {
  SMT_MSG_REQUEST = 1,   ///< a request: answer it with smt_reply(peer, id)
  SMT_MSG_RESPONSE = 2,  ///< the response to this socket's request `id`
  SMT_MSG_ERROR = 3,     ///< this socket's request `id` failed; `error` is an errno
};

/// One received message. `data` is a library-owned buffer (no copy is made
/// of what the engine assembled): it stays valid until smt_msg_release().
struct smt_msg {
  uint64_t id;  ///< the RPC's request id (even), as on the wire
  enum smt_msg_kind kind;
  int error;                     ///< errno for SMT_MSG_ERROR, else 0
  struct sockaddr_storage peer;  ///< the peer's IP address and SMT port
  socklen_t peer_len;
  const void* data;  ///< message bytes (NULL when len is 0)
  size_t len;
  void* owner_;  ///< internal: the buffer smt_msg_release frees
};

/// Counters of one socket, never key material.
struct smt_socket_stats {
  /// Thread hand-offs: an event produced by one thread (its progress queued
  /// it) and consumed by another counts one; waking a thread blocked in
  /// smt_recv from another thread counts one. 0 for a single-threaded client.
  uint64_t handoffs;
  uint64_t helper_runs;         ///< times the helper thread ran progress
  uint64_t messages_queued;     ///< messages delivered and waiting for smt_recv
  uint64_t rpcs_active;         ///< RPCs the engine still holds (a reply may await its ACK)
  uint64_t requests_sent;       ///< smt_send_request successes
  uint64_t responses_received;  ///< SMT_MSG_RESPONSE messages handed out
  uint64_t rpcs_failed;         ///< SMT_MSG_ERROR messages handed out
  uint64_t requests_received;   ///< SMT_MSG_REQUEST messages handed out
  uint64_t replies_sent;        ///< smt_reply successes
  /* engine counters */
  uint64_t data_packets_sent;  ///< DATA packets and TSO segments handed to the link
  uint64_t data_packets_resent;
  uint64_t packets_received;
  uint64_t records_sealed;
  uint64_t drops;          ///< every packet the engine dropped, any reason
  uint64_t memory_in_use;  ///< message bytes the engine and the socket hold
  /* link counters */
  uint64_t link_tx_packets;       ///< packets put on the wire (after TSO cutting)
  uint64_t link_tx_data_packets;  ///< DATA packets put on the wire
  uint64_t link_rx_packets;
  /* smtd counters (0 for a socket without smtd) */
  uint64_t sessions_opened;     ///< sessions this socket opened through smtd
  uint64_t sessions_incoming;   ///< sessions peers opened to this socket
  uint64_t sessions_closed;     ///< closed by the peer, idle expiry or a failed re-adoption
  uint64_t smtd_reconnects;     ///< times the smtd connection was re-established
  uint64_t sessions_readopted;  ///< sessions re-adopted with their holder tokens
  uint64_t smtd_connected;      ///< 1 while the smtd connection is up
  /// Times a call read smtd's socket. A call reads it only when smtd's
  /// notification count moved, its wait saw the socket readable, or once a
  /// millisecond; every call does without smtd's notification page.
  uint64_t smtd_socket_reads;
};

/// smt_socket_opts.families bits.
enum {
  SMT_FAMILY_V4 = 1 << 0,
  SMT_FAMILY_V6 = 1 << 1,
};

/// How smt_socket_raw opens its link. Zero-initialised means: IP protocol
/// 253, IPv4 and IPv6, unbound, no device, MTU 1500, smtd at its default
/// socket, 25 s bound on opening a session.
struct smt_socket_opts {
  uint8_t protocol;      ///< SMT's IP protocol number; 0: 253 (never 146 by default)
  unsigned families;     ///< SMT_FAMILY_* bits; 0: both
  const char* local_v4;  ///< numeric IPv4 address to bind, or NULL
  const char* local_v6;  ///< numeric IPv6 address to bind, or NULL
  const char* device;    ///< SO_BINDTODEVICE, or NULL
  uint32_t mtu;          ///< IP MTU; 0: the device's, or 1500 without one
  /// smtd's unix socket. NULL: $SMT_SMTD_SOCKET, else /run/smt/smtd.sock.
  /// "" (empty): no smtd; sessions come only from the TEST-ONLY
  /// smt_session_open_test and smt_bind records a port without a lease.
  const char* smtd_socket;
  /// Bound on an implicit session open through smtd, ms; 0: 25000.
  uint32_t open_timeout_ms;
  /// With smtd: SMT_DATAPATH_AUTO (0) takes AF_XDP when smtd offers it (a
  /// trusted uid, XDP attached), else smtd's raw socket with one log line
  /// saying why; SMT_DATAPATH_RAW always the raw socket.
  unsigned datapath;
  /// AF_XDP: the receive queue to bind (the sessions' owner queue); 0 by default.
  uint32_t xdp_queue;
};
#define SMT_DATAPATH_AUTO 0u
#define SMT_DATAPATH_RAW 1u

/// Creates a socket over a raw IP socket link (the portable datapath) in the
/// calling thread's network namespace, on CLOCK_MONOTONIC, with the engine's
/// default settings, connected to smtd (see smtd_socket; the connect's errno,
/// e.g. ENOENT or ECONNREFUSED, when smtd is not there). With smtd the raw
/// sockets are smtd's (DATAPATH, docs/smtd.md §9): no CAP_NET_RAW needed;
/// without smtd they are opened here and need CAP_NET_RAW (EPERM otherwise).
/// NULL with errno on failure.
smt_sock* smt_socket_raw(const struct smt_socket_opts* opts);

/// Leases the socket's local SMT port from smtd: `port`, or an ephemeral one
/// for 0 (smt_local_addr tells which). EADDRINUSE when another holds it,
/// EACCES when this uid may not lease it, EADDRNOTAVAIL when no ephemeral port
/// is left, EINVAL for a second bind. An unbound socket's first send leases
/// an ephemeral port. Without smtd the port is only recorded (EINVAL for 0).
int smt_bind(smt_sock* sock, uint16_t port);

/// Starts an RPC: sends `len` bytes to `peer` (sockaddr_in or sockaddr_in6,
/// the port is the peer's SMT port) and stores its id in `*id`. The first
/// request to a new peer opens a session through smtd and blocks until it is
/// READY (at most open_timeout_ms): ECONNREFUSED when the peer refused, is
/// unreachable or unknown, or smtd is gone; EACCES when not allowed. Later
/// requests never block. ENOTCONN without smtd and without a session, EAGAIN
/// when the peer's replay window is full, ENOBUFS past the socket's memory
/// cap, EMSGSIZE for a message too long.
int smt_send_request(smt_sock* sock, const struct sockaddr* peer, socklen_t peer_len,
                     const void* buf, size_t len, uint64_t* id);

/// Receives one message matching `flags` and, when `id` is not 0, that
/// client RPC (a response or failure of request `id` from any peer: ids are
/// per peer, so with several peers prefer id 0 and check msg.peer). Waits up
/// to `timeout_ms` (< 0: forever) unless SMT_RECV_NONBLOCK is set. EAGAIN
/// (non-blocking, nothing there), ETIMEDOUT, EINVAL for bad flags or a
/// blocking call on a socket driven by a virtual clock. Release `*out` with
/// smt_msg_release().
int smt_recv(smt_sock* sock, int flags, uint64_t id, struct smt_msg* out, int timeout_ms);

/// Frees a received message's buffer and clears data/len. Safe on a message
/// already released or never filled (zero-initialised).
void smt_msg_release(struct smt_msg* msg);

/// Sends the response to request `id` from `peer`. ENOENT when no such
/// request awaits a reply, ENOTCONN when no session with the peer exists.
int smt_reply(smt_sock* sock, const struct sockaddr* peer, socklen_t peer_len, uint64_t id,
              const void* buf, size_t len);

/// Abandons this socket's request `id` to `peer` (no message about it
/// follows, a queued response is discarded) or a received request this
/// socket will not answer. ENOENT when no such RPC exists.
int smt_abort(smt_sock* sock, const struct sockaddr* peer, socklen_t peer_len, uint64_t id);

/// An fd for poll/epoll, readable when smt_recv may return something: a
/// packet arrived on the link, a message is queued (another thread or the
/// helper produced it), or an engine timer is due (the caller's next libsmt
/// call runs it). After it polls readable, call smt_recv with
/// SMT_RECV_NONBLOCK; EAGAIN is possible. Owned by the socket. Created on
/// first use; -1 with errno on failure.
int smt_fd(smt_sock* sock);

/// Copies the peer's identity as smtd authenticated it (what its certificate
/// proved, e.g. "dns:hostb"; NUL-terminated) into buf.
/// Returns its length without the NUL; ERANGE if buf is too small, ENOTCONN
/// when no session with the peer exists.
int smt_peer_identity(smt_sock* sock, const struct sockaddr* peer, socklen_t peer_len, char* buf,
                      size_t len);

/// The local address and port this socket uses towards `peer` (like
/// getsockname): the link's bound address of the peer's family, else the
/// route's choice. ENETUNREACH when there is none, EINVAL if unbound.
int smt_local_addr(smt_sock* sock, const struct sockaddr* peer, socklen_t peer_len,
                   struct sockaddr_storage* out, socklen_t* out_len);

/// Fills `*out` with the socket's counters.
int smt_stats(smt_sock* sock, struct smt_socket_stats* out);

/// Re-attaches the socket to smtd now: if the connection dropped (smtd
/// restarted), reconnects and ADOPTs every session with its holder token
/// (sessions smtd no longer has are closed). libsmt does the same on its own
/// within 100 ms of noticing the drop; this call does not wait. Returns the
/// number of sessions re-adopted (0 when the connection was up), or -1:
/// ECONNREFUSED/ENOENT when smtd is not back yet, EINVAL without smtd.
int smt_readopt(smt_sock* sock);

/// Stops the helper thread, closes every session (their keys are wiped) and
/// frees the socket. No other call on `sock` may be running or follow.
/// EPERM from a forked child (which then leaves the parent's copy alone).
int smt_close(smt_sock* sock);

/// The message of this thread's last failing libsmt call ("" if none).
const char* smt_last_error(void);

#ifdef __cplusplus
}
#endif

#endif  // SMT_LIB_SMT_H_
