#include "smtd/smtd_client.h"

#include <openssl/crypto.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "smt/wire.h"

namespace smt::smtd {
namespace {

smtd_app_hdr make_hdr(uint16_t type, uint32_t len, uint32_t id) {
  smtd_app_hdr h{};
  h.version = SMTD_APP_VERSION;
  h.type = type;
  h.length = len;
  h.request_id = id;
  return h;
}

bool is_notification(const std::vector<uint8_t>& m) {
  if (m.size() < sizeof(smtd_app_hdr)) return false;
  smtd_app_hdr h;
  std::memcpy(&h, m.data(), sizeof h);
  return h.request_id == 0 && (h.type == SMTD_APP_INCOMING || h.type == SMTD_APP_PEER_CLOSED);
}

}  // namespace

std::string default_socket_path() {
  const char* env = std::getenv("SMT_SMTD_SOCKET");
  if (env != nullptr && env[0] != '\0') return env;
  return "/run/smt/smtd.sock";
}

Result<SmtdClient> SmtdClient::connect(const std::string& socket_path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof sun.sun_path) {
    return make_error(ENAMETOOLONG, "socket path too long: " + socket_path);
  }
  std::strcpy(sun.sun_path, socket_path.c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return make_error(errno, "socket failed");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    int e = errno;
    return make_error(e, "cannot connect to smtd at " + socket_path + ": " + std::strerror(e));
  }
  return SmtdClient(std::move(fd));
}

Status SmtdClient::send_raw(std::span<const uint8_t> bytes) { return send_msg(bytes, {}); }

Status SmtdClient::send_msg(std::span<const uint8_t> bytes, std::span<const int> fds) {
  if (fds.size() > SMTD_DATAPATH_MAX_FDS) return make_error(EINVAL, "too many fds for one message");
  struct iovec iov {
    const_cast<uint8_t*>(bytes.data()), bytes.size()
  };
  struct msghdr mh;
  std::memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(SMTD_DATAPATH_MAX_FDS * sizeof(int))];
  if (!fds.empty()) {
    std::memset(control, 0, sizeof control);
    mh.msg_control = control;
    mh.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  ssize_t n = ::sendmsg(fd_.get(), &mh, MSG_NOSIGNAL);
  if (n != static_cast<ssize_t>(bytes.size())) {
    int e = n < 0 ? errno : EIO;
    return make_error(e, std::string("send to smtd failed: ") + std::strerror(e));
  }
  return {};
}

Result<std::vector<uint8_t>> SmtdClient::recv_raw(int timeout_ms) {
  pollfd p{fd_.get(), POLLIN, 0};
  int rc = ::poll(&p, 1, timeout_ms);
  if (rc == 0) return make_error(ETIMEDOUT, "no message from smtd within the timeout");
  if (rc < 0) return make_error(errno, "poll failed");
  std::vector<uint8_t> buf(SMTD_APP_MAX_MSG);
  struct iovec iov {
    buf.data(), buf.size()
  };
  struct msghdr mh;
  std::memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(fd_.get(), &mh, MSG_CMSG_CLOEXEC);
  if (n < 0)
    return make_error(errno, std::string("recv from smtd failed: ") + std::strerror(errno));
  last_fds_.clear();
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int got;
      std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
      last_fds_.emplace_back(got);
    }
  }
  if (n == 0) return make_error(ECONNRESET, "smtd closed the connection");
  buf.resize(static_cast<size_t>(n));
  return buf;
}

Error SmtdClient::error_from(const std::vector<uint8_t>& msg) {
  smtd_app_error e;
  if (msg.size() != sizeof e) return make_error(EPROTO, "malformed error reply from smtd");
  std::memcpy(&e, msg.data(), sizeof e);
  e.message[sizeof e.message - 1] = '\0';
  last_error_.err = e.err;
  last_error_.refused_reason = e.refused_reason;
  last_error_.tls_alert = (e.alert_flags & SMTD_ALERT_F_VALID) ? e.tls_alert : -1;
  last_error_.alert_sent = (e.alert_flags & SMTD_ALERT_F_SENT) != 0;
  return make_error(e.err, e.message);
}

