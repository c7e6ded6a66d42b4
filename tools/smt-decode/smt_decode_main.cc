// smt-decode: decrypts an SMT capture with smtd's debug key log
// (docs/smt-decode.md).
//
//   smt-decode --keylog FILE -r CAPTURE [--json] [--hex] [--max-bytes N]
//              [--proto N] [--check-nonces] [--no-control]
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "capture_decoder.h"

namespace {

constexpr const char* kUsage =
    "usage: smt-decode --keylog FILE -r CAPTURE [options]\n"
    "\n"
    "Decrypts the SMT messages of a pcap capture with smtd's --keylog file.\n"
    "\n"
    "  --keylog FILE    smtd key log (required; both hosts' logs may be concatenated)\n"
    "  -r CAPTURE       pcap file (Ethernet, raw IP, Linux SLL/SLL2; IPv4 and IPv6)\n"
    "  --proto N        IP protocol number of SMT (default 253)\n"
    "  --json           one JSON object per line instead of text\n"
    "  --hex            plaintext as hex instead of escaped text\n"
    "  --max-bytes N    plaintext bytes shown per message (default 64; 0: all)\n"
    "  --check-nonces   report any (key, record sequence number) seen with two different\n"
    "                   authentic ciphertexts; exit 1 if there is one\n"
    "  --no-control     do not list control packets\n"
    "  --leak-check     search the whole capture file for every 16-byte window of the\n"
    "                   decrypted messages (16-byte stride); exit 1 if one is there\n"
    "  -h, --help       this text\n"
    "\n"
    "Exit status: 0 decoded, 1 a nonce reuse, plaintext found by --leak-check or an SMT\n"
    "packet that did not decode,\n"
    "2 bad usage or unreadable input.\n";

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "smt-decode: %s\n(run 'smt-decode --help' for usage)\n", msg.c_str());
  return 2;
}

template <typename T>
bool parse_number(std::string_view s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

int main(int argc, char** argv) {
  smt::decode::DecodeOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    // Options with a value take it as the next argument or after '='.
    auto value = [&](std::string_view name, std::string* v) {
      if (a == name) {
        if (i + 1 >= argc) return false;
        *v = argv[++i];
        return true;
      }
      if (a.size() > name.size() && a.substr(0, name.size()) == name && a[name.size()] == '=') {
        *v = std::string(a.substr(name.size() + 1));
        return true;
      }
      return false;
    };
    std::string v;
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--hex") {
      o.hex = true;
    } else if (a == "--check-nonces") {
      o.check_nonces = true;
    } else if (a == "--no-control") {
      o.quiet_control = true;
    } else if (a == "--leak-check") {
      o.leak_check = true;
    } else if (value("--keylog", &v)) {
      o.keylog_path = v;
    } else if (value("-r", &v)) {
      o.capture_path = v;
    } else if (value("--proto", &v)) {
      unsigned p = 0;
      if (!parse_number(v, &p) || p > 255)
        return usage_error("--proto wants 0..255, not '" + v + "'");
      o.protocol = static_cast<uint8_t>(p);
    } else if (value("--max-bytes", &v)) {
      if (!parse_number(v, &o.max_bytes)) {
        return usage_error("--max-bytes wants a number, not '" + v + "'");
      }
    } else if (a == "--keylog" || a == "-r" || a == "--proto" || a == "--max-bytes") {
      return usage_error(std::string(a) + " needs a value");
    } else {
      return usage_error("unknown argument '" + std::string(a) + "'");
    }
  }
  if (o.keylog_path.empty()) return usage_error("--keylog FILE is required");
  if (o.capture_path.empty()) return usage_error("-r CAPTURE is required");
  return smt::decode::run_decode(o, stdout, stderr);
}
