// MessageHead: one parsed HTTP/1.1 request or response head, stored in a single
// reusable buffer (no per-header allocation once warmed up). Filled by Http1Parser,
// read by the downstream and upstream connections and by the head writers in
// head_writer.h. Pure code: no libuv, no sockets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace proxy::http {

// Case-insensitive ASCII comparison of header names (RFC 9110 §5.1).
bool equalsIgnoreCase(std::string_view a, std::string_view b);

// Owned by the parser that fills it; valid from onHead() until the next message begins.
class MessageHead {
 public:
  struct Header {
    std::string_view name;
    std::string_view value;  // leading/trailing whitespace already trimmed
  };

  // Forgets the previous message but keeps the buffers' capacity.
  void clear();
  // Forgets the previous message and frees the buffers too (an idle connection).
  void releaseMemory();

  // Request line (requests only). `method` is llhttp's method number.
  uint8_t method = 0;
  std::string_view methodName() const;  // "GET", "POST", ...
  std::string_view url() const { return view(url_); }
  // Status line (responses only).
  int status = 0;
  std::string_view reason() const { return view(reason_); }

  uint8_t http_major = 1;
  uint8_t http_minor = 1;
  // Framing as llhttp derived it (RFC 9112 §6).
  bool chunked = false;
  bool has_content_length = false;
  uint64_t content_length = 0;
  // llhttp_should_keep_alive() for this message (Connection header and version).
  bool keep_alive = true;
  // The message had Connection: upgrade with an Upgrade header.
  bool upgrade = false;

  size_t headerCount() const { return headers_.size(); }
  Header header(size_t i) const;
  // First header with this name (case-insensitive), or nullptr-like empty optional.
  bool find(std::string_view name, std::string_view* value) const;
  // True when a Connection header lists `token` (case-insensitive), RFC 9110 §7.6.1.
  bool connectionHas(std::string_view token) const;
  // True when the comma-separated list `list` contains `token` (case-insensitive).
  static bool listHas(std::string_view list, std::string_view token);
  // Total bytes of the head as received (request/status line and header lines).
  uint64_t wireBytes() const { return wire_bytes_; }
  // Bytes of url/reason, names and values stored (sizes the head writers' reserve()).
  size_t storedBytes() const { return buf_.size(); }

  // --- used by Http1Parser while parsing ---
  void appendUrl(const char* p, size_t n);
  void appendReason(const char* p, size_t n);
  void appendHeaderName(const char* p, size_t n);  // starts a new header if a value was last
  void appendHeaderValue(const char* p, size_t n);
  void endHeader();      // the current header line is complete (its value may be empty)
  void finishHeaders();  // trims values; call once the head is complete
  void addWireBytes(uint64_t n) { wire_bytes_ += n; }

 private:
  struct Span {
    uint32_t off = 0;
    uint32_t len = 0;
  };
  struct HeaderSpan {
    Span name;
    Span value;
  };
  std::string_view view(Span s) const { return std::string_view(buf_.data() + s.off, s.len); }

  std::string buf_;  // url/reason and every header name and value, back to back
  Span url_;
  Span reason_;
  std::vector<HeaderSpan> headers_;
  bool in_value_ = false;
  uint64_t wire_bytes_ = 0;
};

}  // namespace proxy::http
