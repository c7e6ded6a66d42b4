// The set-up protocol smtds speak over their TLS control channel (CONTRACT §6;
// docs/setup-protocol.md is the byte-level spec). Pure encode/decode: no I/O,
// no state. Every decoder treats its input as hostile: bounds first, then
// meaning.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "common/result.h"

namespace smt::smtd {

/// Version byte of every set-up message (not the SMT data-plane version).
inline constexpr uint8_t kSetupVersion = 1;
/// Frame header: length(2) version(1) type(1); `length` counts the bytes after itself.
inline constexpr size_t kFrameHeaderLen = 4;
/// Largest `length` a receiver accepts; a larger one desynchronises the stream and
/// closes the connection.
inline constexpr size_t kMaxFrameLength = 512;

enum class SetupType : uint8_t {
  kOpen = 1,
  kReady = 2,
  kRefused = 3,
  kClose = 4,
};

/// Body sizes, fixed per type (docs/setup-protocol.md §3).
inline constexpr size_t kOpenBodyLen = 52;
inline constexpr size_t kReadyBodyLen = 12;
inline constexpr size_t kRefusedBodyLen = 12;
inline constexpr size_t kCloseBodyLen = 8;

/// Why a responder refused an OPEN (or any message). Values are on the wire.
enum class RefuseReason : uint16_t {
  kMalformed = 1,           ///< wrong length, reserved bits set, zero port, bad framing
  kUnsupportedVersion = 2,  ///< set-up or SMT version this smtd does not speak
  kUnknownType = 3,         ///< a message type this smtd does not know
  kPortNotLeased = 4,       ///< no local application holds the responder port
  kPeerNotAllowed = 5,      ///< the authenticated identity may not open sessions here
  kAddressMismatch = 6,     ///< initiator/responder address is not the peer's/ours
  kBadSerial = 7,           ///< serial parity does not match the sender's TLS role
  kDuplicate = 8,           ///< serial or 5-tuple already in use
  kNoResources = 9,         ///< session table or map full
  kProtocolMismatch = 10,   ///< IP protocol number differs from this host's
  kInternal = 11,           ///< local failure (map write, key derivation)
};

/// Name of a reason ("port_not_leased"), or "unknown".
const char* refuse_reason_name(RefuseReason r);

struct OpenMsg {
  uint64_t serial = 0;
  uint8_t smt_version = 1;
  uint8_t protocol = 253;
  std::array<uint8_t, 16> initiator_addr{};
  uint16_t initiator_port = 0;
  std::array<uint8_t, 16> responder_addr{};
  uint16_t responder_port = 0;
  uint32_t rx_queue = 0;  ///< initiator's receive queue (informational for the peer)
  bool operator==(const OpenMsg&) const = default;
};

struct ReadyMsg {
  uint64_t serial = 0;
  uint32_t rx_queue = 0;  ///< responder's receive queue
  bool operator==(const ReadyMsg&) const = default;
};

struct RefusedMsg {
  uint64_t serial = 0;
  RefuseReason reason = RefuseReason::kMalformed;
  bool operator==(const RefusedMsg&) const = default;
};

struct CloseMsg {
  uint64_t serial = 0;
  bool operator==(const CloseMsg&) const = default;
};

using SetupMessage = std::variant<OpenMsg, ReadyMsg, RefusedMsg, CloseMsg>;

/// The complete frame (header and body) of `m`.
std::vector<uint8_t> encode_setup(const SetupMessage& m);

/// Length of the first frame in `buf` (header included) once all of it has
/// arrived, 0 while it is incomplete, or EPROTO if its length field is out of
/// range (the stream cannot be resynchronised: close the connection).
Result<size_t> setup_frame_length(std::span<const uint8_t> buf);

/// A frame that could not be decoded, with what to answer.
struct SetupDecodeError {
  RefuseReason reason;
  uint64_t serial;  ///< the frame's serial when its body had 8 bytes, else 0
  std::string message;
};

/// Decodes exactly one frame. Checks, in order: frame length, version, type,
/// body length of the type, reserved bytes, field ranges.
std::variant<SetupMessage, SetupDecodeError> decode_setup(std::span<const uint8_t> frame);

/// "OPEN serial=2 ..." for logs (no key material exists in these messages).
std::string describe_setup(const SetupMessage& m);

}  // namespace smt::smtd
