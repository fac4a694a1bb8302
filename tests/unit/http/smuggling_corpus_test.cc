// Malformed and request-smuggling requests: each must fail with kBadMessage, fed whole,
// at every split point and byte by byte, and (where the defect is in the head) before
// onHead() runs. The integration tests replay the same shapes through the binary.
#include <catch2/catch.hpp>
#include <string>

#include "proxy/http/http1_parser.h"
#include "tests/unit/http/parser_harness.h"

namespace proxy::http {
namespace {

using namespace std::string_view_literals;

struct MalformedCase {
  const char* name;
  std::string_view input;
  bool defect_in_head;  // false: the head is valid, the body framing is not
  bool llhttp_rejects;  // what llhttp 8.1 (strict build) does without our checks
};

// clang-format off
const MalformedCase kCorpus[] = {
  // RFC 9112 §6.1: Content-Length with Transfer-Encoding.
  {"CL then TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"sv, true, true},
  {"TE then CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"sv, true, true},
  {"CL 0 with TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"sv, true, true},
  // RFC 9112 §6.3: duplicate Content-Length.
  {"differing duplicate CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"sv, true, true},
  {"identical duplicate CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"sv, true, true},
  {"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc"sv, true, true},
  // Content-Length syntax.
  {"CL with plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc"sv, true, true},
  {"negative CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -3\r\n\r\nabc"sv, true, true},
  {"space inside CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\nabc"sv, true, true},
  {"CL with letters", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3a\r\n\r\nabc"sv, true, true},
  {"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc"sv, true, true},
  {"CL overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n"sv, true, true},
  // RFC 9112 §6.1/§6.3: chunked must be the final (and here the only) coding.
  {"TE chunked then gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"sv, true, true},
  {"TE gzip only", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc"sv, true, true},
  {"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\nabc"sv, true, true},
  {"TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"sv, true, true},
  {"TE chunked twice in one header", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"sv, true, true},
  {"TE chunked in two headers", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"sv, true, true},
  {"TE gzip then chunked headers", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"sv, true, false},
  {"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"sv, true, false},
  {"TE with leading comma", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n"sv, true, false},
  {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"sv, true, false},
  // Chunk sizes and chunk framing (RFC 9112 §7.1).
  {"chunk size hex overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n"sv, false, true},
  {"negative chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n"sv, false, true},
  {"space after chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"sv, false, true},
  {"space before chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n"sv, false, true},
  {"0x chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"sv, false, true},
  {"empty chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n"sv, false, true},
  {"control char in chunk extension", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\x01\r\nhello\r\n0\r\n\r\n"sv, false, true},
  {"bare LF after chunk extension", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\nhello\r\n0\r\n\r\n"sv, false, true},
  {"bare LF after chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"sv, false, true},
  {"bare CR after chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\rhello\r\n0\r\n\r\n"sv, false, true},
  {"no CRLF after chunk data", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"sv, false, true},
  {"bare LF after chunk data", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n"sv, false, true},
  {"bare LF after last chunk", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\n\r\n"sv, false, true},
  {"bare LF ending the trailer section", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\n"sv, false, false},
  {"bare LF after a trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n"sv, false, true},
  {"bare LF ending trailers after a trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n\n"sv, false, false},
  {"obs-fold in trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n z\r\n\r\n"sv, false, false},
  {"form feed in trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\x0c" "b\r\n\r\n"sv, false, true},
  // Bare LF / CR line endings in the head (RFC 9112 §2.2).
  {"bare LF after request line", "GET / HTTP/1.1\nHost: a\r\n\r\n"sv, true, false},
  {"bare LF after header", "GET / HTTP/1.1\r\nHost: a\n\r\n"sv, true, true},
  {"bare LF ending the head", "GET / HTTP/1.1\r\nHost: a\r\n\n"sv, true, false},
  {"bare LF only", "GET / HTTP/1.1\nHost: a\n\n"sv, true, true},
  {"bare LF before request line", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"sv, true, false},
  {"bare CR after request line", "GET / HTTP/1.1\rHost: a\r\n\r\n"sv, true, true},
  {"bare CR in header value", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"sv, true, true},
  // obs-fold (RFC 9112 §5.2).
  {"obs-fold with space", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n"sv, true, false},
  {"obs-fold with tab", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n"sv, true, false},
  {"obs-fold hiding a header", "GET / HTTP/1.1\r\nHost: a\r\n Transfer-Encoding: chunked\r\n\r\n"sv, true, false},
  // Control characters in field values (RFC 9110 §5.5).
  {"NUL in header value", "GET / HTTP/1.1\r\nHost: a\x00" "b\r\n\r\n"sv, true, true},
  {"SOH in header value", "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n"sv, true, true},
  {"form feed in header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x0c" "b\r\n\r\n"sv, true, true},
  {"vertical tab in header value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x0b\r\n\r\n"sv, true, true},
  {"DEL in header value", "GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n"sv, true, true},
  // Header names (RFC 9110 §5.1).
  {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"sv, true, true},
  {"tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"sv, true, true},
  {"space inside name", "GET / HTTP/1.1\r\nHo st: a\r\n\r\n"sv, true, true},
  {"paren in name", "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n"sv, true, true},
  {"non-ASCII name", "GET / HTTP/1.1\r\nHost: a\r\nX-\x80: a\r\n\r\n"sv, true, true},
  {"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: a\r\n\r\n"sv, true, false},
  {"line without colon", "GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n"sv, true, true},
  // Request line (RFC 9112 §3).
  {"two spaces after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n"sv, true, false},
  {"two spaces before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n"sv, true, false},
  {"tab after method", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"sv, true, true},
  {"space before method", " GET / HTTP/1.1\r\nHost: a\r\n\r\n"sv, true, true},
  {"trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n"sv, true, true},
  {"missing version", "GET /\r\nHost: a\r\n\r\n"sv, true, false},
  {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n"sv, true, false},
  {"HTTP/0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n"sv, true, false},
  {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n"sv, true, true},
  {"lowercase protocol", "GET / http/1.1\r\nHost: a\r\n\r\n"sv, true, true},
  {"lowercase method", "get / HTTP/1.1\r\nHost: a\r\n\r\n"sv, true, true},
  {"unknown method", "FOO / HTTP/1.1\r\nHost: a\r\n\r\n"sv, true, true},
  {"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"sv, true, true},
  {"DEL in target", "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n"sv, true, true},
  {"asterisk-form for GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n"sv, true, false},
  {"asterisk-form for POST", "POST * HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"sv, true, false},
  {"authority-form for GET", "GET apm:8200 HTTP/1.1\r\nHost: a\r\n\r\n"sv, true, true},
  // Host (RFC 9112 §3.2).
  {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n"sv, true, false},
  {"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"sv, true, false},
};
// clang-format on

TEST_CASE("Http1Parser rejects every malformed or smuggling request in the corpus",
          "[unit][http]") {
  STATIC_REQUIRE(sizeof(kCorpus) / sizeof(kCorpus[0]) >= 25);
  for (const MalformedCase& c : kCorpus) {
    const std::string input(c.input);
    test::forEachSplit(input, {}, [&](const test::FeedResult& r, const std::string& how) {
      INFO(c.name << " (" << how << "): " << r.reason);
      CHECK(r.error == ParseError::kBadMessage);
      if (c.defect_in_head) {
        CHECK(r.messages.empty());
      } else if (!r.messages.empty()) {
        CHECK_FALSE(r.messages.back().complete);
      }
    });
  }
}

// llhttp alone, without our checks: documents which shapes need them, and fails when an
// llhttp upgrade changes what it rejects (then update the flags and the comments).
bool llhttpAloneRejects(std::string_view input) {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  return llhttp_execute(&parser, input.data(), input.size()) != HPE_OK;
}

TEST_CASE("llhttp alone rejects exactly the corpus entries marked so", "[unit][http]") {
  for (const MalformedCase& c : kCorpus) {
    INFO(c.name);
    CHECK(llhttpAloneRejects(c.input) == c.llhttp_rejects);
  }
}

TEST_CASE("The corpus is valid once its defect is repaired", "[unit][http]") {
  // Guards against a corpus entry failing for an unrelated reason.
  const char* repaired[] = {
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED \r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
      "GET / HTTP/1.1\r\nHost: a\r\nX: b c\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
  };
  for (const char* in : repaired) {
    INFO(in);
    const test::FeedResult r = test::feedWhole(in);
    CHECK(r.error == ParseError::kNone);
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].complete);
  }
}

TEST_CASE("Http1Parser rejects malformed responses from the upstream", "[unit][http]") {
  const char* bad[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
      "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
  };
  test::FeedOptions o;
  o.kind = Http1Parser::Kind::kResponse;
  for (const char* in : bad) {
    test::forEachSplit(in, o, [&](const test::FeedResult& r, const std::string& how) {
      INFO(in << " (" << how << ")");
      CHECK(r.error == ParseError::kBadMessage);
      if (!r.messages.empty()) CHECK_FALSE(r.messages.back().complete);
    });
  }
}

}  // namespace
}  // namespace proxy::http
