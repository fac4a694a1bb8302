// HTTP/2 flow control, memory and drain against the real proxy (issue 10 items 3, 4, 5), with
// tests/integration/h2/h2peer.py over h2c: a client that never opens its stream window
// while the upstream has 512 MiB to send does not grow the proxy's memory and write_timeout resets
// its stream; a trailers-only answer stays trailers-only; an upstream reset ends one stream and not
// its neighbour; the proxy's own gRPC errors are HTTP 200 with grpc-status; SIGTERM drains with
// GOAWAY.
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/demo_clients.h"
#include "tests/integration/harness.h"
#include "tests/integration/ops_support.h"

namespace proxy::integration {
namespace {

using ops::JsonValue;
using ops::OpsOptions;
using ops::OpsStack;

// Under AddressSanitizer freed memory waits in a quarantine (256 MiB) before reuse, which
// would hide what the proxy really holds: measured stacks keep it small.
#if defined(__SANITIZE_ADDRESS__)
const std::vector<std::string> kMeasuredEnv = {"ASAN_OPTIONS=quarantine_size_mb=4"};
#else
const std::vector<std::string> kMeasuredEnv;
#endif

OpsOptions plainOptions() {
  OpsOptions o;
  o.tls = false;
  o.proxy_env = kMeasuredEnv;
  return o;
}

JsonValue parseReport(const RunResult& r) {
  REQUIRE(r.exit_code == 0);
  auto report = ops::parseJson(r.out);
  REQUIRE(report);
  return *report;
}

JsonValue attack(OpsStack& stack, const std::string& name, const std::vector<std::string>& args) {
  return parseReport(runH2Peer(stack.dir, stack.port(), name, args));
}

const char kHalfGiB[] = "536870912";

TEST_CASE("A client that never opens its window: bounded memory, and write_timeout ends it",
          "[integration][http2][flow]") {
  OpsOptions o = plainOptions();
  o.config.server["write_timeout"] = "\"2s\"";
  OpsStack stack(o);
  std::vector<std::string> args;
  SECTION("an HTTP/1.1 upstream sending 512 MiB") {
    args = {"--header", "x-demo-behavior=large-response", "--header",
            std::string("x-demo-size=") + kHalfGiB};
  }
  SECTION("an h2c upstream sending a 512 MiB gRPC message") {
    args = {"--path",   "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            "--header", "content-type=application/grpc",
            "--header", std::string("x-demo-echo-size=") + kHalfGiB};
  }
  args.insert(args.end(), {"--seconds", "15"});
  uint64_t before = readMemory(stack.process().pid()).rss_kib;
  std::vector<std::string> argv = {
      "/usr/bin/python3", std::string(PROXY_SOURCE_DIR) + "/tests/integration/h2/h2peer.py",
      std::to_string(stack.port()), "stall"};
  argv.insert(argv.end(), args.begin(), args.end());
  Process peer(argv, stack.dir.file("stall"));
  uint64_t peak = before;
  while (peer.running()) {
    peak = std::max(peak, readMemory(stack.process().pid()).rss_kib);
    std::this_thread::sleep_for(Millis{50});
  }
  peak = std::max(peak, readMemory(stack.process().pid()).hwm_kib);  // between two samples
  INFO("RSS before " << before << " KiB, peak while stalled " << peak << " KiB");
  CHECK(peak < before + 64 * 1024);
  std::string out = readFile(stack.dir.file("stall.stdout"));
  INFO("h2peer stall: " << out << readFile(stack.dir.file("stall.stderr")));
  auto report = ops::parseJson(out);
  REQUIRE(report);
  const JsonValue& response = report->get("responses").get("1");
  CHECK(response.get("status").string == "200");  // the head came: only DATA is held back
  CHECK(response.get("body_bytes").number == 0);
  CHECK(!response.get("ended").boolean);
  // write_timeout (2 s) after the response stalled, the stream is reset (CANCEL): neither
  // the client nor the upstream connection is held until the peer gives up after 15 s.
  REQUIRE(report->get("resets").has("1"));
  CHECK(report->get("resets").get("1").number == 8);
  CHECK(report->get("seconds").number < 10);
  CHECK(ops::metric(stack.metrics(), "apm_tls_proxy_http2_resets_sent_total{code=\"CANCEL\"}") ==
        1);
}

TEST_CASE("gRPC over h2c: trailers-only answers, resets, and the proxy's own errors",
          "[integration][http2][grpc]") {
  SECTION("a trailers-only answer stays one HEADERS frame") {
    OpsStack stack(plainOptions());
    JsonValue report = attack(stack, "grpc", {"--header", "x-demo-grpc-status=7"});
    const JsonValue& r = report.get("responses").get("1");
    CHECK(r.get("status").string == "200");
    CHECK(r.get("headers").get("grpc-status").string == "7");
    CHECK(r.get("headers").get("grpc-message").string == "x-demo-grpc-status");
    CHECK(!r.has("trailers"));
    CHECK(r.get("body_bytes").number == 0);
    CHECK(r.get("ended").boolean);
  }
  SECTION("an upstream reset mid-response resets that stream; its neighbour succeeds") {
    OpsStack stack(plainOptions());
    JsonValue report =
        attack(stack, "grpc", {"--count", "2", "--header", "x-demo-reset=2", "--seconds", "10"});
    CHECK(report.get("resets").has("1"));
    CHECK(!report.get("responses").get("1").get("ended").boolean);  // never a clean end
    const JsonValue& ok = report.get("responses").get("3");
    CHECK(ok.get("status").string == "200");
    CHECK(ok.get("trailers").get("grpc-status").string == "0");
    CHECK(ok.get("ended").boolean);
    CHECK(!report.get("resets").has("3"));
    CHECK(ops::metric(stack.metrics(),
                      "apm_tls_proxy_http2_resets_sent_total{code=\"INTERNAL_ERROR\"}") == 1);
  }
  SECTION("REFUSED_STREAM from the upstream: the proxy retries once, the client sees success") {
    OpsStack stack(plainOptions());
    JsonValue report = attack(stack, "grpc", {"--header", "x-demo-refuse-once=k1"});
    const JsonValue& r = report.get("responses").get("1");
    CHECK(r.get("status").string == "200");
    CHECK(r.get("trailers").get("grpc-status").string == "0");
    CHECK(report.get("resets").object.empty());
    CHECK(stack.demo.waitForRecords(2).size() == 2);  // the refused stream and the retry
  }
  SECTION("an upstream GOAWAY: streams it did not process are retried on a new connection") {
    OpsStack stack(plainOptions());
    // Stream 1 asks the demo for a GOAWAY naming it last; stream 3, sent at the same time,
    // may land above it and must then be replayed, not failed.
    JsonValue report =
        attack(stack, "grpc", {"--count", "2", "--header", "x-demo-goaway=1", "--seconds", "10"});
    for (const char* id : {"1", "3"}) {
      INFO("stream " << id);
      const JsonValue& r = report.get("responses").get(id);
      CHECK(r.get("status").string == "200");
      CHECK(r.get("trailers").get("grpc-status").string == "0");
    }
    CHECK(report.get("resets").object.empty());
  }
  SECTION("upstream down: HTTP 200, grpc-status 14 and a grpc-message") {
    OpsOptions o = plainOptions();
    o.upstream_port = unusedPort();
    OpsStack stack(o);
    JsonValue report = attack(stack, "grpc", {});
    const JsonValue& r = report.get("responses").get("1");
    CHECK(r.get("status").string == "200");
    CHECK(r.get("headers").get("grpc-status").string == "14");
    CHECK(!r.get("headers").get("grpc-message").string.empty());
    CHECK(r.get("ended").boolean);
  }
}

TEST_CASE("A client that resets an upload: its HTTP/1.1 upstream connection is never reused",
          "[integration][http2][flow]") {
  OpsStack stack(plainOptions());
  JsonValue report = attack(stack, "cancel-upload", {});
  CHECK(report.get("responses").get("3").get("status").string == "200");
  CHECK(report.get("responses").get("3").get("body_bytes").number == 100);
  auto records = stack.demo.waitForRecords(2);
  REQUIRE(records.size() == 2);
  const Record& upload = records[0].method == "POST" ? records[0] : records[1];
  const Record& next = records[0].method == "POST" ? records[1] : records[0];
  CHECK(upload.method == "POST");
  CHECK(!upload.complete);
  CHECK(upload.body_bytes == 1000);
  CHECK(next.target == "/");
  CHECK(next.conn != upload.conn);  // the cut body would have swallowed it
  CHECK(ops::metric(stack.metrics(),
                    "apm_tls_proxy_http2_resets_received_total{code=\"CANCEL\"}") == 1);
}

TEST_CASE("A request body that stops: read_timeout answers 408, or DEADLINE_EXCEEDED for gRPC",
          "[integration][http2][timeouts]") {
  OpsOptions o = plainOptions();
  o.config.server["read_timeout"] = "\"1s\"";
  OpsStack stack(o);
  JsonValue plain = attack(stack, "streams", {"--count", "1", "--seconds", "10"});
  const JsonValue& r = plain.get("responses").get("1");
  CHECK(r.get("status").string == "408");
  CHECK(r.get("ended").boolean);
  CHECK(plain.get("seconds").number < 10);

  JsonValue grpc =
      attack(stack, "streams",
             {"--count", "1", "--seconds", "10", "--header", "content-type=application/grpc"});
  const JsonValue& g = grpc.get("responses").get("1");
  CHECK(g.get("status").string == "200");
  CHECK(g.get("headers").get("grpc-status").string == "4");
  CHECK(g.get("ended").boolean);
}

TEST_CASE("SIGTERM drains HTTP/2: GOAWAY, the call in flight completes, exit 0",
          "[integration][http2][drain]") {
  bool tls = GENERATE(false, true);
  INFO((tls ? "TLS (ALPN h2)" : "h2c"));
  OpsOptions o = plainOptions();
  o.tls = tls;
  o.config.server["shutdown_timeout"] = "\"10s\"";
  OpsStack stack(o);
  std::vector<std::string> argv = {
      "/usr/bin/python3",
      std::string(PROXY_SOURCE_DIR) + "/tests/integration/h2/h2peer.py",
      std::to_string(stack.port()),
      "grpc",
      "--header",
      "x-demo-delay-ms=2000",
      "--seconds",
      "15",
      "--linger",
      "5"};
  if (tls) argv.insert(argv.end(), {"--tls", stack.dir.write("ca.crt", stack.pki.caPem())});
  Process peer(argv, stack.dir.file("drain"));
  stack.demo.waitForRecords(1, Millis{10000});  // the call reached the upstream
  auto signalled = std::chrono::steady_clock::now();
  stack.process().signal(SIGTERM);
  std::optional<int> exit_code = stack.process().wait(Millis{12000});
  auto took = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - signalled);
  CHECK(exit_code == 0);
  CHECK(took < Millis{10000});
  REQUIRE(peer.wait(Millis{20000}).has_value());
  std::string out = readFile(stack.dir.file("drain.stdout"));
  INFO("h2peer: " << out << readFile(stack.dir.file("drain.stderr")));
  auto report = ops::parseJson(out);
  REQUIRE(report);
  const auto& goaways = report->get("goaways").array;
  REQUIRE(!goaways.empty());
  CHECK(goaways.front().array.at(0).number == 2147483647);  // graceful first (RFC 9113 §6.8)
  CHECK(goaways.back().array.at(0).number == 1);            // then the last stream processed
  for (const JsonValue& g : goaways) CHECK(g.array.at(1).number == 0);
  const JsonValue& r = report->get("responses").get("1");
  CHECK(r.get("status").string == "200");
  CHECK(r.get("trailers").get("grpc-status").string == "0");
  CHECK(r.get("ended").boolean);
  CHECK(report->get("closed").boolean);
}

}  // namespace
}  // namespace proxy::integration
