#include "pcap_reader.h"

#include <cerrno>
#include <cstring>

namespace smt::decode {
namespace {

constexpr uint32_t kMagicMicro = 0xa1b2c3d4;
constexpr uint32_t kMagicNano = 0xa1b23c4d;
constexpr uint32_t kMagicPcapng = 0x0a0d0d0a;
constexpr size_t kFileHeaderLen = 24;
constexpr size_t kRecordHeaderLen = 16;

uint32_t load_le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint32_t bswap32(uint32_t v) { return __builtin_bswap32(v); }

}  // namespace

bool linktype_supported(uint32_t lt) {
  switch (lt) {
    case kLinktypeEthernet:
    case kLinktypeRaw:
    case kLinktypeDltRaw12:
    case kLinktypeDltRaw14:
    case kLinktypeLinuxSll:
    case kLinktypeIpv4:
    case kLinktypeIpv6:
    case kLinktypeLinuxSll2:
      return true;
    default:
      return false;
  }
}

uint32_t PcapReader::u32(const uint8_t* p) const {
  const uint32_t v = load_le32(p);
  return swapped_ ? bswap32(v) : v;
}

Result<std::unique_ptr<PcapReader>> PcapReader::open(const std::string& path) {
  std::unique_ptr<PcapReader> r(new PcapReader());
  r->path_ = path;
  r->file_.reset(std::fopen(path.c_str(), "rb"));
  if (!r->file_) {
    const int e = errno;
    return make_error(e, path + ": cannot open: " + std::strerror(e));
  }
  uint8_t h[kFileHeaderLen];
  const size_t n = std::fread(h, 1, sizeof h, r->file_.get());
  if (n < 4) return make_error(EINVAL, path + ": not a pcap file (shorter than its magic number)");
  const uint32_t magic = load_le32(h);
  if (magic == kMagicMicro || magic == kMagicNano) {
    r->swapped_ = false;
  } else if (bswap32(magic) == kMagicMicro || bswap32(magic) == kMagicNano) {
    r->swapped_ = true;
  } else if (magic == kMagicPcapng) {
    return make_error(EINVAL, path +
                                  ": pcapng is not supported; convert it with "
                                  "'editcap -F pcap IN OUT' or 'tcpdump -r IN -w OUT'");
  } else {
    char buf[64];
    std::snprintf(buf, sizeof buf, ": not a pcap file (magic 0x%08x)", magic);
    return make_error(EINVAL, path + buf);
  }
  r->nanosecond_ = (r->swapped_ ? bswap32(magic) : magic) == kMagicNano;
  if (n < kFileHeaderLen) {
    return make_error(
        EINVAL, path + ": truncated pcap file header (" + std::to_string(n) + " of 24 bytes)");
  }
  const uint16_t major = r->swapped_ ? static_cast<uint16_t>(h[4] << 8 | h[5])
                                     : static_cast<uint16_t>(h[5] << 8 | h[4]);
  if (major != 2) {
    return make_error(EINVAL, path + ": unsupported pcap version " + std::to_string(major));
  }
  // The low 16 bits are the link type; the high bits may describe an FCS,
  // which IP's own length makes irrelevant here.
  r->linktype_ = r->u32(h + 20) & 0xffff;
  if (!linktype_supported(r->linktype_)) {
    return make_error(EINVAL, path + ": unsupported link type " + std::to_string(r->linktype_) +
                                  " (want Ethernet, raw IP, IPv4, IPv6, Linux SLL or SLL2)");
  }
  r->buf_.resize(kMaxCaplen);
  return r;
}

Result<std::optional<PcapFrame>> PcapReader::next() {
  const uint64_t index = records_ + 1;
  const std::string where = path_ + ": record " + std::to_string(index);
  uint8_t h[kRecordHeaderLen];
  const size_t n = std::fread(h, 1, sizeof h, file_.get());
  if (n == 0) {
    if (std::ferror(file_.get())) return make_error(EIO, path_ + ": read error");
    return std::optional<PcapFrame>();
  }
  if (n < kRecordHeaderLen) {
    return make_error(EINVAL,
                      where + ": truncated record header (" + std::to_string(n) + " of 16 bytes)");
  }
  PcapFrame f;
  f.index = index;
  f.ts_sec = u32(h);
  const uint32_t frac = u32(h + 4);
  const uint32_t caplen = u32(h + 8);
  f.orig_len = u32(h + 12);
  if (frac >= (nanosecond_ ? 1'000'000'000u : 1'000'000u)) {
    return make_error(EINVAL,
                      where + ": timestamp fraction " + std::to_string(frac) + " out of range");
  }
  f.ts_nsec = nanosecond_ ? frac : frac * 1000;
  if (caplen > kMaxCaplen) {
    return make_error(EINVAL, where + ": captured length " + std::to_string(caplen) +
                                  " exceeds the limit of " + std::to_string(kMaxCaplen) +
                                  " (corrupt file?)");
  }
  const size_t got = std::fread(buf_.data(), 1, caplen, file_.get());
  if (got < caplen) {
    return make_error(EINVAL, where + ": truncated record (" + std::to_string(got) + " of " +
                                  std::to_string(caplen) + " bytes)");
  }
  f.data = std::span<const uint8_t>(buf_.data(), caplen);
  records_ = index;
  return std::optional<PcapFrame>(f);
}

}  // namespace smt::decode
