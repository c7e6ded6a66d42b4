#include "struct_tables.h"

#include <cstddef>
#include <map>
#include <set>

#include "smt/wire.h"

namespace smt::spec {
namespace {

#define SMT_FIELD(s, f) \
  FieldInfo { #f, offsetof(struct s, f), sizeof(static_cast <struct s*>(nullptr)->f) }
#define SMT_STRUCT(s, ...)                \
  StructInfo {                            \
#s, sizeof(struct s), { __VA_ARGS__ } \
  }

const std::vector<StructInfo> kStructs = {
    SMT_STRUCT(smt_common_hdr, SMT_FIELD(smt_common_hdr, sport), SMT_FIELD(smt_common_hdr, dport),
               SMT_FIELD(smt_common_hdr, seg_pos), SMT_FIELD(smt_common_hdr, incoming),
               SMT_FIELD(smt_common_hdr, doff), SMT_FIELD(smt_common_hdr, type),
               SMT_FIELD(smt_common_hdr, version), SMT_FIELD(smt_common_hdr, flags),
               SMT_FIELD(smt_common_hdr, checksum), SMT_FIELD(smt_common_hdr, urgent),
               SMT_FIELD(smt_common_hdr, message_id)),
    SMT_STRUCT(smt_data_hdr, SMT_FIELD(smt_data_hdr, common),
               SMT_FIELD(smt_data_hdr, message_length), SMT_FIELD(smt_data_hdr, record_offset),
               SMT_FIELD(smt_data_hdr, record_index), SMT_FIELD(smt_data_hdr, epoch),
               SMT_FIELD(smt_data_hdr, priority), SMT_FIELD(smt_data_hdr, reserved),
               SMT_FIELD(smt_data_hdr, tag)),
    SMT_STRUCT(smt_ctl_hdr, SMT_FIELD(smt_ctl_hdr, common), SMT_FIELD(smt_ctl_hdr, control_seq),
               SMT_FIELD(smt_ctl_hdr, tag)),
    SMT_STRUCT(smt_grant_body, SMT_FIELD(smt_grant_body, offset),
               SMT_FIELD(smt_grant_body, priority), SMT_FIELD(smt_grant_body, reserved),
               SMT_FIELD(smt_grant_body, window_base)),
    SMT_STRUCT(smt_resend_body, SMT_FIELD(smt_resend_body, offset),
               SMT_FIELD(smt_resend_body, length), SMT_FIELD(smt_resend_body, priority),
               SMT_FIELD(smt_resend_body, reserved)),
    SMT_STRUCT(smt_rpc_unknown_body, SMT_FIELD(smt_rpc_unknown_body, flags),
               SMT_FIELD(smt_rpc_unknown_body, reserved)),
    SMT_STRUCT(smt_ack_body, SMT_FIELD(smt_ack_body, window_base), SMT_FIELD(smt_ack_body, ids)),
    SMT_STRUCT(smt_tls_hdr, SMT_FIELD(smt_tls_hdr, type), SMT_FIELD(smt_tls_hdr, legacy_version),
               SMT_FIELD(smt_tls_hdr, length)),
    SMT_STRUCT(smt_inner_hdr, SMT_FIELD(smt_inner_hdr, offset),
               SMT_FIELD(smt_inner_hdr, padded_length), SMT_FIELD(smt_inner_hdr, true_length),
               SMT_FIELD(smt_inner_hdr, flags), SMT_FIELD(smt_inner_hdr, reserved)),
    SMT_STRUCT(smt_mac_prefix, SMT_FIELD(smt_mac_prefix, version), SMT_FIELD(smt_mac_prefix, type),
               SMT_FIELD(smt_mac_prefix, sport), SMT_FIELD(smt_mac_prefix, dport),
               SMT_FIELD(smt_mac_prefix, zero), SMT_FIELD(smt_mac_prefix, message_id)),
    SMT_STRUCT(smt_data_mac_input, SMT_FIELD(smt_data_mac_input, prefix),
               SMT_FIELD(smt_data_mac_input, incoming),
               SMT_FIELD(smt_data_mac_input, message_length),
               SMT_FIELD(smt_data_mac_input, record_offset),
               SMT_FIELD(smt_data_mac_input, record_index), SMT_FIELD(smt_data_mac_input, epoch),
               SMT_FIELD(smt_data_mac_input, doff), SMT_FIELD(smt_data_mac_input, flags),
               SMT_FIELD(smt_data_mac_input, priority), SMT_FIELD(smt_data_mac_input, reserved)),
    SMT_STRUCT(smt_session_key, SMT_FIELD(smt_session_key, local_addr),
               SMT_FIELD(smt_session_key, remote_addr), SMT_FIELD(smt_session_key, local_port),
               SMT_FIELD(smt_session_key, remote_port), SMT_FIELD(smt_session_key, reserved)),
    SMT_STRUCT(smt_session_value, SMT_FIELD(smt_session_value, serial),
               SMT_FIELD(smt_session_value, rx_ctl_key), SMT_FIELD(smt_session_value, tx_ctl_key),
               SMT_FIELD(smt_session_value, owner_id), SMT_FIELD(smt_session_value, owner_queue),
               SMT_FIELD(smt_session_value, session_slot), SMT_FIELD(smt_session_value, version),
               SMT_FIELD(smt_session_value, initiator), SMT_FIELD(smt_session_value, flags)),
    SMT_STRUCT(smt_port_lease_key, SMT_FIELD(smt_port_lease_key, port),
               SMT_FIELD(smt_port_lease_key, reserved)),
    SMT_STRUCT(smt_port_lease_value, SMT_FIELD(smt_port_lease_value, owner_uid),
               SMT_FIELD(smt_port_lease_value, owner_pid),
               SMT_FIELD(smt_port_lease_value, owner_id), SMT_FIELD(smt_port_lease_value, flags)),
};

#undef SMT_FIELD
#undef SMT_STRUCT

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// "<!-- struct: NAME -->" -> NAME; empty otherwise.
std::string struct_marker(std::string_view line) {
  constexpr std::string_view kOpen = "<!-- struct:", kClose = "-->";
  line = trim(line);
  if (line.substr(0, kOpen.size()) != kOpen || line.size() < kOpen.size() + kClose.size() ||
      line.substr(line.size() - kClose.size()) != kClose) {
    return "";
  }
  return std::string(trim(line.substr(kOpen.size(), line.size() - kOpen.size() - kClose.size())));
}

bool parse_decimal(const std::string& s, size_t* out) {
  if (s.empty() || s.size() > 9) return false;
  size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  *out = v;
  return true;
}

bool is_separator(const std::vector<std::string>& cells) {
  if (cells.empty()) return false;
  for (const auto& c : cells) {
    if (c.empty() || c.find_first_not_of("-: ") != std::string::npos) return false;
  }
  return true;
}

const StructInfo* find_struct(const std::string& name) {
  for (const auto& s : kStructs) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

}  // namespace

const std::vector<StructInfo>& wire_structs() { return kStructs; }

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

std::vector<std::string> table_cells(std::string_view line) {
  line = trim(line);
  if (line.size() < 2 || line.front() != '|' || line.back() != '|') return {};
  line = line.substr(1, line.size() - 2);
  std::vector<std::string> cells;
  size_t pos = 0;
  while (true) {
    size_t bar = line.find('|', pos);
    std::string_view c =
        trim(line.substr(pos, bar == std::string_view::npos ? line.npos : bar - pos));
    if (c.size() >= 2 && c.front() == '`' && c.back() == '`') c = c.substr(1, c.size() - 2);
    cells.emplace_back(c);
    if (bar == std::string_view::npos) break;
    pos = bar + 1;
  }
  return cells;
}

std::vector<std::string> check_struct_tables(std::string_view markdown) {
  const auto lines = split_lines(markdown);
  std::vector<std::string> problems;
  std::set<std::string> documented;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string name = struct_marker(lines[i]);
    if (name.empty()) continue;
    const std::string where = "line " + std::to_string(i + 1) + " (" + name + "): ";
    const StructInfo* s = find_struct(name);
    if (s == nullptr) {
      problems.push_back(where + "no such struct in include/smt/wire.h");
      continue;
    }
    if (!documented.insert(name).second) problems.push_back(where + "struct documented twice");
    size_t j = i + 1;
    while (j < lines.size() && trim(lines[j]).empty()) ++j;
    const std::vector<std::string> header = {"Offset", "Size", "Field", "Meaning"};
    if (j >= lines.size() || table_cells(lines[j]) != header) {
      problems.push_back(where + "expected the header row | Offset | Size | Field | Meaning |");
      continue;
    }
    if (++j >= lines.size() || !is_separator(table_cells(lines[j]))) {
      problems.push_back(where + "expected the table's separator row");
      continue;
    }
    std::map<std::string, bool> seen;
    for (const auto& f : s->fields) seen[f.name] = false;
    for (++j; j < lines.size(); ++j) {
      const auto cells = table_cells(lines[j]);
      if (cells.empty()) break;
      const std::string row = "line " + std::to_string(j + 1) + " (" + name + "): ";
      if (cells.size() != 4) {
        problems.push_back(row + "a row needs 4 cells");
        continue;
      }
      size_t off = 0, size = 0;
      if (!parse_decimal(cells[0], &off) || !parse_decimal(cells[1], &size)) {
        problems.push_back(row + "offset and size must be decimal numbers");
        continue;
      }
      const FieldInfo* f = nullptr;
      for (const auto& fi : s->fields) {
        if (cells[2] == fi.name) f = &fi;
      }
      if (f == nullptr) {
        problems.push_back(row + "'" + cells[2] + "' is no field of struct " + name);
        continue;
      }
      if (seen[f->name]) problems.push_back(row + "field '" + cells[2] + "' listed twice");
      seen[f->name] = true;
      if (off != f->offset) {
        problems.push_back(row + cells[2] + " is at offset " + std::to_string(f->offset) +
                           ", the doc says " + cells[0]);
      }
      if (size != f->size) {
        problems.push_back(row + cells[2] + " is " + std::to_string(f->size) +
                           " bytes, the doc says " + cells[1]);
      }
    }
    for (const auto& [field, present] : seen) {
      if (!present) problems.push_back(where + "field '" + field + "' is left out");
    }
    i = j - 1;
  }
  for (const auto& s : kStructs) {
    if (documented.count(s.name) == 0) {
      problems.push_back(std::string("struct ") + s.name + " has no <!-- struct: " + s.name +
                         " --> table");
    }
  }
  return problems;
}

}  // namespace smt::spec
