#include "smtd_harness.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace smt::smtd::test {

std::string random_suffix() {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", rd());
  return buf;
}

int sh(const std::string& cmd, std::string* out) {
  std::string full = cmd + " 2>&1";
  FILE* f = ::popen(full.c_str(), "r");
  if (f == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    if (out != nullptr) out->append(buf, n);
  }
  int st = ::pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string make_temp_dir(Cleanup* cleanup, const std::string& tag) {
  std::string tmpl = "/tmp/smtd-test-" + tag + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) return "";
  std::string dir(buf.data());
  cleanup->push([dir] { sh("rm -rf '" + dir + "'"); });
  return dir;
}

std::string smt_certs_tool() {
  const char* src = std::getenv("SMT_SOURCE_DIR");
  return std::string(src != nullptr ? src : SMT_SOURCE_DIR_FALLBACK) + "/tools/smt-certs";
}

std::string smtd_binary() { return SMTD_BINARY; }

bool have_bpffs() {
  if (::geteuid() != 0) return false;
  struct statfs s;
  if (::statfs("/sys/fs/bpf", &s) == 0 && static_cast<uint32_t>(s.f_type) == BPF_FS_MAGIC) {
    return true;
  }
  ::mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr);
  return ::statfs("/sys/fs/bpf", &s) == 0 && static_cast<uint32_t>(s.f_type) == BPF_FS_MAGIC;
}

std::string make_pin_root(Cleanup* cleanup, const std::string& tag) {
  std::string root =
      "/sys/fs/bpf/smtd-test-" + std::to_string(::getpid()) + "-" + tag + "-" + random_suffix();
  cleanup->push([root] { sh("rm -rf '" + root + "'"); });
  return root;
}

bool have_netns() {
  return ::geteuid() == 0 && sh("command -v ip >/dev/null && command -v nsenter >/dev/null") == 0;
}

bool make_netns_pair(Cleanup* cleanup, NetnsPair* out, std::string* err) {
  std::string sfx = random_suffix();
  out->a = "smtdA-" + sfx;
  out->b = "smtdB-" + sfx;
  std::string va = "sva" + sfx, vb = "svb" + sfx;  // <= 15 characters
  out->dev_a = va;
  out->dev_b = vb;
  auto run = [&](const std::string& cmd) {
    std::string o;
    if (sh(cmd, &o) != 0) {
      *err = cmd + ": " + o;
      return false;
    }
    return true;
  };
  if (!run("ip netns add " + out->a)) return false;
  cleanup->push([n = out->a] { sh("ip netns del " + n); });
  if (!run("ip netns add " + out->b)) return false;
  cleanup->push([n = out->b] { sh("ip netns del " + n); });
  if (!run("ip link add " + va + " type veth peer name " + vb)) return false;
  cleanup->push([va] { sh("ip link del " + va + " 2>/dev/null"); });
  return run("ip link set " + va + " netns " + out->a) &&
         run("ip link set " + vb + " netns " + out->b) &&
         run("ip -n " + out->a + " addr add " + out->addr_a + "/24 dev " + va) &&
         run("ip -n " + out->b + " addr add " + out->addr_b + "/24 dev " + vb) &&
         run("ip -n " + out->a + " link set " + va + " up") &&
         run("ip -n " + out->b + " link set " + vb + " up") &&
         run("ip -n " + out->a + " link set lo up") && run("ip -n " + out->b + " link set lo up");
}

bool SmtdProcess::start(const Options& opts, std::string* err) {
  opts_ = opts;
  std::vector<std::string> args;
  if (!opts.netns.empty()) {
    args = {"/usr/bin/nsenter", "--net=/run/netns/" + opts.netns, "--"};
  }
  args.push_back(smtd_binary());
  args.insert(args.end(), {"--foreground", "--config", opts.config, "--state-dir", opts.state_dir,
                           "--socket", opts.socket});
  args.insert(args.end(), opts.extra_args.begin(), opts.extra_args.end());
  pid_ = ::fork();
  if (pid_ < 0) {
    *err = "fork failed";
    return false;
  }
  if (pid_ == 0) {
    int fd = ::open(opts.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) ::dup2(fd, STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      *err = "smtd exited during start:\n" + log();
      return false;
    }
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::snprintf(sun.sun_path, sizeof sun.sun_path, "%s", opts.socket.c_str());
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0;
    ::close(fd);
    if (ok && log().find("ready:") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  *err = "smtd not ready after 10 s:\n" + log();
  stop();
  return false;
}

void SmtdProcess::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int SmtdProcess::wait_exit(int timeout_ms) {
  for (int waited = 0; pid_ > 0 && waited <= timeout_ms; waited += 20) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -2;
}

int SmtdProcess::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int rc = wait_exit(5000);
  if (rc == -2) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    return -1;
  }
  return rc;
}

std::string SmtdProcess::log() const {
  std::ifstream in(opts_.log);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool SmtdProcess::wait_log(const std::string& needle, int timeout_ms) const {
  for (int waited = 0; waited <= timeout_ms; waited += 20) {
    if (log().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace smt::smtd::test
