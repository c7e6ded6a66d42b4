#include "leak_check.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace smt::decode {
namespace {

uint64_t mix(const uint8_t* p) {
  uint64_t a, b;
  std::memcpy(&a, p, 8);
  std::memcpy(&b, p + 8, 8);
  uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 32);
}

}  // namespace

size_t PlaintextWindows::Hash::operator()(const std::array<uint8_t, 16>& w) const {
  return static_cast<size_t>(mix(w.data()));
}

void PlaintextWindows::add(std::span<const uint8_t> plaintext) {
  for (size_t i = 0; i + 16 <= plaintext.size(); i += 16) {
    if (set_.size() >= kMaxWindows) {
      ++skipped_;
      continue;
    }
    std::array<uint8_t, 16> w;
    std::memcpy(w.data(), plaintext.data() + i, 16);
    if (set_.insert(w).second) {
      const uint64_t bit = mix(w.data()) % kPrefilterBits;
      prefilter_[bit / 64] |= uint64_t{1} << (bit % 64);
    }
  }
}

Result<LeakScan> PlaintextWindows::scan_file(const std::string& path) const {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) return make_error(errno, "cannot open " + path + ": " + std::strerror(errno));
  LeakScan r;
  r.windows = set_.size();
  // Chunks overlap by 15 bytes so no window straddling a boundary is missed.
  std::vector<uint8_t> buf(size_t{1} << 22);
  size_t have = 0;
  for (;;) {
    const size_t n = std::fread(buf.data() + have, 1, buf.size() - have, f.get());
    have += n;
    if (have >= 16) {
      for (size_t i = 0; i + 16 <= have; ++i) {
        const uint64_t bit = mix(buf.data() + i) % kPrefilterBits;
        if ((prefilter_[bit / 64] >> (bit % 64) & 1) == 0) continue;
        std::array<uint8_t, 16> w;
        std::memcpy(w.data(), buf.data() + i, 16);
        if (set_.count(w) != 0) ++r.found;
      }
      r.bytes += have - 15;
      std::memmove(buf.data(), buf.data() + have - 15, 15);
      have = 15;
    }
    if (n == 0) break;
  }
  if (std::ferror(f.get())) return make_error(EIO, "reading " + path + " failed");
  return r;
}

}  // namespace smt::decode
