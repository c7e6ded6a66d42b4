// smt-vectors: prints the worked test vectors of docs/wire-format.md and
// docs/key-schedule.md, computed with the project's code from fixed inputs.
//
//   smt-vectors                      every vector block, in doc order
//   smt-vectors --doc wire-format    only that doc's blocks (or key-schedule)
//   smt-vectors --update FILE.md     regenerate FILE's blocks in place, by name
//   smt-vectors --check FILE.md      recompute FILE's blocks; exit 1 on a mismatch
//
// The doc a file belongs to is taken from its name (wire-format.md or
// key-schedule.md). Output is deterministic: no randomness, no clock.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "spec_vectors.h"

namespace {

using smt::vectors::VectorBlock;

int usage() {
  std::fprintf(stderr,
               "usage: smt-vectors [--doc wire-format|key-schedule]\n"
               "       smt-vectors --update FILE.md\n"
               "       smt-vectors --check FILE.md\n");
  return 2;
}

bool read_file(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream s;
  s << f.rdbuf();
  *out = s.str();
  return true;
}

// wire-format or key-schedule, from the file name.
std::string doc_of(const std::string& path) {
  for (std::string_view d : {smt::vectors::kWireFormatDoc, smt::vectors::kKeyScheduleDoc}) {
    const std::string suffix = std::string(d) + ".md";
    if (path.size() >= suffix.size() &&
        path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return std::string(d);
    }
  }
  return "";
}

int print(const std::string& doc) {
  bool first = true;
  for (const auto& def : smt::vectors::vector_defs()) {
    if (!doc.empty() && def.doc != doc) continue;
    auto b = smt::vectors::generate_vector(def);
    if (!b.ok()) {
      std::fprintf(stderr, "smt-vectors: %s\n", b.error().message.c_str());
      return 1;
    }
    if (!first) std::cout << '\n';
    first = false;
    std::cout << smt::vectors::format_vector_block(*b);
  }
  return 0;
}

int update(const std::string& path) {
  std::string text;
  if (!read_file(path, &text)) {
    std::fprintf(stderr, "smt-vectors: cannot read %s\n", path.c_str());
    return 1;
  }
  auto out = smt::vectors::replace_vector_blocks(
      text, [](const VectorBlock& b) -> smt::Result<std::string> {
        const auto* def = smt::vectors::find_vector_def(b.name);
        if (def == nullptr) return smt::make_error(ENOENT, "unknown vector '" + b.name + "'");
        auto g = smt::vectors::generate_vector(*def);
        if (!g.ok()) return g.error();
        return smt::vectors::format_vector_block(*g);
      });
  if (!out.ok()) {
    std::fprintf(stderr, "smt-vectors: %s: %s\n", path.c_str(), out.error().message.c_str());
    return 1;
  }
  if (*out == text) return 0;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << *out;
  if (!f) {
    std::fprintf(stderr, "smt-vectors: cannot write %s\n", path.c_str());
    return 1;
  }
  std::fprintf(stderr, "smt-vectors: updated %s\n", path.c_str());
  return 0;
}

int check(const std::string& path) {
  std::string text;
  if (!read_file(path, &text)) {
    std::fprintf(stderr, "smt-vectors: cannot read %s\n", path.c_str());
    return 1;
  }
  const std::string doc = doc_of(path);
  if (doc.empty()) {
    std::fprintf(stderr, "smt-vectors: %s is neither wire-format.md nor key-schedule.md\n",
                 path.c_str());
    return 2;
  }
  auto problems = smt::vectors::check_vector_blocks(text, doc);
  for (const auto& p : problems) std::fprintf(stderr, "%s: %s\n", path.c_str(), p.c_str());
  return problems.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 1) return print("");
  if (argc != 3) return usage();
  const std::string opt = argv[1], arg = argv[2];
  if (opt == "--doc") {
    if (arg != smt::vectors::kWireFormatDoc && arg != smt::vectors::kKeyScheduleDoc) return usage();
    return print(arg);
  }
  if (opt == "--update") {
    if (doc_of(arg).empty()) return usage();
    return update(arg);
  }
  if (opt == "--check") return check(arg);
  return usage();
}
