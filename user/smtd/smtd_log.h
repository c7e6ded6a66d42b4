// smtd's log: one line per event on stderr (systemd's journal adds the time;
// a line carries its level as "smtd: warning: ..."). Never pass key material.
#pragma once

#include <string>

namespace smt::smtd {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

/// Lines below this level are dropped (default kInfo; -v lowers it).
void set_log_level(LogLevel level);
void log_line(LogLevel level, const std::string& msg);

inline void log_debug(const std::string& m) { log_line(LogLevel::kDebug, m); }
inline void log_info(const std::string& m) { log_line(LogLevel::kInfo, m); }
inline void log_warning(const std::string& m) { log_line(LogLevel::kWarning, m); }
inline void log_error(const std::string& m) { log_line(LogLevel::kError, m); }

}  // namespace smt::smtd
