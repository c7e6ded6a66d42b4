#include "smtd/keylog.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace smt::smtd {

Keylog::~Keylog() {
  if (fd_ >= 0) ::close(fd_);
}

Status Keylog::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int e = errno;
    return make_error(e, "cannot open key log " + path + ": " + std::strerror(e));
  }
  ::fchmod(fd, 0600);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  static const char kHeader[] =
      "# SMT key log v1 (smtd --keylog). DEBUG ONLY: live session secrets.\n"
      "# LABEL SERIAL INITIATOR RESPONDER PROTOCOL SUITE SECRET\n";
  ssize_t unused = ::write(fd_, kHeader, sizeof kHeader - 1);
  (void)unused;
  return {};
}

std::string keylog_line(const char* label, const SessionContextInput& in,
                        std::span<const uint8_t> secret) {
  static const char kDigits[] = "0123456789abcdef";
  char suite[8];
  std::snprintf(suite, sizeof suite, "%04x", static_cast<unsigned>(in.suite));
  std::string line = std::string(label) + " " + std::to_string(in.serial) + " " +
                     format_endpoint({in.initiator_addr, in.initiator_port}) + " " +
                     format_endpoint({in.responder_addr, in.responder_port}) + " " +
                     std::to_string(in.protocol) + " " + suite + " ";
  for (uint8_t b : secret) {
    line.push_back(kDigits[b >> 4]);
    line.push_back(kDigits[b & 15]);
  }
  return line;
}

void Keylog::write_session(const SessionContextInput& in, const SessionSecrets& s) {
  if (fd_ < 0) return;
  std::string text = keylog_line("SMT_I_AP_0", in, s.initiator_secret.span()) + "\n" +
                     keylog_line("SMT_R_AP_0", in, s.responder_secret.span()) + "\n" +
                     keylog_line("SMT_I_CTL", in, s.initiator_ctl.span()) + "\n" +
                     keylog_line("SMT_R_CTL", in, s.responder_ctl.span()) + "\n";
  ssize_t unused = ::write(fd_, text.data(), text.size());
  (void)unused;
  OPENSSL_cleanse(text.data(), text.size());
}

}  // namespace smt::smtd
