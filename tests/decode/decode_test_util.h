// Helpers of the smt-decode tests: temporary files, crafted pcap bytes, key
// logs in smtd's own format, and running the decoder into a string.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "capture_decoder.h"
#include "common/bytes.h"
#include "record/key_schedule.h"
#include "smtd/keylog.h"

namespace smt::decode::test {

/// A directory under /tmp removed (with its files) on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/smt-decode-test-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    if (!path_.empty()) std::system(("rm -rf '" + path_ + "'").c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
inline void write_text(const std::string& path, const std::string& s) {
  std::ofstream f(path, std::ios::binary);
  f << s;
}

/// The four smtd key-log lines of one session with these secrets.
inline std::string keylog_lines(const SessionContextInput& in, std::span<const uint8_t> si,
                                std::span<const uint8_t> sr, std::span<const uint8_t> ci,
                                std::span<const uint8_t> cr) {
  return smtd::keylog_line("SMT_I_AP_0", in, si) + "\n" + smtd::keylog_line("SMT_R_AP_0", in, sr) +
         "\n" + smtd::keylog_line("SMT_I_CTL", in, ci) + "\n" +
         smtd::keylog_line("SMT_R_CTL", in, cr) + "\n";
}

/// What run_decode printed and returned.
struct DecodeRun {
  int status = -1;
  std::string out, err;
};

inline DecodeRun decode(const DecodeOptions& o) {
  DecodeRun r;
  char* obuf = nullptr;
  char* ebuf = nullptr;
  size_t olen = 0, elen = 0;
  std::FILE* out = ::open_memstream(&obuf, &olen);
  std::FILE* err = ::open_memstream(&ebuf, &elen);
  r.status = run_decode(o, out, err);
  std::fclose(out);
  std::fclose(err);
  r.out.assign(obuf, olen);
  r.err.assign(ebuf, elen);
  std::free(obuf);
  std::free(ebuf);
  return r;
}

/// The lines of `text`.
inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> v;
  size_t s = 0;
  while (s < text.size()) {
    size_t n = text.find('\n', s);
    if (n == std::string::npos) n = text.size();
    v.push_back(text.substr(s, n - s));
    s = n + 1;
  }
  return v;
}

/// The value of "key" in a one-line JSON object of smt-decode (strings
/// unquoted; values never contain ',' or '}' in the fields tests read).
inline std::string json_field(const std::string& line, const std::string& key) {
  const std::string k = "\"" + key + "\":";
  size_t p = line.find(k);
  if (p == std::string::npos) return "";
  p += k.size();
  if (line[p] == '"') {
    size_t e = line.find('"', p + 1);
    return line.substr(p + 1, e - p - 1);
  }
  size_t e = line.find_first_of(",}", p);
  return line.substr(p, e - p);
}

}  // namespace smt::decode::test
