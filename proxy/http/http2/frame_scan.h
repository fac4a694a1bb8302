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
// frame header and skips its payload, except two payloads it reads beside nghttp2 (which
// does not judge them with RFC 7540 priorities off, or not as RFC 9113 asks): a PRIORITY
// frame's dependency, and the SETTINGS_INITIAL_WINDOW_SIZE values of a SETTINGS frame.
class FrameScan {
 public:
  // What the piece looked at up to `consumed` holds. At most one of found, self_dependent
  // and initial_window is set.
  struct Header {
    bool found = false;           // a frame header ended in this piece
    bool self_dependent = false;  // a PRIORITY frame made its stream depend on itself
    // A SETTINGS frame whose payload ends at `begin` (its last byte, not yet taken by
    // nghttp2, which applies settings at that byte) changes SETTINGS_INITIAL_WINDOW_SIZE;
    // max_initial_window is the largest value it gives.
    bool initial_window = false;
    uint8_t type = 0;
    int32_t stream_id = 0;
    uint32_t max_initial_window = 0;
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
        if (!readsPayload()) {
          size_t k = std::min<size_t>(left, payload_left_);
          payload_left_ -= static_cast<uint32_t>(k);
          pos += k;
          continue;
        }
        if (payloadByte(data[pos++], h)) {
          if (h.initial_window) h.begin = pos - 1;
          break;
        }
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
      length_ = payload_left_;
      acc_ = 0;
      window_seen_ = false;
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
  static constexpr uint8_t kPriority = 0x2;
  static constexpr uint8_t kSettings = 0x4;
  static constexpr uint16_t kInitialWindowSize = 0x4;

  // Payloads of the wrong size are nghttp2's FRAME_SIZE_ERROR and not read here.
  bool readsPayload() const {
    if (type_ == kPriority) return length_ == 5 && payload_left_ > 1;  // the dependency
    return type_ == kSettings && stream_id_ == 0 && length_ % 6 == 0;
  }

  // Takes one payload byte; true when it completes something to report in `h`.
  bool payloadByte(uint8_t byte, Header& h) {
    uint32_t offset = length_ - payload_left_--;
    if (type_ == kPriority) {
      acc_ = (acc_ << 8) | (offset == 0 ? byte & 0x7f : byte);  // §6.3: E bit, then the id
      h.self_dependent = offset == 3 && acc_ == stream_id_;
      h.stream_id = static_cast<int32_t>(stream_id_);
      return h.self_dependent;
    }
    uint32_t at = offset % 6;  // an entry: 16-bit id, 32-bit value (§6.5.1)
    if (at == 0) acc_ = 0;
    acc_ = (acc_ << 8) | byte;
    if (at == 1) {
      entry_id_ = static_cast<uint16_t>(acc_);
      acc_ = 0;
    }
    if (at == 5 && entry_id_ == kInitialWindowSize) {
      max_window_ = window_seen_ ? std::max(max_window_, acc_) : acc_;
      window_seen_ = true;
    }
    if (payload_left_ > 0 || !window_seen_) return false;
    h.initial_window = true;
    h.max_initial_window = max_window_;
    return true;
  }

  // Of the last frame (at first the 24-byte preface, skipped as if it were one); its
  // length while a header is read.
  uint32_t payload_left_ = 24;
  uint32_t length_ = 24;     // of the last frame's payload
  uint32_t stream_id_ = 0;   // of the header being read, then of its frame
  uint32_t acc_ = 0;         // the payload field being read
  uint32_t max_window_ = 0;  // the largest SETTINGS_INITIAL_WINDOW_SIZE in this SETTINGS
  uint16_t entry_id_ = 0;    // of the SETTINGS entry being read
  uint8_t type_ = 0;
  uint8_t have_ = 0;  // header bytes read
  bool window_seen_ = false;
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
