#include "capture_decoder.h"

#include <openssl/evp.h>

#include <cinttypes>
#include <cstring>

#include "common/bytes.h"
#include "smtd/address.h"
#include "wire/control_packet.h"

namespace smt::decode {
namespace {

// Larger messages are refused before anything is allocated for them (the
// engine's own default limit is 64 MiB).
constexpr uint32_t kMaxMessage = 1u << 30;
// TSO slices held at once while their records are incomplete.
constexpr size_t kMaxStages = 4096;
constexpr size_t kMaxWire = RecordCipher::record_size(SMT_RECORD_MAX_CONTENT);

const char* dir_name(int dir) { return dir == kInitToResp ? "i->r" : "r->i"; }

const char* control_name(uint8_t type) {
  switch (type) {
    case SMT_TYPE_GRANT:
      return "GRANT";
    case SMT_TYPE_RESEND:
      return "RESEND";
    case SMT_TYPE_RPC_UNKNOWN:
      return "RPC_UNKNOWN";
    case SMT_TYPE_BUSY:
      return "BUSY";
    case SMT_TYPE_NEED_ACK:
      return "NEED_ACK";
    case SMT_TYPE_ACK:
      return "ACK";
    default:
      return nullptr;
  }
}

std::string endpoint(const std::array<uint8_t, 16>& a, uint16_t port) {
  return smtd::format_endpoint({a, port});
}

std::string json_string(std::string_view s) {
  std::string o = "\"";
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') {
      o += '\\';
      o += static_cast<char>(ch);
    } else if (ch < 0x20 || ch >= 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", ch);
      o += b;
    } else {
      o += static_cast<char>(ch);
    }
  }
  return o + "\"";
}

std::string hex_of(std::span<const uint8_t> d) {
  static const char kDigits[] = "0123456789abcdef";
  std::string o;
  o.reserve(2 * d.size());
  for (uint8_t b : d) {
    o += kDigits[b >> 4];
    o += kDigits[b & 15];
  }
  return o;
}

// Printable ASCII as is, the rest as C escapes: one line whatever the bytes.
std::string escaped(std::span<const uint8_t> d) {
  std::string o;
  for (uint8_t b : d) {
    switch (b) {
      case '\\':
        o += "\\\\";
        break;
      case '"':
        o += "\\\"";
        break;
      case '\n':
        o += "\\n";
        break;
      case '\r':
        o += "\\r";
        break;
      case '\t':
        o += "\\t";
        break;
      default:
        if (b >= 0x20 && b < 0x7f) {
          o += static_cast<char>(b);
        } else {
          char h[8];
          std::snprintf(h, sizeof h, "\\x%02x", b);
          o += h;
        }
    }
  }
  return o;
}

// A JSON object built field by field, in order.
class JsonLine {
 public:
  JsonLine& str(const char* k, std::string_view v) {
    key(k);
    s_ += json_string(v);
    return *this;
  }
  JsonLine& num(const char* k, uint64_t v) {
    key(k);
    s_ += std::to_string(v);
    return *this;
  }
  JsonLine& boolean(const char* k, bool v) {
    key(k);
    s_ += v ? "true" : "false";
    return *this;
  }
  std::string done() const { return s_ + "}"; }

 private:
  void key(const char* k) {
    s_ += s_.size() == 1 ? "" : ",";
    s_ += json_string(k) + ":";
  }
  std::string s_ = "{";
};

std::array<uint8_t, 16> digest16(std::span<const uint8_t> d) {
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  std::array<uint8_t, 16> out{};
  if (EVP_Digest(d.data(), d.size(), md, &len, EVP_sha256(), nullptr) == 1 && len >= 16) {
    std::memcpy(out.data(), md, 16);
  }
  return out;
}

}  // namespace

// One direction of one session: its epoch openers, derived on demand.
struct CaptureDecoder::DirKeys {
  std::map<uint16_t, std::unique_ptr<RecordCipher>> openers;
  // The newest secret ratcheted to, so epoch n+1 costs one step after n.
  bool have_cursor = false;
  uint16_t cursor_epoch = 0;
  SecretBytes cursor;
};

struct CaptureDecoder::Session {
  LoggedSession log;
  DirKeys dirs[2];
};

