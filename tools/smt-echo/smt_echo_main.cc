// smt-echo: an echo server and a latency-measuring client over libsmt.
//
//   smt-echo genkey > key                      (TEST-ONLY shared key, see below)
//   smt-echo server --port 2000 --peer 10.0.0.1 --secret-file key [--raw-v4 ADDR]
//   smt-echo client --peer 10.0.0.2 --port 2000 --secret-file key
//                   --sizes 64,1024,65536,1048576 --count 1000
//   smt-echo selftest --sizes 64,1024 --count 100   (memory wire, one process)
//   smt-echo server --port 2000 --smtd /run/smt/smtd.sock
//   smt-echo client --peer 10.0.0.2 --port 2000 --smtd /run/smt/smtd.sock
//
// With --smtd, sessions come from smtd (the client's first request opens one,
// the server accepts what peers open). Without it they come from a shared
// --secret-file (TEST-ONLY: echo_secrets.h says what that does and does not
// protect), and the server must be told its clients' addresses (--peer) and
// port (--peer-port).
#include <openssl/crypto.h>
#include <poll.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>

#include "echo_payload.h"
#include "echo_secrets.h"
#include "lib/smt.hpp"
#include "lib/smt_test_session.h"
#include "link/memory_link.h"

namespace smt::echo {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

struct Sa {
  explicit Sa(const PeerAddr& p) { p.to_sockaddr(&ss, &len); }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
  sockaddr_storage ss{};
  socklen_t len = 0;
};

// Opens the test session between this socket and `peer`; `client` says which
// end initiates.
Status open_session(Socket& sock, const SecretBytes& key, const PeerAddr& peer, bool client,
                    uint64_t serial, const char* identity) {
  Sa psa(peer);
  sockaddr_storage local_ss;
  socklen_t local_len = 0;
  if (smt_local_addr(sock.raw(), psa.get(), psa.len, &local_ss, &local_len) != 0) {
    return lib::last_error();
  }
  auto local = PeerAddr::from_sockaddr(reinterpret_cast<sockaddr*>(&local_ss), local_len);
  if (!local.ok()) return local.error();
  auto secrets = client ? derive_secrets(key, *local, peer, serial, true, identity)
                        : derive_secrets(key, peer, *local, serial, false, identity);
  if (!secrets.ok()) return secrets.error();
  const int rc = smt_session_open_test(sock.raw(), psa.get(), psa.len, &*secrets);
  const Error err = lib::last_error();
  OPENSSL_cleanse(&*secrets, sizeof(smt_test_secrets));
  if (rc != 0) return err;
  return {};
}

void print_stats(const char* who, Socket& sock) {
  auto st = sock.stats();
  if (!st.ok()) return;
  std::printf(
      "stats %s: handoffs=%llu helper_runs=%llu requests_sent=%llu responses_received=%llu "
      "requests_received=%llu replies_sent=%llu rpcs_failed=%llu data_packets_sent=%llu "
      "data_packets_resent=%llu link_tx_data_packets=%llu link_tx_packets=%llu "
      "link_rx_packets=%llu drops=%llu\n",
      who, (unsigned long long)st->handoffs, (unsigned long long)st->helper_runs,
      (unsigned long long)st->requests_sent, (unsigned long long)st->responses_received,
      (unsigned long long)st->requests_received, (unsigned long long)st->replies_sent,
      (unsigned long long)st->rpcs_failed, (unsigned long long)st->data_packets_sent,
      (unsigned long long)st->data_packets_resent, (unsigned long long)st->link_tx_data_packets,
      (unsigned long long)st->link_tx_packets, (unsigned long long)st->link_rx_packets,
      (unsigned long long)st->drops);
  std::fflush(stdout);
}

// Writes `served` to `path` (when not empty) as one decimal line, through a
// rename so a reader never sees a partial number.
void write_count_file(const std::string& path, uint64_t served) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return;
  std::fprintf(f, "%llu\n", (unsigned long long)served);
  if (std::fclose(f) == 0) std::rename(tmp.c_str(), path.c_str());
}

