#include "smtd/tls_context.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "smtd/smtd_log.h"

namespace smt::smtd {
namespace {

int peer_state_index() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};

// Alert numbers of RFC 8446 §6 and their names.
struct AlertName {
  int n;
  const char* name;
};
constexpr AlertName kAlerts[] = {
    {0, "close_notify"},
    {10, "unexpected_message"},
    {20, "bad_record_mac"},
    {22, "record_overflow"},
    {40, "handshake_failure"},
    {42, "bad_certificate"},
    {43, "unsupported_certificate"},
    {44, "certificate_revoked"},
    {45, "certificate_expired"},
    {46, "certificate_unknown"},
    {47, "illegal_parameter"},
    {48, "unknown_ca"},
    {49, "access_denied"},
    {50, "decode_error"},
    {51, "decrypt_error"},
    {70, "protocol_version"},
    {71, "insufficient_security"},
    {80, "internal_error"},
    {86, "inappropriate_fallback"},
    {90, "user_canceled"},
    {109, "missing_extension"},
    {110, "unsupported_extension"},
    {112, "unrecognized_name"},
    {113, "bad_certificate_status_response"},
    {115, "unknown_psk_identity"},
    {116, "certificate_required"},
    {120, "no_application_protocol"},
};

int verify_callback(int preverify_ok, X509_STORE_CTX* store) {
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  TlsPeerState* st = ssl != nullptr ? peer_state(ssl) : nullptr;
  if (st == nullptr) return 0;
  if (!preverify_ok) {
    if (st->verify_error.empty()) {
      int err = X509_STORE_CTX_get_error(store);
      st->verify_error = std::string("certificate verification failed at depth ") +
                         std::to_string(X509_STORE_CTX_get_error_depth(store)) + ": " +
                         X509_verify_cert_error_string(err);
    }
    return 0;
  }
  if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
  X509* cert = X509_STORE_CTX_get_current_cert(store);
  const auto& allowed = st->allowed.empty() ? st->any_configured : st->allowed;
  std::string id = match_identity(cert, allowed);
  if (id.empty()) {
    std::string proved;
    for (const auto& p : certificate_identities(cert)) proved += (proved.empty() ? "" : ", ") + p;
    st->verify_error = "peer identity not allowed: certificate proves [" + proved + "]";
    // OpenSSL turns an application verification failure into handshake_failure (40).
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  st->identity = id;
  return 1;
}

void info_callback(const SSL* ssl, int where, int ret) {
  if ((where & SSL_CB_ALERT) == 0) return;
  TlsPeerState* st = peer_state(const_cast<SSL*>(ssl));
  if (st == nullptr) return;
  int alert = ret & 0xff;
  if (alert == 0) return;  // close_notify is not a failure
  st->alert = alert;
  st->alert_sent = (where & SSL_CB_WRITE) != 0;
}

int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  static const unsigned char kWire[] = {5, 's', 'm', 't', '/', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kWire, sizeof kWire, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol (120)
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// TLS 1.3 servers may ignore a client's missing ALPN; smtd insists on smt/1
// and says so with no_application_protocol (120) rather than a silent close.
int client_hello_callback(SSL* ssl, int* alert, void*) {
  const unsigned char* ext = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
                                &len) != 1) {
    if (TlsPeerState* st = peer_state(ssl)) {
      st->verify_error = "client offered no ALPN (smtd requires smt/1)";
    }
    *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

int new_session_callback(SSL* ssl, SSL_SESSION* sess) {
  TlsPeerState* st = peer_state(ssl);
  if (st == nullptr || !st->on_ticket) return 0;
  st->on_ticket(SslSessionPtr(sess));
  return 1;  // we took the reference
}

Status check_certificate_key(X509* cert, const std::string& path) {
  EVP_PKEY* pk = X509_get0_pubkey(cert);
  char group[64] = {};
  size_t len = 0;
  if (pk == nullptr || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
      EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof group, &len) != 1 ||
      std::strcmp(group, "prime256v1") != 0) {
    return make_error(
        EINVAL, "certificate " + path + " does not carry an ECDSA P-256 key (smtd requires one)");
  }
  return {};
}

Result<SslCtxPtr> make_one(const Config& cfg, bool server, X509** leaf_out) {
  SslCtxPtr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) return make_error(ENOMEM, "SSL_CTX_new failed: " + openssl_errors());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
  if (SSL_CTX_set_ciphersuites(c, cfg.ciphersuites.c_str()) != 1) {
    return make_error(EINVAL, "bad ciphersuites '" + cfg.ciphersuites + "': " + openssl_errors());
  }
  // psk_dhe_ke only: leave SSL_OP_ALLOW_NO_DHE_KEX unset. No 0-RTT.
  SSL_CTX_clear_options(c, SSL_OP_ALLOW_NO_DHE_KEX);
  SSL_CTX_set_max_early_data(c, 0);
  SSL_CTX_set_recv_max_early_data(c, 0);
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_info_callback(c, info_callback);
  if (SSL_CTX_set1_groups_list(c, "X25519:P-256") != 1) {
    return make_error(EINVAL, "cannot set key-exchange groups: " + openssl_errors());
  }

  if (SSL_CTX_use_certificate_chain_file(c, cfg.certificate.c_str()) != 1) {
    return make_error(EINVAL,
                      "cannot load certificate " + cfg.certificate + ": " + openssl_errors());
  }
  X509* leaf = SSL_CTX_get0_certificate(c);
  if (Status s = check_certificate_key(leaf, cfg.certificate); !s) return s.error();
  if (Status s = check_private_key_file(cfg.key); !s) return s.error();
  if (SSL_CTX_use_PrivateKey_file(c, cfg.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    std::string why = openssl_errors();
    if (why.find("key values mismatch") != std::string::npos) {
      return make_error(
          EINVAL, "private key " + cfg.key + " does not match certificate " + cfg.certificate);
    }
    return make_error(EINVAL, "cannot load private key " + cfg.key + ": " + why);
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    return make_error(EINVAL,
                      "private key " + cfg.key + " does not match certificate " + cfg.certificate);
  }
  if (SSL_CTX_load_verify_locations(c, cfg.ca.c_str(), nullptr) != 1) {
    return make_error(EINVAL, "cannot load CA file " + cfg.ca + ": " + openssl_errors());
  }
  if (X509_STORE_get0_objects(SSL_CTX_get_cert_store(c)) == nullptr ||
      sk_X509_OBJECT_num(X509_STORE_get0_objects(SSL_CTX_get_cert_store(c))) == 0) {
    return make_error(EINVAL, "CA file " + cfg.ca + " holds no certificate");
  }
  int mode = SSL_VERIFY_PEER;
  if (server) {
    if (cfg.mutual_tls)
      mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    else
      mode = SSL_VERIFY_NONE;
    SSL_CTX_set_alpn_select_cb(c, alpn_select, nullptr);
    SSL_CTX_set_client_hello_cb(c, client_hello_callback, nullptr);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_num_tickets(c, 1);
    static const unsigned char kSid[] = "smtd";
    SSL_CTX_set_session_id_context(c, kSid, sizeof kSid - 1);
  } else {
    static const unsigned char kWire[] = {5, 's', 'm', 't', '/', '1'};
    SSL_CTX_set_alpn_protos(c, kWire, sizeof kWire);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, new_session_callback);
  }
  SSL_CTX_set_verify(c, mode, verify_callback);
  SSL_CTX_set_verify_depth(c, 4);
  if (leaf_out != nullptr) *leaf_out = leaf;
  return ctx;
}

}  // namespace

