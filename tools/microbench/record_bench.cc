// smt-record-bench: RecordCipher::seal and ::open (TLS_AES_128_GCM_SHA256), in
// place, for records whose TLS content is N bytes (N = 64, 1400, 16384).
//
// "Content" is what RecordCipher protects: in SMT it is the 16-byte inner
// header plus message data, and the AEAD also covers the 1-byte content type
// and authenticates the 5-byte record header. So a record of content N seals
// N + 1 bytes and is N + 22 bytes on the wire. bytes_per_second counts N per
// record, the same N that `openssl speed -aead -bytes N` counts, so the two
// compare at the same N (tools/microbench/run.sh prints them side by side).
//
// seal: one record sealed again and again in place, each under a fresh
// sequence number (nonces never repeat).
// open: opening is destructive (the ciphertext becomes plaintext), so every
// iteration first copies a batch of sealed records (~64 KiB, untimed) and
// then times opening the batch; the copy leaves the batch hot in cache, as a
// received packet would be.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "record/key_schedule.h"
#include "record/record_cipher.h"

namespace smt {
namespace {

constexpr Suite kSuite = Suite::kAes128GcmSha256;
constexpr size_t kBatchBytes = 64 * 1024;

/// A fixed benchmark secret: never a real key.
std::vector<uint8_t> bench_secret() { return std::vector<uint8_t>(32, 0x5a); }

bool make_cipher(CipherDirection dir, std::optional<RecordCipher>* out) {
  auto keys = derive_traffic_keys(kSuite, bench_secret());
  if (!keys.ok()) return false;
  auto c = RecordCipher::create(kSuite, *keys, dir);
  if (!c.ok()) return false;
  out->emplace(std::move(c).value());
  (*out)->set_nonce_oracle(nullptr);  // measure the release data path
  return true;
}

void BM_Seal(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  std::optional<RecordCipher> sealer;
  if (!make_cipher(CipherDirection::kSeal, &sealer)) {
    state.SkipWithError("cannot key the cipher");
    return;
  }
  std::vector<uint8_t> rec(RecordCipher::record_size(n), 0x42);
  uint64_t seq = 0;
  for (auto _ : state) {
    auto r = sealer->seal(seq++, rec.data(), n);
    if (!r.ok()) {
      state.SkipWithError("seal failed");
      break;
    }
    benchmark::DoNotOptimize(rec.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void BM_Open(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  std::optional<RecordCipher> sealer, opener;
  if (!make_cipher(CipherDirection::kSeal, &sealer) ||
      !make_cipher(CipherDirection::kOpen, &opener)) {
    state.SkipWithError("cannot key the ciphers");
    return;
  }
  const size_t slot = RecordCipher::record_size(n);
  const size_t batch = std::max<size_t>(1, kBatchBytes / slot);
  std::vector<uint8_t> sealed(batch * slot), work(batch * slot);
  for (size_t i = 0; i < batch; ++i) {
    uint8_t* rec = sealed.data() + i * slot;
    std::memset(rec + kTlsHeaderLen, static_cast<int>(i), n);
    if (!sealer->seal(i, rec, n).ok()) {
      state.SkipWithError("seal failed");
      return;
    }
  }
  for (auto _ : state) {
    std::memcpy(work.data(), sealed.data(), work.size());
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < batch; ++i) {
      OpenError err;
      auto o = opener->open(i, work.data() + i * slot, slot, &err);
      if (o.content == nullptr || o.len != n) {
        state.SkipWithError("open failed");
        break;
      }
      benchmark::DoNotOptimize(o.content);
    }
    const auto t1 = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch * n));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
  state.counters["records_per_iteration"] = static_cast<double>(batch);
}

BENCHMARK(BM_Seal)->Arg(64)->Arg(1400)->Arg(16384);
BENCHMARK(BM_Open)->Arg(64)->Arg(1400)->Arg(16384)->UseManualTime();

}  // namespace
}  // namespace smt

BENCHMARK_MAIN();
