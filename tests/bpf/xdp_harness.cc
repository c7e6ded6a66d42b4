#include "xdp_harness.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/bytes.h"
#include "loader/xdp_attach.h"
#include "smt_xdp.skel.h"
#include "support/test_support.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

namespace smt::test {
namespace {

constexpr uint32_t kLocal4 = 0x0a000002;   // 10.0.0.2 (this host)
constexpr uint32_t kRemote4 = 0x0a000001;  // 10.0.0.1 (the peer)
constexpr Ip6 kLocal6 = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
constexpr Ip6 kRemote6 = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

std::array<uint8_t, 16> key_from(uint8_t seed) {
  std::array<uint8_t, 16> k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed + 17 * i);
  return k;
}

void mapped4(uint8_t* out, uint32_t a) {
  std::memset(out, 0, 16);
  out[10] = 0xff;
  out[11] = 0xff;
  store_be32(out + 12, a);
}

}  // namespace

smt_session_key TestSession::map_key() const {
  smt_session_key k;
  std::memset(&k, 0, sizeof k);
  if (v6) {
    std::memcpy(k.local_addr, local6.data(), 16);
    std::memcpy(k.remote_addr, remote6.data(), 16);
  } else {
    mapped4(k.local_addr, local4);
    mapped4(k.remote_addr, remote4);
  }
  store_be16(reinterpret_cast<uint8_t*>(&k.local_port), local_port);
  store_be16(reinterpret_cast<uint8_t*>(&k.remote_port), remote_port);
  return k;
}

Bytes TestSession::frame(const Bytes& smt, uint8_t proto) const {
  return v6 ? ipv6_frame(remote6, local6, proto, smt) : ipv4_frame(remote4, local4, proto, smt);
}

DataHeader TestSession::data(uint64_t id) const {
  DataHeader h;
  h.sport = remote_port;
  h.dport = local_port;
  h.incoming = 10000;
  h.message_id = id;
  h.message_length = 100000;
  h.record_offset = 2780;
  h.record_index = 2;
  h.epoch = 0;
  h.priority = 3;
  return h;
}

Bytes TestSession::data_frame(uint64_t id) const {
  return frame(data_packet(data(id), ctl_key.data()));
}

ControlPacket TestSession::grant(uint64_t id, uint32_t offset, uint64_t seq) const {
  ControlPacket c;
  c.type = SMT_TYPE_GRANT;
  c.sport = remote_port;
  c.dport = local_port;
  c.message_id = id;
  c.control_seq = seq;
  c.grant_offset = offset;
  c.priority = 2;
  c.window_base = 44;
  return c;
}

Bytes TestSession::control_frame(const ControlPacket& c) const {
  return frame(control_packet(c, ctl_key.data()));
}

void XdpRxTest::SkelDeleter::operator()(smt_xdp_bpf* s) const { smt_xdp_bpf__destroy(s); }

void XdpRxTest::SetUp() {
  SMT_REQUIRE_OR_SKIP(geteuid() == 0, "loading an XDP program needs root (CAP_BPF, CAP_NET_ADMIN)");
  // A private network namespace per test: the veth below disappears with it.
  ASSERT_EQ(unshare(CLONE_NEWNET), 0) << std::strerror(errno);
  std::string out;
  const int rc = run_command(
      "{ ip link add smtxq0 numrxqueues 4 numtxqueues 4 type veth peer name smtxq1 "
      "numrxqueues 4 numtxqueues 4 && ip link set smtxq0 up && ip link set smtxq1 up; } 2>&1",
      &out);
  ASSERT_EQ(rc, 0) << "could not create the test veth: " << out;
  ifindex_ = static_cast<int>(if_nametoindex("smtxq0"));
  ASSERT_GT(ifindex_, 0);

  raw4_.local4 = kLocal4;
  raw4_.remote4 = kRemote4;
  raw4_.local_port = 5000;
  raw4_.remote_port = 40000;
  raw4_.ctl_key = key_from(1);
  raw4_.slot = 0;

  raw4b_ = raw4_;
  raw4b_.remote_port = 40002;
  raw4b_.ctl_key = key_from(2);
  raw4b_.slot = 2;

  xsk6_.v6 = true;
  xsk6_.local6 = kLocal6;
  xsk6_.remote6 = kRemote6;
  xsk6_.local_port = 5000;
  xsk6_.remote_port = 40001;
  xsk6_.ctl_key = key_from(3);
  xsk6_.slot = 1;
  xsk6_.queue = kXskQueue;
  xsk6_.flags = SMT_SESSION_F_AF_XDP;

  nosock4_ = raw4_;
  nosock4_.remote_port = 40003;
  nosock4_.ctl_key = key_from(4);
  nosock4_.slot = 3;
  nosock4_.queue = 2;
  nosock4_.flags = SMT_SESSION_F_AF_XDP;

  load(SMT_IPPROTO_DEFAULT);
}

