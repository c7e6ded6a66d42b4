// libsmt's socket: one transport engine behind one lock, run to completion in
// whichever application thread is inside a call (BRIEF §3), plus a helper
// thread for timers while no application thread is.
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "lib/peer_addr.h"
#include "lib/smt.h"
#include "lib/smt_socket_link.h"
#include "lib/smt_test_session.h"
#include "lib/smtd_sessions.h"
#include "link/raw_link.h"
#include "link/xsk_link.h"
#include "transport/engine.h"

using smt::UniqueFd;

namespace {

thread_local std::string t_last_error;

// Assigns into the thread's buffer, so a busy-polling smt_recv that fails
// with EAGAIN allocates nothing after its first call.
int fail(int code, std::string_view message) {
  t_last_error.assign(message);
  errno = code;
  return -1;
}
int fail(const smt::Error& e) { return fail(e.code, e.message); }

// Bumped in the child by pthread_atfork: a socket remembers the value it was
// created under, so a forked child's calls fail without a getpid() system call
// on every call (glibc does not cache it).
std::atomic<uint64_t> g_fork_generation{0};
uint64_t fork_generation() {
  static const bool registered = [] {
    return pthread_atfork(nullptr, nullptr,
                          [] { g_fork_generation.fetch_add(1, std::memory_order_relaxed); }) == 0;
  }();
  (void)registered;
  return g_fork_generation.load(std::memory_order_relaxed);
}

// A small number naming the calling thread, for hand-off counting.
std::atomic<uint64_t> g_next_thread_token{1};
uint64_t thread_token() {
  thread_local uint64_t token = g_next_thread_token.fetch_add(1, std::memory_order_relaxed);
  return token;
}

// Each thread's own eventfd: another thread writes it to wake this one while
// it sleeps in smt_recv. Closed when the thread exits.
int thread_wake_fd() {
  thread_local UniqueFd fd;
  if (!fd.valid()) fd.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  return fd.get();
}

void drain_eventfd(int fd) {
  uint64_t v;
  while (read(fd, &v, sizeof v) < 0 && errno == EINTR) {
  }
}

void signal_eventfd(int fd) {
  const uint64_t one = 1;
  while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

constexpr int kAllRecvFlags = SMT_RECV_REQUEST | SMT_RECV_RESPONSE | SMT_RECV_NONBLOCK;

// An event the engine delivered, waiting for smt_recv, with the thread whose
// progress() produced it.
struct QueuedEvent {
  smt::Event ev;
  uint64_t producer = 0;
};

// A thread sleeping in smt_recv and what it waits for.
struct Waiter {
  int flags = 0;
  uint64_t id = 0;
  int fd = -1;
  uint64_t token = 0;
  bool signalled = false;
};

bool matches(int flags, uint64_t id, const smt::Event& e) {
  const int kinds = flags & (SMT_RECV_REQUEST | SMT_RECV_RESPONSE);
  const bool want_req = kinds == 0 || (kinds & SMT_RECV_REQUEST);
  const bool want_resp = kinds == 0 || (kinds & SMT_RECV_RESPONSE);
  if (e.kind == smt::Event::Kind::kRequest) return want_req && id == 0;
  return want_resp && (id == 0 || id == e.id);
}

}  // namespace

struct smt_sock {
  uint64_t fork_generation = 0;  // fork_generation() when created
  smt::link::Link* link = nullptr;
  const smt::Clock* clock = nullptr;
  std::unique_ptr<smt::link::Link> owned_fallback;  // AF_XDP's raw fallback: outlives owned_link
  std::unique_ptr<smt::link::Link> owned_link;      // destroyed after the engine

  std::mutex mu;
  std::unique_ptr<smt::Engine> engine;
  uint16_t port = 0;
  std::map<smt::SessionId, smt::lib::PeerAddr> peers;
  // smtd's connection (null: sessions only from the test hook). While
  // smtd_busy, one thread waits for OPEN with mu released and alone uses it.
  std::unique_ptr<smt::lib::SmtdSessions> smtd;
  bool smtd_busy = false;
  bool smtd_readable = false;  // a wait saw smtd's fd readable: read it next
  std::condition_variable smtd_cv;
  std::deque<QueuedEvent> queue;
  std::vector<Waiter*> waiters;
  smt_socket_stats counters{};

  // What the helper thread needs to know (all under mu).
  int active = 0;             // application threads inside a call
  uint64_t last_exit_ns = 0;  // when the last one left
  uint64_t helper_wake_ns = UINT64_MAX;
  uint64_t helper_quiet_ns = 0;
  bool helper_waiting = false;
  bool stop = false;
  std::condition_variable helper_cv;
  std::thread helper;

