// The two server codecs behind a fake transport (FakeHost): local replies, deadline
// selection and half-close decisions, with no socket and no upstream. HTTP/2 requests come
// from a real nghttp2 client session wired in memory (tests/unit/http2/server_test_peer.h).
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "../http2/server_test_peer.h"
#include "proxy/common/stats.h"
#include "proxy/config/config.h"
#include "proxy/downstream/downstream_connection.h"
#include "proxy/downstream/http1_codec.h"
#include "proxy/downstream/http2_codec.h"
#include "tests/unit/downstream/fake_host.h"

namespace proxy::downstream {
namespace {

// One request from a real nghttp2 client through an Http2Codec, and what came back.
struct H2Exchange {
  explicit H2Exchange(const http2::HeaderFields& request) : codec(host) {
    host.codec = &codec;
    REQUIRE(codec.start());
    id = client.request(request);
    REQUIRE(id > 0);
    std::string bytes = client.send();  // the preface, SETTINGS and the request
    CHECK(feed(codec, bytes) == bytes.size());
    host.flush();
    REQUIRE(client.recv(host.out));
  }
  const http2::test::Client::Response& response() { return client.responses[id]; }
  std::string field(const std::string& name) {
    for (const http2::HeaderField& f : response().headers) {
      if (f.name == name) return f.value;
    }
    return {};
  }

