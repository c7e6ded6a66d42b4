// smt-setup-msg: writes set-up protocol frames (docs/setup-protocol.md) to
// stdout, for feeding `openssl s_client` or `gnutls-cli` in tests.
//
//   smt-setup-msg open SERIAL INIT_ADDR INIT_PORT RESP_ADDR RESP_PORT [PROTOCOL]
//   smt-setup-msg close SERIAL
//   smt-setup-msg raw HEX          (any bytes, e.g. a malformed frame)
//   --hex before the verb prints hex instead of binary.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "smtd/address.h"
#include "smtd/setup_protocol.h"

using namespace smt::smtd;

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: smt-setup-msg [--hex] open SERIAL INIT_ADDR INIT_PORT RESP_ADDR RESP_PORT "
               "[PROTOCOL]\n"
               "       smt-setup-msg [--hex] close SERIAL\n"
               "       smt-setup-msg [--hex] raw HEX\n");
  return 2;
}

bool parse_u64(const char* s, uint64_t max, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v > max) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int i = 1;
  bool hex = false;
  if (i < argc && std::strcmp(argv[i], "--hex") == 0) {
    hex = true;
    ++i;
  }
  if (i >= argc) return usage();
  std::string verb = argv[i++];
  std::vector<uint8_t> out;
  uint64_t serial = 0, p1 = 0, p2 = 0, proto = 253;
  if (verb == "open" && (argc - i == 5 || argc - i == 6)) {
    auto ia = parse_addr(argv[i + 1]);
    auto ra = parse_addr(argv[i + 3]);
    if (!parse_u64(argv[i], UINT64_MAX, &serial) || !ia || !ra ||
        !parse_u64(argv[i + 2], 65535, &p1) || !parse_u64(argv[i + 4], 65535, &p2) ||
        (argc - i == 6 && !parse_u64(argv[i + 5], 255, &proto))) {
      return usage();
    }
    OpenMsg m;
    m.serial = serial;
    m.protocol = static_cast<uint8_t>(proto);
    m.initiator_addr = *ia;
    m.initiator_port = static_cast<uint16_t>(p1);
    m.responder_addr = *ra;
    m.responder_port = static_cast<uint16_t>(p2);
    out = encode_setup(m);
  } else if (verb == "close" && argc - i == 1) {
    if (!parse_u64(argv[i], UINT64_MAX, &serial)) return usage();
    out = encode_setup(CloseMsg{serial});
  } else if (verb == "raw" && argc - i == 1) {
    std::string h = argv[i];
    if (h.size() % 2 != 0) return usage();
    for (size_t k = 0; k < h.size(); k += 2) {
      out.push_back(static_cast<uint8_t>(std::strtoul(h.substr(k, 2).c_str(), nullptr, 16)));
    }
  } else {
    return usage();
  }
  if (hex) {
    for (uint8_t b : out) std::printf("%02x", b);
    std::printf("\n");
    return 0;
  }
  return ::write(STDOUT_FILENO, out.data(), out.size()) == static_cast<ssize_t>(out.size()) ? 0 : 1;
}
