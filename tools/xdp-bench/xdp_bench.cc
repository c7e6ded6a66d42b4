// xdp-bench: what SMT's XDP receive program costs per packet, next to an
// XDP_PASS-only program (bpf/xdp_pass_only.bpf.c). Report only; run it through
// tools/xdp-bench/run.sh, which prints the machine and a Markdown table.
//
//   xdp-bench [--seconds S] [--repeat N] [--xsk | --xsk-only] [--json]
//
// Runs in a private network and mount namespace (root needed):
//  1. test-run: bpf_prog_test_run_opts with `repeat` for three frames, each
//     through smt_xdp and through pass-only: a DATA packet of a live session
//     with a wrong tag, the same with the right tag, and a non-SMT UDP frame.
//     ns per packet = the kernel's average over `repeat` runs, median of 5.
//  2. live: a veth pair rx0 (here) <-> tx0 (namespace xbench-tx-<pid>); the
//     program under test on rx0 (native XDP), a sender on the last CPU
//     blasting the frame from tx0 with AF_PACKET sendmmsg (qdisc bypass) for
//     S seconds. Twice: rx0's NAPI threaded and pinned to CPU 0 (receive
//     cost = that thread's CPU time), and NAPI as softirq on the sender's CPU
//     (as in the flood test; receive cost = that CPU's softirq time). Shown:
//     frames the program ran on per second (bpf run stats), the program's own
//     ns per frame (run_time_ns / run_cnt), the receive side's CPU share and
//     CPU ns per frame (the stack's work for passed frames included).
//     smt_xdp's drop_bad_tag rate with the bad-tag frame is figure (a) of
//     issue 5.
//  3. AF_XDP copy-mode limit (only with --xsk, or alone with --xsk-only): an
//     AF_XDP socket on each end of the same veth (copy mode, queue 0), each
//     driven by smt::link::XskLink, the link SMT's datapath uses. A sender
//     thread on the last CPU sends MTU-sized SMT DATA packets from tx0 in
//     batches of 64 as fast as tx_room() allows; xsk_redirect_all.bpf.c on
//     rx0 (native XDP) redirects every SMT frame to rx0's socket, where a
//     receiver thread on CPU 0 takes them with receive() (poll() when idle).
//     Twice: rx0's NAPI as softirq (on the sender's CPU, veth's default) and
//     threaded, pinned to the receiver's CPU. Shown: frames/s sent, seen by
//     the program and received, payload Gbit/s (payload = the SMT packet,
//     MTU - 20 B of IPv4: SMT header + record; Ethernet and IP not counted),
//     CPU of each thread and of the NAPI kthread (also per frame), each
//     CPU's softirq, busy (every task's, tick-sampled: an undercount for a
//     CPU that sleeps between short bursts) and steal time, and every drop
//     counter (veth, the kernel's XDP_STATISTICS). UMEM and rings have
//     XskGeometry's defaults, as smtd creates them. --json prints both runs as
//     one JSON line instead of the tables (tools/bench.sh; keys in run.sh).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/bytes.h"
#include "common/unique_fd.h"
#include "link/xsk_link.h"
#include "link/xsk_socket.h"
#include "smt/wire.h"
#include "smt_xdp.skel.h"
#include "wire/data_header.h"
#include "xdp_pass_only.skel.h"
#include "xsk_redirect_all.skel.h"

namespace {

using smt::UniqueFd;
using Bytes = std::vector<uint8_t>;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kLocal = 0x0a4d0002;   // 10.77.0.2, the receiving host
constexpr uint32_t kRemote = 0x0a4d0001;  // 10.77.0.1, the peer
constexpr uint16_t kLocalPort = 5000, kRemotePort = 40000;
constexpr uint8_t kKey[smt::kCtlKeyLen] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                           0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0, 0x01};
constexpr size_t kBatch = 64;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "xdp-bench: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

void must(const std::string& cmd) {
  if (sh(cmd) != 0) {
    std::fprintf(stderr, "xdp-bench: `%s` failed\n", cmd.c_str());
    std::exit(1);
  }
}

