// --leak-check's search (tools/smt-decode/leak_check.h): a plaintext run
// planted at any offset of a file is found, chunk boundaries included, and a
// file without it finds nothing.
#include "leak_check.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace smt::decode {
namespace {

std::string write_temp(const std::vector<uint8_t>& bytes) {
  char path[] = "/tmp/smt-leak-XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
  return path;
}

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

TEST(LeakCheck, PlaintextRunOf31BytesIsFoundAtAnyOffsetAcrossChunkBoundaries) {
  const auto message = random_bytes(4096, 1);
  PlaintextWindows w;
  w.add(message);
  EXPECT_EQ(w.size(), 256u);
  // 9 MiB of noise (more than two 4 MiB read chunks); plant 31-byte runs from
  // odd message offsets at odd file offsets, one straddling each chunk edge.
  auto file = random_bytes(9u << 20, 2);
  const size_t spots[] = {13, (4u << 20) - 20, (8u << 20) - 7, file.size() - 40};
  size_t from = 5;
  for (size_t at : spots) {
    std::copy(message.begin() + from, message.begin() + from + 31, file.begin() + at);
    from += 333;
  }
  const std::string path = write_temp(file);
  auto r = w.scan_file(path);
  ::unlink(path.c_str());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->found, 4u);
  EXPECT_EQ(r->windows, 256u);
}

TEST(LeakCheck, CaptureWithoutThePlaintextFindsNothing) {
  PlaintextWindows w;
  w.add(random_bytes(100000, 3));
  const std::string path = write_temp(random_bytes(3u << 20, 4));
  auto r = w.scan_file(path);
  ::unlink(path.c_str());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->found, 0u);
  EXPECT_FALSE(w.scan_file("/nonexistent/capture").ok());
}

}  // namespace
}  // namespace smt::decode
