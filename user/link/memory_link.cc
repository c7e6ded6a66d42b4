#include "link/memory_link.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "smt/wire.h"
#include "wire/data_header.h"
#include "wire/data_packet.h"

namespace smt::link {

namespace {

constexpr uint64_t kNever = UINT64_MAX;
constexpr uint32_t kMaxPacket = 65536;  // TSO segments and injected packets
constexpr int kPriorities = SMT_PRIORITY_MAX + 1;
// Mixed into B->A's seed so two directions with the same seed still differ.
constexpr uint64_t kReverseSeedMix = 0x9e3779b97f4a7c15ull;

bool valid_probability(double p) { return p >= 0.0 && p <= 1.0; }  // false for NaN

Status check_path(const PathConfig& p) {
  if (!valid_probability(p.loss) || !valid_probability(p.duplicate) ||
      !valid_probability(p.reorder)) {
    return make_error(EINVAL, "memory link: loss, duplicate and reorder must be within [0, 1]");
  }
  if (p.queue_packets == 0 || p.rx_queue_packets == 0) {
    return make_error(EINVAL, "memory link: queue bounds must be at least 1");
  }
  return {};
}

}  // namespace

// A FIFO of slot indices that grows by doubling and then never allocates.
class MemoryWire::IndexRing {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  void push(uint32_t v) {
    if (size_ == buf_.size()) grow();
    buf_[(head_ + size_) & (buf_.size() - 1)] = v;
    ++size_;
  }
  uint32_t pop() {
    const uint32_t v = buf_[head_];
    head_ = (head_ + 1) & (buf_.size() - 1);
    --size_;
    return v;
  }

 private:
  void grow() {
    std::vector<uint32_t> next(buf_.empty() ? 16 : buf_.size() * 2);
    for (size_t i = 0; i < size_; ++i) next[i] = buf_[(head_ + i) & (buf_.size() - 1)];
    buf_.swap(next);
    head_ = 0;
  }
  std::vector<uint32_t> buf_;
  size_t head_ = 0;
  size_t size_ = 0;
};

struct MemoryWire::Slot {
  std::unique_ptr<uint8_t[]> data;
  uint32_t cap = 0;
  uint32_t len = 0;
  uint32_t tso_mss = 0;
  uint8_t priority = 0;
  uint64_t time_ns = 0;  // enqueued at (egress) or landed at (rx)
};

struct MemoryWire::Path {
  struct InFlight {
    uint64_t at;
    uint64_t seq;  // ties land in launch order
    uint32_t slot;
    bool operator>(const InFlight& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  PathConfig cfg;
  std::mt19937_64 rng;
  IndexRing queue[kPriorities];
  size_t queued = 0;
  IndexRing cut;  // packets of the TSO segment being serialized
  uint64_t busy_until = 0;
  std::vector<InFlight> flight;  // min-heap on (at, seq)
  WireStats stats;
};

struct MemoryWire::Side {
  UniqueFd event;
  UniqueFd timer;
  UniqueFd epoll;
  IndexRing rx;
  std::vector<uint32_t> lent;  // handed out by the last receive()
  LinkStats stats;
  bool signalled = false;
  uint64_t armed = kNever;
};

class MemoryWire::Endpoint final : public Link {
 public:
  Endpoint(MemoryWire* w, int side) : w_(w), side_(side) {}

  size_t send(std::span<const TxPacket> pkts) override {
    std::lock_guard lock(w_->mu_);
    return w_->send_locked(side_, pkts);
  }
  size_t receive(std::span<RxPacket> out) override {
    std::lock_guard lock(w_->mu_);
    return w_->receive_locked(side_, out);
  }
  int fd() const override { return w_->sides_[side_]->epoll.get(); }
  size_t tx_room() const override {
    std::lock_guard lock(w_->mu_);
    w_->pump_locked(w_->clock_.now_ns());
    const Path& p = *w_->paths_[side_];
    return p.queued >= p.cfg.queue_packets ? 0 : p.cfg.queue_packets - p.queued;
  }
  uint32_t mtu() const override { return w_->cfg_.mtu; }
  bool supports_tso() const override { return w_->cfg_.tso; }
  Addr local_addr(const Addr&) const override {
    return side_ == 0 ? w_->cfg_.addr_a : w_->cfg_.addr_b;
  }
  LinkStats stats() const override {
    std::lock_guard lock(w_->mu_);
    return w_->sides_[side_]->stats;
  }

