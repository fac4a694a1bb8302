// What the two client-fault matrix tests share (client_fault_matrix_http1_test.cc and
// client_fault_matrix_http2_test.cc): the proxy's short client-side deadlines, and the
// check of what the upstream (apm-intake-demo) recorded of a cell's request, found by its
// X-Cell header. Header only; Catch2 assertions.
#pragma once

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/ops_support.h"

namespace proxy::integration::matrix {

// A TLS proxy whose every client-side deadline is 1 s, so each stall ends within seconds.
inline ops::OpsOptions shortTimeouts() {
  ops::OpsOptions o;
  for (const char* key : {"request_header_timeout", "read_timeout", "idle_timeout",
                          "tls_handshake_timeout", "write_timeout"}) {
    o.config.server[key] = "\"1s\"";
  }
  return o;
}

// What the upstream may have recorded of a cell's request.
enum class Upstream { kNothing, kNeverComplete, kCompleteOnce };

// Every record whose X-Cell header is `name`.
inline std::vector<Record> recordsOf(DemoServer& demo, const std::string& name) {
  std::vector<Record> out;
  for (Record& r : demo.records()) {
    if (r.header("X-Cell") == name) out.push_back(std::move(r));
  }
  return out;
}

// Never twice; nothing, never whole, or whole once, as `expected` says.
inline void checkUpstream(DemoServer& demo, const std::string& name, Upstream expected) {
  std::vector<Record> seen = recordsOf(demo, name);
  size_t complete = 0;
  for (const Record& r : seen) complete += r.complete ? 1 : 0;
  CHECK(seen.size() <= 1);
  if (expected == Upstream::kNothing) CHECK(seen.empty());
  if (expected == Upstream::kNeverComplete) CHECK(complete == 0);
  if (expected == Upstream::kCompleteOnce) CHECK(complete == 1);
}

}  // namespace proxy::integration::matrix