CaptureDecoder::CaptureDecoder(std::vector<LoggedSession> sessions, const DecodeOptions& opts,
                               uint32_t linktype, std::FILE* out)
    : opts_(opts), linktype_(linktype), out_(out) {
  // Whole records only reach the assembler (slices are joined here first),
  // so its staging budget is never used.
  budget_.per_message = 0;
  budget_.total = 0;
  for (auto& l : sessions) {
    auto s = std::make_unique<Session>();
    s->log = std::move(l);
    const size_t idx = sessions_.size();
    if (s->log.protocol == opts_.protocol) {
      const auto& L = s->log;
      by_tuple_[{L.initiator_addr, L.initiator_port, L.responder_addr, L.responder_port}].push_back(
          {idx, kInitToResp});
      by_tuple_[{L.responder_addr, L.responder_port, L.initiator_addr, L.initiator_port}].push_back(
          {idx, kRespToInit});
    }
    sessions_.push_back(std::move(s));
  }
}

CaptureDecoder::~CaptureDecoder() = default;

void CaptureDecoder::emit(const std::string& line) {
  std::fputs(line.c_str(), out_);
  std::fputc('\n', out_);
}

std::string CaptureDecoder::session_text(const Ctx& ctx) const {
  if (ctx.session == SIZE_MAX) return "";
  return " serial " + std::to_string(sessions_[ctx.session]->log.serial) + " " + dir_name(ctx.dir);
}

void CaptureDecoder::fail(const Ctx& ctx, const std::string& what, const DataHeader* h) {
  ++c_.failures;
  if (opts_.json) {
    JsonLine j;
    j.str("type", "error").str("time", ctx.time).str("src", ctx.src).str("dst", ctx.dst);
    if (ctx.session != SIZE_MAX) {
      j.num("serial", sessions_[ctx.session]->log.serial).str("direction", dir_name(ctx.dir));
    }
    if (h != nullptr) {
      j.num("id", h->message_id).num("record", h->record_index).num("epoch", h->epoch);
    }
    emit(j.str("error", what).done());
    return;
  }
  std::string line = ctx.time + " " + ctx.src + " > " + ctx.dst + session_text(ctx);
  if (h != nullptr) {
    line += " id " + std::to_string(h->message_id) + " record " + std::to_string(h->record_index) +
            " epoch " + std::to_string(h->epoch);
  }
  emit(line + ": ERROR " + what);
}

void CaptureDecoder::on_frame(const PcapFrame& f) {
  ++c_.frames;
  char t[40];
  std::snprintf(t, sizeof t, "%" PRIu64 ".%09u", f.ts_sec, f.ts_nsec);
  Ctx ctx;
  ctx.time = t;
  IpPacket ip;
  const FrameKind k = parse_frame(linktype_, f.data, &ip);
  if (k == FrameKind::kNotIp) {
    ++c_.other_traffic;
    return;
  }
  if (k != FrameKind::kIp) {
    // Only a packet that is recognisably ours counts as a failure.
    if (ip.protocol != opts_.protocol || ip.family == 0) {
      ++c_.other_traffic;
      return;
    }
    ++c_.smt_packets;
    ctx.src = "?";
    ctx.dst = "?";
    fail(ctx, std::string("record ") + std::to_string(f.index) +
                  (k == FrameKind::kTruncated
                       ? ": IP packet cut short (captured " + std::to_string(f.data.size()) +
                             " of " + std::to_string(f.orig_len) + " bytes; raise the snaplen)"
                       : ": malformed IP header"));
    return;
  }
  if (ip.protocol != opts_.protocol) {
    ++c_.other_traffic;
    return;
  }
  ++c_.smt_packets;
  on_smt(ctx, ip, ip.payload);
}

void CaptureDecoder::on_smt(const Ctx& base, const IpPacket& ip, std::span<const uint8_t> pkt) {
  Ctx ctx = base;
  const bool ports = pkt.size() >= 4;
  ctx.src = endpoint(ip.src, ports ? load_be16(&pkt[0]) : 0);
  ctx.dst = endpoint(ip.dst, ports ? load_be16(&pkt[2]) : 0);
  if (ip.fragment) {
    fail(ctx, "IP fragment (SMT never fragments; XDP drops these): not decoded");
    return;
  }
  if (pkt.size() < sizeof(struct smt_common_hdr)) {
    fail(ctx,
         "SMT packet shorter than its common header (" + std::to_string(pkt.size()) + " bytes)");
    return;
  }
  if (pkt[13] == SMT_TYPE_DATA) {
    ++c_.data_packets;
    on_data(ctx, ip, pkt);
  } else {
    ++c_.control_packets;
    on_control(ctx, ip, pkt);
  }
}

