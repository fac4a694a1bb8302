// What ServerSession looks at in the client's bytes beside nghttp2 (RFC 9113 §5.1): the
// frame headers as they arrive, in pieces of any size (FrameScan), the last streams the
// client closed itself (ClosedByClient), and the stream ids its HEADERS frames used
// (UsedStreamIds). Header only; no allocation.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

namespace proxy::http2 {

// Walks a server's input: skips the 24-byte client connection preface, then reports each
// frame header and skips its payload.
class FrameScan {
 public:
  struct Header {
    bool found = false;  // a frame header ended in this piece
    uint8_t type = 0;
    int32_t stream_id = 0;
    size_t begin = 0;     // where its bytes in this piece begin (0: in an earlier piece)
    size_t consumed = 0;  // bytes of the piece looked at, up to the header's end
  };

  // Looks at data[0, len) up to the end of the next frame header, if one ends there.
  Header next(const uint8_t* data, size_t len) {
    Header h;
    size_t pos = 0;
    while (pos < len) {
      size_t left = len - pos;
      if (have_ == 0 && payload_left_ > 0) {
        size_t k = std::min<size_t>(left, payload_left_);
        payload_left_ -= static_cast<uint32_t>(k);
        pos += k;
        continue;
      }
      if (have_ == 0) {
        h.begin = pos;
        stream_id_ = 0;
      }
      // The header is read a byte at a time into its fields (the length straight into
      // payload_left_): nothing else is kept.
      for (; pos < len && have_ < kHeaderSize; ++pos, ++have_) {
        uint8_t byte = data[pos];
        if (have_ < 3) payload_left_ = (payload_left_ << 8) | byte;
        if (have_ == 3) type_ = byte;
        if (have_ >= 5) stream_id_ = (stream_id_ << 8) | (have_ == 5 ? byte & 0x7f : byte);
      }
      if (have_ < kHeaderSize) break;
      have_ = 0;
      h.found = true;
      h.type = type_;
      h.stream_id = static_cast<int32_t>(stream_id_);
      break;
    }
    h.consumed = pos;
    return h;
  }

 private:
  static constexpr uint8_t kHeaderSize = 9;
  // Of the last frame (at first the 24-byte preface, skipped as if it were one); its
  // length while a header is read.
  uint32_t payload_left_ = 24;
  uint32_t stream_id_ = 0;  // of the header being read
  uint8_t type_ = 0;
  uint8_t have_ = 0;  // header bytes read
};

// The last two streams the client closed itself (END_STREAM both ways, or its own
// RST_STREAM): a DATA or HEADERS frame on one is a connection error STREAM_CLOSED. Older
// ones are forgotten, which only makes the check lax, never wrong.
class ClosedByClient {
 public:
  void note(int32_t id) {
    ids_[1] = ids_[0];
    ids_[0] = id;
  }
  bool holds(int32_t id) const {
    return id > 0 && std::find(ids_.begin(), ids_.end(), id) != ids_.end();
  }

 private:
  std::array<int32_t, 2> ids_{};  // the newest first
};

// The client's stream ids that HEADERS frames used, for the 32 odd ids below the highest:
// a HEADERS frame on a lower id never used is a connection error PROTOCOL_ERROR (RFC 9113
// §5.1.1). Ids further down are not judged.
class UsedStreamIds {
 public:
  // A HEADERS frame on `id`: false when it comes on a lower id than the highest, never used.
  bool use(int32_t id) {
    if (id <= 0 || (id & 1) == 0) return true;  // not a client stream: nghttp2 judges it
    if (id > highest_) {
      uint32_t shift = static_cast<uint32_t>(id - highest_) / 2;
      bits_ = shift >= 32 ? 0 : bits_ << shift;
      bits_ |= 1;
      highest_ = id;
      return true;
    }
    uint32_t back = static_cast<uint32_t>(highest_ - id) / 2;
    return back >= 32 || ((bits_ >> back) & 1) != 0;
  }

 private:
  uint32_t bits_ = 0;  // bit i: highest_ - 2i was used
  int32_t highest_ = 0;
};

}  // namespace proxy::http2
