#include "smt_stack.h"

#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>
#include <unordered_map>

#include "bench_report.h"
#include "bench_server_usage.h"
#include "lib/smt.hpp"

namespace smt::bench {
namespace {

using Clock = std::chrono::steady_clock;

Result<Socket> open_socket(const CommonOptions& c) {
  smt_socket_opts opts{};
  opts.smtd_socket = c.smtd.c_str();
  opts.datapath = c.datapath == "raw" ? SMT_DATAPATH_RAW : SMT_DATAPATH_AUTO;
  opts.families = SMT_FAMILY_V4;
  return Socket::raw(opts);
}

// One receive: blocking with a timeout, or a non-blocking call in a spin.
Result<Message> recv_one(Socket& s, int flags, const CommonOptions& c, int block_ms) {
  if (c.wait == Wait::kBlock) return s.recv(flags, 0, block_ms);
  return s.recv(flags | SMT_RECV_NONBLOCK, 0, 0);
}

void server_worker(Socket& sock, ServerAccounting& acct, const ServerOptions& o,
                   const std::atomic<bool>& stop) {
  std::vector<uint8_t> filler;
  while (!stop.load(std::memory_order_relaxed)) {
    auto m = recv_one(sock, SMT_RECV_REQUEST, o.common, 100);
    if (!m.ok()) {
      if (m.error().code != EAGAIN && m.error().code != ETIMEDOUT) {
        std::fprintf(stderr, "smt-bench server: recv: %s\n", m.error().message.c_str());
      }
      continue;
    }
    auto peer = m->peer();
    auto h = parse_request_header(m->data());
    if (!peer.ok() || !h.ok()) {
      std::fprintf(stderr, "smt-bench server: bad request: %s\n",
                   (!peer.ok() ? peer.error() : h.error()).message.c_str());
      (void)(peer.ok() ? sock.abort(*peer, m->id()) : Status{});
      continue;
    }
    acct.note_request();
    Status st;
    if (h->op == Op::kCpu) {
      st = sock.reply(*peer, m->id(), acct.usage_reply());
    } else {
      if (filler.size() < h->reply_len) filler.resize(h->reply_len, 0x5a);
      st = sock.reply(*peer, m->id(), {filler.data(), h->reply_len});
    }
    if (!st.ok()) std::fprintf(stderr, "smt-bench server: reply: %s\n", st.error().message.c_str());
  }
}

enum class Kind : uint8_t { kMeasured, kBackground, kControl };
struct Pending {
  Clock::time_point t0;
  Kind kind;
};

}  // namespace

Status run_smt_server(const ServerOptions& o, const std::atomic<bool>& stop) {
  auto sock = open_socket(o.common);
  if (!sock.ok()) return sock.error();
  if (auto st = sock->bind(o.common.port); !st.ok()) return st;
  const int threads = o.threads > 0 ? o.threads : std::popcount(allowed_cpus_mask());
  ServerAccounting acct{static_cast<uint32_t>(threads)};
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&] { server_worker(*sock, acct, o, stop); });
  }
  std::printf("smt-bench server: ready, smt (datapath %s) on port %u, %d threads, %s waits, "
              "vCPUs %s\n",
              o.common.datapath.c_str(), o.common.port, threads, wait_name(o.common.wait),
              cpu_list(allowed_cpus_mask()).c_str());
  std::fflush(stdout);
  for (auto& t : workers) t.join();
  return {};
}

