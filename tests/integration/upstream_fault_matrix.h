// What the upstream-fault matrix tests share (upstream_fault_matrix_test.cc for the
// HTTP/1.1 upstream, upstream_fault_matrix_h2c_test.cc for h2c): the cells, the scripted upstreams'
// per-cell behaviour and request counts, the client drivers, the checks of what the client saw, and
// the loops that run a table against one proxy with short upstream deadlines. Header only; Catch2
// assertions.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/ops_support.h"
#include "tests/integration/scripted_upstream.h"

namespace proxy::integration::upmatrix {

using ops::eventually;
using ops::OpsStack;
using Up = ScriptedUpstream;

// What the client must see.
enum class Outcome {
  kLocal,  // the proxy's own JSON error, `status`, Connection: close, before any byte
  kCut,    // the upstream's head (`status`), then the connection closes short of the end
  kReset,  // the connection reset, the head (`status`) written before it or not: never whole
  kWhole,  // the upstream's response, whole (`status`)
};

// How the client drives a cell.
enum class Drive {
  kRequest,    // one request, its response read whole (or until the close)
  kUpload,     // a 64 MiB body pushed until the proxy stops taking it
  kHeadFirst,  // the upstream's fault waits until the client has the response head
  kHttp2,      // one request from an HTTP/2 client (h2peer.py)
};

struct Cell {
  const char* name;  // also the request's X-Cell value
  // Runs on each upstream connection accepted while the cell is current.
  std::function<void(int fd)> upstream;
  int status;  // the status the client reads first
  Outcome outcome;
  int heads;            // requests the upstream read, per cell (never a duplicate)
  const char* counter;  // a counter that must have moved, or ""
  int retries;          // expected growth of upstream_retries_total; -1: 0 or 1
  int second = 0;       // status of a second request on the same client connection, or 0
  Drive drive = Drive::kRequest;
};

inline const std::string kOk = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
inline const std::string kOkClose =
    "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
inline const std::string kHeadCl = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789";
inline const std::string kHeadChunked =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01234";

// What the scripted upstream read, per X-Cell value; the cell the test is driving.
struct Book {
  std::mutex mu;
  std::map<std::string, int> heads;
  std::atomic<const Cell*> current{nullptr};
  std::atomic<bool> proxy_closed_idle{false};
  std::atomic<bool> client_has_head{false};
};
inline Book book;

// The X-Cell value of a request head ("" without one).
inline std::string cellOf(const std::string& head) {
  std::string lower = head;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  size_t at = lower.find("\r\nx-cell: ");
  if (at == std::string::npos) return "";
  return head.substr(at + 10, lower.find("\r\n", at + 10) - at - 10);
}

inline int count(const std::string& head) {
  std::lock_guard<std::mutex> lock(book.mu);
  return ++book.heads[cellOf(head)];
}

inline int headsOf(const std::string& name) {
  std::lock_guard<std::mutex> lock(book.mu);
  return book.heads[name];
}

// Reads a whole request and counts it; 0 when none came.
inline int take(int fd, std::string& buf) {
  std::string req = Up::readRequest(fd, buf, Millis{5000});
  return req.empty() ? 0 : count(req);
}

// Reads only a request head (its body may never be read) and counts it.
inline int takeHead(int fd) {
  std::string buf;
  auto deadline = std::chrono::steady_clock::now() + Millis{5000};
  while (buf.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char c;  // byte by byte: nothing of the body is read
    if (::recv(fd, &c, 1, 0) != 1) return 0;
    buf += c;
  }
  return buf.find("\r\n\r\n") == std::string::npos ? 0 : count(buf);
}

// A cell's upstream: after one request read, `then(fd)`; later requests are answered 202.
inline std::function<void(int)> afterRequest(std::function<void(int)> then) {
  return [then](int fd) {
    std::string buf;
    int n = take(fd, buf);
    if (n == 1) return then(fd);
    if (n > 1) Up::writeAll(fd, kOkClose);
  };
}

// A keep-alive cell: request 1 answered 202 on this connection, then `then(fd)`.
inline std::function<void(int)> idleThen(std::function<void(int)> then) {
  return [then](int fd) {
    std::string buf;
    int n = take(fd, buf);
    if (n == 1 && Up::writeAll(fd, kOk)) return then(fd);
    if (n > 1) Up::writeAll(fd, kOkClose);
  };
}

// The ScriptedUpstream script of every table: the current cell's upstream, or a plain 202.
inline void serve(int fd) {
  const Cell* cell = book.current.load();
  if (cell == nullptr) {  // the check after a cell: served, then closed
    std::string buf;
    if (take(fd, buf) > 0) Up::writeAll(fd, kOkClose);
    return;
  }
  cell->upstream(fd);
}

// The upstream's fault once the client holds the response head (bounded wait).
inline std::function<void(int)> onceClientHasHead(std::function<void(int)> then) {
  return [then](int fd) {
    eventually([] { return book.client_has_head.load(); }, Millis{5000});
    then(fd);
  };
}

inline std::string request(const Cell& cell) {
  return httpRequest("POST", "/intake/v2/events", "X-Cell: " + std::string(cell.name) + "\r\n",
                     "{}\n");
}

inline void checkOutcome(Outcome outcome, int status, const Response& r) {
  INFO("client read status " << r.status << ", complete " << r.complete << ", closed " << r.closed
                             << ", body " << r.body.size() << " bytes");
  switch (outcome) {
    case Outcome::kLocal:
      CHECK(r.status == status);
      CHECK(r.complete);
      CHECK(r.header("Content-Type") == std::optional<std::string>("application/json"));
      CHECK(r.header("Connection") == std::optional<std::string>("close"));
      CHECK(r.body.find("\"error\"") != std::string::npos);
      break;
    case Outcome::kCut:
      CHECK(r.status == status);
      CHECK_FALSE(r.complete);  // a cut body must never look complete
      CHECK(r.closed);
      break;
    case Outcome::kReset:
      CHECK((r.status == 0 || r.status == status));
      CHECK_FALSE(r.complete);
      CHECK(r.closed);
      break;
    case Outcome::kWhole:
      CHECK(r.status == status);
      CHECK(r.complete);
      break;
  }
}

// A 64 MiB body pushed until the proxy stops taking it, then the answer.
inline Response upload(ops::TlsClient& c, const Cell& cell) {
  const size_t size = 64u << 20;
  REQUIRE(
      c.send("POST /intake/v2/events HTTP/1.1\r\nHost: apm\r\nX-Cell: " + std::string(cell.name) +
             "\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n"));
  const std::string piece(64 << 10, 'x');
  for (size_t sent = 0; sent < size && c.send(piece, Millis{300}); sent += piece.size()) {
  }
  return c.readResponse(Millis{8000});
}

// Reads the response head, lets the upstream fail, then reads on until the end.
inline Response headFirst(ops::TlsClient& c, const Cell& cell) {
  REQUIRE(c.send(request(cell)));
  testsupport::Http1Reader reader;
  CHECK(eventually([&] { return c.readInto(reader, Millis{100}) || reader.response().status != 0; },
                   Millis{5000}));
  book.client_has_head = true;
  if (!reader.done()) c.readInto(reader, Millis{8000});
  Response r = reader.response();
  r.complete = reader.done();
  r.closed = c.waitClosed(Millis{5000});
  return r;
}

inline void driveHttp1(OpsStack& stack, const Cell& cell) {
  ops::TlsClient c(stack.port(), stack.client());
  ops::requireConnect(c);
  const std::string name = cell.name;
  Response r = cell.drive == Drive::kUpload      ? upload(c, cell)
               : cell.drive == Drive::kHeadFirst ? headFirst(c, cell)
                                                 : c.request(request(cell), Millis{8000});
  checkOutcome(cell.outcome, cell.status, r);
  if (name == "body-lie-unsolicited") CHECK(r.body == "hello");
  if (name == "http10-fin") CHECK(r.body == "abc");
  if (cell.second == 0) {
    if (cell.outcome != Outcome::kWhole) CHECK(c.waitClosed(Millis{5000}));
    return;
  }
  if (name == "idle-fin" || name == "idle-rst" || name == "idle-stall" || name == "idle-lie") {
    // The proxy notices the idle connection's end (or ends it: idle_timeout) by itself.
    CHECK(eventually(
        [&] {
          return ops::metric(stack.metrics(),
                             "apm_tls_proxy_upstream_connections{state=\"idle\"}") == 0;
        },
        Millis{5000}));
  }
  // Its own answer, never the stray one.
  Response again = c.request(request(cell), Millis{8000});
  checkOutcome(cell.second == 202 ? Outcome::kWhole : Outcome::kLocal, cell.second, again);
}

inline void driveHttp2(OpsStack& stack, const Cell& cell, const std::string& ca) {
  const std::string script = std::string(PROXY_SOURCE_DIR) + "/tests/integration/h2/h2peer.py";
  RunResult run = runToCompletion(
      {"/usr/bin/python3", script, std::to_string(stack.port()), "get", "--tls", ca, "--path",
       "/intake/v2/events", "--header", std::string("x-cell=") + cell.name, "--seconds", "6"},
      stack.dir, cell.name, Millis{15000});
  INFO("h2peer.py: exit " << run.exit_code << "\n" << run.out << run.err);
  REQUIRE(run.exit_code == 0);
  std::optional<ops::JsonValue> report = ops::parseJson(run.out);
  REQUIRE(report);
  const ops::JsonValue& one = report->get("responses").get("1");
  if (cell.outcome != Outcome::kReset)
    CHECK(one.get("status").string == std::to_string(cell.status));
  if (cell.outcome == Outcome::kCut || cell.outcome == Outcome::kReset) {
    // RST_STREAM INTERNAL_ERROR, never END_STREAM.
    CHECK_FALSE(one.get("ended").boolean);
    CHECK((report->get("resets").has("1") && report->get("resets").get("1").number == 2));
  } else {
    CHECK(one.get("ended").boolean);
    CHECK(one.get("headers").get("content-type").string == "application/json");
  }
}

// Every gauge back at its baseline: nothing leaks, nothing hangs past its deadline.
inline void checkSettled(OpsStack& stack) {
  std::map<std::string, double> m;
  bool settled = eventually(
      [&] {
        m = stack.metrics();
        return ops::metric(m, "apm_tls_proxy_connections_active") == 0 &&
               ops::metric(m, "apm_tls_proxy_http2_streams_active") == 0 &&
               ops::metric(m, "apm_tls_proxy_upstream_connections{state=\"active\"}") == 0 &&
               ops::metric(m, "apm_tls_proxy_upstream_connections{state=\"idle\"}") == 0;
      },
      Millis{8000});
  INFO("connections_active "
       << ops::metric(m, "apm_tls_proxy_connections_active").value_or(-1) << ", upstream active "
       << ops::metric(m, "apm_tls_proxy_upstream_connections{state=\"active\"}").value_or(-1)
       << ", idle "
       << ops::metric(m, "apm_tls_proxy_upstream_connections{state=\"idle\"}").value_or(-1));
  CHECK(settled);
}

inline ops::OpsOptions shortUpstreamTimeouts(uint16_t upstream_port) {
  ops::OpsOptions o;
  o.upstream_port = upstream_port;
  for (const char* key :
       {"connect_timeout", "response_timeout", "stream_idle_timeout", "idle_timeout"}) {
    o.config.upstream[key] = "\"1s\"";
  }
  return o;
}

// A table's own client driver (upstream_fault_matrix_midbody_test.cc), in place of Drive's.
using Driver = std::function<void(OpsStack& stack, const Cell& cell, const std::string& ca)>;

// Runs `table` against one proxy in front of `upstream` (which must call serve()): each cell,
// driven by `drive` or as its Drive says, then its checks, then a fresh request.
inline void runTable(const std::vector<Cell>& table, ScriptedUpstream& upstream,
                     const Driver& drive = nullptr) {
  OpsStack stack(shortUpstreamTimeouts(upstream.port()));
  const std::string ca = stack.dir.write("ca.crt", stack.pki.caPem());
  checkSettled(stack);
  for (const Cell& cell : table) {
    INFO("cell " << cell.name);
    const std::map<std::string, double> before = stack.metrics();
    book.current = &cell;
    book.client_has_head = false;
    if (drive) {
      drive(stack, cell, ca);
    } else if (cell.drive == Drive::kHttp2) {
      driveHttp2(stack, cell, ca);
    } else {
      driveHttp1(stack, cell);
    }
    checkSettled(stack);
    book.current = nullptr;
    REQUIRE(stack.process().running());
    const std::map<std::string, double> after = stack.metrics();
    auto grew = [&](const std::string& series) {
      return ops::metric(after, series).value_or(0) - ops::metric(before, series).value_or(0);
    };
    // Never twice what the upstream may have processed; a replay only where allowed.
    CHECK(headsOf(cell.name) == cell.heads);
    const double retries = grew("apm_tls_proxy_upstream_retries_total");
    if (cell.retries >= 0) CHECK(retries == cell.retries);
    CHECK(retries <= 1);
    if (*cell.counter != '\0') CHECK(grew(cell.counter) >= 1);
    if (cell.outcome == Outcome::kLocal) CHECK(grew("apm_tls_proxy_local_responses_total") >= 1);
    if (std::string(cell.name) == "idle-stall") {  // the proxy ended it: idle_timeout
      CHECK(eventually([] { return book.proxy_closed_idle.load(); }, Millis{5000}));
    }
    // A fresh client is served.
    ops::TlsClient fresh(stack.port(), stack.client());
    const std::string next = std::string(cell.name) + "-after";
    CHECK(
        fresh.exchange(httpRequest("POST", "/intake/v2/events", "X-Cell: " + next + "\r\n", "{}\n"))
            .status == 202);
    CHECK(headsOf(next) == 1);
  }
  checkSettled(stack);
  CHECK(stack.process().stop(Millis{10000}) == 0);
}

// ---- the h2c upstream (upstream_fault_matrix_h2c_test.cc) ----

using ops::JsonValue;

inline constexpr int kGrpcCut = -1;  // RST_STREAM INTERNAL_ERROR, never a grpc-status

struct H2cCell {
  const char* name;          // upstream_cell.py's cell (STATE-FAULT), also the call's x-cell
  const char* mode;          // a connection fault for every connection accepted meanwhile, or ""
  int grpc;                  // the grpc-status the client reads, or kGrpcCut
  int processed;             // calls of the cell the upstream took (never more than one)
  const char* counter = "";  // a counter that must have moved, or ""
  int retries = 0;           // growth of upstream_retries_total
  int max_connects = 0;      // upstream connections the call may open, or 0 (unchecked)
};

inline const char* const kTimeouts = "apm_tls_proxy_upstream_timeouts_total";
inline const char* const kConnectFailures = "apm_tls_proxy_upstream_connect_failures_total";

// The scripted h2c upstream, its records and the file naming its connection fault.
class H2cUpstream {
 public:
  H2cUpstream()
      : process_({"/usr/bin/python3",
                  std::string(PROXY_SOURCE_DIR) + "/tests/integration/h2/upstream_cell.py",
                  dir_.file("ready"), dir_.file("records.jsonl"), dir_.file("mode")},
                 dir_.file("upstream")) {
    port_ =
        static_cast<uint16_t>(std::stoi(waitForReadyFile(process_, dir_.file("ready")).at("port")));
  }
  uint16_t port() const { return port_; }
  Process& process() { return process_; }
  void setMode(const std::string& mode) { dir_.write("mode", mode); }
  std::vector<JsonValue> records() const {
    std::vector<JsonValue> out;
    for (const std::string& line : ops::lines(readFile(dir_.file("records.jsonl")))) {
      if (std::optional<JsonValue> v = ops::parseJson(line)) out.push_back(*v);
    }
    return out;
  }
  // Calls of `cell` the upstream took as processed.
  int processed(const std::string& cell) const {
    int n = 0;
    for (const JsonValue& r : records()) {
      n += r.get("cell").string == cell && r.get("processed").boolean ? 1 : 0;
    }
    return n;
  }
  // Connections accepted so far.
  int accepted() const {
    int n = 0;
    for (const JsonValue& r : records()) n += r.get("event").string == "accepted" ? 1 : 0;
    return n;
  }
  // Connections accepted and not yet ended.
  int open() const {
    int n = 0;
    for (const JsonValue& r : records()) {
      if (r.get("event").string == "accepted") ++n;
      if (r.get("event").string == "closed") --n;
    }
    return n;
  }

