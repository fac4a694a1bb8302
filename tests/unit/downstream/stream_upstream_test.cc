// Request streams of both codecs over a real UpstreamPool whose connections come from a
// FakeConnector (tests/unit/upstream): no socket towards a client, no network towards the
// upstream; the test plays the upstream on its end of each socketpair. What the shared
// RequestStream decides, seen through each codec's encoding: a held HTTP/2 head that can
// still become a local reply, a cut after the head that resets only its stream (HTTP/2) or
// the connection (HTTP/1.1), and the one replay of a request the upstream never saw.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "../http2/server_test_peer.h"
#include "proxy/downstream/http1_codec.h"
#include "proxy/downstream/http2_codec.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/uv/read_buffer.h"
#include "tests/unit/downstream/fake_host.h"
#include "tests/unit/upstream/fake_connector.h"
#include "tests/unit/upstream/h2_test_upstream.h"

namespace proxy::downstream {
namespace {

using http2::test::Client;
using testing::FakeConnector;
using testing::readAvailable;
using testing::runUntil;
using testing::writeAll;

// A FakeHost whose context has an HTTP/1.1 pool dialling through a FakeConnector.
struct PoolFixture {
  PoolFixture() {
    upstream_config.tcp = config::HostPort{"127.0.0.1", 1};  // never dialled
    connector = std::make_unique<FakeConnector>(host.loop());
    connector->auto_succeed = true;
    pool = std::make_unique<upstream::UpstreamPool>(host.loop(), upstream_config, host.stats,
                                                    read_buffer, connector.get());
    host.context().pool = pool.get();
  }
  ~PoolFixture() {
    pool->closeAll();
    connector->close();
    uv_run(host.loop(), UV_RUN_DEFAULT);
    pool.reset();
    connector.reset();
  }
  PoolFixture(const PoolFixture&) = delete;
  PoolFixture& operator=(const PoolFixture&) = delete;

  // The whole request head that reached the upstream end of attempt `i`.
  std::string awaitRequest(size_t i) {
    std::string got;
    REQUIRE(runUntil(host.loop(), [&] {
      if (connector->records.size() <= i || connector->records[i].peer_fd < 0) return false;
      got += readAvailable(connector->records[i].peer_fd);
      return got.find("\r\n\r\n") != std::string::npos;
    }));
    return got;
  }
  // Runs the loop until the codec wrote something to the client.
  void awaitOutput() {
    REQUIRE(runUntil(host.loop(), [&] { return !host.out.empty() || host.closed; }));
  }

  FakeHost host;
  config::UpstreamConfig upstream_config;
  uv::ReadBuffer read_buffer;
  std::unique_ptr<FakeConnector> connector;
  std::unique_ptr<upstream::UpstreamPool> pool;
};

// An HTTP/2 client connection on an Http2Codec over the fixture's pool.
struct H2Client {
  explicit H2Client(PoolFixture& f) : fixture(f), codec(f.host) {
    f.host.codec = &codec;
    REQUIRE(codec.start());
  }
  ~H2Client() { fixture.host.codec = nullptr; }
  int32_t send(const http2::HeaderFields& request, const std::string* body = nullptr) {
    int32_t id = client.request(request, body);
    std::string bytes = client.send();
    CHECK(feed(codec, bytes) == bytes.size());
    fixture.host.flush();
    deliver();
    return id;
  }
  // Hands what the codec wrote to the client.
  void deliver() {
    REQUIRE(client.recv(fixture.host.out));
    fixture.host.out.clear();
  }
  std::string field(int32_t id, const std::string& name) {
    for (const http2::HeaderField& f : client.responses[id].headers) {
      if (f.name == name) return f.value;
    }
    return {};
  }

