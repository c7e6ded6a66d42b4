#include "smtd/config.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace smt::smtd {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

template <typename T>
bool parse_uint(std::string_view s, T max, T* out) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || v > max) return false;
  *out = static_cast<T>(v);
  return true;
}

bool parse_bool(std::string_view s, bool* out) {
  if (s == "yes" || s == "true" || s == "on" || s == "1") {
    *out = true;
    return true;
  }
  if (s == "no" || s == "false" || s == "off" || s == "0") {
    *out = false;
    return true;
  }
  return false;
}

/// "5000", "5000-5010"; ports 1..65535.
bool parse_range(std::string_view s, std::pair<uint16_t, uint16_t>* out) {
  size_t dash = s.find('-');
  uint16_t lo = 0, hi = 0;
  if (dash == std::string_view::npos) {
    if (!parse_uint<uint16_t>(trim(s), 65535, &lo) || lo == 0) return false;
    *out = {lo, lo};
    return true;
  }
  if (!parse_uint<uint16_t>(trim(s.substr(0, dash)), 65535, &lo) ||
      !parse_uint<uint16_t>(trim(s.substr(dash + 1)), 65535, &hi) || lo == 0 || hi < lo) {
    return false;
  }
  *out = {lo, hi};
  return true;
}

bool valid_identity(std::string_view id) {
  if (id == "anonymous") return true;
  for (std::string_view p : {"dns:", "uri:", "cn:"}) {
    if (id.size() > p.size() && id.substr(0, p.size()) == p) return true;
  }
  return false;
}

}  // namespace

const PeerConfig* Config::peer_by_address(const Addr16& a) const {
  for (const auto& p : peers) {
    if (p.address == a) return &p;
  }
  return nullptr;
}

const UidRule* Config::rule_for(uint32_t uid) const {
  for (const auto& r : uids) {
    if (r.uid == uid) return &r;
  }
  return nullptr;
}

bool may_lease(const Config& cfg, uint32_t uid, uint16_t port) {
  const UidRule* r = cfg.rule_for(uid);
  if (r == nullptr) return false;
  if (port == 0) return r->ephemeral;
  if (r->any_port) return true;
  for (const auto& [lo, hi] : r->ports) {
    if (port >= lo && port <= hi) return true;
  }
  return false;
}

