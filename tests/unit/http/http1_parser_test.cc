#include "proxy/http/http1_parser.h"

#include <catch2/catch.hpp>
#include <string>

#include "tests/unit/http/parser_harness.h"

namespace proxy::http {
namespace {

using test::FeedOptions;
using test::FeedResult;
using test::forEachSplit;

std::string headerValue(const test::RecordedMessage& m, const std::string& name) {
  for (const auto& [n, v] : m.headers) {
    if (equalsIgnoreCase(n, name)) return v;
  }
  return "<missing>";
}

FeedOptions responses() {
  FeedOptions o;
  o.kind = Http1Parser::Kind::kResponse;
  return o;
}

TEST_CASE("Http1Parser parses a simple GET at every split point", "[unit][http]") {
  const std::string in =
      "GET /config/v1/agents?service.name=a HTTP/1.1\r\nHost: apm:8200\r\n"
      "User-Agent: apm-agent-go/2.4\r\nAccept:   */*  \r\nX-Empty:\r\n\r\n";
  forEachSplit(in, {}, [&](const FeedResult& r, const std::string& how) {
    INFO(how);
    REQUIRE(r.error == ParseError::kNone);
    REQUIRE(r.messages.size() == 1);
    const auto& m = r.messages[0];
    CHECK(m.method == "GET");
    CHECK(m.url == "/config/v1/agents?service.name=a");
    CHECK(m.major == 1);
    CHECK(m.minor == 1);
    REQUIRE(m.headers.size() == 4);
    CHECK(m.headers[0] == std::make_pair(std::string("Host"), std::string("apm:8200")));
    CHECK(m.headers[1].second == "apm-agent-go/2.4");
    CHECK(m.headers[2] == std::make_pair(std::string("Accept"), std::string("*/*")));
    CHECK(m.headers[3] == std::make_pair(std::string("X-Empty"), std::string("")));
    CHECK_FALSE(m.chunked);
    CHECK_FALSE(m.has_content_length);
    CHECK(m.keep_alive);
    CHECK(m.wire_bytes == in.size());
    CHECK(m.body.empty());
    CHECK(m.complete);
  });
}

TEST_CASE("Http1Parser parses a POST with Content-Length at every split point", "[unit][http]") {
  const std::string in =
      "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n"
      "Content-Type: application/x-ndjson\r\n\r\nhello world";
  forEachSplit(in, {}, [&](const FeedResult& r, const std::string& how) {
    INFO(how);
    REQUIRE(r.error == ParseError::kNone);
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].method == "POST");
    CHECK(r.messages[0].has_content_length);
    CHECK(r.messages[0].content_length == 11);
    CHECK(r.messages[0].body == "hello world");
    CHECK(r.messages[0].complete);
  });
}

TEST_CASE("Http1Parser decodes a chunked POST with extensions and trailers", "[unit][http]") {
  const std::string in =
      "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
      "Content-Encoding: gzip\r\n\r\n"
      "5;name=value\r\nhello\r\n6;q=\"quoted ext\";flag\r\n world\r\nA\r\n0123456789\r\n"
      "0\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n";
  forEachSplit(in, {}, [&](const FeedResult& r, const std::string& how) {
    INFO(how);
    REQUIRE(r.error == ParseError::kNone);
    REQUIRE(r.messages.size() == 1);
    const auto& m = r.messages[0];
    CHECK(m.chunked);
    CHECK_FALSE(m.has_content_length);
    CHECK(m.body == "hello world0123456789");
    CHECK(m.complete);
    // Trailers are not added to the head that was already delivered.
    CHECK(m.headers.size() == 3);
  });
}

