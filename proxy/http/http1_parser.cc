#include "proxy/http/http1_parser.h"

#include <algorithm>
#include <limits>

#include "proxy/common/check.h"

namespace proxy::http {

namespace {

// MessageHead stores 32-bit offsets; even "no limit" must stay well inside them.
constexpr uint64_t kHardHeadLimit = std::numeric_limits<uint32_t>::max() / 2;

bool isControl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

// The authority of an absolute-form target ("http://a.example:8200/x" -> "a.example:8200").
std::string_view absoluteAuthority(std::string_view url) {
  size_t start = url.find("://");
  if (start == std::string_view::npos) return {};
  url.remove_prefix(start + 3);
  return url.substr(0, url.find_first_of("/?#"));
}

// Authorities compared case-insensitively, a default port (":80", ":443") equal to none.
bool sameAuthority(std::string_view a, std::string_view b) {
  auto strip = [](std::string_view s) {
    for (std::string_view port : {std::string_view(":80"), std::string_view(":443")}) {
      if (s.size() > port.size() && s.substr(s.size() - port.size()) == port) {
        return s.substr(0, s.size() - port.size());
      }
    }
    return s;
  };
  return equalsIgnoreCase(strip(a), strip(b));
}

bool startsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && equalsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

}  // namespace

// A function-local lambda keeps the table constant and lets it name the private
// trampolines; llhttp keeps a pointer to it for the parser's whole life.
const llhttp_settings_t Http1Parser::kSettings = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_message_begin = &Http1Parser::uvOnMessageBegin;
  s.on_url = &Http1Parser::uvOnUrl;
  s.on_status = &Http1Parser::uvOnStatus;
  s.on_header_field = &Http1Parser::uvOnHeaderField;
  s.on_header_value = &Http1Parser::uvOnHeaderValue;
  s.on_header_value_complete = &Http1Parser::uvOnHeaderValueComplete;
  s.on_headers_complete = &Http1Parser::uvOnHeadersComplete;
  s.on_body = &Http1Parser::uvOnBody;
  s.on_message_complete = &Http1Parser::uvOnMessageComplete;
  return s;
}();

Http1Parser::Http1Parser(Kind kind, Callbacks& callbacks, uint64_t max_head_bytes)
    : kind_(kind),
      callbacks_(callbacks),
      max_head_bytes_(max_head_bytes == 0 ? kHardHeadLimit
                                          : std::min(max_head_bytes, kHardHeadLimit)) {
  // No lenient flags: llhttp's defaults reject CL+TE, duplicate CL and bad chunk sizes.
  llhttp_init(&parser_, kind == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, &kSettings);
  parser_.data = this;
}

Http1Parser::ExecResult Http1Parser::execute(const char* data, size_t len) {
  PROXY_CHECK(!paused_, "Http1Parser::execute while paused");
  if (error_ != ParseError::kNone) return {Outcome::kError, 0};
  if (len == 0) return {Outcome::kConsumedAll, 0};
  // llhttp 8.1 accepts bare LF line endings, obs-fold and some control characters in
  // the head; those are request-smuggling vectors (RFC 9112 §2.2, §5.2), so the head
  // bytes are checked before llhttp (and therefore onHead) sees any of them.
  if (scan_.active && !scanHead(data, len)) return {Outcome::kError, 0};

  cur_data_ = data;
  const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  if (err == HPE_OK) {
    last_byte_ = data[len - 1];
    return {Outcome::kConsumedAll, len};
  }
  if (err == HPE_PAUSED && message_done_) {
    const size_t consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
    return completeMessage(consumed, head_.chunked, data);
  }
  return failFromLlhttp(err);
}

void Http1Parser::resume() {
  PROXY_CHECK(paused_, "Http1Parser::resume while not paused");
  paused_ = false;
  llhttp_resume(&parser_);
}