uint16_t ipv4_checksum(const uint8_t* h) {
  uint32_t sum = 0;
  for (size_t i = 0; i < 20; i += 2) sum += smt::load_be16(h + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

/// Ethernet + IPv4 (DF, no options) from the peer to us + payload.
Bytes frame(const uint8_t dst_mac[6], const uint8_t src_mac[6], uint8_t proto,
            const Bytes& payload) {
  Bytes f(14 + 20);
  std::memcpy(f.data(), dst_mac, 6);
  std::memcpy(f.data() + 6, src_mac, 6);
  smt::store_be16(f.data() + 12, 0x0800);
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  smt::store_be16(ip + 2, static_cast<uint16_t>(20 + payload.size()));
  smt::store_be16(ip + 6, 0x4000);
  ip[8] = 64;
  ip[9] = proto;
  smt::store_be32(ip + 12, kRemote);
  smt::store_be32(ip + 16, kLocal);
  smt::store_be16(ip + 10, ipv4_checksum(ip));
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

/// A DATA packet of the live session (a 96-byte record), tagged under `key`.
Bytes data_packet(const uint8_t key[smt::kCtlKeyLen]) {
  smt::DataHeader h;
  h.sport = kRemotePort;
  h.dport = kLocalPort;
  h.message_id = 2;
  h.message_length = 96;
  h.incoming = 96;
  Bytes p(smt::kDataHeaderLen + 96);
  smt::write_data_header(p.data(), h, key);
  for (size_t i = smt::kDataHeaderLen; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i);
  return p;
}

/// A UDP datagram with 96 bytes of payload (checksum 0: none).
Bytes udp_packet() {
  Bytes p(8 + 96);
  smt::store_be16(p.data(), 40000);
  smt::store_be16(p.data() + 2, 9);
  smt::store_be16(p.data() + 4, static_cast<uint16_t>(p.size()));
  return p;
}

struct Kind {
  const char* name;
  Bytes frame;
  uint32_t smt_stat;  ///< the verdict counter smt_xdp must move
};

std::vector<Kind> kinds(const uint8_t dst_mac[6], const uint8_t src_mac[6]) {
  uint8_t wrong[smt::kCtlKeyLen];
  std::memcpy(wrong, kKey, sizeof wrong);
  wrong[0] ^= 0x80;
  return {
      {"DATA, live session, bad tag",
       frame(dst_mac, src_mac, SMT_IPPROTO_DEFAULT, data_packet(wrong)), SMT_XDP_DROP_BAD_TAG},
      {"DATA, live session, good tag",
       frame(dst_mac, src_mac, SMT_IPPROTO_DEFAULT, data_packet(kKey)), SMT_XDP_PASS_STACK},
      {"UDP (not SMT)", frame(dst_mac, src_mac, 17, udp_packet()), SMT_XDP_PASS_NOT_SMT},
  };
}

struct Programs {
  smt_xdp_bpf* smt = nullptr;
  xdp_pass_only_bpf* pass = nullptr;
  ~Programs() {
    if (smt) smt_xdp_bpf__destroy(smt);
    if (pass) xdp_pass_only_bpf__destroy(pass);
  }
  int smt_fd() const { return bpf_program__fd(smt->progs.smt_xdp_rx); }
  int pass_fd() const { return bpf_program__fd(pass->progs.xdp_pass_only); }
};

/// Loads both programs with fresh maps and installs the live session (raw
/// socket path: its good packets pass to the stack).
void load(Programs* p) {
  p->smt = smt_xdp_bpf__open();
  if (p->smt == nullptr) die("smt_xdp_bpf__open");
  p->smt->rodata->smt_ipproto = SMT_IPPROTO_DEFAULT;
  if (smt_xdp_bpf__load(p->smt) != 0) die("loading smt_xdp.bpf.o");
  p->pass = xdp_pass_only_bpf__open_and_load();
  if (p->pass == nullptr) die("loading xdp_pass_only.bpf.o");

  smt_session_key k;
  std::memset(&k, 0, sizeof k);
  k.local_addr[10] = k.local_addr[11] = k.remote_addr[10] = k.remote_addr[11] = 0xff;
  smt::store_be32(k.local_addr + 12, kLocal);
  smt::store_be32(k.remote_addr + 12, kRemote);
  k.local_port = htons(kLocalPort);
  k.remote_port = htons(kRemotePort);
  smt_session_value v;
  std::memset(&v, 0, sizeof v);
  v.serial = 1;
  std::memcpy(v.rx_ctl_key, kKey, sizeof kKey);
  v.owner_id = 1;
  v.version = SMT_VERSION;
  if (bpf_map_update_elem(bpf_map__fd(p->smt->maps.sessions_hash), &k, &v, BPF_ANY) != 0) {
    die("installing the session");
  }
}

/// Entry `key` of a per-CPU array of u64, summed over the CPUs.
uint64_t percpu_sum(int map_fd, uint32_t key) {
  std::vector<uint64_t> v(static_cast<size_t>(std::max(libbpf_num_possible_cpus(), 1)));
  if (bpf_map_lookup_elem(map_fd, &key, v.data()) != 0) die("reading a per-CPU counter");
  uint64_t sum = 0;
  for (uint64_t x : v) sum += x;
  return sum;
}

/// stats_percpu[stat] summed over the CPUs.
uint64_t smt_stat(const Programs& p, uint32_t stat) {
  return percpu_sum(bpf_map__fd(p.smt->maps.stats_percpu), stat);
}

/// Average ns per run of `repeat` runs of prog on `f`, median of 5; also
/// checks the verdict.
double test_run(int prog, const Bytes& f, uint32_t repeat, int ifindex, uint32_t* retval) {
  std::vector<double> ns;
  for (int i = 0; i < 5; ++i) {
    xdp_md ctx;
    std::memset(&ctx, 0, sizeof ctx);
    ctx.data_end = static_cast<uint32_t>(f.size());
    ctx.ingress_ifindex = static_cast<uint32_t>(ifindex);
    bpf_test_run_opts o;
    std::memset(&o, 0, sizeof o);
    o.sz = sizeof o;
    o.data_in = f.data();
    o.data_size_in = static_cast<uint32_t>(f.size());
    o.ctx_in = &ctx;
    o.ctx_size_in = sizeof ctx;
    o.repeat = repeat;
    if (bpf_prog_test_run_opts(prog, &o) != 0) die("bpf_prog_test_run_opts");
    *retval = o.retval;
    ns.push_back(static_cast<double>(o.duration));
  }
  std::sort(ns.begin(), ns.end());
  return ns[ns.size() / 2];
}

const char* verdict(uint32_t r) {
  switch (r) {
    case XDP_PASS:
      return "PASS";
    case XDP_DROP:
      return "DROP";
    default:
      return "other";
  }
}

bool mac_of(const char* ifname, uint8_t out[6]) {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  if (!fd.valid() || ::ioctl(fd.get(), SIOCGIFHWADDR, &ifr) != 0) return false;
  std::memcpy(out, ifr.ifr_hwaddr.sa_data, 6);
  return true;
}

/// utime + stime of a task, in clock ticks.
unsigned long long task_ticks(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  unsigned long long ut = 0, st = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) ut = std::stoull(field);
    if (i == 15) st = std::stoull(field);
  }
  return ut + st;
}

/// One CPU's times from /proc/stat, in clock ticks.
struct CpuTicks {
  unsigned long long busy = 0;  ///< user, nice, system, irq, softirq
  unsigned long long softirq = 0;
  unsigned long long steal = 0;
};

CpuTicks cpu_ticks(int cpu) {
  std::ifstream f("/proc/stat");
  std::string line;
  const std::string name = "cpu" + std::to_string(cpu) + " ";
  while (std::getline(f, line)) {
    if (line.rfind(name, 0) != 0) continue;
    std::istringstream in(line.substr(name.size()));
    unsigned long long v[8] = {};  // user nice system idle iowait irq softirq steal
    for (auto& x : v) in >> x;
    return {v[0] + v[1] + v[2] + v[5] + v[6], v[6], v[7]};
  }
  return {};
}

/// Softirq time of one CPU (/proc/stat), in clock ticks.
unsigned long long softirq_ticks(int cpu) { return cpu_ticks(cpu).softirq; }

/// The pid of the kthread named `prefix...` (threaded NAPI), or 0.
int find_kthread(const std::string& prefix) {
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return 0;
  int found = 0;
  while (dirent* e = ::readdir(d)) {
    const int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/comm");
    std::string comm;
    std::getline(f, comm);
    if (comm.rfind(prefix, 0) == 0) found = std::max(found, pid);  // the newest
  }
  ::closedir(d);
  return found;
}

void pin(int pid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(pid, sizeof set, &set) != 0) die("sched_setaffinity");
}

