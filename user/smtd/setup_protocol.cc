#include "smtd/setup_protocol.h"

#include <cstring>

#include "common/bytes.h"
#include "smtd/address.h"

namespace smt::smtd {
namespace {

size_t body_len_of(SetupType t) {
  switch (t) {
    case SetupType::kOpen:
      return kOpenBodyLen;
    case SetupType::kReady:
      return kReadyBodyLen;
    case SetupType::kRefused:
      return kRefusedBodyLen;
    case SetupType::kClose:
      return kCloseBodyLen;
  }
  return 0;
}

const char* type_name(SetupType t) {
  switch (t) {
    case SetupType::kOpen:
      return "OPEN";
    case SetupType::kReady:
      return "READY";
    case SetupType::kRefused:
      return "REFUSED";
    case SetupType::kClose:
      return "CLOSE";
  }
  return "unknown";
}

std::vector<uint8_t> frame(SetupType t, size_t body_len) {
  std::vector<uint8_t> out(kFrameHeaderLen + body_len, 0);
  store_be16(out.data(), static_cast<uint16_t>(2 + body_len));
  out[2] = kSetupVersion;
  out[3] = static_cast<uint8_t>(t);
  return out;
}

SetupDecodeError fail(RefuseReason r, uint64_t serial, std::string msg) {
  return SetupDecodeError{r, serial, std::move(msg)};
}

}  // namespace

const char* refuse_reason_name(RefuseReason r) {
  switch (r) {
    case RefuseReason::kMalformed:
      return "malformed";
    case RefuseReason::kUnsupportedVersion:
      return "unsupported_version";
    case RefuseReason::kUnknownType:
      return "unknown_type";
    case RefuseReason::kPortNotLeased:
      return "port_not_leased";
    case RefuseReason::kPeerNotAllowed:
      return "peer_not_allowed";
    case RefuseReason::kAddressMismatch:
      return "address_mismatch";
    case RefuseReason::kBadSerial:
      return "bad_serial";
    case RefuseReason::kDuplicate:
      return "duplicate";
    case RefuseReason::kNoResources:
      return "no_resources";
    case RefuseReason::kProtocolMismatch:
      return "protocol_mismatch";
    case RefuseReason::kInternal:
      return "internal";
  }
  return "unknown";
}

std::vector<uint8_t> encode_setup(const SetupMessage& m) {
  if (const auto* o = std::get_if<OpenMsg>(&m)) {
    auto out = frame(SetupType::kOpen, kOpenBodyLen);
    uint8_t* b = out.data() + kFrameHeaderLen;
    store_be64(b + 0, o->serial);
    b[8] = o->smt_version;
    b[9] = o->protocol;
    store_be16(b + 10, o->initiator_port);
    store_be16(b + 12, o->responder_port);
    // b[14..15] reserved, zero
    store_be32(b + 16, o->rx_queue);
    std::memcpy(b + 20, o->initiator_addr.data(), 16);
    std::memcpy(b + 36, o->responder_addr.data(), 16);
    return out;
  }
  if (const auto* r = std::get_if<ReadyMsg>(&m)) {
    auto out = frame(SetupType::kReady, kReadyBodyLen);
    store_be64(out.data() + kFrameHeaderLen, r->serial);
    store_be32(out.data() + kFrameHeaderLen + 8, r->rx_queue);
    return out;
  }
  if (const auto* r = std::get_if<RefusedMsg>(&m)) {
    auto out = frame(SetupType::kRefused, kRefusedBodyLen);
    store_be64(out.data() + kFrameHeaderLen, r->serial);
    store_be16(out.data() + kFrameHeaderLen + 8, static_cast<uint16_t>(r->reason));
    return out;
  }
  const auto& c = std::get<CloseMsg>(m);
  auto out = frame(SetupType::kClose, kCloseBodyLen);
  store_be64(out.data() + kFrameHeaderLen, c.serial);
  return out;
}

Result<size_t> setup_frame_length(std::span<const uint8_t> buf) {
  if (buf.size() < 2) return size_t{0};
  size_t len = load_be16(buf.data());
  if (len < 2 || len > kMaxFrameLength) {
    return make_error(EPROTO, "set-up frame length " + std::to_string(len) + " outside [2, " +
                                  std::to_string(kMaxFrameLength) + "]");
  }
  if (buf.size() < 2 + len) return size_t{0};
  return 2 + len;
}

std::variant<SetupMessage, SetupDecodeError> decode_setup(std::span<const uint8_t> f) {
  if (f.size() < kFrameHeaderLen) {
    return fail(RefuseReason::kMalformed, 0, "set-up frame shorter than its 4-byte header");
  }
  size_t len = load_be16(f.data());
  if (len != f.size() - 2) {
    return fail(RefuseReason::kMalformed, 0,
                "set-up frame length field " + std::to_string(len) + " does not match the frame (" +
                    std::to_string(f.size() - 2) + " bytes after it)");
  }
  std::span<const uint8_t> body = f.subspan(kFrameHeaderLen);
  uint64_t serial = body.size() >= 8 ? load_be64(body.data()) : 0;
  if (f[2] != kSetupVersion) {
    return fail(RefuseReason::kUnsupportedVersion, serial,
                "set-up version " + std::to_string(f[2]) + " (this smtd speaks " +
                    std::to_string(kSetupVersion) + ")");
  }
  auto type = static_cast<SetupType>(f[3]);
  size_t want = body_len_of(type);
  if (want == 0) {
    return fail(RefuseReason::kUnknownType, serial,
                "unknown set-up message type " + std::to_string(f[3]));
  }
  if (body.size() != want) {
    return fail(RefuseReason::kMalformed, serial,
                std::string(type_name(type)) + " body is " + std::to_string(body.size()) +
                    " bytes, expected " + std::to_string(want));
  }
  const uint8_t* b = body.data();
  switch (type) {
    case SetupType::kOpen: {
      OpenMsg o;
      o.serial = serial;
      o.smt_version = b[8];
      o.protocol = b[9];
      o.initiator_port = load_be16(b + 10);
      o.responder_port = load_be16(b + 12);
      if (load_be16(b + 14) != 0) {
        return fail(RefuseReason::kMalformed, serial, "OPEN reserved bytes are not zero");
      }
      o.rx_queue = load_be32(b + 16);
      std::memcpy(o.initiator_addr.data(), b + 20, 16);
      std::memcpy(o.responder_addr.data(), b + 36, 16);
      if (o.initiator_port == 0 || o.responder_port == 0) {
        return fail(RefuseReason::kMalformed, serial, "OPEN with port 0");
      }
      if (o.serial == 0) return fail(RefuseReason::kMalformed, 0, "OPEN with serial 0");
      return SetupMessage{o};
    }
    case SetupType::kReady:
      return SetupMessage{ReadyMsg{serial, load_be32(b + 8)}};
    case SetupType::kRefused: {
      if (load_be16(b + 10) != 0) {
        return fail(RefuseReason::kMalformed, serial, "REFUSED reserved bytes are not zero");
      }
      uint16_t reason = load_be16(b + 8);
      if (reason == 0) return fail(RefuseReason::kMalformed, serial, "REFUSED with reason 0");
      return SetupMessage{RefusedMsg{serial, static_cast<RefuseReason>(reason)}};
    }
    case SetupType::kClose:
      return SetupMessage{CloseMsg{serial}};
  }
  return fail(RefuseReason::kUnknownType, serial, "unknown set-up message type");
}

std::string describe_setup(const SetupMessage& m) {
  if (const auto* o = std::get_if<OpenMsg>(&m)) {
    return "OPEN serial=" + std::to_string(o->serial) +
           " version=" + std::to_string(o->smt_version) +
           " protocol=" + std::to_string(o->protocol) + " " +
           format_endpoint({o->initiator_addr, o->initiator_port}) + " -> " +
           format_endpoint({o->responder_addr, o->responder_port}) +
           " rx_queue=" + std::to_string(o->rx_queue);
  }
  if (const auto* r = std::get_if<ReadyMsg>(&m)) {
    return "READY serial=" + std::to_string(r->serial) + " rx_queue=" + std::to_string(r->rx_queue);
  }
  if (const auto* r = std::get_if<RefusedMsg>(&m)) {
    return "REFUSED serial=" + std::to_string(r->serial) +
           " reason=" + std::to_string(static_cast<unsigned>(r->reason)) + " (" +
           refuse_reason_name(r->reason) + ")";
  }
  return "CLOSE serial=" + std::to_string(std::get<CloseMsg>(m).serial);
}

}  // namespace smt::smtd
