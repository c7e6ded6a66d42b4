#include "echo_secrets.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cctype>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

namespace smt::echo {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Status hmac_into(const SecretBytes& key, const char* label, const std::vector<uint8_t>& ctx,
                 uint8_t* out, size_t out_len) {
  std::vector<uint8_t> msg(label, label + std::strlen(label) + 1);  // the NUL separates
  msg.insert(msg.end(), ctx.begin(), ctx.end());
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), msg.data(), msg.size(), mac,
           &mac_len) == nullptr ||
      mac_len < out_len) {
    return make_error(EIO, "HMAC-SHA256 failed");
  }
  std::memcpy(out, mac, out_len);
  OPENSSL_cleanse(mac, sizeof mac);
  return {};
}

void put_peer(std::vector<uint8_t>* v, const lib::PeerAddr& p) {
  v->insert(v->end(), p.addr.begin(), p.addr.end());
  v->push_back(static_cast<uint8_t>(p.port >> 8));
  v->push_back(static_cast<uint8_t>(p.port));
}

}  // namespace

Result<SecretBytes> read_key_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return make_error(ENOENT, "cannot read secret file " + path);
  // A key file is 64 hex digits; anything much longer is not one.
  std::string text;
  text.resize(4096);
  f.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(f.gcount()));
  if (!f.eof()) return make_error(EINVAL, path + ": too long for a key file");
  uint8_t buf[32];
  size_t n = 0;
  int hi = -1;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    const int v = hex_value(c);
    if (v < 0) return make_error(EINVAL, path + ": not hex");
    if (hi < 0) {
      hi = v;
      continue;
    }
    if (n == sizeof buf) return make_error(EINVAL, path + ": more than 32 bytes");
    buf[n++] = static_cast<uint8_t>(hi << 4 | v);
    hi = -1;
  }
  OPENSSL_cleanse(text.data(), text.size());
  if (hi >= 0 || n != sizeof buf) {
    OPENSSL_cleanse(buf, sizeof buf);
    return make_error(EINVAL, path + ": need exactly 32 bytes (64 hex digits)");
  }
  SecretBytes key(std::span<const uint8_t>(buf, sizeof buf));
  OPENSSL_cleanse(buf, sizeof buf);
  return key;
}

Result<SecretBytes> new_key() {
  uint8_t buf[32];
  if (RAND_bytes(buf, sizeof buf) != 1) return make_error(EIO, "RAND_bytes failed");
  SecretBytes key(std::span<const uint8_t>(buf, sizeof buf));
  OPENSSL_cleanse(buf, sizeof buf);
  return key;
}

Result<std::string> new_key_hex() {
  auto key = new_key();
  if (!key.ok()) return key.error();
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (uint8_t b : key->span()) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s + "\n";
}

Result<smt_test_secrets> derive_secrets(const SecretBytes& key, const lib::PeerAddr& initiator,
                                        const lib::PeerAddr& responder, uint64_t serial,
                                        bool this_host_initiates, const char* identity) {
  std::vector<uint8_t> ctx;
  put_peer(&ctx, initiator);
  put_peer(&ctx, responder);
  for (int i = 7; i >= 0; --i) ctx.push_back(static_cast<uint8_t>(serial >> (8 * i)));
  smt_test_secrets s{};
  Status st;
  if ((st = hmac_into(key, "smt-echo i ap", ctx, s.initiator_secret, 32)) &&
      (st = hmac_into(key, "smt-echo r ap", ctx, s.responder_secret, 32)) &&
      (st = hmac_into(key, "smt-echo i ctl", ctx, s.initiator_ctl, 16)) &&
      (st = hmac_into(key, "smt-echo r ctl", ctx, s.responder_ctl, 16))) {
    s.initiator = this_host_initiates ? 1 : 0;
    s.serial = serial;
    s.peer_identity = identity;
    return s;
  }
  OPENSSL_cleanse(&s, sizeof s);
  return st.error();
}

}  // namespace smt::echo
