// Header rewriting on the way upstream (RFC 9110 §7.6.1 hop-by-hop fields; apm-tls.md
// §3 client address): hop-by-hop fields are dropped, the proxy sets its own
// X-Forwarded-For and X-Forwarded-Proto, and the fields APM Server and agents rely on
// pass byte for byte.
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace proxy::integration {
namespace {

const std::string kAgentHeaders =
    "Host: apm.example.com:8200\r\n"
    "User-Agent: apm-agent-nodejs/4.5.0 (checkout 1.2.3)\r\n"
    "Origin: https://shop.example\r\n"
    "Authorization: Bearer s3cr3t-T0ken==\r\n"
    "Content-Type: application/x-ndjson\r\n"
    "Content-Encoding: gzip\r\n"
    "Accept: */*\r\n";

std::string request(const std::string& extra, const std::string& body) {
  return "POST /intake/v2/events HTTP/1.1\r\n" + kAgentHeaders + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST_CASE("Hop-by-hop and client-address headers are replaced, agent headers pass unchanged",
          "[integration][headers]") {
  ProxyStack stack;
  Client c(stack.proxy.port());
  static const char kGzipish[] = "\x1f\x8b\x08\x00 not really gzip\n";
  std::string body(kGzipish, sizeof kGzipish - 1);  // binary bytes, NUL included
  REQUIRE(
      c.send(request("Connection: keep-alive, X-Hop-Custom\r\n"
                     "X-Hop-Custom: secret-for-the-proxy\r\n"
                     "Keep-Alive: timeout=5\r\n"
                     "Proxy-Connection: keep-alive\r\n"
                     "TE: trailers\r\n"
                     "Trailer: X-Checksum\r\n"
                     "Forwarded: for=6.6.6.6;proto=https\r\n"
                     "X-Real-IP: 6.6.6.6\r\n"
                     "X-Forwarded-For: 6.6.6.6, 7.7.7.7\r\n"
                     "X-Forwarded-Proto: https\r\n"
                     "X-Forwarded-For: 8.8.8.8\r\n",
                     body)));
  Response r = c.readResponse();
  REQUIRE(r.status == 202);
  Record rec = stack.demo.waitForRecords(1)[0];
  INFO([&] {
    std::string all;
    for (const auto& [k, v] : rec.headers) all += k + ": " + v + "\n";
    return all;
  }());

  // Dropped: hop-by-hop fields, including one named by Connection.
  CHECK(countHeader(rec.headers, "X-Hop-Custom") == 0);
  CHECK(countHeader(rec.headers, "Keep-Alive") == 0);
  CHECK(countHeader(rec.headers, "Proxy-Connection") == 0);
  CHECK(countHeader(rec.headers, "TE") == 0);
  CHECK(countHeader(rec.headers, "Trailer") == 0);
  CHECK(countHeader(rec.headers, "Transfer-Encoding") == 0);
  if (auto conn = rec.header("Connection")) {
    CHECK(conn->find("X-Hop-Custom") == std::string::npos);
    CHECK(conn->find("x-hop-custom") == std::string::npos);
  }
  // Replaced: the client cannot choose the address APM Server sees.
  CHECK(countHeader(rec.headers, "Forwarded") == 0);
  CHECK(countHeader(rec.headers, "X-Real-IP") == 0);
  CHECK(countHeader(rec.headers, "X-Forwarded-For") == 1);
  CHECK(rec.header("X-Forwarded-For") == "127.0.0.1");
  CHECK(countHeader(rec.headers, "X-Forwarded-Proto") == 1);
  CHECK(rec.header("X-Forwarded-Proto") == "http");
  // Unchanged, byte for byte.
  CHECK(countHeader(rec.headers, "Host") == 1);
  CHECK(rec.header("Host") == "apm.example.com:8200");
  CHECK(rec.header("User-Agent") == "apm-agent-nodejs/4.5.0 (checkout 1.2.3)");
  CHECK(rec.header("Origin") == "https://shop.example");
  CHECK(rec.header("Authorization") == "Bearer s3cr3t-T0ken==");
  CHECK(rec.header("Content-Type") == "application/x-ndjson");
  CHECK(rec.header("Content-Encoding") == "gzip");
  CHECK(rec.header("Accept") == "*/*");
  // Framing re-derived for this hop, body untouched.
  CHECK(rec.body_bytes == body.size());
  CHECK(rec.body_head == body);
  CHECK(rec.target == "/intake/v2/events");
}

TEST_CASE("The request line and query string pass unchanged", "[integration][headers]") {
  ProxyStack stack;
  Client c(stack.proxy.port());
  const std::string target =
      "/config/v1/agents?service.name=checkout&service.environment=prod%20eu";
  REQUIRE(c.send(httpRequest("GET", target)));
  CHECK(c.readResponse().status == 200);
  Record rec = stack.demo.waitForRecords(1)[0];
  CHECK(rec.method == "GET");
  CHECK(rec.target == target);
}

TEST_CASE("A trusted proxy's X-Forwarded-For is appended to", "[integration][headers]") {
  ProxyConfig config;
  config.server["trusted_proxies"] = "[\"127.0.0.0/8\"]";
  ProxyStack stack(config);
  Client c(stack.proxy.port());
  REQUIRE(
      c.send(httpRequest("POST", "/intake/v2/events", "X-Forwarded-For: 203.0.113.9\r\n", "{}\n")));
  CHECK(c.readResponse().status == 202);
  Record rec = stack.demo.waitForRecords(1)[0];
  CHECK(countHeader(rec.headers, "X-Forwarded-For") == 1);
  CHECK(rec.header("X-Forwarded-For") == "203.0.113.9, 127.0.0.1");
}

TEST_CASE("Upstream response headers reach the client, minus hop-by-hop ones",
          "[integration][headers]") {
  ProxyStack stack;
  Client c(stack.proxy.port());
  REQUIRE(c.send(httpRequest("OPTIONS", "/intake/v2/rum/events", "Origin: https://a.example\r\n")));
  Response r = c.readResponse();
  CHECK(r.status == 204);
  CHECK(r.header("Access-Control-Allow-Origin") == "https://a.example");
  CHECK(r.header("Access-Control-Allow-Headers") == "Content-Type, Content-Encoding, Accept");
  CHECK(r.header("Vary") == "Origin");
  CHECK(r.header("Access-Control-Max-Age") == "3600");
}

}  // namespace
}  // namespace proxy::integration
