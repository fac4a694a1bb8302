// Test helper: drives an Http1Parser the way a connection does (resume after every
// pause, re-feed the unconsumed rest) and records what the callbacks saw, so each
// fixture can be fed whole, at every split point and byte by byte.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/http/http1_parser.h"

namespace proxy::http::test {

struct RecordedMessage {
  std::string method;
  std::string url;
  int status = 0;
  std::string reason;
  uint8_t major = 0;
  uint8_t minor = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  bool chunked = false;
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool keep_alive = false;
  bool upgrade = false;
  uint64_t wire_bytes = 0;
  std::string body;
  bool complete = false;
};

class Recorder : public Http1Parser::Callbacks {
 public:
  // Which heads report "no body" (a response to HEAD); by default none.
  std::function<bool(const MessageHead&)> skip_body;
  std::vector<RecordedMessage> messages;

  bool onHead(MessageHead& h) override {
    RecordedMessage m;
    m.method = std::string(h.methodName());
    m.url = std::string(h.url());
    m.status = h.status;
    m.reason = std::string(h.reason());
    m.major = h.http_major;
    m.minor = h.http_minor;
    for (size_t i = 0; i < h.headerCount(); ++i) {
      m.headers.emplace_back(std::string(h.header(i).name), std::string(h.header(i).value));
    }
    m.chunked = h.chunked;
    m.has_content_length = h.has_content_length;
    m.content_length = h.content_length;
    m.keep_alive = h.keep_alive;
    m.upgrade = h.upgrade;
    m.wire_bytes = h.wireBytes();
    messages.push_back(std::move(m));
    return skip_body ? skip_body(h) : false;
  }
  void onBody(const char* data, size_t len) override { messages.back().body.append(data, len); }
  void onMessageComplete() override { messages.back().complete = true; }
};

struct FeedResult {
  std::vector<RecordedMessage> messages;
  ParseError error = ParseError::kNone;
  std::string reason;
  std::string unconsumed;  // bytes fed but not parsed (after the last pause)
};

struct FeedOptions {
  Http1Parser::Kind kind = Http1Parser::Kind::kRequest;
  uint64_t max_head_bytes = 64 * 1024;
  bool finish = false;  // call finish() after the last byte (peer closed)
  // Stop after this many messages, leaving the rest unconsumed (0 = never).
  size_t stop_after = 0;
  std::function<bool(const MessageHead&)> skip_body;
};

// Feeds `input` split at the ascending offsets in `splits`.
inline FeedResult feedSplit(std::string_view input, const std::vector<size_t>& splits,
                            const FeedOptions& options = {}) {
  Recorder recorder;
  recorder.skip_body = options.skip_body;
  Http1Parser parser(options.kind, recorder, options.max_head_bytes);
  FeedResult result;
  std::string pending;
  size_t start = 0;
  bool stopped = false;
  for (size_t i = 0; i <= splits.size() && !stopped; ++i) {
    const size_t end = i < splits.size() ? splits[i] : input.size();
    pending.append(input.substr(start, end - start));
    start = end;
    while (!pending.empty()) {
      if (options.stop_after != 0 && recorder.messages.size() >= options.stop_after &&
          recorder.messages.back().complete) {
        stopped = true;
        break;
      }
      const Http1Parser::ExecResult r = parser.execute(pending.data(), pending.size());
      if (r.outcome == Http1Parser::Outcome::kError) {
        result.messages = recorder.messages;
        result.error = parser.error();
        result.reason = parser.errorReason();
        return result;
      }
      if (r.outcome == Http1Parser::Outcome::kConsumedAll) {
        pending.clear();
        break;
      }
      pending.erase(0, r.consumed);
      parser.resume();
    }
  }
  if (stopped) {
    pending.append(input.substr(start));
    result.unconsumed = pending;
  } else if (options.finish) {
    const Http1Parser::ExecResult r = parser.finish();
    if (r.outcome == Http1Parser::Outcome::kError) {
      result.error = parser.error();
      result.reason = parser.errorReason();
    }
  }
  result.messages = recorder.messages;
  return result;
}

inline FeedResult feedWhole(std::string_view input, const FeedOptions& options = {}) {
  return feedSplit(input, {}, options);
}

// Calls `check` with the result of feeding `input` whole, split once at every offset,
// and byte by byte.
template <class Check>
void forEachSplit(std::string_view input, const FeedOptions& options, Check check) {
  check(feedWhole(input, options), std::string("whole"));
  for (size_t at = 1; at < input.size(); ++at) {
    check(feedSplit(input, {at}, options), "split at " + std::to_string(at));
  }
  std::vector<size_t> every;
  for (size_t at = 1; at < input.size(); ++at) every.push_back(at);
  check(feedSplit(input, every, options), std::string("byte by byte"));
}

}  // namespace proxy::http::test
