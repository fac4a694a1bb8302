// Pieces both HTTP/2 codecs share (ServerSession for clients, ClientSession for the h2c
// upstream): header fields, RAII owners for nghttp2's C objects, nghttp2_nv lists built from
// our fields, error-code names and per-code counters for logs and metrics.
// Pure code over libnghttp2: no libuv, no sockets, no exceptions.
#pragma once

#include <nghttp2/nghttp2.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <forward_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace proxy::http2 {

// One header field as it travels in HEADERS frames. Names are lower-case on the wire
// (RFC 9113 §8.2.1); the codecs lower-case what they send when a caller did not.
struct HeaderField {
  std::string name;
  std::string value;
};
using HeaderFields = std::vector<HeaderField>;

// Deleters so unique_ptr frees nghttp2's objects with the matching *_del function.
struct SessionDeleter {
  void operator()(nghttp2_session* s) const { nghttp2_session_del(s); }
};
struct OptionDeleter {
  void operator()(nghttp2_option* o) const { nghttp2_option_del(o); }
};
struct CallbacksDeleter {
  void operator()(nghttp2_session_callbacks* c) const { nghttp2_session_callbacks_del(c); }
};
using SessionPtr = std::unique_ptr<nghttp2_session, SessionDeleter>;
using OptionPtr = std::unique_ptr<nghttp2_option, OptionDeleter>;
using CallbacksPtr = std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter>;

// nghttp2_option_new / nghttp2_session_callbacks_new; null only when out of memory.
OptionPtr newOption();
CallbacksPtr newCallbacks();

// True when `name` has no upper-case ASCII letter (what HTTP/2 requires of field names).
bool isLowerCase(std::string_view name);
// ASCII lower-case copy of `s`.
std::string toLowerCase(std::string_view s);

// An nghttp2_nv array pointing at caller-owned strings, for one nghttp2_submit_* call.
// nghttp2 copies names and values during the submit call, so the list and the strings it
// points at need only outlive that call. Names with upper-case letters are lower-cased into
// storage the list owns. Not copyable (it holds pointers into itself).
class NvList {
 public:
  NvList() = default;
  NvList(const NvList&) = delete;
  NvList& operator=(const NvList&) = delete;

  // Room for `n` fields in all, so that adding them does not grow the list step by step.
  void reserve(size_t n);
  // Adds one field; `name` and `value` must outlive the submit call. Credentials
  // (authorization, proxy-authorization) and short cookies are marked never-indexed
  // (RFC 7541 §7.1.3) so HPACK does not expose them to compression attacks.
  void add(std::string_view name, std::string_view value);
  // Adds every field of `fields` in order.
  void addAll(const HeaderFields& fields);

  const nghttp2_nv* data() const { return spilled_ ? heap_.data() : inline_.data(); }
  size_t size() const { return size_; }
  // The list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 §6.5.2).
  uint64_t listSize() const;

 private:
  // A list lives on the stack for one submit: up to kInline fields (every answer and
  // request of an intake or gRPC exchange) need no allocation; more spill to heap_.
  static constexpr size_t kInline = 24;
  std::array<nghttp2_nv, kInline> inline_;
  std::vector<nghttp2_nv> heap_;
  size_t size_ = 0;
  bool spilled_ = false;
  // Lower-cased names; a forward_list allocates nothing until a name needs it, and its
  // strings never move.
  std::forward_list<std::string> lowered_;
};

// RFC 7541 §4.1: a field counts as its name, its value and 32 bytes of overhead.
inline constexpr size_t kFieldOverhead = 32;

// Outbound body bytes of one stream, copied in by the codec's caller and pulled out by
// nghttp2's data provider. Frees what was framed as it goes, so a long stream holds only
// what waits. Owned by the stream it belongs to.
class BodyBuffer {
 public:
  void append(const char* data, size_t len) { buf_.append(data, len); }
  // Moves up to `max` bytes into `out`; returns how many.
  size_t take(uint8_t* out, size_t max);
  size_t size() const { return buf_.size() - pos_; }
  // Forgets every byte and frees the memory.
  void release();

 private:
  std::string buf_;  // [pos_, size) not yet taken
  size_t pos_ = 0;
};

// A GOAWAY frame (RFC 9113 §6.8) built by hand, for when nghttp2 may no longer be used
// (after a fatal error) but the peer should still learn why.
std::string goawayFrame(int32_t last_stream_id, uint32_t error_code);

// The error codes of RFC 9113 §7 are 0 (NO_ERROR) .. 13 (HTTP_1_1_REQUIRED).
inline constexpr size_t kErrorCodeCount = 14;
// "NO_ERROR", "PROTOCOL_ERROR", ..., or "UNKNOWN" for codes outside RFC 9113 §7.
const char* errorCodeName(uint32_t error_code);
// Index for per-code arrays: the code itself, or kErrorCodeCount for unknown codes.
size_t errorCodeIndex(uint32_t error_code);

// Counts by HTTP/2 error code, last slot for unknown codes. Plain integers: one session
// is used by one thread, and the connection adds them to its worker's stats.
struct ErrorCodeCounts {
  std::array<uint64_t, kErrorCodeCount + 1> by_code{};
  void add(uint32_t error_code) { ++by_code[errorCodeIndex(error_code)]; }
  uint64_t get(uint32_t error_code) const { return by_code[errorCodeIndex(error_code)]; }
  uint64_t total() const;
};

// What a session counts for metrics (issue 10: resets and GOAWAYs by code, streams).
struct SessionCounters {
  ErrorCodeCounts resets_sent;
  ErrorCodeCounts resets_received;
  ErrorCodeCounts goaways_sent;
  ErrorCodeCounts goaways_received;
  uint64_t streams_opened = 0;
};

}  // namespace proxy::http2