TEST_CASE("Http1Parser gives pipelined requests one at a time, in order", "[unit][http]") {
  const std::string first = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string second = "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz";
  const std::string third =
      "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
  const std::string fourth = "GET /d HTTP/1.0\r\n\r\n";
  const std::string in = first + second + third + fourth;

  SECTION("every split point") {
    forEachSplit(in, {}, [&](const FeedResult& r, const std::string& how) {
      INFO(how);
      REQUIRE(r.error == ParseError::kNone);
      REQUIRE(r.messages.size() == 4);
      CHECK(r.messages[0].url == "/a");
      CHECK(r.messages[1].url == "/b");
      CHECK(r.messages[1].body == "xyz");
      CHECK(r.messages[2].url == "/c");
      CHECK(r.messages[2].body == "ok");
      CHECK(r.messages[3].url == "/d");
      CHECK(r.messages[3].minor == 0);
      CHECK_FALSE(r.messages[3].keep_alive);
      for (const auto& m : r.messages) CHECK(m.complete);
    });
  }
  SECTION("the parser pauses after each message and leaves the rest unconsumed") {
    test::Recorder rec;
    Http1Parser parser(Http1Parser::Kind::kRequest, rec, 8192);
    auto r = parser.execute(in.data(), in.size());
    CHECK(r.outcome == Http1Parser::Outcome::kPaused);
    CHECK(r.consumed == first.size());
    CHECK(parser.paused());
    CHECK_FALSE(parser.inMessage());
    REQUIRE(rec.messages.size() == 1);
    CHECK(rec.messages[0].complete);
    parser.resume();
    size_t off = r.consumed;
    r = parser.execute(in.data() + off, in.size() - off);
    CHECK(r.outcome == Http1Parser::Outcome::kPaused);
    CHECK(r.consumed == second.size());
    REQUIRE(rec.messages.size() == 2);
    CHECK(rec.messages[1].body == "xyz");
    parser.resume();
    off += r.consumed;
    r = parser.execute(in.data() + off, in.size() - off);
    CHECK(r.outcome == Http1Parser::Outcome::kPaused);
    CHECK(r.consumed == third.size());
    parser.resume();
    off += r.consumed;
    r = parser.execute(in.data() + off, in.size() - off);
    CHECK(r.outcome == Http1Parser::Outcome::kPaused);
    CHECK(r.consumed == fourth.size());
    CHECK(rec.messages.size() == 4);
    parser.resume();
    CHECK(parser.finish().outcome == Http1Parser::Outcome::kConsumedAll);
  }
  SECTION("a caller that stops after the first message keeps the others") {
    FeedOptions o;
    o.stop_after = 1;
    const FeedResult r = test::feedWhole(in, o);
    REQUIRE(r.messages.size() == 1);
    CHECK(r.unconsumed == second + third + fourth);
  }
}

TEST_CASE("Http1Parser reports the head of an Expect: 100-continue request before its body",
          "[unit][http]") {
  const std::string head =
      "POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
      "Content-Length: 4\r\n\r\n";
  test::Recorder rec;
  Http1Parser parser(Http1Parser::Kind::kRequest, rec, 8192);
  auto r = parser.execute(head.data(), head.size());
  CHECK(r.outcome == Http1Parser::Outcome::kConsumedAll);
  CHECK(parser.headComplete());
  CHECK(parser.inMessage());
  REQUIRE(rec.messages.size() == 1);
  CHECK(headerValue(rec.messages[0], "expect") == "100-continue");
  CHECK_FALSE(rec.messages[0].complete);
  std::string_view expect;
  CHECK(parser.head().find("EXPECT", &expect));
  CHECK(expect == "100-continue");
  r = parser.execute("body", 4);
  CHECK(r.outcome == Http1Parser::Outcome::kPaused);
  CHECK(rec.messages[0].body == "body");
  CHECK(rec.messages[0].complete);
}

TEST_CASE("Http1Parser skips the body of a response to HEAD when onHead asks", "[unit][http]") {
  const std::string in =
      "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/plain\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  FeedOptions o = responses();
  int heads = 0;
  o.skip_body = [&heads](const MessageHead&) { return heads++ % 2 == 0; };
  forEachSplit(in, o, [&](const FeedResult& r, const std::string& how) {
    INFO(how);
    heads = 0;  // reset for the next feed (the lambda is called before it runs again)
    REQUIRE(r.error == ParseError::kNone);
    REQUIRE(r.messages.size() == 2);
    CHECK(r.messages[0].status == 200);
    CHECK(r.messages[0].content_length == 1234);
    CHECK(r.messages[0].body.empty());
    CHECK(r.messages[0].complete);
    CHECK(r.messages[1].body == "ok");
    CHECK(r.messages[1].complete);
  });
}

TEST_CASE("Http1Parser gives 1xx responses as their own messages", "[unit][http]") {
  const std::string in =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
  forEachSplit(in, responses(), [&](const FeedResult& r, const std::string& how) {
    INFO(how);
    REQUIRE(r.error == ParseError::kNone);
    REQUIRE(r.messages.size() == 3);
    CHECK(r.messages[0].status == 100);
    CHECK(r.messages[0].reason == "Continue");
    CHECK(r.messages[1].status == 103);
    CHECK(headerValue(r.messages[1], "link") == "</style.css>; rel=preload");
    CHECK(r.messages[2].status == 202);
    CHECK(r.messages[2].keep_alive);
    for (const auto& m : r.messages) CHECK(m.complete);
  });
}