  FakeHost host;
  Http2Codec codec;
  http2::test::Client client;
  int32_t id = 0;
};

}  // namespace

TEST_CASE("Http1Codec answers a malformed request with a JSON 400 and finishes",
          "[unit][downstream]") {
  FakeHost host;
  Http1Codec codec(host);
  host.codec = &codec;
  feed(codec, "GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n");
  CHECK(host.out.rfind("HTTP/1.1 400 ", 0) == 0);
  CHECK(host.out.find("Content-Type: application/json") != std::string::npos);
  CHECK(host.out.find("Connection: close") != std::string::npos);
  CHECK(host.out.find("malformed HTTP request") != std::string::npos);
  CHECK(host.finished);
  CHECK(host.reason == CloseReason::kBadRequest);
  CHECK(host.stats.local_responses.get() == 1);
}

TEST_CASE("Http1Codec refuses too many header fields with 431 before any upstream",
          "[unit][downstream]") {
  FakeHost host;
  host.config.server.max_header_fields = 2;
  Http1Codec codec(host);
  feed(codec, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n");
  CHECK(host.out.rfind("HTTP/1.1 431 ", 0) == 0);
  CHECK(host.finished);
  CHECK(host.reason == CloseReason::kBadRequest);
}

TEST_CASE("Http1Codec picks its deadline from the request state", "[unit][downstream]") {
  FakeHost host;
  host.config.server.request_header_timeout = config::Millis(10'000);
  host.config.server.idle_timeout = config::Millis(45'000);
  host.last_progress_ms = 500;
  Http1Codec codec(host);

  SECTION("before the first request: the header timeout from the last progress") {
    CHECK(codec.deadline() == 500 + 10'000);
    CHECK(codec.idle());
    CHECK(codec.onPeerEof() == EofAction::kIdle);
    codec.onDeadline(500 + 10'000);
    CHECK(host.closed);
    CHECK(host.reason == CloseReason::kHeaderTimeout);
    CHECK(host.out.empty());
  }
  SECTION("inside a head: the header timeout from its first byte, then 408") {
    CHECK(feed(codec, "POST /intake HTTP/1.1\r\nHo") > 0);
    CHECK(codec.deadline() == host.now() + 10'000);
    CHECK_FALSE(codec.idle());
    CHECK(codec.onPeerEof() == EofAction::kCloseEarly);
    codec.onDeadline(host.now() + 10'000);
    CHECK(host.out.rfind("HTTP/1.1 408 ", 0) == 0);
    CHECK(host.finished);
    CHECK(host.reason == CloseReason::kHeaderTimeout);
  }
}

TEST_CASE("Http1Codec drains an idle connection at once", "[unit][downstream]") {
  FakeHost host;
  Http1Codec codec(host);
  codec.drain();
  CHECK(host.finished);
  CHECK(host.reason == CloseReason::kDrain);
}

TEST_CASE("Http2Codec answers a CONNECT locally with JSON on its stream only",
          "[unit][downstream]") {
  H2Exchange x({{":method", "CONNECT"}, {":authority", "a.test:443"}});
  const http2::test::Client::Response& r = x.response();
  CHECK(r.status == 405);
  CHECK(r.ended);
  CHECK(r.body.find("method not supported by the proxy") != std::string::npos);
  CHECK(x.field("content-type") == "application/json");
  // A local reply ends one stream, never the connection.
  CHECK_FALSE(x.host.finished);
  CHECK_FALSE(x.host.closed);
  CHECK(x.host.stats.local_responses.get() == 1);
}

TEST_CASE("Http2Codec answers a gRPC call it refuses with a trailers-only grpc-status",
          "[unit][downstream]") {
  H2Exchange x(
      {{":method", "CONNECT"}, {":authority", "a.test:443"}, {"content-type", "application/grpc"}});
  const http2::test::Client::Response& r = x.response();
  // gRPC clients read the outcome from grpc-status: HTTP 200, one HEADERS frame, no body.
  CHECK(r.status == 200);
  CHECK(r.ended);
  CHECK(r.header_frames == 1);
  CHECK(r.body.empty());
  CHECK(x.field("grpc-status") == "14");
  CHECK(x.field("grpc-message") == "method not supported by the proxy");
  CHECK_FALSE(x.host.finished);
}

TEST_CASE("Http2Codec picks the idle and drain deadlines of the connection", "[unit][downstream]") {
  FakeHost host;
  host.config.server.request_header_timeout = config::Millis(10'000);
  host.config.server.idle_timeout = config::Millis(45'000);
  host.last_progress_ms = 700;
  Http2Codec codec(host);
  host.codec = &codec;
  REQUIRE(codec.start());

  SECTION("no stream yet: the header timeout; after one: the idle timeout") {
    CHECK(codec.deadline() == 700 + 10'000);
    http2::test::Client client;
    client.request({{":method", "CONNECT"}, {":authority", "a.test:443"}});
    feed(codec, client.send());
    host.flush();
    client.recv(host.out);
    host.out.clear();
    feed(codec, client.send());  // the client's SETTINGS ack: the stream closes
    codec.collect();
    REQUIRE(codec.idle());
    // Frames were written: half a second of quiet first gives the frame buffer's pages
    // back, and only then is the idle timeout the next deadline.
    REQUIRE(codec.session().holdsIdlePages());
    CHECK(codec.deadline() == host.last_progress_ms + 500);
    codec.onDeadline(host.last_progress_ms + 499);  // early: kept
    CHECK(codec.session().holdsIdlePages());
    codec.onDeadline(host.last_progress_ms + 500);
    CHECK_FALSE(codec.session().holdsIdlePages());
    CHECK_FALSE(host.finished);
    CHECK(codec.deadline() == host.last_progress_ms + 45'000);
  }
  SECTION("a drain: the final GOAWAY one second after the graceful one") {
    host.last_progress_ms = host.now();
    codec.drain();
    REQUIRE(codec.session().holdsIdlePages());  // SETTINGS and GOAWAY were written
    CHECK(codec.deadline() == host.now() + 500);
    codec.onDeadline(host.now() + 500);
    CHECK_FALSE(codec.goawaySent());
    CHECK(codec.deadline() == host.now() + 1000);
    CHECK_FALSE(codec.goawaySent());
    codec.onDeadline(host.now() + 1000);
    CHECK(codec.goawaySent());
    CHECK(host.finished);
    CHECK(host.reason == CloseReason::kDrain);
  }
  SECTION("a drain whose last stream ends after the final GOAWAY finishes as a drain") {
    // A CONNECT (answered 405 here) the client keeps open, its window shut so that the
    // answer's body cannot end the stream (the proxy would then reset it, NO_ERROR).
    http2::test::RawClient raw;
    const std::string no_window("\x00\x04\x00\x00\x00\x00", 6);  // INITIAL_WINDOW_SIZE 0
    feed(codec, http2::test::RawClient::preface() +
                    http2::test::RawClient::frame(NGHTTP2_SETTINGS, 0, 0, no_window) +
                    http2::test::RawClient::frame(
                        NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1,
                        raw.block({{":method", "CONNECT"}, {":authority", "a.test:443"}})));
    REQUIRE(codec.openStreams() == 1);
    host.last_progress_ms = host.now();
    codec.drain();
    codec.onDeadline(host.now() + 1000);  // the final GOAWAY; the stream is still open
    REQUIRE(codec.goawaySent());
    CHECK_FALSE(host.finished);
    feed(codec, http2::test::RawClient::rst(1, NGHTTP2_CANCEL));  // the client gives up
    REQUIRE(codec.openStreams() == 0);
    codec.runQueuedFlush();  // as the loop does after that read
    CHECK(host.finished);
    CHECK(host.reason == CloseReason::kDrain);
  }
  SECTION("the idle deadline sends GOAWAY and finishes") {
    codec.onDeadline(700 + 10'000);
    CHECK(codec.goawaySent());
    CHECK(host.finished);
    CHECK(host.reason == CloseReason::kIdleTimeout);
  }
}

}  // namespace proxy::downstream
