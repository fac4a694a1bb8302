// apm-intake-demo on its own, through the harness: the upstream the proxy scenarios rely
// on must itself answer like APM Server and honour its X-Demo-* knobs, over HTTP/1.1 and
// over h2c on the same port (checked with curl and nghttp, real HTTP/2 clients), and the
// harness's client and response reader must frame what it sends.
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>

#include "tests/integration/demo_clients.h"
#include "tests/integration/harness.h"

namespace proxy::integration {
namespace {

TEST_CASE("The intake demo answers the APM Server routes", "[integration][demo]") {
  TempDir dir;
  DemoServer demo(dir);
  Client c(demo.port());

  REQUIRE(c.send(httpRequest("GET", "/")));
  Response info = c.readResponse();
  REQUIRE(info.complete);
  CHECK(info.status == 200);
  CHECK(info.header("Content-Type") == "application/json");
  CHECK(info.body.find("\"publish_ready\":true") != std::string::npos);
  CHECK(info.body.find("\"version\":\"9.0.0-demo\"") != std::string::npos);

  std::string events = "{\"metadata\":{}}\n{\"transaction\":{}}\n{\"span\":{}}\n";
  REQUIRE(c.send(
      httpRequest("POST", "/intake/v2/events", "Content-Type: application/x-ndjson\r\n", events)));
  Response accepted = c.readResponse();
  REQUIRE(accepted.complete);
  CHECK(accepted.status == 202);
  CHECK(accepted.body.empty());

  REQUIRE(c.send(httpRequest("OPTIONS", "/intake/v2/rum/events",
                             "Origin: https://shop.example\r\n"
                             "Access-Control-Request-Method: POST\r\n")));
  Response preflight = c.readResponse();
  CHECK(preflight.status == 204);
  CHECK(preflight.header("Access-Control-Allow-Origin") == "https://shop.example");

  REQUIRE(c.send(httpRequest("GET", "/config/v1/agents?service.name=x")));
  Response config = c.readResponse();
  CHECK(config.status == 200);
  CHECK(config.body == "{}");

  REQUIRE(c.send(httpRequest("GET", "/nope")));
  Response missing = c.readResponse();
  CHECK(missing.status == 404);
  CHECK(missing.body == R"({"error":"404 page not found"})");

  auto records = demo.waitForRecords(5);
  REQUIRE(records.size() == 5);
  CHECK(records[1].method == "POST");
  CHECK(records[1].body_bytes == events.size());
  CHECK(records[1].body_lines == 3);
  CHECK(records[1].body_head == events);
  CHECK(records[1].header("content-type") == "application/x-ndjson");
  for (const Record& r : records) CHECK(r.conn == records[0].conn);  // one keep-alive conn
  CHECK(records[4].seq == 5);
}

TEST_CASE("The intake demo answers pipelined requests in order", "[integration][demo]") {
  TempDir dir;
  DemoServer demo(dir);
  Client c(demo.port());
  REQUIRE(c.send(httpRequest("GET", "/", "X-Demo-Delay: 200ms\r\n") +
                 httpRequest("POST", "/intake/v2/events", "", "{}\n") +
                 httpRequest("GET", "/missing")));
  CHECK(c.readResponse().status == 200);
  CHECK(c.readResponse().status == 202);
  CHECK(c.readResponse().status == 404);
}

TEST_CASE("The intake demo streams chunked bodies both ways", "[integration][demo]") {
  TempDir dir;
  DemoServer demo(dir);
  Client c(demo.port());
  std::string body = demoPattern(7, 4 << 20);

  SECTION("chunked upload echoed back") {
    REQUIRE(c.send(httpRequest("POST", "/intake/v2/events",
                               "Transfer-Encoding: chunked\r\nX-Demo-Behavior: echo\r\n") +
                   chunked(body, 10000)));
    Response r = c.readResponse();
    REQUIRE(r.complete);
    CHECK(r.chunked);
    CHECK(r.body == body);
    CHECK(demo.waitForRecords(1)[0].body_bytes == body.size());
  }
  SECTION("generated chunked and Content-Length responses") {
    REQUIRE(c.send(httpRequest("GET", "/",
                               "X-Demo-Behavior: chunked-response\r\n"
                               "X-Demo-Size: 300\r\n")));
    Response r = c.readResponse();
    REQUIRE(r.complete);
    CHECK(r.chunked);
    CHECK(r.body == demoPattern(0, 300 * 1024));
    REQUIRE(c.send(httpRequest("GET", "/",
                               "X-Demo-Behavior: large-response\r\n"
                               "X-Demo-Size: 1000001\r\n")));
    Response l = c.readResponse();
    REQUIRE(l.complete);
    CHECK_FALSE(l.chunked);
    CHECK(l.body == demoPattern(0, 1000001));
  }
}

TEST_CASE("The intake demo's failure knobs", "[integration][demo]") {
  TempDir dir;
  DemoServer demo(dir);
  Client c(demo.port());

  SECTION("close-mid-body: a truncated response, then close") {
    REQUIRE(c.send(httpRequest("GET", "/", "X-Demo-Behavior: close-mid-body\r\n")));
    Response r = c.readResponse();
    CHECK(r.status == 200);
    CHECK_FALSE(r.complete);
    CHECK(r.closed);
    CHECK(r.body.size() == 10);
  }
  SECTION("close-mid-chunked: no last chunk, then close") {
    REQUIRE(c.send(httpRequest("GET", "/", "X-Demo-Behavior: close-mid-chunked\r\n")));
    Response r = c.readResponse();
    CHECK(r.status == 200);
    CHECK_FALSE(r.complete);
    CHECK(r.closed);
  }
  SECTION("silent: no answer") {
    REQUIRE(c.send(httpRequest("GET", "/", "X-Demo-Behavior: silent\r\n")));
    CHECK(c.staysQuiet(Millis{300}));
  }
  SECTION("early-response: 413 without reading the body or sending 100 Continue") {
    REQUIRE(
        c.send("POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n"
               "Expect: 100-continue\r\nX-Demo-Behavior: early-response\r\n\r\n"));
    Response r = c.readResponse();
    CHECK(r.interim.empty());
    CHECK(r.status == 413);
    CHECK(r.header("Connection") == "close");
    CHECK(c.waitClosed());
  }
  SECTION("Expect: 100-continue gets 100 Continue before the body is sent") {
    REQUIRE(
        c.send("POST /intake/v2/events HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
               "Expect: 100-continue\r\n\r\n"));
    Response interim = c.readResponse(Millis{3000}, /*stop_at_interim=*/true);
    REQUIRE(interim.status == 100);
    REQUIRE(c.send("{}\n"));
    CHECK(c.readResponse().status == 202);
  }
  SECTION("malformed request: 400 and close") {
    REQUIRE(
        c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
    Response r = c.readResponse();
    CHECK(r.status == 400);
    CHECK(c.waitClosed());
  }
  SECTION("slow-reader: 1 MiB takes over a second") {
    auto start = std::chrono::steady_clock::now();
    REQUIRE(c.send(httpRequest("POST", "/intake/v2/events", "X-Demo-Behavior: slow-reader\r\n",
                               std::string(1 << 20, 'x'))));
    CHECK(c.readResponse().status == 202);
    CHECK(std::chrono::steady_clock::now() - start > Millis{1000});
  }
}

TEST_CASE("The intake demo exits 0 on SIGTERM", "[integration][demo]") {
  TempDir dir;
  DemoServer demo(dir);
  Client c(demo.port());  // an open connection must not hold up the exit
  CHECK(demo.process().stop() == 0);
}

// --- h2c (HTTP/2 with prior knowledge) on the same port ---------------------------------

const char kTraceExport[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const char kCurlFrom[] = "Debian package curl, scripts/setup.sh";
const char kNghttpFrom[] = "Debian package nghttp2-client, scripts/setup.sh";

std::string demoUrl(const DemoServer& demo, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(demo.port()) + path;
}

// `nghttp -v` (every frame, both ways) for one request; extra args before the URL.
RunResult nghttp(const TempDir& dir, const std::vector<std::string>& args, const std::string& url,
                 const std::string& name) {
  std::vector<std::string> argv = {toolPath("nghttp", kNghttpFrom), "-v", "--no-dep"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(url);
  return runToCompletion(argv, dir, name);
}

// A gRPC request body: one length-prefixed message of `n` bytes.
std::string grpcMessage(size_t n) {
  std::string out(5, '\0');
  out[3] = static_cast<char>((n >> 8) & 0xff);
  out[4] = static_cast<char>(n & 0xff);
  return out + std::string(n, 'm');
}

TEST_CASE("The intake demo serves HTTP/1.1 and h2c on one port (curl)",
          "[integration][demo][h2c]") {
  TempDir dir;
  DemoServer demo(dir);
  std::string curl = toolPath("curl", kCurlFrom);

  RunResult info = runToCompletion(
      {curl, "-sS", "-i", "--http2-prior-knowledge", demoUrl(demo, "/")}, dir, "c1");
  CHECK(info.exit_code == 0);
  CHECK(info.out.rfind("HTTP/2 200", 0) == 0);
  CHECK(info.out.find("\"publish_ready\":true") != std::string::npos);

  RunResult events = runToCompletion(
      {curl, "-sS", "-i", "--http2-prior-knowledge", "-H", "Content-Type: application/x-ndjson",
       "--data-binary", "{\"metadata\":{}}", demoUrl(demo, "/intake/v2/events")},
      dir, "c2");
  CHECK(events.out.rfind("HTTP/2 202", 0) == 0);

  RunResult plain = runToCompletion({curl, "-sS", "-i", demoUrl(demo, "/nope")}, dir, "c3");
  CHECK(plain.out.rfind("HTTP/1.1 404", 0) == 0);
  CHECK(plain.out.find(R"({"error":"404 page not found"})") != std::string::npos);

  auto records = demo.waitForRecords(3);
  REQUIRE(records.size() == 3);
  CHECK(records[1].method == "POST");
  CHECK(records[1].target == "/intake/v2/events");
  CHECK(records[1].body_bytes == 15);
  CHECK(records[1].complete);
  auto lines = recordLines(dir);
  REQUIRE(lines.size() == 3);
  CHECK(hasField(lines[0], "protocol", quoted("h2c")));
  CHECK(hasField(lines[0], "stream", "1"));
  CHECK(hasField(lines[1], "protocol", quoted("h2c")));
  CHECK(hasField(lines[2], "protocol", quoted("http/1.1")));
}

TEST_CASE("The intake demo answers gRPC over h2c like APM Server (nghttp)",
          "[integration][demo][h2c]") {
  TempDir dir;
  DemoServer demo(dir);
  std::string body = dir.write("msg.bin", grpcMessage(3));
  const std::vector<std::string> grpc = {
      "-d", body, "-H", "content-type: application/grpc", "-H", "te: trailers"};

  SECTION("an OTLP Export: 200, an empty message, then grpc-status 0 in trailers") {
    std::vector<std::string> args = grpc;
    args.insert(args.end(), {"-H", "x-request-id: req-7"});
    RunResult r = nghttp(dir, args, demoUrl(demo, kTraceExport), "n");
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("recv (stream_id=1) :status: 200") != std::string::npos);
    CHECK(r.out.find("recv (stream_id=1) content-type: application/grpc") != std::string::npos);
    CHECK(r.out.find("recv DATA frame <length=5, flags=0x00, stream_id=1>") != std::string::npos);
    CHECK(r.out.find("recv (stream_id=1) grpc-status: 0") != std::string::npos);
    auto lines = recordLines(dir);
    REQUIRE(lines.size() == 1);
    CHECK(hasField(lines[0], "target", quoted(kTraceExport)));
    CHECK(hasField(lines[0], "grpc_messages", "1"));
    CHECK(hasField(lines[0], "body_bytes", "8"));
    CHECK(lines[0].find(R"(["te","trailers"])") != std::string::npos);
    CHECK(lines[0].find(R"(["x-request-id","req-7"])") != std::string::npos);
  }
  SECTION("an unknown method: trailers-only, grpc-status 12") {
    RunResult r = nghttp(dir, grpc, demoUrl(demo, "/pkg.Nope/Call"), "n");
    CHECK(r.out.find("grpc-status: 12") != std::string::npos);
    CHECK(r.out.find("recv DATA frame") == std::string::npos);
  }
  SECTION("x-demo-grpc-status: trailers-only with that status") {
    std::vector<std::string> args = grpc;
    args.insert(args.end(), {"-H", "x-demo-grpc-status: 9"});
    RunResult r = nghttp(dir, args, demoUrl(demo, kTraceExport), "n");
    CHECK(r.out.find("grpc-status: 9") != std::string::npos);
    CHECK(r.out.find("recv DATA frame") == std::string::npos);
  }
  SECTION("x-demo-reset: a short DATA frame, then RST_STREAM, never END_STREAM") {
    std::vector<std::string> args = grpc;
    args.insert(args.end(), {"-H", "x-demo-reset: 2"});
    RunResult r = nghttp(dir, args, demoUrl(demo, kTraceExport), "n");
    CHECK(r.out.find("recv RST_STREAM frame <length=4, flags=0x00, stream_id=1>") !=
          std::string::npos);
    CHECK(r.out.find("(error_code=INTERNAL_ERROR(0x02))") != std::string::npos);
    CHECK(r.out.find("grpc-status") == std::string::npos);
    size_t head = r.out.find("recv (stream_id=1) :status: 200");
    REQUIRE(head != std::string::npos);
    CHECK(r.out.find("END_STREAM", head) == std::string::npos);
  }
  SECTION("x-demo-echo-size on a plain request: a body of that many pattern bytes") {
    std::string out = dir.file("echo.out");
    RunResult r =
        runToCompletion({toolPath("curl", kCurlFrom), "-sS", "--http2-prior-knowledge", "-H",
                         "x-demo-echo-size: 100000", "-o", out, demoUrl(demo, "/anything")},
                        dir, "c");
    CHECK(r.exit_code == 0);
    CHECK(readFile(out) == demoPattern(0, 100000));
  }
  SECTION("x-demo-delay-ms: the answer comes after the delay") {
    auto start = std::chrono::steady_clock::now();
    CHECK(nghttp(dir, {"-H", "x-demo-delay-ms: 300"}, demoUrl(demo, "/"), "n").exit_code == 0);
    CHECK(std::chrono::steady_clock::now() - start >= Millis{300});
  }
}

// A raw HTTP/2 client over the harness's Client, for what nghttp does not show: the
// server's SETTINGS, and frames that come after the last stream ended (RFC 9113 §4.1).
struct Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream = 0;
  std::string payload;
};
constexpr uint8_t kData = 0x0, kHeaders = 0x1, kSettings = 0x4, kGoaway = 0x7;
constexpr uint8_t kEndStream = 0x1, kEndHeaders = 0x4;

uint32_t bigEndian(const std::string& s, size_t at, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

std::string frameBytes(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string out;
  for (int shift : {16, 8, 0}) out += static_cast<char>((payload.size() >> shift) & 0xff);
  out += static_cast<char>(type);
  out += static_cast<char>(flags);
  for (int shift : {24, 16, 8, 0}) out += static_cast<char>((stream >> shift) & 0x7f'ff'ff'ff);
  return out + payload;
}

// HPACK "literal header field without indexing, new name" (RFC 7541 §6.2.2), no
// Huffman: short names and values only (lengths below 127).
std::string headerBlock(const Headers& headers) {
  std::string out;
  for (const auto& [name, value] : headers) {
    REQUIRE((name.size() < 127 && value.size() < 127));
    out += '\0';
    out += static_cast<char>(name.size());
    out += name;
    out += static_cast<char>(value.size());
    out += value;
  }
  return out;
}

class RawH2 {
 public:
  // Connects and sends the preface with an empty SETTINGS frame.
  explicit RawH2(uint16_t port) : c_(port) {
    REQUIRE(
        c_.send(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + frameBytes(kSettings, 0, 0, "")));
  }
  // A gRPC unary request on `stream`: HEADERS, then one DATA frame ending the stream.
  void grpcRequest(uint32_t stream, const std::string& path, const Headers& extra = {}) {
    Headers h = {{":method", "POST"},
                 {":scheme", "http"},
                 {":authority", "demo"},
                 {":path", path},
                 {"content-type", "application/grpc"}};
    h.insert(h.end(), extra.begin(), extra.end());
    REQUIRE(c_.send(frameBytes(kHeaders, kEndHeaders, stream, headerBlock(h)) +
                    frameBytes(kData, kEndStream, stream, grpcMessage(3))));
  }
  // The next frame, or nullopt when none arrives within `timeout` (or the peer closed).
  std::optional<Frame> next(Millis timeout = Millis{5000}) {
    if (!fill(9, timeout)) return std::nullopt;
    size_t length = bigEndian(in_, 0, 3);
    if (!fill(9 + length, timeout)) return std::nullopt;
    Frame f;
    f.type = static_cast<uint8_t>(in_[3]);
    f.flags = static_cast<uint8_t>(in_[4]);
    f.stream = bigEndian(in_, 5, 4) & 0x7f'ff'ff'ff;
    f.payload = in_.substr(9, length);
    in_.erase(0, 9 + length);
    return f;
  }

 private:
  bool fill(size_t n, Millis timeout) {
    if (in_.empty()) in_ = c_.buffered();  // what send() read meanwhile
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (in_.size() < n) {
      auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{c_.fd(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[16384];
      ssize_t got = ::recv(c_.fd(), buf, sizeof buf, 0);
      if (got <= 0) return false;
      in_.append(buf, static_cast<size_t>(got));
    }
    return true;
  }
  Client c_;
  std::string in_;
};

// The value the server's first frame, SETTINGS (RFC 9113 §3.4), gives
// SETTINGS_MAX_CONCURRENT_STREAMS (0x3), or -1 when absent.
int64_t maxConcurrentStreams(uint16_t port) {
  RawH2 h2(port);
  auto first = h2.next();
  REQUIRE(first.has_value());
  REQUIRE(first->type == kSettings);
  for (size_t at = 0; at + 6 <= first->payload.size(); at += 6) {
    if (bigEndian(first->payload, at, 2) == 0x3) return bigEndian(first->payload, at + 2, 4);
  }
  return -1;
}

TEST_CASE("The intake demo's x-demo-goaway: GOAWAY after the stream, later ones unanswered",
          "[integration][demo][h2c]") {
  TempDir dir;
  DemoServer demo(dir);
  RawH2 h2(demo.port());
  h2.grpcRequest(1, kTraceExport, {{"x-demo-goaway", "1"}});
  h2.grpcRequest(3, kTraceExport);  // above the GOAWAY's last-stream-id: never processed
  bool stream1_ended = false;
  std::optional<Frame> goaway;
  std::vector<uint32_t> answered;
  while (auto f = h2.next()) {
    if (f->type == kHeaders) answered.push_back(f->stream);
    if (f->stream == 1 && (f->flags & kEndStream) != 0) stream1_ended = true;
    if (f->type == kGoaway) {
      CHECK(stream1_ended);  // the answer first, then the GOAWAY
      goaway = f;
      break;
    }
  }
  REQUIRE(goaway.has_value());
  CHECK(bigEndian(goaway->payload, 0, 4) == 1);  // last-stream-id
  CHECK(bigEndian(goaway->payload, 4, 4) == 0);  // NO_ERROR
  CHECK(std::count(answered.begin(), answered.end(), 3u) == 0);
  CHECK(std::count(answered.begin(), answered.end(), 1u) == 2);  // head and trailers
  // Stream 1 is recorded. Stream 3 is recorded only when its frames reached the demo
  // before its GOAWAY went out (after that nghttp2 ignores a stream above the
  // last-stream-id), so its record is not asserted either way: a race, not a contract.
  auto records = demo.waitForRecords(1);
  REQUIRE_FALSE(records.empty());
  CHECK(records[0].target == kTraceExport);
}

TEST_CASE("The intake demo's h2c SETTINGS_MAX_CONCURRENT_STREAMS", "[integration][demo][h2c]") {
  TempDir dir;
  SECTION("100 by default") {
    DemoServer demo(dir);
    CHECK(maxConcurrentStreams(demo.port()) == 100);
  }
  SECTION("--max-concurrent-streams sets it") {
    Process demo({demoBinary(), "--listen", "127.0.0.1:0", "--ready-file", dir.file("ready"),
                  "--max-concurrent-streams", "7", "--quiet"},
                 dir.file("demo"));
    uint16_t port = portOf(waitForReadyFile(demo, dir.file("ready"))["listen"]);
    CHECK(maxConcurrentStreams(port) == 7);
    CHECK(demo.stop() == 0);
  }
  SECTION("a bad value is refused") {
    RunResult r = runToCompletion({demoBinary(), "--max-concurrent-streams", "many"}, dir, "bad");
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--max-concurrent-streams") != std::string::npos);
  }
}

}  // namespace
}  // namespace proxy::integration
