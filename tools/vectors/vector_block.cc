#include "vector_block.h"

#include <cerrno>

namespace smt::vectors {
namespace {

constexpr std::string_view kOpen = "```vector";
constexpr std::string_view kClose = "```";

bool valid_key(std::string_view k) {
  if (k.empty()) return false;
  for (char c : k) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

std::string_view rstrip(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Splits text into lines (without their '\n'), remembering where each starts.
struct Line {
  std::string_view text;
  size_t begin;  // offset of the line in the text
  size_t end;    // offset one past its '\n' (or the text's end)
};

std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t stop = nl == std::string_view::npos ? text.size() : nl;
    size_t next = nl == std::string_view::npos ? text.size() : nl + 1;
    out.push_back({text.substr(pos, stop - pos), pos, next});
    pos = next;
  }
  return out;
}

Error at(size_t line, const std::string& what) {
  return make_error(EINVAL, "line " + std::to_string(line) + ": " + what);
}

// Parses the block whose opening fence is lines[first]; sets *close to the
// index of its closing fence.
Result<VectorBlock> parse_one(const std::vector<Line>& lines, size_t first, size_t* close) {
  VectorBlock b;
  b.line = first + 1;
  bool have_name = false;
  for (size_t i = first + 1; i < lines.size(); ++i) {
    std::string_view l = rstrip(lines[i].text);
    if (l == kClose) {
      if (!have_name) return at(b.line, "vector block without a name");
      *close = i;
      return b;
    }
    size_t colon = l.find(':');
    if (colon == std::string_view::npos) return at(i + 1, "expected 'key: value'");
    std::string_view key = l.substr(0, colon);
    std::string_view value = l.substr(colon + 1);
    if (!value.empty()) {
      if (value.front() != ' ') return at(i + 1, "expected a space after ':'");
      value.remove_prefix(1);
    }
    if (!valid_key(key)) return at(i + 1, "bad key '" + std::string(key) + "'");
    if (!have_name) {
      if (key != "name") return at(i + 1, "the first key of a vector block must be 'name'");
      if (value.empty()) return at(i + 1, "empty vector name");
      b.name = std::string(value);
      have_name = true;
      continue;
    }
    if (key == "name" || b.find(key) != nullptr) {
      return at(i + 1, "duplicate key '" + std::string(key) + "'");
    }
    b.fields.emplace_back(std::string(key), std::string(value));
  }
  return at(b.line, "vector block is not closed");
}

}  // namespace

const std::string* VectorBlock::find(std::string_view key) const {
  for (const auto& [k, v] : fields) {
    if (k == key) return &v;
  }
  return nullptr;
}

Result<std::vector<VectorBlock>> parse_vector_blocks(std::string_view markdown) {
  auto lines = split_lines(markdown);
  std::vector<VectorBlock> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (rstrip(lines[i].text) != kOpen) continue;
    size_t close = 0;
    auto b = parse_one(lines, i, &close);
    if (!b.ok()) return b.error();
    out.push_back(std::move(b).value());
    i = close;
  }
  return out;
}

std::string format_vector_block(const VectorBlock& block) {
  std::string s(kOpen);
  s += "\nname: " + block.name + "\n";
  for (const auto& [k, v] : block.fields) {
    s += k;
    s += v.empty() ? ":" : ": ";
    s += v;
    s += '\n';
  }
  s += kClose;
  s += '\n';
  return s;
}

Result<std::string> replace_vector_blocks(
    std::string_view markdown,
    const std::function<Result<std::string>(const VectorBlock&)>& replace) {
  auto lines = split_lines(markdown);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (rstrip(lines[i].text) != kOpen) {
      out.append(markdown.substr(lines[i].begin, lines[i].end - lines[i].begin));
      continue;
    }
    size_t close = 0;
    auto b = parse_one(lines, i, &close);
    if (!b.ok()) return b.error();
    auto text = replace(*b);
    if (!text.ok()) return at(i + 1, text.error().message);
    out += *text;
    i = close;
  }
  return out;
}

}  // namespace smt::vectors
