// Helpers shared by the test binaries.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace smt::test {

/// True when SMT_REQUIRE_ALL=1: a test that would skip must fail instead, so a
/// broken probe on CI cannot turn privileged tests into silent skips.
bool require_all();

/// Hex string (whitespace ignored) to bytes; aborts the test on bad input.
std::vector<uint8_t> unhex(std::string_view hex);
std::string hex(const uint8_t* p, size_t n);
inline std::string hex(const std::vector<uint8_t>& v) { return hex(v.data(), v.size()); }

/// Runs a shell command, returns its exit status and captures stdout.
int run_command(const std::string& cmd, std::string* out);

}  // namespace smt::test

/// Skips the test with `reason` when `cond` is false, or fails it under
/// SMT_REQUIRE_ALL=1. Use for missing privileges or kernel features only.
#define SMT_REQUIRE_OR_SKIP(cond, reason)                            \
  do {                                                               \
    if (!(cond)) {                                                   \
      if (::smt::test::require_all()) {                              \
        FAIL() << "SMT_REQUIRE_ALL=1 but unavailable: " << (reason); \
      } else {                                                       \
        GTEST_SKIP() << (reason);                                    \
      }                                                              \
    }                                                                \
  } while (0)
