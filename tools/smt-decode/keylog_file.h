// Reading smtd's debug key log (docs/smtd.md §5): one secret per line,
// "LABEL SERIAL INITIATOR RESPONDER PROTOCOL SUITE SECRET", '#' comments.
// Lines are grouped into sessions (serial, endpoints, protocol); both hosts'
// logs may be concatenated, so an identical repeated line is fine, a
// conflicting one is an error. Secrets are held in wiped storage and never
// appear in an error message.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/secure_bytes.h"
#include "record/key_schedule.h"

namespace smt::decode {

/// 0: initiator → responder (secrets SMT_I_*), 1: responder → initiator.
enum Dir : int { kInitToResp = 0, kRespToInit = 1 };

/// One session's logged secrets.
struct LoggedSession {
  uint64_t serial = 0;
  std::array<uint8_t, 16> initiator_addr{};  ///< IPv4 as IPv4-mapped
  uint16_t initiator_port = 0;
  std::array<uint8_t, 16> responder_addr{};
  uint16_t responder_port = 0;
  uint8_t protocol = 0;
  Suite suite = Suite::kAes128GcmSha256;
  /// Per direction: traffic secrets by epoch (SMT_I_AP_<n> / SMT_R_AP_<n>).
  std::map<uint16_t, SecretBytes> traffic[2];
  /// Per direction: the header/control tag key (SMT_I_CTL / SMT_R_CTL).
  std::optional<SecretBytes> ctl[2];
};

/// Parses key-log text; `source` names it in errors ("FILE:LINE: ...").
Result<std::vector<LoggedSession>> parse_keylog(std::string_view text, const std::string& source);

/// Reads and parses a key-log file.
Result<std::vector<LoggedSession>> read_keylog(const std::string& path);

}  // namespace smt::decode
