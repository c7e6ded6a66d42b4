#include "handshake_bench.h"

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>

#include "bench_report.h"
#include "stream_conn.h"

namespace smt::bench {
namespace {

using Clock = std::chrono::steady_clock;

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// OpenSSL hands the client each NewSessionTicket here; the SSL's app data
// points at the slot of the round that is running.
int keep_ticket(SSL* ssl, SSL_SESSION* sess) {
  auto* slot = static_cast<SslSession*>(SSL_get_app_data(ssl));
  if (slot == nullptr) return 0;
  slot->reset(sess);
  return 1;  // the reference is ours now
}

class Connector {
 public:
  explicit Connector(const ClientOptions& o) : o_(o) {}

  Status init() {
    auto sa = ipv4_endpoint(o_.host, o_.common.port);
    if (!sa.ok()) return sa.error();
    sa_ = *sa;
    if (o_.common.stack != Stack::kTls) return {};
    auto ctx = tls_client_ctx({o_.ca, o_.client_cert, o_.client_key});
    if (!ctx.ok()) return ctx.error();
    tls_ = std::move(*ctx);
    SSL_CTX_set_session_cache_mode(tls_.get(),
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(tls_.get(), keep_ticket);
    return {};
  }

  /// Connects and, for TLS, runs the handshake offering `offer` (may be
  /// null); tickets the server sends on this connection land in `tickets`.
  Result<StreamConn> open(SSL_SESSION* offer, SslSession* tickets, bool* reused) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return make_error(errno, std::string("socket: ") + std::strerror(errno));
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa_), sizeof sa_) != 0) {
      return make_error(errno, "connect " + o_.host + ": " + std::strerror(errno));
    }
    if (auto st = tune_socket(fd.get(), false); !st.ok()) return st.error();
    Ssl ssl;
    *reused = false;
    if (tls_) {
      auto r = tls_handshake(tls_.get(), fd.get(), false, o_.tls_name, o_.common.timeout_ms,
                             [&](SSL* s) -> Status {
                               SSL_set_app_data(s, tickets);
                               if (offer != nullptr && SSL_set_session(s, offer) != 1) {
                                 return make_error(EPROTO, "SSL_set_session failed");
                               }
                               return {};
                             });
      if (!r.ok()) return r.error();
      ssl = std::move(*r);
      *reused = SSL_session_reused(ssl.get()) == 1;
    }
    if (auto st = tune_socket(fd.get(), true); !st.ok()) return st.error();
    return StreamConn(std::move(fd), std::move(ssl));
  }

 private:
  const ClientOptions& o_;
  sockaddr_in sa_{};
  SslCtx tls_;
};

Result<ServerUsage> server_usage(StreamConn& control, int timeout_ms) {
  const auto req = make_request(Op::kCpu, kRequestHeaderLen, 0);
  auto reply = round_trip(control, req, timeout_ms);
  if (!reply.ok()) return reply.error();
  return parse_usage(*reply);
}

}  // namespace