void CaptureDecoder::on_control(const Ctx& base, const IpPacket& ip, std::span<const uint8_t> pkt) {
  ControlPacket c;
  DropReason why;
  if (!parse_control_packet(pkt, &c, &why)) {
    fail(base, std::string("malformed control packet (") + drop_reason_name(why) + ")");
    return;
  }
  if (opts_.quiet_control) return;
  Ctx ctx = base;
  // Without verifying its tag, a control packet belongs to a session only if
  // its addresses and ports name exactly one.
  auto it = by_tuple_.find({ip.src, c.sport, ip.dst, c.dport});
  if (it != by_tuple_.end() && it->second.size() == 1) {
    ctx.session = it->second[0].first;
    ctx.dir = it->second[0].second;
  }
  const char* name = control_name(c.type);
  if (opts_.json) {
    JsonLine j;
    j.str("type", "control").str("time", ctx.time).str("src", ctx.src).str("dst", ctx.dst);
    if (ctx.session != SIZE_MAX) {
      j.num("serial", sessions_[ctx.session]->log.serial).str("direction", dir_name(ctx.dir));
    }
    emit(j.str("packet", name)
             .num("id", c.message_id)
             .num("control_seq", c.control_seq)
             .boolean("verified", false)
             .done());
    return;
  }
  emit(ctx.time + " " + ctx.src + " > " + ctx.dst + session_text(ctx) + " " + name + " id " +
       std::to_string(c.message_id) + " control_seq " + std::to_string(c.control_seq) +
       " (control packet: tag not verified)");
}

RecordCipher* CaptureDecoder::opener(size_t session, int dir, uint16_t epoch, std::string* why) {
  Session& s = *sessions_[session];
  DirKeys& d = s.dirs[dir];
  if (auto it = d.openers.find(epoch); it != d.openers.end()) return it->second.get();
  // Start from the newest secret at or below `epoch`: a logged one, or the
  // ratchet's cursor.
  const auto& logged = s.log.traffic[dir];
  auto it = logged.upper_bound(epoch);
  bool have = false;
  uint16_t at = 0;
  SecretBytes secret;
  if (it != logged.begin()) {
    --it;
    have = true;
    at = it->first;
    secret = it->second;
  }
  if (d.have_cursor && d.cursor_epoch <= epoch && (!have || d.cursor_epoch > at)) {
    have = true;
    at = d.cursor_epoch;
    secret = d.cursor;
  }
  if (!have) {
    *why = "no traffic secret logged for this direction at or below epoch " + std::to_string(epoch);
    return nullptr;
  }
  while (at < epoch) {
    auto next = next_traffic_secret(s.log.suite, secret.span());
    if (!next.ok()) {
      *why = next.error().message;
      return nullptr;
    }
    secret = *next;
    ++at;
  }
  d.have_cursor = true;
  d.cursor_epoch = at;
  d.cursor = secret;
  auto keys = derive_traffic_keys(s.log.suite, secret.span());
  if (!keys.ok()) {
    *why = keys.error().message;
    return nullptr;
  }
  auto cipher = RecordCipher::create(s.log.suite, *keys, CipherDirection::kOpen);
  if (!cipher.ok()) {
    *why = cipher.error().message;
    return nullptr;
  }
  auto owned = std::make_unique<RecordCipher>(std::move(*cipher));
  RecordCipher* raw = owned.get();
  d.openers.emplace(epoch, std::move(owned));
  return raw;
}