  // smt_fd: an epoll set of the link fd, `ready` (readable while messages
  // are queued) and `timer` (the engine's next deadline). Made on first use.
  UniqueFd epoll;
  UniqueFd ready;
  UniqueFd timer;
  bool ready_set = false;
  uint64_t timer_armed = UINT64_MAX;
  int epoll_smtd_fd = -1;

  ~smt_sock() {
    engine.reset();  // wipes the sessions' keys while the link still exists
  }

  // ---- everything below runs with mu held ----

  // The engine's next timer, or smtd's next reconnect attempt if earlier.
  uint64_t next_deadline() const {
    uint64_t d = engine->next_deadline();
    if (smtd && !smtd_busy) d = std::min(d, smtd->next_retry_ns());
    return d;
  }

  // Lets the engine work and moves what it delivered to the queue, waking a
  // sleeping thread for each new message it waits for. smtd's notifications
  // come first: a session a peer just opened is installed before the receive
  // batch that may carry its first packet.
  void progress(uint64_t token, bool poll_smtd = true) {
    if (poll_smtd && smtd && !smtd_busy) smtd->poll(std::exchange(smtd_readable, false));
    engine->progress();
    const size_t first_new = queue.size();
    while (auto ev = engine->next_event()) queue.push_back({std::move(*ev), token});
    if (waiters.empty()) return;
    for (size_t i = first_new; i < queue.size(); ++i) {
      for (Waiter* w : waiters) {
        if (!w->signalled && w->token != token && matches(w->flags, w->id, queue[i].ev)) {
          w->signalled = true;
          ++counters.handoffs;
          signal_eventfd(w->fd);
          break;
        }
      }
    }
  }

  std::optional<QueuedEvent> take(int flags, uint64_t id, uint64_t token) {
    for (auto it = queue.begin(); it != queue.end(); ++it) {
      if (!matches(flags, id, it->ev)) continue;
      QueuedEvent e = std::move(*it);
      queue.erase(it);
      if (e.producer != token) ++counters.handoffs;
      return e;
    }
    return std::nullopt;
  }

