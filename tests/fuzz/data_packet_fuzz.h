// Shared by the libFuzzer harness, its seed writer and its replay test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace smt::fuzz {

/// The packets of the harness's one valid message (2500 bytes padded to
/// 2560, three records): each record whole, then cut into 400-byte TSO slices.
std::vector<std::vector<uint8_t>> valid_packets();
/// The harness's input format: per packet `u8 flags, u16 length, bytes`.
std::vector<uint8_t> encode(const std::vector<std::vector<uint8_t>>& pkts, uint8_t flags);
/// Feeds an input to a fresh receiver; returns how many messages it
/// delivered. Aborts if a delivered message is not the sealed one.
size_t run(const uint8_t* in, size_t n);

}  // namespace smt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* in, size_t n);
