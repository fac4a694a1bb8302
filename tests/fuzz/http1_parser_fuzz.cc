// libFuzzer target for the HTTP/1 codec in both directions: the same bytes go to the
// request parser and to the response parser, and every head either accepts is rewritten
// as the proxy would forward it (writeRequestHead / writeResponseHead).
// Properties checked (a failure aborts, and libFuzzer keeps the input):
// - parsing is independent of how the bytes are split: the whole input at once and the
//   input cut at a point it chooses give the same heads, body bytes, messages and
//   whether it ended in an error;
// - a forwarded head is well formed: no control byte but HTAB inside a line, CRLF line
//   ends, one blank line at the end, and a fresh parser of the same kind accepts it;
// - the decoded body is never longer than the input.
// Build with the `fuzz` preset (clang, -fsanitize=fuzzer,address,undefined); see
// docs/testing.md.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/head_writer.h"
#include "proxy/http/http1_parser.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using proxy::http::Http1Parser;

constexpr uint64_t kMaxHead = 4096;

// Everything a parse produced, to compare two ways of feeding the same bytes.
struct Trace {
  std::vector<std::string> heads;  // the forwarded form of every accepted head
  std::string body;                // decoded body bytes of every message, back to back
  int messages = 0;
  bool error = false;
  proxy::http::ParseError reason = proxy::http::ParseError::kNone;
  // The reason is left out: a head that is both malformed and over the size limit may
  // be refused as either (431 or 400) depending on where the bytes were cut, as the
  // raw-byte scan and llhttp see different amounts of it. Refused either way is what counts.
  bool operator==(const Trace& o) const {
    return heads == o.heads && body == o.body && messages == o.messages && error == o.error;
  }
};

// Counts the heads a parser accepted, for the re-parse check.
class HeadCounter : public Http1Parser::Callbacks {
 public:
  bool onHead(proxy::http::MessageHead&) override {
    ++heads;
    return false;
  }
  void onBody(const char*, size_t) override {}
  void onMessageComplete() override {}
  int heads = 0;
};

// `s` with every byte outside printable ASCII written as \xNN, for failure messages.
std::string printable(std::string_view s) {
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += ch;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// A forwarded head must be lines of printable bytes (HTAB allowed) ending in CRLF, with
// exactly one empty line, at the end; and it must parse again (an HTTP/1.0 request without
// Host leaves with an empty Host, RFC 9112 §3.2). `hostless_http10` is kept for callers.
void checkForwardedHead(Http1Parser::Kind kind, const std::string& head, bool hostless_http10) {
  FUZZ_CHECK(head.size() >= 4 && head.compare(head.size() - 4, 4, "\r\n\r\n") == 0,
             "forwarded head does not end with an empty line");
  size_t start = 0;
  while (start < head.size()) {
    size_t end = head.find("\r\n", start);
    FUZZ_CHECK(end != std::string::npos, "forwarded head line without CRLF");
    std::string_view line(head.data() + start, end - start);
    FUZZ_CHECK(proxy::fuzz::headerSafe(line, /*allow_tab=*/true),
               "control byte (CR, LF, NUL...) inside a forwarded head line");
    FUZZ_CHECK(!line.empty() || end + 2 == head.size(), "empty line before the end of a head");
    start = end + 2;
  }
  HeadCounter counter;
  Http1Parser again(kind, counter, 0);
  Http1Parser::ExecResult r = again.execute(head.data(), head.size());
  (void)hostless_http10;
  if (r.outcome == Http1Parser::Outcome::kError) {
    std::fprintf(stderr, "forwarded head: %s\nrejected: %s\n", printable(head).c_str(),
                 again.errorReason().c_str());
  }
  FUZZ_CHECK(r.outcome != Http1Parser::Outcome::kError, "the forwarded head does not parse");
  FUZZ_CHECK(counter.heads == 1, "the forwarded head is not exactly one head");
}

class Recorder : public Http1Parser::Callbacks {
 public:
  Recorder(Http1Parser::Kind kind, Trace& trace) : kind_(kind), trace_(trace) {}
  bool onHead(proxy::http::MessageHead& head) override {
    std::string out;
    if (kind_ == Http1Parser::Kind::kRequest) {
      proxy::http::ForwardContext ctx;
      ctx.client_ip = "192.0.2.1";
      ctx.tls = true;
      ctx.client_cert_header = "Hash=00;Subject=\"CN=a\"";
      proxy::http::writeRequestHead(head, ctx, out);
    } else {
      proxy::http::ResponseContext ctx;
      proxy::http::writeResponseHead(head, ctx, out);
    }
    bool hostless_http10 = kind_ == Http1Parser::Kind::kRequest && head.http_major == 1 &&
                           head.http_minor == 0 && !head.find("host", nullptr);
    checkForwardedHead(kind_, out, hostless_http10);
    trace_.heads.push_back(std::move(out));
    return false;
  }
  void onBody(const char* data, size_t len) override { trace_.body.append(data, len); }
  void onMessageComplete() override { ++trace_.messages; }

 private:
  Http1Parser::Kind kind_;
  Trace& trace_;
};

// Feeds `pieces` in order, resuming after each message, then reports EOF.
Trace parse(Http1Parser::Kind kind, const std::vector<std::string_view>& pieces) {
  Trace trace;
  Recorder recorder(kind, trace);
  Http1Parser parser(kind, recorder, kMaxHead);
  for (std::string_view piece : pieces) {
    const char* q = piece.data();
    size_t left = piece.size();
    // Every pass consumes a byte or completes a message, so this bound is never reached
    // by a parser that makes progress.
    for (size_t guard = 0; left > 0; ++guard) {
      FUZZ_CHECK(guard <= piece.size() + 1, "the parser stopped making progress");
      Http1Parser::ExecResult r = parser.execute(q, left);
      FUZZ_CHECK(r.consumed <= left, "consumed more bytes than it was given");
      if (r.outcome == Http1Parser::Outcome::kError) {
        trace.error = true;
        trace.reason = parser.error();
        return trace;
      }
      q += r.consumed;
      left -= r.consumed;
      if (r.outcome == Http1Parser::Outcome::kPaused) parser.resume();
    }
  }
  if (parser.finish().outcome == Http1Parser::Outcome::kError) {
    trace.error = true;
    trace.reason = parser.error();
  }
  return trace;
}

void run(Http1Parser::Kind kind, std::string_view input, size_t split) {
  Trace whole = parse(kind, {input});
  Trace cut = parse(kind, {input.substr(0, split), input.substr(split)});
  if (!(whole == cut)) {
    for (const Trace* t : {&whole, &cut}) {
      std::fprintf(stderr, "%s: %zu heads, %zu body bytes, %d messages, error %d (%d)\n",
                   t == &whole ? "whole" : "cut", t->heads.size(), t->body.size(), t->messages,
                   t->error, static_cast<int>(t->reason));
    }
    std::fprintf(stderr, "%s parser, split at %zu\n",
                 kind == Http1Parser::Kind::kRequest ? "request" : "response", split);
  }
  FUZZ_CHECK(whole == cut, "splitting the input changed what the parser saw");
  FUZZ_CHECK(whole.body.size() <= input.size(), "more body bytes than input bytes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t split = size > 0 ? data[0] % (size + 1) : 0;
  run(Http1Parser::Kind::kRequest, input, split);
  run(Http1Parser::Kind::kResponse, input, split);
  return 0;
}
