// The record layer's hot path allocates nothing: malloc, calloc, realloc and
// operator new are interposed and counted over 10,000 seal/open calls.
// (glibc 2.36 has no malloc hooks; defining the symbols here overrides libc's
// for the whole process, OpenSSL included.)
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "record/record_cipher.h"
#include "record/sealed_message.h"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void __libc_free(void*);
}

namespace {
std::atomic<bool> counting{false};
std::atomic<uint64_t> allocations{0};
void note() {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1);
}
}  // namespace

extern "C" {
void* malloc(size_t n) {
  note();
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  note();
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  note();
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
}

void* operator new(size_t n) {
  note();
  void* p = __libc_malloc(n ? n : 1);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete(void* p, size_t) noexcept { __libc_free(p); }

namespace smt {
namespace {

TEST(RecordAllocation, CounterSeesAllocations) {
  // The counter itself works (a test that cannot fail is a defect).
  counting = true;
  allocations = 0;
  void* volatile p = std::malloc(16);
  std::free(p);
  auto* q = new int(1);
  delete q;
  counting = false;
  EXPECT_GE(allocations.load(), 2u);
}

TEST(RecordAllocation, TenThousandSealsAndOpensAllocateNothing) {
  for (Suite suite :
       {Suite::kAes128GcmSha256, Suite::kAes256GcmSha384, Suite::kChaCha20Poly1305Sha256}) {
    std::vector<uint8_t> secret(suite_info(suite)->hash_len, 0x11);
    auto keys = derive_traffic_keys(suite, secret);
    ASSERT_TRUE(keys.ok());
    auto s = RecordCipher::create(suite, *keys, CipherDirection::kSeal);
    auto o = RecordCipher::create(suite, *keys, CipherDirection::kOpen);
    ASSERT_TRUE(s.ok() && o.ok());
    s->set_nonce_oracle(nullptr);  // the debug oracle allocates by design
    std::vector<uint8_t> rec(RecordCipher::record_size(1400));
    // Warm-up outside the counted region.
    ASSERT_TRUE(s->seal(0, rec.data(), 1400).ok());
    counting = true;
    allocations = 0;
    size_t opened = 0;
    for (uint64_t i = 1; i <= 5000; ++i) {
      auto n = s->seal(record_seq(i, static_cast<uint16_t>(i)), rec.data(), 1400);
      OpenError err;
      auto r = o->open(record_seq(i, static_cast<uint16_t>(i)), rec.data(), n.ok() ? *n : 0, &err);
      opened += r.content != nullptr;
    }
    counting = false;
    EXPECT_EQ(opened, 5000u);
    EXPECT_EQ(allocations.load(), 0u) << suite_info(suite)->name;
  }
}

}  // namespace
}  // namespace smt
