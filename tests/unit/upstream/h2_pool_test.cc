// H2Pool + H2Connection + H2Stream against a loopback h2c server (TestH2Upstream):
// multiplexing, MAX_CONCURRENT_STREAMS, GOAWAY and REFUSED_STREAM retries, a reset that
// cuts one stream only, timeouts, cancel and idle close. Connects that fail are in
// h2_pool_connect_failure_test.cc.
#include "proxy/upstream/h2_pool.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "proxy/upstream/h2_stream.h"
#include "tests/unit/upstream/h2_pool_fixture.h"
#include "tests/unit/upstream/h2_test_upstream.h"

namespace proxy::upstream {
namespace {

using testing::FakeH2Server;
using testing::RecordingSink;
using testing::runUntil;
using testing::TestH2Upstream;
using Conn = TestH2Upstream::Conn;
using Fixture = testing::H2PoolFixture;

using testing::echo;

TEST_CASE("several streams share one h2c connection") {
  Fixture f;
  RecordingSink sinks[5];
  for (int i = 0; i < 5; ++i) REQUIRE(f.open(sinks[i], "/s" + std::to_string(i)) != nullptr);
  REQUIRE(runUntil(&f.loop, [&] {
    for (auto& s : sinks) {
      if (!s.finished()) return false;
    }
    return true;
  }));
  for (int i = 0; i < 5; ++i) {
    CHECK(sinks[i].complete);
    CHECK(sinks[i].status == 200);
    CHECK(sinks[i].body == "/s" + std::to_string(i) + "|");
    CHECK(sinks[i].trailers.at("grpc-status") == "0");
    CHECK(sinks[i].calls_after_outcome == 0);
  }
  CHECK(f.upstream->conns.size() == 1);
  CHECK(f.upstream->conns[0]->server->requests.size() == 5);
  CHECK(f.pool->connectionCount() == 1);
}

TEST_CASE("300 streams against a limit of 50 spread over several connections and all finish") {
  FakeH2Server::Options options;
  options.max_concurrent_streams = 50;
  Fixture f(echo, options);
  std::vector<RecordingSink> sinks(300);
  for (size_t i = 0; i < sinks.size(); ++i) {
    REQUIRE(f.open(sinks[i], "/n" + std::to_string(i)) != nullptr);
  }
  REQUIRE(runUntil(&f.loop, [&] {
    return std::all_of(sinks.begin(), sinks.end(), [](auto& s) { return s.finished(); });
  }));
  size_t ok = 0;
  for (size_t i = 0; i < sinks.size(); ++i) {
    if (sinks[i].complete && sinks[i].body == "/n" + std::to_string(i) + "|") ++ok;
  }
  CHECK(ok == sinks.size());
  CHECK(f.upstream->conns.size() <= H2Pool::kMaxConnections);
  for (auto& conn : f.upstream->conns) CHECK(conn->max_open_requests <= 50);
  // Streams wait for each connection's SETTINGS, so none is sent beyond the limit.
  CHECK(f.pool->counters().retries == 0);
}

TEST_CASE("beyond the wait queue's bound a request fails as kOverloaded, later") {
  Fixture f;
  f.config.max_pending = 300;
  std::vector<RecordingSink> queued(f.config.max_pending);
  RecordingSink over;
  // Nothing has connected yet, so every request waits.
  for (auto& s : queued) REQUIRE(f.open(s, "/q") != nullptr);
  CHECK(f.pool->waitingCount() == f.config.max_pending);
  REQUIRE(f.open(over, "/over") != nullptr);
  CHECK_FALSE(over.finished());  // never from inside open()
  REQUIRE(runUntil(&f.loop, [&] { return over.finished(); }));
  REQUIRE(over.error.has_value());
  CHECK(*over.error == UpstreamError::kOverloaded);
  CHECK(f.pool->counters().overloaded == 1);
  REQUIRE(runUntil(&f.loop, [&] {
    return std::all_of(queued.begin(), queued.end(), [](auto& s) { return s.finished(); });
  }));
  CHECK(std::all_of(queued.begin(), queued.end(), [](auto& s) { return s.complete; }));
  CHECK(f.upstream->conns.size() == 3);  // 300 waiting, 100 expected of each new one
}

TEST_CASE("a request cancelled while it waits is never sent and never reported") {
  Fixture f;
  RecordingSink sink, other;
  H2Stream* s = f.open(sink, "/gone");
  f.open(other, "/kept");
  s->cancel();
  REQUIRE(runUntil(&f.loop, [&] { return other.finished(); }));
  CHECK(other.complete);
  CHECK_FALSE(sink.finished());
  CHECK(f.upstream->conns[0]->server->requests.size() == 1);
}

TEST_CASE("a request body and its trailers reach the upstream") {
  Fixture f;
  RecordingSink sink;
  H2Stream* s = f.open(sink, "/opentelemetry.proto.collector.logs.v1.LogsService/Export", false);
  REQUIRE(s != nullptr);
  CHECK(s->sendBody("\0\0\0\0\2hi", 7) == 0);
  CHECK(s->queuedBytes() == 7);
  http2::HeaderFields trailers = {{"x-end", "1"}};
  s->endRequest(&trailers);
  REQUIRE(runUntil(&f.loop, [&] { return sink.finished(); }));
  CHECK(sink.complete);
  CHECK(sink.body == std::string("/opentelemetry.proto.collector.logs.v1.LogsService/Export|") +
                         std::string("\0\0\0\0\2hi", 7));
  const FakeH2Server::Request& req = f.upstream->conns[0]->server->requests.begin()->second;
  REQUIRE(req.trailers.size() == 1);
  CHECK(req.trailers[0].value == "1");
}

TEST_CASE("the upstream's MAX_CONCURRENT_STREAMS is honoured: a full connection means a new one") {
  FakeH2Server::Options options;
  options.max_concurrent_streams = 2;
  bool hold = false;
  RecordingSink warm;
  RecordingSink sinks[3];  // outlive the fixture, whose closeAll() fails the held ones
  Fixture f(
      [&](Conn& conn, int32_t id) {
        if (!hold) echo(conn, id);
      },
      options);
  f.open(warm, "/warm");  // learns the limit from the upstream's SETTINGS
  REQUIRE(runUntil(&f.loop, [&] { return warm.complete; }));
  hold = true;
  for (auto& s : sinks) REQUIRE(f.open(s, "/held") != nullptr);
  REQUIRE(runUntil(&f.loop, [&] {
    return f.upstream->conns.size() == 2 && f.upstream->conns[1]->answered.size() == 1;
  }));
  CHECK(f.upstream->conns[0]->answered.size() == 3);  // /warm, then two held ones
  CHECK(f.upstream->conns[0]->max_open_requests <= 2);
  CHECK(f.pool->connectionCount() == 2);
  CHECK(f.pool->counters().retries == 0);
}

TEST_CASE("GOAWAY: streams above last-stream-id are retried on a new connection") {
  Fixture f([](Conn& conn, int32_t id) {
    if (conn.index > 0) {
      echo(conn, id);
      return;
    }
    if (conn.answered.size() < 3) return;
    // All three arrived: process only the first, refuse the rest with GOAWAY.
    int32_t first = conn.answered[0];
    conn.server->goaway(first, NGHTTP2_NO_ERROR);
    echo(conn, first);
  });
  RecordingSink a, b, c;
  f.open(a, "/a");
  H2Stream* sb = f.open(b, "/b", false);
  f.open(c, "/c");
  REQUIRE(sb != nullptr);
  CHECK(sb->sendBody("payload", 7) == 0);
  sb->endRequest(nullptr);
  REQUIRE(runUntil(&f.loop, [&] { return a.finished() && b.finished() && c.finished(); }));
  CHECK(a.complete);
  CHECK(b.complete);
  CHECK(c.complete);
  CHECK(b.body == "/b|payload");  // the body was replayed exactly
  CHECK(f.upstream->conns.size() == 2);
  CHECK(f.upstream->conns[1]->server->requests.size() == 2);
  CHECK(f.pool->counters().retries == 2);
  // The first connection closes once its last stream ended.
  REQUIRE(runUntil(&f.loop, [&] { return f.pool->connectionCount() == 1; }));
}

TEST_CASE("A stream every connection's GOAWAY leaves out is resent three times, then refused") {
  Fixture f([](Conn& conn, int32_t /*id*/) {
    // Every connection goes away before processing anything (last-stream-id 0).
    conn.server->goaway(0, NGHTTP2_NO_ERROR);
  });
  RecordingSink sink;
  f.open(sink, "/never");
  REQUIRE(runUntil(&f.loop, [&] { return sink.finished(); }));
  REQUIRE(sink.error.has_value());
  CHECK(*sink.error == UpstreamError::kRefused);  // never processed: 503, gRPC 14
  CHECK(f.pool->counters().retries == 3);
  CHECK(f.upstream->conns.size() == 4);  // the first try and three resends
  CHECK(f.stats.upstream_overloaded.get() == 1);
}

TEST_CASE("REFUSED_STREAM is retried once, then fails") {
  int refusals = 0;
  Fixture f([&](Conn& conn, int32_t id) {
    const std::string path = conn.server->requests[id].header(":path");
    if (path == "/once" && refusals++ == 0) {
      conn.server->reset(id, NGHTTP2_REFUSED_STREAM);
    } else if (path == "/always") {
      conn.server->reset(id, NGHTTP2_REFUSED_STREAM);
    } else {
      echo(conn, id);
    }
  });
  RecordingSink once, always;
  f.open(once, "/once");
  f.open(always, "/always");
  REQUIRE(runUntil(&f.loop, [&] { return once.finished() && always.finished(); }));
  CHECK(once.complete);
  CHECK(once.body == "/once|");
  REQUIRE(always.error.has_value());
  CHECK(*always.error == UpstreamError::kRefused);  // not processed: 503, gRPC 14
  CHECK(f.pool->counters().retries == 2);           // one each
  CHECK(f.pool->sessionCounters().resets_received.get(NGHTTP2_REFUSED_STREAM) == 3);
}

TEST_CASE("an upstream reset mid-response cuts that stream only") {
  Fixture f([](Conn& conn, int32_t id) {
    if (conn.server->requests[id].header(":path") != "/cut") {
      echo(conn, id);
      return;
    }
    conn.server->sendHead(id, 200, {}, false);
    conn.server->sendData(id, "part", false);
    conn.owner->flush(conn);  // HEADERS and DATA go out before the RST_STREAM
    conn.server->reset(id, NGHTTP2_INTERNAL_ERROR);
  });
  RecordingSink cut, whole;
  f.open(cut, "/cut");
  f.open(whole, "/whole");
  REQUIRE(runUntil(&f.loop, [&] { return cut.finished() && whole.finished(); }));
  CHECK(cut.status == 200);
  CHECK(cut.body == "part");
  REQUIRE(cut.error.has_value());
  CHECK(*cut.error == UpstreamError::kStreamReset);  // the downstream cuts: the head went on
  CHECK_FALSE(cut.complete);
  CHECK(whole.complete);
  CHECK(whole.body == "/whole|");
  // The connection survives: the next request rides it.
  RecordingSink next;
  f.open(next, "/next");
  REQUIRE(runUntil(&f.loop, [&] { return next.finished(); }));
  CHECK(next.complete);
  CHECK(f.upstream->conns.size() == 1);
}

TEST_CASE("a lost connection cuts the responses in flight and no other connection") {
  Fixture f([](Conn& conn, int32_t id) {
    if (conn.index > 0) {
      echo(conn, id);
      return;
    }
    conn.server->sendHead(id, 200, {}, false);
    conn.server->sendData(id, "half", false);
    if (conn.answered.size() < 2) return;
    conn.owner->flush(conn);
    conn.owner->closeConn(conn);
  });
  RecordingSink a, b;
  f.open(a, "/a");
  f.open(b, "/b");
  REQUIRE(runUntil(&f.loop, [&] { return a.finished() && b.finished(); }));
  for (RecordingSink* s : {&a, &b}) {
    REQUIRE(s->error.has_value());
    CHECK(*s->error == UpstreamError::kClosedMidBody);
    CHECK(s->body == "half");
  }
  RecordingSink next;  // a new connection takes the next request
  f.open(next, "/next");
  REQUIRE(runUntil(&f.loop, [&] { return next.finished(); }));
  CHECK(next.complete);
  CHECK(f.upstream->conns.size() == 2);
}

TEST_CASE("a response that stops after its head ends as kStalled after stream_idle_timeout") {
  Fixture f([](Conn& conn, int32_t id) { conn.server->sendHead(id, 200, {}, false); });
  f.config.response_timeout = config::Millis(60'000);
  f.config.stream_idle_timeout = config::Millis(100);
  RecordingSink sink;
  f.open(sink, "/quiet");
  REQUIRE(runUntil(&f.loop, [&] { return sink.finished(); }));
  CHECK(sink.status == 200);
  REQUIRE(sink.error.has_value());
  CHECK(*sink.error == UpstreamError::kStalled);
  CHECK(f.stats.upstream_timeouts.get() == 1);  // as the HTTP/1.1 pool counts a stall
}

TEST_CASE("a body beyond the low watermark reports onUpstreamDrained once it is framed") {
  Fixture f;
  RecordingSink sink;
  H2Stream* s = f.open(sink, "/upload", false);
  std::string big(256 * 1024, 'b');
  REQUIRE(s->sendBody(big.data(), big.size()) == 0);
  CHECK(s->queuedBytes() == big.size());
  s->endRequest(nullptr);
  REQUIRE(runUntil(&f.loop, [&] { return sink.finished(); }));
  CHECK(sink.complete);
  CHECK(sink.drained >= 1);
  CHECK(sink.body.size() == std::string("/upload|").size() + big.size());
}

TEST_CASE("response bytes stop at the stream window until the sink consumes them") {
  constexpr size_t kTotal = 3 * 1024 * 1024;
  constexpr size_t kStreamWindow = http2::ClientOptions{}.stream_window;
  Fixture f([](Conn& conn, int32_t id) {
    conn.server->sendHead(id, 200, {}, false);
    conn.server->sendData(id, std::string(kTotal, 'r'), true);
  });
  RecordingSink sink;
  sink.consume_all = false;
  REQUIRE(f.open(sink, "/big") != nullptr);
  REQUIRE(runUntil(&f.loop, [&] {
    return !f.upstream->conns.empty() && !f.upstream->conns[0]->answered.empty() &&
           f.upstream->conns[0]->server->sendWindow(1) == 0 && sink.body.size() == kStreamWindow;
  }));
  CHECK_FALSE(sink.finished());
  size_t consumed = 0;
  REQUIRE(runUntil(&f.loop, [&] {
    if (sink.stream != nullptr && consumed < sink.body.size()) {
      sink.stream->consumed(sink.body.size() - consumed);
      consumed = sink.body.size();
    }
    return sink.finished();
  }));
  CHECK(sink.complete);
  CHECK(sink.body.size() == kTotal);
}

TEST_CASE("the h2c upstream may be a unix socket") {
  std::string path = "/tmp/h2_pool_test." + std::to_string(uv_os_getpid()) + ".sock";
  uv_fs_t req;
  uv_fs_unlink(nullptr, &req, path.c_str(), nullptr);
  uv_fs_req_cleanup(&req);
  RecordingSink sink;
  {
    Fixture f;  // its TCP upstream stays unused
    f.extra = std::make_unique<TestH2Upstream>(&f.loop, FakeH2Server::Options{}, echo, path);
    f.config.tcp.reset();
    f.config.unix_path = path;
    f.replacePool();
    REQUIRE(f.open(sink, "/u") != nullptr);
    REQUIRE(runUntil(&f.loop, [&] { return sink.finished(); }));
    CHECK(sink.complete);
    CHECK(sink.body == "/u|");
  }
  uv_fs_unlink(nullptr, &req, path.c_str(), nullptr);
  uv_fs_req_cleanup(&req);
}

TEST_CASE("no response head within response_timeout: kResponseTimeout and a reset upstream") {
  Fixture f([](Conn&, int32_t) {});
  f.config.response_timeout = config::Millis(100);
  RecordingSink sink;
  f.open(sink, "/slow");
  REQUIRE(runUntil(&f.loop, [&] { return sink.finished(); }));
  REQUIRE(sink.error.has_value());
  CHECK(*sink.error == UpstreamError::kResponseTimeout);
  CHECK(f.stats.upstream_timeouts.get() == 1);
  auto& reqs = f.upstream->conns[0]->server->requests;
  REQUIRE(runUntil(&f.loop, [&] { return reqs.begin()->second.closed; }));
  CHECK(reqs.begin()->second.close_code == NGHTTP2_CANCEL);
}

TEST_CASE("cancel() resets the upstream stream and silences the sink") {
  Fixture f([](Conn& conn, int32_t id) {
    conn.server->sendHead(id, 200, {}, false);
    conn.server->sendData(id, "first", false);
  });
  RecordingSink sink;
  f.open(sink, "/stream");
  REQUIRE(runUntil(&f.loop, [&] { return sink.body == "first"; }));
  CHECK(sink.events_done > 0);
  sink.stream->cancel();
  sink.stream = nullptr;
  auto& reqs = f.upstream->conns[0]->server->requests;
  REQUIRE(runUntil(&f.loop, [&] { return reqs.begin()->second.closed; }));
  CHECK(reqs.begin()->second.close_code == NGHTTP2_CANCEL);
  CHECK_FALSE(sink.finished());
  CHECK(sink.calls_after_outcome == 0);
}

TEST_CASE("an idle connection closes after upstream.idle_timeout") {
  Fixture f;
  f.config.idle_timeout = config::Millis(50);
  RecordingSink sink;
  f.open(sink, "/one");
  REQUIRE(runUntil(&f.loop, [&] { return sink.complete; }));
  CHECK(f.pool->connectionCount() == 1);
  REQUIRE(runUntil(&f.loop, [&] { return f.pool->connectionCount() == 0; }));
}

TEST_CASE("closeAll() fails the streams in flight") {
  Fixture f([](Conn&, int32_t) {});
  RecordingSink sink;
  f.open(sink, "/never");
  REQUIRE(runUntil(&f.loop, [&] { return f.upstream->conns.size() == 1; }));
  f.pool->closeAll();
  REQUIRE(sink.error.has_value());
  CHECK(*sink.error == UpstreamError::kClosedEarly);
  RecordingSink late;
  CHECK(f.open(late, "/late") == nullptr);
}

}  // namespace
}  // namespace proxy::upstream