void XdpRxTest::TearDown() {
  if (table_map_ != nullptr) munmap(table_map_, table_len_);
  table_map_ = nullptr;
  xsk_fd_.reset();
  if (umem_ != nullptr) munmap(umem_, umem_len_);
  umem_ = nullptr;
  skel_.reset();
}

void XdpRxTest::load(uint8_t proto) {
  if (table_map_ != nullptr) munmap(table_map_, table_len_);
  table_map_ = nullptr;
  skel_.reset();

  skel_.reset(smt_xdp_bpf__open());
  ASSERT_NE(skel_, nullptr) << std::strerror(errno);
  skel_->rodata->smt_ipproto = proto;
  // libbpf's default log stays on: a verifier rejection prints its log here.
  ASSERT_EQ(smt_xdp_bpf__load(skel_.get()), 0) << "smt_xdp.bpf.o failed to load (log above)";
  prog_fd_ = bpf_program__fd(skel_->progs.smt_xdp_rx);
  ASSERT_GE(prog_fd_, 0);

  // The owner's table, created as smtd would: an mmapable array, no BTF.
  struct bpf_map_create_opts opts;
  std::memset(&opts, 0, sizeof opts);
  opts.sz = sizeof opts;
  opts.map_flags = BPF_F_MMAPABLE;
  table_fd_.reset(bpf_map_create(BPF_MAP_TYPE_ARRAY, "smt_owner_7", sizeof(uint32_t),
                                 sizeof(smt_owner_table_entry), SMT_OWNER_TABLE_SESSIONS, &opts));
  ASSERT_TRUE(table_fd_.valid()) << std::strerror(errno);
  uint32_t owner = kOwner;
  int inner = table_fd_.get();
  ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel_->maps.grant_tables), &owner, &inner, BPF_ANY), 0)
      << std::strerror(errno);
  table_len_ = sizeof(smt_owner_table_entry) * SMT_OWNER_TABLE_SESSIONS;
  table_map_ = mmap(nullptr, table_len_, PROT_READ | PROT_WRITE, MAP_SHARED, table_fd_.get(), 0);
  ASSERT_NE(table_map_, MAP_FAILED) << std::strerror(errno);

  for (const TestSession* s : {&raw4_, &raw4b_, &xsk6_, &nosock4_}) {
    smt_session_key k = s->map_key();
    smt_session_value v;
    std::memset(&v, 0, sizeof v);
    v.serial = 2;
    std::memcpy(v.rx_ctl_key, s->ctl_key.data(), 16);
    for (size_t i = 0; i < 16; ++i) v.tx_ctl_key[i] = static_cast<uint8_t>(0x55 ^ i);
    v.owner_id = kOwner;
    v.owner_queue = s->queue;
    v.session_slot = s->slot;
    v.version = SMT_VERSION;
    v.flags = s->flags;
    ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel_->maps.sessions_hash), &k, &v, BPF_NOEXIST), 0)
        << std::strerror(errno);
  }
}

RunResult XdpRxTest::run(const Bytes& frame, uint32_t queue) {
  RunResult r;
  r.out.resize(frame.size() + 256);
  struct xdp_md md;
  std::memset(&md, 0, sizeof md);
  md.ingress_ifindex = static_cast<uint32_t>(ifindex_);
  md.rx_queue_index = queue;
  // The context's data_end is the frame length: 0 would run on an empty frame.
  md.data_end = static_cast<uint32_t>(frame.size());
  struct bpf_test_run_opts opts;
  std::memset(&opts, 0, sizeof opts);
  opts.sz = sizeof opts;  // LIBBPF_OPTS does not compile as C++ in libbpf 1.1
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<uint32_t>(frame.size());
  opts.data_out = r.out.data();
  opts.data_size_out = static_cast<uint32_t>(r.out.size());
  opts.ctx_in = &md;
  opts.ctx_size_in = sizeof md;
  opts.repeat = 1;
  const int err = bpf_prog_test_run_opts(prog_fd_, &opts);
  EXPECT_EQ(err, 0) << "test run failed: " << std::strerror(errno);
  r.retval = opts.retval;
  r.out.resize(opts.data_size_out);
  return r;
}

