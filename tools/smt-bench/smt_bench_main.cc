// smt-bench: RPC latency and throughput of SMT, TCP and TLS 1.3 over TCP,
// with the same application protocol on each (bench_protocol.h).
//
//   smt-bench server --stack tls --port 5001 --cert b.crt --key b.key [--cpu 1] [--wait poll]
//   smt-bench client --stack tls --host 10.0.0.2 --port 5001 --ca ca.crt --tls-name hostb
//                    --size 64 --count 10000 [--concurrency 10 --connections 1] [--cpu 0]
//   smt-bench server --stack smt --smtd /run/smt/b.sock --port 5001 [--datapath raw]
//   smt-bench client --stack smt --smtd /run/smt/a.sock --host 10.0.0.2 --port 5001
//   smt-bench client --stack tcp --host 10.0.0.2 --size 67108864 --reply-size 64 --count 20
//
// Connection set-up instead of RPCs (handshake_bench.h), mutual TLS with resumption:
//   smt-bench server --stack tls --cert b.crt --key b.key --tickets --client-ca ca.crt
//   smt-bench client --stack tls --host 10.0.0.2 --ca ca.crt --tls-name hostb
//                    --client-cert a.crt --client-key a.key --handshakes 200 [--resume]
//
// The client prints one JSON line per run (bench_run.h: run_json). Both
// sides' CPU time comes from getrusage: the server's through a control RPC
// before and after the measured part.
#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <map>

#include "bench_report.h"
#include "bench_run.h"
#include "handshake_bench.h"
#include "smt_stack.h"
#include "stream_stack.h"

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

void add_common(CLI::App* app, smt::bench::CommonOptions& c) {
  using smt::bench::Stack;
  using smt::bench::Wait;
  static const std::map<std::string, Stack> stacks{
      {"smt", Stack::kSmt}, {"tcp", Stack::kTcp}, {"tls", Stack::kTls}};
  static const std::map<std::string, Wait> waits{{"block", Wait::kBlock}, {"poll", Wait::kPoll}};
  app->add_option("--stack", c.stack, "smt, tcp or tls")
      ->required()
      ->transform(CLI::CheckedTransformer(stacks));
  app->add_option("--wait", c.wait, "block: sleeping waits; poll: busy-poll non-blocking calls")
      ->transform(CLI::CheckedTransformer(waits));
  app->add_option("--cpu", c.cpu, "pin every thread of this process to this vCPU");
  app->add_option("--port", c.port, "TCP port, or SMT port")->capture_default_str();
  app->add_option("--smtd", c.smtd, "smt: smtd's unix socket");
  app->add_option("--datapath", c.datapath, "smt: auto (AF_XDP when smtd offers it) or raw")
      ->check(CLI::IsMember({"auto", "raw"}))
      ->capture_default_str();
  app->add_option("--timeout-ms", c.timeout_ms, "fail after this long without progress")
      ->capture_default_str();
}

