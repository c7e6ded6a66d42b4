#include "stream_stack.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <thread>

#include "bench_report.h"
#include "bench_server_usage.h"
#include "stream_conn.h"

namespace smt::bench {
namespace {

using Clock = std::chrono::steady_clock;

Error sys_error(const std::string& what) {
  return make_error(errno, what + ": " + std::strerror(errno));
}

// ---- server ----------------------------------------------------------------

struct ServerShared {
  const ServerOptions& o;
  SSL_CTX* tls;  // null for plain TCP
  ServerAccounting accounting;
  const std::atomic<bool>& stop;
};

Status handle_request(ServerShared& s, StreamConn& c, std::span<const uint8_t> msg,
                      std::vector<uint8_t>& filler) {
  auto h = parse_request_header(msg);
  if (!h.ok()) return h.error();
  s.accounting.note_request();
  if (h->op == Op::kCpu) return c.send_frame(s.accounting.usage_reply());
  if (filler.size() < h->reply_len) filler.resize(h->reply_len, 0x5a);
  return c.send_frame({filler.data(), h->reply_len});
}

// Bytes one connection may read per wake-up before the others get a turn.
constexpr size_t kReadBudget = 256 * 1024;

void server_thread(ServerShared& s, int index) {
  const auto& o = s.o;
  UniqueFd lfd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int one = 1;
  setsockopt(lfd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(lfd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(o.common.port);
  if (!lfd || bind(lfd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      listen(lfd.get(), 256) != 0) {
    std::fprintf(stderr, "smt-bench server[%d]: listen: %s\n", index, std::strerror(errno));
    return;
  }
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the listener
  epoll_ctl(ep.get(), EPOLL_CTL_ADD, lfd.get(), &ev);
  std::vector<std::unique_ptr<StreamConn>> conns;
  std::vector<uint8_t> filler;
  epoll_event events[64];
  const int wait_ms = o.common.wait == Wait::kPoll ? 0 : 100;
  auto drop = [&](StreamConn* c, const Error& e) {
    if (e.code != ECONNRESET) std::fprintf(stderr, "smt-bench server: %s\n", e.message.c_str());
    epoll_ctl(ep.get(), EPOLL_CTL_DEL, c->fd(), nullptr);
    std::erase_if(conns, [c](const auto& p) { return p.get() == c; });
  };
  while (!s.stop.load(std::memory_order_relaxed)) {
    const int n = epoll_wait(ep.get(), events, 64, wait_ms);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        UniqueFd cfd(accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!cfd) continue;
        Ssl ssl;
        if (auto st = tune_socket(cfd.get(), false); !st.ok()) continue;
        if (s.tls != nullptr) {
          auto r = tls_handshake(s.tls, cfd.get(), true, "", o.common.timeout_ms);
          if (!r.ok()) {
            std::fprintf(stderr, "smt-bench server: %s\n", r.error().message.c_str());
            continue;
          }
          ssl = std::move(*r);
        }
        if (!tune_socket(cfd.get(), true).ok()) continue;
        const int fd = cfd.get();
        conns.push_back(std::make_unique<StreamConn>(std::move(cfd), std::move(ssl)));
        epoll_event cev{};
        // Level-triggered input: receive() stops after its budget and the
        // next epoll_wait comes back for the rest (TLS holds no read-ahead).
        cev.events = EPOLLIN | EPOLLRDHUP;
        cev.data.ptr = conns.back().get();
        epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &cev);
        continue;
      }
      auto* c = static_cast<StreamConn*>(events[i].data.ptr);
      const bool was_pending = c->has_pending_output();
      Status st = c->flush();
      if (st.ok()) {
        st = c->receive(
            [&](std::span<const uint8_t> msg) { return handle_request(s, *c, msg, filler); },
            kReadBudget);
      }
      if (!st.ok()) {
        drop(c, st.error());
        continue;
      }
      // Ask for EPOLLOUT only while replies wait for room in the socket.
      if (c->has_pending_output() != was_pending) {
        epoll_event mev{};
        mev.events = EPOLLIN | EPOLLRDHUP | (c->has_pending_output() ? EPOLLOUT : 0u);
        mev.data.ptr = c;
        epoll_ctl(ep.get(), EPOLL_CTL_MOD, c->fd(), &mev);
      }
    }
  }
}

// ---- client ----------------------------------------------------------------

enum class Kind : uint8_t { kMeasured, kBackground, kControl };
struct Pending {
  Clock::time_point t0;
  Kind kind;
};

class StreamClient {
 public:
  explicit StreamClient(const ClientOptions& o) : o_(o) {}

