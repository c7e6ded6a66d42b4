// The `vector` fenced blocks of docs/wire-format.md and docs/key-schedule.md:
// parsing them out of Markdown, printing them, and rewriting them in place.
//
//   ```vector
//   name: data-header
//   key: value
//   ```
//
// One `key: value` per line, `name` first, keys [a-z0-9_]+, no blank lines,
// no duplicate keys. Values run to the end of the line (they may be empty).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace smt::vectors {

/// Ordered key/value pairs of one block (without `name`).
using Fields = std::vector<std::pair<std::string, std::string>>;

struct VectorBlock {
  std::string name;
  Fields fields;
  size_t line = 0;  ///< 1-based line of the opening fence (0 when generated)

  /// The value of `key`, or nullptr.
  const std::string* find(std::string_view key) const;
};

/// Every ```vector block of a Markdown text, in order. A malformed block is an
/// error naming its line.
Result<std::vector<VectorBlock>> parse_vector_blocks(std::string_view markdown);

/// The block as it appears in the docs, fences included, ending in '\n'.
std::string format_vector_block(const VectorBlock& block);

/// The text with every ```vector block replaced by replace(block), which
/// returns the new block text (fences included, ending in '\n').
Result<std::string> replace_vector_blocks(
    std::string_view markdown,
    const std::function<Result<std::string>(const VectorBlock&)>& replace);

}  // namespace smt::vectors
