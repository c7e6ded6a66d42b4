// The debug-only key log (smtd --keylog FILE; docs/smtd.md "Key log"): one
// line per secret, in the spirit of NSS's SSLKEYLOGFILE, so a capture decoder
// can find every session's keys. Off by default; enabling it prints a loud
// warning, because the file defeats the whole point of the transport.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/result.h"
#include "record/key_schedule.h"
#include "smtd/address.h"

namespace smt::smtd {

class Keylog {
 public:
  Keylog() = default;
  Keylog(const Keylog&) = delete;
  Keylog& operator=(const Keylog&) = delete;
  ~Keylog();

  /// Opens (appends to, creating with mode 0600) `path`.
  Status open(const std::string& path);
  bool enabled() const { return fd_ >= 0; }

  /// Writes the four lines of one session: SMT_I_AP_0, SMT_R_AP_0, SMT_I_CTL,
  /// SMT_R_CTL, each "LABEL SERIAL INITIATOR RESPONDER PROTOCOL SUITE HEX".
  void write_session(const SessionContextInput& in, const SessionSecrets& s);

 private:
  int fd_ = -1;
};

/// One key-log line (no newline), exposed for tests and the engine.
std::string keylog_line(const char* label, const SessionContextInput& in,
                        std::span<const uint8_t> secret);

}  // namespace smt::smtd
