// loader/global_maps: create-or-reuse-and-pin of sessions_hash and
// port_leases_hash under a pin root. Every privileged test works under its own
// pin root /sys/fs/bpf/smt-test-<pid>-<random> and removes it afterwards.
#include "loader/global_maps.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <latch>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "global_maps.skel.h"
#include "smt/wire.h"
#include "support/test_support.h"

namespace smt::loader {
namespace {

constexpr const char* kBpffs = "/sys/fs/bpf";

bool is_bpffs(const char* path) {
  struct statfs s;
  return ::statfs(path, &s) == 0 && static_cast<uint32_t>(s.f_type) == BPF_FS_MAGIC;
}

/// Mounts bpffs at /sys/fs/bpf unless it is there already (PLATFORM.md: not
/// mounted at boot). A lock keeps parallel test processes from stacking two
/// mounts, which would hide one process's pins from the other.
bool ensure_bpffs() {
  if (is_bpffs(kBpffs)) return true;
  if (::geteuid() != 0) return false;
  UniqueFd lock(::open("/tmp/smt-bpffs-mount.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (lock) ::flock(lock.get(), LOCK_EX);
  if (!is_bpffs(kBpffs)) ::mount("bpf", kBpffs, "bpf", 0, nullptr);
  return is_bpffs(kBpffs);
}

std::string unique_suffix() {
  std::random_device rd;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%d-%08x", static_cast<int>(::getpid()), rd());
  return buf;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

struct bpf_map_info info_of(int fd) {
  struct bpf_map_info info;
  std::memset(&info, 0, sizeof info);
  uint32_t len = sizeof info;
  EXPECT_EQ(bpf_obj_get_info_by_fd(fd, &info, &len), 0) << std::strerror(errno);
  return info;
}

uint32_t pinned_id(const std::string& path) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd) return 0;
  return info_of(fd.get()).id;
}

/// Pins a map of the given shape at `path`, as a stale build would have.
void pin_foreign_map(const std::string& path, enum bpf_map_type type, uint32_t key_size,
                     uint32_t value_size, uint32_t max_entries, uint32_t flags = 0) {
  struct bpf_map_create_opts opts;
  std::memset(&opts, 0, sizeof opts);
  opts.sz = sizeof opts;  // LIBBPF_OPTS does not compile as C++ in libbpf 1.1
  opts.map_flags = flags;
  UniqueFd fd(bpf_map_create(type, "stale", key_size, value_size, max_entries, &opts));
  ASSERT_TRUE(fd) << "bpf_map_create: " << std::strerror(errno);
  ASSERT_EQ(bpf_obj_pin(fd.get(), path.c_str()), 0) << path << ": " << std::strerror(errno);
}

struct SkelDeleter {
  void operator()(global_maps_bpf* s) const { global_maps_bpf__destroy(s); }
};
using SkelPtr = std::unique_ptr<global_maps_bpf, SkelDeleter>;

class GlobalMapsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SMT_REQUIRE_OR_SKIP(::geteuid() == 0, "needs root (CAP_BPF, mounting bpffs)");
    SMT_REQUIRE_OR_SKIP(ensure_bpffs(), "/sys/fs/bpf is not a BPF filesystem and mounting failed");
    base_ = std::string(kBpffs) + "/smt-test-" + unique_suffix();
    root_ = base_;
  }