  PoolFixture& fixture;
  Http2Codec codec;
  Client client;
};

const std::string kGet = "GET /r HTTP/1.1\r\nHost: a\r\n\r\n";

}  // namespace

TEST_CASE("HTTP/2: a held head is replaced by a 502 when the upstream cuts before the body",
          "[unit][downstream]") {
  PoolFixture f;
  H2Client c(f);
  int32_t id = c.send(Client::get("/held"));
  CHECK(f.awaitRequest(0).rfind("GET /held HTTP/1.1\r\nHost: a.test\r\n", 0) == 0);
  // A head that promises a body, then nothing: the head never reached the client, so the
  // proxy can still say what happened.
  writeAll(f.connector->records[0].peer_fd,
           "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Upstream: yes\r\n\r\n");
  f.connector->closePeer(0);
  f.awaitOutput();
  c.deliver();
  const Client::Response& r = c.client.responses[id];
  CHECK(r.status == 502);
  CHECK(c.field(id, "x-upstream").empty());
  CHECK(c.field(id, "content-type") == "application/json");
  CHECK(r.body.find("upstream connection failed") != std::string::npos);
  CHECK(r.ended);
  CHECK(r.close_code == 0);
  CHECK_FALSE(f.host.finished);
  CHECK_FALSE(f.host.closed);
}

TEST_CASE("HTTP/2: a head held for a body-less answer goes out with the end, in one frame",
          "[unit][downstream]") {
  PoolFixture f;
  H2Client c(f);
  int32_t id = c.send(Client::get("/empty"));
  f.awaitRequest(0);
  writeAll(f.connector->records[0].peer_fd,
           "HTTP/1.1 204 No Content\r\nGrpc-Status: 0\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\n");
  f.awaitOutput();
  std::vector<http2::test::Frame> frames = http2::test::parseFrames(f.host.out);
  c.deliver();
  CHECK(c.client.responses[id].status == 204);
  CHECK(c.client.responses[id].ended);
  CHECK(c.field(id, "grpc-status") == "0");
  CHECK(c.field(id, "x-hop").empty());  // named in Connection: never reaches an HTTP/2 client
  CHECK(http2::test::countFrames(frames, NGHTTP2_HEADERS) == 1);
  CHECK(http2::test::countFrames(frames, NGHTTP2_DATA) == 0);
}

TEST_CASE("HTTP/2: answers to several streams from one round of upstream reads leave together",
          "[unit][downstream]") {
  // The transport flushes an HTTP/2 connection once per round of I/O (uv::FlushQueue),
  // not once per upstream event: one TLS record and one write for all of them.
  PoolFixture f;
  H2Client c(f);
  int32_t first = c.send(Client::get("/one"));
  int32_t second = c.send(Client::get("/two"));
  f.awaitRequest(0);
  f.awaitRequest(1);
  f.host.defer_flushes = true;
  const int asked_before = f.host.flushes_asked;
  writeAll(f.connector->records[0].peer_fd, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na");
  writeAll(f.connector->records[1].peer_fd, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
  // Both answers reach the codec; neither is written from the upstream's read callback.
  // (Each upstream connection goes back to the pool once its answer was delivered.)
  REQUIRE(runUntil(f.host.loop(), [&] { return f.pool->idleCount() == 2; }));
  CHECK(f.host.flushes_asked > asked_before);
  CHECK(f.host.flush_queued);
  CHECK(f.host.out.empty());
  f.host.runQueuedFlush();
  std::vector<http2::test::Frame> frames = http2::test::parseFrames(f.host.out);
  CHECK(http2::test::countFrames(frames, NGHTTP2_HEADERS) == 2);
  c.deliver();
  CHECK(c.client.responses[first].body == "a");
  CHECK(c.client.responses[second].body == "b");
  CHECK(c.client.responses[first].ended);
  CHECK(c.client.responses[second].ended);
}

TEST_CASE("HTTP/2: an upstream cut after the head resets that stream only", "[unit][downstream]") {
  PoolFixture f;
  H2Client c(f);
  int32_t cut = c.send(Client::get("/cut"));
  f.awaitRequest(0);
  writeAll(f.connector->records[0].peer_fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd");
  f.connector->closePeer(0);
  REQUIRE(runUntil(f.host.loop(), [&] {
    if (!f.host.out.empty()) c.deliver();
    return c.client.responses[cut].closed;
  }));
  const Client::Response& r = c.client.responses[cut];
  CHECK(r.status == 200);
  CHECK_FALSE(r.ended);  // a cut body never looks complete
  CHECK(r.close_code == NGHTTP2_INTERNAL_ERROR);
  CHECK(r.body.size() < 10);
  CHECK_FALSE(f.host.closed);

  // The connection goes on: the next stream is served on a new upstream connection.
  int32_t next = c.send(Client::get("/next"));
  CHECK(f.awaitRequest(1).rfind("GET /next ", 0) == 0);
  writeAll(f.connector->records[1].peer_fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  REQUIRE(runUntil(f.host.loop(), [&] {
    if (!f.host.out.empty()) c.deliver();
    return c.client.responses[next].ended;
  }));
  CHECK(c.client.responses[next].status == 200);
  CHECK(c.client.responses[next].body == "ok");
}

TEST_CASE("HTTP/1.1: an upstream cut after the head resets the client connection",
          "[unit][downstream]") {
  PoolFixture f;
  Http1Codec codec(f.host);
  f.host.codec = &codec;
  feed(codec, kGet);
  codec.endOfPass();
  CHECK(f.awaitRequest(0).rfind("GET /r HTTP/1.1\r\n", 0) == 0);
  writeAll(f.connector->records[0].peer_fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd");
  f.connector->closePeer(0);
  REQUIRE(runUntil(f.host.loop(), [&] { return f.host.closed; }));
  CHECK(f.host.out.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(f.host.was_reset);  // a RST, so no client can take the cut body for a whole one
  CHECK(f.host.reason == CloseReason::kUpstreamCut);
  CHECK(codec.requestsServed() == 0);
  f.host.codec = nullptr;
}

TEST_CASE("A request the upstream never saw is replayed once, then answered 502",
          "[unit][downstream]") {
  PoolFixture f;
  f.connector->auto_succeed = false;
  Http1Codec codec(f.host);
  f.host.codec = &codec;
  feed(codec, kGet);
  codec.endOfPass();
  REQUIRE(f.connector->records.size() == 1);

  SECTION("the replay on a fresh connection is answered") {
    f.connector->refuse(0);  // nothing was written: the request may go again
    REQUIRE(runUntil(f.host.loop(), [&] { return f.connector->records.size() == 2; }));
    f.connector->succeed(1);
    CHECK(f.awaitRequest(1) == "GET /r HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: http\r\n\r\n");
    writeAll(f.connector->records[1].peer_fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    f.awaitOutput();
    CHECK(f.host.out.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(f.host.out.find("\r\n\r\nok") != std::string::npos);
    CHECK(f.host.stats.upstream_retries.get() == 1);
    CHECK(codec.requestsServed() == 1);
    CHECK_FALSE(f.host.finished);
  }
  SECTION("a second refusal is the upstream's state: 502, no third try") {
    f.connector->refuse(0);
    REQUIRE(runUntil(f.host.loop(), [&] { return f.connector->records.size() == 2; }));
    f.connector->refuse(1);
    f.awaitOutput();
    CHECK(f.host.out.rfind("HTTP/1.1 502 ", 0) == 0);
    CHECK(f.host.finished);
    CHECK(f.host.reason == CloseReason::kUpstreamFailed);
    CHECK(f.host.stats.upstream_retries.get() == 1);
    CHECK(f.connector->records.size() == 2);
  }
  f.host.codec = nullptr;
}

TEST_CASE("HTTP/2: a chunked request replayed after the client ended it ends exactly once",
          "[unit][downstream]") {
  PoolFixture f;
  f.connector->auto_succeed = false;
  H2Client c(f);
  const std::string body = "abcd";
  int32_t id = c.send(Client::post("/chunked"), &body);  // no content-length: chunked
  REQUIRE(f.connector->records.size() == 1);
  f.connector->refuse(0);  // head, body and last chunk were all still queued
  REQUIRE(runUntil(f.host.loop(), [&] { return f.connector->records.size() == 2; }));
  f.connector->succeed(1);
  std::string got;
  REQUIRE(runUntil(f.host.loop(), [&] {
    got += readAvailable(f.connector->records[1].peer_fd);
    return got.find("0\r\n\r\n") != std::string::npos;
  }));
  CHECK(got.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
  CHECK(got.substr(got.find("\r\n\r\n") + 4) == "4\r\nabcd\r\n0\r\n\r\n");
  writeAll(f.connector->records[1].peer_fd, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(runUntil(f.host.loop(), [&] {
    got += readAvailable(f.connector->records[1].peer_fd);  // nothing more may follow
    if (!f.host.out.empty()) c.deliver();
    return c.client.responses[id].ended;
  }));
  CHECK(c.client.responses[id].status == 202);
  CHECK(got.substr(got.find("\r\n\r\n") + 4) == "4\r\nabcd\r\n0\r\n\r\n");
  CHECK(f.host.stats.upstream_retries.get() == 1);
}

}  // namespace proxy::downstream