std::string openssl_errors() {
  std::string out;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL error recorded" : out;
}

Status check_private_key_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    int e = errno;
    return make_error(e, "cannot open private key " + path + ": " + std::strerror(e));
  }
  struct stat st;
  int rc = ::fstat(fd, &st);
  ::close(fd);
  if (rc != 0) return make_error(errno, "cannot stat private key " + path);
  if (!S_ISREG(st.st_mode)) return make_error(EINVAL, "private key " + path + " is not a file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(EPERM, "private key " + path + " has mode " + mode +
                                 ": it must not be accessible to group or others "
                                 "(chmod 600 " +
                                 path + ")");
  }
  return {};
}

Result<TlsContexts> make_tls_contexts(const Config& cfg) {
  TlsContexts out;
  X509* leaf = nullptr;
  auto server = make_one(cfg, true, &leaf);
  if (!server) return server.error();
  auto client = make_one(cfg, false, nullptr);
  if (!client) return client.error();
  out.server = std::move(*server);
  out.client = std::move(*client);
  out.cert_not_after = certificate_not_after(leaf);
  return out;
}

void attach_peer_state(SSL* ssl, TlsPeerState* state) {
  SSL_set_ex_data(ssl, peer_state_index(), state);
}

TlsPeerState* peer_state(SSL* ssl) {
  return static_cast<TlsPeerState*>(SSL_get_ex_data(ssl, peer_state_index()));
}

std::vector<std::string> certificate_identities(X509* cert) {
  std::vector<std::string> out;
  if (cert == nullptr) return out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
      const char* prefix = gn->type == GEN_DNS ? "dns:" : gn->type == GEN_URI ? "uri:" : nullptr;
      if (prefix == nullptr) continue;
      const ASN1_IA5STRING* s = gn->d.ia5;
      std::string v(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                    static_cast<size_t>(ASN1_STRING_length(s)));
      // An embedded NUL would let "a.example\0.evil" pass as "a.example".
      if (v.find('\0') != std::string::npos) continue;
      out.push_back(prefix + v);
    }
    GENERAL_NAMES_free(names);
  }
  X509_NAME* subj = X509_get_subject_name(cert);
  int idx = subj != nullptr ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
  if (idx >= 0) {
    ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n > 0) {
      std::string v(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
      if (v.find('\0') == std::string::npos) out.push_back("cn:" + v);
    }
    OPENSSL_free(utf8);
  }
  return out;
}

std::string match_identity(X509* cert, const std::vector<std::string>& allowed) {
  auto proved = certificate_identities(cert);
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  for (const auto& want : allowed) {
    for (const auto& have : proved) {
      // DNS names compare case-insensitively; URIs and CNs exactly.
      bool dns = want.rfind("dns:", 0) == 0;
      if ((dns && lower(want) == lower(have)) || (!dns && want == have)) return want;
    }
  }
  return "";
}

std::string tls_alert_name(int alert) {
  for (const auto& a : kAlerts) {
    if (a.n == alert) return a.name;
  }
  return "alert_" + std::to_string(alert);
}

time_t certificate_not_after(const X509* cert) {
  if (cert == nullptr) return 0;
  const ASN1_TIME* t = X509_get0_notAfter(cert);
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return timegm(&tm);
}

}  // namespace smt::smtd
