// smtd-bench: handshake and session set-up latency of a running smtd, seen
// from a peer. Each round: TCP connect + TLS 1.3 handshake (full, or resumed
// with the previous ticket, psk_dhe_ke), then OPEN -> READY on that channel
// (smtd derives the secrets, writes two map entries, hands the holder its
// INCOMING message, answers READY), then CLOSE. Reports medians and p90s.
//
//   smtd-bench --connect 127.0.0.1:7853 --cert C --key K --ca CA --identity dns:smtd
//              --socket /path/smtd.sock --local 10.0.0.1 --remote 10.0.0.2 [-n 200]
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "smtd/address.h"
#include "smtd/setup_protocol.h"
#include "smtd/smtd_client.h"
#include "smtd/tls_context.h"

using namespace smt;
using namespace smt::smtd;
using Clock = std::chrono::steady_clock;

namespace {

double us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

struct Stats {
  std::vector<double> v;
  void add(double x) { v.push_back(x); }
  double pct(double p) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
  }
};

bool read_frame(SSL* ssl, std::vector<uint8_t>* frame) {
  frame->clear();
  uint8_t buf[512];
  for (;;) {
    auto len = setup_frame_length(*frame);
    if (!len) return false;
    if (*len != 0) return true;
    int n = SSL_read(ssl, buf, sizeof buf);
    if (n <= 0) return false;
    frame->insert(frame->end(), buf, buf + n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"smtd-bench: TLS handshake and OPEN->READY latency against a running smtd"};
  std::string connect, cert, key, ca, identity, socket_path, local = "10.0.0.1",
                                                             remote = "10.0.0.2";
  int rounds = 200;
  uint16_t port = 5000;
  app.add_option("--connect", connect, "smtd's listen endpoint")->required();
  app.add_option("--cert", cert)->required();
  app.add_option("--key", key)->required();
  app.add_option("--ca", ca)->required();
  app.add_option("--identity", identity, "identity smtd must prove")->required();
  app.add_option("--socket", socket_path, "smtd's unix socket (to lease the port)")->required();
  app.add_option("--local", local, "SMT address this peer claims (its [peer] address)");
  app.add_option("--remote", remote, "smtd's SMT address");
  app.add_option("--port", port, "port to lease on smtd");
  app.add_option("-n", rounds, "rounds per kind");
  CLI11_PARSE(app, argc, argv);

  auto ep = parse_endpoint(connect);
  auto la = parse_addr(local), ra = parse_addr(remote);
  if (!ep || !la || !ra) {
    std::fprintf(stderr, "smtd-bench: bad address\n");
    return 2;
  }
  Config cfg;
  cfg.certificate = cert;
  cfg.key = key;
  cfg.ca = ca;
  auto tls = make_tls_contexts(cfg);
  if (!tls) {
    std::fprintf(stderr, "smtd-bench: %s\n", tls.error().message.c_str());
    return 1;
  }
  auto holder = SmtdClient::connect(socket_path);
  if (!holder || !holder->lease(port)) {
    std::fprintf(stderr, "smtd-bench: cannot lease port %u on %s\n", port, socket_path.c_str());
    return 1;
  }
  // Drain INCOMING notifications so smtd never sees a holder that does not read.
  int hfd = holder->fd();
  bool stop = false;
  std::thread drain([hfd, &stop] {
    std::vector<uint8_t> buf(SMTD_APP_MAX_MSG);
    while (!stop) {
      if (::recv(hfd, buf.data(), buf.size(), 0) <= 0) break;
    }
  });

  SslSessionPtr ticket;
  uint64_t serial = 2;
  uint16_t src_port = 40000;
  for (int resumed = 0; resumed < 2; ++resumed) {
    Stats hs, setup, total;
    int reused = 0;
    for (int i = 0; i < rounds; ++i) {
      TlsPeerState st;
      st.allowed = {identity};
      SslSessionPtr next;
      st.on_ticket = [&next](SslSessionPtr s) { next = std::move(s); };
      auto t0 = Clock::now();
      sockaddr_storage ss;
      socklen_t len = to_sockaddr(*ep, &ss);
      int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        std::perror("connect");
        return 1;
      }
      SslPtr ssl(SSL_new(tls->client.get()));
      attach_peer_state(ssl.get(), &st);
      SSL_set_fd(ssl.get(), fd);
      if (resumed && ticket) SSL_set_session(ssl.get(), ticket.get());
      if (SSL_connect(ssl.get()) != 1) {
        std::fprintf(stderr, "smtd-bench: handshake failed: %s %s\n", openssl_errors().c_str(),
                     st.verify_error.c_str());
        return 1;
      }
      auto t1 = Clock::now();
      reused += SSL_session_reused(ssl.get());
      OpenMsg m;
      m.serial = serial;
      m.initiator_addr = *la;
      m.initiator_port = src_port;
      m.responder_addr = *ra;
      m.responder_port = port;
      auto bytes = encode_setup(m);
      SSL_write(ssl.get(), bytes.data(), static_cast<int>(bytes.size()));
      std::vector<uint8_t> frame;
      if (!read_frame(ssl.get(), &frame)) {
        std::fprintf(stderr, "smtd-bench: no answer to OPEN\n");
        return 1;
      }
      auto t2 = Clock::now();
      auto reply = decode_setup(frame);
      if (!std::holds_alternative<SetupMessage>(reply) ||
          !std::holds_alternative<ReadyMsg>(std::get<SetupMessage>(reply))) {
        std::fprintf(stderr, "smtd-bench: OPEN not answered with READY\n");
        return 1;
      }
      auto close = encode_setup(CloseMsg{serial});
      SSL_write(ssl.get(), close.data(), static_cast<int>(close.size()));
      if (next) ticket = std::move(next);
      SSL_shutdown(ssl.get());
      ssl.reset();
      ::close(fd);
      hs.add(us(t1 - t0));
      setup.add(us(t2 - t1));
      total.add(us(t2 - t0));
      serial += 2;
      src_port = static_cast<uint16_t>(src_port == 49999 ? 40000 : src_port + 1);
    }
    std::printf("| %s | %d | %d | %.0f / %.0f | %.0f / %.0f | %.0f / %.0f |\n",
                resumed ? "resumed (psk_dhe_ke)" : "full", rounds, reused, hs.pct(0.5), hs.pct(0.9),
                setup.pct(0.5), setup.pct(0.9), total.pct(0.5), total.pct(0.9));
    std::fflush(stdout);
  }
  stop = true;
  ::shutdown(hfd, SHUT_RDWR);
  drain.join();
  return 0;
}
