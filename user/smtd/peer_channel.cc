#include "smtd/peer_channel.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstring>

namespace smt::smtd {
namespace {

uint64_t next_channel_id() {
  static uint64_t id = 0;
  return ++id;
}

constexpr size_t kReadChunk = 4096;
// More unprocessed input than this means a peer that floods us; close.
constexpr size_t kMaxBuffered = 64 * 1024;

}  // namespace

Result<std::unique_ptr<PeerChannel>> PeerChannel::connect(SSL_CTX* ctx, const Endpoint& to,
                                                          std::string peer_name,
                                                          std::vector<std::string> allowed,
                                                          SSL_SESSION* resume, KeyArena* arena) {
  std::unique_ptr<PeerChannel> ch(new PeerChannel());  // private constructor
  ch->id_ = next_channel_id();
  ch->role_ = Role::kClient;
  ch->arena_ = arena;
  ch->peer_name_ = std::move(peer_name);
  ch->remote_ = to;
  ch->created_at_ = Clock::now();
  ch->tls_state_.allowed = std::move(allowed);
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(to, &ss);
  ch->fd_.reset(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!ch->fd_) return make_error(errno, "socket() failed: " + std::string(std::strerror(errno)));
  int one = 1;
  ::setsockopt(ch->fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (Status s = ch->start_tls(ctx); !s) return s.error();
  if (resume != nullptr) SSL_set_session(ch->ssl_.get(), resume);
  if (::connect(ch->fd_.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) {
      int e = errno;
      return make_error(e, "connect to " + format_endpoint(to) + " failed: " + std::strerror(e));
    }
    ch->state_ = State::kConnecting;
  } else {
    ch->state_ = State::kHandshaking;
  }
  return ch;
}

Result<std::unique_ptr<PeerChannel>> PeerChannel::accept(SSL_CTX* ctx, UniqueFd fd,
                                                         const Endpoint& from,
                                                         std::vector<std::string> any_configured,
                                                         bool mutual_tls, KeyArena* arena) {
  std::unique_ptr<PeerChannel> ch(new PeerChannel());  // private constructor
  ch->id_ = next_channel_id();
  ch->role_ = Role::kServer;
  ch->arena_ = arena;
  ch->remote_ = from;
  ch->created_at_ = Clock::now();
  ch->fd_ = std::move(fd);
  ch->tls_state_.any_configured = std::move(any_configured);
  if (!mutual_tls) ch->tls_state_.identity = "anonymous";
  int one = 1;
  ::setsockopt(ch->fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (Status s = ch->start_tls(ctx); !s) return s.error();
  ch->state_ = State::kHandshaking;
  return ch;
}

PeerChannel::~PeerChannel() { root_.reset(); }

Status PeerChannel::start_tls(SSL_CTX* ctx) {
  ssl_.reset(SSL_new(ctx));
  if (!ssl_) return make_error(ENOMEM, "SSL_new failed: " + openssl_errors());
  attach_peer_state(ssl_.get(), &tls_state_);
  if (SSL_set_fd(ssl_.get(), fd_.get()) != 1) {
    return make_error(EIO, "SSL_set_fd failed: " + openssl_errors());
  }
  if (role_ == Role::kClient) {
    SSL_set_connect_state(ssl_.get());
  } else {
    SSL_set_accept_state(ssl_.get());
  }
  return {};
}

uint32_t PeerChannel::wanted_events() const {
  constexpr uint32_t kIn = EPOLLIN, kOut = EPOLLOUT;
  switch (state_) {
    case State::kConnecting:
      return kOut;
    case State::kHandshaking:
      return want_write_ ? kOut : kIn;
    case State::kEstablished:
      return kIn | ((want_write_ || !out_.empty()) ? kOut : 0u);
    case State::kClosed:
      return 0;
  }
  return 0;
}

std::string PeerChannel::describe_failure(const std::string& what) const {
  std::string msg = what;
  if (tls_state_.alert >= 0) {
    msg += std::string(tls_state_.alert_sent ? ": sent" : ": received") + " TLS alert " +
           std::to_string(tls_state_.alert) + " (" + tls_alert_name(tls_state_.alert) + ")";
  }
  if (!tls_state_.verify_error.empty()) msg += ": " + tls_state_.verify_error;
  return msg;
}

void PeerChannel::fail(const std::string& why, std::vector<Event>* out) {
  if (state_ == State::kClosed || closing_) return;
  if (state_ == State::kEstablished && !out->empty()) {
    // Events of this read come first; the daemon closes on kClosed.
    closing_ = true;
    close_reason_ = why;
  } else {
    close(why);
  }
  out->push_back(Event{Event::Kind::kClosed});
}

void PeerChannel::handshake(std::vector<Event>* out) {
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_.get());
  if (rc != 1) {
    int err = SSL_get_error(ssl_.get(), rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      want_write_ = err == SSL_ERROR_WANT_WRITE;
      return;
    }
    std::string detail = err == SSL_ERROR_SYSCALL
                             ? (errno != 0 ? std::strerror(errno) : "connection closed")
                             : openssl_errors();
    fail(describe_failure("TLS handshake with " + format_endpoint(remote_) + " failed") + " [" +
             detail + "]",
         out);
    return;
  }
  want_write_ = false;
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl_.get(), &alpn, &alpn_len);
  if (alpn_len != 5 || std::memcmp(alpn, "smt/1", 5) != 0) {
    fail("TLS handshake with " + format_endpoint(remote_) + ": peer did not agree to ALPN smt/1",
         out);
    return;
  }
  if (SSL_version(ssl_.get()) != TLS1_3_VERSION) {
    fail("TLS handshake with " + format_endpoint(remote_) + ": not TLS 1.3", out);
    return;
  }
  X509* peer = SSL_get0_peer_certificate(ssl_.get());
  resumed_ = SSL_session_reused(ssl_.get()) == 1;
  if (peer != nullptr) {
    // Resumed handshakes skip the verify callback: check the identity here too.
    const auto& allowed =
        tls_state_.allowed.empty() ? tls_state_.any_configured : tls_state_.allowed;
    std::string id = match_identity(peer, allowed);
    if (id.empty()) {
      fail("peer " + format_endpoint(remote_) + " proved no allowed identity", out);
      return;
    }
    tls_state_.identity = id;
    peer_not_after_ = certificate_not_after(peer);
  } else if (role_ == Role::kClient || tls_state_.identity != "anonymous") {
    fail("peer " + format_endpoint(remote_) + " presented no certificate", out);
    return;
  }
  suite_ = static_cast<Suite>(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(ssl_.get())));
  const SuiteInfo* info = suite_info(suite_);
  if (info == nullptr) {
    fail("negotiated an unsupported cipher suite", out);
    return;
  }
  auto slot = arena_->take();
  if (!slot) {
    fail(slot.error().message, out);
    return;
  }
  root_ = std::move(*slot);
  root_.set_size(info->hash_len);
  if (SSL_export_keying_material(ssl_.get(), root_.data(), info->hash_len, kExporterLabel,
                                 sizeof kExporterLabel - 1, nullptr, 0, 0) != 1) {
    fail("TLS exporter failed: " + openssl_errors(), out);
    return;
  }
  state_ = State::kEstablished;
  established_at_ = Clock::now();
  out->push_back(Event{Event::Kind::kEstablished});
  read_messages(out);  // data may have arrived with the last flight
}

