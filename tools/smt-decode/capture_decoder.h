// The heart of smt-decode: matches each SMT packet of a capture to a logged
// session by its addresses, ports and header tag, derives the direction's
// epoch keys from the logged traffic secret exactly as the engine does
// (key-schedule.md §7), reassembles TSO slices into records and records into
// messages with the record layer's own MessageAssembler, and prints one line
// (or JSON object) per message, control packet and problem. Problems are
// reported and counted, never fatal; no key is ever printed.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "ip_frame.h"
#include "keylog_file.h"
#include "leak_check.h"
#include "pcap_reader.h"
#include "record/message_assembler.h"
#include "record/record_cipher.h"
#include "smt/wire.h"
#include "wire/data_header.h"

namespace smt::decode {

struct DecodeOptions {
  std::string keylog_path;                 ///< --keylog (required)
  std::string capture_path;                ///< -r
  uint8_t protocol = SMT_IPPROTO_DEFAULT;  ///< --proto
  bool json = false;                       ///< --json: one JSON object per line
  bool hex = false;                        ///< --hex: plaintext as hex, not escaped text
  bool check_nonces = false;               ///< --check-nonces
  bool quiet_control = false;              ///< --no-control: do not list control packets
  size_t max_bytes = 64;                   ///< plaintext bytes shown per message; 0 = all
  bool leak_check = false;                 ///< --leak-check: search the capture for plaintext
};

/// What a run saw. "Failures" are SMT packets that could not be decoded.
struct DecodeCounters {
  uint64_t frames = 0;
  uint64_t other_traffic = 0;  ///< not IP, or another IP protocol: ignored
  uint64_t smt_packets = 0;
  uint64_t data_packets = 0;
  uint64_t control_packets = 0;
  uint64_t messages = 0;         ///< decrypted and printed
  uint64_t duplicates = 0;       ///< retransmitted records already delivered
  uint64_t incomplete = 0;       ///< messages still missing records at the end
  uint64_t failures = 0;         ///< reported problems (exit status 1)
  uint64_t nonce_reuses = 0;     ///< --check-nonces findings (exit status 1)
  uint64_t records_checked = 0;  ///< authentic records --check-nonces compared
};

class CaptureDecoder {
 public:
  /// Output goes to `out`; `linktype` is the capture's.
  CaptureDecoder(std::vector<LoggedSession> sessions, const DecodeOptions& opts, uint32_t linktype,
                 std::FILE* out);
  ~CaptureDecoder();
  CaptureDecoder(const CaptureDecoder&) = delete;
  CaptureDecoder& operator=(const CaptureDecoder&) = delete;

  void on_frame(const PcapFrame& f);
  /// Reports messages the capture ended in the middle of.
  void finish();
  const DecodeCounters& counters() const { return c_; }
  /// The decrypted messages' windows (filled with --leak-check only).
  const PlaintextWindows& plaintext() const { return plaintext_; }

 private:
  struct DirKeys;
  struct Session;
  struct Pending {
    std::unique_ptr<MessageAssembler> assembler;
    std::string first_time;
  };
  struct Stage {
    std::vector<uint8_t> bytes;
    std::vector<bool> have;
    size_t covered = 0;
    size_t wire_len = 0;  // 0 until the TLS header's 5 bytes are present
    size_t max_end = 0;
  };
  // (session, direction, message id)
  using MsgKey = std::tuple<size_t, int, uint64_t>;
  using TupleKey = std::tuple<std::array<uint8_t, 16>, uint16_t, std::array<uint8_t, 16>, uint16_t>;
  // The packet being decoded, for report lines.
  struct Ctx {
    std::string time, src, dst;
    size_t session = SIZE_MAX;
    int dir = 0;
  };

  void on_smt(const Ctx& base, const IpPacket& ip, std::span<const uint8_t> pkt);
  void on_data(Ctx ctx, const IpPacket& ip, std::span<const uint8_t> pkt);
  void on_control(const Ctx& ctx, const IpPacket& ip, std::span<const uint8_t> pkt);
  void on_record(const Ctx& ctx, const DataHeader& h, RecordCipher& opener,
                 std::vector<uint8_t> rec);
  void check_nonce(const Ctx& ctx, const DataHeader& h, RecordCipher& opener,
                   std::span<const uint8_t> rec);
  RecordCipher* opener(size_t session, int dir, uint16_t epoch, std::string* why);

  void print_message(const Ctx& ctx, const DataHeader& h, std::span<const uint8_t> data);
  /// One problem: counted as a failure and printed.
  void fail(const Ctx& ctx, const std::string& what, const DataHeader* h = nullptr);
  void emit(const std::string& line);
  std::string session_text(const Ctx& ctx) const;

  DecodeOptions opts_;
  uint32_t linktype_;
  std::FILE* out_;
  std::vector<std::unique_ptr<Session>> sessions_;
  std::map<TupleKey, std::vector<std::pair<size_t, int>>> by_tuple_;
  std::map<MsgKey, Pending> pending_;
  std::set<MsgKey> delivered_;
  std::map<std::tuple<size_t, int, uint64_t, uint16_t>, Stage> stages_;  // + record index
  // (session, direction, epoch, seq) -> digest of the first authentic record
  std::map<std::tuple<size_t, int, uint16_t, uint64_t>, std::array<uint8_t, 16>> nonces_;
  std::set<TupleKey> unknown_reported_;
  DropCounters drops_;
  StagingBudget budget_;
  DecodeCounters c_;
  PlaintextWindows plaintext_;
};

/// The whole tool after option parsing: reads the key log and the capture,
/// decodes, prints a summary to `err`. Returns the exit status: 0 ok, 1 a
/// finding or decode failure, 2 unreadable input.
int run_decode(const DecodeOptions& opts, std::FILE* out, std::FILE* err);

}  // namespace smt::decode
