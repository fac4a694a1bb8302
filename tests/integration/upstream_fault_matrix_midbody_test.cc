// The upstream-fault matrix while the request body is still streaming, and the idle-pool
// states seen from an HTTP/2 client:
// - a gRPC call over TLS h2 (h2/h2peer.py grpc-pause) sends HEADERS and half a message, then
//   pauses; the h2c upstream (h2/upstream_cell.py, midbody-* cells) resets the stream with
//   CANCEL, INTERNAL_ERROR or REFUSED_STREAM, sends a GOAWAY covering the call or not, closes
//   or resets the connection, or answers whole with trailers before the body's end;
// - an HTTP/1.1 client pauses a chunked POST after its first chunk while the HTTP/1.1
//   upstream closes, resets or answers early;
// - the HTTP/1.1 pool's idle cells (upstream_fault_matrix_idle.h) with both requests on one
//   HTTP/2 connection (h2peer.py sequence).
// Each call ends as docs/http.md says, within the pause when the client has nothing left to
// say, never processed twice; gauges settle and fresh calls are served.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/ops_support.h"
#include "tests/integration/scripted_upstream.h"
#include "tests/integration/upstream_fault_matrix.h"
#include "tests/integration/upstream_fault_matrix_idle.h"

namespace proxy::integration::upmatrix {
namespace {

const std::string kPeer = std::string(PROXY_SOURCE_DIR) + "/tests/integration/h2/h2peer.py";

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

double gauge(OpsStack& stack, const std::string& series) {
  return ops::metric(stack.metrics(), series).value_or(-1);
}

// Runs h2peer.py with `argv` (after the port) and `--hold HOLD`: at its checkpoint, `held()`
// runs while the client still holds its connection; then the client's report.
JsonValue runHeld(OpsStack& stack, const std::string& name, std::vector<std::string> argv,
                  const std::function<void()>& held) {
  const std::string hold = stack.dir.file(name + ".hold");
  argv.insert(argv.begin(), {"/usr/bin/python3", kPeer, std::to_string(stack.port())});
  argv.insert(argv.end(), {"--hold", hold});
  Process peer(argv, stack.dir.file(name));
  const bool reached =
      eventually([&] { return exists(hold + ".1") || !peer.running(); }, Millis{20000});
  INFO("h2peer.py " << name << ": " << peer.stdoutText() << peer.stderrText());
  REQUIRE(reached);
  REQUIRE(exists(hold + ".1"));
  held();
  stack.dir.write(name + ".hold.1.go", "");
  REQUIRE(peer.wait(Millis{15000}) == std::optional<int>(0));
  std::optional<JsonValue> report = ops::parseJson(ops::lines(peer.stdoutText()).at(0));
  REQUIRE(report);
  return *report;
}

// ---- gRPC calls paused mid-body, h2c upstream ----

struct MidbodyCell {
  const char* name;  // upstream_cell.py's midbody-FAULT, also the call's x-cell
  int grpc;          // the grpc-status the client reads
  bool paused_end;   // the call ends while its body is paused (else once its end was sent)
  int processed;     // calls of the cell the upstream took as processed (never two)
  int streams;       // streams the upstream saw of the call (a resend is one more)
  int retries;       // growth of upstream_retries_total
};

int streamsOf(H2cUpstream& upstream, const std::string& cell) {
  int n = 0;
  for (const JsonValue& r : upstream.records()) {
    n += r.get("event").string == "stream" && r.get("cell").string == cell ? 1 : 0;
  }
  return n;
}

// Runs `cells` against one proxy in front of one scripted h2c upstream, the proxy's
// upstream deadlines at 1 s but stream_idle_timeout at `stream_idle`; `keep_open`: the client
// leaves a call answered mid-body half open instead of resetting it as gRPC clients do.
void runMidbody(const std::vector<MidbodyCell>& cells, const char* stream_idle,
                bool keep_open = false) {
  H2cUpstream upstream;
  ops::OpsOptions options = shortUpstreamTimeouts(upstream.port());
  options.config.upstream["stream_idle_timeout"] = stream_idle;
  OpsStack stack(options);
  const std::string ca = stack.dir.write("ca.crt", stack.pki.caPem());
  for (const MidbodyCell& cell : cells) {
    INFO("cell " << cell.name);
    const std::map<std::string, double> before = stack.metrics();
    std::vector<std::string> args = {
        "grpc-pause", "--tls", ca, "--header", std::string("x-cell=") + cell.name,
        "--seconds",  "8"};
    if (keep_open) args.emplace_back("--keep-open");
    // The pause (2.5 s) is longer than the 1 s response_timeout and idle_timeout: a call
    // that ends in it ended on the upstream's fault or on a deadline, told by its status.
    JsonValue report = runHeld(stack, cell.name, args, [&] {
      // The client's connection is still open; its streams and upstream work are done.
      double streams = -1, upstream_active = -1;
      const bool settled = eventually(
          [&] {
            streams = gauge(stack, "apm_tls_proxy_http2_streams_active");
            upstream_active = gauge(stack, "apm_tls_proxy_upstream_connections{state=\"active\"}");
            return streams == 0 && upstream_active == 0;
          },
          Millis{5000});
      INFO("held: streams " << streams << ", upstream active " << upstream_active);
      CHECK(settled);
      CHECK(gauge(stack, "apm_tls_proxy_connections_active") == 1);
    });
    const JsonValue& one = report.get("responses").get("1");
    INFO("report: paused_end " << report.get("paused_end").boolean << " at "
                               << report.get("end_seconds").number << " s, grpc-message "
                               << one.get("headers").get("grpc-message").string);
    CHECK(report.get("paused_end").boolean == cell.paused_end);
    CHECK(grpcStatus(report) == cell.grpc);
    CHECK(one.get("ended").boolean);
    // At most RST_STREAM NO_ERROR after the whole answer: "stop sending" (RFC 9113 §8.1).
    CHECK((!report.get("resets").has("1") || report.get("resets").get("1").number == 0));
    CHECK_FALSE(report.get("closed").boolean);  // one stream's failure, not the connection's
    // The same connection serves the next call.
    CHECK(report.get("responses").get("3").get("trailers").get("grpc-status").string == "0");
    checkSettled(stack);
    REQUIRE(stack.process().running());
    const std::map<std::string, double> after = stack.metrics();
    auto grew = [&](const std::string& series) {
      return ops::metric(after, series).value_or(0) - ops::metric(before, series).value_or(0);
    };
    CHECK(upstream.processed(cell.name) == cell.processed);
    CHECK(streamsOf(upstream, cell.name) == cell.streams);
    CHECK(grew("apm_tls_proxy_upstream_retries_total") == cell.retries);
    CHECK(upstream.processed(std::string(cell.name) + "-same-after") == 1);
    checkFreshCall(stack, upstream, ca, cell.name);
  }
  // The connections the upstream let go with a GOAWAY end too.
  finishH2cTable(stack, upstream);
}

TEST_CASE("h2c upstream faults while a gRPC call's body is paused end the call at once",
          "[integration][faults][matrix][upstream][http2]") {
  runMidbody(
      {
          {"pause-control", 0, false, 1, 1, 0},  // no fault: the pause alone
          // Resets of a call the upstream has not read whole: gRPC's mapping (docs/http.md).
          {"midbody-rst-stream-8", 1, true, 0, 1, 0},   // CANCEL
          {"midbody-rst-stream-2", 13, true, 0, 1, 0},  // INTERNAL_ERROR
          // REFUSED_STREAM, or above a GOAWAY's last-stream-id: not processed, so the part
          // sent is resent once on a new stream; the rest follows when the client sends it.
          {"midbody-rst-stream-7", 0, false, 1, 2, 1},
          {"midbody-goaway-below", 0, false, 1, 2, 1},
          {"midbody-goaway-covered", 0, false, 1, 1, 0},  // the call goes on; answered
          // The connection lost with the call half sent: 14, never resent.
          {"midbody-goaway-covered-close", 14, true, 0, 1, 0},
          {"midbody-close", 14, true, 0, 1, 0},
          {"midbody-rst", 14, true, 0, 1, 0},
          // The server ends the call before its request ended: its status, whole.
          {"midbody-early", 3, true, 1, 1, 0},
          {"midbody-early-rst-stream-0", 3, true, 1, 1, 0},  // then "stop sending", §8.1
      },
      // Longer than the pause; the next test case has it shorter.
      "\"10s\"");
}

// With stream_idle_timeout at 1 s, a gRPC call whose client pauses its body for 2.5 s in
// front of a healthy h2c upstream is answered 0 once the client ends its body: the
// upstream owes nothing while the client is silent (H2Stream::checkDeadlines, as the
// HTTP/1.1 pool's upstream_owes), so server.read_timeout bounds that silence instead.
// (It used to end after 1 s with grpc-status 4, counted as an upstream timeout.)
TEST_CASE("A client's pause mid-body is not an h2c upstream timeout",
          "[integration][faults][matrix][upstream][http2]") {
  runMidbody({{"pause-control", 0, false, 1, 1, 0}}, "\"1s\"");
}

// A call the proxy or the upstream ended while its client was still sending (a local
// grpc-status 14, an early answer) is closed by the proxy, with RST_STREAM NO_ERROR after
// the whole answer (RFC 9113 §8.1: "stop sending"), even for a client that would keep the
// stream open: it no longer holds one of the client's concurrent streams with no deadline.
TEST_CASE("A call ended while its client still sends does not stay open",
          "[integration][faults][matrix][upstream][http2]") {
  runMidbody({{"midbody-close", 14, true, 0, 1, 0}, {"midbody-early", 3, true, 1, 1, 0}}, "\"10s\"",
             /*keep_open=*/true);
}

// ---- an HTTP/1.1 chunked POST paused mid-body, HTTP/1.1 upstream ----

// The upstream reads the request head and its first chunk ("hello"), then `then(fd)`.
std::function<void(int)> afterFirstChunk(std::function<void(int)> then) {
  return [then](int fd) {
    if (takeHead(fd) == 0) return;
    std::string body;
    char buf[256];
    for (pollfd p{fd, POLLIN, 0};
         body.find("hello") == std::string::npos && ::poll(&p, 1, 5000) > 0;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      body.append(buf, static_cast<size_t>(n));
    }
    then(fd);
  };
}

// A FIN after `bytes`, then reading until the proxy closes: never a reset.
std::function<void(int)> finAfter(std::string bytes) {
  return [bytes](int fd) {
    Up::writeAll(fd, bytes);
    ::shutdown(fd, SHUT_WR);
    Up::waitPeerClose(fd, Millis{8000});
  };
}

void drivePausedChunked(OpsStack& stack, const Cell& cell, const std::string&) {
  ops::TlsClient c(stack.port(), stack.client());
  ops::requireConnect(c);
  REQUIRE(c.send("POST /intake/v2/events HTTP/1.1\r\nHost: apm\r\nX-Cell: " +
                 std::string(cell.name) + "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"));
  const bool control = std::string(cell.name) == "pause-control-chunked";
  if (control) {
    // No fault: 2.5 s of the client's silence (the upstream deadlines are 1 s) end nothing.
    Response early = c.readResponse(Millis{2500});
    CHECK(early.status == 0);
    CHECK_FALSE(early.closed);
    REQUIRE(c.send("0\r\n\r\n"));
  }
  // The body paused: the answer must come without the rest of it.
  Response r = c.readResponse(Millis{5000});
  checkOutcome(cell.outcome, cell.status, r);
  if (cell.status == 413) CHECK(r.body == R"({"error":"request body too large"})");
  // The request can never end now, so the connection must not wait for it.
  if (!control) CHECK(c.waitClosed(Millis{5000}));
}

TEST_CASE("HTTP/1.1 upstream faults while a chunked request body is paused answer at once",
          "[integration][faults][matrix][upstream]") {
  const std::string early =
      "HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nConnection: "
      "close\r\nContent-Length: 34\r\n\r\n{\"error\":\"request body too large\"}";
  const std::vector<Cell> table = {
      {"pause-control-chunked", afterRequest([](int fd) { Up::writeAll(fd, kOkClose); }), 202,
       Outcome::kWhole, 1, "", 0},
      {"midbody-chunked-fin", afterFirstChunk(finAfter("")), 502, Outcome::kLocal, 1, "", 0},
      {"midbody-chunked-rst", afterFirstChunk([](int fd) { Up::reset(fd); }), 502, Outcome::kLocal,
       1, "", 0},
      // APM Server's answer to a body too large, before reading it all.
      {"midbody-chunked-early", afterFirstChunk(finAfter(early)), 413, Outcome::kWhole, 1, "", 0},
  };
  ScriptedUpstream upstream([](int fd, size_t) { serve(fd); });
  runTable(table, upstream, drivePausedChunked);
}

// ---- the HTTP/1.1 pool's idle cells, from an HTTP/2 client ----

// Request 1 answered, then (the checkpoint) the upstream's idle fault, then request 2 on the
// same HTTP/2 connection.
void driveHttp2Idle(OpsStack& stack, const Cell& cell, const std::string& ca) {
  const std::string name = cell.name;
  JsonValue report = runHeld(
      stack, name,
      {"sequence", "--count", "2", "--tls", ca, "--path", "/intake/v2/events", "--header",
       "x-cell=" + name, "--seconds", "6"},
      [&] {
        if (name.find("-race-") != std::string::npos) return;  // the close races request 2
        // The proxy notices the idle connection's end (or ends it: idle_timeout) by itself.
        CHECK(eventually(
            [&] { return gauge(stack, "apm_tls_proxy_upstream_connections{state=\"idle\"}") == 0; },
            Millis{5000}));
      });
  const JsonValue& one = report.get("responses").get("1");
  const JsonValue& three = report.get("responses").get("3");
  CHECK(one.get("status").string == std::to_string(cell.status));
  CHECK(one.get("ended").boolean);
  // Its own answer, never a stray one; the proxy's JSON 502 where it may have been processed.
  CHECK(three.get("status").string == std::to_string(cell.second));
  CHECK(three.get("ended").boolean);
  if (cell.second != 202)
    CHECK(three.get("headers").get("content-type").string == "application/json");
  CHECK_FALSE(report.get("resets").has("3"));
  if (name == "h2-idle-stall") {  // the proxy ended it: idle_timeout
    CHECK(eventually([] { return book.proxy_closed_idle.load(); }, Millis{5000}));
  }
}

// The idle cells named h2-CELL (h2-CELL-N for copy N), kept when `keep(CELL)`; `names` holds
// the names for as long as the table lives.
std::vector<Cell> http2Cells(std::deque<std::string>& names, bool (*keep)(const std::string&),
                             int copies = 1) {
  std::vector<Cell> table;
  for (int i = 0; i < copies; ++i) {
    for (Cell cell : idleCells()) {
      if (!keep(cell.name)) continue;
      names.push_back("h2-" + std::string(cell.name) + (copies > 1 ? "-" + std::to_string(i) : ""));
      cell.name = names.back().c_str();
      table.push_back(cell);
    }
  }
  return table;
}

// The cells whose request 2 the upstream never read, so that it must be replayed.
bool isReplayRace(const std::string& name) {
  return name == "idle-race-rst" || name == "idle-race-fin-rst";
}

TEST_CASE(
    "HTTP/1.1 upstream faults on an idle pooled connection reach HTTP/2 clients as documented",
    "[integration][faults][matrix][upstream][http2]") {
  std::deque<std::string> names;
  // idle-race-rst and idle-race-fin-rst run four times each in the next test case.
  std::vector<Cell> table =
      http2Cells(names, [](const std::string& n) { return !isReplayRace(n); });
  ScriptedUpstream upstream([](int fd, size_t) { serve(fd); });
  runTable(table, upstream, driveHttp2Idle);
}

// An idle pooled connection that the upstream resets (or closes, then resets) as request
// 2 arrives, unread, gets request 2 replayed from an HTTP/2 client too, as docs/http.md's
// Retries promise. The head and the body go up in two writes, so the reset may fail the
// second write rather than a read: UpstreamConnection::afterBrokenWrite judges it as a
// reset read. Four runs per cell (it used to fail about one run in three with 502).
TEST_CASE("An idle connection reset as an HTTP/2 client's request arrives replays it",
          "[integration][faults][matrix][upstream][http2]") {
  std::deque<std::string> names;
  std::vector<Cell> table = http2Cells(names, isReplayRace, 4);
  ScriptedUpstream upstream([](int fd, size_t) { serve(fd); });
  runTable(table, upstream, driveHttp2Idle);
}

}  // namespace
}  // namespace proxy::integration::upmatrix