TEST_CASE("Http1Parser knows that 204 and 304 responses have no body", "[unit][http]") {
  const std::string in =
      "HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n"
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: \"x\"\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!";
  forEachSplit(in, responses(), [&](const FeedResult& r, const std::string& how) {
    INFO(how);
    REQUIRE(r.error == ParseError::kNone);
    REQUIRE(r.messages.size() == 3);
    CHECK(r.messages[0].status == 204);
    CHECK(r.messages[1].status == 304);
    CHECK(r.messages[1].content_length == 99);
    CHECK(r.messages[1].body.empty());
    CHECK(r.messages[2].body == "!");
  });
}

TEST_CASE("Http1Parser ends a close-delimited response body at finish()", "[unit][http]") {
  const std::string in = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
  FeedOptions o = responses();
  o.finish = true;
  forEachSplit(in, o, [&](const FeedResult& r, const std::string& how) {
    INFO(how);
    REQUIRE(r.error == ParseError::kNone);
    REQUIRE(r.messages.size() == 1);
    CHECK_FALSE(r.messages[0].keep_alive);
    CHECK(r.messages[0].body == "until the end");
    CHECK(r.messages[0].complete);
  });
  SECTION("without finish() the message is not complete") {
    const FeedResult r = test::feedWhole(in, responses());
    REQUIRE(r.messages.size() == 1);
    CHECK_FALSE(r.messages[0].complete);
  }
}

TEST_CASE("Http1Parser reports a premature EOF inside a message", "[unit][http]") {
  FeedOptions o = responses();
  o.finish = true;
  const char* cut[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
      "HTTP/1.1 200 OK\r\nContent-Le",
      "HTTP/1.1 20",
  };
  for (const char* in : cut) {
    forEachSplit(in, o, [&](const FeedResult& r, const std::string& how) {
      INFO(in << " " << how);
      CHECK(r.error == ParseError::kPrematureEof);
      if (!r.messages.empty()) CHECK_FALSE(r.messages.back().complete);
    });
  }
  SECTION("a close between messages is clean") {
    const FeedResult r = test::feedWhole("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", o);
    CHECK(r.error == ParseError::kNone);
    CHECK(r.messages.size() == 1);
  }
  SECTION("a second message cut short after the first completed") {
    FeedOptions req;
    req.finish = true;
    const FeedResult r = test::feedWhole("GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HT", req);
    CHECK(r.error == ParseError::kPrematureEof);
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].complete);
  }
  SECTION("requests too") {
    FeedOptions req;
    req.finish = true;
    const FeedResult r =
        test::feedWhole("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab", req);
    CHECK(r.error == ParseError::kPrematureEof);
  }
}

TEST_CASE("Http1Parser rejects a head over the limit at the exact boundary", "[unit][http]") {
  const std::string in = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + std::string(200, 'p') +
                         "\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n";
  const size_t head_size = in.find("GET /next");
  SECTION("a head of exactly the limit passes") {
    FeedOptions o;
    o.max_head_bytes = head_size;
    forEachSplit(in, o, [&](const FeedResult& r, const std::string& how) {
      INFO(how);
      REQUIRE(r.error == ParseError::kNone);
      REQUIRE(r.messages.size() == 2);
      CHECK(r.messages[0].wire_bytes == head_size);
    });
  }
  SECTION("one byte more is a 431") {
    FeedOptions o;
    o.max_head_bytes = head_size - 1;
    forEachSplit(in, o, [&](const FeedResult& r, const std::string& how) {
      INFO(how);
      CHECK(r.error == ParseError::kHeadTooLarge);
      CHECK(r.messages.empty());
    });
  }
  SECTION("a head that never ends fails once the limit is passed") {
    test::Recorder rec;
    Http1Parser parser(Http1Parser::Kind::kRequest, rec, 1024);
    const std::string start = "GET / HTTP/1.1\r\nX: ";
    REQUIRE(parser.execute(start.data(), start.size()).outcome ==
            Http1Parser::Outcome::kConsumedAll);
    const std::string pad(1024, 'a');
    CHECK(parser.execute(pad.data(), pad.size()).outcome == Http1Parser::Outcome::kError);
    CHECK(parser.error() == ParseError::kHeadTooLarge);
  }
  SECTION("responses are limited the same way") {
    FeedOptions o = responses();
    o.max_head_bytes = 20;
    const FeedResult r = test::feedWhole("HTTP/1.1 200 OK\r\nServer: long-enough\r\n\r\n", o);
    CHECK(r.error == ParseError::kHeadTooLarge);
  }
  SECTION("trailers are bounded by the same limit") {
    FeedOptions o;
    o.max_head_bytes = 100;
    const FeedResult r =
        test::feedWhole("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " +
                            std::string(200, 't') + "\r\n\r\n",
                        o);
    CHECK(r.error == ParseError::kHeadTooLarge);
  }
}