  void TearDown() override {
    if (base_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
    EXPECT_FALSE(ec) << "cleanup of " << base_ << ": " << ec.message();
  }

  std::string sessions_pin() const { return root_ + "/" + SMT_MAP_SESSIONS; }
  std::string leases_pin() const { return root_ + "/" + SMT_MAP_PORT_LEASES; }

  std::string base_;  // removed in TearDown
  std::string root_;  // the pin root under test (base_ or below it)
};

TEST_F(GlobalMapsTest, FirstCallCreatesEveryGlobalMapWithTheWireDefinitionAndPinsIt) {
  root_ = base_ + "/instance/a";  // missing parents are created too
  auto maps = open_global_maps(root_);
  ASSERT_TRUE(maps) << maps.error().message;

  EXPECT_EQ(maps->pin_root(), root_);
  EXPECT_TRUE(maps->sessions().created);
  EXPECT_TRUE(maps->port_leases().created);
  EXPECT_EQ(maps->sessions().pin_path, sessions_pin());
  EXPECT_EQ(maps->port_leases().pin_path, leases_pin());
  EXPECT_TRUE(is_bpffs(root_.c_str()));
  struct stat st;
  ASSERT_EQ(::stat(root_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  struct bpf_map_info s = info_of(maps->sessions_fd());
  EXPECT_EQ(s.type, BPF_MAP_TYPE_HASH);
  EXPECT_EQ(s.key_size, sizeof(struct smt_session_key));
  EXPECT_EQ(s.value_size, sizeof(struct smt_session_value));
  EXPECT_EQ(s.max_entries, static_cast<uint32_t>(SMT_SESSIONS_MAX));
  EXPECT_EQ(s.map_flags & BPF_F_NO_PREALLOC, 0u) << "sessions_hash must be preallocated";
  EXPECT_EQ(s.id, maps->sessions().id);
  EXPECT_EQ(pinned_id(sessions_pin()), s.id);

  struct bpf_map_info l = info_of(maps->port_leases_fd());
  EXPECT_EQ(l.type, BPF_MAP_TYPE_HASH);
  EXPECT_EQ(l.key_size, sizeof(struct smt_port_lease_key));
  EXPECT_EQ(l.value_size, sizeof(struct smt_port_lease_value));
  EXPECT_EQ(l.max_entries, static_cast<uint32_t>(SMT_PORT_LEASES_MAX));
  EXPECT_EQ(l.map_flags & BPF_F_NO_PREALLOC, 0u) << "port_leases_hash must be preallocated";
  EXPECT_EQ(pinned_id(leases_pin()), l.id);
  EXPECT_NE(s.id, l.id);

  // grant_tables: owners' tables are inserted by smtd, which may start first.
  EXPECT_TRUE(maps->grant_tables().created);
  struct bpf_map_info g = info_of(maps->grant_tables_fd());
  EXPECT_EQ(g.type, BPF_MAP_TYPE_HASH_OF_MAPS);
  EXPECT_EQ(g.key_size, sizeof(uint32_t));
  EXPECT_EQ(g.max_entries, static_cast<uint32_t>(SMT_OWNERS_MAX));
  EXPECT_EQ(pinned_id(root_ + "/" SMT_MAP_GRANT_TABLES), g.id);
}

TEST_F(GlobalMapsTest, SecondCallReusesThePinnedMapsAndSeesTheirEntries) {
  auto first = open_global_maps(root_);
  ASSERT_TRUE(first) << first.error().message;
  auto second = open_global_maps(root_);
  ASSERT_TRUE(second) << second.error().message;

  EXPECT_FALSE(second->sessions().created);
  EXPECT_FALSE(second->port_leases().created);
  EXPECT_EQ(second->sessions().id, first->sessions().id);
  EXPECT_EQ(second->port_leases().id, first->port_leases().id);

  struct smt_session_key key;
  std::memset(&key, 0, sizeof key);
  key.local_port = htons(4000);
  key.remote_port = htons(5000);
  key.remote_addr[15] = 7;
  struct smt_session_value value;
  std::memset(&value, 0, sizeof value);
  value.serial = 42;
  value.owner_queue = 3;
  ASSERT_EQ(bpf_map_update_elem(first->sessions_fd(), &key, &value, BPF_NOEXIST), 0)
      << std::strerror(errno);
  struct smt_session_value seen;
  std::memset(&seen, 0xff, sizeof seen);
  ASSERT_EQ(bpf_map_lookup_elem(second->sessions_fd(), &key, &seen), 0) << std::strerror(errno);
  EXPECT_EQ(seen.serial, 42u);
  EXPECT_EQ(seen.owner_queue, 3u);

  struct smt_port_lease_key lkey = {htons(4000), 0};
  struct smt_port_lease_value lval = {1000, 1234, 5, 0};
  ASSERT_EQ(bpf_map_update_elem(second->port_leases_fd(), &lkey, &lval, BPF_NOEXIST), 0)
      << std::strerror(errno);
  struct smt_port_lease_value lseen;
  std::memset(&lseen, 0, sizeof lseen);
  ASSERT_EQ(bpf_map_lookup_elem(first->port_leases_fd(), &lkey, &lseen), 0) << std::strerror(errno);
  EXPECT_EQ(lseen.owner_pid, 1234u);
}

TEST_F(GlobalMapsTest, PinnedMapsOutliveEveryOpenerAndKeepTheirEntries) {
  uint32_t id = 0;
  struct smt_port_lease_key lkey = {htons(4001), 0};
  {
    auto maps = open_global_maps(root_);
    ASSERT_TRUE(maps) << maps.error().message;
    id = maps->port_leases().id;
    struct smt_port_lease_value lval = {1, 2, 3, SMT_LEASE_F_EPHEMERAL};
    ASSERT_EQ(bpf_map_update_elem(maps->port_leases_fd(), &lkey, &lval, BPF_ANY), 0);
  }  // every fd closed here; only the pins hold the maps
  auto again = open_global_maps(root_);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->port_leases().id, id);
  struct smt_port_lease_value lseen;
  ASSERT_EQ(bpf_map_lookup_elem(again->port_leases_fd(), &lkey, &lseen), 0);
  EXPECT_EQ(lseen.flags, static_cast<uint32_t>(SMT_LEASE_F_EPHEMERAL));
}

TEST_F(GlobalMapsTest, PinnedMapWithWrongValueSizeIsRefusedWithClearError) {
  ASSERT_EQ(::mkdir(root_.c_str(), 0700), 0);
  pin_foreign_map(sessions_pin(), BPF_MAP_TYPE_HASH, sizeof(struct smt_session_key),
                  sizeof(struct smt_session_value) + 8, SMT_SESSIONS_MAX);
  uint32_t stale_id = pinned_id(sessions_pin());
  ASSERT_NE(stale_id, 0u);

  auto maps = open_global_maps(root_);
  ASSERT_FALSE(maps) << "a sessions_hash pin with a 64-byte value was accepted";
  const std::string& msg = maps.error().message;
  EXPECT_NE(msg.find("sessions_hash"), std::string::npos) << msg;
  EXPECT_NE(msg.find(sessions_pin()), std::string::npos) << msg;
  EXPECT_NE(msg.find("value_size is 64, expected 56"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rm " + sessions_pin()), std::string::npos) << msg;
  EXPECT_EQ(msg.find("key_size"), std::string::npos) << "only differing fields are named: " << msg;
  // The stale pin is the operator's to remove, never ours.
  EXPECT_EQ(pinned_id(sessions_pin()), stale_id);
}

TEST_F(GlobalMapsTest, EveryStalePinIsNamedInOneError) {
  ASSERT_EQ(::mkdir(root_.c_str(), 0700), 0);
  pin_foreign_map(sessions_pin(), BPF_MAP_TYPE_HASH, sizeof(struct smt_session_key) + 4,
                  sizeof(struct smt_session_value), SMT_SESSIONS_MAX);
  pin_foreign_map(leases_pin(), BPF_MAP_TYPE_HASH, sizeof(struct smt_port_lease_key),
                  sizeof(struct smt_port_lease_value) + 4, SMT_PORT_LEASES_MAX);

  auto maps = open_global_maps(root_);
  ASSERT_FALSE(maps);
  const std::string& msg = maps.error().message;
  EXPECT_NE(msg.find("rm " + sessions_pin()), std::string::npos) << msg;
  EXPECT_NE(msg.find("key_size is 44, expected 40"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rm " + leases_pin()), std::string::npos) << msg;
  EXPECT_NE(msg.find("value_size is 20, expected 16"), std::string::npos) << msg;
}

TEST_F(GlobalMapsTest, PinnedMapOfWrongTypeIsRefusedWithClearError) {
  ASSERT_EQ(::mkdir(root_.c_str(), 0700), 0);
  // Same key and value sizes as port_leases_hash, but an array.
  pin_foreign_map(leases_pin(), BPF_MAP_TYPE_ARRAY, sizeof(struct smt_port_lease_key),
                  sizeof(struct smt_port_lease_value), SMT_PORT_LEASES_MAX);

  auto maps = open_global_maps(root_);
  ASSERT_FALSE(maps) << "an array pinned as port_leases_hash was accepted";
  const std::string& msg = maps.error().message;
  EXPECT_NE(msg.find("port_leases_hash"), std::string::npos) << msg;
  EXPECT_NE(msg.find("type is array"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected hash"), std::string::npos) << msg;
  EXPECT_TRUE(exists(leases_pin()));
}

TEST_F(GlobalMapsTest, PinnedMapWithoutPreallocationIsRefused) {
  ASSERT_EQ(::mkdir(root_.c_str(), 0700), 0);
  pin_foreign_map(sessions_pin(), BPF_MAP_TYPE_HASH, sizeof(struct smt_session_key),
                  sizeof(struct smt_session_value), SMT_SESSIONS_MAX, BPF_F_NO_PREALLOC);

  auto maps = open_global_maps(root_);
  ASSERT_FALSE(maps) << "a BPF_F_NO_PREALLOC sessions_hash was accepted";
  EXPECT_NE(maps.error().message.find("map_flags is 0x1, expected 0x0"), std::string::npos)
      << maps.error().message;
}

TEST_F(GlobalMapsTest, PinnedMapWithWrongMaxEntriesIsRefused) {
  ASSERT_EQ(::mkdir(root_.c_str(), 0700), 0);
  pin_foreign_map(sessions_pin(), BPF_MAP_TYPE_HASH, sizeof(struct smt_session_key),
                  sizeof(struct smt_session_value), 1024);

  auto maps = open_global_maps(root_);
  ASSERT_FALSE(maps);
  EXPECT_NE(maps.error().message.find("max_entries is 1024, expected " +
                                      std::to_string(SMT_SESSIONS_MAX)),
            std::string::npos)
      << maps.error().message;
}

TEST_F(GlobalMapsTest, PinThatIsNotAMapIsRefused) {
  ASSERT_EQ(::mkdir(root_.c_str(), 0700), 0);
  // The smallest program: r0 = 0; exit.
  struct bpf_insn insns[2];
  std::memset(insns, 0, sizeof insns);
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[1].code = BPF_JMP | BPF_EXIT;
  UniqueFd prog(bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "smt_test", "GPL", insns, 2, nullptr));
  ASSERT_TRUE(prog) << std::strerror(errno);
  ASSERT_EQ(bpf_obj_pin(prog.get(), sessions_pin().c_str()), 0) << std::strerror(errno);

  auto maps = open_global_maps(root_);
  ASSERT_FALSE(maps) << "a pinned program was taken for sessions_hash";
  EXPECT_NE(maps.error().message.find("is not a map"), std::string::npos) << maps.error().message;
  EXPECT_TRUE(exists(sessions_pin()));
}

TEST_F(GlobalMapsTest, ConcurrentOpenersAllGetTheSameMapsPinnedOnce) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    root_ = base_ + "/round-" + std::to_string(round);
    std::vector<Result<GlobalMaps>> results;
    results.reserve(kThreads);
    for (int i = 0; i < kThreads; ++i) results.emplace_back(make_error(EINVAL, "not run"));
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        results[i] = open_global_maps(root_);
      });
    }
    for (auto& t : threads) t.join();

    int sessions_creators = 0;
    int leases_creators = 0;
    for (int i = 0; i < kThreads; ++i) {
      ASSERT_TRUE(results[i]) << "round " << round << " thread " << i << ": "
                              << results[i].error().message;
      EXPECT_EQ(results[i]->sessions().id, results[0]->sessions().id) << "round " << round;
      EXPECT_EQ(results[i]->port_leases().id, results[0]->port_leases().id) << "round " << round;
      sessions_creators += results[i]->sessions().created;
      leases_creators += results[i]->port_leases().created;
    }
    EXPECT_EQ(sessions_creators, 1) << "round " << round;
    EXPECT_EQ(leases_creators, 1) << "round " << round;
    EXPECT_EQ(pinned_id(sessions_pin()), results[0]->sessions().id);
  }
}

// smtd and `smtctl attach` starting together: separate processes, not threads.
TEST_F(GlobalMapsTest, ConcurrentProcessesAllGetTheSameMapsPinnedOnce) {
  constexpr int kProcs = 4;
  constexpr int kRounds = 5;
  struct Report {
    uint32_t ok, sessions_id, leases_id, sessions_created, leases_created;
  };
  for (int round = 0; round < kRounds; ++round) {
    root_ = base_ + "/proc-round-" + std::to_string(round);
    int go[2], results[2];
    ASSERT_EQ(::pipe(go), 0);
    ASSERT_EQ(::pipe(results), 0);
    std::vector<pid_t> children;
    for (int i = 0; i < kProcs; ++i) {
      pid_t pid = ::fork();
      ASSERT_GE(pid, 0) << std::strerror(errno);
      if (pid == 0) {  // child: no gtest assertions here, report through the pipe
        ::close(go[1]);
        char c;
        (void)!::read(go[0], &c, 1);  // returns 0 once the parent closes go[1]
        auto maps = open_global_maps(root_);
        Report r{};
        if (maps) {
          r = Report{1, maps->sessions().id, maps->port_leases().id, maps->sessions().created,
                     maps->port_leases().created};
        }
        (void)!::write(results[1], &r, sizeof r);
        ::_exit(0);
      }
      children.push_back(pid);
    }
    ::close(go[0]);
    ::close(go[1]);  // start them all
    ::close(results[1]);
    std::vector<Report> reports;
    Report r;
    while (::read(results[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r)) reports.push_back(r);
    ::close(results[0]);
    for (pid_t pid : children) ::waitpid(pid, nullptr, 0);

    ASSERT_EQ(reports.size(), static_cast<size_t>(kProcs)) << "round " << round;
    uint32_t sessions_creators = 0;
    uint32_t leases_creators = 0;
    for (const Report& rep : reports) {
      ASSERT_EQ(rep.ok, 1u) << "round " << round << ": a process failed to open the maps";
      EXPECT_EQ(rep.sessions_id, reports[0].sessions_id) << "round " << round;
      EXPECT_EQ(rep.leases_id, reports[0].leases_id) << "round " << round;
      sessions_creators += rep.sessions_created;
      leases_creators += rep.leases_created;
    }
    EXPECT_EQ(sessions_creators, 1u) << "round " << round;
    EXPECT_EQ(leases_creators, 1u) << "round " << round;
    EXPECT_EQ(pinned_id(sessions_pin()), reports[0].sessions_id);
    EXPECT_EQ(pinned_id(leases_pin()), reports[0].leases_id);
  }
}

TEST_F(GlobalMapsTest, ReuseInMakesAnObjectUseThePinnedMaps) {
  auto maps = open_global_maps(root_);
  ASSERT_TRUE(maps) << maps.error().message;

  SkelPtr skel(global_maps_bpf__open());
  ASSERT_NE(skel, nullptr);
  Status s = maps->reuse_in(skel->obj);
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(global_maps_bpf__load(skel.get()), 0);

  EXPECT_EQ(info_of(bpf_map__fd(skel->maps.sessions_hash)).id, maps->sessions().id);
  EXPECT_EQ(info_of(bpf_map__fd(skel->maps.port_leases_hash)).id, maps->port_leases().id);
}

TEST_F(GlobalMapsTest, ReuseInAfterLoadIsRefused) {
  auto maps = open_global_maps(root_);
  ASSERT_TRUE(maps) << maps.error().message;

  SkelPtr skel(global_maps_bpf__open_and_load());  // made its own maps
  ASSERT_NE(skel, nullptr);
  Status s = maps->reuse_in(skel->obj);
  ASSERT_FALSE(s) << "reuse_in accepted an object that already created its maps";
  EXPECT_EQ(s.error().code, EBUSY);
  EXPECT_NE(s.error().message.find("before loading"), std::string::npos) << s.error().message;
}

TEST_F(GlobalMapsTest, ReuseInRefusesAnObjectWithAnotherDefinition) {
  auto maps = open_global_maps(root_);
  ASSERT_TRUE(maps) << maps.error().message;

  SkelPtr skel(global_maps_bpf__open());
  ASSERT_NE(skel, nullptr);
  ASSERT_EQ(bpf_map__set_value_size(skel->maps.sessions_hash, 64), 0);
  Status s = maps->reuse_in(skel->obj);
  ASSERT_FALSE(s) << "reuse_in accepted a sessions_hash with a 64-byte value";
  EXPECT_NE(s.error().message.find("sessions_hash"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("value_size"), std::string::npos) << s.error().message;
}

// No privileges needed: the filesystem check comes before anything else.
TEST(GlobalMapsPinRoot, PinRootNotOnBpffsIsRefusedWithMountHint) {
  std::string base = "/tmp/smt-test-" + unique_suffix();
  std::string root = base + "/pins";
  auto maps = open_global_maps(root);
  ASSERT_FALSE(maps) << "pins accepted on tmpfs";
  const std::string& msg = maps.error().message;
  EXPECT_NE(msg.find(root + " is not on a BPF filesystem"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mount -t bpf bpf /sys/fs/bpf"), std::string::npos) << msg;
  EXPECT_FALSE(exists(base)) << "created directories outside bpffs";
}

TEST(GlobalMapsPinRoot, RelativePinRootIsRefused) {
  auto maps = open_global_maps("smt");
  ASSERT_FALSE(maps);
  EXPECT_NE(maps.error().message.find("absolute"), std::string::npos) << maps.error().message;
}

}  // namespace
}  // namespace smt::loader