Result<Config> parse_config(std::string_view text, const std::string& origin) {
  Config cfg;
  enum class Section { kNone, kLocal, kPeer, kUid } section = Section::kNone;
  bool have_address = false, have_listen = false;
  size_t line_no = 0;
  auto err = [&](const std::string& msg) {
    return make_error(EINVAL, origin + ":" + std::to_string(line_no) + ": " + msg);
  };
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    if (line.front() == '[') {
      if (line.back() != ']') return err("section header without ']'");
      std::string_view name = trim(line.substr(1, line.size() - 2));
      if (name == "local") {
        section = Section::kLocal;
      } else if (name.substr(0, 5) == "peer " && !trim(name.substr(5)).empty()) {
        section = Section::kPeer;
        PeerConfig p;
        p.name = std::string(trim(name.substr(5)));
        for (const auto& q : cfg.peers) {
          if (q.name == p.name) return err("peer '" + p.name + "' defined twice");
        }
        cfg.peers.push_back(std::move(p));
      } else if (name.substr(0, 4) == "uid ") {
        section = Section::kUid;
        UidRule r;
        if (!parse_uint<uint32_t>(trim(name.substr(4)), UINT32_MAX - 1, &r.uid)) {
          return err("bad uid in [" + std::string(name) + "]");
        }
        if (cfg.rule_for(r.uid) != nullptr) return err("uid " + std::to_string(r.uid) + " twice");
        cfg.uids.push_back(std::move(r));
      } else {
        return err("unknown section [" + std::string(name) +
                   "] (known: [local], [peer NAME], [uid N])");
      }
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return err("expected 'key = value'");
    std::string key(trim(line.substr(0, eq)));
    std::string_view value = trim(line.substr(eq + 1));
    if (value.empty()) return err("empty value for '" + key + "'");
    auto bad = [&](const char* want) { return err("bad value for '" + key + "': " + want); };

    if (section == Section::kLocal) {
      uint32_t secs = 0;
      if (key == "address") {
        auto a = parse_addr(value);
        if (!a) return err(a.error().message);
        cfg.address = *a;
        have_address = true;
      } else if (key == "listen") {
        auto e = parse_endpoint(value);
        if (!e) return err(e.error().message);
        cfg.listen = *e;
        have_listen = true;
      } else if (key == "certificate") {
        cfg.certificate = value;
      } else if (key == "key") {
        cfg.key = value;
      } else if (key == "ca") {
        cfg.ca = value;
      } else if (key == "mutual_tls") {
        if (!parse_bool(value, &cfg.mutual_tls)) return bad("yes or no");
      } else if (key == "ciphersuites") {
        cfg.ciphersuites = value;
      } else if (key == "protocol") {
        if (!parse_uint<uint8_t>(value, 255, &cfg.protocol) || cfg.protocol == 0) {
          return bad("an IP protocol number 1..255");
        }
      } else if (key == "ephemeral_ports") {
        std::pair<uint16_t, uint16_t> r;
        if (!parse_range(value, &r)) return bad("a port range like 49152-65535");
        cfg.ephemeral_first = r.first;
        cfg.ephemeral_last = r.second;
      } else if (key == "reconnect_interval" || key == "idle_timeout" || key == "adopt_grace" ||
                 key == "handshake_timeout" || key == "open_timeout") {
        if (!parse_uint<uint32_t>(value, 365u * 86400, &secs) || secs == 0) {
          return bad("whole seconds, 1 or more");
        }
        if (key == "reconnect_interval") cfg.reconnect_interval_s = secs;
        if (key == "idle_timeout") cfg.idle_timeout_s = secs;
        if (key == "adopt_grace") cfg.adopt_grace_s = secs;
        if (key == "handshake_timeout") cfg.handshake_timeout_s = secs;
        if (key == "open_timeout") cfg.open_timeout_s = secs;
      } else {
        return err("unknown key '" + key + "' in [local]");
      }
    } else if (section == Section::kPeer) {
      PeerConfig& p = cfg.peers.back();
      if (key == "address") {
        auto a = parse_addr(value);
        if (!a) return err(a.error().message);
        p.address = *a;
      } else if (key == "control") {
        auto e = parse_endpoint(value);
        if (!e) return err(e.error().message);
        p.control = *e;
      } else if (key == "identity") {
        if (!valid_identity(value)) {
          return bad("dns:NAME, uri:URI, cn:NAME or anonymous");
        }
        p.identities.emplace_back(value);
      } else {
        return err("unknown key '" + key + "' in [peer " + p.name + "]");
      }
    } else if (section == Section::kUid) {
      UidRule& r = cfg.uids.back();
      if (key == "ports") {
        if (value == "any") {
          r.any_port = true;
          continue;
        }
        std::string_view rest = value;
        while (!rest.empty()) {
          size_t comma = rest.find(',');
          std::pair<uint16_t, uint16_t> range;
          if (!parse_range(trim(rest.substr(0, comma)), &range)) {
            return bad("'any' or a list like 5000, 6000-6010");
          }
          r.ports.push_back(range);
          rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        }
      } else if (key == "ephemeral") {
        if (!parse_bool(value, &r.ephemeral)) return bad("yes or no");
      } else if (key == "trusted") {
        if (!parse_bool(value, &r.trusted)) return bad("yes or no");
      } else {
        return err("unknown key '" + key + "' in [uid " + std::to_string(r.uid) + "]");
      }
    } else {
      return err("'" + key + "' outside any section");
    }
  }
  line_no = 0;
  auto missing = [&](const std::string& what) {
    return make_error(EINVAL, origin + ": missing " + what);
  };
  if (!have_address) return missing("'address' in [local]");
  if (!have_listen) return missing("'listen' in [local]");
  if (cfg.certificate.empty()) return missing("'certificate' in [local]");
  if (cfg.key.empty()) return missing("'key' in [local]");
  if (cfg.ca.empty()) return missing("'ca' in [local]");
  for (const auto& p : cfg.peers) {
    if (p.address == Addr16{}) return missing("'address' in [peer " + p.name + "]");
    if (p.identities.empty()) return missing("'identity' in [peer " + p.name + "]");
    for (const auto& q : cfg.peers) {
      if (&q != &p && q.address == p.address) {
        return make_error(
            EINVAL, origin + ": peers " + p.name + " and " + q.name + " have the same address");
      }
    }
  }
  return cfg;
}

Result<Config> load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    int e = errno;
    return make_error(e != 0 ? e : ENOENT,
                      "cannot read config " + path + ": " + std::strerror(e != 0 ? e : ENOENT));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace smt::smtd