// Serves echo requests until stopped or `max_rpcs` (0: no limit) are answered.
// Returns the number of failures; `*served` counts the requests answered and
// is mirrored to `count_file` (if named) whenever the server goes idle and at
// least every 50 ms while it is busy.
uint64_t serve(Socket& sock, uint64_t max_rpcs, const std::atomic<bool>& stop,
               const std::string& count_file, uint64_t* served) {
  uint64_t failures = 0;
  uint64_t written = 0;
  auto last_write = std::chrono::steady_clock::now();
  auto sync_count = [&](bool force) {
    const auto now = std::chrono::steady_clock::now();
    if (*served == written && !force) return;
    if (!force && now - last_write < std::chrono::milliseconds(50)) return;
    write_count_file(count_file, *served);
    written = *served;
    last_write = now;
  };
  write_count_file(count_file, 0);
  while (!stop && !g_stop && (max_rpcs == 0 || *served < max_rpcs)) {
    auto m = sock.recv(SMT_RECV_REQUEST, 0, 100);
    if (!m.ok()) {
      if (m.error().code != ETIMEDOUT) {
        std::fprintf(stderr, "smt-echo server: recv: %s\n", m.error().message.c_str());
        ++failures;
      }
      sync_count(*served != written);
      continue;
    }
    auto peer = m->peer();
    Status st = peer.ok() ? sock.reply(*peer, m->id(), m->data()) : Status(peer.error());
    if (!st.ok()) {
      std::fprintf(stderr, "smt-echo server: reply: %s\n", st.error().message.c_str());
      ++failures;
      continue;
    }
    ++*served;
    sync_count(false);
  }
  // The last replies still need grants and an ACK from their clients: keep
  // the engine running until it holds no RPC (or 2 s passed).
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!g_stop && std::chrono::steady_clock::now() < end) {
    auto st = sock.stats();
    if (!st.ok() || st->rpcs_active == 0) break;
    auto m = sock.recv(SMT_RECV_REQUEST, 0, 10);
    if (m.ok()) {
      if (auto peer = m->peer(); !peer.ok() || !sock.reply(*peer, m->id(), m->data()).ok()) {
        ++failures;
      } else {
        ++*served;
      }
    }
  }
  sync_count(true);
  return failures;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * double(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

struct ClientOptions {
  std::vector<size_t> sizes{64, 1024, 65536, 1048576};
  uint64_t count = 100;
  uint64_t seed = 1;
  int timeout_ms = 5000;
  size_t concurrency = 1;  ///< RPCs outstanding at once
};

// Runs count RPCs per size, prints RTT percentiles; returns 0 when every RPC
// came back byte-identical.
int run_client(Socket& sock, const PeerAddr& server, const ClientOptions& o) {
  uint64_t failed = 0;
  uint64_t mismatched = 0;
  uint64_t total = 0;
  uint64_t bytes = 0;
  const auto t_start = std::chrono::steady_clock::now();
  for (size_t size : o.sizes) {
    std::vector<double> rtt_us;
    rtt_us.reserve(o.count);
    // Up to o.concurrency RPCs outstanding; each response is matched by id.
    struct Outstanding {
      uint64_t index;
      std::chrono::steady_clock::time_point t0;
    };
    std::map<uint64_t, Outstanding> inflight;
    uint64_t next = 0, finished = 0;
    while (finished < o.count) {
      while (next < o.count && inflight.size() < o.concurrency) {
        const auto payload = echo_payload(o.seed, size, next);
        ++total;
        const auto t0 = std::chrono::steady_clock::now();
        auto id = sock.send_request(server, payload);
        if (!id.ok()) {
          std::fprintf(stderr, "smt-echo client: send (%zu B): %s\n", size,
                       id.error().message.c_str());
          ++failed;
          ++finished;
        } else {
          inflight[*id] = Outstanding{next, t0};
        }
        ++next;
      }
      if (inflight.empty()) continue;
      auto m = sock.recv(SMT_RECV_RESPONSE, 0, o.timeout_ms);
      const auto t1 = std::chrono::steady_clock::now();
      if (!m.ok()) {
        // Nothing came back within the timeout: every outstanding RPC failed.
        for (const auto& [id, out] : inflight) {
          std::fprintf(stderr, "smt-echo client: rpc %llu (%zu B) failed: %s\n",
                       (unsigned long long)id, size, m.error().message.c_str());
          (void)sock.abort(server, id);
        }
        failed += inflight.size();
        finished += inflight.size();
        inflight.clear();
        continue;
      }
      auto it = inflight.find(m->id());
      if (it == inflight.end()) continue;  // a late answer to an RPC given up on
      const uint64_t index = it->second.index;
      const auto t0 = it->second.t0;
      inflight.erase(it);
      ++finished;
      if (m->kind() != SMT_MSG_RESPONSE) {
        std::fprintf(stderr, "smt-echo client: rpc %llu (%zu B) failed: %s\n",
                     (unsigned long long)m->id(), size, std::strerror(m->error()));
        ++failed;
        continue;
      }
      const auto payload = echo_payload(o.seed, size, index);
      if (!std::equal(m->data().begin(), m->data().end(), payload.begin(), payload.end())) {
        std::fprintf(stderr, "smt-echo client: rpc %llu (%zu B): echo differs\n",
                     (unsigned long long)m->id(), size);
        ++mismatched;
        continue;
      }
      bytes += size;
      rtt_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    std::sort(rtt_us.begin(), rtt_us.end());
    std::printf("size %zu B: %zu ok, RTT us p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f\n", size,
                rtt_us.size(), percentile(rtt_us, 50), percentile(rtt_us, 90),
                percentile(rtt_us, 99), percentile(rtt_us, 99.9));
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  // A few ticks more so the last responses' ACKs leave before the process
  // does (the server would otherwise hold those RPCs until its timeout).
  (void)sock.recv(SMT_RECV_RESPONSE, 0, 20);
  std::printf("smt-echo: %llu rpcs, %llu failed, %llu mismatched, %.1f MB echoed in %.2f s\n",
              (unsigned long long)total, (unsigned long long)failed, (unsigned long long)mismatched,
              double(bytes) / 1e6, secs);
  std::fflush(stdout);
  return failed == 0 && mismatched == 0 ? 0 : 1;
}

// --datapath and --xdp-queue (server and client).
struct DatapathChoice {
  std::string kind = "auto";
  uint32_t xdp_queue = 0;
};
DatapathChoice g_datapath;

Result<Socket> raw_socket(const std::string& v4, const std::string& v6, const PeerAddr* peer,
                          const std::string& smtd) {
  smt_socket_opts o{};
  o.datapath = g_datapath.kind == "raw" ? SMT_DATAPATH_RAW : SMT_DATAPATH_AUTO;
  o.xdp_queue = g_datapath.xdp_queue;
  o.smtd_socket = smtd.c_str();  // "": test-secret sessions, no smtd
  if (!v4.empty()) o.local_v4 = v4.c_str();
  if (!v6.empty()) o.local_v6 = v6.c_str();
  if (v4.empty() != v6.empty()) {
    o.families = v4.empty() ? SMT_FAMILY_V6 : SMT_FAMILY_V4;
  } else if (peer != nullptr && v4.empty()) {
    o.families = link::is_v4_mapped(peer->addr) ? SMT_FAMILY_V4 : SMT_FAMILY_V6;
  }
  return Socket::raw(o);
}

int fail(const char* what, const Error& e) {
  std::fprintf(stderr, "smt-echo: %s: %s\n", what, e.message.c_str());
  return 2;
}

int cmd_server(uint16_t port, const std::vector<std::string>& peers, uint16_t peer_port,
               const std::string& secret_file, const std::string& smtd, const std::string& v4,
               const std::string& v6, uint64_t serial, uint64_t max_rpcs,
               const std::string& count_file) {
  SecretBytes key;
  if (smtd.empty()) {
    auto k = read_key_file(secret_file);
    if (!k.ok()) return fail("secret file", k.error());
    key = *k;
  }
  auto sock = raw_socket(v4, v6, nullptr, smtd);
  if (!sock.ok()) return fail("socket", sock.error());
  if (auto st = sock->bind(port); !st.ok()) return fail("bind", st.error());
  for (const auto& p : smtd.empty() ? peers : std::vector<std::string>{}) {
    auto pa = PeerAddr::parse(p, peer_port);
    if (!pa.ok()) return fail("--peer", pa.error());
    if (auto st = open_session(*sock, key, *pa, false, serial, "smt-echo client (test key)");
        !st.ok()) {
      return fail(("session with " + p).c_str(), st.error());
    }
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::printf("smt-echo server: ready on port %u\n", port);
  std::fflush(stdout);
  std::atomic<bool> stop{false};
  uint64_t served = 0;
  const uint64_t failures = serve(*sock, max_rpcs, stop, count_file, &served);
  print_stats("server", *sock);
  std::printf("smt-echo server: answered %llu requests, %llu failures\n",
              (unsigned long long)served, (unsigned long long)failures);
  std::fflush(stdout);
  return failures == 0 ? 0 : 1;
}

int cmd_client(const std::string& peer, uint16_t port, uint16_t local_port,
               const std::string& secret_file, const std::string& smtd, const std::string& v4,
               const std::string& v6, uint64_t serial, const ClientOptions& o, bool stats) {
  SecretBytes key;
  if (smtd.empty()) {
    auto k = read_key_file(secret_file);
    if (!k.ok()) return fail("secret file", k.error());
    key = *k;
  }
  auto pa = PeerAddr::parse(peer, port);
  if (!pa.ok()) return fail("--peer", pa.error());
  auto sock = raw_socket(v4, v6, &*pa, smtd);
  if (!sock.ok()) return fail("socket", sock.error());
  // With smtd, no --local-port means an ephemeral lease at the first send.
  if (smtd.empty() || local_port != 0) {
    if (auto st = sock->bind(local_port != 0 ? local_port : 40000); !st.ok()) {
      return fail("bind", st.error());
    }
  }
  if (smtd.empty()) {
    if (auto st = open_session(*sock, key, *pa, true, serial, "smt-echo server (test key)");
        !st.ok()) {
      return fail("session", st.error());
    }
  } else {
    // The first request opens the session; say whom smtd authenticated and
    // how long set-up took (OPEN through smtd's TLS-authenticated channel,
    // READY, keys installed) plus that first empty RPC.
    const auto t0 = std::chrono::steady_clock::now();
    auto id = sock->send_request(*pa, std::vector<uint8_t>{});
    if (!id.ok()) return fail("session", id.error());
    auto m = sock->recv(SMT_RECV_RESPONSE, *id, o.timeout_ms);
    if (!m.ok() || m->kind() != SMT_MSG_RESPONSE) {
      return fail("first rpc",
                  m.ok() ? make_error(m->error(), std::strerror(m->error())) : m.error());
    }
    const double setup_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    auto ident = sock->peer_identity(*pa);
    std::printf("smt-echo: session with %s, peer identity %s, set-up + first RPC %.2f ms\n",
                pa->to_string().c_str(), ident.ok() ? ident->c_str() : "?", setup_ms);
    std::fflush(stdout);  // scripts wait for this line while the RPCs run
  }
  const int rc = run_client(*sock, *pa, o);
  if (stats) print_stats("client", *sock);
  return rc;
}

// Client and server in one process over the in-memory wire, in real time.
int cmd_selftest(const ClientOptions& o, bool stats) {
  auto key = new_key();
  if (!key.ok()) return fail("key", key.error());
  link::MemoryWireConfig wc;
  auto a = PeerAddr::parse("10.0.0.1", 40000);
  auto b = PeerAddr::parse("10.0.0.2", 2000);
  wc.addr_a = a->addr;
  wc.addr_b = b->addr;
  auto wire = link::MemoryWire::create(MonotonicClock::instance(), wc);
  if (!wire.ok()) return fail("memory wire", wire.error());
  int rc = 0;
  {
    auto client = Socket::over_link((*wire)->a(), MonotonicClock::instance());
    auto server = Socket::over_link((*wire)->b(), MonotonicClock::instance());
    if (!client.ok() || !server.ok()) return fail("socket", lib::last_error());
    if (!client->bind(a->port).ok() || !server->bind(b->port).ok()) {
      return fail("bind", lib::last_error());
    }
    if (auto st = open_session(*client, *key, *b, true, 0, "selftest server"); !st.ok()) {
      return fail("session", st.error());
    }
    if (auto st = open_session(*server, *key, *a, false, 0, "selftest client"); !st.ok()) {
      return fail("session", st.error());
    }
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> server_failures{0};
    std::thread srv([&] {
      uint64_t served = 0;
      server_failures = serve(*server, 0, stop, std::string(), &served);
    });
    rc = run_client(*client, *b, o);
    stop = true;
    srv.join();
    if (server_failures != 0) rc = 1;
    if (stats) {
      print_stats("client", *client);
      print_stats("server", *server);
    }
  }
  return rc;
}

}  // namespace
}  // namespace smt::echo

int main(int argc, char** argv) {
  using namespace smt::echo;
  CLI::App app{"smt-echo: SMT echo server and latency client (test keys until smtd exists)"};
  app.require_subcommand(1);

  std::string secret_file;
  std::string smtd;
  std::string raw_v4;
  std::string raw_v6;
  uint64_t serial = 0;
  ClientOptions copts;
  bool stats = false;

  auto* gen = app.add_subcommand("genkey", "print a fresh TEST-ONLY 32-byte key as hex");

  auto* server = app.add_subcommand("server", "echo every request (raw IP socket link)");
  uint16_t port = 0;
  std::vector<std::string> peers;
  uint16_t peer_port = 40000;
  uint64_t max_rpcs = 0;
  server->add_option("--port", port, "SMT port to serve")->required();
  server->add_option("--peer", peers, "client address to open a session with (test keys)");
  server->add_option("--peer-port", peer_port, "the clients' SMT port")->capture_default_str();
  server->add_option("--max-rpcs", max_rpcs, "exit after answering this many (0: never)");
  std::string count_file;
  server->add_option("--count-file", count_file,
                     "keep the number of requests answered in this file (updated when idle, "
                     "every 50 ms while busy, and at exit)");

  auto* client = app.add_subcommand("client", "measure echo RTTs (raw IP socket link)");
  std::string peer;
  uint16_t local_port = 0;
  client->add_option("--peer", peer, "server address")->required();
  client->add_option("--port", port, "server SMT port")->required();
  client->add_option("--local-port", local_port,
                     "this client's SMT port (default: 40000; ephemeral with --smtd)");

  for (auto* c : {server, client}) {
    c->add_option("--secret-file", secret_file, "TEST-ONLY shared key (smt-echo genkey)");
    c->add_option("--smtd", smtd, "smtd's unix socket: sessions through smtd, no test key");
    c->add_option("--raw-v4", raw_v4, "local IPv4 address to bind");
    c->add_option("--raw-v6", raw_v6, "local IPv6 address to bind");
    c->add_option("--serial", serial, "session serial (both ends; new per run)");
    c->add_option("--datapath", g_datapath.kind,
                  "with --smtd: auto (AF_XDP when smtd offers it) or raw")
        ->check(CLI::IsMember({"auto", "raw"}))
        ->capture_default_str();
    c->add_option("--xdp-queue", g_datapath.xdp_queue, "AF_XDP receive queue")
        ->capture_default_str();
  }
  auto* self = app.add_subcommand("selftest", "client and server in one process, memory wire");
  for (auto* c : {client, self}) {
    c->add_option("--sizes", copts.sizes, "message sizes in bytes")->delimiter(',');
    c->add_option("--count", copts.count, "RPCs per size")->capture_default_str();
    c->add_option("--seed", copts.seed, "payload seed");
    c->add_option("--timeout-ms", copts.timeout_ms, "per-RPC timeout");
    c->add_option("--concurrency", copts.concurrency, "RPCs outstanding at once")
        ->check(CLI::Range(size_t{1}, size_t{10000}))
        ->capture_default_str();
    c->add_flag("--stats", stats, "print socket counters at the end");
  }
  CLI11_PARSE(app, argc, argv);

  if (gen->parsed()) {
    auto k = new_key_hex();
    if (!k.ok()) return fail("genkey", k.error());
    std::fputs(k->c_str(), stdout);
    return 0;
  }
  if ((server->parsed() || client->parsed()) && smtd.empty() == secret_file.empty()) {
    std::fprintf(stderr, "smt-echo: give exactly one of --smtd and --secret-file\n");
    return 2;
  }
  if (server->parsed() && smtd.empty() && peers.empty()) {
    std::fprintf(stderr, "smt-echo: --peer is required with --secret-file\n");
    return 2;
  }
  if (server->parsed()) {
    return cmd_server(port, peers, peer_port, secret_file, smtd, raw_v4, raw_v6, serial, max_rpcs,
                      count_file);
  }
  if (client->parsed()) {
    return cmd_client(peer, port, local_port, secret_file, smtd, raw_v4, raw_v6, serial, copts,
                      stats);
  }
  return cmd_selftest(copts, stats);
}
