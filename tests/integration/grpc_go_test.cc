// grpc-go through the proxy: tests/clients/go/otlpcall (Debian's golang-google-grpc-dev, the
// HTTP/2 stack of the OpenTelemetry Collector's OTLP exporter and of the Go SDK) makes OTLP
// trace Export calls over TLS and mTLS to apm-intake-demo's h2c. Concurrent calls on one
// connection, 4 and 16 MiB requests with 8 MiB answers (flow control under grpc-go's BDP
// PINGs and window growth), keepalive PINGs across an idle spell, the proxy's idle close,
// upstream statuses, and SIGTERM drain with calls in flight. Calls carry x-request-id, so
// what the client read is matched against what the demo recorded.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <regex>
#include <set>
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

const char kTraceExport[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const int kMiB = 1 << 20;

// What one otlpcall run printed: a line per call, then the summary line.
struct GoRun {
  int exit_code = -1;
  std::vector<JsonValue> calls;
  JsonValue summary;
  // The summary's count of calls that ended with `code`.
  double count(int code) const { return summary.get("codes").get(std::to_string(code)).number; }
  double dials() const { return summary.get("dials").number; }
};

GoRun parseRun(int exit_code, const std::string& out) {
  GoRun run;
  run.exit_code = exit_code;
  for (const std::string& line : ops::lines(out)) {
    auto value = ops::parseJson(line);
    INFO("otlpcall line: " << line);
    REQUIRE(value);
    if (value->get("summary").boolean) {
      run.summary = *value;
    } else {
      run.calls.push_back(*value);
    }
  }
  REQUIRE(run.summary.get("summary").boolean);
  return run;
}

// argv of otlpcall against the stack over TLS (its CA; SNI 127.0.0.1) plus `args`; fails the
// test when the client was not built.
std::vector<std::string> otlpcallArgv(OpsStack& stack, const std::vector<std::string>& args) {
  if (::access(OTLPCALL_BINARY, X_OK) != 0) {
    FAIL(OTLPCALL_BINARY << " is missing: install golang-go and golang-google-grpc-dev "
                            "(scripts/setup.sh), then re-run cmake and build go_clients");
  }
  std::vector<std::string> argv = {OTLPCALL_BINARY, "--url",
                                   "https://127.0.0.1:" + std::to_string(stack.port()), "--ca",
                                   stack.dir.write("ca.crt", stack.pki.caPem())};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// otlpcall to completion.
GoRun otlpcall(OpsStack& stack, const std::vector<std::string>& args,
               const std::string& name = "otlpcall", Millis timeout = Millis{60000}) {
  RunResult r = runToCompletion(otlpcallArgv(stack, args), stack.dir, name, timeout);
  UNSCOPED_INFO(name << ": exit " << r.exit_code << "\nstdout:\n" << r.out << "stderr:\n" << r.err);
  return parseRun(r.exit_code, r.out);
}

// The demo's complete records by x-request-id (the test fails on a duplicate id).
std::map<std::string, Record> completeById(const std::vector<Record>& records) {
  std::map<std::string, Record> by_id;
  for (const Record& record : records) {
    if (!record.complete) continue;
    std::string id = record.header("x-request-id").value_or("");
    INFO("x-request-id " << id);
    CHECK(by_id.emplace(id, record).second);
  }
  return by_id;
}

// Each call line's x-request-id, code and request size against the demo's complete record
// of it: a successful call was recorded once with exactly its message (gRPC's 5-byte prefix
// added), over h2c, with the forwarding headers.
void expectRecorded(OpsStack& stack, const GoRun& run) {
  auto records = stack.demo.waitForRecords(run.calls.size());
  auto by_id = completeById(records);
  CHECK(by_id.size() == run.calls.size());
  for (const JsonValue& call : run.calls) {
    const std::string& id = call.get("id").string;
    INFO("call " << id);
    CHECK(call.get("code").number == 0);
    auto it = by_id.find(id);
    REQUIRE(it != by_id.end());
    const Record& record = it->second;
    CHECK(record.method == "POST");
    CHECK(record.target == kTraceExport);
    CHECK(record.body_bytes == static_cast<uint64_t>(call.get("request_bytes").number) + 5);
    CHECK(record.header("content-type") == "application/grpc");  // as the Collector sends
    CHECK(record.header("te") == "trailers");
    CHECK(record.header("x-forwarded-for") == "127.0.0.1");
    CHECK(record.header("x-forwarded-proto") == "https");
  }
  for (const std::string& line : recordLines(stack.dir)) {
    INFO("record: " << line);
    CHECK(hasField(line, "protocol", quoted("h2c")));
    CHECK(hasField(line, "grpc_messages", "1"));
  }
}

std::optional<double> metricOf(OpsStack& stack, const std::string& name) {
  return ops::metric(stack.metrics(), name);
}

TEST_CASE(
    "grpc-go's 50 concurrent Export calls share one TLS connection and all reach the upstream",
    "[integration][http2][grpc][go]") {
  OpsStack stack;
  GoRun run = otlpcall(stack, {"--calls", "50", "--concurrency", "10", "--message-size", "1000",
                               "--id-prefix", "fifty"});
  CHECK(run.exit_code == 0);
  REQUIRE(run.calls.size() == 50);
  CHECK(run.count(0) == 50);
  CHECK(run.dials() == 1);  // one ClientConn, one connection, never lost
  CHECK(run.summary.get("enhance_your_calm").number == 0);
  expectRecorded(stack, run);
  CHECK(ops::eventually(
      [&] { return metricOf(stack, "apm_tls_proxy_grpc_responses_total{code=\"OK\"}") == 50; },
      Millis{5000}));
}

TEST_CASE("grpc-go keeps to the proxy's stream limit: 40 calls at once over 10 streams all pass",
          "[integration][http2][grpc][go]") {
  OpsOptions o;
  o.config.server["http2_max_concurrent_streams"] = "10";
  OpsStack stack(o);
  // Each call waits 200 ms upstream, so grpc-go holds 30 calls back for want of a stream.
  GoRun run = otlpcall(stack, {"--calls", "40", "--concurrency", "40", "--metadata",
                               "x-demo-delay-ms=200", "--id-prefix", "limit"});
  CHECK(run.exit_code == 0);
  CHECK(run.count(0) == 40);
  CHECK(run.dials() == 1);
  expectRecorded(stack, run);
  // Not one stream over the limit, which nghttp2 would have refused.
  CHECK(metricOf(stack, "apm_tls_proxy_http2_resets_sent_total{code=\"REFUSED_STREAM\"}")
            .value_or(0) == 0);
}

TEST_CASE("grpc-go's 4 MiB and 16 MiB messages, each way and four at a time, arrive exactly",
          "[integration][http2][grpc][go]") {
  OpsStack stack;
  // grpc-go grows its windows from BDP PINGs while these flow; the proxy's windows are fixed.
  const std::string echo = std::to_string(8 * kMiB);
  GoRun run = otlpcall(stack, {"--calls", "8", "--concurrency", "4", "--message-size",
                               std::to_string(4 * kMiB) + "," + std::to_string(16 * kMiB),
                               "--metadata", "x-demo-echo-size=" + echo, "--id-prefix", "big"});
  CHECK(run.exit_code == 0);
  REQUIRE(run.calls.size() == 8);
  CHECK(run.count(0) == 8);
  CHECK(run.dials() == 1);
  for (const JsonValue& call : run.calls) {
    INFO("call " << call.get("id").string);
    CHECK(call.get("response_bytes").number == 8 * kMiB);
  }
  expectRecorded(stack, run);
  std::multiset<uint64_t> sizes;
  for (const Record& record : stack.demo.records()) sizes.insert(record.body_bytes);
  CHECK(sizes.count(4 * kMiB + 5) == 4);
  CHECK(sizes.count(16 * kMiB + 5) == 4);
}

TEST_CASE(
    "grpc-go's keepalive PINGs keep an idle connection, and the proxy's idle closes are clean",
    "[integration][http2][grpc][go]") {
  SECTION("keepalive every 10 s while idle: the PINGs are answered, the connection is kept") {
    OpsStack stack;
    // grpc-go's floor for Time is 10 s. Its first PING goes out ~10 s into the pause; without
    // an ACK within Timeout (2 s) grpc-go closes the connection and the second round dials.
    GoRun run = otlpcall(
        stack, {"--rounds", "2", "--pause", "14s", "--keepalive-time", "10s", "--keepalive-timeout",
                "2s", "--keepalive-permit-without-stream", "--id-prefix", "keepalive"});
    CHECK(run.exit_code == 0);
    CHECK(run.count(0) == 2);
    CHECK(run.dials() == 1);
    CHECK(run.summary.get("enhance_your_calm").number == 0);  // no "too_many_pings"
    CHECK(
        metricOf(stack, "apm_tls_proxy_http2_goaways_sent_total{code=\"NO_ERROR\"}").value_or(0) ==
        0);
    expectRecorded(stack, run);
  }
  SECTION("connected early, first call late: request_header_timeout closes, grpc-go redials") {
    // grpc-go connects when the ClientConn is made, as an SDK does at start; its first export
    // may come later than the proxy waits for a first stream.
    OpsOptions o;
    o.config.server["request_header_timeout"] = "\"2s\"";
    OpsStack stack(o);
    GoRun run = otlpcall(stack, {"--start-delay", "3s", "--id-prefix", "late"});
    CHECK(run.exit_code == 0);
    CHECK(run.count(0) == 1);
    CHECK(run.dials() == 2);
    expectRecorded(stack, run);
  }
  SECTION("past idle_timeout the proxy closes with GOAWAY; grpc-go's next call redials") {
    OpsOptions o;
    o.config.server["idle_timeout"] = "\"2s\"";
    OpsStack stack(o);
    GoRun run = otlpcall(stack, {"--rounds", "2", "--pause", "5s", "--id-prefix", "idle"});
    CHECK(run.exit_code == 0);
    CHECK(run.count(0) == 2);
    CHECK(run.dials() == 2);
    CHECK(metricOf(stack, "apm_tls_proxy_http2_goaways_sent_total{code=\"NO_ERROR\"}") >= 1);
    expectRecorded(stack, run);
  }
}

TEST_CASE("grpc-go over mTLS forwards its client certificate, and without one no call passes",
          "[integration][http2][grpc][go][mtls]") {
  TempDir keys;
  ops::Pki clients("Go clients CA");
  ops::PemPair collector = clients.client("otel-collector", "", "");
  OpsOptions o;
  o.ssl_extra = "client_authentication = \"required\"\ncertificate_authorities = [\"" +
                keys.write("clients-ca.crt", clients.caPem()) + "\"]\nforward_client_cert = true\n";
  OpsStack stack(o);
  GoRun run = otlpcall(stack, {"--calls", "5", "--concurrency", "5", "--id-prefix", "mtls",
                               "--cert", keys.write("collector.crt", collector.cert), "--key",
                               keys.write("collector.key", collector.key)});
  CHECK(run.exit_code == 0);
  CHECK(run.count(0) == 5);
  expectRecorded(stack, run);
  for (const Record& record : stack.demo.records()) {
    std::string xfcc = record.header("x-forwarded-client-cert").value_or("");
    INFO("XFCC: " << xfcc);
    CHECK(xfcc.find("CN=otel-collector") != std::string::npos);
  }

  GoRun refused = otlpcall(
      stack, {"--calls", "2", "--timeout", "5s", "--expect-code", "14", "--id-prefix", "nocert"},
      "otlpcall-nocert");
  CHECK(refused.exit_code == 0);
  CHECK(refused.count(14) == 2);
  CHECK(stack.demo.records().size() == 5);
}

TEST_CASE("grpc-go reads the upstream's status, message and trailers unchanged",
          "[integration][http2][grpc][go]") {
  OpsStack stack;
  SECTION("a failure status with its message and a trailer (trailers-only answer)") {
    GoRun run = otlpcall(stack, {"--metadata", "x-demo-grpc-status=7", "--metadata",
                                 "x-demo-trailer=kept", "--expect-code", "7"});
    CHECK(run.exit_code == 0);
    REQUIRE(run.calls.size() == 1);
    CHECK(run.calls[0].get("code").number == 7);
    CHECK(run.calls[0].get("message").string == "x-demo-grpc-status");
    CHECK(run.calls[0].get("trailers").get("x-demo-trailer").string == "kept");
  }
  SECTION("OK with a response message and a trailer") {
    GoRun run = otlpcall(stack, {"--message-size", "100", "--metadata", "x-demo-echo-size=100",
                                 "--metadata", "x-demo-trailer=kept", "--id-prefix", "ok"});
    CHECK(run.exit_code == 0);
    REQUIRE(run.calls.size() == 1);
    CHECK(run.calls[0].get("response_bytes").number == 100);
    CHECK(run.calls[0].get("trailers").get("x-demo-trailer").string == "kept");
    expectRecorded(stack, run);
  }
  SECTION("an upstream reset mid-response: INTERNAL, never OK") {
    GoRun run = otlpcall(stack, {"--metadata", "x-demo-reset=2", "--metadata",
                                 "x-demo-echo-size=100000", "--expect-code", "13"});
    CHECK(run.exit_code == 0);
    REQUIRE(run.calls.size() == 1);
    CHECK(run.calls[0].get("message").string.find("RST_STREAM") != std::string::npos);
  }
  SECTION("an upstream REFUSED_STREAM is retried by the proxy: grpc-go sees OK") {
    GoRun run = otlpcall(stack, {"--metadata", "x-demo-refuse-once=go", "--id-prefix", "refused"});
    CHECK(run.exit_code == 0);
    CHECK(run.count(0) == 1);
    auto records = stack.demo.waitForRecords(2);
    CHECK(records.size() == 2);  // the refused try and the retry
  }
  SECTION("an unknown method: the demo's UNIMPLEMENTED") {
    GoRun run = otlpcall(stack, {"--path", "/pkg.Unknown/Call", "--expect-code", "12"});
    CHECK(run.exit_code == 0);
    REQUIRE(run.calls.size() == 1);
    CHECK(run.calls[0].get("message").string == "unknown method /pkg.Unknown/Call");
  }
}

TEST_CASE("grpc-go reads the proxy's own gRPC statuses: upstream down, upstream too slow",
          "[integration][http2][grpc][go]") {
  SECTION("upstream down: UNAVAILABLE with the proxy's message") {
    OpsOptions o;
    o.upstream_port = unusedPort();
    OpsStack stack(o);
    GoRun run = otlpcall(stack, {"--expect-code", "14", "--timeout", "10s"});
    CHECK(run.exit_code == 0);
    REQUIRE(run.calls.size() == 1);
    CHECK(!run.calls[0].get("message").string.empty());
    CHECK(run.dials() == 1);  // a status on a live connection, not a broken one
  }
  SECTION("upstream slower than response_timeout: DEADLINE_EXCEEDED before the client's") {
    OpsOptions o;
    o.config.upstream["response_timeout"] = "\"500ms\"";
    OpsStack stack(o);
    GoRun run = otlpcall(
        stack, {"--metadata", "x-demo-delay-ms=5000", "--expect-code", "4", "--timeout", "20s"});
    CHECK(run.exit_code == 0);
    REQUIRE(run.calls.size() == 1);
    // The proxy's status, not grpc-go's own deadline (20 s, "context deadline exceeded").
    CHECK(run.calls[0].get("message").string != "context deadline exceeded");
    CHECK(run.calls[0].get("ms").number < 20000);
  }
}

TEST_CASE("grpc-go under SIGTERM drain: calls in flight complete, no success goes unrecorded",
          "[integration][http2][grpc][go][drain]") {
  // Calls go 4 at a time, each answered 500 ms after the demo records it, so the run lasts
  // seconds past the signal: small calls, or 16 MiB uploads (some mid-body at the signal).
  struct Variant {
    const char* name;
    size_t calls;
    std::string message_size;
    size_t recorded_before_signal;
  };
  Variant v = GENERATE(Variant{"small calls", 40, "100", 6},
                       Variant{"16 MiB uploads", 12, std::to_string(16 * kMiB), 2});
  INFO(v.name);
  OpsOptions o;
  o.config.server["shutdown_timeout"] = "\"10s\"";
  OpsStack stack(o);
  Process client(
      otlpcallArgv(stack, {"--calls", std::to_string(v.calls), "--concurrency", "4",
                           "--message-size", v.message_size, "--metadata", "x-demo-delay-ms=500",
                           "--expect-code", "0,14", "--timeout", "20s", "--id-prefix", "drain"}),
      stack.dir.file("otlpcall-drain"));
  stack.demo.waitForRecords(v.recorded_before_signal, Millis{10000});
  // Recorded before SIGTERM: these calls reached the upstream and must be answered.
  std::set<std::string> in_flight;
  for (const auto& [id, record] : completeById(stack.demo.records())) in_flight.insert(id);
  stack.process().signal(SIGTERM);
  CHECK(stack.process().wait(Millis{12000}) == 0);
  std::optional<int> client_exit = client.wait(Millis{30000});
  REQUIRE(client_exit.has_value());
  UNSCOPED_INFO("otlpcall: exit " << *client_exit << "\nstdout:\n"
                                  << client.stdoutText() << "stderr:\n"
                                  << client.stderrText());
  GoRun run = parseRun(*client_exit, client.stdoutText());
  CHECK(run.exit_code == 0);  // every call OK or UNAVAILABLE
  REQUIRE(run.calls.size() == v.calls);
  CHECK(run.count(14) >= 1);  // the drain did cut the run short
  auto recorded = completeById(stack.demo.records());
  for (const JsonValue& call : run.calls) {
    const std::string& id = call.get("id").string;
    INFO("call " << id << " code " << call.get("code").number << ": "
                 << call.get("message").string);
    if (call.get("code").number == 0) {
      CHECK(recorded.count(id) == 1);  // never a success the upstream did not see
    } else {
      CHECK(recorded.count(id) == 0);  // UNAVAILABLE only for what never reached it
      CHECK(in_flight.count(id) == 0);
    }
  }
}

// The connection's "conn closed" debug line counts the requests it served, for HTTP/2 as
// for HTTP/1.1 (it said requests=0 for every HTTP/2 connection).
TEST_CASE("An HTTP/2 connection's conn closed line counts the calls it served",
          "[integration][http2][grpc][go]") {
  OpsStack stack;
  GoRun run = otlpcall(stack, {"--calls", "5", "--id-prefix", "count"});
  CHECK(run.count(0) == 5);
  // grpc-go's exit ends the connection with a FIN or, when bytes were still unread, a
  // reset: the reason varies, the count must not.
  std::regex closed(R"(msg="conn closed" conn=\d+ peer=\S+ reason=\S+ requests=(\d+))");
  std::string text;
  std::smatch m;  // points into text
  bool logged = ops::eventually(
      [&] {
        text = stack.stderrText();
        return std::regex_search(text, m, closed);
      },
      Millis{5000});
  INFO("proxy stderr:\n" << text);
  REQUIRE(logged);
  CHECK(m[1].str() == "5");
}

}  // namespace
}  // namespace proxy::integration