void CaptureDecoder::on_data(Ctx ctx, const IpPacket& ip, std::span<const uint8_t> pkt) {
  DataHeader h;
  DropReason why;
  if (!parse_data_header(pkt, &h, &why)) {
    fail(ctx, std::string("malformed DATA header (") + drop_reason_name(why) + ")");
    return;
  }
  const TupleKey tuple{ip.src, h.sport, ip.dst, h.dport};
  auto it = by_tuple_.find(tuple);
  if (it == by_tuple_.end()) {
    // One line per unknown flow; every packet of it is counted.
    if (unknown_reported_.insert(tuple).second) {
      fail(ctx, "no session in the key log for these addresses and ports (protocol " +
                    std::to_string(opts_.protocol) + ")");
    } else {
      ++c_.failures;
    }
    return;
  }
  // Several sessions (serials) may share the addresses and ports over time:
  // the header tag under each one's control key tells which sent this.
  bool found = false;
  for (const auto& [idx, dir] : it->second) {
    const auto& ctl = sessions_[idx]->log.ctl[dir];
    if (!ctl || verify_data_header_tag(pkt, h, ctl->data())) {
      ctx.session = idx;
      ctx.dir = dir;
      found = true;
      break;
    }
  }
  if (!found) {
    fail(ctx, "DATA header tag verifies under no logged session for these addresses and ports", &h);
    return;
  }
  if (h.message_length > kMaxMessage) {
    fail(ctx, "message length " + std::to_string(h.message_length) + " over the decoder's limit",
         &h);
    return;
  }
  const MsgKey mk{ctx.session, ctx.dir, h.message_id};
  if (!opts_.check_nonces && delivered_.count(mk) != 0) {
    ++c_.duplicates;
    return;
  }
  std::string no_key;
  RecordCipher* op = opener(ctx.session, ctx.dir, h.epoch, &no_key);
  if (op == nullptr) {
    fail(ctx, "no key for epoch " + std::to_string(h.epoch) + ": " + no_key, &h);
    return;
  }
  const auto payload = pkt.subspan(kDataHeaderLen);
  if (is_whole_record(h, payload.data(), payload.size())) {
    on_record(ctx, h, *op, std::vector<uint8_t>(payload.begin(), payload.end()));
    return;
  }
  // A TSO slice: join the record's bytes first (bounds before anything).
  if (payload.empty() || h.seg_pos > kMaxWire || payload.size() > kMaxWire - h.seg_pos) {
    fail(ctx,
         "DATA slice outside any possible record (seg_pos " + std::to_string(h.seg_pos) + ", " +
             std::to_string(payload.size()) + " bytes)",
         &h);
    return;
  }
  const auto sk = std::make_tuple(ctx.session, ctx.dir, h.message_id, h.record_index);
  auto st_it = stages_.find(sk);
  if (st_it == stages_.end()) {
    if (stages_.size() >= kMaxStages) {
      fail(ctx, "too many partial records held; slice dropped", &h);
      return;
    }
    st_it = stages_.emplace(sk, Stage{}).first;
    st_it->second.bytes.resize(kMaxWire);
    st_it->second.have.resize(kMaxWire);
  }
  Stage& st = st_it->second;
  bool conflict = false;
  for (size_t i = 0; i < payload.size(); ++i) {
    const size_t pos = h.seg_pos + i;
    if (!st.have[pos]) {
      st.have[pos] = true;
      st.bytes[pos] = payload[i];
      ++st.covered;
    } else if (st.bytes[pos] != payload[i]) {
      conflict = true;
    }
  }
  st.max_end = std::max(st.max_end, h.seg_pos + payload.size());
  if (conflict) {
    fail(ctx,
         "slice differs from earlier bytes of the same record (forged, or a record sealed "
         "twice); the earlier bytes are kept",
         &h);
  }
  if (st.wire_len == 0 && st.have[0] && st.have[1] && st.have[2] && st.have[3] && st.have[4]) {
    st.wire_len = kTlsHeaderLen + load_be16(&st.bytes[3]);
  }
  if (st.wire_len != 0 && (st.wire_len > kMaxWire || st.max_end > st.wire_len)) {
    stages_.erase(st_it);
    fail(ctx, "slices run past the end of their record", &h);
    return;
  }
  if (st.wire_len == 0 || st.covered < st.wire_len) return;
  std::vector<uint8_t> rec(st.bytes.begin(), st.bytes.begin() + static_cast<long>(st.wire_len));
  stages_.erase(st_it);
  DataHeader whole = h;
  whole.seg_pos = 0;
  on_record(ctx, whole, *op, std::move(rec));
}

