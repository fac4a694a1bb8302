// apm-intake-demo on its own, through the harness: the upstream the proxy scenarios rely
// on must itself answer like APM Server and honour its X-Demo-* knobs, and the harness's
// client and response reader must frame what it sends.
#include <catch2/catch.hpp>
#include <csignal>

#include "tests/integration/harness.h"

namespace proxy::integration {
namespace {

TEST_CASE("The intake demo answers the APM Server routes", "[integration][demo]") {
  TempDir dir;
  DemoServer demo(dir);
  Client c(demo.port());

  REQUIRE(c.send(httpRequest("GET", "/")));
  Response info = c.readResponse();
  REQUIRE(info.complete);
  CHECK(info.status == 200);
  CHECK(info.header("Content-Type") == "application/json");
  CHECK(info.body.find("\"publish_ready\":true") != std::string::npos);
  CHECK(info.body.find("\"version\":\"9.0.0-demo\"") != std::string::npos);

  std::string events = "{\"metadata\":{}}\n{\"transaction\":{}}\n{\"span\":{}}\n";
  REQUIRE(c.send(
      httpRequest("POST", "/intake/v2/events", "Content-Type: application/x-ndjson\r\n", events)));
  Response accepted = c.readResponse();
  REQUIRE(accepted.complete);
  CHECK(accepted.status == 202);
  CHECK(accepted.body.empty());

  REQUIRE(c.send(httpRequest("OPTIONS", "/intake/v2/rum/events",
                             "Origin: https://shop.example\r\n"
                             "Access-Control-Request-Method: POST\r\n")));
  Response preflight = c.readResponse();
  CHECK(preflight.status == 204);
  CHECK(preflight.header("Access-Control-Allow-Origin") == "https://shop.example");

  REQUIRE(c.send(httpRequest("GET", "/config/v1/agents?service.name=x")));
  Response config = c.readResponse();
  CHECK(config.status == 200);
  CHECK(config.body == "{}");

  REQUIRE(c.send(httpRequest("GET", "/nope")));
  Response missing = c.readResponse();
  CHECK(missing.status == 404);
  CHECK(missing.body == R"({"error":"404 page not found"})");

  auto records = demo.waitForRecords(5);
  REQUIRE(records.size() == 5);
  CHECK(records[1].method == "POST");
  CHECK(records[1].body_bytes == events.size());
  CHECK(records[1].body_lines == 3);
  CHECK(records[1].body_head == events);
  CHECK(records[1].header("content-type") == "application/x-ndjson");
  for (const Record& r : records) CHECK(r.conn == records[0].conn);  // one keep-alive conn
  CHECK(records[4].seq == 5);
}

TEST_CASE("The intake demo answers pipelined requests in order", "[integration][demo]") {
  TempDir dir;
  DemoServer demo(dir);
  Client c(demo.port());
  REQUIRE(c.send(httpRequest("GET", "/", "X-Demo-Delay: 200ms\r\n") +
                 httpRequest("POST", "/intake/v2/events", "", "{}\n") +
                 httpRequest("GET", "/missing")));
  CHECK(c.readResponse().status == 200);
  CHECK(c.readResponse().status == 202);
  CHECK(c.readResponse().status == 404);
}

TEST_CASE("The intake demo streams chunked bodies both ways", "[integration][demo]") {
  TempDir dir;
  DemoServer demo(dir);
  Client c(demo.port());
  std::string body = demoPattern(7, 4 << 20);

  SECTION("chunked upload echoed back") {
    REQUIRE(c.send(httpRequest("POST", "/intake/v2/events",
                               "Transfer-Encoding: chunked\r\nX-Demo-Behavior: echo\r\n") +
                   chunked(body, 10000)));
    Response r = c.readResponse();
    REQUIRE(r.complete);
    CHECK(r.chunked);
    CHECK(r.body == body);
    CHECK(demo.waitForRecords(1)[0].body_bytes == body.size());
  }
  SECTION("generated chunked and Content-Length responses") {
    REQUIRE(c.send(httpRequest("GET", "/",
                               "X-Demo-Behavior: chunked-response\r\n"
                               "X-Demo-Size: 300\r\n")));
    Response r = c.readResponse();
    REQUIRE(r.complete);
    CHECK(r.chunked);
    CHECK(r.body == demoPattern(0, 300 * 1024));
    REQUIRE(c.send(httpRequest("GET", "/",
                               "X-Demo-Behavior: large-response\r\n"
                               "X-Demo-Size: 1000001\r\n")));
    Response l = c.readResponse();
    REQUIRE(l.complete);
    CHECK_FALSE(l.chunked);
    CHECK(l.body == demoPattern(0, 1000001));
  }
}

TEST_CASE("The intake demo's failure knobs", "[integration][demo]") {
  TempDir dir;
  DemoServer demo(dir);
  Client c(demo.port());

  SECTION("close-mid-body: a truncated response, then close") {
    REQUIRE(c.send(httpRequest("GET", "/", "X-Demo-Behavior: close-mid-body\r\n")));
    Response r = c.readResponse();
    CHECK(r.status == 200);
    CHECK_FALSE(r.complete);
    CHECK(r.closed);
    CHECK(r.body.size() == 10);
  }
  SECTION("close-mid-chunked: no last chunk, then close") {
    REQUIRE(c.send(httpRequest("GET", "/", "X-Demo-Behavior: close-mid-chunked\r\n")));
    Response r = c.readResponse();
    CHECK(r.status == 200);
    CHECK_FALSE(r.complete);
    CHECK(r.closed);
  }
  SECTION("silent: no answer") {
    REQUIRE(c.send(httpRequest("GET", "/", "X-Demo-Behavior: silent\r\n")));
    CHECK(c.staysQuiet(Millis{300}));
  }
  SECTION("early-response: 413 without reading the body or sending 100 Continue") {
    REQUIRE(
        c.send("POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n"
               "Expect: 100-continue\r\nX-Demo-Behavior: early-response\r\n\r\n"));
    Response r = c.readResponse();
    CHECK(r.interim.empty());
    CHECK(r.status == 413);
    CHECK(r.header("Connection") == "close");
    CHECK(c.waitClosed());
  }
  SECTION("Expect: 100-continue gets 100 Continue before the body is sent") {
    REQUIRE(
        c.send("POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
               "Expect: 100-continue\r\n\r\n"));
    Response interim = c.readResponse(Millis{3000}, /*stop_at_interim=*/true);
    REQUIRE(interim.status == 100);
    REQUIRE(c.send("{}\n"));
    CHECK(c.readResponse().status == 202);
  }
  SECTION("malformed request: 400 and close") {
    REQUIRE(
        c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
    Response r = c.readResponse();
    CHECK(r.status == 400);
    CHECK(c.waitClosed());
  }
  SECTION("slow-reader: 1 MiB takes over a second") {
    auto start = std::chrono::steady_clock::now();
    REQUIRE(c.send(httpRequest("POST", "/intake/v2/events", "X-Demo-Behavior: slow-reader\r\n",
                               std::string(1 << 20, 'x'))));
    CHECK(c.readResponse().status == 202);
    CHECK(std::chrono::steady_clock::now() - start > Millis{1000});
  }
}

TEST_CASE("The intake demo exits 0 on SIGTERM", "[integration][demo]") {
  TempDir dir;
  DemoServer demo(dir);
  Client c(demo.port());  // an open connection must not hold up the exit
  CHECK(demo.process().stop() == 0);
}

}  // namespace
}  // namespace proxy::integration
