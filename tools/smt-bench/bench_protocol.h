// smt-bench's application protocol, the same on every stack so that each one
// carries identical bytes: every request starts with an 8-byte header saying
// what the server must do, and the TCP/TLS stacks frame each message with a
// 4-byte length (SMT delimits messages itself).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/result.h"

namespace smt::bench {

/// What a request asks of the server.
enum class Op : uint32_t {
  kEcho = 1,  ///< reply with reply_len bytes
  kCpu = 2,   ///< reply with a ServerUsage (CPU time, placement) and reset the placement
};

/// The request header, little-endian on the wire.
struct RequestHeader {
  Op op = Op::kEcho;
  uint32_t reply_len = 0;
};

inline constexpr size_t kRequestHeaderLen = 8;
/// The largest message any stack carries (64 MiB bulk plus headroom).
inline constexpr uint32_t kMaxMessage = (64u << 20) + 4096;
/// TCP/TLS framing: a u32 little-endian length before every message.
inline constexpr size_t kFrameHeaderLen = 4;

/// The server's answer to Op::kCpu.
struct ServerUsage {
  uint64_t cpu_us = 0;   ///< the server process's user + system CPU time so far
  uint64_t ran_on = 0;   ///< bit i: a server thread handled a request on vCPU i since last kCpu
  uint32_t threads = 0;  ///< server worker threads
};
inline constexpr size_t kServerUsageLen = 20;

/// Writes the header into the first kRequestHeaderLen bytes of `out` (which
/// must be at least that long).
void encode_request_header(const RequestHeader& h, std::span<uint8_t> out);
/// Parses a request; EPROTO for a short message, an unknown op or a reply
/// length past kMaxMessage.
Result<RequestHeader> parse_request_header(std::span<const uint8_t> msg);

void encode_usage(const ServerUsage& u, std::span<uint8_t, kServerUsageLen> out);
/// EPROTO unless `msg` is exactly kServerUsageLen bytes.
Result<ServerUsage> parse_usage(std::span<const uint8_t> msg);

/// A TCP/TLS frame length; EMSGSIZE past kMaxMessage.
Result<uint32_t> parse_frame_len(std::span<const uint8_t, kFrameHeaderLen> hdr);
void encode_frame_len(uint32_t len, std::span<uint8_t, kFrameHeaderLen> out);

}  // namespace smt::bench
