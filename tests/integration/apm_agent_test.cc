// The Elastic APM Node.js agent (elastic-apm-node 4.x, unmodified; tests/clients/
// apm-agent.mjs) through the proxy over TLS to apm-intake-demo, set up the way
// docs/agents.md tells users to: serverUrl and serverCaCertFile. It asks for the server's
// version, then streams gzip-compressed, chunked intake events; and given the leaf instead
// of the CA it fails the way the docs say.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/integration/demo_clients.h"
#include "tests/integration/harness.h"
#include "tests/integration/ops_support.h"

namespace proxy::integration {
namespace {

using ops::OpsStack;

RunResult runAgent(OpsStack& stack, const std::string& ca_pem, const std::string& name) {
  std::string ca = stack.dir.write(name + "-ca.crt", ca_pem);
  std::string url = "https://127.0.0.1:" + std::to_string(stack.port());
  return runNodeClient(stack.dir, "apm-agent.mjs", {"--url", url, "--ca", ca}, name);
}

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("The Elastic APM Node.js agent sends its events through the proxy",
          "[integration][agents]") {
  OpsStack stack;
  RunResult r = runAgent(stack, stack.pki.caPem(), "agent");
  CHECK(r.exit_code == 0);
  CHECK(has(r.out, "\"ok\":true"));
  auto records = stack.demo.waitForRecords(2);
  REQUIRE(records.size() == 2);
  // The server-version request and the event stream, on connections of their own (so in
  // either order).
  auto find = [&](const std::string& method, const std::string& target) -> const Record* {
    for (const Record& record : records) {
      if (record.method == method && record.target == target) return &record;
    }
    return nullptr;
  };
  CHECK(find("GET", "/") != nullptr);
  const Record* found = find("POST", "/intake/v2/events");
  REQUIRE(found != nullptr);
  const Record& events = *found;
  CHECK(events.complete);
  CHECK(events.body_bytes > 0);
  CHECK(events.header("content-encoding") == "gzip");
  CHECK(events.header("content-type") == "application/x-ndjson");
  CHECK(events.header("transfer-encoding") == "chunked");
  CHECK(events.header("x-forwarded-proto") == "https");
  CHECK(events.header("x-forwarded-for") == "127.0.0.1");
  auto agent = events.header("user-agent");
  REQUIRE(agent.has_value());
  CHECK(agent->rfind("apm-agent-nodejs/4.", 0) == 0);
}

TEST_CASE("Given the proxy's leaf instead of its CA, the agent fails as docs/agents.md says",
          "[integration][agents]") {
  OpsStack stack;
  RunResult r = runAgent(stack, stack.leaf.cert, "agent-leaf");
  CHECK(r.exit_code == 1);
  CHECK(has(r.out, "\"ok\":false"));
  CHECK(has(r.out, "UNABLE_TO_VERIFY_LEAF_SIGNATURE"));
  // Nothing got through: the agent checked the certificate before sending a byte.
  CHECK(stack.demo.records().empty());
}

}  // namespace proxy::integration