void PeerChannel::read_messages(std::vector<Event>* out) {
  for (;;) {
    if (state_ != State::kEstablished || poisoned_ || closing_) return;
    uint8_t buf[kReadChunk];
    ERR_clear_error();
    int n = SSL_read(ssl_.get(), buf, sizeof buf);
    if (n <= 0) {
      int err = SSL_get_error(ssl_.get(), n);
      if (err == SSL_ERROR_WANT_READ) break;
      if (err == SSL_ERROR_WANT_WRITE) {
        want_write_ = true;
        break;
      }
      if (err == SSL_ERROR_ZERO_RETURN) {
        fail("peer " + format_endpoint(remote_) + " closed the control channel", out);
      } else {
        fail(describe_failure("control channel to " + format_endpoint(remote_) + " failed") +
                 (err == SSL_ERROR_SYSCALL ? "" : " [" + openssl_errors() + "]"),
             out);
      }
      return;
    }
    in_.insert(in_.end(), buf, buf + n);
    if (in_.size() > kMaxBuffered) {
      fail("peer " + format_endpoint(remote_) + " sent more than 64 KiB without a full frame", out);
      return;
    }
    size_t pos = 0;
    while (state_ == State::kEstablished) {
      auto len = setup_frame_length(std::span(in_).subspan(pos));
      if (!len) {
        // A bad length field: the stream cannot be resynchronised. The frames
        // before it are still answered; the daemon closes after them.
        poisoned_ = true;
        Event ev{Event::Kind::kFatal};
        ev.bad.message =
            "malformed set-up frame from " + format_endpoint(remote_) + ": " + len.error().message;
        out->push_back(std::move(ev));
        in_.clear();
        return;
      }
      if (*len == 0) break;
      auto decoded = decode_setup(std::span(in_).subspan(pos, *len));
      pos += *len;
      if (auto* m = std::get_if<SetupMessage>(&decoded)) {
        out->push_back(Event{Event::Kind::kMessage, *m});
      } else {
        out->push_back(Event{Event::Kind::kBadMessage, {}, std::get<SetupDecodeError>(decoded)});
      }
    }
    in_.erase(in_.begin(), in_.begin() + static_cast<ptrdiff_t>(pos));
  }
}

void PeerChannel::flush() {
  while (!out_.empty() && state_ == State::kEstablished && !closing_) {
    ERR_clear_error();
    int n = SSL_write(ssl_.get(), out_.data(), static_cast<int>(out_.size()));
    if (n <= 0) {
      int err = SSL_get_error(ssl_.get(), n);
      want_write_ = err == SSL_ERROR_WANT_WRITE;
      return;  // errors surface on the next read
    }
    out_.erase(out_.begin(), out_.begin() + n);
  }
  want_write_ = false;
}

std::vector<PeerChannel::Event> PeerChannel::on_ready() {
  std::vector<Event> out;
  if (state_ == State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      fail("connect to " + format_endpoint(remote_) + " failed: " + std::strerror(err), &out);
      return out;
    }
    state_ = State::kHandshaking;
  }
  if (state_ == State::kHandshaking) handshake(&out);
  if (state_ == State::kEstablished && !closing_) {
    flush();
    read_messages(&out);
    flush();
  }
  return out;
}

void PeerChannel::send(const SetupMessage& m) {
  auto bytes = encode_setup(m);
  out_.insert(out_.end(), bytes.begin(), bytes.end());
  flush();
}

void PeerChannel::close(const std::string& why) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kEstablished) {
    flush();
    SSL_shutdown(ssl_.get());  // close_notify; we do not wait for the peer's
  }
  state_ = State::kClosed;
  close_reason_ = why;
  root_.reset();  // CONTRACT §1: root is erased when the connection closes
}

}  // namespace smt::smtd
