// Graceful drain against the real binary: SIGTERM with streaming requests open cuts
// nothing and exits 0; new connections are refused once the drain starts, but still
// accepted during [server] shutdown_delay while /readyz already says 503; at
// shutdown_timeout what remains is closed; a second signal exits at once with 1.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <csignal>
#include <thread>

#include "tests/integration/ops_support.h"

namespace proxy::integration::ops {
namespace {

using Clock = std::chrono::steady_clock;

Millis since(Clock::time_point t) { return std::chrono::duration_cast<Millis>(Clock::now() - t); }

// True when a TCP connect to `port` is refused (nothing listens any more).
bool refused(uint16_t port) {
  int fd = tcpConnect(port, Millis{1000});
  if (fd >= 0) {
    ::close(fd);
    return false;
  }
  return errno == ECONNREFUSED;
}

double requestsSeen(const OpsStack& stack) {
  return metric(stack.metrics(), "apm_tls_proxy_http_requests_total").value_or(-1);
}

OpsOptions drainOptions(const std::string& delay, const std::string& timeout) {
  OpsOptions o;
  o.config.server["shutdown_delay"] = "\"" + delay + "\"";
  o.config.server["shutdown_timeout"] = "\"" + timeout + "\"";
  return o;
}

TEST_CASE("SIGTERM with streaming requests open cuts none of them and exits 0",
          "[integration][ops][drain]") {
  OpsStack stack(drainOptions("0s", "10s"));
  Process& proc = stack.process();

  // An idle keep-alive connection: the drain closes it.
  TlsClient idle(stack.port(), stack.client());
  requireConnect(idle);
  REQUIRE(idle.request(httpRequest("GET", "/")).status == 200);

  // A request whose body arrives slowly: 20 pieces, 100 ms apart.
  constexpr int kPieces = 20;
  const std::string piece = std::string(99, 'x') + "\n";
  TlsClient slow(stack.port(), stack.client());
  requireConnect(slow);
  REQUIRE(
      slow.send("POST /intake/v2/events HTTP/1.1\r\nHost: apm.test\r\n"
                "Content-Type: application/x-ndjson\r\nContent-Length: " +
                std::to_string(kPieces * piece.size()) + "\r\n\r\n" + piece));
  // A request the upstream answers only after 1.5 s.
  TlsClient delayed(stack.port(), stack.client());
  requireConnect(delayed);
  REQUIRE(delayed.send(httpRequest("GET", "/", "X-Demo-Delay: 1500ms\r\n")));
  // Both heads (and the idle one's request) reached the proxy.
  REQUIRE(eventually([&] { return requestsSeen(stack) == 3; }, Millis{5000}));

  proc.signal(SIGTERM);
  auto signalled = Clock::now();
  auto next_piece = Clock::now();
  bool saw_refused = false;
  bool saw_not_ready = false;
  for (int i = 1; i < kPieces; ++i) {
    next_piece += Millis{100};
    std::this_thread::sleep_until(next_piece);  // pacing the upload, not waiting for a state
    INFO("piece " << i << ": " << slow.error());
    REQUIRE(slow.send(piece));
    if (!saw_refused) saw_refused = refused(stack.port());
    if (!saw_not_ready) {
      Response r = adminGet(stack.adminPort(), "/readyz");
      saw_not_ready = r.status == 503 && r.body.find("draining") != std::string::npos;
    }
  }
  // Once the drain starts (shutdown_delay 0) nobody new gets in.
  CHECK(saw_refused);
  CHECK(saw_not_ready);

  Response d = delayed.readResponse(Millis{5000});
  INFO("delayed: " << delayed.error());
  CHECK(d.complete);
  CHECK(d.status == 200);
  CHECK(d.header("Connection").value_or("") == "close");
  Response s = slow.readResponse(Millis{5000});
  INFO("slow: " << slow.error());
  CHECK(s.complete);
  CHECK(s.status == 202);
  CHECK(s.header("Connection").value_or("") == "close");
  CHECK(slow.waitClosed(Millis{2000}));
  CHECK(delayed.waitClosed(Millis{2000}));
  CHECK(idle.waitClosed(Millis{2000}));

  auto code = proc.wait(Millis{5000});
  INFO("stderr:\n" << proc.stderrText());
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  // The last request ended about 2 s after the signal; the exit followed it, far inside
  // shutdown_timeout (10 s).
  CHECK(since(signalled) < Millis{5000});

  // The upstream got both requests whole.
  auto records = stack.demo.waitForRecords(3);
  bool slow_whole = false;
  for (const Record& r : records) {
    if (r.method == "POST") {
      slow_whole = r.complete && r.body_bytes == kPieces * piece.size();
    }
  }
  CHECK(slow_whole);
  std::string log = proc.stderrText();
  CHECK(log.find("msg=draining") != std::string::npos);
  CHECK(log.find("shutdown_timeout reached") == std::string::npos);
}

TEST_CASE("During shutdown_delay /readyz is 503 but new connections are still served",
          "[integration][ops][drain][readiness]") {
  OpsStack stack(drainOptions("1s", "5s"));
  Process& proc = stack.process();
  Response before = adminGet(stack.adminPort(), "/readyz");
  CHECK(before.status == 200);
  CHECK(metric(stack.metrics(), "apm_tls_proxy_ready") == 1.0);

  proc.signal(SIGTERM);
  auto signalled = Clock::now();
  Response r;
  REQUIRE(eventually(
      [&] {
        r = adminGet(stack.adminPort(), "/readyz");
        return r.status == 503;
      },
      Millis{500}));
  CHECK(r.body.find("draining") != std::string::npos);
  auto m = stack.metrics();
  CHECK(metric(m, "apm_tls_proxy_ready") == 0.0);
  CHECK(metric(m, "apm_tls_proxy_draining") == 1.0);

  // Still inside the delay: a new client connects and is answered.
  TlsClient late(stack.port(), stack.client());
  requireConnect(late);
  Response answered = late.request(httpRequest("POST", "/intake/v2/events", "", "{}\n"));
  CHECK(answered.status == 202);
  INFO("the late request was only answered " << since(signalled).count() << " ms after SIGTERM");
  REQUIRE(since(signalled) < Millis{900});

  // After the delay the listener is gone.
  REQUIRE(eventually([&] { return refused(stack.port()); }, Millis{3000}));
  CHECK(since(signalled) >= Millis{900});
  auto code = proc.wait(Millis{5000});
  INFO("stderr:\n" << proc.stderrText());
  REQUIRE(code.has_value());
  CHECK(*code == 0);
}

TEST_CASE("At shutdown_timeout the remaining connections are closed and the exit code is 0",
          "[integration][ops][drain]") {
  OpsStack stack(drainOptions("0s", "1s"));
  Process& proc = stack.process();
  TlsClient stuck(stack.port(), stack.client());
  requireConnect(stuck);
  REQUIRE(stuck.send(httpRequest("GET", "/", "X-Demo-Delay: 20s\r\n")));
  REQUIRE(eventually([&] { return requestsSeen(stack) == 1; }, Millis{5000}));

  proc.signal(SIGTERM);
  auto signalled = Clock::now();
  CHECK(stuck.waitClosed(Millis{4000}));
  auto code = proc.wait(Millis{4000});
  Millis took = since(signalled);
  INFO("stderr:\n" << proc.stderrText());
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(took >= Millis{900});
  CHECK(took < Millis{3000});
  CHECK(proc.stderrText().find("shutdown_timeout reached") != std::string::npos);
}

TEST_CASE("A second signal during the drain exits at once with code 1",
          "[integration][ops][drain]") {
  OpsStack stack(drainOptions("0s", "30s"));
  Process& proc = stack.process();
  TlsClient stuck(stack.port(), stack.client());
  requireConnect(stuck);
  REQUIRE(stuck.send(httpRequest("GET", "/", "X-Demo-Delay: 20s\r\n")));
  REQUIRE(eventually([&] { return requestsSeen(stack) == 1; }, Millis{5000}));

  proc.signal(SIGTERM);
  REQUIRE(eventually(
      [&] { return proc.stderrText().find("msg=\"shutdown requested\"") != std::string::npos; },
      Millis{2000}));
  // Still draining: the request is held open.
  CHECK_FALSE(proc.wait(Millis{200}).has_value());
  proc.signal(SIGINT);
  auto second = Clock::now();
  auto code = proc.wait(Millis{3000});
  INFO("stderr:\n" << proc.stderrText());
  REQUIRE(code.has_value());
  CHECK(*code == 1);
  CHECK(since(second) < Millis{1500});
}

}  // namespace
}  // namespace proxy::integration::ops