 private:
  MemoryWire* w_;
  int side_;
};

MemoryWire::MemoryWire(Clock& clock, const MemoryWireConfig& cfg)
    : clock_(clock), cfg_(cfg), real_time_(!clock.is_virtual()) {
  for (int d = 0; d < 2; ++d) {
    paths_[d] = std::make_unique<Path>();
    paths_[d]->cfg = d == 0 ? cfg.a_to_b : cfg.b_to_a;
    paths_[d]->rng.seed(d == 0 ? cfg.a_to_b.seed : cfg.b_to_a.seed ^ kReverseSeedMix);
    sides_[d] = std::make_unique<Side>();
    endpoints_[d] = std::make_unique<Endpoint>(this, d);
  }
  tso_scratch_.resize(kDataHeaderLen + cfg.mtu);
}

MemoryWire::~MemoryWire() = default;

Result<std::unique_ptr<MemoryWire>> MemoryWire::create(Clock& clock, const MemoryWireConfig& cfg) {
  if (is_v4_mapped(cfg.addr_a) != is_v4_mapped(cfg.addr_b)) {
    return make_error(EINVAL, "memory link: both endpoints need the same address family");
  }
  if (cfg.addr_a == cfg.addr_b) {
    return make_error(EINVAL, "memory link: the endpoints need different addresses");
  }
  if (cfg.mtu < ip_header_len(cfg.addr_a) + kDataHeaderLen + 1 || cfg.mtu > kMaxPacket) {
    return make_error(EINVAL, "memory link: MTU must fit a DATA header and at most 64 KiB");
  }
  for (const PathConfig* p : {&cfg.a_to_b, &cfg.b_to_a}) {
    if (Status s = check_path(*p); !s) return s.error();
  }
  std::unique_ptr<MemoryWire> w(new MemoryWire(clock, cfg));
  if (Status s = w->init_fds(); !s) return s.error();
  return w;
}

Status MemoryWire::init_fds() {
  for (auto& side : sides_) {
    side->event.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    side->epoll.reset(epoll_create1(EPOLL_CLOEXEC));
    if (!side->event.valid() || !side->epoll.valid()) {
      return make_error(errno, std::string("memory link: eventfd/epoll: ") + strerror(errno));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (epoll_ctl(side->epoll.get(), EPOLL_CTL_ADD, side->event.get(), &ev) != 0) {
      return make_error(errno, std::string("memory link: epoll_ctl: ") + strerror(errno));
    }
    if (!real_time_) continue;
    side->timer.reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!side->timer.valid() ||
        epoll_ctl(side->epoll.get(), EPOLL_CTL_ADD, side->timer.get(), &ev) != 0) {
      return make_error(errno, std::string("memory link: timerfd: ") + strerror(errno));
    }
  }
  return {};
}

Link& MemoryWire::a() { return *endpoints_[0]; }
Link& MemoryWire::b() { return *endpoints_[1]; }

void MemoryWire::pump() {
  std::lock_guard lock(mu_);
  pump_locked(clock_.now_ns());
}

uint64_t MemoryWire::next_event_ns() {
  std::lock_guard lock(mu_);
  pump_locked(clock_.now_ns());
  return std::min(next_event_locked(0), next_event_locked(1));
}

Status MemoryWire::set_path(Direction d, const PathConfig& p) {
  if (Status s = check_path(p); !s) return s;
  std::lock_guard lock(mu_);
  pump_locked(clock_.now_ns());
  paths_[static_cast<int>(d)]->cfg = p;
  return {};
}

void MemoryWire::set_tap(Tap tap) {
  std::lock_guard lock(mu_);
  tap_ = std::move(tap);
}

void MemoryWire::set_capture(bool on) {
  std::lock_guard lock(mu_);
  capture_ = on;
}

std::vector<CapturedPacket> MemoryWire::captured() const {
  std::lock_guard lock(mu_);
  return capture_log_;
}

void MemoryWire::clear_capture() {
  std::lock_guard lock(mu_);
  capture_log_.clear();
}

Status MemoryWire::inject(Direction d, std::span<const uint8_t> bytes) {
  if (bytes.empty() || bytes.size() > kMaxPacket) {
    return make_error(EINVAL, "memory link: injected packets hold 1 to 65536 bytes");
  }
  std::lock_guard lock(mu_);
  const uint64_t now = clock_.now_ns();
  pump_locked(now);
  const int dir = static_cast<int>(d);
  const uint32_t s = alloc_slot(static_cast<uint32_t>(bytes.size()));
  std::memcpy(slots_[s].data.get(), bytes.data(), bytes.size());
  ++paths_[dir]->stats.injected;
  land(dir, s, now, /*injected=*/true);
  sync_fds(1 - dir, now);
  return {};
}

WireStats MemoryWire::wire_stats(Direction d) const {
  std::lock_guard lock(mu_);
  return paths_[static_cast<int>(d)]->stats;
}

size_t MemoryWire::queued(Direction d) const {
  std::lock_guard lock(mu_);
  return paths_[static_cast<int>(d)]->queued;
}

size_t MemoryWire::send_locked(int side, std::span<const TxPacket> pkts) {
  const uint64_t now = clock_.now_ns();
  pump_locked(now);
  Path& path = *paths_[side];
  LinkStats& st = sides_[side]->stats;
  const Addr& peer = side == 0 ? cfg_.addr_b : cfg_.addr_a;
  const uint32_t iph = ip_header_len(peer);
  size_t taken = 0;
  for (const TxPacket& p : pkts) {
    if (p.tso_mss != 0 && !cfg_.tso) {
      ++st.tx_errors;  // refused, not taken: see the header
      break;
    }
    if (path.queued >= path.cfg.queue_packets) break;
    ++taken;
    bool ok = p.data != nullptr && p.len != 0 && p.peer == peer;
    if (ok && p.tso_mss == 0) {
      ok = p.len + iph <= cfg_.mtu;
    } else if (ok) {
      ok = p.len > kDataHeaderLen && p.len <= kMaxPacket && p.data[13] == SMT_TYPE_DATA &&
           kDataHeaderLen + p.tso_mss + iph <= cfg_.mtu;
    }
    if (!ok) {
      ++st.tx_errors;
      continue;
    }
    const uint32_t s = alloc_slot(p.len);
    Slot& sl = slots_[s];
    std::memcpy(sl.data.get(), p.data, p.len);
    sl.tso_mss = p.tso_mss;
    sl.priority = std::min<uint8_t>(p.priority, SMT_PRIORITY_MAX);
    sl.time_ns = now;
    path.queue[sl.priority].push(s);
    ++path.queued;
  }
  pump_locked(now);
  return taken;
}

size_t MemoryWire::receive_locked(int side, std::span<RxPacket> out) {
  Side& sd = *sides_[side];
  for (uint32_t s : sd.lent) free_slot(s);
  sd.lent.clear();
  const uint64_t now = clock_.now_ns();
  pump_locked(now);
  const Addr& local = side == 0 ? cfg_.addr_a : cfg_.addr_b;
  const Addr& peer = side == 0 ? cfg_.addr_b : cfg_.addr_a;
  size_t n = 0;
  while (n < out.size() && !sd.rx.empty()) {
    const uint32_t s = sd.rx.pop();
    sd.lent.push_back(s);
    const Slot& sl = slots_[s];
    out[n] = RxPacket{sl.data.get(), sl.len, peer, local, 0};
    ++sd.stats.rx_packets;
    sd.stats.rx_bytes += sl.len;
    ++n;
  }
  sync_fds(side, now);
  return n;
}

void MemoryWire::pump_locked(uint64_t now) {
  advance(0, now);
  advance(1, now);
  sync_fds(0, now);
  sync_fds(1, now);
}

void MemoryWire::advance(int dir, uint64_t now) {
  Path& path = *paths_[dir];
  while (path.busy_until <= now) {
    uint32_t s;
    if (!next_packet(dir, &s)) break;
    launch(dir, s, std::max(path.busy_until, slots_[s].time_ns));
  }
  auto later = [](const Path::InFlight& x, const Path::InFlight& y) { return x > y; };
  while (!path.flight.empty() && path.flight.front().at <= now) {
    std::pop_heap(path.flight.begin(), path.flight.end(), later);
    const Path::InFlight f = path.flight.back();
    path.flight.pop_back();
    land(dir, f.slot, f.at, /*injected=*/false);
  }
}

bool MemoryWire::next_packet(int dir, uint32_t* slot) {
  Path& path = *paths_[dir];
  if (path.cut.empty()) {
    int prio = kPriorities - 1;
    while (prio >= 0 && path.queue[prio].empty()) --prio;
    if (prio < 0) return false;
    const uint32_t s = path.queue[prio].pop();
    --path.queued;
    if (slots_[s].tso_mss == 0) {
      *slot = s;
      return true;
    }
    // Slot data buffers do not move when slots_ grows; Slot references do.
    const uint8_t* seg = slots_[s].data.get();
    const uint32_t seg_len = slots_[s].len;
    const uint32_t mss = slots_[s].tso_mss;
    const uint8_t seg_prio = slots_[s].priority;
    const uint64_t seg_time = slots_[s].time_ns;
    tso_segment(std::span<const uint8_t>(seg, seg_len), mss, tso_scratch_.data(),
                [&](std::span<const uint8_t> pkt) {
                  const uint32_t c = alloc_slot(static_cast<uint32_t>(pkt.size()));
                  Slot& cs = slots_[c];
                  std::memcpy(cs.data.get(), pkt.data(), pkt.size());
                  cs.tso_mss = 0;
                  cs.priority = seg_prio;
                  cs.time_ns = seg_time;
                  path.cut.push(c);
                });
    free_slot(s);
    if (path.cut.empty()) return false;  // cannot happen: send() checked the length
  }
  *slot = path.cut.pop();
  return true;
}

void MemoryWire::launch(int dir, uint32_t s, uint64_t start_ns) {
  Path& path = *paths_[dir];
  LinkStats& st = sides_[dir]->stats;
  const uint32_t len = slots_[s].len;
  const uint64_t wire_bytes = len + ip_header_len(cfg_.addr_a);
  const uint64_t rate = path.cfg.rate_bps;
  const uint64_t ser_ns = rate == 0 ? 0 : (wire_bytes * 8 * 1'000'000'000ull + rate - 1) / rate;
  path.busy_until = start_ns + ser_ns;
  ++st.tx_packets;
  st.tx_bytes += len;
  if (len > 13 && slots_[s].data[13] == SMT_TYPE_DATA) ++st.tx_data_packets;

  const bool lost = draw_unit(dir) < path.cfg.loss;
  const bool dup = draw_unit(dir) < path.cfg.duplicate;
  const bool reorder = draw_unit(dir) < path.cfg.reorder;
  uint64_t jitter = 0;
  if (reorder && path.cfg.reorder_max_ns > 0) {
    jitter =
        path.cfg.reorder_max_ns == kNever ? path.rng() : path.rng() % (path.cfg.reorder_max_ns + 1);
  }
  if (lost) {
    ++path.stats.lost;
    free_slot(s);
    return;
  }
  if (reorder) ++path.stats.reordered;
  const uint64_t at = path.busy_until + path.cfg.delay_ns + jitter;
  auto later = [](const Path::InFlight& x, const Path::InFlight& y) { return x > y; };
  path.flight.push_back({at, seq_++, s});
  std::push_heap(path.flight.begin(), path.flight.end(), later);
  if (dup) {
    const uint32_t d = alloc_slot(len);
    std::memcpy(slots_[d].data.get(), slots_[s].data.get(), len);
    ++path.stats.duplicated;
    path.flight.push_back({at, seq_++, d});
    std::push_heap(path.flight.begin(), path.flight.end(), later);
  }
}

void MemoryWire::land(int dir, uint32_t s, uint64_t at, bool injected) {
  Path& path = *paths_[dir];
  Side& dest = *sides_[1 - dir];
  Slot& sl = slots_[s];
  if (capture_) {
    capture_log_.push_back(
        CapturedPacket{static_cast<Direction>(dir), at, injected,
                       std::vector<uint8_t>(sl.data.get(), sl.data.get() + sl.len)});
  }
  if (!injected && tap_ &&
      tap_(static_cast<Direction>(dir), std::span<uint8_t>(sl.data.get(), sl.len)) ==
          TapVerdict::kDrop) {
    ++path.stats.tap_dropped;
    free_slot(s);
    return;
  }
  if (dest.rx.size() >= path.cfg.rx_queue_packets) {
    ++path.stats.rx_overflow;
    ++dest.stats.rx_dropped;
    free_slot(s);
    return;
  }
  sl.time_ns = at;
  dest.rx.push(s);
  ++path.stats.landed;
}

uint64_t MemoryWire::next_event_locked(int dir) const {
  const Path& path = *paths_[dir];
  uint64_t t = kNever;
  if (path.queued > 0 || !path.cut.empty()) t = path.busy_until;
  if (!path.flight.empty()) t = std::min(t, path.flight.front().at);
  return t;
}

void MemoryWire::sync_fds(int side, uint64_t now) {
  Side& sd = *sides_[side];
  if (!sd.rx.empty()) {
    if (!sd.signalled) {
      const uint64_t one = 1;
      if (write(sd.event.get(), &one, sizeof one) == sizeof one) sd.signalled = true;
    }
    return;
  }
  if (sd.signalled) {
    uint64_t v;
    if (read(sd.event.get(), &v, sizeof v) == sizeof v || errno == EAGAIN) sd.signalled = false;
  }
  if (!real_time_) return;
  // Wake the receiver at the next event in its incoming direction; setting
  // the timer also clears an expiry that already made the fd readable.
  const uint64_t next = next_event_locked(1 - side);
  if (next == sd.armed) return;
  itimerspec its{};
  if (next != kNever) {
    const uint64_t delta = next > now ? next - now : 1;
    its.it_value.tv_sec = static_cast<time_t>(delta / 1'000'000'000ull);
    its.it_value.tv_nsec = static_cast<long>(delta % 1'000'000'000ull);
  }
  timerfd_settime(sd.timer.get(), 0, &its, nullptr);
  sd.armed = next;
}

uint32_t MemoryWire::alloc_slot(uint32_t len) {
  uint32_t s;
  if (free_.empty()) {
    slots_.emplace_back();
    s = static_cast<uint32_t>(slots_.size() - 1);
  } else {
    s = free_.back();
    free_.pop_back();
  }
  Slot& sl = slots_[s];
  if (sl.cap < len) {
    sl.cap = std::max(len, cfg_.mtu);
    sl.data = std::make_unique_for_overwrite<uint8_t[]>(sl.cap);
  }
  sl.len = len;
  sl.tso_mss = 0;
  return s;
}

void MemoryWire::free_slot(uint32_t s) { free_.push_back(s); }

double MemoryWire::draw_unit(int dir) {
  return static_cast<double>(paths_[dir]->rng() >> 11) * 0x1.0p-53;
}

}  // namespace smt::link
