// smtd: SMT's handshake daemon. See docs/smtd.md.
//
//   smtd --config /etc/smt/smtd.conf [--state-dir DIR] [--socket PATH] [--foreground]
//   smtd --socket PATH --dump-sessions --json
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "smtd/daemon.h"
#include "smtd/smtd_client.h"
#include "smtd/smtd_log.h"

int main(int argc, char** argv) {
  using namespace smt::smtd;
  CLI::App app{"smtd: TLS 1.3 handshakes, session set-up and port leases for SMT"};
  DaemonOptions opts;
  bool foreground = false, dump = false, json = false, verbose = false;
  app.add_option("--config", opts.config_path, "configuration file (docs/smtd.md)");
  app.add_option("--state-dir", opts.state_dir, "pin root of this instance's maps (on bpffs)")
      ->capture_default_str();
  app.add_option("--socket", opts.socket_path, "unix socket for local applications")
      ->capture_default_str();
  app.add_option("--keylog", opts.keylog_path,
                 "DEBUG ONLY: append every session secret to this file");
  app.add_flag("--foreground", foreground,
               "stay in the foreground, log to stderr (smtd never forks; for systemd units)");
  app.add_flag("--close-sessions-on-exit", opts.close_sessions_on_exit,
               "on SIGTERM close every session instead of leaving them for re-adoption");
  app.add_flag("--dump-sessions", dump,
               "ask the running smtd at --socket for its sessions and print them");
  app.add_flag("--json", json, "with --dump-sessions: print JSON (the only format for now)");
  app.add_flag("-v,--verbose", verbose, "log every set-up message and connection");
  CLI11_PARSE(app, argc, argv);
  (void)foreground;  // smtd always runs in the foreground: systemd's Type=notify supervises it

  if (dump) {
    auto client = SmtdClient::connect(opts.socket_path);
    if (!client) {
      std::fprintf(stderr, "smtd: %s\n", client.error().message.c_str());
      return 1;
    }
    auto text = client->list_json();
    if (!text) {
      std::fprintf(stderr, "smtd: %s\n", text.error().message.c_str());
      return 1;
    }
    (void)json;
    std::fputs(text->c_str(), stdout);
    return 0;
  }
  if (opts.config_path.empty()) {
    std::fprintf(stderr, "smtd: --config FILE is required (see --help)\n");
    return 2;
  }
  if (verbose) set_log_level(LogLevel::kDebug);
  auto d = Daemon::create(opts);
  if (!d) {
    log_error(d.error().message);
    return 1;
  }
  return (*d)->run();
}
