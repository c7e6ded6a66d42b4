#include "keylog_file.h"

#include <openssl/crypto.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>

#include "smtd/address.h"

namespace smt::decode {
namespace {

// A key log has four lines per session; 64 MiB is far more than any debug run.
constexpr size_t kMaxKeylogBytes = 64u << 20;

// Splits on spaces and tabs; empty fields are never produced.
std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

template <typename T>
bool parse_uint(std::string_view s, T* out, int base = 10) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && p == s.data() + s.size();
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The label's direction and epoch (nullopt epoch: a control key).
struct Label {
  int dir = 0;
  std::optional<uint16_t> epoch;
};

bool parse_label(std::string_view s, Label* out) {
  if (s == "SMT_I_CTL" || s == "SMT_R_CTL") {
    out->dir = s[4] == 'I' ? kInitToResp : kRespToInit;
    out->epoch.reset();
    return true;
  }
  constexpr std::string_view kI = "SMT_I_AP_", kR = "SMT_R_AP_";
  std::string_view rest;
  if (s.substr(0, kI.size()) == kI) {
    out->dir = kInitToResp;
    rest = s.substr(kI.size());
  } else if (s.substr(0, kR.size()) == kR) {
    out->dir = kRespToInit;
    rest = s.substr(kR.size());
  } else {
    return false;
  }
  uint16_t epoch = 0;
  if (rest.size() > 1 && rest[0] == '0') return false;  // one spelling per epoch
  if (!parse_uint(rest, &epoch)) return false;
  out->epoch = epoch;
  return true;
}

bool same_session(const LoggedSession& a, const LoggedSession& b) {
  return a.serial == b.serial && a.initiator_addr == b.initiator_addr &&
         a.initiator_port == b.initiator_port && a.responder_addr == b.responder_addr &&
         a.responder_port == b.responder_port && a.protocol == b.protocol;
}

}  // namespace

Result<std::vector<LoggedSession>> parse_keylog(std::string_view text, const std::string& source) {
  std::vector<LoggedSession> sessions;
  size_t line_no = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(start, nl - start);
    start = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto bad = [&](const std::string& why) {
      return make_error(EINVAL, source + ":" + std::to_string(line_no) + ": " + why);
    };
    auto f = fields(line);
    if (f.empty() || f[0][0] == '#') {
      if (nl == text.size()) break;
      continue;
    }
    if (f.size() != 7) {
      return bad(
          "expected 7 fields (LABEL SERIAL INITIATOR RESPONDER PROTOCOL SUITE SECRET), got " +
          std::to_string(f.size()));
    }
    Label label;
    if (!parse_label(f[0], &label)) {
      return bad("unknown label '" + std::string(f[0].substr(0, 32)) +
                 "' (want SMT_I_AP_<n>, SMT_R_AP_<n>, SMT_I_CTL or SMT_R_CTL)");
    }
    LoggedSession s;
    if (!parse_uint(f[1], &s.serial)) return bad("serial is not a decimal 64-bit number");
    auto ini = smtd::parse_endpoint(f[2]);
    if (!ini.ok()) return bad("initiator: " + ini.error().message);
    auto res = smtd::parse_endpoint(f[3]);
    if (!res.ok()) return bad("responder: " + res.error().message);
    s.initiator_addr = ini->addr;
    s.initiator_port = ini->port;
    s.responder_addr = res->addr;
    s.responder_port = res->port;
    if (!parse_uint(f[4], &s.protocol)) return bad("protocol is not a number in 0..255");
    uint16_t suite = 0;
    if (f[5].size() != 4 || !parse_uint(f[5], &suite, 16)) {
      return bad("suite is not 4 hex digits");
    }
    s.suite = static_cast<Suite>(suite);
    const SuiteInfo* info = suite_info(s.suite);
    if (info == nullptr) return bad("unknown cipher suite " + std::string(f[5]));
    const size_t want = label.epoch ? info->hash_len : 16;
    const std::string_view hex = f[6];
    if (hex.size() != 2 * want) {
      return bad("secret must be " + std::to_string(want) + " bytes (" + std::to_string(2 * want) +
                 " hex digits) for this label and suite, got " + std::to_string(hex.size()) +
                 " digits");
    }
    uint8_t raw[SecretBytes::kCapacity];
    for (size_t i = 0; i < want; ++i) {
      const int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        OPENSSL_cleanse(raw, sizeof raw);
        return bad("secret is not hex");
      }
      raw[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    SecretBytes secret(std::span<const uint8_t>(raw, want));
    OPENSSL_cleanse(raw, sizeof raw);

    LoggedSession* into = nullptr;
    for (auto& have : sessions) {
      if (same_session(have, s)) into = &have;
    }
    if (into == nullptr) {
      sessions.push_back(std::move(s));
      into = &sessions.back();
    } else if (into->suite != s.suite) {
      return bad("session " + std::to_string(s.serial) + " was logged with another suite");
    }
    if (label.epoch) {
      auto [it, fresh] = into->traffic[label.dir].emplace(*label.epoch, secret);
      if (!fresh && !(it->second == secret)) {
        return bad(std::string(f[0]) + " of session " + std::to_string(s.serial) +
                   " conflicts with an earlier line");
      }
    } else {
      auto& slot = into->ctl[label.dir];
      if (slot && !(*slot == secret)) {
        return bad(std::string(f[0]) + " of session " + std::to_string(s.serial) +
                   " conflicts with an earlier line");
      }
      slot = secret;
    }
    if (nl == text.size()) break;
  }
  return sessions;
}

Result<std::vector<LoggedSession>> read_keylog(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    const int e = errno;
    return make_error(e, path + ": cannot open key log: " + std::strerror(e));
  }
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    if (text.size() + n > kMaxKeylogBytes) {
      OPENSSL_cleanse(buf, sizeof buf);
      OPENSSL_cleanse(text.data(), text.size());
      return make_error(EFBIG, path + ": key log larger than 64 MiB");
    }
    text.append(buf, n);
  }
  OPENSSL_cleanse(buf, sizeof buf);
  const bool failed = std::ferror(f.get()) != 0;
  auto r = failed ? Result<std::vector<LoggedSession>>(make_error(EIO, path + ": read error"))
                  : parse_keylog(text, path);
  OPENSSL_cleanse(text.data(), text.size());
  return r;
}

}  // namespace smt::decode