Result<std::vector<uint8_t>> SmtdClient::call(void* req, size_t len, int timeout_ms,
                                              std::span<const int> fds) {
  uint32_t id = next_request_++;
  if (next_request_ == 0) next_request_ = 1;
  last_error_ = {};
  auto* h = static_cast<smtd_app_hdr*>(req);
  h->request_id = id;
  if (Status s = send_msg({static_cast<const uint8_t*>(req), len}, fds); !s) return s.error();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    auto m = recv_raw(left > 0 ? static_cast<int>(left) : 0);
    if (!m) return m.error();
    if (is_notification(*m)) {
      notes_.push_back(std::move(*m));
      continue;
    }
    smtd_app_hdr rh;
    if (m->size() < sizeof rh) return make_error(EPROTO, "short reply from smtd");
    std::memcpy(&rh, m->data(), sizeof rh);
    if (rh.request_id != id) continue;  // a late reply to an earlier, timed-out request
    if (rh.type == SMTD_APP_ERROR) return error_from(*m);
    return m;
  }
}

Result<uint16_t> SmtdClient::lease(uint16_t port) {
  smtd_app_lease r{};
  r.hdr = make_hdr(SMTD_APP_LEASE, sizeof r, 0);
  r.port = port;
  r.flags = port == 0 ? SMTD_LEASE_F_EPHEMERAL : 0;
  auto m = call(&r, sizeof r, 10000);
  if (!m) return m.error();
  smtd_app_lease rep;
  if (m->size() != sizeof rep) return make_error(EPROTO, "malformed LEASED reply");
  std::memcpy(&rep, m->data(), sizeof rep);
  if (rep.hdr.type != SMTD_APP_LEASED) return make_error(EPROTO, "unexpected reply to LEASE");
  return rep.port;
}

Status SmtdClient::release(uint16_t port) {
  smtd_app_lease r{};
  r.hdr = make_hdr(SMTD_APP_RELEASE, sizeof r, 0);
  r.port = port;
  auto m = call(&r, sizeof r, 10000);
  if (!m) return m.error();
  return {};
}

Result<HeldSession> parse_held_session(std::span<const uint8_t> msg) {
  smtd_app_session r;
  if (msg.size() != sizeof r) return make_error(EPROTO, "malformed session message from smtd");
  std::memcpy(&r, msg.data(), sizeof r);
  HeldSession s;
  s.serial = r.serial;
  s.suite = static_cast<Suite>(r.suite);
  s.initiator = r.initiator != 0;
  s.protocol = r.protocol;
  std::memcpy(s.local_addr.data(), r.local_addr, 16);
  std::memcpy(s.peer_addr.data(), r.peer_addr, 16);
  s.local_port = r.local_port;
  s.peer_port = r.peer_port;
  s.peer_rx_queue = r.peer_rx_queue;
  s.session_slot = r.session_slot;
  s.has_secrets = r.has_secrets != 0;
  std::memcpy(s.holder_token.data(), r.holder_token, sizeof r.holder_token);
  r.peer_identity[sizeof r.peer_identity - 1] = '\0';
  s.peer_identity = r.peer_identity;
  if (s.has_secrets) {
    if (r.secret_len == 0 || r.secret_len > SMTD_APP_SECRET_MAX) {
      OPENSSL_cleanse(&r, sizeof r);
      return make_error(EPROTO, "bad secret length in session message");
    }
    s.secret_i_0.assign({r.secret_i_0, r.secret_len});
    s.secret_r_0.assign({r.secret_r_0, r.secret_len});
    s.k_ctl_i.assign({r.k_ctl_i, SMTD_APP_CTL_KEY_LEN});
    s.k_ctl_r.assign({r.k_ctl_r, SMTD_APP_CTL_KEY_LEN});
  }
  OPENSSL_cleanse(&r, sizeof r);
  return s;
}

Result<HeldSession> SmtdClient::open(const Addr16& peer_addr, uint16_t peer_port,
                                     uint16_t local_port, uint32_t rx_queue, int timeout_ms) {
  smtd_app_open r{};
  r.hdr = make_hdr(SMTD_APP_OPEN, sizeof r, 0);
  std::memcpy(r.peer_addr, peer_addr.data(), 16);
  r.peer_port = peer_port;
  r.local_port = local_port;
  r.rx_queue = rx_queue;
  auto m = call(&r, sizeof r, timeout_ms);
  if (!m) return m.error();
  auto s = parse_held_session(*m);
  OPENSSL_cleanse(m->data(), m->size());
  return s;
}

Status SmtdClient::close(const Addr16& peer_addr, uint16_t peer_port, uint16_t local_port) {
  smtd_app_close r{};
  r.hdr = make_hdr(SMTD_APP_CLOSE, sizeof r, 0);
  std::memcpy(r.peer_addr, peer_addr.data(), 16);
  r.peer_port = peer_port;
  r.local_port = local_port;
  auto m = call(&r, sizeof r, 10000);
  if (!m) return m.error();
  return {};
}

