// Test scaffolding for smtd: temporary directories, certificates made with
// tools/smt-certs, network namespaces joined by a veth pair, private pin roots,
// and smtd processes. Everything registers its undo in a Cleanup stack that
// runs last-in-first-out, also when a test fails half-way.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace smt::smtd::test {

/// Undo actions, run in reverse order of registration.
class Cleanup {
 public:
  Cleanup() = default;
  Cleanup(const Cleanup&) = delete;
  Cleanup& operator=(const Cleanup&) = delete;
  ~Cleanup() { run(); }
  void push(std::function<void()> fn) { fns_.push_back(std::move(fn)); }
  void run() {
    while (!fns_.empty()) {
      auto fn = std::move(fns_.back());
      fns_.pop_back();
      fn();
    }
  }

 private:
  std::vector<std::function<void()>> fns_;
};

/// 8 random hex digits, for names that must not collide between runs.
std::string random_suffix();
/// Runs a shell command; returns its exit status, stdout+stderr in *out.
int sh(const std::string& cmd, std::string* out = nullptr);
/// A fresh directory under /tmp, removed by `cleanup`.
std::string make_temp_dir(Cleanup* cleanup, const std::string& tag);
/// Path of tools/smt-certs in the source tree.
std::string smt_certs_tool();
/// True if bpffs is (or could be) mounted at /sys/fs/bpf and we are root.
bool have_bpffs();
/// A private pin root under /sys/fs/bpf, removed by `cleanup`.
std::string make_pin_root(Cleanup* cleanup, const std::string& tag);
bool have_netns();

/// Two namespaces A and B joined by a veth pair: A has 10.77.0.1/24, B 10.77.0.2/24.
struct NetnsPair {
  std::string a, b;
  std::string addr_a = "10.77.0.1", addr_b = "10.77.0.2";
  std::string dev_a, dev_b;  ///< the veth ends in A and B
};
/// Creates the pair (names with a random suffix); `cleanup` deletes it.
bool make_netns_pair(Cleanup* cleanup, NetnsPair* out, std::string* err);

/// A running smtd.
class SmtdProcess {
 public:
  struct Options {
    std::string config;
    std::string state_dir;
    std::string socket;
    std::string netns;  ///< run inside this namespace (nsenter --net); "" = here
    std::string log;    ///< stderr goes here
    std::vector<std::string> extra_args;
  };
  SmtdProcess() = default;
  SmtdProcess(const SmtdProcess&) = delete;
  SmtdProcess& operator=(const SmtdProcess&) = delete;
  ~SmtdProcess() { stop(); }

  /// Starts smtd and waits (up to 10 s) until its socket accepts; false (with
  /// its log in *err) if it exits or never gets ready.
  bool start(const Options& opts, std::string* err);
  /// SIGTERM, then waits; returns the exit status (-1 if it was killed).
  int stop();
  /// Sends a signal.
  void signal(int sig);
  /// Waits for smtd to exit on its own (e.g. a refused start); its exit status.
  int wait_exit(int timeout_ms);
  std::string log() const;
  /// Waits until the log contains `needle` (up to timeout_ms).
  bool wait_log(const std::string& needle, int timeout_ms) const;
  pid_t pid() const { return pid_; }
  const Options& options() const { return opts_; }

 private:
  Options opts_;
  pid_t pid_ = -1;
};

/// Path of the smtd binary under test.
std::string smtd_binary();

}  // namespace smt::smtd::test