/// Makes rx0's NAPI threaded and pins its kthread to napi_cpu (returns its
/// pid) or, for napi_cpu < 0, softirq (returns 0). The NAPI instance exists
/// once XDP is attached to rx0.
int rx0_napi(int napi_cpu) {
  if (napi_cpu < 0) {
    must("sh -c 'echo 0 > /sys/class/net/rx0/threaded'");
    return 0;
  }
  must("sh -c 'echo 1 > /sys/class/net/rx0/threaded'");
  int napi = 0;
  for (int i = 0; i < 100 && napi == 0; ++i) {
    napi = find_kthread("napi/rx0-");
    if (napi == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (napi == 0) {
    std::fprintf(stderr, "xdp-bench: no threaded NAPI kthread for rx0\n");
    std::exit(1);
  }
  pin(napi, napi_cpu);
  return napi;
}

struct Live {
  double rx_pps = 0;    ///< frames the program ran on, per second
  double prog_ns = 0;   ///< the program's own time per frame
  double rx_cpu = 0;    ///< receive side's CPU share, %: the NAPI thread's, or softirq
  double tx_pps = 0;    ///< frames the sender got out
  double drop_pps = 0;  ///< smt_xdp drop_bad_tag per second (smt_xdp only)
};

/// One live run: `prog` on rx0, the sender blasting `f` for `seconds`.
Live live_run(const Programs& p, int prog, const Bytes& f, double seconds, int tx_ns_fd,
              int rx_ifindex, int tx_cpu, int napi_cpu) {
  if (bpf_xdp_attach(rx_ifindex, prog, XDP_FLAGS_DRV_MODE, nullptr) != 0) {
    die("attaching to rx0 (native)");
  }
  // napi_cpu >= 0: threaded NAPI for rx0's queue, pinned there; its CPU time
  // is the receive side's cost. Otherwise NAPI runs as softirq on the
  // sender's CPU and the receive side's cost is that CPU's softirq time.
  const int napi = rx0_napi(napi_cpu);
  auto rx_ticks = [&] { return napi ? task_ticks(napi) : softirq_ticks(tx_cpu); };

  // The sender's socket lives in the tx namespace.
  UniqueFd pkt;
  int tx_ifindex = 0;
  std::thread([&] {
    if (::setns(tx_ns_fd, CLONE_NEWNET) != 0) return;
    pkt.reset(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
    tx_ifindex = static_cast<int>(if_nametoindex("tx0"));
  }).join();
  if (!pkt.valid() || tx_ifindex == 0) die("AF_PACKET socket on tx0");
  const int one = 1;
  ::setsockopt(pkt.get(), SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread sender([&] {
    pin(0, tx_cpu);
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = tx_ifindex;
    to.sll_halen = 6;
    std::memcpy(to.sll_addr, f.data(), 6);
    std::vector<iovec> iov(kBatch);
    std::vector<mmsghdr> msgs(kBatch);
    for (size_t i = 0; i < kBatch; ++i) {
      iov[i] = {const_cast<uint8_t*>(f.data()), f.size()};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_name = &to;
      msgs[i].msg_hdr.msg_namelen = sizeof to;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    uint64_t n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const int r = ::sendmmsg(pkt.get(), msgs.data(), kBatch, 0);
      if (r > 0) n += static_cast<uint64_t>(r);
      sent.store(n, std::memory_order_relaxed);
    }
  });

  // Warm up, then measure.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  bpf_prog_info info0{}, info1{};
  uint32_t len = sizeof info0;
  if (bpf_obj_get_info_by_fd(prog, &info0, &len) != 0) die("bpf_obj_get_info_by_fd");
  const uint64_t drops0 = smt_stat(p, SMT_XDP_DROP_BAD_TAG);
  const uint64_t sent0 = sent.load();
  const unsigned long long ticks0 = rx_ticks();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  len = sizeof info1;
  if (bpf_obj_get_info_by_fd(prog, &info1, &len) != 0) die("bpf_obj_get_info_by_fd");
  const uint64_t drops1 = smt_stat(p, SMT_XDP_DROP_BAD_TAG);
  const uint64_t sent1 = sent.load();
  const unsigned long long ticks1 = rx_ticks();
  const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  stop = true;
  sender.join();
  if (bpf_xdp_detach(rx_ifindex, XDP_FLAGS_DRV_MODE, nullptr) != 0) die("detaching from rx0");

  Live l;
  const double runs = static_cast<double>(info1.run_cnt - info0.run_cnt);
  l.rx_pps = runs / dt;
  l.prog_ns = runs > 0 ? static_cast<double>(info1.run_time_ns - info0.run_time_ns) / runs : 0;
  l.rx_cpu = 100.0 * static_cast<double>(ticks1 - ticks0) /
             static_cast<double>(::sysconf(_SC_CLK_TCK)) / dt;
  l.tx_pps = static_cast<double>(sent1 - sent0) / dt;
  l.drop_pps = static_cast<double>(drops1 - drops0) / dt;
  return l;
}

// ---- 3. AF_XDP copy-mode limit ----

constexpr uint32_t kXskMtu = 1500;
constexpr uint32_t kSmtLen = kXskMtu - 20;  // the payload: MTU less the IPv4 header

smt::link::Addr v4_mapped(uint32_t a) {
  smt::link::Addr x{};
  x[10] = x[11] = 0xff;
  smt::store_be32(x.data() + 12, a);
  return x;
}

/// An MTU-sized DATA packet from the peer to us: a DATA header tagged under
/// kKey and a record's worth of bytes behind it.
Bytes full_data_packet() {
  smt::DataHeader h;
  h.sport = kRemotePort;
  h.dport = kLocalPort;
  h.message_id = 2;
  h.message_length = 1u << 20;
  h.incoming = 1u << 20;
  Bytes p(kSmtLen);
  smt::write_data_header(p.data(), h, kKey);
  for (size_t i = smt::kDataHeaderLen; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i);
  return p;
}

/// Runs f in a thread inside the network namespace ns_fd.
template <typename F>
void in_netns(int ns_fd, F&& f) {
  bool entered = false;
  std::thread([&] {
    if (::setns(ns_fd, CLONE_NEWNET) != 0) return;
    entered = true;
    f();
  }).join();
  if (!entered) die("setns into the tx namespace");
}

/// An interface's drop counters in the calling thread's namespace.
struct IfDrops {
  uint64_t rx = 0, tx = 0;
};

IfDrops if_drops(const char* ifname) {
  ifaddrs* all = nullptr;
  if (::getifaddrs(&all) != 0) die("getifaddrs");
  IfDrops d;
  for (ifaddrs* a = all; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_PACKET || a->ifa_data == nullptr ||
        std::strcmp(a->ifa_name, ifname) != 0) {
      continue;
    }
    const auto* st = static_cast<const rtnl_link_stats*>(a->ifa_data);
    d = {st->rx_dropped, st->tx_dropped};
  }
  ::freeifaddrs(all);
  return d;
}

double thread_cpu_s(std::thread& t) {
  clockid_t id;
  timespec ts{};
  if (::pthread_getcpuclockid(t.native_handle(), &id) != 0 || ::clock_gettime(id, &ts) != 0) {
    die("thread CPU clock");
  }
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// The kernel's XDP_STATISTICS of one socket and XskLink's own counters,
/// from one thread at one moment.
struct XskCounters {
  smt::link::XskLinkStats x;
  smt::link::LinkStats l;
};

XskCounters operator-(const XskCounters& a, const XskCounters& b) {
  XskCounters d = a;
  d.x.tx_kicks -= b.x.tx_kicks;
  d.x.fallback_tx_packets -= b.x.fallback_tx_packets;
  d.x.kernel_rx_dropped -= b.x.kernel_rx_dropped;
  d.x.kernel_rx_ring_full -= b.x.kernel_rx_ring_full;
  d.x.kernel_fill_ring_empty -= b.x.kernel_fill_ring_empty;
  d.x.kernel_rx_invalid_descs -= b.x.kernel_rx_invalid_descs;
  d.x.kernel_tx_invalid_descs -= b.x.kernel_tx_invalid_descs;
  d.l.tx_packets -= b.l.tx_packets;
  d.l.tx_errors -= b.l.tx_errors;
  d.l.rx_packets -= b.l.rx_packets;
  d.l.rx_dropped -= b.l.rx_dropped;
  return d;
}

/// create_xsk_socket, retried for up to a second while the queue is busy: the
/// kernel releases a closed socket's hold on its queue from a work queue, so
/// the previous run's may still be there.
smt::Result<smt::link::XskSocket> create_xsk_retrying(const smt::link::XskSocketConfig& c) {
  for (int i = 0;; ++i) {
    auto s = smt::link::create_xsk_socket(c);
    if (s || s.error().code != EBUSY || i == 100) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

/// One side's loop phase: warm-up, measured interval, stop.
enum Phase : int { kWarmup, kMeasure, kStop };

struct XskResult {
  double seconds = 0;
  bool zerocopy = true;
  uint32_t mtu = 0;
  double sent_fps = 0;                          ///< frames XskLink put in the TX ring, per second
  double seen_fps = 0;                          ///< SMT frames the program on rx0 ran on
  double received_fps = 0;                      ///< frames receive() handed out
  double tx_cpu = 0, rx_cpu = 0, napi_cpu = 0;  ///< % of one CPU
  double softirq_cpu[2] = {};                   ///< % of the receiver's and of the sender's CPU
  double busy_cpu[2] = {};   ///< the same CPUs' busy time, every task's (/proc/stat)
  double steal_cpu[2] = {};  ///< and their steal time (the hypervisor ran something else)
  XskCounters tx, rx;        ///< over the measured interval
  double rx_batch = 0;       ///< frames per receive() that returned any
  uint64_t wrong = 0;        ///< received packets of another length or source, whole run
  uint64_t tx0_tx_dropped = 0, rx0_rx_dropped = 0;

  double payload_gbit_s() const { return received_fps * kSmtLen * 8 / 1e9; }
  /// CPU time per frame of the sender thread (softirq on its time included),
  /// and of the receiver thread plus the NAPI kthread.
  double tx_ns_per_frame() const { return sent_fps > 0 ? tx_cpu * 1e7 / sent_fps : 0; }
  double rx_ns_per_frame() const {
    return received_fps > 0 ? (rx_cpu + napi_cpu) * 1e7 / received_fps : 0;
  }
};

/// One run of phase 3; napi_cpu as in rx0_napi().
XskResult xsk_run(double seconds, int tx_ns_fd, const std::string& tx_ns, int rx_ifindex,
                  int rx_cpu, int tx_cpu, int napi_cpu) {
  namespace sl = smt::link;
  xsk_redirect_all_bpf* prog = xsk_redirect_all_bpf__open();
  if (prog == nullptr) die("xsk_redirect_all_bpf__open");
  prog->rodata->smt_ipproto = SMT_IPPROTO_DEFAULT;
  if (xsk_redirect_all_bpf__load(prog) != 0) die("loading xsk_redirect_all.bpf.o");
  struct ProgGuard {
    xsk_redirect_all_bpf* p;
    ~ProgGuard() { xsk_redirect_all_bpf__destroy(p); }
  } prog_guard{prog};
  const int counts_fd = bpf_map__fd(prog->maps.counts);

  // Receive side: rx0's socket in the program's XSKMAP under queue 0.
  sl::XskSocketConfig rc;
  rc.ifindex = rx_ifindex;
  rc.queue = 0;
  rc.mode = sl::XskBindMode::kCopy;
  rc.xsks_map_fd = bpf_map__fd(prog->maps.xsks);
  auto rsock = create_xsk_retrying(rc);
  if (!rsock) {
    std::fprintf(stderr, "xdp-bench: rx0: %s\n", rsock.error().message.c_str());
    std::exit(1);
  }
  sl::XskLinkConfig rlc;
  rlc.xsk = std::move(rsock).value();
  rlc.mtu = kXskMtu;
  auto rx_link = sl::XskLink::open(std::move(rlc));
  if (!rx_link) {
    std::fprintf(stderr, "xdp-bench: rx0: %s\n", rx_link.error().message.c_str());
    std::exit(1);
  }
  std::unique_ptr<sl::XskLink> rx = std::move(rx_link).value();
  if (bpf_xdp_attach(rx_ifindex, bpf_program__fd(prog->progs.xsk_redirect_all), XDP_FLAGS_DRV_MODE,
                     nullptr) != 0) {
    die("attaching xsk_redirect_all to rx0 (native)");
  }
  const int napi = rx0_napi(napi_cpu);

  // Send side: tx0's socket and link, made in the tx namespace (the link's
  // route and neighbour lookups work in the namespace it was opened in). The
  // neighbour entry for rx0 is permanent, so no packet goes to a fallback.
  uint8_t rx_mac[6];
  if (!mac_of("rx0", rx_mac)) die("rx0's MAC");
  char mac[18];
  std::snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", rx_mac[0], rx_mac[1], rx_mac[2],
                rx_mac[3], rx_mac[4], rx_mac[5]);
  must("ip -n " + tx_ns + " neigh replace 10.77.0.2 lladdr " + mac + " dev tx0 nud permanent");
  const sl::Addr to = v4_mapped(kLocal), from = v4_mapped(kRemote);
  std::unique_ptr<sl::XskLink> tx;
  std::string tx_error;
  in_netns(tx_ns_fd, [&] {
    sl::XskSocketConfig tc;
    tc.ifindex = static_cast<int>(if_nametoindex("tx0"));
    tc.queue = 0;
    tc.mode = sl::XskBindMode::kCopy;
    auto tsock = create_xsk_retrying(tc);
    if (!tsock) {
      tx_error = tsock.error().message;
      return;
    }
    sl::XskLinkConfig tlc;
    tlc.xsk = std::move(tsock).value();
    tlc.mtu = kXskMtu;
    auto l = sl::XskLink::open(std::move(tlc));
    if (!l) {
      tx_error = l.error().message;
      return;
    }
    tx = std::move(l).value();
  });
  if (tx == nullptr) {
    std::fprintf(stderr, "xdp-bench: tx0: %s\n", tx_error.c_str());
    std::exit(1);
  }
  if (!tx->has_next_hop(to)) {
    std::fprintf(stderr, "xdp-bench: tx0 has no next hop for 10.77.0.2 (would use a fallback)\n");
    std::exit(1);
  }

  std::atomic<int> phase{kWarmup};
  std::atomic<uint64_t> sent{0}, received{0}, batches{0}, wrong{0};
  XskCounters tx_at[2], rx_at[2];
  const Bytes pkt = full_data_packet();

  std::thread sender([&] {
    pin(0, tx_cpu);
    std::vector<sl::TxPacket> batch(kBatch);
    for (sl::TxPacket& p : batch) p = {pkt.data(), kSmtLen, to, 0, 0};
    int seen = kWarmup;
    while (seen != kStop) {
      const int now = phase.load(std::memory_order_relaxed);
      if (now != seen) {
        if (seen == kWarmup) tx_at[0] = {tx->xsk_stats(), tx->stats()};
        seen = now;
      }
      const size_t room = std::min(tx->tx_room(), kBatch);
      if (room == 0) {
        tx->receive({});  // kicks the TX ring and takes completions back
        continue;
      }
      tx->send(std::span<const sl::TxPacket>(batch.data(), room));
      sent.store(tx->stats().tx_packets, std::memory_order_relaxed);
    }
    tx_at[1] = {tx->xsk_stats(), tx->stats()};
  });
  std::thread receiver([&] {
    pin(0, rx_cpu);
    std::vector<sl::RxPacket> out(kBatch);
    pollfd pfd{rx->fd(), POLLIN, 0};
    uint64_t n = 0, calls = 0, bad = 0;
    int seen = kWarmup;
    while (seen != kStop) {
      const int now = phase.load(std::memory_order_relaxed);
      if (now != seen) {
        if (seen == kWarmup) rx_at[0] = {rx->xsk_stats(), rx->stats()};
        seen = now;
      }
      const size_t got = rx->receive(out);
      for (size_t i = 0; i < got; ++i) {
        if (out[i].len != kSmtLen || out[i].peer != from) ++bad;
      }
      n += got;
      calls += got > 0;
      received.store(n, std::memory_order_relaxed);
      batches.store(calls, std::memory_order_relaxed);
      wrong.store(bad, std::memory_order_relaxed);
      if (got == 0) ::poll(&pfd, 1, 1);
    }
    rx_at[1] = {rx->xsk_stats(), rx->stats()};
  });

  struct Snap {
    uint64_t sent, received, batches, seen;
    double tx_cpu, rx_cpu;
    unsigned long long napi;
    CpuTicks cpu[2];
    Clock::time_point t;
  };
  auto snap = [&] {
    return Snap{sent.load(),
                received.load(),
                batches.load(),
                percpu_sum(counts_fd, 0),
                thread_cpu_s(sender),
                thread_cpu_s(receiver),
                napi ? task_ticks(napi) : 0,
                {cpu_ticks(rx_cpu), cpu_ticks(tx_cpu)},
                Clock::now()};
  };
  // Warm up, then measure; the drop counters over the same interval.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  IfDrops tx0_before, tx0_after;
  in_netns(tx_ns_fd, [&] { tx0_before = if_drops("tx0"); });
  const IfDrops rx0_before = if_drops("rx0");
  phase = kMeasure;
  const Snap a = snap();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const Snap b = snap();
  phase = kStop;
  const IfDrops rx0_after = if_drops("rx0");
  in_netns(tx_ns_fd, [&] { tx0_after = if_drops("tx0"); });
  sender.join();
  receiver.join();
  rx0_napi(-1);  // back to softirq while the NAPI instance still exists
  if (bpf_xdp_detach(rx_ifindex, XDP_FLAGS_DRV_MODE, nullptr) != 0) die("detaching from rx0");

  XskResult r;
  const double dt = std::chrono::duration<double>(b.t - a.t).count();
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  r.seconds = dt;
  r.zerocopy = rx->xsk_stats().zerocopy || tx->xsk_stats().zerocopy;
  r.mtu = std::min(rx->mtu(), tx->mtu());
  r.sent_fps = static_cast<double>(b.sent - a.sent) / dt;
  r.seen_fps = static_cast<double>(b.seen - a.seen) / dt;
  r.received_fps = static_cast<double>(b.received - a.received) / dt;
  r.rx_batch = b.batches > a.batches ? static_cast<double>(b.received - a.received) /
                                           static_cast<double>(b.batches - a.batches)
                                     : 0;
  r.tx_cpu = 100 * (b.tx_cpu - a.tx_cpu) / dt;
  r.rx_cpu = 100 * (b.rx_cpu - a.rx_cpu) / dt;
  r.napi_cpu = 100 * static_cast<double>(b.napi - a.napi) / tick / dt;
  for (int c = 0; c < 2; ++c) {
    auto pct = [&](unsigned long long t0, unsigned long long t1) {
      return 100 * static_cast<double>(t1 - t0) / tick / dt;
    };
    r.softirq_cpu[c] = pct(a.cpu[c].softirq, b.cpu[c].softirq);
    r.busy_cpu[c] = pct(a.cpu[c].busy, b.cpu[c].busy);
    r.steal_cpu[c] = pct(a.cpu[c].steal, b.cpu[c].steal);
  }
  r.tx = tx_at[1] - tx_at[0];
  r.rx = rx_at[1] - rx_at[0];
  r.wrong = wrong.load();
  r.tx0_tx_dropped = tx0_after.tx - tx0_before.tx;
  r.rx0_rx_dropped = rx0_after.rx - rx0_before.rx;
  return r;
}

const char* const kPlacement[2] = {"softirq (sender's CPU)", "threaded, receiver's CPU"};

void print_xsk_tables(const XskResult (&runs)[2], double seconds, int rx_cpu, int tx_cpu) {
  std::printf(
      "\n### AF_XDP copy-mode limit on a veth, %.0f s each: XskLink sender on CPU %d (tx0), "
      "XskLink receiver on CPU %d (rx0), batches of %zu packets of %u B\n\n",
      seconds, tx_cpu, rx_cpu, kBatch, kSmtLen);
  std::printf(
      "| rx0's NAPI | mode | MTU | sent frames/s | at rx0's XDP frames/s | received frames/s | "
      "payload Gbit/s | sender thread CPU %% | receiver thread CPU %% | NAPI kthread CPU %% | "
      "softirq CPU %d / %d %% | busy CPU %d / %d %% (all tasks, tick-sampled) | steal CPU %d / %d "
      "%% | "
      "sender CPU ns/frame | receiver + NAPI thread CPU ns/frame |\n",
      rx_cpu, tx_cpu, rx_cpu, tx_cpu, rx_cpu, tx_cpu);
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int i = 0; i < 2; ++i) {
    const XskResult& r = runs[i];
    std::printf(
        "| %s | %s | %u | %.0f | %.0f | %.0f | %.2f | %.0f | %.0f | %s | %.0f / %.0f | %.0f / %.0f "
        "| %.0f / %.0f | %.0f | %.0f |\n",
        kPlacement[i], smt::link::xsk_mode_name(r.zerocopy), r.mtu, r.sent_fps, r.seen_fps,
        r.received_fps, r.payload_gbit_s(), r.tx_cpu, r.rx_cpu,
        i == 1 ? std::to_string(static_cast<int>(r.napi_cpu + 0.5)).c_str() : "–", r.softirq_cpu[0],
        r.softirq_cpu[1], r.busy_cpu[0], r.busy_cpu[1], r.steal_cpu[0], r.steal_cpu[1],
        r.tx_ns_per_frame(), r.rx_ns_per_frame());
  }
  std::printf(
      "\n| rx0's NAPI | TX kicks/frame | tx0 tx_dropped | rx0 rx_dropped | rx socket: "
      "rx_dropped | rx_ring_full | fill_ring_empty | invalid descs rx/tx | link rx_dropped | "
      "wrong packets | sender tx_errors / fallback | frames per receive() |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int i = 0; i < 2; ++i) {
    const XskResult& r = runs[i];
    const double frames = static_cast<double>(r.tx.l.tx_packets);
    auto u = [](uint64_t v) { return std::to_string(v); };
    std::printf("| %s | %.3f | %s | %s | %s | %s | %s | %s/%s | %s | %s | %s / %s | %.1f |\n",
                kPlacement[i], frames > 0 ? static_cast<double>(r.tx.x.tx_kicks) / frames : 0.0,
                u(r.tx0_tx_dropped).c_str(), u(r.rx0_rx_dropped).c_str(),
                u(r.rx.x.kernel_rx_dropped).c_str(), u(r.rx.x.kernel_rx_ring_full).c_str(),
                u(r.rx.x.kernel_fill_ring_empty).c_str(), u(r.rx.x.kernel_rx_invalid_descs).c_str(),
                u(r.tx.x.kernel_tx_invalid_descs).c_str(), u(r.rx.l.rx_dropped).c_str(),
                u(r.wrong).c_str(), u(r.tx.l.tx_errors).c_str(),
                u(r.tx.x.fallback_tx_packets).c_str(), r.rx_batch);
  }
  std::fflush(stdout);
}

/// Appends `,"<prefix><key>":<value>` to a JSON object under construction.
class JsonFields {
 public:
  explicit JsonFields(std::string prefix) : prefix_(std::move(prefix)) {}
  void num(const char* key, double v, int decimals) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", decimals, v);
    raw(key, b);
  }
  void count(const char* key, uint64_t v) { raw(key, std::to_string(v)); }
  void str(const char* key, const std::string& v) { raw(key, "\"" + v + "\""); }
  void raw(const char* key, const std::string& v) {
    out_ += (out_.empty() ? "\"" : ",\"") + prefix_ + key + "\":" + v;
  }
  const std::string& text() const { return out_; }

 private:
  std::string prefix_, out_;
};

void add_run(JsonFields* j, const XskResult& r) {
  j->num("xsk_frames_per_s", r.received_fps, 0);
  j->num("xsk_payload_gbit_s", r.payload_gbit_s(), 3);
  j->num("xsk_sent_frames_per_s", r.sent_fps, 0);
  j->num("xsk_seen_frames_per_s", r.seen_fps, 0);
  j->num("sender_cpu_pct", r.tx_cpu, 1);
  j->num("receiver_cpu_pct", r.rx_cpu, 1);
  j->num("napi_cpu_pct", r.napi_cpu, 1);
  j->num("sender_cpu_ns_per_frame", r.tx_ns_per_frame(), 0);
  j->num("receiver_cpu_ns_per_frame", r.rx_ns_per_frame(), 0);
  char soft[64];
  std::snprintf(soft, sizeof soft, "[%.1f,%.1f]", r.softirq_cpu[0], r.softirq_cpu[1]);
  j->raw("softirq_cpu_pct", soft);
  std::snprintf(soft, sizeof soft, "[%.1f,%.1f]", r.busy_cpu[0], r.busy_cpu[1]);
  j->raw("busy_cpu_pct", soft);
  std::snprintf(soft, sizeof soft, "[%.1f,%.1f]", r.steal_cpu[0], r.steal_cpu[1]);
  j->raw("steal_cpu_pct", soft);
  j->count("veth_drops", r.tx0_tx_dropped + r.rx0_rx_dropped);
  j->count("kernel_rx_dropped", r.rx.x.kernel_rx_dropped);
  j->count("kernel_rx_ring_full", r.rx.x.kernel_rx_ring_full);
  j->count("kernel_fill_ring_empty", r.rx.x.kernel_fill_ring_empty);
}

/// One JSON line: the softirq run's figures unprefixed, the threaded run's
/// prefixed "threaded_".
void print_xsk_json(const XskResult (&runs)[2], double seconds) {
  JsonFields j("");
  add_run(&j, runs[0]);
  j.count("mtu", runs[0].mtu);
  j.count("payload_bytes", kSmtLen);
  j.str("mode", smt::link::xsk_mode_name(runs[0].zerocopy || runs[1].zerocopy));
  j.str("napi", "softirq");
  j.num("seconds", seconds, 2);
  JsonFields t("threaded_");
  add_run(&t, runs[1]);
  std::printf("{%s,%s}\n", j.text().c_str(), t.text().c_str());
  std::fflush(stdout);
}

/// Phases 1 and 2: smt_xdp against pass-only by test-run, then live.
int run_xdp_phases(double seconds, uint32_t repeat, int tx_ns_fd, int rx_ifindex,
                   const uint8_t rx_mac[6], const uint8_t tx_mac[6]) {
  Programs progs;
  load(&progs);
  const std::vector<Kind> ks = kinds(rx_mac, tx_mac);

  // 1. test-run.
  std::printf("### bpf_prog_test_run_opts, repeat %u, median of 5 (ns per packet)\n\n", repeat);
  std::printf("| frame | bytes | smt_xdp | verdict | pass-only | smt_xdp − pass-only |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (const Kind& k : ks) {
    const uint64_t before = smt_stat(progs, k.smt_stat);
    uint32_t rs = 0, rp = 0;
    const double smt_ns = test_run(progs.smt_fd(), k.frame, repeat, rx_ifindex, &rs);
    const double pass_ns = test_run(progs.pass_fd(), k.frame, repeat, rx_ifindex, &rp);
    if (smt_stat(progs, k.smt_stat) - before != 5ull * repeat) {
      std::fprintf(stderr, "xdp-bench: %s did not take smt_xdp's expected path\n", k.name);
      return 1;
    }
    std::printf("| %s | %zu | %.1f | %s | %.1f | %.1f |\n", k.name, k.frame.size(), smt_ns,
                verdict(rs), pass_ns, smt_ns - pass_ns);
  }

  // 2. live on the veth (run stats on only now: they cost every run time).
  UniqueFd stats(bpf_enable_stats(BPF_STATS_RUN_TIME));
  if (!stats.valid()) die("bpf_enable_stats");
  const int ncpu = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  const int tx_cpu = ncpu - 1;
  for (const bool threaded : {true, false}) {
    if (threaded) {
      std::printf(
          "\n### live on a veth, %.0f s each: sender on CPU %d, rx0's NAPI threaded on "
          "CPU 0\n\n",
          seconds, tx_cpu);
    } else {
      std::printf(
          "\n### live on a veth, %.0f s each: sender and rx0's NAPI (softirq) both on "
          "CPU %d\n\n",
          seconds, tx_cpu);
    }
    std::printf(
        "| frame | program | sent pps | received pps | program ns/frame | %s | receive "
        "CPU ns/frame | drop_bad_tag pps |\n",
        threaded ? "NAPI thread CPU %" : "softirq CPU %");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    for (const Kind& k : ks) {
      for (int which = 0; which < 2; ++which) {
        const int fd = which == 0 ? progs.smt_fd() : progs.pass_fd();
        const Live l =
            live_run(progs, fd, k.frame, seconds, tx_ns_fd, rx_ifindex, tx_cpu, threaded ? 0 : -1);
        std::printf("| %s | %s | %.0f | %.0f | %.1f | %.0f | %.0f | %s |\n", k.name,
                    which == 0 ? "smt_xdp" : "pass-only", l.tx_pps, l.rx_pps, l.prog_ns, l.rx_cpu,
                    l.rx_pps > 0 ? l.rx_cpu / 100.0 * 1e9 / l.rx_pps : 0.0,
                    which == 0 ? std::to_string(static_cast<long long>(l.drop_pps)).c_str() : "–");
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  uint32_t repeat = 1000000;
  bool xdp_phases = true, xsk_phase = false, json = false, usage = false;
  for (int i = 1; i < argc && !usage; ++i) {
    const std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (a == "--repeat" && i + 1 < argc) {
      repeat = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    } else if (a == "--xsk") {
      xsk_phase = true;
    } else if (a == "--xsk-only") {
      xsk_phase = true;
      xdp_phases = false;
    } else if (a == "--json") {
      json = true;
    } else {
      usage = true;
    }
  }
  if (usage || seconds <= 0 || (json && !xsk_phase)) {
    std::fprintf(stderr,
                 "usage: xdp-bench [--seconds S] [--repeat N] [--xsk | --xsk-only] [--json]\n"
                 "  --xsk: phase 3 (AF_XDP copy-mode limit) after phases 1 and 2;\n"
                 "  --xsk-only: phase 3 alone; --json: phase 3 as one JSON line\n");
    return 2;
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "xdp-bench: must run as root\n");
    return 1;
  }
  // Private network and mount namespaces: rx0 and this process's sysfs view
  // (for rx0's `threaded` knob) go away with the process.
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) die("unshare");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    die("mount --make-rprivate /");
  if (::mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0) die("mounting sysfs");
  const std::string tx_ns = "xbench-tx-" + std::to_string(::getpid());
  must("ip netns add " + tx_ns);
  struct NsGuard {
    std::string name;
    ~NsGuard() { sh("ip netns del " + name); }
  } guard{tx_ns};
  must("ip link set lo up");
  must("ip link add rx0 type veth peer name tx0 netns " + tx_ns);
  must("ip addr add 10.77.0.2/24 dev rx0");
  must("ip link set rx0 up");
  must("ip -n " + tx_ns + " addr add 10.77.0.1/24 dev tx0");
  must("ip -n " + tx_ns + " link set tx0 up");
  UniqueFd tx_ns_fd(::open(("/run/netns/" + tx_ns).c_str(), O_RDONLY | O_CLOEXEC));
  if (!tx_ns_fd.valid()) die("opening the tx namespace");
  const int rx_ifindex = static_cast<int>(if_nametoindex("rx0"));
  uint8_t rx_mac[6];
  if (rx_ifindex == 0 || !mac_of("rx0", rx_mac)) die("rx0");
  const uint8_t tx_mac[6] = {0x02, 0, 0, 0, 0, 0x01};

  libbpf_set_print(nullptr);
  if (xdp_phases &&
      run_xdp_phases(seconds, repeat, tx_ns_fd.get(), rx_ifindex, rx_mac, tx_mac) != 0) {
    return 1;
  }
  if (xsk_phase) {
    const int ncpu = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
    const int rx_cpu = 0, tx_cpu = ncpu - 1;
    XskResult runs[2];
    runs[0] = xsk_run(seconds, tx_ns_fd.get(), tx_ns, rx_ifindex, rx_cpu, tx_cpu, -1);
    runs[1] = xsk_run(seconds, tx_ns_fd.get(), tx_ns, rx_ifindex, rx_cpu, tx_cpu, rx_cpu);
    if (json) {
      print_xsk_json(runs, seconds);
    } else {
      print_xsk_tables(runs, seconds, rx_cpu, tx_cpu);
    }
  }
  return 0;
}
