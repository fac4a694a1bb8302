// The client-fault matrix, HTTP/1.1 over TLS: for every state of a client connection
// (ClientHello half sent, head half sent, body half sent, mid-chunk, waiting for the
// answer, answer streaming, keep-alive idle) the client closes (FIN), resets (RST), stalls
// or lies. One proxy serves every cell; after each, the connections gauge is back where it
// was, a fresh request gets 202, and the upstream recorded whole only what was sent whole.
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/client_fault_matrix.h"
#include "tests/integration/harness.h"
#include "tests/integration/ops_support.h"

namespace proxy::integration::matrix {
namespace {

using ops::eventually;
using ops::OpsStack;

enum class State { kHelloHalf, kHeadHalf, kBodyHalf, kMidChunk, kAwaiting, kStreaming, kIdle };
enum class Fault { kFin, kRst, kStall, kLie };

struct Cell {
  const char* name;  // also the request's X-Cell value
  State state;
  Fault fault;
  std::vector<int> statuses;  // responses the client reads, in order, before the close
  Upstream upstream;
  const char* reason;  // why the proxy logs it closed the connection; "" when racy (RST)
};

const size_t kStreamedSize = 32u << 20;  // a response still streaming when the fault comes
const std::string kBody100(100, 'b');

std::string head(const Cell& cell, const std::string& more) {
  return "POST /intake/v2/events HTTP/1.1\r\nHost: apm\r\nX-Cell: " + std::string(cell.name) +
         "\r\nContent-Type: application/x-ndjson\r\n" + more;
}

// The bytes that bring a connection into the cell's state, and the lie told there.
struct Script {
  std::string prefix;
  std::string lie;
  bool raw_lie = false;  // the lie bypasses TLS (a forged record)
};

Script scriptFor(const Cell& cell) {
  const bool lie = cell.fault == Fault::kLie;
  switch (cell.state) {
    case State::kHelloHalf:
      return {};
    case State::kHeadHalf: {
      std::string h = head(cell, "Content-Length: 5\r\n");
      // Two differing Content-Length fields: a smuggling shape, 400 (docs/http.md).
      return {h.substr(0, h.size() - 10),
              h.substr(h.size() - 10) + "Content-Length: 6\r\n\r\nhello"};
    }
    case State::kBodyHalf:
      // Without the lie, the head promises 100 bytes and 50 come: then FIN, RST or nothing.
      // The lie sends more than promised: the tail is no request and must not reach anyone.
      return {head(cell, "Content-Length: 100\r\n\r\n") + kBody100.substr(0, 50),
              kBody100.substr(50) + "GARBAGE\r\n\r\n"};
    case State::kMidChunk:
      // A 64-byte chunk announced, 20 sent; the lie ends it and sends an invalid size.
      return {head(cell, "Transfer-Encoding: chunked\r\n\r\n") + "40\r\n" + kBody100.substr(0, 20),
              kBody100.substr(0, 44) + "\r\nzz\r\n"};
    case State::kAwaiting:
      // The upstream answers after 1.5 s, later than read_timeout, which stops once the
      // request is whole.
      if (lie) {
        // Bytes after a Connection: close request: never a second request upstream.
        std::string one = head(cell,
                               "X-Demo-Delay: 1500ms\r\nConnection: close\r\n"
                               "Content-Length: 100\r\n\r\n") +
                          kBody100;
        return {one, one};
      }
      return {head(cell, "X-Demo-Delay: 1500ms\r\nContent-Length: 100\r\n\r\n") + kBody100, ""};
    case State::kStreaming:
      // The lie: bytes that are no request, pipelined while the answer streams: the answer
      // ends whole, then 400.
      return {"GET /large HTTP/1.1\r\nHost: apm\r\nX-Cell: " + std::string(cell.name) +
                  "\r\nX-Demo-Behavior: large-response\r\nX-Demo-Size: " +
                  std::to_string(kStreamedSize) + "\r\n\r\n",
              "GARBAGE\r\n\r\n"};
    case State::kIdle:
      // The lie: an application-data record that no key made (bad MAC).
      return {head(cell, "Content-Length: 100\r\n\r\n") + kBody100,
              std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, 'x'), true};
  }
  return {};
}

// The first flight of a TLS client (its ClientHello record), made in memory.
std::string clientHello() {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  bssl::UniquePtr<SSL> ssl(SSL_new(ctx.get()));
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), BIO_new(BIO_s_mem()), out);
  SSL_set_connect_state(ssl.get());
  SSL_set_tlsext_host_name(ssl.get(), "localhost");
  SSL_do_handshake(ssl.get());
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(out, &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

void setResetOnClose(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

bool is2xx(int status) { return status >= 200 && status < 300; }

// State 1 on plain TCP: half a ClientHello, then the fault. The lie is a ClientHello whose
// message type says ServerHello; plain HTTP on the TLS port is in the table as its own lie.
void driveHello(OpsStack& stack, const Cell& cell) {
  std::string hello = clientHello();
  REQUIRE(hello.size() > 20);
  Client c(stack.port());
  const bool plain = cell.fault == Fault::kLie && !cell.statuses.empty();  // answered 400
  if (plain) {
    REQUIRE(c.send(httpRequest("POST", "/intake/v2/events",
                               "X-Cell: " + std::string(cell.name) + "\r\n", kBody100)));
  } else if (cell.fault == Fault::kLie) {
    hello[5] = 2;
    REQUIRE(c.send(hello));
  } else {
    REQUIRE(c.send(hello.substr(0, hello.size() / 2)));
  }
  if (cell.fault == Fault::kRst) {
    setResetOnClose(c.fd());
    return;
  }
  if (cell.fault == Fault::kFin) c.shutdownWrite();
  for (int status : cell.statuses) CHECK(c.readResponse(Millis{6000}).status == status);
  CHECK(c.waitClosed(Millis{6000}));
  CHECK(c.buffered().find("HTTP/1.1 2") == std::string::npos);
}

// Drives a TLS cell; returns the client when it must stay open until the proxy closes.
std::unique_ptr<testsupport::TlsClient> driveTls(OpsStack& stack, DemoServer& demo,
                                                 const Cell& cell) {
  Script s = scriptFor(cell);
  int fd = testsupport::tcpConnect(stack.port(), Millis{5000});
  REQUIRE(fd >= 0);
  auto tls =
      std::make_unique<testsupport::TlsClient>(testsupport::TlsClient::AdoptFd{fd}, stack.client());
  REQUIRE(tls->connect());
  REQUIRE(tls->send(s.prefix));
  if (cell.state == State::kIdle) REQUIRE(tls->readResponse(Millis{5000}).status == 202);
  if (cell.state == State::kAwaiting || cell.state == State::kStreaming) {
    // The demo records a request once it is whole, before it answers: the fault comes
    // after the upstream has it (a reset may otherwise drop bytes the proxy had not read).
    REQUIRE(eventually([&] { return !recordsOf(demo, cell.name).empty(); }, Millis{5000}));
  }
  switch (cell.fault) {
    case Fault::kFin:
      ::shutdown(fd, SHUT_WR);
      break;
    case Fault::kRst:
      setResetOnClose(fd);
      return nullptr;
    case Fault::kStall:
      if (cell.state == State::kStreaming) return tls;  // never reads: write_timeout ends it
      break;
    case Fault::kLie:
      if (s.raw_lie) {
        REQUIRE(::send(fd, s.lie.data(), s.lie.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(s.lie.size()));
      } else {
        tls->send(s.lie);  // the proxy may have closed already: that is its answer
      }
      break;
  }
  for (int status : cell.statuses) {
    Response r = tls->readResponse(Millis{8000});
    CHECK(r.status == status);
    if (status == 200) CHECK(r.body == demoPattern(0, kStreamedSize));
  }
  Response last = tls->readResponse(Millis{8000});  // nothing more, or not a 2xx
  CHECK_FALSE(is2xx(last.status));
  CHECK(tls->waitClosed(Millis{6000}));
  return nullptr;
}

const char* kStateNames[] = {"hello-half", "head-half", "body-half", "mid-chunk",
                             "awaiting",   "streaming", "idle"};
const char* kFaultNames[] = {"fin", "rst", "stall", "lie"};

// The proxy's "conn closed" log lines, once every connection it accepted has logged its
// close and the connections gauge is back at `active` (fails the check otherwise).
std::vector<std::string> settledCloses(OpsStack& stack, double active) {
  std::vector<std::string> closes;
  std::map<std::string, double> m;
  bool settled = eventually(
      [&] {
        m = stack.metrics();
        closes.clear();
        for (std::string& line : ops::lines(stack.stderrText())) {
          if (line.find("msg=\"conn closed\"") != std::string::npos) closes.push_back(line);
        }
        return ops::metric(m, "apm_tls_proxy_connections_active") == active &&
               ops::metric(m, "apm_tls_proxy_connections_accepted_total") == closes.size();
      },
      Millis{8000});
  INFO("connections_active " << ops::metric(m, "apm_tls_proxy_connections_active").value_or(-1)
                             << ", closes logged " << closes.size());
  CHECK(settled);  // nothing leaks, nothing hangs past its deadline
  return closes;
}

TEST_CASE("HTTP/1.1 client faults in every connection state leave nothing behind",
          "[integration][faults][matrix]") {
  using S = State;
  using F = Fault;
  using U = Upstream;
  const std::vector<Cell> cells = {
      {"hello-fin", S::kHelloHalf, F::kFin, {}, U::kNothing, "peer_closed"},
      {"hello-rst", S::kHelloHalf, F::kRst, {}, U::kNothing, ""},
      {"hello-stall", S::kHelloHalf, F::kStall, {}, U::kNothing, "tls_handshake_timeout"},
      {"hello-lie", S::kHelloHalf, F::kLie, {}, U::kNothing, "tls_handshake_failed"},
      {"hello-lie-plain", S::kHelloHalf, F::kLie, {400}, U::kNothing, "tls_handshake_failed"},
      {"head-fin", S::kHeadHalf, F::kFin, {}, U::kNothing, "peer_closed_mid_request"},
      {"head-rst", S::kHeadHalf, F::kRst, {}, U::kNothing, ""},
      {"head-stall", S::kHeadHalf, F::kStall, {408}, U::kNothing, "request_header_timeout"},
      {"head-lie", S::kHeadHalf, F::kLie, {400}, U::kNothing, "bad_request"},
      // FIN after fewer body bytes than Content-Length announced.
      {"body-fin", S::kBodyHalf, F::kFin, {}, U::kNeverComplete, "peer_closed_mid_request"},
      {"body-rst", S::kBodyHalf, F::kRst, {}, U::kNeverComplete, ""},
      {"body-stall", S::kBodyHalf, F::kStall, {408}, U::kNeverComplete, "read_timeout"},
      {"body-lie", S::kBodyHalf, F::kLie, {202, 400}, U::kCompleteOnce, "bad_request"},
      {"chunk-fin", S::kMidChunk, F::kFin, {}, U::kNeverComplete, "peer_closed_mid_request"},
      {"chunk-rst", S::kMidChunk, F::kRst, {}, U::kNeverComplete, ""},
      {"chunk-stall", S::kMidChunk, F::kStall, {408}, U::kNeverComplete, "read_timeout"},
      {"chunk-lie", S::kMidChunk, F::kLie, {400}, U::kNeverComplete, "bad_request"},
      // A half-close after a whole request is answered, then closed (RFC 9112 §9.6).
      {"awaiting-fin", S::kAwaiting, F::kFin, {202}, U::kCompleteOnce, "done"},
      {"awaiting-rst", S::kAwaiting, F::kRst, {}, U::kCompleteOnce, ""},
      // The client waits past read_timeout for its answer, then idles out.
      {"awaiting-stall", S::kAwaiting, F::kStall, {202}, U::kCompleteOnce, "idle_timeout"},
      {"awaiting-lie", S::kAwaiting, F::kLie, {202}, U::kCompleteOnce, "done"},
      {"streaming-fin", S::kStreaming, F::kFin, {200}, U::kCompleteOnce, "done"},
      {"streaming-rst", S::kStreaming, F::kRst, {}, U::kCompleteOnce, ""},
      {"streaming-stall", S::kStreaming, F::kStall, {}, U::kCompleteOnce, "write_timeout"},
      {"streaming-lie", S::kStreaming, F::kLie, {200, 400}, U::kCompleteOnce, "bad_request"},
      {"idle-fin", S::kIdle, F::kFin, {}, U::kCompleteOnce, "peer_closed"},
      {"idle-rst", S::kIdle, F::kRst, {}, U::kCompleteOnce, ""},
      {"idle-stall", S::kIdle, F::kStall, {}, U::kCompleteOnce, "idle_timeout"},
      {"idle-lie", S::kIdle, F::kLie, {}, U::kCompleteOnce, "tls_error"},  // a forged record
  };
  OpsStack stack(shortTimeouts());
  const double baseline =
      ops::metric(stack.metrics(), "apm_tls_proxy_connections_active").value_or(-1);
  REQUIRE(baseline == 0);
  for (const Cell& cell : cells) {
    INFO("cell " << cell.name << " (" << kStateNames[static_cast<int>(cell.state)] << " x "
                 << kFaultNames[static_cast<int>(cell.fault)] << ")");
    const size_t before = settledCloses(stack, baseline).size();
    std::unique_ptr<testsupport::TlsClient> held;  // open until the proxy closes it
    if (cell.state == State::kHelloHalf) {
      driveHello(stack, cell);
    } else {
      held = driveTls(stack, stack.demo, cell);
    }
    std::vector<std::string> closes = settledCloses(stack, baseline);
    held.reset();
    REQUIRE(stack.process().running());
    CHECK(closes.size() == before + 1);
    if (*cell.reason != '\0' && closes.size() == before + 1) {
      INFO(closes.back());
      CHECK(closes.back().find(std::string(" reason=") + cell.reason + " ") != std::string::npos);
    }
    // A fresh client is served, and the upstream's records are settled up to it.
    testsupport::TlsClient fresh(stack.port(), stack.client());
    const std::string after = std::string(cell.name) + "-after";
    CHECK(
        fresh
            .exchange(httpRequest("POST", "/intake/v2/events", "X-Cell: " + after + "\r\n", "{}\n"))
            .status == 202);
    CHECK(eventually([&] { return recordsOf(stack.demo, after).size() == 1; }, Millis{5000}));
    checkUpstream(stack.demo, cell.name, cell.upstream);
  }
  // Records written late (a request the upstream saw end with its connection) count too.
  settledCloses(stack, baseline);
  for (const Cell& cell : cells) {
    INFO("cell " << cell.name << ", final look");
    checkUpstream(stack.demo, cell.name, cell.upstream);
  }
  CHECK(stack.process().stop(Millis{10000}) == 0);
}

}  // namespace
}  // namespace proxy::integration::matrix
