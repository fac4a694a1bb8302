// Connections that never complete a handshake: a silent client and half a ClientHello
// are closed once [server] tls_handshake_timeout passes (and not before), counted as
// "timeout"; plain HTTP sent to the TLS port gets a readable 400 that says to use https,
// counted as "not_tls". An established connection is not subject to the handshake timer.
#include <catch2/catch.hpp>
#include <chrono>

#include "proxy/downstream/log_limiter.h"
#include "tests/integration/harness.h"
#include "tests/integration/tls_support.h"

namespace proxy::integration::tls {
namespace {

using Clock = std::chrono::steady_clock;

constexpr Millis kHandshakeTimeout{1000};
// Scheduling slack on a shared 2-core machine: the timer's granularity plus a loaded host.
constexpr Millis kSlack{1500};

TlsStackOptions withHandshakeTimeout() {
  TlsStackOptions options;
  options.server = {{"tls_handshake_timeout", "\"1s\""}};
  return options;
}

// The first 43 bytes of a TLS 1.2 ClientHello whose record announces 512 bytes: the
// server has to wait for the rest.
std::string halfClientHello() {
  std::string hello = {0x16, 0x03, 0x01, 0x02,
                       0x00,                                       // record: handshake, 512
                       0x01, 0x00, 0x01, static_cast<char>(0xfc),  // ClientHello, 508
                       0x03, 0x03};                                // client_version 1.2
  hello += std::string(32, '\x5a');                                // random
  return hello;
}

TEST_CASE("A client that stalls in the handshake is closed after tls_handshake_timeout",
          "[integration][tls]") {
  TlsStack stack(withHandshakeTimeout());
  bool half_hello = GENERATE(false, true);
  INFO((half_hello ? "half a ClientHello" : "nothing sent"));

  Client client(stack.port());
  auto start = Clock::now();
  if (half_hello) REQUIRE(client.send(halfClientHello()));
  bool closed = client.waitClosed(kHandshakeTimeout + kSlack);
  auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - start);
  INFO("closed after " << elapsed.count() << " ms");
  CHECK(closed);
  CHECK(elapsed >= kHandshakeTimeout - Millis{100});
  CHECK(elapsed <= kHandshakeTimeout + kSlack);
  stack.expectFailureRecorded("timeout");
}

TEST_CASE("The handshake timer stops once the handshake is done", "[integration][tls]") {
  TlsStack stack(withHandshakeTimeout());
  TlsClient client(stack.port(), stack.clientOptions());
  REQUIRE(client.handshake());
  CHECK(client.staysOpen(kHandshakeTimeout + Millis{500}));
  CHECK(client.exchange(httpRequest("GET", "/")).status == 200);
  CHECK(handshakeFailures(stack.adminPort(), "timeout") == 0);
}

TEST_CASE("Every failed handshake is counted even when the log holds back repeats",
          "[integration][tls]") {
  TlsStack stack;
  // More than the log lets through per peer per window.
  constexpr int kAttempts = static_cast<int>(downstream::LogLimiter::kLinesPerWindow) + 3;
  for (int i = 0; i < kAttempts; ++i) {
    ClientOptions options = stack.clientOptions();
    options.min_version = TLS1_VERSION;
    options.max_version = TLS1_1_VERSION;
    TlsClient client(stack.port(), options);
    CHECK_FALSE(client.handshake());
  }
  CHECK(waitForHandshakeFailures(stack.adminPort(), "protocol_version", kAttempts) == kAttempts);
  std::string log = stack.proxy->process().stderrText();
  size_t lines = 0;
  for (size_t pos = log.find("msg=\"tls handshake failed\""); pos != std::string::npos;
       pos = log.find("msg=\"tls handshake failed\"", pos + 1)) {
    ++lines;
  }
  INFO(log);
  CHECK(lines >= 1);
  CHECK(lines <= downstream::LogLimiter::kLinesPerWindow);
}

TEST_CASE("Plain HTTP sent to the TLS port gets a readable 400 that points to https",
          "[integration][tls]") {
  TlsStack stack;

  SECTION("raw HTTP/1.1 request") {
    Client client(stack.port());
    REQUIRE(client.send(httpRequest("POST", "/intake/v2/events",
                                    "Content-Type: application/x-ndjson\r\n", "{}\n")));
    Response r = client.readResponse(Millis{5000});
    INFO("body: " << r.body);
    CHECK(r.status == 400);
    CHECK(r.body.find("https") != std::string::npos);
    CHECK(r.header("Content-Type") == std::optional<std::string>("application/json"));
    CHECK(client.waitClosed(Millis{5000}));
    std::string line = stack.expectFailureRecorded("not_tls");
    CHECK(line.find("peer=127.0.0.1") != std::string::npos);
  }
  SECTION("curl http:// to the https port") {
    RunResult r =
        runToCompletion({toolPath("curl"), "-sS", "--max-time", "10", "-w", "\n%{http_code}",
                         "http://127.0.0.1:" + std::to_string(stack.port()) + "/"},
                        stack.dir, "curl", Millis{15000});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("plain HTTP request was sent to the HTTPS port") != std::string::npos);
    CHECK(r.out.substr(r.out.size() - 3) == "400");
    stack.expectFailureRecorded("not_tls");
  }
  CHECK(stack.demo.records().empty());
}

}  // namespace
}  // namespace proxy::integration::tls
