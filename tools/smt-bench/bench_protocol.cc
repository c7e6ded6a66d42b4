#include "bench_protocol.h"

#include <cerrno>
#include <string>

namespace smt::bench {
namespace {

uint32_t load32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint64_t load64(const uint8_t* p) { return uint64_t(load32(p)) | uint64_t(load32(p + 4)) << 32; }
void store32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
void store64(uint8_t* p, uint64_t v) {
  store32(p, uint32_t(v));
  store32(p + 4, uint32_t(v >> 32));
}

}  // namespace

void encode_request_header(const RequestHeader& h, std::span<uint8_t> out) {
  store32(out.data(), static_cast<uint32_t>(h.op));
  store32(out.data() + 4, h.reply_len);
}

Result<RequestHeader> parse_request_header(std::span<const uint8_t> msg) {
  if (msg.size() < kRequestHeaderLen) {
    return make_error(EPROTO, "request of " + std::to_string(msg.size()) + " B has no header");
  }
  const uint32_t op = load32(msg.data());
  const uint32_t reply_len = load32(msg.data() + 4);
  if (op != uint32_t(Op::kEcho) && op != uint32_t(Op::kCpu)) {
    return make_error(EPROTO, "unknown request op " + std::to_string(op));
  }
  if (reply_len > kMaxMessage) {
    return make_error(EPROTO, "reply length " + std::to_string(reply_len) + " too large");
  }
  return RequestHeader{static_cast<Op>(op), reply_len};
}

void encode_usage(const ServerUsage& u, std::span<uint8_t, kServerUsageLen> out) {
  store64(out.data(), u.cpu_us);
  store64(out.data() + 8, u.ran_on);
  store32(out.data() + 16, u.threads);
}

Result<ServerUsage> parse_usage(std::span<const uint8_t> msg) {
  if (msg.size() != kServerUsageLen) {
    return make_error(EPROTO, "usage reply of " + std::to_string(msg.size()) + " B");
  }
  return ServerUsage{load64(msg.data()), load64(msg.data() + 8), load32(msg.data() + 16)};
}

Result<uint32_t> parse_frame_len(std::span<const uint8_t, kFrameHeaderLen> hdr) {
  const uint32_t len = load32(hdr.data());
  if (len > kMaxMessage) {
    return make_error(EMSGSIZE, "frame of " + std::to_string(len) + " B exceeds the limit");
  }
  return len;
}

void encode_frame_len(uint32_t len, std::span<uint8_t, kFrameHeaderLen> out) {
  store32(out.data(), len);
}

}  // namespace smt::bench
