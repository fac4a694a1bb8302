// ClientSession in memory against a raw nghttp2 server session (FakeH2Server): requests
// and responses, trailers both ways, GOAWAY, REFUSED_STREAM and flow control.
#include "proxy/http/http2/client_session.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "tests/unit/upstream/fake_h2_server.h"

namespace proxy::http2 {
namespace {

using testing::FakeH2Server;

struct Response {
  int status = 0;
  std::vector<int> interim;
  std::map<std::string, std::string> fields;
  std::map<std::string, std::string> trailers;
  std::string body;
  bool head_ended_stream = false;
  bool ended = false;
  bool closed = false;
  uint32_t close_code = 0;
  bool reset_by_peer = false;
  bool not_sent = false;
};

// Records every event by stream id.
struct Recorder : ClientSession::Callbacks {
  std::map<int32_t, Response> r;
  int32_t goaway_last = -1;
  uint32_t goaway_code = 0;
  void onResponseHead(int32_t id, http::MessageHead& head, bool end_stream) override {
    CHECK(head.http_major == 2);
    if (head.status < 200) {
      r[id].interim.push_back(head.status);
      return;
    }
    r[id].status = head.status;
    r[id].head_ended_stream = end_stream;
    for (size_t i = 0; i < head.headerCount(); ++i) {
      r[id].fields[std::string(head.header(i).name)] = std::string(head.header(i).value);
    }
  }
  void onResponseData(int32_t id, const char* data, size_t len) override {
    r[id].body.append(data, len);
  }
  void onResponseTrailers(int32_t id, http::MessageHead& t) override {
    for (size_t i = 0; i < t.headerCount(); ++i) {
      r[id].trailers[std::string(t.header(i).name)] = std::string(t.header(i).value);
    }
  }
  void onResponseEnd(int32_t id) override { r[id].ended = true; }
  void onStreamClose(int32_t id, uint32_t code, bool by_peer) override {
    r[id].closed = true;
    r[id].close_code = code;
    r[id].reset_by_peer = by_peer;
  }
  void onRequestNotSent(int32_t id) override { r[id].not_sent = true; }
  void onGoaway(int32_t last, uint32_t code) override {
    goaway_last = last;
    goaway_code = code;
  }
};

struct Pair {
  explicit Pair(const ClientOptions& options = {}, const FakeH2Server::Options& server_options = {})
      : server(server_options) {
    auto created = ClientSession::create(rec, options);
    REQUIRE(created.isOk());
    client = std::move(created).value();
  }
  // Moves bytes both ways until neither side has anything to say.
  void pump() {
    for (int i = 0; i < 100; ++i) {
      std::string c2s;
      REQUIRE(client->send(c2s, 1 << 20).isOk());
      if (!c2s.empty()) REQUIRE(server.receive(c2s.data(), c2s.size()));
      std::string s2c = server.takeOutput();
      if (!s2c.empty()) REQUIRE(client->receive(s2c.data(), s2c.size()).isOk());
      if (c2s.empty() && s2c.empty()) return;
    }
    FAIL("the sessions never went quiet");
  }
  int32_t get(const std::string& path, RequestBody* body = nullptr) {
    HeaderFields h = {{":method", body ? "POST" : "GET"},
                      {":scheme", "http"},
                      {":authority", "upstream"},
                      {":path", path}};
    return client->submitRequest(h, body);
  }

