// Real OpenTelemetry and gRPC clients (tests/clients, installed by scripts/setup-npm.sh)
// against apm-intake-demo over h2c, with no proxy: the unmodified OTLP/gRPC exporters for
// traces, metrics and logs must succeed against the upstream the proxy tests rely on, and
// the raw grpc-js caller must see the demo's statuses, trailers, resets and 16 MiB
// messages. The proxy tests later run the same clients through the proxy over TLS.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/integration/demo_clients.h"
#include "tests/integration/harness.h"

namespace proxy::integration {
namespace {

// One raw unary call (grpc-unary.mjs) to the demo over h2c.
RunResult grpcCall(const TempDir& dir, const DemoServer& demo, const std::string& path,
                   const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--url", "http://127.0.0.1:" + std::to_string(demo.port()),
                                   "--insecure-h2c", "--path", path};
  args.insert(args.end(), extra.begin(), extra.end());
  return runNodeClient(dir, "grpc-unary.mjs", args, "grpc-unary");
}

// otlp-export.mjs to the demo over h2c, with `header` as gRPC metadata on every call.
RunResult otlpExport(const TempDir& dir, const DemoServer& demo, const std::string& header) {
  return runNodeClient(dir, "otlp-export.mjs",
                       {"--url", "http://127.0.0.1:" + std::to_string(demo.port()),
                        "--insecure-h2c", "--header", header},
                       "otlp-export");
}

TEST_CASE("The OTLP/gRPC exporters export traces, metrics and logs to the demo over h2c",
          "[integration][demo][otlp]") {
  TempDir dir;
  DemoServer demo(dir);
  RunResult r = otlpExport(dir, demo, "x-request-id=otlp-1");
  CHECK(r.exit_code == 0);
  for (const char* signal : {"traces", "metrics", "logs"}) {
    CHECK(r.out.find(std::string("{\"signal\":\"") + signal + "\",\"ok\":true") !=
          std::string::npos);
  }

  auto records = demo.waitForRecords(3);
  expectOtlpExports(records, recordLines(dir));
  for (size_t i = 0; i < records.size(); ++i) {
    CHECK(records[i].body_bytes > 5);  // a message with the span, metric or log in it
    CHECK(records[i].header("x-request-id") == "otlp-1");
    CHECK(records[i].conn == records[0].conn);  // one channel, three streams
  }
}

TEST_CASE("The exporter script fails when an export fails", "[integration][demo][otlp]") {
  TempDir dir;
  DemoServer demo(dir);
  // INVALID_ARGUMENT (3) is not retried by the exporters, so the failure is immediate.
  RunResult r = otlpExport(dir, demo, "x-demo-grpc-status=3");
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("\"ok\":true") == std::string::npos);
  CHECK(r.out.find("\"grpc_code\":3") != std::string::npos);
}

TEST_CASE("A raw gRPC client sees the demo's statuses, trailers and resets",
          "[integration][demo][otlp]") {
  TempDir dir;
  DemoServer demo(dir);

  SECTION("an Export: status 0 and the trailer asked for") {
    RunResult r = grpcCall(dir, demo, kOtlpExports[2],
                           {"--message-size", "100", "--metadata", "x-demo-trailer=kept"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("\"code\":0,") != std::string::npos);
    CHECK(r.out.find("\"response_bytes\":0,") != std::string::npos);
    CHECK(r.out.find("\"x-demo-trailer\":\"kept\"") != std::string::npos);
    auto records = demo.waitForRecords(1);
    CHECK(records[0].body_bytes == 105);
  }
  SECTION("x-demo-grpc-status: that status and message, trailers-only") {
    RunResult r = grpcCall(dir, demo, kOtlpExports[0],
                           {"--metadata", "x-demo-grpc-status=7", "--expect-code", "7"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("\"details\":\"x-demo-grpc-status\"") != std::string::npos);
  }
  SECTION("an unknown method: UNIMPLEMENTED (12)") {
    RunResult r = grpcCall(dir, demo, "/pkg.Unknown/Call", {"--expect-code", "12"});
    CHECK(r.exit_code == 0);
  }
  SECTION("x-demo-reset: the call fails with INTERNAL, not as a success") {
    RunResult r = grpcCall(dir, demo, kOtlpExports[0], {"--metadata", "x-demo-reset=2"});
    CHECK(r.out.find("\"code\":13,") != std::string::npos);
    CHECK(r.out.find("RST_STREAM") != std::string::npos);
  }
  SECTION("x-demo-refuse-once: REFUSED_STREAM once, and grpc-js's transparent retry is served") {
    RunResult r = grpcCall(dir, demo, kOtlpExports[0],
                           {"--metadata", "x-demo-refuse-once=k1", "--expect-code", "0"});
    CHECK(r.exit_code == 0);
    auto records = demo.waitForRecords(2);
    REQUIRE(records.size() == 2);
    CHECK(records[0].header("x-demo-refuse-once") == "k1");
    CHECK(records[1].header("x-demo-refuse-once") == "k1");
    RunResult again = grpcCall(dir, demo, kOtlpExports[0],
                               {"--metadata", "x-demo-refuse-once=k1", "--expect-code", "0"});
    CHECK(again.exit_code == 0);
    CHECK(demo.waitForRecords(3).size() == 3);  // no refusal the second time: one stream
    CHECK(demo.records().size() == 3);
  }
  SECTION("16 MiB each way") {
    const std::string size = std::to_string(16 << 20);
    RunResult r = grpcCall(dir, demo, kOtlpExports[1],
                           {"--message-size", size, "--metadata", "x-demo-echo-size=" + size});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("\"code\":0,") != std::string::npos);
    CHECK(r.out.find("\"response_bytes\":" + size + ",") != std::string::npos);
    auto lines = recordLines(dir);
    REQUIRE(lines.size() == 1);
    CHECK(hasField(lines[0], "body_bytes", std::to_string((16 << 20) + 5)));
    CHECK(hasField(lines[0], "grpc_messages", "1"));
  }
}

}  // namespace
}  // namespace proxy::integration