void CaptureDecoder::check_nonce(const Ctx& ctx, const DataHeader& h, RecordCipher& opener,
                                 std::span<const uint8_t> rec) {
  const uint64_t seq = record_seq(h.message_id, h.record_index);
  const auto key = std::make_tuple(ctx.session, ctx.dir, h.epoch, seq);
  const auto digest = digest16(rec);
  auto it = nonces_.find(key);
  if (it != nonces_.end() && it->second == digest) return;  // an identical retransmission
  // Only an authentic record says anything about the key's nonces: a forged
  // one is the ordinary "does not open" failure, reported on its own path.
  std::vector<uint8_t> copy(rec.begin(), rec.end());
  OpenError err;
  if (opener.open(seq, copy.data(), copy.size(), &err).content == nullptr) return;
  ++c_.records_checked;
  if (it == nonces_.end()) {
    nonces_.emplace(key, digest);
    return;
  }
  ++c_.nonce_reuses;
  char seqhex[24];
  std::snprintf(seqhex, sizeof seqhex, "0x%" PRIx64, seq);
  const std::string what = "NONCE REUSE: two different authentic ciphertexts under epoch " +
                           std::to_string(h.epoch) + " with seq " + seqhex + " (id " +
                           std::to_string(h.message_id) + " record " +
                           std::to_string(h.record_index) + ")";
  if (opts_.json) {
    emit(JsonLine()
             .str("type", "nonce_reuse")
             .str("time", ctx.time)
             .str("src", ctx.src)
             .str("dst", ctx.dst)
             .num("serial", sessions_[ctx.session]->log.serial)
             .str("direction", dir_name(ctx.dir))
             .num("epoch", h.epoch)
             .num("id", h.message_id)
             .num("record", h.record_index)
             .num("seq", seq)
             .done());
  } else {
    emit(ctx.time + " " + ctx.src + " > " + ctx.dst + session_text(ctx) + ": " + what);
  }
}

void CaptureDecoder::on_record(const Ctx& ctx, const DataHeader& h, RecordCipher& opener,
                               std::vector<uint8_t> rec) {
  if (opts_.check_nonces) {
    check_nonce(ctx, h, opener, rec);
  }
  const MsgKey mk{ctx.session, ctx.dir, h.message_id};
  if (delivered_.count(mk) != 0) {
    ++c_.duplicates;
    return;
  }
  auto it = pending_.find(mk);
  if (it == pending_.end()) {
    Pending p;
    p.assembler = std::make_unique<MessageAssembler>(h.message_id, &drops_, &budget_);
    p.first_time = ctx.time;
    it = pending_.emplace(mk, std::move(p)).first;
  }
  MessageAssembler& a = *it->second.assembler;
  const RxResult r = a.add_record(h, opener, rec.data(), rec.size());
  if (!r.accepted) {
    if (r.why == DropReason::kDuplicate) {
      ++c_.duplicates;
    } else {
      fail(ctx,
           std::string(r.why == DropReason::kAuthFailed ? "record does not open"
                                                        : "record refused") +
               " (" + drop_reason_name(r.why) + ")",
           &h);
    }
    return;  // kept: a message that never completes is listed by finish()
  }
  if (!r.completed) return;
  std::vector<uint8_t> msg = a.take_message();
  pending_.erase(it);
  delivered_.insert(mk);
  ++c_.messages;
  print_message(ctx, h, msg);
}

void CaptureDecoder::print_message(const Ctx& ctx, const DataHeader& h,
                                   std::span<const uint8_t> data) {
  if (opts_.leak_check) plaintext_.add(data);
  const bool truncated = opts_.max_bytes != 0 && data.size() > opts_.max_bytes;
  const auto shown = truncated ? data.first(opts_.max_bytes) : data;
  const char* kind = (h.message_id & 1) ? "response" : "request";
  if (opts_.json) {
    emit(JsonLine()
             .str("type", "message")
             .str("time", ctx.time)
             .str("src", ctx.src)
             .str("dst", ctx.dst)
             .num("serial", sessions_[ctx.session]->log.serial)
             .str("direction", dir_name(ctx.dir))
             .str("kind", kind)
             .num("id", h.message_id)
             .num("epoch", h.epoch)
             .num("length", data.size())
             .boolean("truncated", truncated)
             .str("data_hex", hex_of(shown))
             .done());
    return;
  }
  std::string line = ctx.time + " " + ctx.src + " > " + ctx.dst + session_text(ctx) + " " + kind +
                     " id " + std::to_string(h.message_id) + " epoch " + std::to_string(h.epoch) +
                     " len " + std::to_string(data.size()) + ": ";
  line += opts_.hex ? hex_of(shown) : "\"" + escaped(shown) + "\"";
  if (truncated) line += " ... (" + std::to_string(data.size() - shown.size()) + " more bytes)";
  emit(line);
}

