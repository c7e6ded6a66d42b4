// smtctl: attach/detach SMT's XDP program and inspect its pins (docs/smtctl.md).
// Modelled on xdp-loader: one subcommand per verb, own error messages, quiet
// unless -v. Exit codes: 0 ok, 1 failure, 2 usage.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

#include "common/unique_fd.h"
#include "loader/global_maps.h"
#include "loader/libbpf_log.h"
#include "loader/xdp_attach.h"
#include "loader/xdp_features.h"
#include "smt/wire.h"
#include "smtd/smtd_client.h"
#include "wire/drop_reason.h"

namespace {

using smt::Status;
using smt::UniqueFd;
namespace ld = smt::loader;

constexpr int kOk = 0;
constexpr int kFail = 1;
constexpr int kUsage = 2;

int fail(const std::string& msg) {
  std::cerr << "smtctl: " << msg << "\n";
  return kFail;
}

bool require_root() {
  if (geteuid() == 0) return true;
  std::cerr << "smtctl: must run as root (needs CAP_BPF and CAP_NET_ADMIN)\n";
  return false;
}

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

/// IPv4-mapped addresses print as IPv4.
std::string addr_text(const uint8_t a[16]) {
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char buf[INET6_ADDRSTRLEN] = {};
  if (std::memcmp(a, kMapped, sizeof kMapped) == 0) {
    inet_ntop(AF_INET, a + 12, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, a, buf, sizeof buf);
  }
  return buf;
}

int cmd_attach(const std::string& root, const std::string& ifname, const std::string& mode) {
  if (!require_root()) return kFail;
  ld::AttachOptions o;
  o.pin_root = root;
  o.ifname = ifname;
  o.mode = mode == "skb" ? ld::XdpMode::kSkb : ld::XdpMode::kNative;
  auto att = ld::attach_xdp(o);
  if (!att) return fail(att.error().message);
  if (att->mode != o.mode) {
    std::cerr << "smtctl: " << ifname << " refused native XDP; attached in skb mode\n";
  }
  return kOk;
}

int cmd_detach(const std::string& root, const std::string& ifname) {
  if (!require_root()) return kFail;
  const int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0) return fail("no such interface '" + ifname + "' in this network namespace");
  if (Status s = ld::detach_xdp(root, ifindex); !s) {
    if (s.error().code == ENOENT) return fail("nothing attached to " + ifname + " under " + root);
    return fail(s.error().message);
  }
  return kOk;
}

int cmd_status(const std::string& root, bool json) {
  if (!require_root()) return kFail;
  auto list = ld::list_xdp(root);
  if (!list) return fail(list.error().message);
  std::ostringstream out;
  if (json) {
    out << "{\"pin_root\":" << json_str(root) << ",\"interfaces\":[";
    for (size_t i = 0; i < list->size(); ++i) {
      const auto& a = (*list)[i];
      out << (i ? "," : "") << "{\"ifindex\":" << a.ifindex << ",\"ifname\":" << json_str(a.ifname)
          << ",\"pin_dir\":" << json_str(a.pin_dir) << ",\"mode\":\"" << ld::xdp_mode_name(a.mode)
          << "\",\"prog_id\":" << a.prog_id << ",\"attached\":" << (a.ours ? "true" : "false")
          << ",\"link\":" << (a.link_pinned ? "true" : "false") << "}";
    }
    out << "]}\n";
  } else {
    if (list->empty()) out << "no interfaces attached under " << root << "\n";
    for (const auto& a : *list) {
      out << (a.ifname.empty() ? "(gone)" : a.ifname) << " ifindex " << a.ifindex << ": "
          << (a.ours ? "attached" : "NOT attached (stale pins)") << ", mode "
          << ld::xdp_mode_name(a.mode) << ", prog id " << a.prog_id << ", pins " << a.pin_dir
          << "\n";
    }
  }
  std::cout << out.str();
  return kOk;
}

int cmd_stats(const std::string& root, bool json) {
  if (!require_root()) return kFail;
  auto list = ld::list_xdp(root);
  if (!list) return fail(list.error().message);
  std::ostringstream out;
  if (json) out << "{\"interfaces\":[";
  bool first = true;
  for (const auto& a : *list) {
    auto st = ld::read_xdp_stats(a);
    if (!st) return fail(st.error().message);
    if (json) {
      out << (first ? "" : ",") << "{\"ifindex\":" << a.ifindex
          << ",\"ifname\":" << json_str(a.ifname) << ",\"counters\":{";
      for (uint32_t k = 0; k < SMT_XDP_STAT_COUNT; ++k) {
        out << (k ? "," : "") << "\"" << ld::xdp_stat_name(k) << "\":" << (*st)[k];
      }
      out << "}}";
    } else {
      out << (a.ifname.empty() ? "(gone)" : a.ifname) << " (ifindex " << a.ifindex << ")\n";
      for (uint32_t k = 0; k < SMT_XDP_STAT_COUNT; ++k) {
        out << "  " << ld::xdp_stat_name(k) << " " << (*st)[k] << "\n";
      }
    }
    first = false;
  }
  if (json) out << "]}\n";
  std::cout << out.str();
  return kOk;
}

