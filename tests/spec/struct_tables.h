// The offset tables of docs/wire-format.md, checked against include/smt/wire.h.
//
// A table is introduced by `<!-- struct: NAME -->`, followed by a Markdown
// table whose header row is `| Offset | Size | Field | Meaning |` and whose
// rows give the decimal offset, decimal size and C field name of every field
// of that struct (nested structs as one row, e.g. `common`, 28 bytes).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace smt::spec {

struct FieldInfo {
  const char* name;
  size_t offset;
  size_t size;
};

struct StructInfo {
  const char* name;
  size_t size;
  std::vector<FieldInfo> fields;  ///< in declaration order
};

/// Every struct of wire.h the doc must describe, with offsetof/sizeof of
/// each field: the one C++ table the doc is checked against.
const std::vector<StructInfo>& wire_structs();

/// Problems with the struct tables of a Markdown text, one line each: unknown
/// struct or field, wrong offset or size, a field left out, a struct without
/// a table or with two, a malformed table. Empty when the doc is right.
std::vector<std::string> check_struct_tables(std::string_view markdown);

/// The cells of a Markdown table row (`| a | b |` -> {"a", "b"}), trimmed,
/// with surrounding backticks removed; empty if the line is no table row.
std::vector<std::string> table_cells(std::string_view line);

/// The lines of a text, without their '\n'.
std::vector<std::string_view> split_lines(std::string_view text);

}  // namespace smt::spec