  // Keeps smt_fd's readiness true to the queue and the engine's timers.
  void sync_fds() {
    if (!epoll.valid()) return;
    const bool want_ready = !queue.empty();
    if (want_ready != ready_set) {
      if (want_ready) {
        signal_eventfd(ready.get());
      } else {
        drain_eventfd(ready.get());
      }
      ready_set = want_ready;
    }
    if (smtd) {
      const int sfd = smtd->fd();
      if (sfd != epoll_smtd_fd) {
        // The old fd left the set when it was closed; a new connection joins.
        if (sfd >= 0) {
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.fd = sfd;
          epoll_ctl(epoll.get(), EPOLL_CTL_ADD, sfd, &ev);
        }
        epoll_smtd_fd = sfd;
      }
    }
    if (clock->is_virtual()) return;
    uint64_t dl = next_deadline();
    const uint64_t now = clock->now_ns();
    // A deadline already past that progress() did not move would keep the fd
    // readable forever: look again a tick later instead of spinning.
    if (dl <= now) dl = now + engine->config().tick_ns;
    if (dl == timer_armed) return;
    itimerspec its{};
    if (dl != UINT64_MAX) {
      its.it_value.tv_sec = static_cast<time_t>(dl / 1'000'000'000);
      its.it_value.tv_nsec = static_cast<long>(dl % 1'000'000'000);
    }
    timerfd_settime(timer.get(), TFD_TIMER_ABSTIME, &its, nullptr);
    timer_armed = dl;
  }

  // What the helper thread would wait for after this call: wake it if the
  // engine now wants it earlier than it planned.
  void left_call() {
    sync_fds();
    if (--active != 0) return;
    last_exit_ns = clock->now_ns();
    if (!helper_waiting) return;
    const uint64_t due = std::max(next_deadline(), last_exit_ns + helper_quiet_ns);
    if (due < helper_wake_ns) {
      helper_waiting = false;
      helper_cv.notify_one();
    }
  }

  void helper_main();
};

namespace {

// One application call: the lock, the "inside libsmt" count for the helper.
class Call {
 public:
  explicit Call(smt_sock& s) : s_(s), lk_(s.mu) { ++s_.active; }
  ~Call() {
    const int saved = errno;  // the caller's error survives the fd bookkeeping
    if (!lk_.owns_lock()) lk_.lock();
    s_.left_call();
    errno = saved;
  }
  std::unique_lock<std::mutex>& lock() { return lk_; }

 private:
  smt_sock& s_;
  std::unique_lock<std::mutex> lk_;
};

// Null socket: EINVAL. Another process's socket (a forked child): EPERM,
// before anything, the lock included, is touched.
bool usable(smt_sock* s) {
  if (s == nullptr) {
    fail(EINVAL, "null socket");
    return false;
  }
  if (fork_generation() != s->fork_generation) {
    fail(EPERM, "smt socket used in a process other than the one that created it (fork)");
    return false;
  }
  return true;
}

}  // namespace

void smt_sock::helper_main() {
  const uint64_t token = thread_token();
  std::unique_lock<std::mutex> lk(mu);
  while (!stop) {
    const uint64_t now = clock->now_ns();
    // While an application thread is inside a call (it runs the engine
    // itself), plan as if it left now rather than wait to be woken: a call
    // that ends before that time then wakes nobody, where waking the helper
    // at the end of every call cost a futex call and a context switch per
    // RPC. At worst the helper wakes once a tick to find a thread inside.
    const uint64_t exit_ns = active > 0 ? now : last_exit_ns;
    const uint64_t due = std::max(next_deadline(), exit_ns + helper_quiet_ns);
    if (now < due) {  // always while a thread is inside: helper_quiet_ns > 0
      helper_wake_ns = due;
      helper_waiting = true;
      if (due == UINT64_MAX) {
        helper_cv.wait(lk);
      } else {
        helper_cv.wait_for(lk, std::chrono::nanoseconds(due - now));
      }
      continue;
    }
    helper_waiting = false;
    progress(token);
    ++counters.helper_runs;
    sync_fds();
  }
}

namespace {

// Open timeout when the caller gives none: longer than smtd's own handshake
// and open timeouts (10 s each by default), so smtd's answer comes first.
constexpr int kDefaultOpenTimeoutMs = 25'000;

// `client`: a connection to smtd the caller already made (it asked for the
// datapath on it; `datapath_fds` are the sockets smtd handed out there).
smt_sock* make_socket(smt::link::Link* link, const smt::Clock* clock,
                      const smt::lib::SocketConfig& config, std::unique_ptr<smt::link::Link> owned,
                      std::optional<smt::smtd::SmtdClient> client = std::nullopt,
                      std::vector<int> datapath_fds = {}, uint32_t datapath_queue = 0,
                      std::unique_ptr<smt::link::Link> fallback = nullptr) {
  auto s = std::make_unique<smt_sock>();
  s->fork_generation = fork_generation();
  s->owned_fallback = std::move(fallback);
  s->owned_link = std::move(owned);
  s->link = link;
  s->clock = clock;
  s->engine = std::make_unique<smt::Engine>(*link, *clock, config.engine);
  if (!config.smtd_socket.empty()) {
    const int timeout = config.open_timeout_ms > 0 ? config.open_timeout_ms : kDefaultOpenTimeoutMs;
    auto c = client ? smt::lib::SmtdSessions::attach(std::move(*client), config.smtd_socket,
                                                     timeout, *s->engine, s->peers, *clock,
                                                     std::move(datapath_fds), datapath_queue)
                    : smt::lib::SmtdSessions::connect(config.smtd_socket, timeout, *s->engine,
                                                      s->peers, *clock);
    if (!c.ok()) {
      fail(c.error());
      return nullptr;
    }
    s->smtd = std::move(*c);
  }
  s->last_exit_ns = clock->now_ns();
  s->helper_quiet_ns = config.helper_quiet_ns != 0 ? config.helper_quiet_ns : config.engine.tick_ns;
  if (config.helper_thread && !clock->is_virtual()) {
    smt_sock* raw = s.get();
    s->helper = std::thread([raw] { raw->helper_main(); });
  }
  return s.release();
}

}  // namespace

smt_sock* smt_socket_from_link(smt::link::Link* link, const smt::Clock* clock,
                               const smt::lib::SocketConfig& config) {
  if (link == nullptr || clock == nullptr) {
    fail(EINVAL, "smt_socket_from_link: null link or clock");
    return nullptr;
  }
  return make_socket(link, clock, config, nullptr);
}

namespace {

// The links over the sockets smtd hands this connection (DATAPATH): AF_XDP
// with smtd's raw socket as the fallback for peers whose next hop is not
// resolved yet, or the raw socket alone, with one line per process saying
// why AF_XDP was not offered.
struct SmtdDatapath {
  std::unique_ptr<smt::link::Link> link;      // the engine's
  std::unique_ptr<smt::link::Link> fallback;  // AF_XDP's raw fallback; outlives `link`
  std::vector<int> fds;                       // presented again after an smtd restart
  uint32_t queue = 0;
};

// The one line per process saying why this process runs on smtd's raw
// socket instead of AF_XDP.
void say_no_af_xdp(const std::string& why) {
  static std::once_flag said;
  std::call_once(said, [&] {
    std::fprintf(stderr, "smt: AF_XDP unavailable (%s); using smtd's raw socket\n", why.c_str());
  });
}

smt::Result<SmtdDatapath> smtd_datapath_link(smt::smtd::SmtdClient& client,
                                             smt::link::RawLinkConfig rc, unsigned families,
                                             const smt_socket_opts& opts) {
  static_assert(SMT_FAMILY_V4 == SMTD_DATAPATH_FAMILY_V4 &&
                SMT_FAMILY_V6 == SMTD_DATAPATH_FAMILY_V6);
  const bool raw_only = opts.datapath == SMT_DATAPATH_RAW;
  auto grant = client.datapath(families, opts.xdp_queue, raw_only);
  if (!grant.ok()) return grant.error();
  const smt::link::Addr local = grant->local_addr;
  const bool v4 = smt::link::is_v4_mapped(local);
  const std::optional<smt::link::Addr>& asked = v4 ? rc.local_v4 : rc.local_v6;
  if (asked && *asked != local) {
    return smt::make_error(EINVAL,
                           "smt_socket_raw: the local address asked for is not smtd's "
                           "address, which its sockets are bound to");
  }
  if (grant->protocol != rc.protocol) {
    return smt::make_error(EINVAL, "smt_socket_raw: smtd's SMT protocol is " +
                                       std::to_string(grant->protocol) + ", not " +
                                       std::to_string(rc.protocol));
  }
  rc.local_v4.reset();
  rc.local_v6.reset();
  (v4 ? rc.local_v4 : rc.local_v6) = local;
  SmtdDatapath out;
  if (grant->xsk.valid()) out.fds.push_back(grant->xsk.get());
  if (grant->raw_v4.valid()) out.fds.push_back(grant->raw_v4.get());
  if (grant->raw_v6.valid()) out.fds.push_back(grant->raw_v6.get());
  auto raw = smt::link::RawLink::adopt(rc, std::move(grant->raw_v4), std::move(grant->raw_v6));
  if (!raw.ok()) return raw.error();
  if (grant->kind != SMTD_DATAPATH_AF_XDP) {
    if (!raw_only && !grant->note.empty()) say_no_af_xdp(grant->note);
    out.link = std::move(*raw);
    return out;
  }
  smt::link::XskLinkConfig xc;
  const smtd_datapath_xsk& x = grant->xsk_info;
  xc.xsk.socket = std::move(grant->xsk);
  xc.xsk.umem = std::move(grant->xsk_umem);
  xc.xsk.geometry = smt::link::XskGeometry{x.frame_size,      x.frame_count, x.fill_size,
                                           x.completion_size, x.rx_size,     x.tx_size};
  xc.xsk.ifindex = static_cast<int>(x.ifindex);
  xc.xsk.queue = x.queue;
  xc.xsk.zerocopy = grant->xsk_zerocopy;
  xc.protocol = rc.protocol;
  xc.local_v4 = rc.local_v4;
  xc.local_v6 = rc.local_v6;
  xc.mtu = rc.mtu;
  xc.fallback = raw->get();
  auto xsk = smt::link::XskLink::open(std::move(xc));
  if (!xsk.ok()) {
    // Give the AF_XDP socket back (smtd then installs this connection's
    // sessions for the raw socket) and carry on over smtd's raw socket.
    auto back = client.datapath(families, 0, /*raw_only=*/true);
    if (!back.ok()) return back.error();
    say_no_af_xdp("mapping the AF_XDP socket smtd handed over failed: " +
                  xsk.error().message);
    out.fds.erase(out.fds.begin());  // the AF_XDP socket, closed with `xsk`
    out.link = std::move(*raw);
    return out;
  }
  out.fallback = std::move(*raw);
  out.link = std::move(*xsk);
  out.queue = x.queue;
  return out;
}

}  // namespace

smt_sock* smt_socket_raw(const struct smt_socket_opts* opts) {
  const smt_socket_opts none{};
  if (opts == nullptr) opts = &none;
  if ((opts->families & ~unsigned(SMT_FAMILY_V4 | SMT_FAMILY_V6)) != 0) {
    fail(EINVAL, "smt_socket_raw: unknown family bits");
    return nullptr;
  }
  smt::link::RawLinkConfig rc;
  if (opts->protocol != 0) rc.protocol = opts->protocol;
  const unsigned fam = opts->families == 0 ? (SMT_FAMILY_V4 | SMT_FAMILY_V6) : opts->families;
  rc.ipv4 = (fam & SMT_FAMILY_V4) != 0;
  rc.ipv6 = (fam & SMT_FAMILY_V6) != 0;
  if (opts->local_v4 != nullptr) {
    auto a = smt::lib::PeerAddr::parse(opts->local_v4, 1);
    if (!a.ok() || !smt::link::is_v4_mapped(a->addr)) {
      fail(EINVAL, std::string("smt_socket_raw: not an IPv4 address: ") + opts->local_v4);
      return nullptr;
    }
    rc.local_v4 = a->addr;
    rc.ipv4 = true;
  }
  if (opts->local_v6 != nullptr) {
    auto a = smt::lib::PeerAddr::parse(opts->local_v6, 1);
    if (!a.ok() || smt::link::is_v4_mapped(a->addr)) {
      fail(EINVAL, std::string("smt_socket_raw: not an IPv6 address: ") + opts->local_v6);
      return nullptr;
    }
    rc.local_v6 = a->addr;
    rc.ipv6 = true;
  }
  if (opts->device != nullptr) rc.device = opts->device;
  rc.mtu = opts->mtu;
  smt::lib::SocketConfig config;
  if (opts->smtd_socket == nullptr) {
    config.smtd_socket = smt::smtd::default_socket_path();
  } else {
    config.smtd_socket = opts->smtd_socket;  // "": no smtd
  }
  config.open_timeout_ms = static_cast<int>(std::min<uint32_t>(opts->open_timeout_ms, INT32_MAX));
  if (config.smtd_socket.empty()) {
    auto link = smt::link::RawLink::open(rc);
    if (!link.ok()) {
      fail(link.error());
      return nullptr;
    }
    smt::link::Link* raw = link->get();
    return make_socket(raw, &smt::MonotonicClock::instance(), config, std::move(*link));
  }

  // With smtd, smtd makes the sockets (CONTRACT §7): no CAP_NET_RAW needed.
  auto client = smt::smtd::SmtdClient::connect(config.smtd_socket);
  if (!client.ok()) {
    fail(client.error());
    return nullptr;
  }
  auto dp = smtd_datapath_link(*client, rc, fam, *opts);
  if (!dp.ok()) {
    // An smtd that hands out no sockets (older, or its BPF guards failed to
    // load): a process that may open raw sockets itself still works.
    auto own = smt::link::RawLink::open(rc);
    if (!own.ok()) {
      fail(dp.error());
      return nullptr;
    }
    static std::once_flag said;
    std::call_once(said, [&] {
      std::fprintf(stderr,
                   "smt: smtd gave no datapath socket (%s); using this process's own raw "
                   "sockets\n",
                   dp.error().message.c_str());
    });
    dp = SmtdDatapath{std::move(*own), nullptr, {}, 0};
  }
  smt::link::Link* link = dp->link.get();
  return make_socket(link, &smt::MonotonicClock::instance(), config, std::move(dp->link),
                     std::move(*client), std::move(dp->fds), dp->queue, std::move(dp->fallback));
}

int smt_bind(smt_sock* sock, uint16_t port) {
  if (!usable(sock)) return -1;
  Call c(*sock);
  smt_sock& s = *sock;
  if (!s.smtd) {
    if (port == 0) return fail(EINVAL, "smt_bind: port 0 (ephemeral ports need smtd)");
    if (s.port != 0) return fail(EINVAL, "smt_bind: socket already bound");
    s.port = port;
    return 0;
  }
  while (s.smtd_busy) s.smtd_cv.wait(c.lock());
  if (s.port != 0) return fail(EINVAL, "smt_bind: socket already bound");
  auto got = s.smtd->lease(port);
  if (!got.ok()) return fail(got.error().code, "smt_bind: " + got.error().message);
  s.port = *got;
  return 0;
}

int smt_session_open_test(smt_sock* sock, const struct sockaddr* peer, socklen_t peer_len,
                          const struct smt_test_secrets* secrets) {
  if (!usable(sock)) return -1;
  if (secrets == nullptr) return fail(EINVAL, "smt_session_open_test: null secrets");
  auto pa = smt::lib::PeerAddr::from_sockaddr(peer, peer_len);
  if (!pa.ok()) return fail(pa.error());
  Call c(*sock);
  if (sock->port == 0) return fail(EINVAL, "smt_session_open_test: bind the socket first");
  smt::SessionParams p;
  p.peer_addr = pa->addr;
  p.peer_port = pa->port;
  p.local_addr = sock->link->local_addr(pa->addr);
  if (p.local_addr == smt::link::Addr{}) {
    return fail(ENETUNREACH, "smt_session_open_test: no local address towards " + pa->to_string());
  }
  if (smt::link::is_v4_mapped(p.local_addr) != smt::link::is_v4_mapped(p.peer_addr)) {
    return fail(EAFNOSUPPORT, "smt_session_open_test: the link does not carry this address family");
  }
  p.local_port = sock->port;
  p.initiator = secrets->initiator != 0;
  p.serial = secrets->serial;
  p.initiator_secret.assign(secrets->initiator_secret);
  p.responder_secret.assign(secrets->responder_secret);
  p.initiator_ctl.assign(secrets->initiator_ctl);
  p.responder_ctl.assign(secrets->responder_ctl);
  p.peer_identity = secrets->peer_identity != nullptr ? secrets->peer_identity : "";
  auto sid = sock->engine->add_session(p);
  if (!sid.ok()) return fail(sid.error());
  sock->peers[*sid] = *pa;
  return 0;
}

namespace {

// The session with `pa`, opened through smtd first if there is none
// (CONTRACT §6). The OPEN wait runs with the socket's lock released and as
// if outside libsmt, so the helper and other threads keep the engine going.
smt::Result<smt::SessionId> session_or_open(smt_sock& s, Call& c, const smt::lib::PeerAddr& pa) {
  // A PEER_CLOSED that arrived while the socket was idle must close the
  // session before a new request is queued on it (the caller's progress
  // skips its own smtd poll, so this costs no extra system call).
  if (s.smtd && !s.smtd_busy) s.smtd->poll();
  if (auto sid = s.engine->find_session(pa.addr, pa.port)) return *sid;
  if (!s.smtd) {
    return smt::make_error(ENOTCONN, "no session with " + pa.to_string() +
                                         " and no smtd to open one (socket made without smtd)");
  }
  while (s.smtd_busy) s.smtd_cv.wait(c.lock());
  if (s.port == 0) {
    auto got = s.smtd->lease(0);  // an unbound socket gets an ephemeral port, like UDP
    if (!got.ok()) return got.error();
    s.port = *got;
  }
  s.smtd->poll();  // the peer may have opened one to us meanwhile
  if (auto sid = s.engine->find_session(pa.addr, pa.port)) return *sid;
  s.smtd_busy = true;
  s.left_call();
  c.lock().unlock();
  auto held = s.smtd->open_wait(pa);
  c.lock().lock();
  ++s.active;
  s.smtd_busy = false;
  s.smtd_cv.notify_all();
  if (!held.ok()) return held.error();
  return s.smtd->install(*held);
}

smt::Result<smt::SessionId> session_for(smt_sock& s, const smt::lib::PeerAddr& pa) {
  auto sid = s.engine->find_session(pa.addr, pa.port);
  if (!sid) {
    return smt::make_error(ENOTCONN, "no session with " + pa.to_string() +
                                         " (smt_send_request opens one through smtd)");
  }
  return *sid;
}

smt::Result<std::vector<uint8_t>> copy_in(const void* buf, size_t len) {
  if (len != 0 && buf == nullptr) return smt::make_error(EFAULT, "null buffer with a length");
  const auto* p = static_cast<const uint8_t*>(buf);
  return std::vector<uint8_t>(p, p + len);
}

}  // namespace

int smt_send_request(smt_sock* sock, const struct sockaddr* peer, socklen_t peer_len,
                     const void* buf, size_t len, uint64_t* id) {
  if (!usable(sock)) return -1;
  if (id == nullptr) return fail(EINVAL, "smt_send_request: null id");
  auto pa = smt::lib::PeerAddr::from_sockaddr(peer, peer_len);
  if (!pa.ok()) return fail(pa.error());
  auto data = copy_in(buf, len);
  if (!data.ok()) return fail(data.error());
  Call c(*sock);
  auto sid = session_or_open(*sock, c, *pa);
  if (!sid.ok()) return fail(sid.error());
  auto rid = sock->engine->send_request(*sid, std::move(*data));
  if (!rid.ok()) return fail(rid.error());
  sock->progress(thread_token(), /*poll_smtd=*/false);  // session_or_open just did
  ++sock->counters.requests_sent;
  *id = *rid;
  return 0;
}

int smt_reply(smt_sock* sock, const struct sockaddr* peer, socklen_t peer_len, uint64_t id,
              const void* buf, size_t len) {
  if (!usable(sock)) return -1;
  auto pa = smt::lib::PeerAddr::from_sockaddr(peer, peer_len);
  if (!pa.ok()) return fail(pa.error());
  auto data = copy_in(buf, len);
  if (!data.ok()) return fail(data.error());
  Call c(*sock);
  auto sid = session_for(*sock, *pa);
  if (!sid.ok()) return fail(sid.error());
  auto st = sock->engine->send_reply(*sid, id, std::move(*data));
  if (!st.ok()) return fail(st.error());
  sock->progress(thread_token());
  ++sock->counters.replies_sent;
  return 0;
}

int smt_abort(smt_sock* sock, const struct sockaddr* peer, socklen_t peer_len, uint64_t id) {
  if (!usable(sock)) return -1;
  auto pa = smt::lib::PeerAddr::from_sockaddr(peer, peer_len);
  if (!pa.ok()) return fail(pa.error());
  Call c(*sock);
  auto sid = session_for(*sock, *pa);
  if (!sid.ok()) return fail(sid.error());
  auto st = sock->engine->abort(*sid, id);
  // A response (or failure) the engine already delivered is still ours to
  // discard: after abort no message about the RPC follows.
  const size_t before = sock->queue.size();
  std::erase_if(sock->queue, [&](const QueuedEvent& q) {
    return q.ev.session == *sid && q.ev.id == id && q.ev.kind != smt::Event::Kind::kRequest;
  });
  if (!st.ok() && sock->queue.size() == before) return fail(st.error());
  sock->progress(thread_token());
  return 0;
}

int smt_recv(smt_sock* sock, int flags, uint64_t id, struct smt_msg* out, int timeout_ms) {
  if (!usable(sock)) return -1;
  if (out == nullptr) return fail(EINVAL, "smt_recv: null message");
  *out = smt_msg{};
  if ((flags & ~kAllRecvFlags) != 0) return fail(EINVAL, "smt_recv: unknown flags");
  const bool block = (flags & SMT_RECV_NONBLOCK) == 0;
  const uint64_t token = thread_token();
  Call c(*sock);
  smt_sock& s = *sock;
  const uint64_t start = s.clock->now_ns();
  const uint64_t end = timeout_ms < 0 ? UINT64_MAX : start + uint64_t(timeout_ms) * 1'000'000;
  Waiter w;
  w.flags = flags;
  w.id = id;
  w.token = token;
  for (;;) {
    s.progress(token);
    if (auto e = s.take(flags, id, token)) {
      out->id = e->ev.id;
      out->error = e->ev.error;
      switch (e->ev.kind) {
        case smt::Event::Kind::kRequest:
          out->kind = SMT_MSG_REQUEST;
          ++s.counters.requests_received;
          break;
        case smt::Event::Kind::kResponse:
          out->kind = SMT_MSG_RESPONSE;
          ++s.counters.responses_received;
          break;
        case smt::Event::Kind::kError:
          out->kind = SMT_MSG_ERROR;
          ++s.counters.rpcs_failed;
          break;
      }
      if (auto it = s.peers.find(e->ev.session); it != s.peers.end()) {
        it->second.to_sockaddr(&out->peer, &out->peer_len);
      }
      auto* owner = new std::vector<uint8_t>(std::move(e->ev.data));
      out->owner_ = owner;
      out->len = owner->size();
      out->data = owner->empty() ? nullptr : owner->data();
      return 0;
    }
    if (!block) return fail(EAGAIN, "no message ready");
    if (s.clock->is_virtual()) {
      return fail(EINVAL, "smt_recv: a blocking receive on a virtual clock would never wake");
    }
    const uint64_t now = s.clock->now_ns();
    if (now >= end) return fail(ETIMEDOUT, "smt_recv: timed out");
    w.fd = thread_wake_fd();
    if (w.fd < 0) return fail(errno, std::string("smt_recv: eventfd: ") + strerror(errno));
    const uint64_t wake = std::min(s.next_deadline(), end);
    w.signalled = false;
    s.waiters.push_back(&w);
    s.sync_fds();
    // smtd's fd too: a PEER_CLOSED or a dropped connection is handled at once.
    const int sfd = s.smtd && !s.smtd_busy ? s.smtd->fd() : -1;
    c.lock().unlock();

    pollfd fds[3] = {{s.link->fd(), POLLIN, 0}, {w.fd, POLLIN, 0}, {sfd, POLLIN, 0}};
    timespec ts{};
    timespec* tsp = nullptr;
    if (wake != UINT64_MAX) {
      const uint64_t d = wake > now ? wake - now : 0;
      ts.tv_sec = static_cast<time_t>(d / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(d % 1'000'000'000);
      tsp = &ts;
    }
    const int r = ppoll(fds, sfd >= 0 ? 3 : 2, tsp, nullptr);
    const int poll_errno = errno;

    c.lock().lock();
    // Something other than a notification (which raises the count) may wait
    // there: the next progress() reads the socket.
    if (r > 0 && sfd >= 0 && fds[2].revents != 0) s.smtd_readable = true;
    std::erase(s.waiters, &w);
    // Signals are written under the lock only to listed waiters, so after
    // leaving the list one read empties the fd for the next wait.
    if (w.signalled) drain_eventfd(w.fd);
    if (r < 0 && poll_errno != EINTR) {
      return fail(poll_errno, std::string("smt_recv: poll: ") + strerror(poll_errno));
    }
  }
}

void smt_msg_release(struct smt_msg* msg) {
  if (msg == nullptr) return;
  delete static_cast<std::vector<uint8_t>*>(msg->owner_);
  msg->owner_ = nullptr;
  msg->data = nullptr;
  msg->len = 0;
}

int smt_fd(smt_sock* sock) {
  if (!usable(sock)) return -1;
  Call c(*sock);
  smt_sock& s = *sock;
  if (s.epoll.valid()) return s.epoll.get();
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  UniqueFd ready(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  UniqueFd timer(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!ep.valid() || !ready.valid() || !timer.valid()) {
    return fail(errno, std::string("smt_fd: ") + strerror(errno));
  }
  for (int fd : {s.link->fd(), ready.get(), timer.get()}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      return fail(errno, std::string("smt_fd: epoll_ctl: ") + strerror(errno));
    }
  }
  s.epoll = std::move(ep);
  s.ready = std::move(ready);
  s.timer = std::move(timer);
  s.ready_set = false;
  s.timer_armed = UINT64_MAX;
  return s.epoll.get();  // sync_fds() runs as the call ends
}

int smt_peer_identity(smt_sock* sock, const struct sockaddr* peer, socklen_t peer_len, char* buf,
                      size_t len) {
  if (!usable(sock)) return -1;
  auto pa = smt::lib::PeerAddr::from_sockaddr(peer, peer_len);
  if (!pa.ok()) return fail(pa.error());
  Call c(*sock);
  auto sid = session_for(*sock, *pa);
  if (!sid.ok()) return fail(sid.error());
  const std::string* ident = sock->engine->peer_identity(*sid);
  const std::string empty;
  if (ident == nullptr) ident = &empty;
  if (buf == nullptr || len < ident->size() + 1) {
    return fail(ERANGE, "smt_peer_identity: buffer too small");
  }
  std::memcpy(buf, ident->data(), ident->size());
  buf[ident->size()] = '\0';
  return static_cast<int>(ident->size());
}

int smt_local_addr(smt_sock* sock, const struct sockaddr* peer, socklen_t peer_len,
                   struct sockaddr_storage* out, socklen_t* out_len) {
  if (!usable(sock)) return -1;
  if (out == nullptr || out_len == nullptr) return fail(EINVAL, "smt_local_addr: null output");
  auto pa = smt::lib::PeerAddr::from_sockaddr(peer, peer_len);
  if (!pa.ok()) return fail(pa.error());
  Call c(*sock);
  if (sock->port == 0) return fail(EINVAL, "smt_local_addr: socket not bound");
  smt::lib::PeerAddr local{sock->link->local_addr(pa->addr), sock->port};
  if (local.addr == smt::link::Addr{} ||
      smt::link::is_v4_mapped(local.addr) != smt::link::is_v4_mapped(pa->addr)) {
    return fail(ENETUNREACH, "smt_local_addr: no local address towards " + pa->to_string());
  }
  local.to_sockaddr(out, out_len);
  return 0;
}

int smt_stats(smt_sock* sock, struct smt_socket_stats* out) {
  if (!usable(sock)) return -1;
  if (out == nullptr) return fail(EINVAL, "smt_stats: null output");
  Call c(*sock);
  smt_sock& s = *sock;
  *out = s.counters;
  const smt::EngineStats& es = s.engine->stats();
  out->data_packets_sent = es.data_packets_sent;
  out->data_packets_resent = es.data_packets_resent;
  out->packets_received = es.packets_received;
  out->records_sealed = es.records_sealed;
  out->drops = es.drops.total();
  uint64_t queued = 0;
  for (const auto& q : s.queue) queued += q.ev.data.size();
  out->memory_in_use = s.engine->memory_in_use() + queued;
  out->messages_queued = s.queue.size();
  out->rpcs_active = s.engine->rpc_count();
  const smt::link::LinkStats ls = s.link->stats();
  out->link_tx_packets = ls.tx_packets;
  out->link_tx_data_packets = ls.tx_data_packets;
  out->link_rx_packets = ls.rx_packets;
  if (s.smtd) {
    const smt::lib::SmtdCounters& sc = s.smtd->counters();
    out->sessions_opened = sc.sessions_opened;
    out->sessions_incoming = sc.sessions_incoming;
    out->sessions_closed = sc.sessions_closed;
    out->smtd_reconnects = sc.reconnects;
    out->sessions_readopted = sc.readopted;
    out->smtd_connected = s.smtd->connected() ? 1 : 0;
    out->smtd_socket_reads = sc.socket_reads;
  }
  return 0;
}

int smt_readopt(smt_sock* sock) {
  if (!usable(sock)) return -1;
  Call c(*sock);
  smt_sock& s = *sock;
  if (!s.smtd) return fail(EINVAL, "smt_readopt: socket made without smtd");
  while (s.smtd_busy) s.smtd_cv.wait(c.lock());
  auto n = s.smtd->readopt();
  if (!n.ok()) return fail(n.error().code, "smt_readopt: " + n.error().message);
  return *n;
}

int smt_close(smt_sock* sock) {
  if (!usable(sock)) return -1;
  {
    std::lock_guard<std::mutex> lk(sock->mu);
    sock->stop = true;
  }
  sock->helper_cv.notify_all();
  if (sock->helper.joinable()) sock->helper.join();
  delete sock;
  return 0;
}

const char* smt_last_error(void) { return t_last_error.c_str(); }
