// Shared by the control-packet libFuzzer harness, its seed writer and its
// replay test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace smt::fuzz {

/// One valid packet of every control type (GRANT, RESEND, RPC_UNKNOWN, BUSY,
/// NEED_ACK, ACK), tagged under the harness key, control_seq 1 to 6.
std::vector<std::vector<uint8_t>> valid_control_packets();
/// The harness's input format: per packet `u8 flags, u8 length, bytes`.
std::vector<uint8_t> encode_control(const std::vector<std::vector<uint8_t>>& pkts, uint8_t flags);
/// Feeds an input through parse, verify and one ControlWindow; returns how
/// many packets the window accepted. Aborts if an invariant breaks.
size_t run_control(const uint8_t* in, size_t n);

}  // namespace smt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* in, size_t n);
