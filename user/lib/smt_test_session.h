/*
 * TEST-ONLY until smtd exists: opening a session with secrets the caller
 * chose. In the finished system smtd derives every session's secrets from a
 * TLS 1.3 exporter (CONTRACT §1) and hands them to the socket; an
 * application never sees them. Nothing outside tests and tools/smt-echo may
 * use this header.
 */
#ifndef SMT_LIB_SMT_TEST_SESSION_H_
#define SMT_LIB_SMT_TEST_SESSION_H_

#include <stdint.h>
#include <sys/socket.h>

#include "lib/smt.h"

#ifdef __cplusplus
extern "C" {
#endif

/// The secrets of one session (suite TLS_AES_128_GCM_SHA256), the same on
/// both hosts, plus this host's role.
struct smt_test_secrets {
  uint8_t initiator_secret[32];  ///< secret_i_0
  uint8_t responder_secret[32];  ///< secret_r_0
  uint8_t initiator_ctl[16];     ///< k_ctl_i
  uint8_t responder_ctl[16];     ///< k_ctl_r
  int initiator;                 ///< 1 on the host that would have sent OPEN
  uint64_t serial;
  const char* peer_identity;  ///< what smt_peer_identity reports (NULL: "")
};

/// TEST-ONLY. Opens a session between the bound socket and `peer` with the
/// given secrets (copied into the engine; the caller should wipe its copy).
/// EINVAL if the socket is not bound, EEXIST if a session with the peer
/// exists, EAFNOSUPPORT for an address family the link does not carry.
int smt_session_open_test(smt_sock* sock, const struct sockaddr* peer, socklen_t peer_len,
                          const struct smt_test_secrets* secrets);

#ifdef __cplusplus
}
#endif

#endif  // SMT_LIB_SMT_TEST_SESSION_H_