Http1Parser::ExecResult Http1Parser::finish() {
  if (error_ != ParseError::kNone) return {Outcome::kError, 0};
  // Between messages the close is clean. (llhttp would still see the state it had
  // when it paused in on_message_complete, so it is not asked.)
  if (paused_ || (!in_message_ && !scan_.started)) return {Outcome::kConsumedAll, 0};
  const llhttp_errno_t err = llhttp_finish(&parser_);
  if (err == HPE_PAUSED && message_done_) {
    // RFC 9112 §6.3 rule 8: a response without a length ends when the connection closes.
    completeMessage(0, false, nullptr);
    paused_ = false;
    return {Outcome::kConsumedAll, 0};
  }
  if (err == HPE_OK) return {Outcome::kConsumedAll, 0};
  setError(ParseError::kPrematureEof, nullptr);
  error_reason_ = std::string(llhttp_errno_name(err)) + ": " + llhttp_get_error_reason(&parser_);
  return {Outcome::kError, 0};
}

Http1Parser::ExecResult Http1Parser::completeMessage(size_t consumed, bool check_chunked_end,
                                                     const char* data) {
  if (check_chunked_end) {
    // llhttp accepts a bare LF as the empty line that ends the trailer section; the
    // byte before the final LF must be CR (RFC 9112 §7.1).
    const char before = consumed >= 2 ? data[consumed - 2] : last_byte_;
    if (before != '\r')
      return fail(ParseError::kBadMessage, "bare LF at the end of a chunked body");
  }
  if (consumed > 0) last_byte_ = data[consumed - 1];
  message_done_ = false;
  in_message_ = false;
  paused_ = true;
  scan_ = HeadScan{};
  callbacks_.onMessageComplete();
  return {Outcome::kPaused, consumed};
}

bool Http1Parser::setError(ParseError error, const char* reason) {
  if (error_ == ParseError::kNone) {
    error_ = error;
    if (reason != nullptr) error_reason_ = reason;
  }
  return false;
}

Http1Parser::ExecResult Http1Parser::fail(ParseError error, const char* reason) {
  setError(error, reason);
  return {Outcome::kError, 0};
}

Http1Parser::ExecResult Http1Parser::failFromLlhttp(llhttp_errno_t err) {
  // A callback that failed has already recorded its own error and reason.
  if (error_ == ParseError::kNone) {
    error_ = ParseError::kBadMessage;
    error_reason_ = std::string(llhttp_errno_name(err)) + ": " + llhttp_get_error_reason(&parser_);
  }
  return {Outcome::kError, 0};
}

int Http1Parser::countHeadBytes(size_t n) {
  scan_.bytes += n;
  if (scan_.bytes > max_head_bytes_) {
    setError(ParseError::kHeadTooLarge, "head exceeds the size limit");
    return -1;
  }
  return 0;
}

bool Http1Parser::scanHead(const char* data, size_t len) {
  HeadScan& s = scan_;
  for (size_t i = 0; i < len; ++i) {
    const auto c = static_cast<unsigned char>(data[i]);
    if (countHeadBytes(1) != 0) return false;
    if (c == '\r') {
      if (s.prev_cr) return setError(ParseError::kBadMessage, "bare CR in head");
      s.prev_cr = true;
      continue;
    }
    if (c == '\n') {
      // RFC 9112 §2.2: a recipient may accept a bare LF; a proxy must not, because
      // the upstream may split lines differently.
      if (!s.prev_cr) return setError(ParseError::kBadMessage, "bare LF in head");
      s.prev_cr = false;
      if (!s.started) continue;  // RFC 9112 §2.2: empty lines before the request-line
      if (s.line_len == 0) {
        s.active = false;  // the empty line: end of the head
        return true;
      }
      s.first_line = false;
      s.line_len = 0;
      s.prev_sp = false;
      continue;
    }
    if (s.prev_cr) return setError(ParseError::kBadMessage, "bare CR in head");
    if (isControl(c)) return setError(ParseError::kBadMessage, "control character in head");
    if (s.line_len == 0 && (c == ' ' || c == '\t')) {
      // RFC 9112 §5.2: obs-fold must be rejected (or replaced) by a proxy; leading
      // whitespace before the start line is invalid too.
      return setError(ParseError::kBadMessage,
                      s.first_line ? "whitespace before start line" : "obs-fold in header section");
    }
    if (s.first_line && kind_ == Kind::kRequest) {
      // RFC 9112 §3: exactly one SP between the request-line parts.
      if (c == '\t' || (c == ' ' && s.prev_sp)) {
        return setError(ParseError::kBadMessage, "malformed request line");
      }
      s.prev_sp = c == ' ';
    }
    s.started = true;
    ++s.line_len;
  }
  return true;
}