  Recorder rec;
  FakeH2Server server;
  std::unique_ptr<ClientSession> client;
};

TEST_CASE("a GET goes out with its pseudo-headers and the response comes back") {
  Pair p;
  int32_t id = p.get("/intake/v2/events");
  REQUIRE(id == 1);
  p.pump();
  REQUIRE(p.server.requests.count(1) == 1);
  const FakeH2Server::Request& req = p.server.requests[1];
  CHECK(req.header(":method") == "GET");
  CHECK(req.header(":path") == "/intake/v2/events");
  CHECK(req.header(":authority") == "upstream");
  CHECK(req.ended);
  p.server.sendHead(1, 202, {{"x-answer", "42"}, {"content-length", "5"}}, false);
  p.server.sendData(1, "hello", true);
  p.pump();
  const Response& r = p.rec.r[1];
  CHECK(r.status == 202);
  CHECK(r.fields.at("x-answer") == "42");
  CHECK(r.body == "hello");
  CHECK(r.ended);
  CHECK(r.closed);
  CHECK(r.close_code == NGHTTP2_NO_ERROR);
  CHECK(p.client->openStreams() == 0);
}

TEST_CASE("a gRPC-shaped call carries trailers both ways") {
  Pair p;
  RequestBody body(64 * 1024);
  int32_t id = p.get("/opentelemetry.proto.collector.trace.v1.TraceService/Export", &body);
  body.append("\0\0\0\0\3abc", 8);
  p.client->resumeBody(id);
  p.pump();
  CHECK_FALSE(p.server.requests[id].ended);
  HeaderFields trailers = {{"x-request-trailer", "yes"}};
  body.end(&trailers);
  p.client->resumeBody(id);
  p.pump();
  const FakeH2Server::Request& req = p.server.requests[id];
  CHECK(req.body == std::string("\0\0\0\0\3abc", 8));
  CHECK(req.ended);
  REQUIRE(req.trailers.size() == 1);
  CHECK(req.trailers[0].name == "x-request-trailer");

  p.server.sendHead(id, 200, {{"content-type", "application/grpc"}}, false);
  p.server.sendData(id, "xyz", true, {{"grpc-status", "0"}, {"grpc-message", "ok"}});
  p.pump();
  const Response& r = p.rec.r[id];
  CHECK(r.body == "xyz");
  CHECK(r.trailers.at("grpc-status") == "0");
  CHECK(r.trailers.at("grpc-message") == "ok");
  CHECK(r.ended);
  CHECK(r.close_code == NGHTTP2_NO_ERROR);
}

TEST_CASE("a trailers-only response ends with its head") {
  Pair p;
  int32_t id = p.get("/x");
  p.pump();
  p.server.sendHead(id, 200, {{"grpc-status", "14"}}, true);
  p.pump();
  CHECK(p.rec.r[id].status == 200);
  CHECK(p.rec.r[id].head_ended_stream);
  CHECK(p.rec.r[id].fields.at("grpc-status") == "14");
  CHECK(p.rec.r[id].ended);
}

TEST_CASE("an interim 1xx head is reported before the final one") {
  Pair p;
  int32_t id = p.get("/x");
  p.pump();
  p.server.sendHead(id, 103, {{"link", "</a>"}}, false);
  p.server.sendHead(id, 204, {}, true);
  p.pump();
  CHECK(p.rec.r[id].interim == std::vector<int>{103});
  CHECK(p.rec.r[id].status == 204);
  CHECK(p.rec.r[id].ended);
}

TEST_CASE("GOAWAY: streams above last-stream-id close as refused, the rest finish") {
  Pair p;
  int32_t a = p.get("/a");
  int32_t b = p.get("/b");
  int32_t c = p.get("/c");
  p.pump();
  REQUIRE(p.server.order.size() == 3);
  p.server.goaway(a, NGHTTP2_NO_ERROR);
  p.server.sendHead(a, 200, {}, true);
  p.pump();
  CHECK(p.rec.goaway_last == a);
  CHECK(p.rec.r[a].ended);
  CHECK(p.rec.r[a].close_code == NGHTTP2_NO_ERROR);
  for (int32_t id : {b, c}) {
    CHECK(p.rec.r[id].closed);
    CHECK(p.rec.r[id].close_code == NGHTTP2_REFUSED_STREAM);
    CHECK_FALSE(p.rec.r[id].reset_by_peer);
    CHECK_FALSE(p.rec.r[id].ended);
  }
  CHECK(p.client->goingAway());
  int32_t d = p.get("/d");  // nghttp2 takes it, but never sends it
  p.pump();
  CHECK(p.server.requests.count(d) == 0);
  CHECK((p.rec.r[d].not_sent || p.rec.r[d].close_code == NGHTTP2_REFUSED_STREAM));
  CHECK(p.client->counters().goaways_received.get(NGHTTP2_NO_ERROR) == 1);
}

TEST_CASE("a request submitted but not yet sent when GOAWAY arrives is reported unsent") {
  Pair p;
  int32_t a = p.get("/a");
  p.pump();
  p.server.goaway(a, NGHTTP2_NO_ERROR);
  std::string s2c = p.server.takeOutput();
  int32_t late = p.get("/late");  // submitted before the client has read the GOAWAY
  REQUIRE(late > 0);
  REQUIRE(p.client->receive(s2c.data(), s2c.size()).isOk());
  p.pump();
  const Response& r = p.rec.r[late];
  CHECK((r.not_sent || (r.closed && r.close_code == NGHTTP2_REFUSED_STREAM)));
  CHECK(p.server.requests.count(late) == 0);
}

TEST_CASE("RST_STREAM REFUSED_STREAM is reported as reset by the peer") {
  Pair p;
  int32_t id = p.get("/x");
  p.pump();
  p.server.reset(id, NGHTTP2_REFUSED_STREAM);
  p.pump();
  CHECK(p.rec.r[id].closed);
  CHECK(p.rec.r[id].close_code == NGHTTP2_REFUSED_STREAM);
  CHECK(p.rec.r[id].reset_by_peer);
  CHECK(p.client->counters().resets_received.get(NGHTTP2_REFUSED_STREAM) == 1);
}

TEST_CASE("a reset in the middle of a response closes only that stream") {
  Pair p;
  int32_t a = p.get("/a");
  int32_t b = p.get("/b");
  p.pump();
  p.server.sendHead(a, 200, {}, false);
  p.server.sendData(a, "part", false);
  p.server.sendHead(b, 200, {}, false);
  p.pump();
  p.server.reset(a, NGHTTP2_INTERNAL_ERROR);
  p.server.sendData(b, "whole", true);
  p.pump();
  CHECK(p.rec.r[a].body == "part");
  CHECK_FALSE(p.rec.r[a].ended);
  CHECK(p.rec.r[a].close_code == NGHTTP2_INTERNAL_ERROR);
  CHECK(p.rec.r[b].ended);
  CHECK(p.rec.r[b].body == "whole");
}

TEST_CASE("the upstream's MAX_CONCURRENT_STREAMS is known after its SETTINGS") {
  FakeH2Server::Options so;
  so.max_concurrent_streams = 2;
  Pair p({}, so);
  CHECK(p.client->maxConcurrentStreams() == 100);
  CHECK_FALSE(p.client->remoteSettingsReceived());
  p.pump();
  CHECK(p.client->remoteSettingsReceived());
  CHECK(p.client->maxConcurrentStreams() == 2);
}

TEST_CASE("response bytes stop at the stream window until the application consumes them") {
  ClientOptions co;
  co.stream_window = 16 * 1024;
  Pair p(co);
  int32_t id = p.get("/big");
  p.pump();
  p.server.sendHead(id, 200, {}, false);
  p.server.sendData(id, std::string(64 * 1024, 'x'), true);
  p.pump();
  CHECK(p.rec.r[id].body.size() == 16 * 1024);
  for (int i = 0; i < 10 && !p.rec.r[id].ended; ++i) {
    p.client->consume(id, p.rec.r[id].body.size());
    size_t before = p.rec.r[id].body.size();
    p.pump();
    CHECK(p.rec.r[id].body.size() > before);
  }
  CHECK(p.rec.r[id].body.size() == 64 * 1024);
  CHECK(p.rec.r[id].ended);
}

TEST_CASE("request bytes wait for the upstream's window") {
  FakeH2Server::Options so;
  so.manual_window = true;
  Pair p({}, so);
  RequestBody body(0);
  int32_t id = p.get("/upload", &body);
  std::string big(200 * 1024, 'y');
  body.append(big.data(), big.size());
  body.end(nullptr);
  p.client->resumeBody(id);
  p.pump();
  // The default initial window of RFC 9113 §6.9.2 is 65,535 bytes.
  CHECK(p.server.requests[id].body.size() == 65535);
  CHECK(body.unsent() == big.size() - 65535);
  for (int i = 0; i < 10 && !p.server.requests[id].ended; ++i) {
    p.server.consumeRequestBody(id, 65535);
    p.pump();
  }
  CHECK(p.server.requests[id].body == big);
  CHECK(body.unsent() == 0);
}

TEST_CASE("RequestBody replays only what it kept") {
  RequestBody small(16);
  small.append("0123456789", 10);
  uint8_t out[64];
  CHECK(small.take(out, sizeof out) == 10);
  CHECK(small.unsent() == 0);
  CHECK(small.rewind());
  CHECK(small.unsent() == 10);

  RequestBody big(16);
  std::string bytes(40, 'z');
  big.append(bytes.data(), bytes.size());
  CHECK(big.take(out, 32) == 32);
  CHECK_FALSE(big.replayable());
  CHECK_FALSE(big.rewind());
  CHECK(big.unsent() == 8);
  CHECK(big.take(out, sizeof out) == 8);
}

TEST_CASE("a locally reset stream stops sending its body") {
  Pair p;
  RequestBody body(1024);
  int32_t id = p.get("/x", &body);
  p.pump();
  p.client->resetStream(id, NGHTTP2_CANCEL);
  body.append("late", 4);
  p.client->resumeBody(id);
  p.pump();
  CHECK(p.server.requests[id].body.empty());
  CHECK(p.server.requests[id].close_code == NGHTTP2_CANCEL);
  CHECK(p.client->counters().resets_sent.get(NGHTTP2_CANCEL) == 1);
}

}  // namespace
}  // namespace proxy::http2
