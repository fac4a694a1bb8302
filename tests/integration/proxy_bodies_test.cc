// Bodies through the proxy in both directions: Content-Length and chunked requests,
// chunked and Content-Length responses, a body echoed while it streams, and
// Expect: 100-continue end to end (RFC 9110 §10.1.1).
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace proxy::integration {
namespace {

// NDJSON-looking bytes: a newline every 100 bytes, so the demo's line count checks
// that no byte was dropped or duplicated in the middle.
std::string ndjson(size_t n) {
  std::string out = demoPattern(3, n);
  for (size_t i = 99; i < n; i += 100) out[i] = '\n';
  return out;
}

TEST_CASE("A Content-Length request body reaches the upstream whole", "[integration][bodies]") {
  ProxyStack stack;
  Client c(stack.proxy.port());
  std::string body = ndjson(1 << 20);
  REQUIRE(c.send(
      httpRequest("POST", "/intake/v2/events", "Content-Type: application/x-ndjson\r\n", body)));
  Response r = c.readResponse();
  CHECK(r.status == 202);
  auto rec = stack.demo.waitForRecords(1)[0];
  CHECK(rec.complete);
  CHECK(rec.body_bytes == body.size());
  CHECK(rec.body_lines == body.size() / 100);
  CHECK(rec.body_head == body.substr(0, 64));
}

TEST_CASE("A chunked request body reaches the upstream whole", "[integration][bodies]") {
  ProxyStack stack;
  Client c(stack.proxy.port());
  std::string body = ndjson(300'001);
  // Irregular chunk sizes, a chunk extension and a trailer section: the proxy must
  // re-frame the body, not the chunk boundaries (RFC 9112 §7.1).
  std::string wire = "1\r\n" + body.substr(0, 1) + "\r\n7;ext=1\r\n" + body.substr(1, 7) + "\r\n" +
                     chunked(body.substr(8), 65536);
  wire.replace(wire.size() - 2, 2, "X-Trailer: t\r\n\r\n");
  REQUIRE(c.send(httpRequest("POST", "/intake/v2/events",
                             "Transfer-Encoding: chunked\r\nContent-Encoding: identity\r\n") +
                 wire));
  Response r = c.readResponse();
  CHECK(r.status == 202);
  auto rec = stack.demo.waitForRecords(1)[0];
  CHECK(rec.complete);
  CHECK(rec.body_bytes == body.size());
  CHECK(rec.body_lines == body.size() / 100);
  CHECK(rec.body_head == body.substr(0, 64));
}

TEST_CASE("An empty chunked request body is forwarded as an empty body", "[integration][bodies]") {
  ProxyStack stack;
  Client c(stack.proxy.port());
  REQUIRE(c.send(httpRequest("POST", "/intake/v2/events", "Transfer-Encoding: chunked\r\n") +
                 "0\r\n\r\n"));
  CHECK(c.readResponse().status == 202);
  auto rec = stack.demo.waitForRecords(1)[0];
  CHECK(rec.complete);
  CHECK(rec.body_bytes == 0);
}

TEST_CASE("Chunked and Content-Length responses reach the client whole", "[integration][bodies]") {
  ProxyStack stack;
  Client c(stack.proxy.port());
  SECTION("chunked, 3 MiB") {
    REQUIRE(c.send(httpRequest("GET", "/",
                               "X-Demo-Behavior: chunked-response\r\n"
                               "X-Demo-Size: 3072\r\n")));
    Response r = c.readResponse();
    REQUIRE(r.complete);
    CHECK(r.status == 200);
    CHECK(r.body.size() == 3072 * 1024);
    CHECK(r.body == demoPattern(0, 3072 * 1024));
  }
  SECTION("Content-Length, 5 MB and one byte") {
    REQUIRE(c.send(httpRequest("GET", "/",
                               "X-Demo-Behavior: large-response\r\n"
                               "X-Demo-Size: 5000001\r\n")));
    Response r = c.readResponse();
    REQUIRE(r.complete);
    CHECK(r.status == 200);
    CHECK(r.body.size() == 5000001);
    CHECK(r.body == demoPattern(0, 5000001));
  }
  // The same connection carries a next request: the body was framed exactly.
  REQUIRE(c.send(httpRequest("GET", "/config/v1/agents")));
  Response next = c.readResponse();
  CHECK(next.status == 200);
  CHECK(next.body == "{}");
}

TEST_CASE("A body echoed while it uploads streams both ways at once", "[integration][bodies]") {
  ProxyStack stack;
  Client c(stack.proxy.port());
  std::string body = demoPattern(11, 4 << 20);
  SECTION("chunked upload") {
    REQUIRE(c.send(httpRequest("POST", "/intake/v2/events",
                               "Transfer-Encoding: chunked\r\nX-Demo-Behavior: echo\r\n") +
                   chunked(body, 32768)));
  }
  SECTION("Content-Length upload") {
    REQUIRE(c.send(httpRequest("POST", "/intake/v2/events", "X-Demo-Behavior: echo\r\n", body)));
  }
  Response r = c.readResponse(Millis{20000});
  REQUIRE(r.complete);
  CHECK(r.status == 200);
  CHECK(r.body.size() == body.size());
  CHECK(r.body == body);
  CHECK(stack.demo.waitForRecords(1)[0].body_bytes == body.size());
}

TEST_CASE("Expect: 100-continue works end to end", "[integration][expect]") {
  ProxyStack stack;
  Client c(stack.proxy.port());

  SECTION("the client gets 100 Continue before it sends the body") {
    std::string body = ndjson(100'000);
    REQUIRE(c.send("POST /intake/v2/events HTTP/1.1\r\nHost: apm.test\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n\r\n"));
    Response interim = c.readResponse(Millis{3000}, /*stop_at_interim=*/true);
    REQUIRE(interim.complete);
    CHECK(interim.status == 100);
    REQUIRE(c.send(body));
    Response r = c.readResponse();
    CHECK(r.status == 202);
    auto rec = stack.demo.waitForRecords(1)[0];
    CHECK(rec.complete);
    CHECK(rec.body_bytes == body.size());
  }
  SECTION("a final answer sent before the body reaches the client without the body") {
    REQUIRE(
        c.send("POST /intake/v2/events HTTP/1.1\r\nHost: apm.test\r\n"
               "Content-Length: 10000000\r\nExpect: 100-continue\r\n"
               "X-Demo-Behavior: early-response\r\n\r\n"));
    Response r = c.readResponse(Millis{3000});
    REQUIRE(r.complete);
    CHECK(r.interim.empty());
    CHECK(r.status == 413);
    CHECK(r.body == R"({"error":"request body too large"})");
    // The body was never sent, so the connection cannot be reused (RFC 9110 §10.1.1).
    CHECK(c.waitClosed());
  }
}

}  // namespace
}  // namespace proxy::integration
