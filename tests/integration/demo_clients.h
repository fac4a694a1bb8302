// Helpers for the tests that drive apm-intake-demo with real HTTP/2 and gRPC clients
// (curl, nghttp, the Node.js clients of tests/clients): finding the tools, and reading
// the demo's record file line by line. Header-only; used by intake_demo_test.cc and
// otlp_clients_test.cc. Uses Catch2 to fail a test whose tool is missing.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/support/json.h"

namespace proxy::integration {

using testsupport::toolPath;

// The lines of apm-intake-demo's record file (DemoServer writes `dir/demo.jsonl`).
inline std::vector<std::string> recordLines(const TempDir& dir) {
  std::vector<std::string> lines;
  std::istringstream text(readFile(dir.file("demo.jsonl")));
  std::string line;
  while (std::getline(text, line)) lines.push_back(line);
  return lines;
}

// True when the JSON object `line` has member `key` equal to `value`, a JSON text (a
// quoted string, a number, true/false).
inline bool hasField(const std::string& line, const std::string& key, const std::string& value) {
  auto object = testsupport::parseJson(line);
  auto expected = testsupport::parseJson(value);
  return object && expected && object->has(key) && object->get(key) == *expected;
}

// `s` as a JSON string (for hasField; the values compared need no escaping).
inline std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// The OTLP/gRPC Export methods, in the order otlp-export.mjs calls them.
inline const char* const kOtlpExports[] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

// Checks what the demo recorded of otlp-export.mjs's three calls (`records` and the record
// file's `lines`): one complete gRPC Export per signal, in order, with `te: trailers`,
// over h2c, one message each.
inline void expectOtlpExports(const std::vector<Record>& records,
                              const std::vector<std::string>& lines) {
  REQUIRE(records.size() == 3);
  REQUIRE(lines.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    INFO("record: " << lines[i]);
    CHECK(records[i].method == "POST");
    CHECK(records[i].target == kOtlpExports[i]);
    CHECK(records[i].complete);
    CHECK(records[i].header("te") == "trailers");
    CHECK(records[i].header("content-type") == "application/grpc");
    CHECK(hasField(lines[i], "protocol", quoted("h2c")));
    CHECK(hasField(lines[i], "grpc_messages", "1"));
  }
}

#ifdef PROXY_SOURCE_DIR
// `node tests/clients/SCRIPT args...` to completion (the clients' output goes to the
// test's log on failure); fails the test when node or the npm packages are missing.
inline RunResult runNodeClient(const TempDir& dir, const std::string& script,
                               const std::vector<std::string>& args, const std::string& name) {
  std::string node = toolPath("node", "Debian package nodejs, or scripts/setup-npm.sh");
  const std::string clients = std::string(PROXY_SOURCE_DIR) + "/tests/clients";
  for (const char* package : {"@grpc/grpc-js", "elastic-apm-node"}) {
    if (readFile(clients + "/node_modules/" + package + "/package.json").empty()) {
      FAIL("the test clients' npm package " << package
                                            << " is not installed: run scripts/setup-npm.sh");
    }
  }
  std::vector<std::string> argv = {node, clients + "/" + script};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = runToCompletion(argv, dir, name, Millis{60000});
  UNSCOPED_INFO(script << " stdout:\n" << r.out << "stderr:\n" << r.err);
  return r;
}

// tests/integration/h2/h2peer.py (raw HTTP/2 frames, h2c) against 127.0.0.1:port, run by
// Debian's python3 (python3-h2); its one JSON line is RunResult::out.
inline RunResult runH2Peer(const TempDir& dir, uint16_t port, const std::string& attack,
                           const std::vector<std::string>& args, Millis timeout = Millis{30000}) {
  if (::access("/usr/bin/python3", X_OK) != 0)
    FAIL("/usr/bin/python3 is missing (scripts/setup.sh)");
  std::vector<std::string> argv = {
      "/usr/bin/python3", std::string(PROXY_SOURCE_DIR) + "/tests/integration/h2/h2peer.py",
      std::to_string(port), attack};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = runToCompletion(argv, dir, "h2peer-" + attack, timeout);
  UNSCOPED_INFO("h2peer " << attack << ": exit " << r.exit_code << "\n" << r.out << r.err);
  return r;
}
#endif

}  // namespace proxy::integration
