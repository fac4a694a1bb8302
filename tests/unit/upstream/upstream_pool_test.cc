// UpstreamPool + UpstreamConnection (HTTP/1.1) through a FakeConnector: no network. Each
// connection's upstream is the test's end of a socketpair. Checkout, release and reuse,
// stale idle connections, connect failures, the connection cap and its wait queue, and
// shutdown.
#include "proxy/upstream/upstream_pool.h"

#include <arpa/inet.h>
#include <sys/un.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "proxy/upstream/upstream_connection.h"
#include "proxy/uv/peer_address.h"
#include "tests/unit/upstream/fake_connector.h"
#include "tests/unit/upstream/h2_test_upstream.h"

namespace proxy::upstream {
namespace {

using testing::FakeConnector;
using testing::readAvailable;
using testing::runUntil;
using testing::writeAll;

// Records what an UpstreamConnection hands its sink.
struct Sink : ResponseSink {
  int status = 0;
  std::string body;
  bool complete = false;
  std::optional<UpstreamError> error;
  std::optional<std::string> replay;  // the request handed back by onUpstreamReplayable
  std::string detail;
  int outcomes = 0;

  bool finished() const { return outcomes > 0; }
  void onResponseHead(http::MessageHead& head) override {
    if (head.status >= 200) status = head.status;
  }
  void onResponseBody(const char* data, size_t len) override { body.append(data, len); }
  void onResponseComplete() override {
    complete = true;
    ++outcomes;
  }
  void onUpstreamError(UpstreamError e, const char* d) override {
    error = e;
    detail = d;
    ++outcomes;
  }
  void onUpstreamReplayable(std::string unsent, const char* d) override {
    replay = std::move(unsent);
    detail = d;
    ++outcomes;
  }
  void onUpstreamEventDone() override {}
  void onUpstreamDrained() override {}
};

std::string requestFor(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: apm\r\n\r\n";
}

std::string okResponse(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

struct Fixture {
  Fixture() {
    uv_loop_init(&loop);
    config.tcp = config::HostPort{"127.0.0.1", 1};  // never dialled: the fake connects
    connector = std::make_unique<FakeConnector>(&loop);
    pool = std::make_unique<UpstreamPool>(&loop, config, stats, read_buffer, connector.get());
  }
  ~Fixture() {
    pool->closeAll();
    connector->close();
    uv_run(&loop, UV_RUN_DEFAULT);
    pool.reset();
    connector.reset();
    CHECK(uv_loop_close(&loop) == 0);
  }
  // Checks out a connection for `sink` and queues a GET for `path` on it.
  UpstreamConnection* send(Sink& sink, const std::string& path, bool fresh = false) {
    why = UpstreamError::kBadResponse;
    UpstreamConnection* conn = pool->checkout(&sink, false, &why, fresh);
    if (conn == nullptr) return nullptr;
    conn->out() += requestFor(path);
    REQUIRE(conn->flush() == 0);
    conn->requestComplete();
    return conn;
  }
  // The latest connector attempt made for `conn` (a freed connection's address may be
  // reused by a new one).
  size_t attemptOf(UpstreamConnection* conn) const {
    for (size_t i = connector->records.size(); i-- > 0;) {
      if (connector->records[i].client == conn) return i;
    }
    FAIL("no connect attempt for this connection");
    return 0;
  }
  // Waits for one whole request head at the upstream end of attempt `i`.
  std::string awaitRequest(size_t i) {
    std::string got;
    int fd = connector->records.at(i).peer_fd;
    REQUIRE(runUntil(&loop, [&] {
      got += readAvailable(fd);
      return got.find("\r\n\r\n") != std::string::npos;
    }));
    return got;
  }
  // One whole exchange on attempt `i`: the request arrives, "ok:<path>" answers it.
  void answer(size_t i, Sink& sink, const std::string& path) {
    CHECK(awaitRequest(i) == requestFor(path));
    writeAll(connector->records[i].peer_fd, okResponse("ok:" + path));
    REQUIRE(runUntil(&loop, [&] { return sink.finished(); }));
    CHECK(sink.complete);
    CHECK(sink.body == "ok:" + path);
  }

  uv_loop_t loop{};
  config::UpstreamConfig config;
  WorkerStats stats;
  uv::ReadBuffer read_buffer;
  std::unique_ptr<FakeConnector> connector;
  std::unique_ptr<UpstreamPool> pool;
  UpstreamError why = UpstreamError::kBadResponse;
};

TEST_CASE("a checkout dials through the connector: the request waits for the connect",
          "[unit][upstream]") {
  Sink sink;
  Fixture f;
  UpstreamConnection* conn = f.send(sink, "/first");
  REQUIRE(conn != nullptr);
  REQUIRE(f.connector->records.size() == 1);
  CHECK(conn->state() == UpstreamConnection::State::kConnecting);
  CHECK(readAvailable(f.connector->records[0].peer_fd).empty());  // nothing before the connect
  CHECK_FALSE(sink.finished());
  f.connector->succeed(0);
  f.answer(0, sink, "/first");
  CHECK(sink.status == 200);
  CHECK(sink.outcomes == 1);
  CHECK(f.pool->idleCount() == 1);
  CHECK(f.stats.upstream_connect_failures.get() == 0);
}

TEST_CASE("released connections are reused, the most recently used first", "[unit][upstream]") {
  Sink a, b, c;
  Fixture f;
  f.connector->auto_succeed = true;
  UpstreamConnection* ca = f.send(a, "/a");
  UpstreamConnection* cb = f.send(b, "/b");
  REQUIRE(ca != nullptr);
  REQUIRE(cb != nullptr);
  REQUIRE(ca != cb);
  f.answer(f.attemptOf(ca), a, "/a");
  f.answer(f.attemptOf(cb), b, "/b");  // released last
  CHECK(f.pool->idleCount() == 2);
  UpstreamConnection* cc = f.send(c, "/c");
  CHECK(cc == cb);
  CHECK(f.connector->records.size() == 2);  // no new dial
  CHECK(f.pool->idleCount() == 1);
  f.answer(f.attemptOf(cb), c, "/c");
}

TEST_CASE("an idle connection the upstream closed is reused only by a request it can replay",
          "[unit][upstream]") {
  std::signal(SIGPIPE, SIG_IGN);  // as main() does: a write into a closed socket fails
  Sink first, second;
  Fixture f;
  f.connector->auto_succeed = true;
  UpstreamConnection* conn = f.send(first, "/one");
  REQUIRE(conn != nullptr);
  f.answer(0, first, "/one");
  REQUIRE(f.pool->idleCount() == 1);
  f.connector->closePeer(0);
  const std::string req = requestFor("/two");
  // The closed connection dropped, a fresh one dialled, and the request served on it.
  auto servedFresh = [&](UpstreamConnection* next) {
    REQUIRE(next != nullptr);
    REQUIRE(f.connector->records.size() == 2);
    CHECK(f.attemptOf(next) == 1);  // (the freed one's address may have been reused)
    next->out() += req;
    REQUIRE(next->flush() == 0);
    next->requestComplete();
    f.answer(1, second, "/two");
  };
  SECTION("seen by the loop: the idle connection is dropped at once") {
    REQUIRE(runUntil(&f.loop, [&] { return f.pool->idleCount() == 0; }));
    REQUIRE(runUntil(&f.loop, [&] { return f.pool->size() == 0; }));
    servedFresh(f.pool->checkout(&second, false, &f.why, false, req.size()));
  }
  // Not yet seen by the loop (no loop run between the close and the checkout):
  SECTION(
      "a request that fits the replay copy, idle under a second: unchecked, and the "
      "write hands it back whole") {
    UpstreamConnection* next = f.pool->checkout(&second, false, &f.why, false, req.size());
    REQUIRE(next == conn);
    CHECK(f.connector->records.size() == 1);
    next->out() += req;
    CHECK(next->flush() < 0);
    REQUIRE(next->replayable());
    CHECK(next->takeUnsent() == req);
  }
  SECTION("a request larger than the replay copy: the checkout's peek catches it") {
    servedFresh(
        f.pool->checkout(&second, false, &f.why, false, UpstreamConnection::kReplayLimit + 1));
  }
  SECTION("a request of unknown size likewise") {
    servedFresh(f.pool->checkout(&second, false, &f.why, false, http::kUnknownBytes));
  }
  SECTION("a connection idle for a second or more is checked whatever the request") {
    std::this_thread::sleep_for(std::chrono::milliseconds(UpstreamPool::kTrustedIdleMs + 50));
    uv_update_time(&f.loop);
    servedFresh(f.pool->checkout(&second, false, &f.why, false, req.size()));
  }
}

TEST_CASE(
    "over TCP, a request written unchecked into a connection the upstream closed draws "
    "its RST and is handed back whole",
    "[unit][upstream]") {
  // What the unchecked reuse relies on, with a real loopback TCP connection: the write
  // into the half-closed socket succeeds, the upstream's kernel answers it with a RST,
  // and the connection hands the request back (after the FIN, within kResetGraceMs).
  Sink first, second;
  Fixture f;
  f.connector->tcp = true;
  f.connector->auto_succeed = true;
  UpstreamConnection* conn = f.send(first, "/one");
  REQUIRE(conn != nullptr);
  f.answer(0, first, "/one");
  REQUIRE(f.pool->idleCount() == 1);
  CHECK(conn->localPeer());   // 127.0.0.1
  f.connector->closePeer(0);  // FIN on its way; the loop has not seen it
  const std::string req = requestFor("/two");
  UpstreamConnection* next = f.pool->checkout(&second, false, &f.why, false, req.size());
  REQUIRE(next == conn);
  next->out() += req;
  REQUIRE(next->flush() == 0);  // the kernel took it
  next->requestComplete();
  REQUIRE(runUntil(&f.loop, [&] { return second.finished(); }));
  REQUIRE(second.replay.has_value());
  CHECK(*second.replay == req);
  CHECK_FALSE(second.error.has_value());
  CHECK(f.connector->records.size() == 1);  // the replay is the caller's, on a fresh one
}

TEST_CASE("only an upstream on this host is trusted unchecked: unix sockets and loopback",
          "[unit][upstream]") {
  auto v4 = [](const char* ip) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    REQUIRE(inet_pton(AF_INET, ip, &a.sin_addr) == 1);
    return uv::isLocalAddress(reinterpret_cast<const sockaddr*>(&a));
  };
  auto v6 = [](const char* ip) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    REQUIRE(inet_pton(AF_INET6, ip, &a.sin6_addr) == 1);
    return uv::isLocalAddress(reinterpret_cast<const sockaddr*>(&a));
  };
  CHECK(v4("127.0.0.1"));
  CHECK(v4("127.3.2.1"));
  CHECK_FALSE(v4("10.0.0.1"));
  CHECK_FALSE(v4("128.0.0.1"));
  CHECK_FALSE(v4("0.0.0.0"));
  CHECK(v6("::1"));
  CHECK(v6("::ffff:127.0.0.1"));
  CHECK_FALSE(v6("::ffff:192.0.2.1"));
  CHECK_FALSE(v6("2001:db8::1"));
  CHECK_FALSE(v6("::"));
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  CHECK(uv::isLocalAddress(reinterpret_cast<const sockaddr*>(&un)));
  // The fake connector's socketpairs are unix sockets: its connections count as local.
  Sink sink;
  Fixture f;
  f.connector->auto_succeed = true;
  UpstreamConnection* conn = f.send(sink, "/p");
  REQUIRE(conn != nullptr);
  f.answer(0, sink, "/p");
  CHECK(conn->localPeer());
}

TEST_CASE("a refused connect hands the unsent request back for a replay", "[unit][upstream]") {
  Sink sink, retry;
  Fixture f;
  f.connector->address_count = 2;
  REQUIRE(f.send(sink, "/r") != nullptr);
  f.connector->refuse(0);
  REQUIRE(sink.finished());  // reported from the connector's callback
  REQUIRE(sink.replay.has_value());
  CHECK(*sink.replay == requestFor("/r"));
  CHECK(sink.detail == "connection refused");
  CHECK(f.stats.upstream_connect_failures.get() == 1);
  // The replay goes on a fresh connection, which the connector dials on its next address.
  REQUIRE(f.send(retry, "/r", /*fresh=*/true) != nullptr);
  REQUIRE(f.connector->records.size() == 2);
  CHECK(f.connector->records[0].address == 0);
  CHECK(f.connector->records[1].address == 1);
  f.connector->succeed(1);
  f.answer(1, retry, "/r");
}

TEST_CASE("a connect that never completes fails as kConnectFailed after connect_timeout",
          "[unit][upstream]") {
  Sink sink;
  Fixture f;
  f.config.connect_timeout = config::Millis(50);
  REQUIRE(f.send(sink, "/slow") != nullptr);
  REQUIRE(runUntil(&f.loop, [&] { return sink.finished(); }));
  REQUIRE(sink.error.has_value());
  CHECK(*sink.error == UpstreamError::kConnectFailed);
  CHECK(sink.detail == "connect timeout");
  // The connector is told, so its next attempt dials another address.
  CHECK(f.connector->records[0].timed_out);
  CHECK(f.connector->records[0].abandoned);
  CHECK(f.connector->pendingCount() == 0);
  CHECK(f.stats.upstream_connect_failures.get() == 1);
}

TEST_CASE("a connect the connector cannot start fails the checkout at once", "[unit][upstream]") {
  Sink sink;
  Fixture f;
  f.connector->fail_start = Status::error("too many open files");
  CHECK(f.send(sink, "/x") == nullptr);
  CHECK(f.why == UpstreamError::kConnectFailed);
  CHECK_FALSE(sink.finished());
  CHECK(f.pool->slotsInUse() == 0);
  REQUIRE(runUntil(&f.loop, [&] { return f.pool->size() == 0; }));
}

TEST_CASE("max_connections caps the pool: waiting requests are served in arrival order",
          "[unit][upstream]") {
  Sink a, b, c, over;
  Fixture f;
  f.config.max_connections = 1;
  f.config.max_pending = 2;
  UpstreamConnection* ca = f.send(a, "/a");
  UpstreamConnection* cb = f.send(b, "/b");
  UpstreamConnection* cc = f.send(c, "/c");
  REQUIRE(ca != nullptr);
  REQUIRE(cb != nullptr);
  REQUIRE(cc != nullptr);
  CHECK(cb->state() == UpstreamConnection::State::kWaiting);
  CHECK(f.pool->waitingCount() == 2);
  CHECK(f.connector->records.size() == 1);  // only the first was dialled
  CHECK(f.send(over, "/over") == nullptr);
  CHECK(f.why == UpstreamError::kOverloaded);
  CHECK(f.stats.upstream_overloaded.get() == 1);

  f.connector->succeed(0);
  f.answer(0, a, "/a");
  // The slot went to /b (oldest first): a new connection, not the idle one.
  REQUIRE(f.connector->records.size() == 2);
  CHECK(f.connector->records[1].client == cb);
  CHECK(f.pool->idleCount() == 0);
  CHECK(f.pool->waitingCount() == 1);
  f.connector->succeed(1);
  f.answer(1, b, "/b");
  REQUIRE(f.connector->records.size() == 3);
  CHECK(f.connector->records[2].client == cc);
  f.connector->succeed(2);
  f.answer(2, c, "/c");
  CHECK(f.pool->idleCount() == 1);  // nobody waits any more: kept for reuse
  CHECK(f.pool->slotsInUse() == 1);
}

TEST_CASE("a wait for a free connection is bounded by connect_timeout: kOverloaded",
          "[unit][upstream]") {
  Sink busy, waiting;
  Fixture f;
  f.config.max_connections = 1;
  f.config.connect_timeout = config::Millis(50);
  REQUIRE(f.send(busy, "/busy") != nullptr);
  f.connector->succeed(0);  // connected, and never answered
  REQUIRE(f.send(waiting, "/wait") != nullptr);
  REQUIRE(runUntil(&f.loop, [&] { return waiting.finished(); }));
  REQUIRE(waiting.error.has_value());
  CHECK(*waiting.error == UpstreamError::kOverloaded);
  CHECK(f.stats.upstream_overloaded.get() == 1);
  CHECK(f.connector->records.size() == 1);  // the waiter never dialled
  CHECK_FALSE(busy.finished());
  CHECK(f.pool->waitingCount() == 0);
}

TEST_CASE("closeAll() fails leased and waiting exchanges and closes idle connections",
          "[unit][upstream]") {
  Sink idle, leased, waiting, late;
  Fixture f;
  f.config.max_connections = 2;
  f.connector->auto_succeed = true;
  REQUIRE(f.send(idle, "/idle") != nullptr);
  f.answer(0, idle, "/idle");
  REQUIRE(f.pool->idleCount() == 1);
  UpstreamConnection* reused = f.send(leased, "/leased");  // takes the idle connection
  REQUIRE(reused != nullptr);
  CHECK(f.awaitRequest(f.attemptOf(reused)) == requestFor("/leased"));
  Sink second;
  REQUIRE(f.send(second, "/second") != nullptr);  // the second slot
  REQUIRE(f.send(waiting, "/waiting") != nullptr);
  CHECK(f.pool->waitingCount() == 1);
  f.pool->closeAll();
  for (Sink* s : {&leased, &second, &waiting}) {
    REQUIRE(s->error.has_value());
    CHECK(*s->error == UpstreamError::kClosedEarly);
    CHECK(s->detail == "proxy shutting down");
    CHECK(s->outcomes == 1);
  }
  CHECK(f.send(late, "/late") == nullptr);
  CHECK(f.why == UpstreamError::kConnectFailed);
  REQUIRE(runUntil(&f.loop, [&] { return f.pool->size() == 0; }));
}

}  // namespace
}  // namespace proxy::upstream
