// The proxy's ordinary HTTP/1.1 life: keep-alive on both sides, pipelining answered in
// order, APM Server's routes passed through, half-close and SIGTERM drain. Each test
// starts apm-intake-demo and apm-tls-proxy on kernel-chosen ports.
#include <catch2/catch.hpp>
#include <csignal>

#include "tests/integration/harness.h"

namespace proxy::integration {
namespace {

TEST_CASE("The proxy accepts connections as soon as its ready file exists",
          "[integration][ready]") {
  // The ready file is the harness's (and an orchestrator's) only signal; a proxy that
  // writes it before listen() makes every client race the worker threads.
  for (int i = 0; i < 10; ++i) {
    INFO("start " << i);
    TempDir dir;
    ProxyProcess proxy(dir, ProxyConfig{}.upstreamPort(unusedPort()));
    Client c(proxy.port());
    REQUIRE(c.send(httpRequest("GET", "/")));
    CHECK(c.readResponse().status == 502);
  }
}

TEST_CASE("Sequential requests on one client connection reuse one upstream connection",
          "[integration][keepalive]") {
  ProxyStack stack;
  Client c(stack.proxy.port());
  for (int i = 0; i < 3; ++i) {
    INFO("request " << i);
    REQUIRE(c.send(
        httpRequest("POST", "/intake/v2/events", "", "{\"n\":" + std::to_string(i) + "}\n")));
    Response r = c.readResponse();
    REQUIRE(r.complete);
    CHECK(r.status == 202);
    CHECK_FALSE(r.closed);
    CHECK(r.header("Connection").value_or("") != "close");
  }
  auto records = stack.demo.waitForRecords(3);
  REQUIRE(records.size() == 3);
  CHECK(records[1].conn == records[0].conn);
  CHECK(records[2].conn == records[0].conn);
  CHECK(records[2].seq == records[0].seq + 2);
}

TEST_CASE("A later client connection reuses the pooled upstream connection",
          "[integration][keepalive]") {
  ProxyStack stack;
  {
    Client first(stack.proxy.port());
    REQUIRE(first.send(httpRequest("GET", "/")));
    REQUIRE(first.readResponse().status == 200);
  }
  Client second(stack.proxy.port());
  REQUIRE(second.send(httpRequest("GET", "/")));
  REQUIRE(second.readResponse().status == 200);
  auto records = stack.demo.waitForRecords(2);
  CHECK(records[1].conn == records[0].conn);
  CHECK(records[1].seq == 2);
}

TEST_CASE("Pipelined requests are answered in order", "[integration][pipelining]") {
  ProxyStack stack;
  Client c(stack.proxy.port());
  // The first answer is the slowest: a proxy that answered as upstream responses
  // complete (instead of in request order) would return 202 or 404 first.
  REQUIRE(c.send(httpRequest("GET", "/", "X-Demo-Delay: 300ms\r\n") +
                 httpRequest("POST", "/intake/v2/events", "", "{}\n") +
                 httpRequest("GET", "/config/v1/agents") + httpRequest("GET", "/missing")));
  Response info = c.readResponse();
  CHECK(info.status == 200);
  CHECK(info.body.find("publish_ready") != std::string::npos);
  Response accepted = c.readResponse();
  CHECK(accepted.status == 202);
  Response config = c.readResponse();
  CHECK(config.status == 200);
  CHECK(config.body == "{}");
  Response missing = c.readResponse();
  CHECK(missing.status == 404);
  CHECK(missing.body == R"({"error":"404 page not found"})");
  auto records = stack.demo.waitForRecords(4);
  CHECK(records[0].target == "/");
  CHECK(records[1].target == "/intake/v2/events");
  CHECK(records[2].target == "/config/v1/agents");
  CHECK(records[3].target == "/missing");
}

TEST_CASE("APM Server answers pass through unchanged", "[integration][routes]") {
  ProxyStack stack;
  Client c(stack.proxy.port());

  REQUIRE(c.send(httpRequest("GET", "/")));
  Response info = c.readResponse();
  CHECK(info.status == 200);
  CHECK(info.header("Content-Type") == "application/json");
  CHECK(info.body ==
        R"({"build_date":"2024-01-01T00:00:00Z","build_sha":"demo","publish_ready":true,)"
        R"("version":"9.0.0-demo"})");

  REQUIRE(c.send(httpRequest("HEAD", "/")));
  Response head = c.readResponse(Millis{5000}, false, /*head_request=*/true);
  CHECK(head.status == 200);
  CHECK(head.body.empty());

  REQUIRE(c.send(httpRequest("PUT", "/intake/v2/events", "", "{}\n")));
  Response wrong_method = c.readResponse();
  CHECK(wrong_method.status == 405);

  // The connection is still usable after all of the above (HEAD framed correctly).
  REQUIRE(c.send(httpRequest("POST", "/intake/v2/events", "", "{}\n")));
  CHECK(c.readResponse().status == 202);
  auto records = stack.demo.waitForRecords(4);
  CHECK(records[1].method == "HEAD");
  CHECK(records[2].method == "PUT");
}

TEST_CASE("A CORS preflight OPTIONS is forwarded and answered by the upstream",
          "[integration][routes]") {
  ProxyStack stack;
  Client c(stack.proxy.port());
  REQUIRE(c.send(httpRequest("OPTIONS", "/intake/v3/rum/events",
                             "Origin: https://shop.example\r\n"
                             "Access-Control-Request-Method: POST\r\n"
                             "Access-Control-Request-Headers: content-type\r\n")));
  Response r = c.readResponse();
  REQUIRE(r.complete);
  CHECK(r.status == 204);
  CHECK(r.header("Access-Control-Allow-Origin") == "https://shop.example");
  CHECK(r.header("Access-Control-Allow-Methods") == "POST, OPTIONS");
  auto records = stack.demo.waitForRecords(1);
  CHECK(records[0].method == "OPTIONS");
  CHECK(records[0].header("Origin") == "https://shop.example");
  CHECK(records[0].header("Access-Control-Request-Method") == "POST");
}

TEST_CASE("A client that half-closes after its request still gets the answer",
          "[integration][halfclose]") {
  ProxyStack stack;
  Client c(stack.proxy.port());
  REQUIRE(c.send(httpRequest("POST", "/intake/v2/events", "X-Demo-Delay: 200ms\r\n", "{}\n")));
  c.shutdownWrite();
  Response r = c.readResponse();
  CHECK(r.status == 202);
  CHECK(c.waitClosed());
  CHECK(stack.demo.waitForRecords(1)[0].complete);
}

TEST_CASE("HTTP/1.0 and Connection: close requests get one answer, then the proxy closes",
          "[integration][keepalive]") {
  ProxyStack stack;
  Client c(stack.proxy.port());
  SECTION("HTTP/1.0") { REQUIRE(c.send("GET / HTTP/1.0\r\nHost: apm.test\r\n\r\n")); }
  SECTION("Connection: close") {
    REQUIRE(c.send(httpRequest("GET", "/", "Connection: close\r\n")));
  }
  Response r = c.readResponse();
  CHECK(r.status == 200);
  CHECK(r.body.find("publish_ready") != std::string::npos);
  CHECK(c.waitClosed());
}

TEST_CASE("SIGTERM lets an in-flight request finish, then the proxy exits 0",
          "[integration][drain]") {
  ProxyStack stack;
  Client c(stack.proxy.port());
  REQUIRE(c.send(httpRequest("POST", "/intake/v2/events", "X-Demo-Delay: 700ms\r\n", "{}\n")));
  stack.demo.waitForRecords(1);  // the request is at the upstream, its answer pending
  stack.proxy.process().signal(SIGTERM);
  Response r = c.readResponse();
  CHECK(r.complete);
  CHECK(r.status == 202);
  auto code = stack.proxy.process().wait(Millis{10000});
  REQUIRE(code.has_value());
  CHECK(*code == 0);
}

}  // namespace
}  // namespace proxy::integration