 private:
  TempDir dir_{"apm-tls-proxy-h2c"};
  Process process_;
  uint16_t port_ = 0;
};

// One gRPC call over TLS h2 with `x-cell: cell` (and `header`, NAME=VALUE); h2peer.py's
// report.
inline JsonValue grpcCall(OpsStack& stack, const std::string& ca, const std::string& cell,
                          const std::string& header = "") {
  const std::string script = std::string(PROXY_SOURCE_DIR) + "/tests/integration/h2/h2peer.py";
  std::vector<std::string> argv = {"/usr/bin/python3",
                                   script,
                                   std::to_string(stack.port()),
                                   "grpc",
                                   "--tls",
                                   ca,
                                   "--header",
                                   "x-cell=" + cell,
                                   "--seconds",
                                   "8"};
  if (!header.empty()) argv.insert(argv.end(), {"--header", header});
  RunResult run = runToCompletion(argv, stack.dir, cell, Millis{15000});
  INFO("h2peer.py " << cell << ": exit " << run.exit_code << "\n" << run.out << run.err);
  REQUIRE(run.exit_code == 0);
  std::optional<JsonValue> report = ops::parseJson(run.out);
  REQUIRE(report);
  return *report;
}

// The grpc-status of stream 1 (trailers, or a trailers-only head); -1 when none came.
inline int grpcStatus(const JsonValue& report) {
  const JsonValue& one = report.get("responses").get("1");
  for (const char* part : {"trailers", "headers"}) {
    const JsonValue& fields = one.get(part);
    if (fields.has("grpc-status")) return std::stoi(fields.get("grpc-status").string);
  }
  return -1;
}

// After a cell: a fresh client's call, CELL-after, is served once.
inline void checkFreshCall(OpsStack& stack, const H2cUpstream& upstream, const std::string& ca,
                           const std::string& cell) {
  const std::string next = cell + "-after";
  CHECK(grpcStatus(grpcCall(stack, ca, next)) == 0);
  CHECK(upstream.processed(next) == 1);
}

// After a table: every upstream connection ends (the proxy closes what idles, drops what
// failed), every gauge settles, and the proxy stops cleanly.
inline void finishH2cTable(OpsStack& stack, const H2cUpstream& upstream) {
  CHECK(eventually([&] { return upstream.open() == 0; }, Millis{5000}));
  checkSettled(stack);
  CHECK(stack.process().stop(Millis{10000}) == 0);
}

// Runs `cells` against one proxy in front of one scripted h2c upstream: each call, then
// its checks, then a fresh call; at the end every upstream connection has ended.
inline void runH2cTable(const std::vector<H2cCell>& cells) {
  H2cUpstream upstream;
  OpsStack stack(shortUpstreamTimeouts(upstream.port()));
  const std::string ca = stack.dir.write("ca.crt", stack.pki.caPem());
  for (const H2cCell& cell : cells) {
    INFO("cell " << cell.name);
    if (*cell.mode != '\0') {
      // A connection fault needs a new connection: the pool empties within idle_timeout.
      CHECK(eventually([&] { return upstream.open() == 0; }, Millis{5000}));
      upstream.setMode(cell.mode);
    }
    const std::map<std::string, double> before = stack.metrics();
    const int accepted = upstream.accepted();
    JsonValue report = grpcCall(stack, ca, cell.name);
    upstream.setMode("");
    if (cell.max_connects > 0) CHECK(upstream.accepted() - accepted <= cell.max_connects);
    INFO("report " << report.get("responses").get("1").get("status").string << ", resets "
                   << report.get("resets").has("1"));
    const int status = grpcStatus(report);
    if (cell.grpc == kGrpcCut) {
      // Whether the head reached the client first or not, never a clean end.
      CHECK((report.get("resets").has("1") && report.get("resets").get("1").number == 2));
      CHECK_FALSE(report.get("responses").get("1").get("ended").boolean);
      CHECK(status == -1);
    } else {
      CHECK(status == cell.grpc);
      CHECK(report.get("responses").get("1").get("ended").boolean);
    }
    checkSettled(stack);
    REQUIRE(stack.process().running());
    const std::map<std::string, double> after = stack.metrics();
    auto grew = [&](const std::string& series) {
      return ops::metric(after, series).value_or(0) - ops::metric(before, series).value_or(0);
    };
    CHECK(upstream.processed(cell.name) == cell.processed);  // never twice
    CHECK(grew("apm_tls_proxy_upstream_retries_total") == cell.retries);
    if (*cell.counter != '\0') CHECK(grew(cell.counter) >= 1);
    checkFreshCall(stack, upstream, ca, cell.name);
  }
  finishH2cTable(stack, upstream);
}

}  // namespace proxy::integration::upmatrix