  Status connect_all(uint32_t n) {
    auto sa = ipv4_endpoint(o_.host, o_.common.port);
    if (!sa.ok()) return sa.error();
    if (o_.common.stack == Stack::kTls) {
      auto ctx = tls_client_ctx({o_.ca, o_.client_cert, o_.client_key});
      if (!ctx.ok()) return ctx.error();
      tls_ = std::move(*ctx);
    }
    ep_.reset(epoll_create1(EPOLL_CLOEXEC));
    if (!ep_) return sys_error("epoll_create1");
    for (uint32_t i = 0; i < n; ++i) {
      UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!fd) return sys_error("socket");
      if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&*sa), sizeof *sa) != 0) {
        return sys_error("connect " + o_.host);
      }
      if (auto st = tune_socket(fd.get(), false); !st.ok()) return st;
      Ssl ssl;
      if (tls_) {
        auto r = tls_handshake(tls_.get(), fd.get(), false, o_.tls_name, o_.common.timeout_ms);
        if (!r.ok()) return r.error();
        ssl = std::move(*r);
      }
      if (auto st = tune_socket(fd.get(), true); !st.ok()) return st;
      const int raw = fd.get();
      conns_.push_back(std::make_unique<StreamConn>(std::move(fd), std::move(ssl)));
      pending_.emplace_back();
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
      ev.data.u32 = i;
      if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, raw, &ev) != 0) return sys_error("epoll_ctl");
    }
    return {};
  }

  /// Sends `msg` without copying it when large: it must outlive this client.
  Status send(uint32_t conn, std::span<const uint8_t> msg, Kind kind) {
    pending_[conn].push_back({Clock::now(), kind});
    return conns_[conn]->send_frame_borrowed(msg);
  }

  /// Waits for events (or spins once in poll mode) and calls on_reply(conn,
  /// pending, payload) for each response. ETIMEDOUT after timeout_ms idle.
  template <typename F>
  Status poll_once(F&& on_reply) {
    epoll_event events[64];
    const int wait_ms = o_.common.wait == Wait::kPoll ? 0 : o_.common.timeout_ms;
    const int n = epoll_wait(ep_.get(), events, 64, wait_ms);
    if (n < 0 && errno != EINTR) return sys_error("epoll_wait");
    if (n > 0) {
      idle_polls_ = 0;
    } else if (o_.common.wait == Wait::kBlock ||
               (++idle_polls_ % 4096 == 0 &&
                Clock::now() - last_event_ > std::chrono::milliseconds(o_.common.timeout_ms))) {
      return make_error(ETIMEDOUT, "no response within the timeout");
    }
    if (n > 0 && o_.common.wait == Wait::kPoll) last_event_ = Clock::now();
    if (n == 0 && idle_polls_ == 1) last_event_ = Clock::now();
    for (int i = 0; i < n; ++i) {
      const uint32_t k = events[i].data.u32;
      if (auto st = conns_[k]->flush(); !st.ok()) return st;
      auto st = conns_[k]->receive([&](std::span<const uint8_t> msg) -> Status {
        if (pending_[k].empty()) return make_error(EPROTO, "a response nobody asked for");
        const Pending p = pending_[k].front();
        pending_[k].pop_front();
        return on_reply(k, p, msg);
      });
      if (!st.ok()) return st;
    }
    return {};
  }

  /// The connection with the fewest responses outstanding, as a pool hands
  /// out an idle connection (ties: the one after the last chosen).
  uint32_t least_loaded() {
    uint32_t best = next_;
    for (uint32_t i = 0; i < conns_.size(); ++i) {
      const uint32_t k = (next_ + i) % conns_.size();
      if (pending_[k].size() < pending_[best].size()) best = k;
    }
    next_ = (best + 1) % conns_.size();
    return best;
  }

 private:
  const ClientOptions& o_;
  SslCtx tls_;
  UniqueFd ep_;
  std::vector<std::unique_ptr<StreamConn>> conns_;
  std::vector<std::deque<Pending>> pending_;
  uint32_t next_ = 0;
  uint64_t idle_polls_ = 0;     // poll mode: empty polls in a row
  Clock::time_point last_event_;  // poll mode: when the idle streak began
};

}  // namespace

Status run_stream_server(const ServerOptions& o, const std::atomic<bool>& stop) {
  SslCtx tls;
  if (o.common.stack == Stack::kTls) {
    auto ctx = tls_server_ctx({o.cert, o.key, o.tickets, o.client_ca});
    if (!ctx.ok()) return ctx.error();
    tls = std::move(*ctx);
  }
  const int threads = o.threads > 0 ? o.threads : std::popcount(allowed_cpus_mask());
  ServerShared shared{o, tls.get(), ServerAccounting(uint32_t(threads)), stop};
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) workers.emplace_back([&shared, i] { server_thread(shared, i); });
  std::printf("smt-bench server: ready, %s on port %u, %d threads, %s waits, vCPUs %s\n",
              stack_name(o.common.stack), o.common.port, threads, wait_name(o.common.wait),
              cpu_list(allowed_cpus_mask()).c_str());
  std::fflush(stdout);
  for (auto& t : workers) t.join();
  return {};
}