int fail(const char* what, const smt::Error& e) {
  std::fprintf(stderr, "smt-bench %s: %s\n", what, e.message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace smt::bench;
  CLI::App app{"smt-bench: SMT against TCP and TLS 1.3 over TCP"};
  app.require_subcommand(1);

  ServerOptions so;
  auto* server = app.add_subcommand("server", "answer requests until SIGINT/SIGTERM");
  add_common(server, so.common);
  server->add_option("--threads", so.threads, "worker threads (0: one per allowed vCPU)");
  server->add_option("--cert", so.cert, "tls: server certificate (PEM)");
  server->add_option("--key", so.key, "tls: server key (PEM)");
  server->add_flag("--tickets", so.tickets,
                   "tls: issue a session ticket per handshake (for client --resume)");
  server->add_option("--client-ca", so.client_ca,
                     "tls: require a client certificate signed by this CA (PEM)");

  ClientOptions co;
  auto* client = app.add_subcommand("client", "run one measurement, print one JSON line");
  add_common(client, co.common);
  client->add_option("--host", co.host, "server IPv4 address")->required();
  client->add_option("--size", co.size, "request size, bytes (>= 8)")
      ->check(CLI::Range(uint32_t(kRequestHeaderLen), kMaxMessage))
      ->capture_default_str();
  client->add_option("--reply-size", co.reply_size, "response size, bytes (default: --size)")
      ->check(CLI::Range(1u, kMaxMessage));
  client->add_option("--count", co.count, "measured RPCs")->capture_default_str();
  client->add_option("--warmup", co.warmup, "RPCs before measuring")->capture_default_str();
  client->add_option("--concurrency", co.concurrency, "outstanding RPCs")
      ->check(CLI::Range(1u, 4096u))
      ->capture_default_str();
  client->add_option("--connections", co.connections,
                     "tcp/tls: connections the outstanding RPCs spread over, pipelined in order "
                     "on each (0: one per outstanding RPC)")
      ->check(CLI::Range(0u, 4096u));
  client->add_flag("--background", co.background,
                   "stream 1 MiB requests alongside (TCP/TLS: on connection 0; SMT: same socket)");
  client->add_option("--background-rate", co.background_mb_per_s,
                     "hold the background stream to this many MB/s (10^6 B/s; 0: as fast as it "
                     "goes)")
      ->check(CLI::Range(0.0, 1e6));
  client->add_option("--background-size", co.background_size, "background message size")
      ->check(CLI::Range(uint32_t(kRequestHeaderLen), kMaxMessage))
      ->capture_default_str();
  client->add_option("--ca", co.ca, "tls: CA certificate that signed the server's");
  client->add_option("--tls-name", co.tls_name, "tls: name the server's certificate carries");
  client->add_option("--client-cert", co.client_cert, "tls: client certificate (mutual TLS)");
  client->add_option("--client-key", co.client_key, "tls: client key (mutual TLS)");
  const char* handshakes_help =
      "tcp/tls: time this many rounds of connect + handshake + one RPC instead of RPCs";
  client->add_option("--handshakes", co.handshakes, handshakes_help)
      ->check(CLI::Range(1u, 1000000u));
  client->add_flag("--resume", co.resume,
                   "tls, with --handshakes: resume each round with the previous ticket");
  client->add_option("--label", co.label, "copied into the JSON line");
  CLI11_PARSE(app, argc, argv);

  if (server->parsed()) {
    if (!pin_to_cpu(so.common.cpu)) return fail("server", smt::make_error(errno, "--cpu"));
    if (so.common.stack == Stack::kTls && (so.cert.empty() || so.key.empty())) {
      return fail("server", smt::make_error(EINVAL, "tls needs --cert and --key"));
    }
    if (so.common.stack == Stack::kSmt && so.common.smtd.empty()) {
      return fail("server", smt::make_error(EINVAL, "smt needs --smtd"));
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    auto st = so.common.stack == Stack::kSmt ? run_smt_server(so, g_stop)
                                             : run_stream_server(so, g_stop);
    if (!st.ok()) return fail("server", st.error());
    return 0;
  }

  if (!pin_to_cpu(co.common.cpu)) return fail("client", smt::make_error(errno, "--cpu"));
  if (co.common.stack == Stack::kTls && (co.ca.empty() || co.tls_name.empty())) {
    return fail("client", smt::make_error(EINVAL, "tls needs --ca and --tls-name"));
  }
  if (co.common.stack == Stack::kSmt && co.common.smtd.empty()) {
    return fail("client", smt::make_error(EINVAL, "smt needs --smtd"));
  }
  if (co.client_cert.empty() != co.client_key.empty()) {
    return fail("client", smt::make_error(EINVAL, "--client-cert and --client-key go together"));
  }
  if (co.resume && co.handshakes == 0) {
    return fail("client", smt::make_error(EINVAL, "--resume needs --handshakes"));
  }
  std::signal(SIGPIPE, SIG_IGN);
  if (co.handshakes > 0) {
    if (co.common.stack == Stack::kSmt) {
      const char* why = "--handshakes needs --stack tcp or tls (smtd: tools/smtd-bench)";
      return fail("client", smt::make_error(EINVAL, why));
    }
    auto h = run_handshake_client(co);
    if (!h.ok()) return fail("client", h.error());
    std::printf("%s\n", handshake_json(co, *h).c_str());
    return 0;
  }
  auto r = co.common.stack == Stack::kSmt ? run_smt_client(co) : run_stream_client(co);
  if (!r.ok()) return fail("client", r.error());
  std::printf("%s\n", run_json(co, *r).c_str());
  return r->failures == 0 ? 0 : 1;
}
