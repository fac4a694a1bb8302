#include "tests/support/http1_reader.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace proxy::testsupport {
namespace {

// Far above anything the proxy or the demo sends; a runaway head is a broken response.
constexpr size_t kMaxHeadBytes = 1 << 20;
constexpr size_t kMaxLineBytes = 64 << 10;

char lowerChar(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lowerChar(c);
  return out;
}

std::string_view trim(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

}  // namespace

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lowerChar(a[i]) != lowerChar(b[i])) return false;
  }
  return true;
}

std::optional<std::string> findHeader(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (equalsIgnoreCase(k, name)) return v;
  }
  return std::nullopt;
}

size_t countHeader(const Headers& headers, std::string_view name) {
  size_t n = 0;
  for (const auto& h : headers) n += equalsIgnoreCase(h.first, name) ? 1 : 0;
  return n;
}

Http1Reader::Http1Reader(Options options) : options_(options) {}

void Http1Reader::reset() {
  state_ = State::kHead;
  head_.clear();
  line_.clear();
  remaining_ = 0;
  body_bytes_ = 0;
  wire_bytes_ = 0;
  response_ = Response{};
}

size_t Http1Reader::feed(std::string_view data) {
  size_t used = 0;
  while (used < data.size() && state_ != State::kDone && state_ != State::kBroken) {
    std::string_view rest = data.substr(used);
    size_t n = 0;
    switch (state_) {
      case State::kHead:
        n = feedHead(rest);
        break;
      case State::kLength:
        n = feedBody(rest, State::kDone);
        break;
      case State::kChunkData:
        n = feedBody(rest, State::kChunkCrlf);
        break;
      case State::kChunkSize:
      case State::kChunkCrlf:
      case State::kTrailers:
        n = feedLine(rest);
        break;
      case State::kUntilClose:
        if (!options_.discard_body) response_.body.append(rest);
        body_bytes_ += rest.size();
        n = rest.size();
        break;
      case State::kDone:
      case State::kBroken:
        break;
    }
    used += n;
  }
  if (state_ == State::kDone) response_.complete = true;
  wire_bytes_ += used;
  return used;
}

void Http1Reader::finish() {
  response_.closed = true;
  if (state_ == State::kUntilClose) {
    state_ = State::kDone;
    response_.complete = true;
  }
}

size_t Http1Reader::feedHead(std::string_view data) {
  size_t old = head_.size();
  head_.append(data);
  size_t end = head_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
  if (end == std::string::npos) {
    if (head_.size() > kMaxHeadBytes) state_ = State::kBroken;
    return data.size();
  }
  head_.resize(end + 4);
  size_t used = end + 4 - old;
  if (!parseHead()) {
    state_ = State::kBroken;
    return used;
  }
  head_.clear();
  if (response_.status >= 100 && response_.status < 200) {
    if (options_.stop_at_interim) {
      state_ = State::kDone;
      response_.complete = true;
      return used;
    }
    Response interim = std::move(response_);
    interim.complete = true;
    response_ = Response{};
    response_.interim = std::move(interim.interim);
    response_.interim.push_back(std::move(interim));
    return used;  // still kHead: the final response follows
  }
  startBody();
  return used;
}

bool Http1Reader::parseHead() {
  std::string_view head(head_);
  head.remove_suffix(4);
  size_t eol = head.find('\n');
  std::string_view line = head.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.compare(0, 7, "HTTP/1.") != 0 || line.size() < 12) return false;
  response_.status = std::atoi(std::string(line.substr(9, 3)).c_str());
  response_.reason = line.size() > 13 ? std::string(line.substr(13)) : "";
  while (eol != std::string_view::npos) {
    head.remove_prefix(eol + 1);
    eol = head.find('\n');
    line = head.substr(0, eol);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    response_.headers.emplace_back(std::string(line.substr(0, colon)),
                                   std::string(trim(line.substr(colon + 1))));
  }
  return true;
}

void Http1Reader::startBody() {
  auto te = findHeader(response_.headers, "transfer-encoding");
  auto cl = findHeader(response_.headers, "content-length");
  if (options_.head_request || response_.status == 204 || response_.status == 304) {
    state_ = State::kDone;
  } else if (te && lower(*te).find("chunked") != std::string::npos) {
    response_.chunked = true;
    state_ = State::kChunkSize;
  } else if (cl) {
    remaining_ = std::strtoull(cl->c_str(), nullptr, 10);
    state_ = remaining_ == 0 ? State::kDone : State::kLength;
  } else {
    state_ = State::kUntilClose;
  }
}

size_t Http1Reader::feedBody(std::string_view data, State next) {
  size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size()));
  if (!options_.discard_body) response_.body.append(data.substr(0, n));
  body_bytes_ += n;
  remaining_ -= n;
  if (remaining_ == 0) state_ = next;
  return n;
}

size_t Http1Reader::feedLine(std::string_view data) {
  const void* nl = std::memchr(data.data(), '\n', data.size());
  size_t take = nl == nullptr ? data.size()
                              : static_cast<size_t>(static_cast<const char*>(nl) - data.data()) + 1;
  line_.append(data.substr(0, take));
  if (nl == nullptr) {
    if (line_.size() > kMaxLineBytes) state_ = State::kBroken;
    return take;
  }
  if (line_.size() < 2 || line_[line_.size() - 2] != '\r') {
    state_ = State::kBroken;
    return take;
  }
  bool ok = onLine(std::string_view(line_).substr(0, line_.size() - 2));
  line_.clear();
  if (!ok) state_ = State::kBroken;
  return take;
}

bool Http1Reader::onLine(std::string_view line) {
  switch (state_) {
    case State::kChunkSize: {
      std::string size(line.substr(0, line.find(';')));
      char* end = nullptr;
      remaining_ = std::strtoull(size.c_str(), &end, 16);
      if (size.empty() || *end != '\0') return false;
      state_ = remaining_ == 0 ? State::kTrailers : State::kChunkData;
      return true;
    }
    case State::kChunkCrlf:
      if (!line.empty()) return false;
      state_ = State::kChunkSize;
      return true;
    case State::kTrailers:
      if (line.empty()) state_ = State::kDone;
      return true;
    default:
      return false;
  }
}

}  // namespace proxy::testsupport
