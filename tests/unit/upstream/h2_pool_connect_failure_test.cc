// H2Pool connects that fail, against real loopback sockets through the worker's
// ResolvingConnector: connection refused, an upstream that accepts and then says nothing
// (no SETTINGS: the connect times out, or the call's stream_idle_timeout comes first) or
// closes or resets each connection, and the next address after a connection lost before
// SETTINGS. The same connector seam with a fake: h2_pool_connector_test.cc.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "proxy/upstream/h2_pool.h"
#include "proxy/upstream/h2_stream.h"
#include "tests/unit/upstream/h2_pool_fixture.h"
#include "tests/unit/upstream/h2_test_upstream.h"

namespace proxy::upstream {
namespace {

using testing::RecordingSink;
using testing::runUntil;
using Fixture = testing::H2PoolFixture;

TEST_CASE("a call that finds no stream within stream_idle_timeout is kOverloaded, counted") {
  Fixture f;
  f.dialSilentUpstream();
  f.config.connect_timeout = config::Millis(30'000);
  f.config.stream_idle_timeout = config::Millis(100);
  f.replacePool();
  RecordingSink sink;
  REQUIRE(f.open(sink, "/") != nullptr);
  REQUIRE(runUntil(&f.loop, [&] { return sink.finished(); }));
  REQUIRE(sink.error.has_value());
  CHECK(*sink.error == UpstreamError::kOverloaded);  // the upstream was never asked
  CHECK(f.stats.upstream_overloaded.get() == 1);     // as the HTTP/1.1 pool counts it
  CHECK(f.stats.upstream_timeouts.get() == 0);
}

TEST_CASE("connection refused reaches the sink as kConnectFailed, never from open()") {
  Fixture f;
  f.config.tcp = config::HostPort{"127.0.0.1", testing::closedPort(&f.loop)};
  f.replacePool();
  RecordingSink sink;
  REQUIRE(f.open(sink, "/") != nullptr);
  CHECK_FALSE(sink.finished());
  REQUIRE(runUntil(&f.loop, [&] { return sink.finished(); }));
  REQUIRE(sink.error.has_value());
  CHECK(*sink.error == UpstreamError::kConnectFailed);
  CHECK(f.stats.upstream_connect_failures.get() >= 1);
}

TEST_CASE("an upstream that accepts but never sends SETTINGS fails like a connect") {
  Fixture f;
  f.dialSilentUpstream();
  f.config.connect_timeout = config::Millis(100);
  f.replacePool();
  RecordingSink sink;
  f.failOne(sink);
  CHECK(*sink.error == UpstreamError::kConnectFailed);
  CHECK(sink.detail.find("SETTINGS") != std::string::npos);
}

TEST_CASE(
    "an upstream that closes or resets each connection before SETTINGS fails like a connect") {
  for (bool reset : {false, true}) {
    INFO((reset ? "reset" : "close"));
    Fixture f;
    f.dialClosingUpstream(reset);
    f.replacePool();
    RecordingSink sink;
    f.failOne(sink);
    CHECK(*sink.error == UpstreamError::kConnectFailed);
    // A reset may already fail the connect itself ("connection reset by peer").
    INFO("detail: " << sink.detail);
    if (!reset) CHECK(sink.detail.find("before its SETTINGS") != std::string::npos);
    // One address: one failed connect ends the call. Before, each lost connection
    // dialled the next at once, thousands until the call's deadline.
    CHECK(f.accepted <= 2);
    CHECK(f.stats.upstream_connect_failures.get() >= 1);
  }
}

TEST_CASE("a connection lost before SETTINGS moves the next connect to the next address") {
  // "localhost" with something that is not APM Server on one of its addresses: the call
  // must reach the address that serves h2c, not fail on the first one twice.
  Fixture f;
  const uint16_t good_port = f.upstream->port();
  f.dialClosingUpstream(false);
  f.replacePool();
  sockaddr_in bad{}, good{};
  uv_ip4_addr("127.0.0.1", f.config.tcp->port, &bad);
  uv_ip4_addr("127.0.0.1", good_port, &good);
  std::vector<sockaddr_storage> addresses(2);
  std::memcpy(&addresses[0], &bad, sizeof bad);
  std::memcpy(&addresses[1], &good, sizeof good);
  f.connector->setAddressesForTest(addresses);
  RecordingSink sink;
  REQUIRE(f.open(sink, "/") != nullptr);
  REQUIRE(runUntil(&f.loop, [&] { return sink.finished(); }));
  INFO("detail: " << sink.detail);
  CHECK_FALSE(sink.error.has_value());
  CHECK(sink.complete);
  CHECK(f.accepted == 1);
  CHECK(f.stats.upstream_connect_failures.get() == 1);  // once per lost connection
}

}  // namespace
}  // namespace proxy::upstream
