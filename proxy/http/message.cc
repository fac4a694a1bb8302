#include "proxy/http/message.h"

#include <llhttp.h>

namespace proxy::http {

namespace {

char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool isOws(char c) { return c == ' ' || c == '\t'; }

}  // namespace

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lowerAscii(a[i]) != lowerAscii(b[i])) return false;
  }
  return true;
}

void MessageHead::releaseMemory() {
  clear();
  std::string().swap(buf_);
  std::vector<HeaderSpan>().swap(headers_);
}

void MessageHead::clear() {
  method = 0;
  status = 0;
  http_major = 1;
  http_minor = 1;
  chunked = false;
  has_content_length = false;
  content_length = 0;
  keep_alive = true;
  upgrade = false;
  buf_.clear();  // keeps capacity: no allocation for the next head of similar size
  url_ = Span{};
  reason_ = Span{};
  headers_.clear();
  in_value_ = false;
  wire_bytes_ = 0;
}

std::string_view MessageHead::methodName() const {
  return llhttp_method_name(static_cast<llhttp_method_t>(method));
}

MessageHead::Header MessageHead::header(size_t i) const {
  const HeaderSpan& h = headers_[i];
  return Header{view(h.name), view(h.value)};
}

bool MessageHead::find(std::string_view name, std::string_view* value) const {
  for (const HeaderSpan& h : headers_) {
    if (equalsIgnoreCase(view(h.name), name)) {
      if (value != nullptr) *value = view(h.value);
      return true;
    }
  }
  return false;
}

bool MessageHead::connectionHas(std::string_view token) const {
  for (const HeaderSpan& h : headers_) {
    if (!equalsIgnoreCase(view(h.name), "connection")) continue;
    if (listHas(view(h.value), token)) return true;
  }
  return false;
}

bool MessageHead::listHas(std::string_view list, std::string_view token) {
  // RFC 9110 §5.6.1: #rule lists are comma-separated with optional whitespace and may
  // contain empty elements.
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    size_t b = pos;
    size_t e = comma;
    while (b < e && isOws(list[b])) ++b;
    while (e > b && isOws(list[e - 1])) --e;
    if (equalsIgnoreCase(list.substr(b, e - b), token)) return true;
    pos = comma + 1;
  }
  return false;
}

void MessageHead::appendUrl(const char* p, size_t n) {
  if (url_.len == 0) url_.off = static_cast<uint32_t>(buf_.size());
  buf_.append(p, n);
  url_.len += static_cast<uint32_t>(n);
}

void MessageHead::appendReason(const char* p, size_t n) {
  if (reason_.len == 0) reason_.off = static_cast<uint32_t>(buf_.size());
  buf_.append(p, n);
  reason_.len += static_cast<uint32_t>(n);
}

void MessageHead::appendHeaderName(const char* p, size_t n) {
  if (headers_.empty() || in_value_) {
    HeaderSpan h;
    h.name.off = static_cast<uint32_t>(buf_.size());
    h.value.off = h.name.off;
    headers_.push_back(h);
    in_value_ = false;
  }
  buf_.append(p, n);
  headers_.back().name.len += static_cast<uint32_t>(n);
}

void MessageHead::appendHeaderValue(const char* p, size_t n) {
  if (headers_.empty()) return;  // llhttp never sends a value before a name
  HeaderSpan& h = headers_.back();
  if (!in_value_) {
    h.value.off = static_cast<uint32_t>(buf_.size());
    h.value.len = 0;
    in_value_ = true;
  }
  buf_.append(p, n);
  h.value.len += static_cast<uint32_t>(n);
}

void MessageHead::endHeader() {
  if (headers_.empty()) return;
  if (!in_value_) {
    headers_.back().value = Span{static_cast<uint32_t>(buf_.size()), 0};
    in_value_ = true;
  }
}

void MessageHead::finishHeaders() {
  // RFC 9112 §5: OWS around the field value is not part of it.
  for (HeaderSpan& h : headers_) {
    while (h.value.len > 0 && isOws(buf_[h.value.off])) {
      ++h.value.off;
      --h.value.len;
    }
    while (h.value.len > 0 && isOws(buf_[h.value.off + h.value.len - 1])) --h.value.len;
  }
  in_value_ = true;
}

}  // namespace proxy::http
