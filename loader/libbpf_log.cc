#include "loader/libbpf_log.h"

#include <bpf/libbpf.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>

namespace smt::loader {
namespace {

constexpr size_t kMaxCapturedWarnings = 8192;
// Big enough for the verifier's log of our largest program at log level 1.
constexpr size_t kVerifierLogSize = 4u << 20;

std::atomic<bool> g_verbose{false};
thread_local std::string t_warnings;

int print_callback(enum libbpf_print_level level, const char* format, va_list args) {
  if (g_verbose.load(std::memory_order_relaxed)) {
    va_list copy;
    va_copy(copy, args);
    std::vfprintf(stderr, format, copy);
    va_end(copy);
  }
  if (level != LIBBPF_WARN) return 0;
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof buf, format, args);
  if (n <= 0) return 0;
  t_warnings.append(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
  // Keep the tail: the verifier states its reason last.
  if (t_warnings.size() > kMaxCapturedWarnings) {
    t_warnings.erase(0, t_warnings.size() - kMaxCapturedWarnings);
  }
  return 0;
}

}  // namespace

void install_libbpf_logging() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(print_callback); });
}

void set_libbpf_verbose(bool verbose) {
  g_verbose.store(verbose, std::memory_order_relaxed);
  install_libbpf_logging();
}

std::string take_libbpf_warnings() {
  std::string out;
  out.swap(t_warnings);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string libbpf_error_string(int err) {
  char buf[256];
  if (err < 0) err = -err;
  if (libbpf_strerror(err, buf, sizeof buf) != 0) {
    std::snprintf(buf, sizeof buf, "error %d", err);
  }
  return buf;
}

std::vector<char> verifier_log_buffer() { return std::vector<char>(kVerifierLogSize, '\0'); }

Status load_with_verifier_log(struct bpf_object* obj, const std::vector<char>& log,
                              const std::string& what, const std::string& log_path) {
  install_libbpf_logging();
  take_libbpf_warnings();
  const int err = bpf_object__load(obj);
  if (err == 0) return {};
  const std::string warnings = take_libbpf_warnings();
  const std::string verifier(log.data(), strnlen(log.data(), log.size()));
  if (verifier.empty()) {
    if (err == -EPERM) {
      return make_error(EPERM, "loading " + what +
                                   " was refused (EPERM): needs root (CAP_BPF, CAP_NET_ADMIN)");
    }
    return make_error(-err, "loading " + what + " failed: " + libbpf_error_string(err) +
                                (warnings.empty() ? "" : "\n" + warnings));
  }
  std::ofstream out(log_path, std::ios::trunc);
  out << verifier;
  out.close();
  const std::string where =
      out ? "its log is in " + log_path : "its log could not be written to " + log_path;
  return make_error(EINVAL, "the kernel's verifier rejected " + what + " (" +
                                libbpf_error_string(err) + "); " + where);
}

}  // namespace smt::loader
