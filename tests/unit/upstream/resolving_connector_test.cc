// ResolvingConnector, the real connector, on loopback: failover between addresses and
// keeping the one that worked, the lookup off the loop that connects wait for, a unix path
// that does not exist, and abandon() silencing an attempt.
#include "proxy/upstream/resolving_connector.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/unit/upstream/h2_test_upstream.h"

namespace proxy::upstream {
namespace {

using testing::runUntil;

// One connection's side of a connect: its socket, attempt and the outcomes it was told.
struct Dialer : UpstreamConnector::Client {
  UpstreamSocket socket{};
  UpstreamConnector::Attempt attempt{};
  std::vector<std::string> outcomes;  // "ok" or the error message

  void onUpstreamConnected(const Status& status) override {
    outcomes.push_back(status ? std::string("ok") : status.message());
  }
  void close() {
    if (attempt.handle_open) uv_close(reinterpret_cast<uv_handle_t*>(&socket), nullptr);
    attempt.handle_open = false;
  }
};

struct Fixture {
  Fixture() {
    uv_loop_init(&loop);
    uv_tcp_init(&loop, &listener);
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", 0, &addr);
    REQUIRE(uv_tcp_bind(&listener, reinterpret_cast<const sockaddr*>(&addr), 0) == 0);
    // Never accepts: the kernel completes the handshakes, which is all a connect needs.
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&listener), 8, [](uv_stream_t*, int) {}) == 0);
    int len = sizeof open_address;
    uv_tcp_getsockname(&listener, reinterpret_cast<sockaddr*>(&open_address), &len);
    closed_port = testing::closedPort(&loop);
  }
  ~Fixture() {
    if (connector) connector->close();
    for (auto& d : dialers) d->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&listener), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    connector.reset();
    CHECK(uv_loop_close(&loop) == 0);
  }
  uint16_t openPort() const {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&open_address)->sin_port);
  }
  void makeConnector() { connector = std::make_unique<ResolvingConnector>(&loop, config); }
  // Starts a connect; returns the dialer once the attempt started (not yet reported).
  Dialer& dial() {
    dialers.push_back(std::make_unique<Dialer>());
    Dialer& d = *dialers.back();
    Status st = connector->connect(d.socket, &d, &d, d.attempt);
    REQUIRE(st.isOk());
    CHECK(d.outcomes.empty());  // never from inside connect()
    return d;
  }
  bool reported(Dialer& d) {
    return runUntil(&loop, [&] { return !d.outcomes.empty(); });
  }

  uv_loop_t loop{};
  uv_tcp_t listener{};
  sockaddr_storage open_address{};
  uint16_t closed_port = 0;
  config::UpstreamConfig config;
  std::unique_ptr<ResolvingConnector> connector;
  std::vector<std::unique_ptr<Dialer>> dialers;
};

TEST_CASE("ResolvingConnector moves to the next address after a refusal and keeps it",
          "[unit][upstream]") {
  Fixture f;
  f.config.tcp = config::HostPort{"127.0.0.1", f.openPort()};
  f.makeConnector();
  sockaddr_storage refused{};
  uv_ip4_addr("127.0.0.1", f.closed_port, reinterpret_cast<sockaddr_in*>(&refused));
  f.connector->setAddressesForTest({refused, f.open_address});
  CHECK(f.connector->addressCount() == 2);
  Dialer& first = f.dial();
  CHECK(first.attempt.address == 0);
  REQUIRE(f.reported(first));
  CHECK(first.outcomes[0] != "ok");
  CHECK(f.connector->preferredForTest() == 1);
  Dialer& second = f.dial();
  CHECK(second.attempt.address == 1);
  REQUIRE(f.reported(second));
  CHECK(second.outcomes[0] == "ok");
  Dialer& third = f.dial();  // the address that worked stays preferred
  CHECK(third.attempt.address == 1);
  REQUIRE(f.reported(third));
  CHECK(third.outcomes[0] == "ok");
  CHECK(first.outcomes.size() == 1);
}

TEST_CASE("ResolvingConnector: a timed-out attempt is silenced and the next one rotates",
          "[unit][upstream]") {
  Fixture f;
  f.config.tcp = config::HostPort{"127.0.0.1", f.openPort()};
  f.makeConnector();
  sockaddr_storage other = f.open_address;
  f.connector->setAddressesForTest({f.open_address, other});
  Dialer& slow = f.dial();
  f.connector->timedOut(slow.attempt);  // as a connection's connect timer would
  slow.close();                         // libuv cancels the connect: nothing is reported
  CHECK(f.connector->preferredForTest() == 1);
  Dialer& next = f.dial();
  CHECK(next.attempt.address == 1);
  REQUIRE(f.reported(next));
  uv_run(&f.loop, UV_RUN_NOWAIT);
  CHECK(slow.outcomes.empty());
}

TEST_CASE("ResolvingConnector resolves a name off the loop: connects wait for the answer",
          "[unit][upstream]") {
  Fixture f;
  // "localhost" may give ::1 first, where nothing listens: the connector then fails over.
  f.config.tcp = config::HostPort{"localhost", f.openPort()};
  f.makeConnector();
  Dialer& d = f.dial();
  REQUIRE(f.reported(d));
  size_t tries = 1;
  std::string last = d.outcomes[0];
  while (last != "ok" && tries < f.connector->addressCount()) {
    Dialer& again = f.dial();
    REQUIRE(f.reported(again));
    last = again.outcomes[0];
    ++tries;
  }
  CHECK(last == "ok");
}

TEST_CASE("ResolvingConnector: a refreshed lookup keeps the address that works preferred",
          "[unit][upstream]") {
  Fixture f;
  f.config.tcp = config::HostPort{"localhost", f.openPort()};
  f.makeConnector();
  std::string last;
  for (size_t tries = 0; last != "ok" && tries < 4; ++tries) {
    Dialer& d = f.dial();
    REQUIRE(f.reported(d));
    last = d.outcomes[0];
  }
  REQUIRE(last == "ok");
  size_t working = f.connector->preferredForTest();
  f.connector->refreshForTest();
  REQUIRE(f.connector->resolvingForTest());
  REQUIRE(runUntil(&f.loop, [&] { return !f.connector->resolvingForTest(); }));
  CHECK(f.connector->preferredForTest() == working);
  Dialer& next = f.dial();
  REQUIRE(f.reported(next));
  CHECK(next.outcomes[0] == "ok");
}

TEST_CASE("ResolvingConnector: an attempt abandoned while the name resolves is never reported",
          "[unit][upstream]") {
  Fixture f;
  f.config.tcp = config::HostPort{"localhost", f.openPort()};
  f.makeConnector();
  Dialer& gone = f.dial();
  f.connector->abandon(gone.attempt);
  gone.close();
  Dialer& kept = f.dial();
  REQUIRE(f.reported(kept));
  CHECK(gone.outcomes.empty());
}

TEST_CASE("ResolvingConnector: a unix socket that does not exist fails later, as a value",
          "[unit][upstream]") {
  Fixture f;
  f.config.tcp.reset();
  f.config.unix_path = "/nonexistent/apm-tls-proxy-test.sock";
  f.makeConnector();
  CHECK(f.connector->addressCount() == 1);
  Dialer& d = f.dial();
  REQUIRE(f.reported(d));
  CHECK(d.outcomes[0] == uv_strerror(UV_ENOENT));
}

}  // namespace
}  // namespace proxy::upstream
