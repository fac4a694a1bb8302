#include "h2_bytes.h"

namespace bench {
namespace {

constexpr uint8_t kData = 0x0;
constexpr uint8_t kHeaders = 0x1;
constexpr uint8_t kSettings = 0x4;
constexpr uint8_t kGoaway = 0x7;
constexpr uint8_t kRstStream = 0x3;
constexpr uint8_t kEndStream = 0x1;
constexpr uint8_t kEndHeaders = 0x4;
constexpr uint8_t kAck = 0x1;
// HPACK static table (RFC 7541 appendix A): 2 ":method GET", 4 ":path /", 6 ":scheme http",
// 7 ":scheme https", 8 ":status 200"; an indexed field is 0x80 | index.
constexpr uint8_t kStatus200 = 0x88;

void frameHead(std::string& out, size_t length, uint8_t type, uint8_t flags, uint32_t stream) {
  out += static_cast<char>((length >> 16) & 0xff);
  out += static_cast<char>((length >> 8) & 0xff);
  out += static_cast<char>(length & 0xff);
  out += static_cast<char>(type);
  out += static_cast<char>(flags);
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((stream >> shift) & 0xff);
}

}  // namespace

std::string h2ClientBytes(bool with_request, bool tls) {
  std::string out = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  frameHead(out, 0, kSettings, 0, 0);
  frameHead(out, 0, kSettings, kAck, 0);
  if (!with_request) return out;
  std::string block;
  block += static_cast<char>(0x82);               // :method GET
  block += static_cast<char>(tls ? 0x87 : 0x86);  // :scheme https / http
  block += static_cast<char>(0x84);               // :path /
  block += static_cast<char>(0x41);               // :authority, literal with incremental indexing
  block += static_cast<char>(9);
  block += "localhost";
  frameHead(out, block.size(), kHeaders, kEndStream | kEndHeaders, 1);
  return out + block;
}

void H2ResponseScanner::reset() {
  head_have_ = 0;
  payload_left_ = 0;
  first_block_byte_pending_ = false;
  end_after_payload_ = false;
  ok_ = false;
}

H2ResponseScanner::Result H2ResponseScanner::feed(const char* p, size_t n) {
  while (n > 0) {
    if (head_have_ < sizeof head_) {
      head_[head_have_++] = static_cast<uint8_t>(*p++);
      --n;
      if (head_have_ < sizeof head_) continue;
      payload_left_ = (uint64_t{head_[0]} << 16) | (uint64_t{head_[1]} << 8) | head_[2];
      uint8_t type = head_[3];
      uint8_t flags = head_[4];
      uint32_t stream = ((uint32_t{head_[5]} & 0x7f) << 24) | (uint32_t{head_[6]} << 16) |
                        (uint32_t{head_[7]} << 8) | head_[8];
      if (type == kGoaway || (type == kRstStream && stream == 1)) return Result::kError;
      bool on_stream = stream == 1 && (type == kData || type == kHeaders);
      // Padded or prioritised HEADERS put other bytes first; then the status is not checked.
      first_block_byte_pending_ =
          stream == 1 && type == kHeaders && (flags & 0x28) == 0 && !ok_ && payload_left_ > 0;
      end_after_payload_ = on_stream && (flags & kEndStream) != 0;
    } else {
      if (first_block_byte_pending_) {
        ok_ = static_cast<uint8_t>(*p) == kStatus200;
        first_block_byte_pending_ = false;
      }
      uint64_t take = payload_left_ < n ? payload_left_ : n;
      p += take;
      n -= static_cast<size_t>(take);
      payload_left_ -= take;
    }
    if (head_have_ == sizeof head_ && payload_left_ == 0) {
      head_have_ = 0;
      if (end_after_payload_) return Result::kDone;
    }
  }
  return Result::kMore;
}

}  // namespace bench