Result<RunResult> run_smt_client(const ClientOptions& o) {
  auto peer = PeerAddr::parse(o.host, o.common.port);
  if (!peer.ok()) return peer.error();
  auto sock = open_socket(o.common);
  if (!sock.ok()) return sock.error();
  RunResult r;
  r.datapath = o.common.datapath;

  std::unordered_map<uint64_t, Pending> pending;
  const uint32_t want_reply = reply_size(o);
  const auto req = make_request(Op::kEcho, o.size, want_reply);
  const auto bg_req = make_request(Op::kEcho, o.background_size, 64);
  const auto cpu_req = make_request(Op::kCpu, kRequestHeaderLen, 0);
  uint64_t total = o.warmup + o.count;  // re-set when measuring starts
  uint64_t issued = 0, done = 0, bg_outstanding = 0;
  uint64_t deferred = 0;  // sends refused with EAGAIN (replay window full), retried later

  auto send = [&](std::span<const uint8_t> msg, Kind kind) -> Status {
    auto id = sock->send_request(*peer, msg);
    if (!id.ok()) return id.error();
    pending[*id] = Pending{Clock::now(), kind};
    return {};
  };
  // Waits for one response; calls on(pending, message).
  auto wait_one = [&](auto&& on) -> Status {
    const auto deadline = Clock::now() + std::chrono::milliseconds(o.common.timeout_ms);
    for (;;) {
      auto m = recv_one(*sock, SMT_RECV_RESPONSE, o.common, o.common.timeout_ms);
      if (!m.ok()) {
        if (m.error().code != EAGAIN) return m.error();
        if (Clock::now() > deadline) return make_error(ETIMEDOUT, "no response within timeout");
        continue;
      }
      auto it = pending.find(m->id());
      if (it == pending.end()) return make_error(EPROTO, "a response nobody asked for");
      const Pending p = it->second;
      pending.erase(it);
      return on(p, *m);
    }
  };
  auto server_usage = [&]() -> Result<ServerUsage> {
    if (auto st = send(cpu_req, Kind::kControl); !st.ok()) return st.error();
    std::optional<Result<ServerUsage>> got;
    while (!got) {
      auto st = wait_one([&](const Pending& p, Message& m) -> Status {
        if (p.kind == Kind::kControl) {
          got = m.kind() == SMT_MSG_RESPONSE ? parse_usage(m.data())
                                              : Result<ServerUsage>(make_error(m.error(), "usage"));
        } else if (p.kind == Kind::kBackground) {
          --bg_outstanding;
        }
        return {};
      });
      if (!st.ok()) return st.error();
    }
    return *got;
  };

  // The first request opens the session through smtd (not measured).
  if (auto u = server_usage(); !u.ok()) return u.error();

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
      if (auto st = send(bg_req, Kind::kBackground); !st.ok()) {
        if (st.error().code == EAGAIN) break;
        return st;
      }
      ++bg_outstanding;
      pacer.sent(bg_req.size());
    }
    return {};
  };
  auto issue = [&](uint64_t n) -> Status {
    n += deferred;
    deferred = 0;
    for (uint64_t i = 0; i < n && issued < total; ++i) {
      if (auto st = send(req, Kind::kMeasured); !st.ok()) {
        if (st.error().code != EAGAIN) return st;
        deferred = n - i;
        break;
      }
      ++issued;
    }
    return {};
  };
  const uint32_t conc = std::max<uint32_t>(o.concurrency, 1);
  if (auto st = issue_bg(); !st.ok()) return st.error();
  if (auto st = issue(conc); !st.ok()) return st.error();
  bool want_start = false;
  while (done < total || bg_outstanding > 0) {
    auto st = wait_one([&](const Pending& p, Message& m) -> Status {
      if (p.kind == Kind::kBackground) {
        --bg_outstanding;
        if (measuring) ++r.background_messages;
        if (auto s2 = issue_bg(); !s2.ok()) return s2;
        return issue(0);
      }
      if (p.kind != Kind::kMeasured) return {};
      const auto now = Clock::now();
      ++done;
      if (done == total) {
        t_end = now;
        cpu_end = process_cpu_us();
      }
      if (m.kind() != SMT_MSG_RESPONSE || m.data().size() != want_reply) {
        ++r.failures;
      } else if (measuring) {
        r.rtt_us.push_back(std::chrono::duration<double, std::micro>(now - p.t0).count());
        r.client_ran_on |= current_cpu_bit();
      }
      if (done == o.warmup && !measuring) want_start = true;
      if (auto s2 = issue_bg(); !s2.ok()) return s2;  // a paced stream may be due
      return want_start ? Status{} : issue(1);
    });
    if (!st.ok()) return st.error();
    if (want_start && done == issued) {
      want_start = false;
      if (auto s2 = start_measuring(); !s2.ok()) return s2.error();
      if (auto s2 = issue_bg(); !s2.ok()) return s2.error();
      if (auto s3 = issue(conc); !s3.ok()) return s3.error();
    }
  }
  r.seconds = std::chrono::duration<double>(t_end - t_start).count();
  r.client_cpu_us = cpu_end - cpu_start;
  auto u = server_usage();
  if (!u.ok()) return u.error();
  r.server_after = *u;
  // A few engine ticks more so the last responses' ACKs leave before we do.
  (void)sock->recv(SMT_RECV_RESPONSE, 0, 20);
  return r;
}

}  // namespace smt::bench