// CONTRACT §7's engine counters of one session, as its holder last reported
// them to smtd; "" when smtd has none.
std::string engine_text(const smtd_app_session_stats* e, bool json) {
  if (e == nullptr) return json ? ",\"engine\":null" : "";
  std::ostringstream o;
  std::string drops;
  for (size_t i = 0; i < static_cast<size_t>(smt::DropReason::kCount) && i < SMTD_APP_STATS_DROPS;
       ++i) {
    if (e->drops[i] == 0) continue;
    const char* name = smt::drop_reason_name(static_cast<smt::DropReason>(i));
    if (json) {
      drops += (drops.empty() ? "\"" : ",\"") + std::string(name) + "\":" +
               std::to_string(e->drops[i]);
    } else {
      drops += " " + std::string(name) + "=" + std::to_string(e->drops[i]);
    }
  }
  if (json) {
    o << ",\"engine\":{\"tx_epoch\":" << e->tx_epoch << ",\"rx_epoch\":" << e->rx_epoch
      << ",\"sigma\":" << e->sigma << ",\"sigma_limit\":" << e->sigma_limit
      << ",\"auth_failures\":" << e->auth_failures << ",\"replays\":" << e->replays
      << ",\"drops\":{" << drops << "}}";
  } else {
    o << "\n    epochs tx " << e->tx_epoch << " rx " << e->rx_epoch << ", sigma " << e->sigma
      << "/" << e->sigma_limit << ", auth_failures " << e->auth_failures << ", replays "
      << e->replays << ", drops" << (drops.empty() ? " none" : drops);
  }
  return o.str();
}

int cmd_sessions(const std::string& root, const std::string& smtd_socket, bool json) {
  if (!require_root()) return kFail;
  // The engine's counters live in the applications; smtd holds their reports.
  std::vector<smtd_app_session_stats> reports;
  auto client = smt::smtd::SmtdClient::connect(smtd_socket);
  auto got = client.ok() ? client->session_stats() : client.error();
  if (got.ok()) {
    reports = std::move(*got);
  } else {
    std::cerr << "smtctl: no engine counters: " << got.error().message << "\n";
  }
  const std::string path = root + "/" + SMT_MAP_SESSIONS;
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd) {
    int err = errno;
    if (err == ENOENT) return fail("no sessions map at " + path + " (nothing started here yet)");
    return fail("cannot open " + path + ": " + ld::libbpf_error_string(err));
  }
  // Tag failures are per interface: the sum over every attached one.
  auto attached = ld::list_xdp(root);
  if (!attached) return fail(attached.error().message);
  std::ostringstream out;
  if (json) out << "{\"sessions\":[";
  smt_session_key key, next;
  smt_session_value val;
  bool first = true;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd.get(), prev, &next) == 0) {
    key = next;
    prev = &key;
    if (bpf_map_lookup_elem(fd.get(), &key, &val) != 0) continue;  // deleted meanwhile
    // Only identifiers: the value's keys (rx/tx_ctl_key) are never printed.
    const std::string local = addr_text(key.local_addr), remote = addr_text(key.remote_addr);
    const unsigned lport = ntohs(key.local_port), rport = ntohs(key.remote_port);
    uint64_t mac_failures = 0;
    for (const auto& a : *attached) {
      auto n = ld::read_session_mac_failures(a, key);
      if (n) mac_failures += *n;
    }
    const smtd_app_session_stats* engine = nullptr;
    for (const auto& r : reports) {
      if (r.serial == val.serial && r.local_port == lport && r.peer_port == rport &&
          std::memcmp(r.peer_addr, key.remote_addr, 16) == 0) {
        engine = &r;
      }
    }
    if (json) {
      out << (first ? "" : ",") << "{\"local\":" << json_str(local) << ",\"local_port\":" << lport
          << ",\"remote\":" << json_str(remote) << ",\"remote_port\":" << rport
          << ",\"serial\":" << val.serial << ",\"owner\":" << val.owner_id
          << ",\"queue\":" << val.owner_queue << ",\"slot\":" << val.session_slot
          << ",\"flags\":" << unsigned{val.flags} << ",\"mac_failures\":" << mac_failures
          << engine_text(engine, true) << "}";
    } else {
      out << local << ":" << lport << " <- " << remote << ":" << rport << " serial " << val.serial
          << " owner " << val.owner_id << " queue " << val.owner_queue << " slot "
          << val.session_slot << " flags 0x" << std::hex << unsigned{val.flags} << std::dec
          << ((val.flags & SMT_SESSION_F_AF_XDP) ? " (af_xdp)" : "") << " mac_failures "
          << mac_failures << engine_text(engine, false) << "\n";
    }
    first = false;
  }
  if (json) out << "]}\n";
  std::cout << out.str();
  return kOk;
}

