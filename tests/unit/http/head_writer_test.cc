#include "proxy/http/head_writer.h"

#include <catch2/catch.hpp>
#include <iterator>
#include <string>
#include <vector>

#include "proxy/http/http1_parser.h"

namespace proxy::http {
namespace {

// Parses one head with the real parser, so the writer sees what a connection gives it.
class ParsedHead : public Http1Parser::Callbacks {
 public:
  ParsedHead(Http1Parser::Kind kind, const std::string& wire) : parser_(kind, *this, 65536) {
    const Http1Parser::ExecResult r = parser_.execute(wire.data(), wire.size());
    REQUIRE(r.outcome != Http1Parser::Outcome::kError);
    REQUIRE(got_head_);
  }
  const MessageHead& head() { return parser_.head(); }

  bool onHead(MessageHead&) override {
    got_head_ = true;
    return false;
  }
  void onBody(const char*, size_t) override {}
  void onMessageComplete() override {}

 private:
  Http1Parser parser_;
  bool got_head_ = false;
};

std::string request(const std::string& wire, const ForwardContext& ctx,
                    BodyFraming* framing = nullptr) {
  ParsedHead parsed(Http1Parser::Kind::kRequest, wire);
  std::string out = "prefix|";  // the writer appends
  const BodyFraming f = writeRequestHead(parsed.head(), ctx, out);
  if (framing != nullptr) *framing = f;
  REQUIRE(out.rfind("prefix|", 0) == 0);
  return out.substr(7);
}

std::string response(const std::string& wire, const ResponseContext& ctx,
                     BodyFraming* framing = nullptr) {
  ParsedHead parsed(Http1Parser::Kind::kResponse, wire);
  std::string out;
  const BodyFraming f = writeResponseHead(parsed.head(), ctx, out);
  if (framing != nullptr) *framing = f;
  return out;
}

ForwardContext client(const char* ip) {
  ForwardContext ctx;
  ctx.client_ip = ip;
  return ctx;
}

TEST_CASE("writeRequestHead keeps end-to-end headers in order and adds forwarding headers",
          "[unit][http]") {
  BodyFraming framing;
  const std::string out = request(
      "POST /intake/v2/events HTTP/1.1\r\nHost: apm:8200\r\nUser-Agent: apm-agent-java/1.0\r\n"
      "Authorization: Bearer s3cr3t\r\nContent-Type: application/x-ndjson\r\n"
      "Content-Encoding: gzip\r\nOrigin: https://app.example\r\nContent-Length: 5\r\n"
      "Expect: 100-continue\r\n\r\n",
      client("192.0.2.7"), &framing);
  CHECK(out ==
        "POST /intake/v2/events HTTP/1.1\r\nHost: apm:8200\r\nUser-Agent: apm-agent-java/1.0\r\n"
        "Authorization: Bearer s3cr3t\r\nContent-Type: application/x-ndjson\r\n"
        "Content-Encoding: gzip\r\nOrigin: https://app.example\r\n"
        "Expect: 100-continue\r\nContent-Length: 5\r\n"
        "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n\r\n");
  CHECK(framing == BodyFraming::kContentLength);
}

TEST_CASE("writeRequestHead drops hop-by-hop headers and those Connection names", "[unit][http]") {
  BodyFraming framing;
  const std::string out = request(
      "POST /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop ,Upgrade\r\n"
      "Keep-Alive: timeout=5\r\nX-Hop: 1\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
      "Trailer: X-T\r\nUpgrade: websocket\r\nConnection: x-other\r\nX-Other: 2\r\n"
      "X-Keep: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      client("10.0.0.1"), &framing);
  CHECK(out ==
        "POST /x HTTP/1.1\r\nHost: a\r\nX-Keep: 3\r\nTransfer-Encoding: chunked\r\n"
        "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n");
  CHECK(framing == BodyFraming::kChunked);
}

TEST_CASE("writeRequestHead never drops Host even when Connection names it", "[unit][http]") {
  const std::string out =
      request("GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n", client("10.0.0.1"));
  CHECK(out ==
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\n"
        "X-Forwarded-Proto: http\r\n\r\n");
}

TEST_CASE("writeRequestHead replaces client-sent address headers from an untrusted client",
          "[unit][http]") {
  ForwardContext ctx = client("203.0.113.9");
  ctx.tls = true;
  const std::string out = request(
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nForwarded: for=1.2.3.4\r\n"
      "X-Real-IP: 1.2.3.4\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Client-Cert: spoof\r\n"
      "x-forwarded-for: 5.6.7.8\r\nAccept: */*\r\n\r\n",
      ctx);
  CHECK(out ==
        "GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nX-Forwarded-For: 203.0.113.9\r\n"
        "X-Forwarded-Proto: https\r\n\r\n");
}

TEST_CASE("writeRequestHead appends to X-Forwarded-For from a trusted proxy", "[unit][http]") {
  ForwardContext ctx = client("10.1.1.1");
  ctx.client_is_trusted_proxy = true;
  SECTION("several incoming headers are joined") {
    const std::string out = request(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 198.51.100.1, 10.9.9.9\r\n"
        "X-Real-IP: 1.1.1.1\r\nX-Forwarded-For: 10.2.2.2\r\n\r\n",
        ctx);
    CHECK(out ==
          "GET / HTTP/1.1\r\nHost: a\r\n"
          "X-Forwarded-For: 198.51.100.1, 10.9.9.9, 10.2.2.2, 10.1.1.1\r\n"
          "X-Forwarded-Proto: http\r\n\r\n");
  }
  SECTION("no incoming header") {
    const std::string out = request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", ctx);
    CHECK(out ==
          "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.1.1.1\r\n"
          "X-Forwarded-Proto: http\r\n\r\n");
  }
}

TEST_CASE("writeRequestHead sends the proxy's X-Forwarded-Client-Cert only", "[unit][http]") {
  ForwardContext ctx = client("192.0.2.1");
  ctx.tls = true;
  ctx.client_cert_header = "Hash=abc;Subject=\"CN=agent\"";
  const std::string out =
      request("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Client-Cert: Hash=spoofed\r\n\r\n", ctx);
  CHECK(out ==
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\n"
        "X-Forwarded-Client-Cert: Hash=abc;Subject=\"CN=agent\"\r\n\r\n");
}

TEST_CASE("writeRequestHead re-derives request framing", "[unit][http]") {
  BodyFraming framing;
  SECTION("Content-Length: 0 sent by the client is kept") {
    const std::string out = request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
                                    client("1.1.1.1"), &framing);
    CHECK(out ==
          "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
          "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-Proto: http\r\n\r\n");
    CHECK(framing == BodyFraming::kContentLength);
  }
  SECTION("no body, no framing header") {
    const std::string out = request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", client(""), &framing);
    CHECK(out == "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: http\r\n\r\n");
    CHECK(framing == BodyFraming::kNone);
  }
  SECTION("chunked stays chunked, case of the incoming coding aside") {
    const std::string out =
        request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
                client("1.1.1.1"), &framing);
    CHECK(out ==
          "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
          "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-Proto: http\r\n\r\n");
    CHECK(framing == BodyFraming::kChunked);
  }
}

TEST_CASE("writeRequestHead upgrades HTTP/1.0 requests to HTTP/1.1 with the Host it needs",
          "[unit][http]") {
  // RFC 9112 §3.2: an HTTP/1.1 request without Host is refused (Go's server answers 400),
  // so the empty value the RFC prescribes when there is no authority is added.
  BodyFraming framing;
  const std::string out =
      request("POST /a?b=c HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
              client("::1"), &framing);
  CHECK(out ==
        "POST /a?b=c HTTP/1.1\r\nHost: \r\nContent-Length: 2\r\nX-Forwarded-For: ::1\r\n"
        "X-Forwarded-Proto: http\r\n\r\n");
  CHECK(framing == BodyFraming::kContentLength);
}

TEST_CASE("An HTTP/1.0 request without Host leaves as HTTP/1.1 with one", "[unit][http]") {
  CHECK(request("GET /x HTTP/1.0\r\n\r\n", client("")) ==
        "GET /x HTTP/1.1\r\nHost: \r\nX-Forwarded-Proto: http\r\n\r\n");
  CHECK(request("GET http://a.example:8200/x HTTP/1.0\r\n\r\n", client("")) ==
        "GET http://a.example:8200/x HTTP/1.1\r\nHost: a.example:8200\r\n"
        "X-Forwarded-Proto: http\r\n\r\n");
}

TEST_CASE("writeRequestHead forwards OPTIONS and absolute-form targets unchanged", "[unit][http]") {
  CHECK(request("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", client("")) ==
        "OPTIONS * HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: http\r\n\r\n");
  CHECK(request("GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", client("")) ==
        "GET http://a/x HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: http\r\n\r\n");
}

TEST_CASE("requestBytesBound is at least what writeRequestHead writes plus the body",
          "[unit][http]") {
  ForwardContext ctx = client("2001:db8::1234:5678:9abc:def0");
  ctx.tls = true;
  ctx.client_cert_header = "Hash=0123456789abcdef;Subject=\"CN=agent\"";
  const std::string body(300, 'x');
  // The head grows the most where the client sent least: HTTP/1.0 without Host, an
  // absolute-form target (its authority becomes Host), a trusted proxy's list extended.
  const std::string heads[] = {
      "POST /intake/v2/events HTTP/1.1\r\nHost: apm\r\nContent-Length: 300\r\n\r\n",
      "GET http://apm.example:8200/ HTTP/1.0\r\n\r\n",
      "POST /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 192.0.2.1\r\nContent-Length: 300\r\n\r\n",
  };
  // Fields without the optional space after the colon, as many as the default limit
  // allows: each one is written a byte longer than it came.
  std::string bare = "POST /x HTTP/1.1\r\nHost:a\r\nContent-Length:300\r\n";
  for (int i = 0; i < 98; ++i) bare += "a:\r\n";
  bare += "\r\n";
  std::vector<std::string> all(std::begin(heads), std::end(heads));
  all.push_back(bare);
  for (bool trusted : {false, true}) {
    ctx.client_is_trusted_proxy = trusted;
    for (const std::string& wire : all) {
      ParsedHead parsed(Http1Parser::Kind::kRequest, wire);
      std::string out;
      writeRequestHead(parsed.head(), ctx, out);
      const uint64_t body_bytes = parsed.head().has_content_length ? body.size() : 0;
      CHECK(requestBytesBound(parsed.head(), ctx) >= out.size() + body_bytes);
      CHECK(requestBytesBound(parsed.head(), ctx) < out.size() + body_bytes + 1024);
    }
  }
  ParsedHead chunked(Http1Parser::Kind::kRequest,
                     "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
  CHECK(requestBytesBound(chunked.head(), ctx) == kUnknownBytes);
  ParsedHead huge(Http1Parser::Kind::kRequest,
                  "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n");
  CHECK(requestBytesBound(huge.head(), ctx) == kUnknownBytes);  // saturates, never wraps
}

TEST_CASE("writeResponseHead relays a response with its length", "[unit][http]") {
  BodyFraming framing;
  const std::string out = response(
      "HTTP/1.1 202 Accepted\r\nDate: x\r\nContent-Length: 0\r\nKeep-Alive: timeout=45\r\n"
      "Connection: keep-alive\r\n\r\n",
      {}, &framing);
  CHECK(out == "HTTP/1.1 202 Accepted\r\nDate: x\r\nContent-Length: 0\r\n\r\n");
  CHECK(framing == BodyFraming::kContentLength);
}

TEST_CASE("writeResponseHead re-derives response framing per client", "[unit][http]") {
  BodyFraming framing;
  const std::string chunked =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
      "Trailer: X-T\r\n\r\n";
  const std::string unframed = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
  ResponseContext http10;
  http10.client_minor = 0;
  SECTION("chunked to an HTTP/1.1 client") {
    CHECK(response(chunked, {}, &framing) ==
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
          "Transfer-Encoding: chunked\r\n\r\n");
    CHECK(framing == BodyFraming::kChunked);
  }
  SECTION("close-delimited becomes chunked for an HTTP/1.1 client") {
    CHECK(response(unframed, {}, &framing) ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n");
    CHECK(framing == BodyFraming::kChunked);
  }
  SECTION("chunked to an HTTP/1.0 client is delimited by close") {
    CHECK(response(chunked, http10, &framing) ==
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n");
    CHECK(framing == BodyFraming::kUntilClose);
  }
  SECTION("close-delimited to an HTTP/1.0 client") {
    CHECK(response(unframed, http10, &framing) ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n");
    CHECK(framing == BodyFraming::kUntilClose);
  }
  SECTION("a length to an HTTP/1.0 client that keeps alive") {
    CHECK(response("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", http10, &framing) ==
          "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: keep-alive\r\n\r\n");
    CHECK(framing == BodyFraming::kContentLength);
  }
  SECTION("close_after adds Connection: close") {
    ResponseContext ctx;
    ctx.close_after = true;
    CHECK(response("HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n", ctx, &framing) ==
          "HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");
    http10.close_after = true;
    CHECK(response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", http10) ==
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");
  }
}

TEST_CASE("writeResponseHead leaves bodiless responses unframed", "[unit][http]") {
  BodyFraming framing;
  ResponseContext head;
  head.request_was_head = true;
  SECTION("HEAD keeps the upstream's Content-Length as information") {
    CHECK(response("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: \"e\"\r\n\r\n", head,
                   &framing) == "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: \"e\"\r\n\r\n");
    CHECK(framing == BodyFraming::kNone);
  }
  SECTION("304 keeps Content-Length") {
    CHECK(response("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", {}, &framing) ==
          "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n");
    CHECK(framing == BodyFraming::kNone);
  }
  SECTION("204 gets no framing") {
    CHECK(response("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", {}, &framing) ==
          "HTTP/1.1 204 No Content\r\n\r\n");
    CHECK(framing == BodyFraming::kNone);
  }
  SECTION("1xx heads pass as they are, minus hop-by-hop headers") {
    CHECK(response("HTTP/1.1 100 Continue\r\n\r\n", {}, &framing) ==
          "HTTP/1.1 100 Continue\r\n\r\n");
    CHECK(framing == BodyFraming::kNone);
    ResponseContext close;
    close.close_after = true;
    CHECK(response("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\nKeep-Alive: 1\r\n\r\n", close) ==
          "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n");
  }
}

TEST_CASE("writeResponseHead fills in a missing reason phrase", "[unit][http]") {
  CHECK(response("HTTP/1.1 502 \r\nContent-Length: 0\r\n\r\n", {}) ==
        "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
  CHECK(response("HTTP/1.0 200 Fine Thanks\r\nContent-Length: 0\r\n\r\n", {}) ==
        "HTTP/1.1 200 Fine Thanks\r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("appendChunkHeader writes the size in lowercase hex", "[unit][http]") {
  std::string out = "x";
  appendChunkHeader(out, 0x1a2b);
  appendChunkHeader(out, 0);
  appendChunkHeader(out, 255);
  CHECK(out == "x1a2b\r\n0\r\nff\r\n");
  CHECK(kLastChunk == "0\r\n\r\n");
}

TEST_CASE("localResponse builds a closing JSON error response", "[unit][http]") {
  CHECK(localResponse(502, "upstream connect failed") ==
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: 35\r\n"
        "Connection: close\r\n\r\n{\"error\":\"upstream connect failed\"}");
  SECTION("the message is JSON-escaped") {
    const std::string out = localResponse(400, std::string("a\"b\\c\nd\te\x01"
                                                           "f\x7f",
                                                           12));
    const std::string body = "{\"error\":\"a\\\"b\\\\c\\nd\\te\\u0001f\\u007f\"}";
    CHECK(out == "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  }
  SECTION("every status the proxy makes has its reason phrase") {
    for (int status : {400, 405, 408, 413, 431, 500, 502, 503, 504}) {
      INFO(status);
      CHECK_FALSE(standardReason(status).empty());
      CHECK(localResponse(status, "x").find(std::string(standardReason(status))) == 13);
    }
    CHECK(localResponse(431, "").rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0) == 0);
  }
}

}  // namespace
}  // namespace proxy::http
