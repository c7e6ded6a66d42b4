#include "support/netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "support/test_support.h"

namespace smt::test {

namespace {

std::string random_suffix() {
  std::random_device rd;
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(digits[rd() % 16]);
  return s;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q.push_back(c);
    }
  }
  return q + "'";
}

}  // namespace

bool netns_available() {
  if (geteuid() != 0) return false;
  return run_command("command -v ip >/dev/null && command -v nsenter >/dev/null", nullptr) == 0;
}

void CleanupStack::run() {
  while (!undo_.empty()) {
    auto f = std::move(undo_.back());
    undo_.pop_back();
    f();
  }
}

Status run_checked(const std::string& cmd) {
  std::string out;
  const int rc = run_command(cmd + " 2>&1", &out);
  if (rc != 0) {
    return make_error(ECHILD, "`" + cmd + "` exited " + std::to_string(rc) + ": " + out);
  }
  return {};
}

Status run_in_netns(const std::string& ns, const std::function<void()>& fn) {
  UniqueFd nsfd(open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
  if (!nsfd.valid()) return make_error(errno, "open /run/netns/" + ns + ": " + strerror(errno));
  Status st;
  std::thread t([&] {
    if (setns(nsfd.get(), CLONE_NEWNET) != 0) {
      st = make_error(errno, "setns " + ns + ": " + strerror(errno));
      return;
    }
    fn();
  });
  t.join();
  return st;
}

int run_in_netns_cmd(const std::string& ns, const std::string& cmd, std::string* out) {
  return run_command("nsenter --net=/run/netns/" + ns + " sh -c " + shell_quote(cmd) + " 2>&1",
                     out);
}

Result<std::unique_ptr<Netns>> Netns::create(const std::string& prefix) {
  const std::string name = prefix + "-" + random_suffix();
  if (Status s = run_checked("ip netns add " + name); !s) return s.error();
  return std::unique_ptr<Netns>(new Netns(name));
}

Netns::~Netns() { run_command("ip netns del " + name_ + " 2>/dev/null", nullptr); }

std::array<uint8_t, 16> Topology::addr(const char* text) {
  std::array<uint8_t, 16> a{};
  in_addr v4;
  if (inet_pton(AF_INET, text, &v4) == 1) {
    a[10] = 0xff;
    a[11] = 0xff;
    std::memcpy(a.data() + 12, &v4, 4);
  } else if (inet_pton(AF_INET6, text, a.data()) != 1) {
    ADD_FAILURE() << "bad address " << text;
  }
  return a;
}

Result<std::unique_ptr<Topology>> Topology::create(const TopologyOptions& opts) {
  std::unique_ptr<Topology> t(new Topology());
  if (Status s = t->build(opts); !s) return s.error();
  return t;
}

Topology::~Topology() {
  cleanup_.run();
  // Deleting a namespace deletes the veth ends inside it.
  b_.reset();
  w_.reset();
  a_.reset();
}

Status Topology::build(const TopologyOptions& opts) {
  for (auto [slot, prefix] : {std::pair{&a_, "smt-a"}, {&w_, "smt-w"}, {&b_, "smt-b"}}) {
    auto ns = Netns::create(prefix);
    if (!ns.ok()) return ns.error();
    *slot = std::move(ns).value();
  }
  const std::string A = a(), W = w(), B = b();
  const std::string link_opts = " mtu " + std::to_string(opts.mtu) + " numtxqueues " +
                                std::to_string(opts.queues) + " numrxqueues " +
                                std::to_string(opts.queues);
  auto in = [](const std::string& ns, const std::string& cmd) {
    return "nsenter --net=/run/netns/" + ns + " " + cmd;
  };
  const std::vector<std::string> cmds = {
      // Addresses are usable at once: no duplicate address detection anywhere.
      in(A, "sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0"),
      in(W, "sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0"),
      in(B, "sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0"),
      in(W, "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1"),
      "ip -n " + A + " link add " + kDevA + link_opts + " type veth peer name " + kDevWA +
          link_opts + " netns " + W,
      "ip -n " + W + " link add " + kDevWB + link_opts + " type veth peer name " + kDevB +
          link_opts + " netns " + B,
      "ip -n " + A + " addr add 10.201.1.1/24 dev a0",
      "ip -n " + A + " addr add fd53:1::1/64 dev a0 nodad",
      "ip -n " + W + " addr add 10.201.1.2/24 dev wa",
      "ip -n " + W + " addr add fd53:1::2/64 dev wa nodad",
      "ip -n " + W + " addr add 10.201.2.2/24 dev wb",
      "ip -n " + W + " addr add fd53:2::2/64 dev wb nodad",
      "ip -n " + B + " addr add 10.201.2.1/24 dev b0",
      "ip -n " + B + " addr add fd53:2::1/64 dev b0 nodad",
      "ip -n " + A + " link set lo up",
      "ip -n " + W + " link set lo up",
      "ip -n " + B + " link set lo up",
      "ip -n " + A + " link set a0 up",
      "ip -n " + W + " link set wa up",
      "ip -n " + W + " link set wb up",
      "ip -n " + B + " link set b0 up",
      "ip -n " + A + " route add default via 10.201.1.2",
      "ip -n " + A + " -6 route add default via fd53:1::2",
      "ip -n " + B + " route add default via 10.201.2.2",
      "ip -n " + B + " -6 route add default via fd53:2::2",
  };
  for (const auto& c : cmds) {
    if (Status s = run_checked(c); !s) return s;
  }
  return {};
}

Result<std::unique_ptr<IpCapture>> IpCapture::open(const std::string& ns, uint8_t protocol) {
  UniqueFd fd;
  int err = 0;
  Status st = run_in_netns(ns, [&] {
    fd.reset(socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL)));
    if (!fd.valid()) {
      err = errno;
      return;
    }
    const int size = 16 << 20;
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
  });
  if (!st) return st.error();
  if (!fd.valid()) return make_error(err, std::string("AF_PACKET socket: ") + strerror(err));
  return std::unique_ptr<IpCapture>(new IpCapture(std::move(fd), protocol));
}