Result<HandshakeResult> run_handshake_client(const ClientOptions& o) {
  if (o.resume && o.common.stack != Stack::kTls) {
    return make_error(EINVAL, "--resume needs --stack tls");
  }
  Connector connector(o);
  if (auto st = connector.init(); !st.ok()) return st.error();
  const auto req = make_request(Op::kEcho, o.size, reply_size(o));
  bool reused = false;
  // The server's CPU samples travel on a connection of their own, kept open.
  auto control = connector.open(nullptr, nullptr, &reused);
  if (!control.ok()) return control.error();

  HandshakeResult r;
  SslSession ticket;
  Clock::time_point t_start;
  for (uint32_t round = 0; round <= o.handshakes; ++round) {
    const bool timed = round > 0;
    if (round == 1) {
      auto u = server_usage(*control, o.common.timeout_ms);
      if (!u.ok()) return u.error();
      r.server_before = *u;
      r.client_cpu_us = process_cpu_us();
      t_start = Clock::now();
    }
    const std::string which = "round " + std::to_string(round) + ": ";
    SslSession next;
    const auto t0 = Clock::now();
    auto conn = connector.open(o.resume ? ticket.get() : nullptr, &next, &reused);
    const auto t1 = Clock::now();
    if (!conn.ok()) return make_error(conn.error().code, which + conn.error().message);
    auto reply = round_trip(*conn, req, o.common.timeout_ms);
    const auto t2 = Clock::now();
    if (!reply.ok()) return make_error(reply.error().code, which + reply.error().message);
    if (reply->size() != reply_size(o)) {
      return make_error(EPROTO, which + "a reply of " + std::to_string(reply->size()) + " B");
    }
    // Untimed. OpenSSL also marks the session of a TLS connection freed
    // without close_notify as not resumable.
    conn->close_notify();
    if (o.resume) {
      if (timed && !reused) {
        return make_error(EPROTO, which + "the server did not resume the session it issued");
      }
      if (next) ticket = std::move(next);
      if (!ticket) {
        return make_error(EPROTO, which + "the server sent no session ticket (--tickets?)");
      }
    }
    if (!timed) continue;
    r.handshake_us.push_back(micros(t1 - t0));
    r.rpc_us.push_back(micros(t2 - t1));
    r.resumed += reused ? 1 : 0;
    r.client_ran_on |= current_cpu_bit();
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  r.client_cpu_us = process_cpu_us() - r.client_cpu_us;
  auto u = server_usage(*control, o.common.timeout_ms);
  if (!u.ok()) return u.error();
  r.server_after = *u;
  return r;
}

std::string handshake_json(const ClientOptions& o, HandshakeResult& r) {
  std::vector<double> both(r.handshake_us.size());
  for (size_t i = 0; i < both.size() && i < r.rpc_us.size(); ++i) {
    both[i] = r.handshake_us[i] + r.rpc_us[i];
  }
  std::sort(r.handshake_us.begin(), r.handshake_us.end());
  std::sort(r.rpc_us.begin(), r.rpc_us.end());
  std::sort(both.begin(), both.end());
  const double n = double(r.handshake_us.size());
  const double mean =
      n > 0 ? std::accumulate(r.handshake_us.begin(), r.handshake_us.end(), 0.0) / n : 0;
  const uint64_t server_cpu = r.server_after.cpu_us - r.server_before.cpu_us;
  JsonLine j;
  j.add("stack", stack_name(o.common.stack))
      .add("mode", "handshake")
      .add("resume", o.resume)
      .add("mutual_tls", !o.client_cert.empty())
      .add("label", o.label)
      .add("rounds", uint64_t(r.handshake_us.size()))
      .add("resumed", r.resumed)
      .add("p50_us", percentile(r.handshake_us, 50))
      .add("p90_us", percentile(r.handshake_us, 90))
      .add("p99_us", percentile(r.handshake_us, 99))
      .add("mean_us", mean)
      .add("rpc_size", uint64_t(o.size))
      .add("rpc_p50_us", percentile(r.rpc_us, 50))
      .add("rpc_p90_us", percentile(r.rpc_us, 90))
      .add("rpc_p99_us", percentile(r.rpc_us, 99))
      .add("both_p50_us", percentile(both, 50))
      .add("both_p90_us", percentile(both, 90))
      .add("both_p99_us", percentile(both, 99))
      .add("seconds", r.seconds)
      .add("client_cpu_us_per_round", n > 0 ? double(r.client_cpu_us) / n : 0.0)
      .add("server_cpu_us_per_round", n > 0 ? double(server_cpu) / n : 0.0)
      .add("client_cpus_allowed", cpu_list(allowed_cpus_mask()))
      .add("client_ran_on", cpu_list(r.client_ran_on))
      .add("server_ran_on", cpu_list(r.server_after.ran_on))
      .add("server_threads", uint64_t(r.server_after.threads));
  return j.str();
}

}  // namespace smt::bench