Result<HeldSession> SmtdClient::adopt(std::span<const uint8_t, SMTD_APP_TOKEN_LEN> token) {
  smtd_app_adopt r{};
  r.hdr = make_hdr(SMTD_APP_ADOPT, sizeof r, 0);
  std::memcpy(r.holder_token, token.data(), token.size());
  auto m = call(&r, sizeof r, 10000);
  OPENSSL_cleanse(r.holder_token, sizeof r.holder_token);
  if (!m) return m.error();
  return parse_held_session(*m);
}

Result<OwnerTableGrant> SmtdClient::owner_table() {
  smtd_app_hdr r = make_hdr(SMTD_APP_TABLE, sizeof r, 0);
  auto m = call(&r, sizeof r, 10000);
  if (!m) return m.error();
  smtd_app_table t;
  if (m->size() != sizeof t) return make_error(EPROTO, "malformed TABLE_GRANTED reply");
  std::memcpy(&t, m->data(), sizeof t);
  if (t.hdr.type != SMTD_APP_TABLE_GRANTED || t.entries != SMT_OWNER_TABLE_SESSIONS ||
      t.entry_size != sizeof(smt_owner_table_entry)) {
    return make_error(EPROTO, "TABLE_GRANTED describes another table layout than this build's");
  }
  if (last_fds_.size() != 2) {
    return make_error(EPROTO,
                      "TABLE_GRANTED came without the table's and the notification page's fds");
  }
  OwnerTableGrant g;
  g.fd = std::move(last_fds_[0]);
  g.notify_fd = std::move(last_fds_[1]);
  g.owner_id = t.owner_id;
  g.entries = t.entries;
  return g;
}

Result<DatapathGrant> SmtdClient::datapath(uint32_t families, uint32_t rx_queue, bool raw_only) {
  smtd_app_datapath_req r{};
  r.hdr = make_hdr(SMTD_APP_DATAPATH, sizeof r, 0);
  r.families = families;
  r.rx_queue = rx_queue;
  r.flags = raw_only ? SMTD_DATAPATH_F_RAW_ONLY : 0;
  auto m = call(&r, sizeof r, 10000);
  if (!m) return m.error();
  smtd_app_datapath d;
  if (m->size() != sizeof d) return make_error(EPROTO, "malformed DATAPATH_GRANTED reply");
  std::memcpy(&d, m->data(), sizeof d);
  if (d.hdr.type != SMTD_APP_DATAPATH_GRANTED) return make_error(EPROTO, "not DATAPATH_GRANTED");
  if (d.kind != SMTD_DATAPATH_RAW && d.kind != SMTD_DATAPATH_AF_XDP) {
    return make_error(EPROTONOSUPPORT, "smtd offers datapath kind " + std::to_string(d.kind) +
                                           ", which this libsmt does not know");
  }
  const uint32_t fams = d.families & (SMTD_DATAPATH_FAMILY_V4 | SMTD_DATAPATH_FAMILY_V6);
  const size_t xsk_fds = d.kind == SMTD_DATAPATH_AF_XDP ? 2 : 0;
  const size_t want =
      xsk_fds + (fams & SMTD_DATAPATH_FAMILY_V4 ? 1 : 0) + (fams & SMTD_DATAPATH_FAMILY_V6 ? 1 : 0);
  if (fams != d.families || want == xsk_fds || d.fd_count != want || last_fds_.size() != want) {
    return make_error(EPROTO, "DATAPATH_GRANTED: families, fd count and attached fds disagree");
  }
  DatapathGrant g;
  g.kind = d.kind;
  g.families = fams;
  g.protocol = d.protocol;
  std::memcpy(g.local_addr.data(), d.local_addr, 16);
  d.note[sizeof d.note - 1] = '\0';
  g.note = d.note;
  size_t i = 0;
  if (d.kind == SMTD_DATAPATH_AF_XDP) {
    g.xsk = std::move(last_fds_[i++]);
    g.xsk_umem = std::move(last_fds_[i++]);
    g.xsk_info = d.xsk;
    g.xsk_zerocopy = (d.xsk_flags & SMTD_XSK_F_ZEROCOPY) != 0;
  }
  if (fams & SMTD_DATAPATH_FAMILY_V4) g.raw_v4 = std::move(last_fds_[i++]);
  if (fams & SMTD_DATAPATH_FAMILY_V6) g.raw_v6 = std::move(last_fds_[i++]);
  return g;
}