bool Http1Parser::validateHead() {
  MessageHead& h = head_;
  if (h.http_major != 1 || h.http_minor > 1) {
    return setError(ParseError::kBadMessage, "unsupported HTTP version");
  }
  size_t hosts = 0;
  size_t transfer_encodings = 0;
  std::string_view te;
  std::string_view host;
  for (size_t i = 0; i < h.headerCount(); ++i) {
    const MessageHead::Header hdr = h.header(i);
    if (equalsIgnoreCase(hdr.name, "host")) {
      ++hosts;
      host = hdr.value;
    }
    if (equalsIgnoreCase(hdr.name, "transfer-encoding")) {
      ++transfer_encodings;
      te = hdr.value;
    }
  }
  if (transfer_encodings > 0) {
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing. We relay only
    // "chunked": any other coding would be forwarded undecoded without its header.
    if (h.http_minor == 0)
      return setError(ParseError::kBadMessage, "Transfer-Encoding in HTTP/1.0");
    if (transfer_encodings != 1 || !equalsIgnoreCase(te, "chunked") || !h.chunked) {
      return setError(ParseError::kBadMessage, "unsupported Transfer-Encoding");
    }
  }
  if (kind_ == Kind::kResponse) {
    if (h.status == 101) return setError(ParseError::kUnsupported, "protocol switch refused");
    return true;
  }
  if (h.method == HTTP_CONNECT) return setError(ParseError::kUnsupported, "CONNECT refused");
  // RFC 9112 §3.2: exactly one Host in HTTP/1.1 requests, never more than one.
  if (hosts > 1 || (hosts == 0 && h.http_minor == 1)) {
    return setError(ParseError::kBadMessage, "missing or duplicate Host");
  }
  // RFC 9112 §3.2: origin-form, absolute-form, and asterisk-form only for OPTIONS.
  const std::string_view url = h.url();
  const bool ok = (!url.empty() && url[0] == '/') || (url == "*" && h.method == HTTP_OPTIONS) ||
                  startsWithIgnoreCase(url, "http://") || startsWithIgnoreCase(url, "https://");
  if (!ok) return setError(ParseError::kBadMessage, "invalid request target");
  // RFC 9112 §3.2.2: with an absolute-form target the Host header must be ignored, and
  // the upstream would see only Host once the target is made origin-form. Two different
  // authorities are a routing-confusion attempt: refused, not silently resolved.
  if (hosts == 1 && url[0] != '/' && url != "*" && !sameAuthority(absoluteAuthority(url), host)) {
    return setError(ParseError::kBadMessage, "absolute-form target does not match Host");
  }
  return true;
}

int Http1Parser::onHeadersComplete() {
  MessageHead& h = head_;
  h.finishHeaders();
  h.method = parser_.method;
  h.status = parser_.status_code;
  h.http_major = parser_.http_major;
  h.http_minor = parser_.http_minor;
  h.chunked = (parser_.flags & F_CHUNKED) != 0;
  h.has_content_length = (parser_.flags & F_CONTENT_LENGTH) != 0;
  h.content_length = h.has_content_length ? parser_.content_length : 0;
  h.keep_alive = llhttp_should_keep_alive(&parser_) != 0;
  h.upgrade = (parser_.flags & F_UPGRADE) != 0 && (parser_.flags & F_CONNECTION_UPGRADE) != 0;
  h.addWireBytes(scan_.bytes);
  if (!validateHead()) return -1;
  // RFC 9110 §7.8: a server may ignore Upgrade. We do (the head writer drops it as
  // hop-by-hop), so the message continues as plain HTTP/1.1.
  parser_.upgrade = 0;
  head_complete_ = true;
  const bool skip_body = callbacks_.onHead(h);
  // RFC 9110 §15.2, §15.3.5, §15.4.5: 1xx, 204 and 304 responses never have a body,
  // whatever Content-Length says; llhttp 8.1 would read one.
  const bool bodiless_status =
      kind_ == Kind::kResponse && (h.status / 100 == 1 || h.status == 204 || h.status == 304);
  return skip_body || bodiless_status ? 1 : 0;
}

