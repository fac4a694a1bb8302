// H2PoolFixture: an H2Pool dialling a loopback h2c server (TestH2Upstream) through the
// worker's ResolvingConnector, on the test's own loop; and upstreams that fail the connect
// (silent, closing or resetting each connection). Shared by h2_pool_test.cc and
// h2_pool_connect_failure_test.cc. Test code only.
#pragma once

#include <uv.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "proxy/upstream/h2_pool.h"
#include "proxy/upstream/h2_stream.h"
#include "proxy/upstream/resolving_connector.h"
#include "tests/unit/upstream/h2_test_upstream.h"

namespace proxy::testing {

struct H2PoolFixture {
  explicit H2PoolFixture(TestH2Upstream::Handler handler = echo,
                         FakeH2Server::Options options = {}) {
    uv_loop_init(&loop);
    upstream = std::make_unique<TestH2Upstream>(&loop, options, std::move(handler));
    config.tcp = config::HostPort{"127.0.0.1", upstream->port()};
    config.url = "http://127.0.0.1:" + std::to_string(upstream->port());
    connector = std::make_unique<upstream::ResolvingConnector>(&loop, config);
    pool = std::make_unique<upstream::H2Pool>(&loop, config, stats, read_buffer, connector.get());
  }
  ~H2PoolFixture() {
    pool->closeAll();
    connector->close();
    upstream->close();
    if (extra) extra->close();
    if (silent_open) uv_close(reinterpret_cast<uv_handle_t*>(&silent), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    pool.reset();
    connector.reset();
    upstream.reset();
    extra.reset();
    CHECK(uv_loop_close(&loop) == 0);
  }
  // A fresh pool for a changed config (the old one closes first).
  void replacePool() {
    pool->closeAll();
    REQUIRE(runUntil(&loop, [&] { return pool->connectionCount() == 0; }));
    connector->close();
    connector = std::make_unique<upstream::ResolvingConnector>(&loop, config);
    pool = std::make_unique<upstream::H2Pool>(&loop, config, stats, read_buffer, connector.get());
  }
  // Points the config at a listener that never accepts: the kernel completes TCP
  // handshakes, then nothing is ever said (an upstream that sends no SETTINGS). Call
  // replacePool() after.
  void dialSilentUpstream() {
    listenOnSilent([](uv_stream_t*, int) {});
  }
  // Points the config at a listener that accepts every connection and at once closes it,
  // or resets it when `reset` (an upstream restarting, or with a full backlog). Call
  // replacePool() after; `accepted` counts the connections made.
  void dialClosingUpstream(bool reset) {
    closing_reset = reset;
    listenOnSilent([](uv_stream_t* server, int) {
      auto* self = static_cast<H2PoolFixture*>(server->data);
      auto* c = new uv_tcp_t;
      uv_tcp_init(server->loop, c);
      if (uv_accept(server, reinterpret_cast<uv_stream_t*>(c)) == 0) ++self->accepted;
      auto freeIt = [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); };
      if (!self->closing_reset || uv_tcp_close_reset(c, freeIt) != 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(c), freeIt);
      }
    });
  }
  void listenOnSilent(uv_connection_cb on_connection) {
    uv_tcp_init(&loop, &silent);
    silent_open = true;
    silent.data = this;
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", 0, &addr);
    REQUIRE(uv_tcp_bind(&silent, reinterpret_cast<const sockaddr*>(&addr), 0) == 0);
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&silent), 8, on_connection) == 0);
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&silent, reinterpret_cast<sockaddr*>(&bound), &len);
    config.tcp =
        config::HostPort{"127.0.0.1", ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)};
  }
  upstream::H2Stream* open(RecordingSink& sink, const std::string& path, bool end_stream = true) {
    return openRequest(*pool, sink, path, end_stream);
  }
  // One request for "/" that must end in an error (sink.error is then set).
  void failOne(RecordingSink& sink) {
    REQUIRE(open(sink, "/") != nullptr);
    REQUIRE(runUntil(&loop, [&] { return sink.finished(); }));
    REQUIRE(sink.error.has_value());
  }

  uv_loop_t loop{};
  config::UpstreamConfig config;
  WorkerStats stats;
  uv::ReadBuffer read_buffer;
  std::unique_ptr<TestH2Upstream> upstream;
  std::unique_ptr<TestH2Upstream> extra;  // a second upstream, when a test wants one
  std::unique_ptr<upstream::ResolvingConnector>
      connector;  // the worker's, shared with nothing here
  std::unique_ptr<upstream::H2Pool> pool;
  uv_tcp_t silent{};  // dialSilentUpstream()'s or dialClosingUpstream()'s listener
  bool silent_open = false;
  bool closing_reset = false;
  int accepted = 0;  // connections dialClosingUpstream()'s listener took
};

}  // namespace proxy::testing
