// The upstream-fault matrix, h2c upstream: gRPC calls from a TLS HTTP/2 client
// (h2/h2peer.py) through the proxy to a scripted h2c upstream (h2/upstream_cell.py) that,
// for every state of a call (connection without SETTINGS, call waiting for the head, head
// received, DATA streaming, trailers pending, connection idle in the pool), closes the
// connection, resets it, resets the stream with various codes, sends a GOAWAY below or
// covering the call, stalls or lies. The client must read docs/http.md's gRPC status (14
// for a call not processed or a lost connection; 13/1/8 for resets; 4 for timeouts; never
// 0 unless the upstream answered 0) or, once DATA went out, RST_STREAM INTERNAL_ERROR; the
// proxy resends only what was not processed, and no call is processed twice; every gauge
// and every upstream connection ends within bounds, without a storm of connects.
#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/client_fault_matrix.h"
#include "tests/integration/harness.h"
#include "tests/integration/ops_support.h"
#include "tests/integration/upstream_fault_matrix.h"

namespace proxy::integration::upmatrix {
namespace {

TEST_CASE("h2c upstream faults in every call state get the documented gRPC status",
          "[integration][faults][matrix][upstream][http2]") {
  const std::vector<H2cCell> cells = {
      // The connection: no SETTINGS within connect_timeout, or closed or reset before them
      // (failed connects: one per address, plus the queue's one more, never a dial storm).
      {"connect-nosettings", "no-settings", 14, 0, kConnectFailures, 0, 2},
      {"connect-close", "connect-close", 14, 0, "", 0, 3},
      {"connect-rst", "connect-rst", 14, 0, "", 0, 3},
      // The call sent whole, no head yet.
      {"waiting-stall", "", 4, 1, kTimeouts},
      {"waiting-rst-stream-2", "", 13, 1},
      {"waiting-rst-stream-0", "", 13, 1},
      {"waiting-rst-stream-8", "", 1, 1},
      {"waiting-rst-stream-11", "", 8, 1},
      {"waiting-rst-stream-7", "", 0, 1, "", 1},  // REFUSED_STREAM: resent once, answered
      {"waiting-goaway-below", "", 0, 1, "", 1},  // above last-stream-id: resent, answered
      {"waiting-goaway-covered", "", 0, 1},       // covered by the GOAWAY: answered
      // The connection lost after the call went out: 14, as gRPC says of a lost transport;
      // never resent by the proxy (docs/http.md).
      {"waiting-close", "", 14, 1},
      {"waiting-rst", "", 14, 1},
      {"waiting-goaway-covered-close", "", 14, 1},  // covered, never answered, then closed
      {"waiting-lie-data-after-end", "", 0, 1},     // answered 0, then DATA on a closed stream
      {"waiting-lie-no-status", "", 13, 1},         // a head without :status: a reset
      // A head received, nothing after it (the proxy holds a head until its first byte).
      {"head-stall", "", 4, 1, kTimeouts},
      {"head-rst-stream-2", "", 13, 1},
      {"head-rst-stream-8", "", 1, 1},
      {"head-close", "", 14, 1},  // the head held back, then dropped
      {"head-rst", "", 14, 1},
      // DATA under way, and the whole message with its trailers pending.
      {"data-close", "", kGrpcCut, 1},
      {"data-rst", "", kGrpcCut, 1},
      {"data-rst-stream-8", "", kGrpcCut, 1},
      {"data-stall", "", kGrpcCut, 1, kTimeouts},
      {"trailers-close", "", kGrpcCut, 1},
      {"trailers-rst-stream-0", "", kGrpcCut, 1},
      {"trailers-rst-stream-0-oneread", "", kGrpcCut, 1},  // head, DATA and reset in one read
      {"trailers-stall", "", kGrpcCut, 1, kTimeouts},
      // The call answered, then its connection idles in the pool.
      {"idle-close", "", 0, 1},
      {"idle-rst", "", 0, 1},
      {"idle-goaway", "", 0, 1},
      {"idle-stall", "", 0, 1},
  };
  runH2cTable(cells);
}

TEST_CASE("apm-intake-demo's h2c faults get the documented gRPC status",
          "[integration][faults][matrix][upstream][http2]") {
  struct DemoCell {
    const char* name;
    const char* header;  // the x-demo-* knob (docs/intake-demo.md)
    int grpc;            // or kGrpcCut
    size_t records;      // streams the demo saw (a refused one and its resend count both)
    int retries;
    const char* counter;
  };
  const std::vector<DemoCell> cells = {
      {"demo-status-7", "x-demo-grpc-status=7", 7, 1, 0, ""},  // the upstream's own status
      {"demo-reset-2", "x-demo-reset=2", kGrpcCut, 1, 0, ""},  // after the head and DATA
      {"demo-reset-8", "x-demo-reset=8", kGrpcCut, 1, 0, ""},
      {"demo-refuse-once", "x-demo-refuse-once=upstream-matrix", 0, 2, 1, ""},
      {"demo-refused", "x-demo-reset=7", 14, 2, 1, "apm_tls_proxy_upstream_overloaded_total"},
      {"demo-goaway", "x-demo-goaway=1", 0, 1, 0, ""},
      {"demo-delay", "x-demo-delay-ms=3000", 4, 1, 0, kTimeouts},
  };
  OpsStack stack(shortUpstreamTimeouts(0));  // in front of the stack's apm-intake-demo
  const std::string ca = stack.dir.write("ca.crt", stack.pki.caPem());
  for (const DemoCell& cell : cells) {
    INFO("cell " << cell.name);
    const std::map<std::string, double> before = stack.metrics();
    JsonValue report = grpcCall(stack, ca, cell.name, cell.header);
    const JsonValue& one = report.get("responses").get("1");
    if (cell.grpc == kGrpcCut) {
      CHECK((report.get("resets").has("1") && report.get("resets").get("1").number == 2));
      CHECK_FALSE(one.get("ended").boolean);
      CHECK(grpcStatus(report) == -1);
    } else {
      CHECK(grpcStatus(report) == cell.grpc);
      CHECK(one.get("ended").boolean);
    }
    checkSettled(stack);
    const std::map<std::string, double> after = stack.metrics();
    auto grew = [&](const std::string& series) {
      return ops::metric(after, series).value_or(0) - ops::metric(before, series).value_or(0);
    };
    CHECK(grew("apm_tls_proxy_upstream_retries_total") == cell.retries);
    if (*cell.counter != '\0') CHECK(grew(cell.counter) >= 1);
    const std::string next = std::string(cell.name) + "-after";
    CHECK(grpcStatus(grpcCall(stack, ca, next)) == 0);
    CHECK(
        eventually([&] { return matrix::recordsOf(stack.demo, next).size() == 1; }, Millis{5000}));
    CHECK(matrix::recordsOf(stack.demo, cell.name).size() == cell.records);
  }
  CHECK(stack.process().stop(Millis{10000}) == 0);
}

}  // namespace
}  // namespace proxy::integration::upmatrix