TEST_CASE("Http1Parser ignores Upgrade and keeps parsing HTTP/1.1", "[unit][http]") {
  const std::string in =
      "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
      "\r\nPOST /next HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi";
  forEachSplit(in, {}, [&](const FeedResult& r, const std::string& how) {
    INFO(how);
    REQUIRE(r.error == ParseError::kNone);
    REQUIRE(r.messages.size() == 2);
    CHECK(r.messages[0].upgrade);
    CHECK(r.messages[0].complete);
    CHECK_FALSE(r.messages[1].upgrade);
    CHECK(r.messages[1].body == "hi");
  });
  SECTION("an upgrade request with a body") {
    const FeedResult r = test::feedWhole(
        "POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n"
        "Content-Length: 3\r\n\r\nabc");
    REQUIRE(r.error == ParseError::kNone);
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].body == "abc");
  }
  SECTION("a 101 response is refused") {
    const FeedResult r = test::feedWhole(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        responses());
    CHECK(r.error == ParseError::kUnsupported);
    CHECK(r.messages.empty());
  }
}

TEST_CASE("Http1Parser refuses CONNECT before calling onHead", "[unit][http]") {
  forEachSplit("CONNECT apm.example:443 HTTP/1.1\r\nHost: apm.example:443\r\n\r\n", {},
               [&](const FeedResult& r, const std::string& how) {
                 INFO(how);
                 CHECK(r.error == ParseError::kUnsupported);
                 CHECK(r.messages.empty());
               });
}

TEST_CASE("Http1Parser accepts the request targets and versions RFC 9112 allows", "[unit][http]") {
  const char* good[] = {
      "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
      "OPTIONS /intake/v2/rum/events HTTP/1.1\r\nHost: a\r\nOrigin: https://x\r\n\r\n",
      "GET http://apm.example/ HTTP/1.1\r\nHost: apm.example\r\n\r\n",
      "GET http://APM.example:80/x?y HTTP/1.1\r\nHost: apm.example\r\n\r\n",
      "GET https://apm.example:8200 HTTP/1.1\r\nHost: apm.example:8200\r\n\r\n",
      "GET http://apm.example/ HTTP/1.0\r\n\r\n",
      "GET / HTTP/1.0\r\n\r\n",
      "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n",
      "DELETE /x HTTP/1.1\r\nHost: a\r\nX:\tb\t\r\n\r\n",
  };
  for (const char* in : good) {
    const FeedResult r = test::feedWhole(in);
    INFO(in);
    CHECK(r.error == ParseError::kNone);
    CHECK(r.messages.size() == 1);
  }
}

TEST_CASE("Http1Parser refuses an absolute-form target whose authority is not the Host",
          "[unit][http]") {
  const char* bad[] = {
      "GET http://other.example/ HTTP/1.1\r\nHost: apm.example\r\n\r\n",
      "GET http://apm.example:8201/ HTTP/1.1\r\nHost: apm.example:8200\r\n\r\n",
      "POST https://evil@apm.example/ HTTP/1.1\r\nHost: apm.example\r\n\r\n",
  };
  for (const char* in : bad) {
    const FeedResult r = test::feedWhole(in);
    INFO(in);
    CHECK(r.error == ParseError::kBadMessage);
    CHECK(r.messages.empty());
  }
}

TEST_CASE("Http1Parser names llhttp errors in errorReason", "[unit][http]") {
  const FeedResult r =
      test::feedWhole("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
  CHECK(r.error == ParseError::kBadMessage);
  CHECK(r.reason.rfind("HPE_INVALID_CHUNK_SIZE: ", 0) == 0);
}

TEST_CASE("Http1Parser reuses its head buffers across messages", "[unit][http]") {
  test::Recorder rec;
  Http1Parser parser(Http1Parser::Kind::kRequest, rec, 8192);
  const std::string in = "GET /a HTTP/1.1\r\nHost: a\r\nX-Long: " + std::string(300, 'x') +
                         "\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n";
  auto r = parser.execute(in.data(), in.size());
  REQUIRE(r.outcome == Http1Parser::Outcome::kPaused);
  parser.resume();
  r = parser.execute(in.data() + r.consumed, in.size() - r.consumed);
  REQUIRE(r.outcome == Http1Parser::Outcome::kPaused);
  MessageHead& h = parser.head();
  CHECK(h.url() == "/b");
  REQUIRE(h.headerCount() == 1);
  CHECK(h.header(0).value == "b");
}

}  // namespace
}  // namespace proxy::http
