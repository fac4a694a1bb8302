// The client-fault matrix, HTTP/2 over TLS (ALPN h2): for every state of stream 1 (preface
// half sent, header block open, body half sent, waiting for the answer, answer streaming,
// connection idle) the client closes (FIN), resets the connection (RST), resets the stream,
// stalls or lies. tests/integration/h2/fault_cell.py drives one cell per run. One proxy
// serves every cell; after each, the connections gauge is back where it was, every stream
// ended, a GOAWAY carries the expected code, a fresh request gets 202, and the upstream
// recorded whole only what was sent whole.
#include <nghttp2/nghttp2.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/integration/client_fault_matrix.h"
#include "tests/integration/harness.h"
#include "tests/integration/ops_support.h"

namespace proxy::integration::matrix {
namespace {

using ops::eventually;
using ops::JsonValue;
using ops::OpsStack;

// RFC 9113 §7 error codes, as nghttp2 names them.
constexpr int kNoError = NGHTTP2_NO_ERROR;
constexpr int kProtocolError = NGHTTP2_PROTOCOL_ERROR;
constexpr int kFlowControlError = NGHTTP2_FLOW_CONTROL_ERROR;
constexpr int kStreamClosed = NGHTTP2_STREAM_CLOSED;
constexpr int kCancel = NGHTTP2_CANCEL;
constexpr int kNone = -1;  // no such frame may come
constexpr int kAny = -2;   // racy (the client reset the connection): not checked
const char* const kUnchecked = "*";

struct Cell {
  const char* state;   // fault_cell.py's STATE
  const char* fault;   // and FAULT
  int goaway;          // the code of the GOAWAY the proxy sends, kNone or kAny
  int reset;           // the code of its RST_STREAM on stream 1, kNone or kAny
  const char* status;  // the :status answering stream 1, "" for none, kUnchecked
  Upstream upstream;
};

bool settled(OpsStack& stack, double baseline) {
  return eventually(
      [&] { return ops::metric(stack.metrics(), "apm_tls_proxy_connections_active") == baseline; },
      Millis{8000});
}

TEST_CASE("HTTP/2 client faults in every stream state leave nothing behind",
          "[integration][faults][matrix][http2]") {
  using U = Upstream;
  const std::vector<Cell> cells = {
      {"preface", "fin", kNone, kNone, "", U::kNothing},
      {"preface", "rst", kAny, kAny, "", U::kNothing},
      {"preface", "stall", kNoError, kNone, "", U::kNothing},  // request_header_timeout
      {"preface", "lie", kProtocolError, kNone, "", U::kNothing},
      {"headers", "fin", kNone, kNone, "", U::kNothing},
      {"headers", "rst", kAny, kAny, "", U::kNothing},
      {"headers", "rst-stream", kProtocolError, kNone, "", U::kNothing},  // RFC 9113 §6.10
      {"headers", "stall", kNoError, kNone, "", U::kNothing},
      {"headers", "lie", kProtocolError, kNone, "", U::kNothing},
      {"data", "fin", kNone, kNone, "", U::kNeverComplete},
      {"data", "rst", kAny, kAny, "", U::kNeverComplete},
      {"data", "rst-stream", kNoError, kNone, "", U::kNeverComplete},  // then idle_timeout
      // read_timeout: 408, then "stop sending" (RST_STREAM NO_ERROR, RFC 9113 §8.1)
      {"data", "stall", kNone, kNoError, "408", U::kNeverComplete},
      {"data", "lie", kNone, kProtocolError, "", U::kNeverComplete},  // RFC 9113 §8.1.1
      {"waiting", "fin", kNone, kNone, "", U::kCompleteOnce},
      {"waiting", "rst", kAny, kAny, "", U::kCompleteOnce},
      {"waiting", "rst-stream", kNoError, kNone, "", U::kCompleteOnce},
      {"waiting", "stall", kNone, kNone, "202", U::kCompleteOnce},  // past read_timeout
      // A stream error nghttp2 makes a connection error, as RFC 9113 §5.4 allows.
      {"waiting", "lie", kStreamClosed, kNone, kUnchecked, U::kCompleteOnce},
      {"streaming", "fin", kNone, kNone, "200", U::kCompleteOnce},
      {"streaming", "rst", kAny, kAny, "200", U::kCompleteOnce},
      {"streaming", "rst-stream", kNoError, kNone, "200", U::kCompleteOnce},
      {"streaming", "stall", kNone, kCancel, "200", U::kCompleteOnce},  // write_timeout
      {"streaming", "lie", kNone, kFlowControlError, "200", U::kCompleteOnce},
      {"idle", "fin", kNone, kNone, "202", U::kCompleteOnce},
      {"idle", "rst", kAny, kAny, "202", U::kCompleteOnce},
      {"idle", "rst-stream", kProtocolError, kNone, "202", U::kCompleteOnce},  // an idle stream
      {"idle", "stall", kNoError, kNone, "202", U::kCompleteOnce},             // idle_timeout
      {"idle", "lie", kProtocolError, kNone, "202", U::kCompleteOnce},
  };
  OpsStack stack(shortTimeouts());
  const std::string ca = stack.dir.write("ca.crt", stack.pki.caPem());
  const std::string script = std::string(PROXY_SOURCE_DIR) + "/tests/integration/h2/fault_cell.py";
  const double baseline =
      ops::metric(stack.metrics(), "apm_tls_proxy_connections_active").value_or(-1);
  REQUIRE(baseline == 0);
  for (const Cell& cell : cells) {
    const std::string name = std::string("h2-") + cell.state + "-" + cell.fault;
    INFO("cell " << name);
    RunResult run = runToCompletion({"/usr/bin/python3", script, std::to_string(stack.port()), ca,
                                     stack.dir.file("demo.jsonl"), cell.state, cell.fault, name},
                                    stack.dir, name, Millis{30000});
    INFO("fault_cell.py: exit " << run.exit_code << "\n" << run.out << run.err);
    REQUIRE(run.exit_code == 0);
    std::optional<JsonValue> report = ops::parseJson(run.out);
    REQUIRE(report);
    // The cell's state was reached before the fault: a response under way, or answered.
    const JsonValue& reached = report->get("reached");
    if (std::string(cell.state) == "streaming") CHECK(reached.get("body_bytes").number > 0);
    if (std::string(cell.state) == "idle") CHECK(reached.get("status").string == "202");
    CHECK(settled(stack, baseline));  // nothing leaks, nothing hangs past its deadline
    REQUIRE(stack.process().running());

    const JsonValue& goaways = report->get("goaways");
    if (cell.goaway == kNone) CHECK(goaways.array.empty());
    if (cell.goaway >= 0) {
      REQUIRE(goaways.array.size() >= 1);
      for (const JsonValue& g : goaways.array) CHECK(g.array.at(1).number == cell.goaway);
      // The connection ends after an error GOAWAY (RFC 9113 §5.4.1), within the proxy's
      // 1 s deadlines; fault_cell.py waits 8 s for it.
      CHECK(report->get("closed").boolean);
    }
    const JsonValue& resets = report->get("resets");
    if (cell.reset == kNone) CHECK_FALSE(resets.has("1"));
    if (cell.reset >= 0) CHECK((resets.has("1") && resets.get("1").number == cell.reset));
    const JsonValue& responses = report->get("responses");
    std::string status = responses.has("1") ? responses.get("1").get("status").string : "";
    const std::string fault = cell.fault;
    if (cell.status != kUnchecked) CHECK(status == cell.status);
    // No 2xx for a request the upstream did not get whole.
    if (cell.upstream != U::kCompleteOnce) CHECK(status.rfind('2', 0) != 0);
    // Every stream ends: answered, reset, or the connection closed (unless the client
    // ended it first).
    if (fault != "rst" && (fault != "rst-stream" || std::string(cell.state) == "idle")) {
      CHECK((report->get("closed").boolean || resets.has("1") ||
             (responses.has("1") && responses.get("1").get("ended").boolean)));
    }

    testsupport::TlsClient fresh(stack.port(), stack.client());
    const std::string after = name + "-after";
    CHECK(
        fresh
            .exchange(httpRequest("POST", "/intake/v2/events", "X-Cell: " + after + "\r\n", "{}\n"))
            .status == 202);
    CHECK(eventually([&] { return recordsOf(stack.demo, after).size() == 1; }, Millis{5000}));
    checkUpstream(stack.demo, name, cell.upstream);
  }
  CHECK(settled(stack, baseline));
  for (const Cell& cell : cells) {
    const std::string name = std::string("h2-") + cell.state + "-" + cell.fault;
    INFO("cell " << name << ", final look");
    checkUpstream(stack.demo, name, cell.upstream);
  }
  CHECK(stack.process().stop(Millis{10000}) == 0);
}

}  // namespace
}  // namespace proxy::integration::matrix
