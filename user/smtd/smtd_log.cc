#include "smtd/smtd_log.h"

#include <unistd.h>

#include <cstdio>

namespace smt::smtd {
namespace {
LogLevel g_level = LogLevel::kInfo;
}

void set_log_level(LogLevel level) { g_level = level; }

void log_line(LogLevel level, const std::string& msg) {
  if (level < g_level) return;
  static const char* const kPrefix[] = {"debug: ", "", "warning: ", "error: "};
  std::string line =
      "smtd[" + std::to_string(::getpid()) + "]: " + kPrefix[static_cast<int>(level)] + msg + "\n";
  // One write per line so lines of concurrent processes do not interleave.
  ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
}

}  // namespace smt::smtd