Result<RunResult> run_stream_client(const ClientOptions& o) {
  // The requests outlive the client: it sends them from this memory.
  const uint32_t want_reply = reply_size(o);
  const auto req = make_request(Op::kEcho, o.size, want_reply);
  const auto bg_req = make_request(Op::kEcho, o.background_size, 64);
  const auto cpu_req = make_request(Op::kCpu, kRequestHeaderLen, 0);
  StreamClient c(o);
  const uint32_t nconn = o.connections > 0 ? o.connections : std::max<uint32_t>(o.concurrency, 1);
  if (auto st = c.connect_all(nconn); !st.ok()) return st.error();
  RunResult r;
  r.connections = nconn;
  r.datapath = "kernel";

  uint64_t total = o.warmup + o.count;  // re-set when measuring starts
  uint64_t issued = 0, done = 0, bg_outstanding = 0;
  // One Op::kCpu round trip on connection 0 (after whatever is queued there).
  auto server_usage = [&]() -> Result<ServerUsage> {
    if (auto st = c.send(0, cpu_req, Kind::kControl); !st.ok()) return st.error();
    std::optional<Result<ServerUsage>> got;
    while (!got) {
      auto st = c.poll_once([&](uint32_t, const Pending& p, std::span<const uint8_t> msg) {
        if (p.kind == Kind::kControl) got = parse_usage(msg);
        if (p.kind == Kind::kBackground) --bg_outstanding;
        return Status{};
      });
      if (!st.ok()) return st.error();
    }
    return *got;
  };
  Clock::time_point t_start, t_end;
  uint64_t cpu_start = 0, cpu_end = 0;
  bool measuring = false;
  auto start_measuring = [&]() -> Status {
    auto u = server_usage();
    if (!u.ok()) return u.error();
    r.server_before = *u;
    cpu_start = process_cpu_us();
    t_start = Clock::now();
    measuring = true;
    total = done + o.count;
    return {};
  };
  if (o.warmup == 0) {
    if (auto st = start_measuring(); !st.ok()) return st.error();
  }
  Pacer pacer(o.background_mb_per_s);
  auto issue_bg = [&]() -> Status {
    while (o.background && bg_outstanding < o.background_outstanding && done < total &&
           pacer.allow()) {
      if (auto st = c.send(0, bg_req, Kind::kBackground); !st.ok()) return st;
      ++bg_outstanding;
      pacer.sent(bg_req.size());
    }
    return {};
  };
  if (auto st = issue_bg(); !st.ok()) return st.error();
  for (uint32_t i = 0; i < std::max<uint32_t>(o.concurrency, 1) && issued < total; ++i) {
    if (auto st = c.send(c.least_loaded(), req, Kind::kMeasured); !st.ok()) return st.error();
    ++issued;
  }
  bool want_start = false;
  while (done < total || bg_outstanding > 0) {
    auto st = c.poll_once([&](uint32_t, const Pending& p, std::span<const uint8_t> msg) -> Status {
      if (p.kind == Kind::kBackground) {
        --bg_outstanding;
        if (measuring) ++r.background_messages;
        return issue_bg();
      }
      if (p.kind != Kind::kMeasured) return {};
      const auto now = Clock::now();
      ++done;
      if (done == total) {
        t_end = now;
        cpu_end = process_cpu_us();
      }
      if (msg.size() != want_reply) {
        ++r.failures;
      } else if (measuring) {
        r.rtt_us.push_back(std::chrono::duration<double, std::micro>(now - p.t0).count());
        r.client_ran_on |= current_cpu_bit();
      }
      if (done == o.warmup && !measuring) want_start = true;
      if (auto s2 = issue_bg(); !s2.ok()) return s2;  // a paced stream may be due
      if (issued < total && !want_start) {
        ++issued;
        return c.send(c.least_loaded(), req, Kind::kMeasured);
      }
      return {};
    });
    if (!st.ok()) return st.error();
    // The warm-up ends with nothing outstanding but the usage request, so
    // the server's baseline is not taken mid-burst.
    if (want_start && done == issued) {
      want_start = false;
      if (auto s2 = start_measuring(); !s2.ok()) return s2.error();
      if (auto s2 = issue_bg(); !s2.ok()) return s2.error();
      for (uint32_t i = 0; i < std::max<uint32_t>(o.concurrency, 1) && issued < total; ++i) {
        if (auto s3 = c.send(c.least_loaded(), req, Kind::kMeasured); !s3.ok()) return s3.error();
        ++issued;
      }
    }
  }
  r.seconds = std::chrono::duration<double>(t_end - t_start).count();
  r.client_cpu_us = cpu_end - cpu_start;
  auto u = server_usage();
  if (!u.ok()) return u.error();
  r.server_after = *u;
  return r;
}

}  // namespace smt::bench