int Http1Parser::uvOnMessageBegin(llhttp_t* p) {
  auto* self = static_cast<Http1Parser*>(p->data);
  self->head_.clear();
  self->in_message_ = true;
  self->head_complete_ = false;
  self->value_done_ = false;
  self->field_len_ = 0;
  self->trailer_bytes_ = 0;
  return 0;
}

int Http1Parser::uvOnUrl(llhttp_t* p, const char* at, size_t n) {
  static_cast<Http1Parser*>(p->data)->head_.appendUrl(at, n);
  return 0;
}

int Http1Parser::uvOnStatus(llhttp_t* p, const char* at, size_t n) {
  static_cast<Http1Parser*>(p->data)->head_.appendReason(at, n);
  return 0;
}

int Http1Parser::uvOnHeaderField(llhttp_t* p, const char* at, size_t n) {
  auto* self = static_cast<Http1Parser*>(p->data);
  self->value_done_ = false;
  self->field_len_ += n;
  if (self->head_complete_) {
    // Trailer fields (RFC 9112 §7.1.2) are not forwarded, only bounded like the head.
    self->trailer_bytes_ += n;
    if (self->trailer_bytes_ > self->max_head_bytes_) {
      self->setError(ParseError::kHeadTooLarge, "trailers exceed the size limit");
      return -1;
    }
    return 0;
  }
  self->head_.appendHeaderName(at, n);
  return 0;
}

int Http1Parser::uvOnHeaderValue(llhttp_t* p, const char* at, size_t n) {
  auto* self = static_cast<Http1Parser*>(p->data);
  // llhttp 8.1 hands an obs-fold continuation line over as more value bytes that start
  // right after the line's LF; reject it (RFC 9112 §5.2). The head scan catches it in
  // the head; this catches it in trailers.
  const bool folded = n > 0 && (at[0] == ' ' || at[0] == '\t') &&
                      (at > self->cur_data_ ? at[-1] : self->last_byte_) == '\n';
  if (self->value_done_ || folded) {
    self->setError(ParseError::kBadMessage, "obs-fold in header section");
    return -1;
  }
  if (self->head_complete_) {
    self->trailer_bytes_ += n;
    if (self->trailer_bytes_ > self->max_head_bytes_) {
      self->setError(ParseError::kHeadTooLarge, "trailers exceed the size limit");
      return -1;
    }
    for (size_t i = 0; i < n; ++i) {
      if (isControl(static_cast<unsigned char>(at[i]))) {
        self->setError(ParseError::kBadMessage, "control character in trailer");
        return -1;
      }
    }
    return 0;
  }
  self->head_.appendHeaderValue(at, n);
  return 0;
}

int Http1Parser::uvOnHeaderValueComplete(llhttp_t* p) {
  auto* self = static_cast<Http1Parser*>(p->data);
  if (self->field_len_ == 0) {
    self->setError(ParseError::kBadMessage, "empty header name");
    return -1;
  }
  self->field_len_ = 0;
  self->value_done_ = true;
  if (!self->head_complete_) self->head_.endHeader();
  return 0;
}

int Http1Parser::uvOnHeadersComplete(llhttp_t* p) {
  return static_cast<Http1Parser*>(p->data)->onHeadersComplete();
}

int Http1Parser::uvOnBody(llhttp_t* p, const char* at, size_t n) {
  static_cast<Http1Parser*>(p->data)->callbacks_.onBody(at, n);
  return 0;
}

int Http1Parser::uvOnMessageComplete(llhttp_t* p) {
  // Reported from execute()/finish() once llhttp has returned, after the last framing
  // checks; pausing here is what keeps pipelined messages apart.
  static_cast<Http1Parser*>(p->data)->message_done_ = true;
  return HPE_PAUSED;
}

}  // namespace proxy::http
