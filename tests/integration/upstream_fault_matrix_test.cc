// The upstream-fault matrix, HTTP/1.1 upstream: for every state of an upstream exchange
// (connect, request being written, waiting for the head, head half sent, Content-Length
// body half sent, mid-chunk, idle pooled keep-alive connection) a ScriptedUpstream closes
// (FIN), resets (RST), stalls or lies. A TLS HTTP/1.1 client (and, for a few cells, an
// HTTP/2 one) must get what docs/http.md promises: a local 502/503/504 before any response
// byte, a cut after it, never a response that looks whole when the upstream's was not; a
// request is replayed only where "Retries" allows it, at most once; counters move; every
// gauge returns to its baseline and a fresh request is served after each cell.
#include "tests/integration/upstream_fault_matrix.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/ops_support.h"
#include "tests/integration/scripted_upstream.h"
#include "tests/integration/upstream_fault_matrix_idle.h"

namespace proxy::integration::upmatrix {
namespace {

std::vector<Cell> cells() {
  using O = Outcome;
  using D = Drive;
  auto fin = [](int) {};
  auto rst = [](int fd) { Up::reset(fd); };
  auto stall = [](int fd) { Up::waitPeerClose(fd, Millis{8000}); };
  auto writeThen = [](std::string bytes, std::function<void(int)> then) {
    return [bytes, then](int fd) {
      Up::writeAll(fd, bytes);
      then(fd);
    };
  };
  const char* timeouts = "apm_tls_proxy_upstream_timeouts_total";
  const std::string half_head = "HTTP/1.1 200 OK\r\nContent-Le";
  std::vector<Cell> table = {
      // 1. connect: accepted, then closed or reset before a byte was read (the one replay
      // may find the same).
      {"connect-fin", fin, 502, O::kLocal, 0, "", -1},
      {"connect-rst", rst, 502, O::kLocal, 0, "", -1},
      // 2. the request body streaming: the upstream read the head and stops reading.
      {"send-fin", [](int fd) { takeHead(fd); }, 502, O::kLocal, 1, "", 0, 0, D::kUpload},
      {"send-rst", [](int fd) { takeHead(fd) > 0 ? Up::reset(fd) : void(); }, 502, O::kLocal, 1, "",
       0, 0, D::kUpload},
      {"send-stall", [](int fd) { takeHead(fd) > 0 ? Up::waitPeerClose(fd, Millis{8000}) : false; },
       504, O::kLocal, 1, timeouts, 0, 0, D::kUpload},
      // 3. the request sent, no response byte yet: the upstream may have acted on it.
      {"awaiting-fin", afterRequest(fin), 502, O::kLocal, 1, "", 0},
      {"awaiting-rst", afterRequest(rst), 502, O::kLocal, 1, "", 0},
      {"awaiting-stall", afterRequest(stall), 504, O::kLocal, 1, timeouts, 0},
      {"awaiting-lie", afterRequest(writeThen("SPDY/3 OK\r\n\r\n", stall)), 502, O::kLocal, 1, "",
       0},
      // 4. half a response head.
      {"head-fin", afterRequest(writeThen(half_head, fin)), 502, O::kLocal, 1, "", 0},
      {"head-rst", afterRequest(writeThen(half_head, rst)), 502, O::kLocal, 1, "", 0},
      {"head-stall", afterRequest(writeThen(half_head, stall)), 504, O::kLocal, 1, timeouts, 0},
      {"head-lie-1xx",
       afterRequest(writeThen("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2OO\r\n\r\n", stall)), 502,
       O::kLocal, 1, "", 0},
      // 5. Content-Length body half sent (FIN: a length longer than the body).
      {"body-fin", afterRequest(writeThen(kHeadCl, fin)), 200, O::kCut, 1, "", 0},
      {"body-rst", afterRequest(writeThen(kHeadCl, onceClientHasHead(rst))), 200, O::kCut, 1, "", 0,
       0, D::kHeadFirst},
      {"body-stall", afterRequest(writeThen(kHeadCl, stall)), 200, O::kCut, 1, timeouts, 0},
      // A second response nobody asked for: the first is whole; the connection must not
      // serve the client's next request with the stray one.
      {"body-lie-unsolicited",
       afterRequest(writeThen("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
                              "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
                              stall)),
       200, O::kWhole, 2, "", 0, 202},
      // An HTTP/1.0 response without a length ends with the upstream's FIN: whole; a reset
      // instead must not end it cleanly.
      {"http10-fin", afterRequest(writeThen("HTTP/1.0 200 OK\r\n\r\nabc", fin)), 200, O::kWhole, 1,
       "", 0},
      {"http10-rst", afterRequest(writeThen("HTTP/1.0 200 OK\r\n\r\nabc", onceClientHasHead(rst))),
       200, O::kCut, 1, "", 0, 0, D::kHeadFirst},
      // 6. chunked body, mid-chunk.
      {"chunk-fin", afterRequest(writeThen(kHeadChunked, fin)), 200, O::kCut, 1, "", 0},
      {"chunk-rst", afterRequest(writeThen(kHeadChunked, onceClientHasHead(rst))), 200, O::kCut, 1,
       "", 0, 0, D::kHeadFirst},
      {"chunk-stall", afterRequest(writeThen(kHeadChunked, stall)), 200, O::kCut, 1, timeouts, 0},
      {"chunk-lie",
       afterRequest(
           writeThen(kHeadChunked, onceClientHasHead(writeThen("56789\r\nzz\r\n", stall)))),
       200, O::kCut, 1, "", 0, 0, D::kHeadFirst},
      // A head and a bad chunk size in one read: the head parsed, so the response has
      // begun though no byte of it was written; the client connection is reset.
      {"chunk-lie-one-read", afterRequest(writeThen(kHeadChunked + "56789\r\nzz\r\n", stall)), 200,
       O::kReset, 1, "", 0},
      // The same states seen by an HTTP/2 client of the HTTP/1.1 pool.
      {"h2-awaiting-fin", afterRequest(fin), 502, O::kLocal, 1, "", 0, 0, D::kHttp2},
      {"h2-awaiting-stall", afterRequest(stall), 504, O::kLocal, 1, timeouts, 0, 0, D::kHttp2},
      {"h2-body-fin", afterRequest(writeThen(kHeadCl, fin)), 200, O::kCut, 1, "", 0, 0, D::kHttp2},
      {"h2-chunk-lie-one-read", afterRequest(writeThen(kHeadChunked + "56789\r\nzz\r\n", stall)),
       200, O::kReset, 1, "", 0, 0, D::kHttp2},
      {"h2-chunk-stall", afterRequest(writeThen(kHeadChunked, stall)), 200, O::kCut, 1, timeouts, 0,
       0, D::kHttp2},
  };
  // 7. the pooled keep-alive connection, idle between two requests of one client.
  for (const Cell& cell : idleCells()) table.push_back(cell);
  return table;
}

TEST_CASE("HTTP/1.1 upstream faults in every exchange state get the documented answer",
          "[integration][faults][matrix][upstream]") {
  ScriptedUpstream upstream([](int fd, size_t) { serve(fd); });
  runTable(cells(), upstream);
}

TEST_CASE("An upstream nobody listens on gets 502 after one replay",
          "[integration][faults][matrix][upstream]") {
  OpsStack stack(shortUpstreamTimeouts(unusedPort()));
  ops::TlsClient c(stack.port(), stack.client());
  ops::requireConnect(c);
  Cell refused{"connect-refused", nullptr, 502, Outcome::kLocal, 0, "", 1};
  checkOutcome(refused.outcome, refused.status, c.request(request(refused), Millis{8000}));
  CHECK(c.waitClosed(Millis{5000}));
  checkSettled(stack);
  std::map<std::string, double> m = stack.metrics();
  CHECK(ops::metric(m, "apm_tls_proxy_upstream_retries_total") == 1);
  CHECK(ops::metric(m, "apm_tls_proxy_upstream_connect_failures_total") == 2);
  CHECK(stack.process().stop(Millis{10000}) == 0);
}

TEST_CASE("An upstream that never accepts gets 502 and gRPC 14 within connect_timeout",
          "[integration][faults][matrix][upstream]") {
  // A listener with a backlog of 0 and one connection nobody accepts: the kernel drops
  // every further SYN, so the proxy's connect neither succeeds nor is refused.
  const uint16_t port = unusedPort();
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  const sockaddr_in addr{AF_INET, htons(port), {htonl(INADDR_LOOPBACK)}, {}};
  REQUIRE(::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener, 0) == 0);
  int filler = testsupport::tcpConnect(port);
  REQUIRE(filler >= 0);
  OpsStack stack(shortUpstreamTimeouts(port));
  {
    ops::TlsClient c(stack.port(), stack.client());
    ops::requireConnect(c);
    Cell stalled{"connect-stall", nullptr, 502, Outcome::kLocal, 0, "", 0};
    checkOutcome(stalled.outcome, stalled.status, c.request(request(stalled), Millis{8000}));
    CHECK(c.waitClosed(Millis{5000}));
  }
  std::map<std::string, double> m = stack.metrics();
  CHECK(ops::metric(m, "apm_tls_proxy_upstream_retries_total") == 0);  // a timeout: no replay
  CHECK(ops::metric(m, "apm_tls_proxy_upstream_connect_failures_total") >= 1);
  const std::string ca = stack.dir.write("ca.crt", stack.pki.caPem());
  JsonValue report = grpcCall(stack, ca, "connect-stall-grpc");
  CHECK(grpcStatus(report) == 14);
  CHECK(report.get("responses").get("1").get("headers").get("grpc-message").string ==
        "upstream connection failed");
  checkSettled(stack);
  CHECK(stack.process().stop(Millis{10000}) == 0);
  ::close(filler);
  ::close(listener);
}

}  // namespace
}  // namespace proxy::integration::upmatrix
