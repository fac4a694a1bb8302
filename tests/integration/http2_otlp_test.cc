// OTLP/gRPC through the proxy (issue 10 items 1, 3, 4, 8): the unmodified OpenTelemetry
// exporters (tests/clients/otlp-export.mjs) over TLS and over mTLS with an allow-list to
// apm-intake-demo's h2c, and gRPC semantics with the raw grpc-js caller (grpc-unary.mjs):
// statuses, trailers, 16 MiB messages, upstream resets, and the proxy's own gRPC errors.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/integration/demo_clients.h"
#include "tests/integration/harness.h"
#include "tests/integration/ops_support.h"

namespace proxy::integration {
namespace {

using ops::OpsOptions;
using ops::OpsStack;

std::string url(const OpsStack& stack) {
  return "https://127.0.0.1:" + std::to_string(stack.port());
}

// The stack's CA as a file for the Node.js clients' --ca.
std::string caFile(OpsStack& stack) { return stack.dir.write("ca.crt", stack.pki.caPem()); }

// otlp-export.mjs through the proxy over TLS; `extra` adds --cert/--key or --header.
RunResult otlpExport(OpsStack& stack, const std::vector<std::string>& extra,
                     const std::string& name = "otlp-export") {
  std::vector<std::string> args = {"--url", url(stack), "--ca", caFile(stack)};
  args.insert(args.end(), extra.begin(), extra.end());
  return runNodeClient(stack.dir, "otlp-export.mjs", args, name);
}

// One grpc-unary.mjs call through the proxy over TLS.
RunResult grpcCall(OpsStack& stack, const std::string& path,
                   const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--url", url(stack), "--ca", caFile(stack), "--path", path};
  args.insert(args.end(), extra.begin(), extra.end());
  return runNodeClient(stack.dir, "grpc-unary.mjs", args, "grpc-unary");
}

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// The three Export calls the exporters made, as the demo recorded them.
std::vector<Record> exportRecords(OpsStack& stack) {
  auto records = stack.demo.waitForRecords(3);
  expectOtlpExports(records, recordLines(stack.dir));
  for (const Record& record : records) {
    CHECK(record.header("x-forwarded-for") == "127.0.0.1");
    CHECK(record.header("x-forwarded-proto") == "https");
  }
  return records;
}

void expectAllExported(const RunResult& r) {
  CHECK(r.exit_code == 0);
  for (const char* signal : {"traces", "metrics", "logs"}) {
    CHECK(has(r.out, std::string("{\"signal\":\"") + signal + "\",\"ok\":true"));
  }
}

TEST_CASE("The OTLP/gRPC exporters export through the proxy over TLS to an h2c upstream",
          "[integration][http2][otlp]") {
  OpsStack stack;
  RunResult r = otlpExport(stack, {"--header", "x-request-id=otlp-tls", "--header",
                                   "x-forwarded-client-cert=By=spoofed;Hash=00"});
  expectAllExported(r);
  for (const Record& record : exportRecords(stack)) {
    CHECK(record.header("x-request-id") == "otlp-tls");
    // forward_client_cert is off: a client-sent XFCC is removed, none is added.
    CHECK(countHeader(record.headers, "x-forwarded-client-cert") == 0);
  }
}

struct MtlsStack {
  MtlsStack()
      : clients("OTLP clients CA"),
        agent(clients.client("apm-agent", "", "")),
        intruder(clients.client("intruder", "", "")),
        stack(options()) {}
  OpsOptions options() {
    OpsOptions o;
    o.ssl_extra = "client_authentication = \"required\"\ncertificate_authorities = [\"" +
                  keys.write("clients-ca.crt", clients.caPem()) +
                  "\"]\nforward_client_cert = true\n";
    o.extra = "[ssl.allowed_clients]\ncommon_names = [\"apm-agent\"]\n";
    return o;
  }
  std::vector<std::string> certArgs(const ops::PemPair& who, const std::string& name) {
    return {"--cert", keys.write(name + ".crt", who.cert), "--key",
            keys.write(name + ".key", who.key)};
  }
  TempDir keys;
  ops::Pki clients;
  ops::PemPair agent;
  ops::PemPair intruder;
  OpsStack stack;
};

TEST_CASE(
    "Over mTLS with an allow-list, an allowed exporter succeeds and its identity is forwarded",
    "[integration][http2][otlp][mtls]") {
  MtlsStack m;
  std::vector<std::string> args = m.certArgs(m.agent, "agent");
  args.insert(args.end(), {"--header", "x-forwarded-client-cert=By=spoofed;Hash=00"});
  RunResult r = otlpExport(m.stack, args);
  expectAllExported(r);
  for (const Record& record : exportRecords(m.stack)) {
    REQUIRE(countHeader(record.headers, "x-forwarded-client-cert") == 1);
    std::string xfcc = *record.header("x-forwarded-client-cert");
    INFO("XFCC: " << xfcc);
    CHECK(has(xfcc, "CN=apm-agent"));
    CHECK(!has(xfcc, "spoofed"));
  }

  // A certificate from the trusted CA whose CN is not on the list: the handshake fails, the
  // exporters give up (they retry UNAVAILABLE until their timeout), nothing reaches the demo.
  RunResult refused = otlpExport(
      m.stack,
      [&] {
        std::vector<std::string> a = m.certArgs(m.intruder, "intruder");
        a.insert(a.end(), {"--timeout-ms", "2000"});
        return a;
      }(),
      "otlp-intruder");
  CHECK(refused.exit_code == 1);
  CHECK(!has(refused.out, "\"ok\":true"));
  CHECK(ops::eventually(
      [&] {
        auto metrics = m.stack.metrics();
        auto n = ops::metric(
            metrics, "apm_tls_proxy_tls_handshake_failures_total{reason=\"identity_not_allowed\"}");
        return n && *n >= 1;
      },
      Millis{5000}));
  CHECK(m.stack.demo.records().size() == 3);
}

TEST_CASE("gRPC statuses, messages and trailers pass through exactly",
          "[integration][http2][grpc]") {
  OpsStack stack;
  SECTION("an upstream status and message") {
    RunResult r = grpcCall(stack, kOtlpExports[0],
                           {"--metadata", "x-demo-grpc-status=7", "--expect-code", "7"});
    CHECK(r.exit_code == 0);
    CHECK(has(r.out, "\"details\":\"x-demo-grpc-status\""));
  }
  SECTION("an Export with a trailer") {
    RunResult r = grpcCall(
        stack, kOtlpExports[2],
        {"--message-size", "100", "--metadata", "x-demo-trailer=kept", "--expect-code", "0"});
    CHECK(r.exit_code == 0);
    CHECK(has(r.out, "\"x-demo-trailer\":\"kept\""));
    CHECK(stack.demo.waitForRecords(1)[0].body_bytes == 105);
  }
  SECTION("an unknown method: the demo's UNIMPLEMENTED") {
    RunResult r = grpcCall(stack, "/pkg.Unknown/Call", {"--expect-code", "12"});
    CHECK(r.exit_code == 0);
    CHECK(has(r.out, "unknown method /pkg.Unknown/Call"));
  }
}

TEST_CASE("A 16 MiB gRPC message passes each way", "[integration][http2][grpc]") {
  OpsStack stack;
  const std::string size = std::to_string(16 << 20);
  RunResult r = grpcCall(
      stack, kOtlpExports[1],
      {"--message-size", size, "--metadata", "x-demo-echo-size=" + size, "--expect-code", "0"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.out, "\"response_bytes\":" + size + ","));
  auto lines = recordLines(stack.dir);
  REQUIRE(lines.size() == 1);
  CHECK(hasField(lines[0], "body_bytes", std::to_string((16 << 20) + 5)));
  CHECK(hasField(lines[0], "grpc_messages", "1"));
}

TEST_CASE("An upstream reset mid-response fails the call, never as a success",
          "[integration][http2][grpc]") {
  OpsStack stack;
  RunResult r = grpcCall(stack, kOtlpExports[0], {"--metadata", "x-demo-reset=2"});
  CHECK(has(r.out, "\"code\":13,"));
  CHECK(has(r.out, "RST_STREAM"));
}

TEST_CASE("A call the client abandons ends one upstream stream: the h2c connection lives on",
          "[integration][http2][grpc]") {
  OpsStack stack;
  RunResult cancelled =
      grpcCall(stack, kOtlpExports[0],
               {"--metadata", "x-demo-delay-ms=3000", "--timeout-ms", "300", "--expect-code", "4"});
  CHECK(cancelled.exit_code == 0);  // grpc-js's own deadline: DEADLINE_EXCEEDED
  RunResult next = grpcCall(stack, kOtlpExports[1], {"--expect-code", "0"});
  CHECK(next.exit_code == 0);
  auto records = stack.demo.waitForRecords(2);
  REQUIRE(records.size() == 2);
  // Two client connections, one upstream h2c connection: the abandoned call ended a stream,
  // not the connection.
  CHECK(records[0].conn == records[1].conn);
  // Nothing of the cancelled call stays behind in the proxy.
  CHECK(ops::eventually(
      [&] {
        auto metrics = stack.metrics();
        return ops::metric(metrics, "apm_tls_proxy_http2_streams_active") == 0 &&
               ops::metric(metrics, "apm_tls_proxy_http2_connections") == 0;
      },
      Millis{5000}));
}

TEST_CASE("When the proxy fails a gRPC call itself, the client reads a gRPC status",
          "[integration][http2][grpc]") {
  SECTION("upstream down: UNAVAILABLE with a message") {
    OpsOptions o;
    o.upstream_port = unusedPort();
    OpsStack stack(o);
    RunResult r =
        grpcCall(stack, kOtlpExports[0], {"--expect-code", "14", "--timeout-ms", "10000"});
    CHECK(r.exit_code == 0);
    CHECK(!has(r.out, "\"details\":\"\""));
  }
  SECTION("upstream too slow: DEADLINE_EXCEEDED") {
    OpsOptions o;
    o.config.upstream["response_timeout"] = "\"500ms\"";
    OpsStack stack(o);
    RunResult r = grpcCall(
        stack, kOtlpExports[0],
        {"--metadata", "x-demo-delay-ms=5000", "--expect-code", "4", "--timeout-ms", "20000"});
    CHECK(r.exit_code == 0);
    CHECK(!has(r.out, "\"details\":\"\""));
  }
}

TEST_CASE("The access log and the metrics give each gRPC call the grpc-status its client read",
          "[integration][http2][grpc]") {
  TempDir side;
  std::string log_path = side.file("access.log");
  // The status the access log's line number `i` (from 0) carries, once it is written.
  auto loggedStatus = [&](size_t i) {
    std::vector<std::string> text;
    REQUIRE(ops::eventually(
        [&] {
          text = ops::lines(readFile(log_path));
          return text.size() > i;
        },
        Millis{5000}));
    auto line = testsupport::parseJson(text[i]);
    INFO("access line: " << text[i]);
    REQUIRE(line.has_value());
    CHECK(line->get("status").number == 200);  // gRPC: the outcome is in grpc-status
    return line->has("grpc_status") ? static_cast<int>(line->get("grpc_status").number) : -1;
  };
  SECTION("the upstream's status, OK or not") {
    OpsOptions o;
    o.config.log["access"] = "\"" + log_path + "\"";
    OpsStack stack(o);
    CHECK(grpcCall(stack, kOtlpExports[0], {"--expect-code", "0"}).exit_code == 0);
    CHECK(loggedStatus(0) == 0);
    RunResult failed = grpcCall(stack, kOtlpExports[0],
                                {"--metadata", "x-demo-grpc-status=3", "--expect-code", "3"});
    CHECK(failed.exit_code == 0);
    CHECK(loggedStatus(1) == 3);
    // And counted by status: every gRPC answer is HTTP 200, so only this tells them apart.
    auto metrics = stack.metrics();
    CHECK(ops::metric(metrics, "apm_tls_proxy_grpc_responses_total{code=\"OK\"}") == 1);
    CHECK(ops::metric(metrics, "apm_tls_proxy_grpc_responses_total{code=\"INVALID_ARGUMENT\"}") ==
          1);
    CHECK(ops::metric(metrics, "apm_tls_proxy_http_responses_total{code_class=\"2xx\"}") == 2);
  }
  SECTION("the proxy's own UNAVAILABLE") {
    OpsOptions o;
    o.upstream_port = unusedPort();
    o.config.log["access"] = "\"" + log_path + "\"";
    OpsStack stack(o);
    CHECK(grpcCall(stack, kOtlpExports[0], {"--expect-code", "14", "--timeout-ms", "10000"})
              .exit_code == 0);
    CHECK(loggedStatus(0) == 14);
    CHECK(ops::metric(stack.metrics(),
                      "apm_tls_proxy_grpc_responses_total{code=\"UNAVAILABLE\"}") == 1);
    CHECK_FALSE(ops::metric(stack.metrics(), "apm_tls_proxy_grpc_responses_total{code=\"OK\"}")
                    .has_value());
  }
}

}  // namespace
}  // namespace proxy::integration