const std::vector<CapturedIp>& IpCapture::collect(size_t count, int quiet_ms) {
  std::vector<uint8_t> buf(65536);
  for (;;) {
    for (;;) {
      sockaddr_ll from{};
      socklen_t len = sizeof from;
      const ssize_t n = recvfrom(fd_.get(), buf.data(), buf.size(), MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) break;
      // Outgoing copies only: what the namespace sends (W: what it forwards).
      if (from.sll_pkttype == PACKET_OUTGOING) parse(buf.data(), size_t(n), from.sll_ifindex);
    }
    if (packets_.size() >= count) break;
    pollfd p{fd_.get(), POLLIN, 0};
    if (poll(&p, 1, quiet_ms) <= 0) break;
  }
  return packets_;
}

size_t IpCapture::count_type(uint8_t type) const {
  size_t n = 0;
  for (const auto& c : packets_) n += c.payload.size() > 13 && c.payload[13] == type;
  return n;
}

bool IpCapture::payload_contains(std::span<const uint8_t> needle) const {
  for (const auto& c : packets_) {
    if (std::search(c.payload.begin(), c.payload.end(), needle.begin(), needle.end()) !=
        c.payload.end()) {
      return true;
    }
  }
  return false;
}

uint64_t IpCapture::kernel_drops() {
  tpacket_stats st{};
  socklen_t len = sizeof st;
  if (getsockopt(fd_.get(), SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) drops_ += st.tp_drops;
  return drops_;
}

void IpCapture::parse(const uint8_t* p, size_t n, int ifindex) {
  if (n < 1) return;
  CapturedIp c;
  c.ifindex = ifindex;
  size_t off;
  size_t end = n;
  if ((p[0] >> 4) == 4) {
    if (n < 20) return;
    const size_t ihl = size_t{p[0] & 0x0fu} * 4;
    const size_t total = size_t{p[2]} << 8 | p[3];
    if (ihl < 20 || ihl > n || total < ihl || total > n || p[9] != protocol_) return;
    c.family = 4;
    c.tos = p[1];
    c.fragment = ((p[6] << 8 | p[7]) & 0x3fff) != 0;
    c.src[10] = c.src[11] = c.dst[10] = c.dst[11] = 0xff;
    std::memcpy(c.src.data() + 12, p + 12, 4);
    std::memcpy(c.dst.data() + 12, p + 16, 4);
    off = ihl;
    end = total;
  } else if ((p[0] >> 4) == 6) {
    if (n < 40) return;
    uint8_t next = p[6];
    off = 40;
    if (next == 44) {  // fragment header
      if (n < 48) return;
      next = p[40];
      c.fragment = true;
      off = 48;
    }
    if (next != protocol_) return;
    c.family = 6;
    c.tos = static_cast<uint8_t>((p[0] & 0x0f) << 4 | p[1] >> 4);
    std::memcpy(c.src.data(), p + 8, 16);
    std::memcpy(c.dst.data(), p + 24, 16);
    end = std::min(n, 40 + (size_t{p[4]} << 8 | p[5]));
    if (end < off) return;
  } else {
    return;
  }
  c.payload.assign(p + off, p + end);
  packets_.push_back(std::move(c));
}

namespace {

void put_le16(std::string* o, uint16_t v) {
  o->push_back(static_cast<char>(v));
  o->push_back(static_cast<char>(v >> 8));
}
void put_le32(std::string* o, uint32_t v) {
  for (int i = 0; i < 4; ++i) o->push_back(static_cast<char>(v >> (8 * i)));
}

}  // namespace

Status write_ip_pcap(const std::string& path, std::span<const CapturedIp> pkts, uint8_t protocol,
                     std::span<const uint64_t> time_ns) {
  if (!time_ns.empty() && time_ns.size() != pkts.size()) {
    return make_error(EINVAL, "write_ip_pcap: one timestamp per packet, or none");
  }
  constexpr uint32_t kLinktypeRaw = 101;
  std::string out;
  put_le32(&out, 0xa1b2c3d4);  // microsecond timestamps, written little-endian
  put_le16(&out, 2);
  put_le16(&out, 4);
  put_le32(&out, 0);  // thiszone
  put_le32(&out, 0);  // sigfigs
  put_le32(&out, 262144);
  put_le32(&out, kLinktypeRaw);
  const uint64_t base_ns =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  for (size_t i = 0; i < pkts.size(); ++i) {
    const CapturedIp& c = pkts[i];
    uint8_t ip[48] = {};
    size_t hlen = 0;
    if (c.family == 4) {
      hlen = 20;
      const size_t total = hlen + c.payload.size();
      if (total > 0xffff) return make_error(EMSGSIZE, "write_ip_pcap: IPv4 packet over 64 KiB");
      ip[0] = 0x45;
      ip[1] = c.tos;
      ip[2] = static_cast<uint8_t>(total >> 8);
      ip[3] = static_cast<uint8_t>(total);
      ip[6] = c.fragment ? 0x20 : 0x40;  // MF, else DF
      ip[8] = 64;
      ip[9] = protocol;
      std::memcpy(ip + 12, c.src.data() + 12, 4);
      std::memcpy(ip + 16, c.dst.data() + 12, 4);
      uint32_t sum = 0;
      for (size_t k = 0; k < hlen; k += 2) sum += uint32_t{ip[k]} << 8 | ip[k + 1];
      while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
      ip[10] = static_cast<uint8_t>(~sum >> 8);
      ip[11] = static_cast<uint8_t>(~sum);
    } else if (c.family == 6) {
      hlen = c.fragment ? 48 : 40;
      const size_t plen = hlen - 40 + c.payload.size();
      if (plen > 0xffff) return make_error(EMSGSIZE, "write_ip_pcap: IPv6 payload over 64 KiB");
      ip[0] = static_cast<uint8_t>(0x60 | c.tos >> 4);
      ip[1] = static_cast<uint8_t>(c.tos << 4);
      ip[4] = static_cast<uint8_t>(plen >> 8);
      ip[5] = static_cast<uint8_t>(plen);
      ip[6] = c.fragment ? 44 : protocol;
      ip[7] = 64;
      std::memcpy(ip + 8, c.src.data(), 16);
      std::memcpy(ip + 24, c.dst.data(), 16);
      if (c.fragment) {
        ip[40] = protocol;
        ip[43] = 1;  // offset 0, more fragments
      }
    } else {
      return make_error(EINVAL, "write_ip_pcap: packet " + std::to_string(i) + " has no family");
    }
    const uint64_t t = time_ns.empty() ? base_ns + i * 1000 : time_ns[i];
    const uint32_t len = static_cast<uint32_t>(hlen + c.payload.size());
    put_le32(&out, static_cast<uint32_t>(t / 1'000'000'000));
    put_le32(&out, static_cast<uint32_t>(t % 1'000'000'000 / 1000));
    put_le32(&out, len);
    put_le32(&out, len);
    out.append(reinterpret_cast<const char*>(ip), hlen);
    out.append(reinterpret_cast<const char*>(c.payload.data()), c.payload.size());
  }
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) {
    const int e = errno;
    return make_error(e, "write_ip_pcap: cannot create " + path + ": " + std::strerror(e));
  }
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::write(fd.get(), out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = errno;
      return make_error(e, "write_ip_pcap: writing " + path + ": " + std::strerror(e));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Status IpCapture::write_pcap(const std::string& path) const {
  return write_ip_pcap(path, packets_, protocol_);
}

}  // namespace smt::test