int cmd_features(const std::string& ifname) {
  const unsigned ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) return fail("no such interface '" + ifname + "' in this network namespace");
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return fail(std::string("socket: ") + std::strerror(errno));
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::strncpy(ifr.ifr_name, ifname.c_str(), IF_NAMESIZE - 1);
  int mtu = ::ioctl(s.get(), SIOCGIFMTU, &ifr) == 0 ? ifr.ifr_mtu : -1;

  struct ethtool_drvinfo drv;
  std::memset(&drv, 0, sizeof drv);
  drv.cmd = ETHTOOL_GDRVINFO;
  ifr.ifr_data = reinterpret_cast<char*>(&drv);
  std::string driver = ::ioctl(s.get(), SIOCETHTOOL, &ifr) == 0 ? drv.driver : "";

  struct ethtool_channels ch;
  std::memset(&ch, 0, sizeof ch);
  ch.cmd = ETHTOOL_GCHANNELS;
  ifr.ifr_data = reinterpret_cast<char*>(&ch);
  bool have_ch = ::ioctl(s.get(), SIOCETHTOOL, &ifr) == 0;

  // What the driver itself reports (netdev netlink family, Linux 6.3+).
  auto xf = ld::query_xdp_features(static_cast<int>(ifindex));
  std::cout << "interface " << ifname << " ifindex " << ifindex << "\n"
            << "  driver " << (driver.empty() ? "unknown" : driver) << "\n";
  if (xf) {
    const uint64_t f = xf->flags;
    std::cout << "  xdp features " << ld::xdp_feature_names(f) << "\n"
              << "  native XDP " << ((f & ld::kXdpBasic) ? "yes" : "no (skb mode only)") << "\n"
              << "  AF_XDP " << ((f & ld::kXdpRedirect) ? "yes" : "only over skb-mode XDP")
              << ", zero-copy " << ((f & ld::kXdpXskZeroCopy) ? "yes" : "no (copy mode)")
              << "\n";
  } else {
    std::cout << "  xdp features unknown: " << xf.error().message
              << " (skb mode works on any interface)\n";
  }
  std::cout << "  mtu " << mtu << "\n";
  if (have_ch) {
    std::cout << "  queues rx " << ch.rx_count << " tx " << ch.tx_count << " combined "
              << ch.combined_count << "\n";
  } else {
    std::cout << "  queues unknown (driver does not report channels)\n";
  }
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"smtctl: attach SMT's XDP program and inspect its state"};
  app.require_subcommand(1);
  std::string root = ld::kDefaultPinRoot;
  bool verbose = false;
  app.add_option("--pin-root", root, "bpffs directory of the instance's pins")
      ->capture_default_str();
  app.add_flag("-v,--verbose", verbose, "show libbpf's messages");

  std::string ifname, mode = "native";
  bool json = false;
  auto* attach = app.add_subcommand("attach", "load and attach the XDP program to IFACE");
  attach->add_option("IFACE", ifname, "interface")->required();
  attach->add_option("--mode", mode, "native (falls back to skb) or skb")
      ->check(CLI::IsMember({"native", "skb"}));
  auto* detach = app.add_subcommand("detach", "detach the XDP program from IFACE, remove its pins");
  detach->add_option("IFACE", ifname, "interface")->required();
  auto* status = app.add_subcommand("status", "list attached interfaces");
  status->add_flag("--json", json, "JSON output");
  auto* stats = app.add_subcommand("stats", "per-interface XDP counters (summed over CPUs)");
  stats->add_flag("--json", json, "JSON output");
  auto* sessions = app.add_subcommand(
      "sessions", "sessions in sessions_hash with their counters (no key material)");
  sessions->add_flag("--json", json, "JSON output");
  std::string smtd_socket = smt::smtd::default_socket_path();
  sessions->add_option("--socket", smtd_socket, "smtd's unix socket (engine counters)")
      ->capture_default_str();
  auto* features = app.add_subcommand("features", "what IFACE offers for XDP");
  features->add_option("IFACE", ifname, "interface")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kUsage;
  }
  ld::set_libbpf_verbose(verbose);

  if (attach->parsed()) return cmd_attach(root, ifname, mode);
  if (detach->parsed()) return cmd_detach(root, ifname);
  if (status->parsed()) return cmd_status(root, json);
  if (stats->parsed()) return cmd_stats(root, json);
  if (sessions->parsed()) return cmd_sessions(root, smtd_socket, json);
  if (features->parsed()) return cmd_features(ifname);
  return kUsage;
}
