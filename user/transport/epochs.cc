#include "transport/epochs.h"

namespace smt {

namespace {

Result<RecordCipher> cipher_for(Suite suite, std::span<const uint8_t> secret, CipherDirection dir,
                                CipherLimits limits) {
  auto keys = derive_traffic_keys(suite, secret);
  if (!keys.ok()) return keys.error();
  return RecordCipher::create(suite, *keys, dir, limits);
}

}  // namespace

// ---- sending -----------------------------------------------------------------

Result<TxEpochs> TxEpochs::create(Suite suite, std::span<const uint8_t> secret0,
                                  CipherLimits limits, uint64_t now_ns, NonceOracle* oracle) {
  TxEpochs t;
  t.oracle_ = oracle;
  t.suite_ = suite;
  t.limits_ = limits;
  t.secret_ = SecretBytes(secret0);
  auto c = cipher_for(suite, secret0, CipherDirection::kSeal, limits);
  if (!c.ok()) return c.error();
  if (oracle != nullptr) c->set_nonce_oracle(oracle);
  t.epochs_.push_back({0, std::make_shared<RecordCipher>(std::move(*c)), 0, false, now_ns});
  return t;
}

TxEpochs::Epoch* TxEpochs::find(uint16_t e) {
  for (auto& x : epochs_) {
    if (x.n == e) return &x;
  }
  return nullptr;
}

void TxEpochs::message_started(uint16_t e) {
  if (Epoch* x = find(e)) ++x->live;
}

void TxEpochs::message_ended(uint16_t e) {
  Epoch* x = find(e);
  if (x == nullptr || x->live == 0) return;
  --x->live;
  // Older epochs are kept only while messages still use them.
  while (epochs_.size() > 1 && epochs_.front().live == 0) epochs_.pop_front();
}

void TxEpochs::acked(uint16_t e) {
  if (Epoch* x = find(e)) x->acked = true;
}

Result<bool> TxEpochs::maybe_advance(uint64_t now_ns, uint64_t interval_ns) {
  Epoch& cur = epochs_.back();
  const bool due = cur.cipher->needs_rekey() || now_ns - cur.started_ns >= interval_ns;
  if (!due || cur.n == UINT16_MAX) return false;
  // n+2 only after the peer acknowledged something sealed under n+1, and
  // only when nothing sealed under n is still in flight.
  if (cur.n != 0 && !cur.acked) return false;
  if (cur.n != 0) {
    const Epoch* prev = find(static_cast<uint16_t>(cur.n - 1));
    if (prev != nullptr && prev->live != 0) return false;
  }
  auto next = next_traffic_secret(suite_, secret_.span());
  if (!next.ok()) return next.error();
  auto c = cipher_for(suite_, next->span(), CipherDirection::kSeal, limits_);
  if (!c.ok()) return c.error();
  if (oracle_ != nullptr) c->set_nonce_oracle(oracle_);
  secret_ = *next;
  const uint16_t n = static_cast<uint16_t>(cur.n + 1);
  epochs_.push_back({n, std::make_shared<RecordCipher>(std::move(*c)), 0, false, now_ns});
  while (epochs_.size() > 1 && epochs_.front().live == 0) epochs_.pop_front();
  return true;
}

// ---- receiving ---------------------------------------------------------------

Result<RxEpochs> RxEpochs::create(Suite suite, std::span<const uint8_t> secret0) {
  RxEpochs r;
  r.suite_ = suite;
  auto c0 = cipher_for(suite, secret0, CipherDirection::kOpen, {});
  if (!c0.ok()) return c0.error();
  auto s1 = next_traffic_secret(suite, secret0);
  if (!s1.ok()) return s1.error();
  auto c1 = cipher_for(suite, s1->span(), CipherDirection::kOpen, {});
  if (!c1.ok()) return c1.error();
  r.slots_.push_back(Slot{0, std::move(*c0), true});
  r.slots_.push_back(Slot{1, std::move(*c1), false});
  r.next_secret_ = *s1;
  return r;
}

RxEpochs::Slot* RxEpochs::find(uint16_t e) {
  for (auto& s : slots_) {
    if (s.n == e) return &s;
  }
  return nullptr;
}

uint16_t RxEpochs::committed() const {
  for (auto it = slots_.rbegin(); it != slots_.rend(); ++it) {
    if (it->committed) return it->n;
  }
  return 0;
}

bool RxEpochs::accepts(const Slot& s, bool is_request, uint64_t id) const {
  const uint16_t c = committed();
  if (s.n >= c) return true;  // the committed epoch or the one derived ahead
  const Slot* newer = nullptr;
  for (const auto& x : slots_) {
    if (x.n == s.n + 1) newer = &x;
  }
  if (newer == nullptr) return false;
  return is_request ? id < newer->min_request_id : id < newer->client_marker;
}

Status RxEpochs::authenticated(uint16_t e, bool is_request, uint64_t id, uint64_t now_ns,
                               uint64_t next_client_id, uint64_t old_epoch_life_ns) {
  Slot* s = find(e);
  if (s == nullptr) return make_error(ENOENT, "no such epoch");
  if (is_request && id < s->min_request_id) s->min_request_id = id;
  if (s->committed) return {};
  // The epoch derived ahead authenticated: commit it.
  s->committed = true;
  s->client_marker = next_client_id;
  std::erase_if(slots_, [&](const Slot& x) { return x.n + 1 < e; });
  for (auto& x : slots_) {
    if (x.n + 1 == e) x.expires_ns = now_ns + old_epoch_life_ns;
  }
  if (e == UINT16_MAX) return {};
  auto next = next_traffic_secret(suite_, next_secret_.span());
  if (!next.ok()) return next.error();
  auto c = cipher_for(suite_, next->span(), CipherDirection::kOpen, {});
  if (!c.ok()) return c.error();
  slots_.push_back(Slot{static_cast<uint16_t>(e + 1), std::move(*c), false});
  next_secret_ = *next;
  return {};
}

void RxEpochs::expire(uint64_t now_ns) {
  std::erase_if(slots_, [&](const Slot& x) { return x.expires_ns <= now_ns; });
}

uint64_t RxEpochs::next_expiry() const {
  uint64_t t = UINT64_MAX;
  for (const auto& x : slots_) t = x.expires_ns < t ? x.expires_ns : t;
  return t;
}

bool RxEpochs::needs_new_session() const {
  for (const auto& x : slots_) {
    if (x.opener.failed_opens() > kFailedOpenSoftLimit) return true;
  }
  return false;
}

bool RxEpochs::must_close() const {
  for (const auto& x : slots_) {
    if (x.opener.spent()) return true;
  }
  return false;
}

uint64_t RxEpochs::failed_opens() const {
  uint64_t n = 0;
  for (const auto& x : slots_) n += x.opener.failed_opens();
  return n;
}

}  // namespace smt
