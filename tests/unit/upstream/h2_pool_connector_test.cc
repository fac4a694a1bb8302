// H2Pool through a FakeConnector: no network. Each h2c connection's upstream is a
// FakeH2Server on the test's end of a socketpair. The connector is the same seam the
// HTTP/1.1 pool uses: MAX_CONCURRENT_STREAMS over its sockets, failover to the next
// address after a refused connect, and a connect timeout reported to it.
#include <catch2/catch.hpp>
#include <memory>

#include "proxy/upstream/h2_pool.h"
#include "proxy/upstream/h2_stream.h"
#include "tests/unit/upstream/fake_connector.h"
#include "tests/unit/upstream/h2_test_upstream.h"

namespace proxy::upstream {
namespace {

using testing::FakeConnector;
using testing::FakeH2Server;
using testing::RecordingSink;
using testing::runUntil;
using testing::TestH2Upstream;

struct Fixture {
  explicit Fixture(TestH2Upstream::Handler handler = testing::echo,
                   FakeH2Server::Options options = {}) {
    uv_loop_init(&loop);
    config.tcp = config::HostPort{"127.0.0.1", 1};  // never dialled: the fake connects
    upstream = std::make_unique<TestH2Upstream>(&loop, options, std::move(handler),
                                                TestH2Upstream::NoListener{});
    connector = std::make_unique<FakeConnector>(&loop);
    connector->on_connected = [this](size_t, int fd) {
      upstream->adopt(fd);
      return true;
    };
    pool = std::make_unique<H2Pool>(&loop, config, stats, read_buffer, connector.get());
  }
  ~Fixture() {
    pool->closeAll();
    connector->close();
    upstream->close();
    uv_run(&loop, UV_RUN_DEFAULT);
    pool.reset();
    connector.reset();
    upstream.reset();
    CHECK(uv_loop_close(&loop) == 0);
  }
  H2Stream* open(RecordingSink& sink, const std::string& path) {
    return testing::openRequest(*pool, sink, path, true);
  }

  uv_loop_t loop{};
  config::UpstreamConfig config;
  WorkerStats stats;
  uv::ReadBuffer read_buffer;
  std::unique_ptr<TestH2Upstream> upstream;
  std::unique_ptr<FakeConnector> connector;
  std::unique_ptr<H2Pool> pool;
};

TEST_CASE("h2c over the connector: a connection takes at most the peer's MAX_CONCURRENT_STREAMS",
          "[unit][upstream][h2]") {
  FakeH2Server::Options options;
  options.max_concurrent_streams = 2;
  RecordingSink sinks[3];  // outlive the fixture, whose closeAll() fails them
  Fixture f([](TestH2Upstream::Conn&, int32_t) {}, options);  // never answers
  f.connector->auto_succeed = true;
  for (auto& s : sinks) REQUIRE(f.open(s, "/held") != nullptr);
  REQUIRE(runUntil(&f.loop, [&] {
    return f.upstream->conns.size() == 2 && f.upstream->conns[1]->answered.size() == 1;
  }));
  CHECK(f.connector->records.size() == 2);
  CHECK(f.upstream->conns[0]->answered.size() == 2);
  CHECK(f.upstream->conns[0]->max_open_requests == 2);
  CHECK(f.pool->connectionCount() == 2);
  CHECK(f.pool->counters().retries == 0);
  for (auto& s : sinks) CHECK_FALSE(s.finished());
}

TEST_CASE("h2c: a refused connect goes on to the connector's next address",
          "[unit][upstream][h2]") {
  RecordingSink sink;
  Fixture f;
  f.connector->address_count = 2;
  REQUIRE(f.open(sink, "/failover") != nullptr);
  REQUIRE(f.connector->records.size() == 1);
  f.connector->refuse(0);
  CHECK(f.stats.upstream_connect_failures.get() == 1);
  CHECK_FALSE(sink.finished());
  REQUIRE(f.connector->records.size() == 2);  // dialled again at once
  CHECK(f.connector->records[1].address == 1);
  SECTION("the next address answers: the stream completes") {
    f.connector->succeed(1);
    REQUIRE(runUntil(&f.loop, [&] { return sink.finished(); }));
    CHECK(sink.complete);
    CHECK(sink.body == "/failover|");
  }
  SECTION("every address refused: the stream fails as kConnectFailed") {
    f.connector->refuse(1);
    REQUIRE(runUntil(&f.loop, [&] { return sink.finished(); }));
    REQUIRE(sink.error.has_value());
    CHECK(*sink.error == UpstreamError::kConnectFailed);
    CHECK(sink.detail == "connection refused");
    CHECK(f.connector->records.size() == 2);
  }
}

TEST_CASE("h2c: a connect that never completes fails after connect_timeout and tells the connector",
          "[unit][upstream][h2]") {
  RecordingSink sink;
  Fixture f;
  f.config.connect_timeout = config::Millis(50);
  REQUIRE(f.open(sink, "/slow") != nullptr);
  REQUIRE(runUntil(&f.loop, [&] { return sink.finished(); }));
  REQUIRE(sink.error.has_value());
  CHECK(*sink.error == UpstreamError::kConnectFailed);
  REQUIRE(f.connector->records.size() == 1);
  CHECK(f.connector->records[0].timed_out);
  CHECK(f.connector->pendingCount() == 0);
}

TEST_CASE("h2c: a connector that cannot start a connect makes open() return nullptr",
          "[unit][upstream][h2]") {
  RecordingSink sink;
  Fixture f;
  f.connector->fail_start = Status::error("too many open files");
  CHECK(f.open(sink, "/x") == nullptr);
  CHECK_FALSE(sink.finished());
  CHECK(f.stats.upstream_connect_failures.get() == 1);
}

}  // namespace
}  // namespace proxy::upstream
