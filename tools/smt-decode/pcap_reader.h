// Classic pcap files (not pcapng), read as hostile input: every length is
// checked against hard bounds before it is used, and every malformation ends
// the read with an error that names the record and what was wrong.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace smt::decode {

/// Link types smt-decode understands (LINKTYPE_* values of pcap files).
inline constexpr uint32_t kLinktypeEthernet = 1;
inline constexpr uint32_t kLinktypeRaw = 101;
inline constexpr uint32_t kLinktypeDltRaw12 = 12;  ///< DLT_RAW as some systems write it
inline constexpr uint32_t kLinktypeDltRaw14 = 14;
inline constexpr uint32_t kLinktypeLinuxSll = 113;
inline constexpr uint32_t kLinktypeIpv4 = 228;
inline constexpr uint32_t kLinktypeIpv6 = 229;
inline constexpr uint32_t kLinktypeLinuxSll2 = 276;

/// Largest captured length accepted for one record (tcpdump's default
/// snaplen); anything larger is a corrupt or hostile file.
inline constexpr uint32_t kMaxCaplen = 262144;

/// Whether smt-decode can strip this link type's header.
bool linktype_supported(uint32_t linktype);

/// One captured frame. `data` stays valid until the next call to next().
struct PcapFrame {
  uint64_t ts_sec = 0;
  uint32_t ts_nsec = 0;           ///< nanoseconds (microsecond files are scaled)
  uint32_t orig_len = 0;          ///< length on the wire
  uint64_t index = 0;             ///< 1-based record number, for messages
  std::span<const uint8_t> data;  ///< the captured bytes (caplen of them)
};

class PcapReader {
 public:
  /// Opens `path` and checks its 24-byte file header: magic (microsecond or
  /// nanosecond, either byte order), version 2.x, a supported link type.
  static Result<std::unique_ptr<PcapReader>> open(const std::string& path);

  /// The next frame, std::nullopt at a clean end of file, or an error for a
  /// truncated or malformed record (a file cut mid-record included).
  Result<std::optional<PcapFrame>> next();

  uint32_t linktype() const { return linktype_; }
  bool nanosecond() const { return nanosecond_; }

 private:
  struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  PcapReader() = default;
  uint32_t u32(const uint8_t* p) const;

  std::unique_ptr<std::FILE, FileCloser> file_;
  std::string path_;
  bool swapped_ = false;
  bool nanosecond_ = false;
  uint32_t linktype_ = 0;
  uint64_t records_ = 0;
  std::vector<uint8_t> buf_;
};

}  // namespace smt::decode