Stats XdpRxTest::stats() const {
  Stats s{};
  const int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu > 0 ? ncpu : 1));
  for (uint32_t i = 0; i < SMT_XDP_STAT_COUNT; ++i) {
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.stats_percpu), &i, per_cpu.data()) != 0) {
      ADD_FAILURE() << "stats_percpu lookup " << i << ": " << std::strerror(errno);
      continue;
    }
    for (uint64_t v : per_cpu) s[i] += v;
  }
  return s;
}

void XdpRxTest::check(const Fixture& f) {
  SCOPED_TRACE(f.name + " " + hex(f.frame));
  const Stats before = stats();
  const RunResult r = run(f.frame, f.queue);
  const Stats after = stats();
  EXPECT_EQ(r.retval, f.verdict) << f.name;
  EXPECT_EQ(r.out, f.frame) << f.name << ": the program must not change the frame";
  for (uint32_t i = 0; i < SMT_XDP_STAT_COUNT; ++i) {
    uint64_t want = i == f.stat ? 1 : 0;
    for (uint32_t e : f.events) want += e == i ? 1 : 0;
    EXPECT_EQ(after[i] - before[i], want) << f.name << ": counter " << loader::xdp_stat_name(i);
  }
}

uint64_t XdpRxTest::mac_failures(const TestSession& s) const {
  const int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu > 0 ? ncpu : 1));
  smt_session_key k = s.map_key();
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.session_mac_fail_percpu), &k, per_cpu.data()) !=
      0) {
    return 0;
  }
  uint64_t sum = 0;
  for (uint64_t v : per_cpu) sum += v;
  return sum;
}

smt_owner_table_entry* XdpRxTest::entry(const TestSession& s) const {
  return static_cast<smt_owner_table_entry*>(table_map_) + s.slot;
}

void XdpRxTest::arm_grant(const TestSession& s, uint64_t id, uint32_t offset) const {
  __atomic_store_n(&entry(s)->grant[SMT_GRANT_SLOT_INDEX(id)], SMT_GRANT_SLOT(id, offset),
                   __ATOMIC_RELEASE);
}

uint64_t XdpRxTest::grant_word(const TestSession& s, uint64_t id) const {
  return __atomic_load_n(&entry(s)->grant[SMT_GRANT_SLOT_INDEX(id)], __ATOMIC_ACQUIRE);
}

void XdpRxTest::publish_base(const TestSession& s, uint64_t base) const {
  __atomic_store_n(&entry(s)->published_base, base, __ATOMIC_RELEASE);
}

bool XdpRxTest::add_xsk_socket(std::string* why) {
  constexpr uint32_t kFrames = 16;
  constexpr uint32_t kFrameSize = 4096;
  constexpr uint32_t kRing = 16;
  xsk_fd_.reset(socket(AF_XDP, SOCK_RAW, 0));
  if (!xsk_fd_.valid()) {
    *why = std::string("socket(AF_XDP): ") + std::strerror(errno);
    return false;
  }
  umem_len_ = kFrames * kFrameSize;
  umem_ = mmap(nullptr, umem_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (umem_ == MAP_FAILED) {
    umem_ = nullptr;
    *why = std::string("mmap umem: ") + std::strerror(errno);
    return false;
  }
  struct xdp_umem_reg reg;
  std::memset(&reg, 0, sizeof reg);
  reg.addr = reinterpret_cast<uint64_t>(umem_);
  reg.len = umem_len_;
  reg.chunk_size = kFrameSize;
  const int fd = xsk_fd_.get();
  if (setsockopt(fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg) != 0 ||
      setsockopt(fd, SOL_XDP, XDP_UMEM_FILL_RING, &kRing, sizeof kRing) != 0 ||
      setsockopt(fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &kRing, sizeof kRing) != 0 ||
      setsockopt(fd, SOL_XDP, XDP_RX_RING, &kRing, sizeof kRing) != 0) {
    *why = std::string("AF_XDP setsockopt: ") + std::strerror(errno);
    return false;
  }
  struct sockaddr_xdp sxdp;
  std::memset(&sxdp, 0, sizeof sxdp);
  sxdp.sxdp_family = AF_XDP;
  sxdp.sxdp_ifindex = static_cast<uint32_t>(ifindex_);
  sxdp.sxdp_queue_id = kXskQueue;
  sxdp.sxdp_flags = XDP_COPY;
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&sxdp), sizeof sxdp) != 0) {
    *why = std::string("bind AF_XDP: ") + std::strerror(errno);
    return false;
  }
  uint32_t q = kXskQueue;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.xsks_map), &q, &fd, BPF_ANY) != 0) {
    *why = std::string("xsks_map update: ") + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace smt::test