Status SmtdClient::present_datapath(std::span<const int> fds, uint32_t rx_queue) {
  smtd_app_datapath_req r{};
  r.hdr = make_hdr(SMTD_APP_DATAPATH, sizeof r, 0);
  r.flags = SMTD_DATAPATH_F_PRESENT;
  r.rx_queue = rx_queue;
  auto m = call(&r, sizeof r, 10000, fds);
  if (!m) return m.error();
  smtd_app_datapath d;
  if (m->size() != sizeof d) return make_error(EPROTO, "malformed DATAPATH_GRANTED reply");
  return {};
}

Status SmtdClient::send_stats(std::span<const smtd_app_session_stats> entries) {
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(SMTD_APP_STATS_MAX_ENTRIES, entries.size() - pos);
    std::vector<uint8_t> buf(sizeof(smtd_app_stats) + n * sizeof(smtd_app_session_stats));
    smtd_app_stats h{};
    h.hdr = make_hdr(SMTD_APP_STATS, static_cast<uint32_t>(buf.size()), 0);
    h.count = static_cast<uint32_t>(n);
    std::memcpy(buf.data(), &h, sizeof h);
    if (n != 0) std::memcpy(buf.data() + sizeof h, &entries[pos], n * sizeof entries[0]);
    if (Status s = send_raw(buf); !s) return s;
    pos += n;
  } while (pos < entries.size());
  return {};
}

Result<std::vector<smtd_app_session_stats>> SmtdClient::session_stats() {
  smtd_app_hdr r = make_hdr(SMTD_APP_GET_STATS, sizeof r, 0);
  auto m = call(&r, sizeof r, 10000);
  std::vector<smtd_app_session_stats> out;
  for (;;) {
    if (!m) return m.error();
    smtd_app_stats c;
    if (m->size() < sizeof c) return make_error(EPROTO, "malformed STATS_CHUNK");
    std::memcpy(&c, m->data(), sizeof c);
    if (c.hdr.type != SMTD_APP_STATS_CHUNK || c.count > SMTD_APP_STATS_MAX_ENTRIES ||
        m->size() != sizeof c + c.count * sizeof(smtd_app_session_stats)) {
      return make_error(EPROTO, "malformed STATS_CHUNK");
    }
    const size_t at = out.size();
    out.resize(at + c.count);
    if (c.count != 0) {
      std::memcpy(&out[at], m->data() + sizeof c, c.count * sizeof(smtd_app_session_stats));
    }
    if (c.flags & SMTD_LIST_F_LAST) return out;
    m = recv_raw(10000);
  }
}

Result<std::string> SmtdClient::list_json() {
  smtd_app_list r{};
  r.hdr = make_hdr(SMTD_APP_LIST, sizeof r, 0);
  auto m = call(&r, sizeof r, 10000);
  std::string text;
  for (;;) {
    if (!m) return m.error();
    smtd_app_list_chunk c;
    if (m->size() < sizeof c) return make_error(EPROTO, "malformed LIST_CHUNK");
    std::memcpy(&c, m->data(), sizeof c);
    if (c.hdr.type != SMTD_APP_LIST_CHUNK || c.text_len != m->size() - sizeof c) {
      return make_error(EPROTO, "malformed LIST_CHUNK");
    }
    text.append(reinterpret_cast<const char*>(m->data() + sizeof c), c.text_len);
    if (c.flags & SMTD_LIST_F_LAST) return text;
    m = recv_raw(10000);
  }
}

Result<SmtdNotification> SmtdClient::next_notification(int timeout_ms) {
  std::vector<uint8_t> m;
  if (!notes_.empty()) {
    m = std::move(notes_.front());
    notes_.pop_front();
  } else {
    auto r = recv_raw(timeout_ms);
    if (!r) return r.error();
    m = std::move(*r);
  }
  if (!is_notification(m)) return make_error(EPROTO, "expected a notification from smtd");
  smtd_app_hdr h;
  std::memcpy(&h, m.data(), sizeof h);
  SmtdNotification n;
  if (h.type == SMTD_APP_INCOMING) {
    auto s = parse_held_session(m);
    OPENSSL_cleanse(m.data(), m.size());
    if (!s) return s.error();
    n.kind = SmtdNotification::Kind::kIncoming;
    n.session = std::move(*s);
    return n;
  }
  if (m.size() != sizeof n.closed) return make_error(EPROTO, "malformed PEER_CLOSED");
  n.kind = SmtdNotification::Kind::kPeerClosed;
  std::memcpy(&n.closed, m.data(), sizeof n.closed);
  return n;
}

}  // namespace smt::smtd
