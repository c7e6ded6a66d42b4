// A small application for smtd_untrusted_test.cc, run as an unprivileged uid
// (setpriv): it talks to smtd directly (SmtdClient) and prints what it could
// do with the datapath sockets smtd handed it, one `key=value` per line.
//
//   smtd-untrusted-helper datapath SOCK      setsockopt and filter attempts
//   smtd-untrusted-helper lease SOCK PORT    LEASE's errno (0: granted)
//   smtd-untrusted-helper listen SOCK PORT MS
//       leases PORT, prints "ready", counts SMT packets by destination port
//       on its datapath socket for MS ms, prints "port=P count=N" lines
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "smtd/smtd_client.h"

namespace {

int setsockopt_errno(int fd, int level, int opt) {
  const int one = 1;
  return ::setsockopt(fd, level, opt, &one, sizeof one) == 0 ? 0 : errno;
}

int run_datapath(smt::smtd::SmtdClient& c) {
  auto g = c.datapath();
  if (!g.ok()) {
    std::printf("datapath_errno=%d\n", g.error().code);
    return 1;
  }
  const int fd = g->raw_v4.valid() ? g->raw_v4.get() : g->raw_v6.get();
  const bool v4 = g->raw_v4.valid();
  std::printf("datapath_errno=0\nfamily=%s\n", v4 ? "ipv4" : "ipv6");
  std::printf("hdrincl_errno=%d\n", v4 ? setsockopt_errno(fd, IPPROTO_IP, IP_HDRINCL)
                                       : setsockopt_errno(fd, IPPROTO_IPV6, 36));
  std::printf("detach_errno=%d\n", setsockopt_errno(fd, SOL_SOCKET, SO_DETACH_FILTER));
  // An option with nothing to do with headers still works on it.
  const int buf = 1 << 20;
  std::printf("rcvbuf_errno=%d\n",
              ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf) == 0 ? 0 : errno);
  const int own = ::socket(AF_INET, SOCK_RAW, 253);
  std::printf("own_raw_errno=%d\n", own >= 0 ? 0 : errno);
  if (own >= 0) ::close(own);
  return 0;
}

int run_listen(smt::smtd::SmtdClient& c, uint16_t port, int ms) {
  auto g = c.datapath();
  if (!g.ok()) {
    std::printf("datapath_errno=%d\n", g.error().code);
    return 1;
  }
  auto l = c.lease(port);
  if (!l.ok()) {
    std::printf("lease_errno=%d\n", l.error().code);
    return 1;
  }
  const int fd = g->raw_v4.valid() ? g->raw_v4.get() : g->raw_v6.get();
  const bool v4 = g->raw_v4.valid();
  std::printf("ready\n");
  std::fflush(stdout);
  std::map<uint16_t, int> counts;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          end - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    uint8_t b[2048];
    const ssize_t n = ::recv(fd, b, sizeof b, MSG_DONTWAIT);
    if (n <= 0) continue;
    size_t off = 0;
    if (v4) {
      if (n < 20) continue;
      off = size_t{b[0] & 0x0fu} * 4;
    }
    if (static_cast<size_t>(n) < off + 4) continue;
    ++counts[static_cast<uint16_t>(b[off + 2] << 8 | b[off + 3])];
  }
  for (const auto& [p, n] : counts) std::printf("port=%u count=%d\n", p, n);
  std::printf("done\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s datapath|lease|listen SOCK [PORT [MS]]\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  auto c = smt::smtd::SmtdClient::connect(argv[2]);
  if (!c.ok()) {
    std::printf("connect_errno=%d\n", c.error().code);
    return 1;
  }
  if (mode == "datapath") return run_datapath(*c);
  if (mode == "lease" && argc == 4) {
    auto l = c->lease(static_cast<uint16_t>(std::atoi(argv[3])));
    std::printf("lease_errno=%d\n", l.ok() ? 0 : l.error().code);
    return 0;
  }
  if (mode == "listen" && argc == 5) {
    return run_listen(*c, static_cast<uint16_t>(std::atoi(argv[3])), std::atoi(argv[4]));
  }
  std::fprintf(stderr, "bad arguments\n");
  return 2;
}
