/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Packet layout of the siphash_test BPF program, shared with the C++ test
 * that feeds it through BPF_PROG_TEST_RUN. Every packet has the fixed length
 * SMT_SIPHASH_TEST_PKT_LEN:
 *   [0, 16)   key
 *   [16]      message length n, 0..SMT_SIPHASH_TEST_MSG_MAX
 *   [17, 17+n) message; the rest up to the tag is ignored
 *   [80, 88)  written by the program: SipHash-2-4 tag, little-endian
 * The program returns XDP_TX after writing the tag and XDP_DROP (packet
 * unchanged) for a short packet or n above the maximum.
 */
#ifndef SMT_BPF_SIPHASH_TEST_LAYOUT_H
#define SMT_BPF_SIPHASH_TEST_LAYOUT_H

#define SMT_SIPHASH_TEST_KEY_OFF 0
#define SMT_SIPHASH_TEST_LEN_OFF 16
#define SMT_SIPHASH_TEST_MSG_OFF 17
#define SMT_SIPHASH_TEST_MSG_MAX 63
#define SMT_SIPHASH_TEST_TAG_OFF 80
#define SMT_SIPHASH_TEST_PKT_LEN 88

#endif /* SMT_BPF_SIPHASH_TEST_LAYOUT_H */