void CaptureDecoder::finish() {
  for (const auto& [key, p] : pending_) {
    const auto& [session, dir, id] = key;
    ++c_.incomplete;
    const MessageAssembler& a = *p.assembler;
    const std::string have = std::to_string(a.bytes_present()) + " of " +
                             (a.started() ? std::to_string(a.padded_length()) : "?") + " bytes";
    if (opts_.json) {
      emit(JsonLine()
               .str("type", "incomplete")
               .str("time", p.first_time)
               .num("serial", sessions_[session]->log.serial)
               .str("direction", dir_name(dir))
               .num("id", id)
               .num("bytes_present", a.bytes_present())
               .done());
    } else {
      emit(p.first_time + " serial " + std::to_string(sessions_[session]->log.serial) + " " +
           dir_name(dir) + " id " + std::to_string(id) +
           ": incomplete at the end of the capture (" + have + ")");
    }
  }
  pending_.clear();
}

int run_decode(const DecodeOptions& opts, std::FILE* out, std::FILE* err) {
  auto sessions = read_keylog(opts.keylog_path);
  if (!sessions.ok()) {
    std::fprintf(err, "smt-decode: %s\n", sessions.error().message.c_str());
    return 2;
  }
  if (sessions->empty()) {
    std::fprintf(err, "smt-decode: %s: no sessions in the key log\n", opts.keylog_path.c_str());
    return 2;
  }
  auto reader = PcapReader::open(opts.capture_path);
  if (!reader.ok()) {
    std::fprintf(err, "smt-decode: %s\n", reader.error().message.c_str());
    return 2;
  }
  CaptureDecoder dec(std::move(*sessions), opts, (*reader)->linktype(), out);
  int status = 0;
  for (;;) {
    auto f = (*reader)->next();
    if (!f.ok()) {
      std::fprintf(err, "smt-decode: %s\n", f.error().message.c_str());
      status = 2;
      break;
    }
    if (!f->has_value()) break;
    dec.on_frame(**f);
  }
  dec.finish();
  std::fflush(out);
  const DecodeCounters& c = dec.counters();
  std::fprintf(err,
               "smt-decode: %" PRIu64 " frames, %" PRIu64 " SMT packets (%" PRIu64 " DATA, %" PRIu64
               " control), %" PRIu64 " messages, %" PRIu64 " duplicate records, %" PRIu64
               " incomplete messages, %" PRIu64 " failures",
               c.frames, c.smt_packets, c.data_packets, c.control_packets, c.messages, c.duplicates,
               c.incomplete, c.failures);
  if (opts.check_nonces) {
    std::fprintf(err, ", %" PRIu64 " authentic records checked, %" PRIu64 " nonce reuses",
                 c.records_checked, c.nonce_reuses);
  }
  std::fputc('\n', err);
  if (status != 0) return status;
  uint64_t leaks = 0;
  if (opts.leak_check) {
    const PlaintextWindows& w = dec.plaintext();
    auto scan = w.scan_file(opts.capture_path);
    if (!scan.ok()) {
      std::fprintf(err, "smt-decode: leak check: %s\n", scan.error().message.c_str());
      return 2;
    }
    leaks = scan->found;
    std::fprintf(err,
                 "smt-decode: leak check: %" PRIu64 " plaintext windows of 16 bytes (%" PRIu64
                 " beyond the memory bound not checked) searched at every offset of %" PRIu64
                 " capture bytes: %" PRIu64 " found\n",
                 scan->windows, w.skipped(), scan->bytes, scan->found);
    if (scan->windows == 0) {
      std::fprintf(err, "smt-decode: leak check: no message of 16 bytes or more was decrypted\n");
      return 1;
    }
  }
  return c.failures != 0 || c.nonce_reuses != 0 || leaks != 0 ? 1 : 0;
}

}  // namespace smt::decode
