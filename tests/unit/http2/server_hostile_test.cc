// ServerSession against hostile clients (issue 10 item 6), with raw frames nghttp2's own
// client would never send: rapid reset, CONTINUATION and HPACK floods, SETTINGS, PING and
// empty-DATA floods, forbidden fields, bad pseudo-headers, a bad preface; and memory.
#include <catch2/catch.hpp>

#include "proxy/http/http2/server_session.h"
#include "tests/unit/http2/server_test_peer.h"

namespace proxy::http2 {
namespace {

using test::countFrames;
using test::findFrame;
using test::parseFrames;
using test::RawClient;
using test::Recorder;

// A server fed raw bytes; `out` collects everything it produced.
struct RawPair {
  explicit RawPair(ServerSettings settings = {}) {
    server = ServerSession::create(settings, recorder);
    recorder.session = server.get();
  }
  bool feed(const std::string& bytes) { return server->receive(bytes.data(), bytes.size()); }
  std::vector<test::Frame> drain() {
    std::string bytes;
    server->produce(bytes, SIZE_MAX);
    out += bytes;
    return parseFrames(bytes);
  }
  Recorder recorder;
  std::unique_ptr<ServerSession> server;
  RawClient raw;
  std::string out;
};

// HEADERS without END_HEADERS, then CONTINUATIONs: `block` cut into `piece`-byte frames.
std::string splitHeaders(int32_t id, const std::string& block, size_t piece) {
  std::string out;
  for (size_t at = 0; at < block.size(); at += piece) {
    bool first = at == 0;
    bool last = at + piece >= block.size();
    uint8_t flags = last ? NGHTTP2_FLAG_END_HEADERS : 0;
    if (first) flags |= NGHTTP2_FLAG_END_STREAM;
    out += RawClient::frame(first ? NGHTTP2_HEADERS : NGHTTP2_CONTINUATION, flags, id,
                            block.substr(at, piece));
  }
  return out;
}

HeaderFields pseudo() {
  return {{":method", "GET"}, {":scheme", "https"}, {":authority", "a.test"}, {":path", "/"}};
}

TEST_CASE("ServerSession: a batched rapid reset opens no stream and ends in GOAWAY",
          "[unit][http2][hostile]") {
  RawPair p;
  std::string attack = RawClient::preface();
  const int kPairs = 5000;
  for (int i = 0; i < kPairs; ++i) {
    int32_t id = 1 + 2 * i;
    attack += p.raw.get(id, {}, false) + RawClient::rst(id, NGHTTP2_CANCEL);
  }
  p.feed(attack);
  std::vector<test::Frame> frames = p.drain();
  CHECK(p.recorder.heads == 0);  // nothing ever reached the proxy (or an upstream)
  CHECK(p.recorder.closes == 0);
  std::optional<test::Frame> goaway = findFrame(frames, NGHTTP2_GOAWAY);
  REQUIRE(goaway);
  CHECK(goaway->lastStreamId() < 1 + 2 * kPairs);
  CHECK(p.server->errorReason().rfind("sent GOAWAY INTERNAL_ERROR", 0) == 0);
  CHECK(p.server->counters().goaways_sent.total() == 1);
  CHECK(p.server->openStreams() == 0);
}

TEST_CASE("ServerSession: a rapid reset spread over reads is cut off by the reset limit",
          "[unit][http2][hostile]") {
  ServerSettings settings;
  settings.stream_reset_burst = 100;
  RawPair p(settings);
  REQUIRE(p.feed(RawClient::preface()));
  const int kPairs = 5000;
  size_t goaways = 0;
  for (int i = 0; i < kPairs; ++i) {
    int32_t id = 1 + 2 * i;
    p.feed(p.raw.get(id, {}, false));
    p.feed(RawClient::rst(id, NGHTTP2_CANCEL));
    goaways += countFrames(p.drain(), NGHTTP2_GOAWAY);
  }
  CHECK(goaways == 1);
  // The burst plus what the 33/s refill adds while the test runs, far below the attack.
  CHECK(p.recorder.heads > 50);
  CHECK(p.recorder.heads < 1000);
  CHECK(p.recorder.closes == p.recorder.heads);  // every delivered stream was closed
  CHECK(p.server->openStreams() == 0);
}

TEST_CASE("ServerSession: a CONTINUATION flood ends the connection", "[unit][http2][hostile]") {
  RawPair p;
  HeaderFields fields = pseudo();
  fields.push_back({"x-long", std::string(20000, 'a')});
  std::string block = p.raw.block(fields);
  REQUIRE(p.feed(RawClient::preface()));
  CHECK_FALSE(p.feed(splitHeaders(1, block, 500)));  // 40 CONTINUATIONs, 8 allowed
  CHECK_FALSE(p.server->errorReason().empty());
  std::optional<test::Frame> goaway = findFrame(p.drain(), NGHTTP2_GOAWAY);
  REQUIRE(goaway);
  CHECK(goaway->errorCode() == NGHTTP2_ENHANCE_YOUR_CALM);
  CHECK(p.recorder.heads == 0);
  CHECK_FALSE(p.server->wantsRead());
  CHECK_FALSE(p.server->wantsWrite());
  CHECK_FALSE(p.feed(p.raw.get(3)));  // everything after is ignored
}

TEST_CASE("ServerSession: oversized header lists reset the stream, the connection lives",
          "[unit][http2][hostile]") {
  RawPair p;
  REQUIRE(p.feed(RawClient::preface()));
  std::string attack;
  SECTION("large fields over several frames") {
    HeaderFields fields = pseudo();
    for (int i = 0; i < 10; ++i)
      fields.push_back({"x-f" + std::to_string(i), std::string(8000, 'v')});
    attack = splitHeaders(1, p.raw.block(fields), 16000);
  }
  SECTION("HPACK amplification: one table entry named again and again") {
    std::string block = p.raw.block(pseudo());
    std::string value(4000, 'a');
    block += RawClient::integer(0x40, 6, 0) + RawClient::integer(0, 7, 3) + "x-a" +
             RawClient::integer(0, 7, value.size()) + value;  // RFC 7541 §6.2.1, index it
    // 20 one-byte references (§6.1): 80 KB of fields, under max_header_fields, from one
    // 4 KB frame. The list size, not the field count, refuses it.
    for (int i = 0; i < 20; ++i) block += RawClient::integer(0x80, 7, 62);
    REQUIRE(block.size() < 4200);
    attack = RawClient::frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM,
                              1, block);
  }
  SECTION("too many small fields") {
    HeaderFields fields = pseudo();
    for (int i = 0; i < 97; ++i) fields.push_back({"x-" + std::to_string(i), "v"});  // 101
    attack = p.raw.get(1, HeaderFields(fields.begin() + 4, fields.end()));
  }
  CHECK(p.feed(attack));
  std::vector<test::Frame> frames = p.drain();
  std::optional<test::Frame> rst = findFrame(frames, NGHTTP2_RST_STREAM, 1);
  REQUIRE(rst);
  CHECK(rst->errorCode() == kHeaderLimitResetCode);
  CHECK(p.recorder.heads == 0);
  CHECK(p.recorder.closes == 0);

  CHECK(p.feed(RawClient::plainGet(3)));
  CHECK(p.recorder.heads == 1);
  CHECK(countFrames(p.drain(), NGHTTP2_GOAWAY) == 0);
}

TEST_CASE("ServerSession accepts exactly max_header_fields fields", "[unit][http2][hostile]") {
  RawPair p;
  REQUIRE(p.feed(RawClient::preface()));
  HeaderFields extra;
  for (int i = 0; i < 96; ++i) extra.push_back({"x-" + std::to_string(i), "v"});  // 100
  CHECK(p.feed(p.raw.get(1, extra)));
  CHECK(p.recorder.heads == 1);
  CHECK(p.recorder.requests[1].head.headers.size() == 96);
}

TEST_CASE("ServerSession resets a stream whose trailers are too large", "[unit][http2][hostile]") {
  RawPair p;
  REQUIRE(p.feed(RawClient::preface() + p.raw.get(1, {}, false)));
  REQUIRE(p.recorder.heads == 1);
  HeaderFields trailers;
  for (int i = 0; i < 101; ++i) trailers.push_back({"x-t" + std::to_string(i), "v"});
  CHECK(p.feed(RawClient::frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM,
                                1, p.raw.block(trailers))));
  p.drain();
  CHECK(p.recorder.requests[1].trailers.empty());
  CHECK_FALSE(p.recorder.requests[1].ended);
  CHECK(p.recorder.requests[1].closed);
  CHECK(p.recorder.requests[1].close_code == kHeaderLimitResetCode);
}

TEST_CASE("ServerSession: SETTINGS and PING floods end the connection", "[unit][http2][hostile]") {
  RawPair p;
  REQUIRE(p.feed(RawClient::preface()));
  std::string flood;
  SECTION("SETTINGS") {
    for (int i = 0; i < 5000; ++i) flood += RawClient::frame(NGHTTP2_SETTINGS, 0, 0, "");
  }
  SECTION("PING") {
    for (int i = 0; i < 5000; ++i) {
      flood += RawClient::frame(NGHTTP2_PING, 0, 0, std::string(8, static_cast<char>(i)));
    }
  }
  // The client never reads our ACKs: more than max_outbound_acks pile up.
  CHECK_FALSE(p.feed(flood));
  CHECK_FALSE(p.server->errorReason().empty());
  std::optional<test::Frame> goaway = findFrame(p.drain(), NGHTTP2_GOAWAY);
  REQUIRE(goaway);
  CHECK(goaway->errorCode() == NGHTTP2_ENHANCE_YOUR_CALM);
  CHECK_FALSE(p.server->wantsRead());
}

TEST_CASE("ServerSession: too many SETTINGS entries end the session", "[unit][http2][hostile]") {
  RawPair p;
  std::string entries;
  for (int i = 0; i < 40; ++i) {
    RawClient::put(entries, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 2);
    RawClient::put(entries, 10, 4);
  }
  p.feed(RawClient::preface() + RawClient::frame(NGHTTP2_SETTINGS, 0, 0, entries));
  std::optional<test::Frame> goaway = findFrame(p.drain(), NGHTTP2_GOAWAY);
  REQUIRE(goaway);
  CHECK(goaway->errorCode() == NGHTTP2_ENHANCE_YOUR_CALM);
  CHECK(p.server->errorReason() ==
        "sent GOAWAY ENHANCE_YOUR_CALM: SETTINGS: too many setting entries");
  CHECK_FALSE(p.server->wantsRead());
  CHECK_FALSE(p.server->wantsWrite());
}

TEST_CASE("ServerSession: a flood of empty DATA frames ends the connection",
          "[unit][http2][hostile]") {
  RawPair p;
  REQUIRE(p.feed(RawClient::preface() + p.raw.get(1, {}, false)));
  std::string empty = RawClient::frame(NGHTTP2_DATA, 0, 1, "");
  std::string some;
  for (int i = 0; i < 900; ++i) some += empty;
  CHECK(p.feed(some));  // a few are tolerated
  std::string flood;
  for (int i = 0; i < 200; ++i) flood += empty;
  CHECK_FALSE(p.feed(flood));
  CHECK(p.server->errorReason() == "flood of empty DATA frames");
  std::optional<test::Frame> goaway = findFrame(p.drain(), NGHTTP2_GOAWAY);
  REQUIRE(goaway);
  CHECK(goaway->errorCode() == NGHTTP2_ENHANCE_YOUR_CALM);
  CHECK(goaway->lastStreamId() == 1);
  CHECK_FALSE(p.server->wantsRead());
}

TEST_CASE("ServerSession: empty DATA frames among useful ones are fine", "[unit][http2][hostile]") {
  RawPair p;
  REQUIRE(p.feed(RawClient::preface() + p.raw.get(1, {}, false)));
  std::string bytes;
  for (int i = 0; i < 1500; ++i) {
    bytes += RawClient::frame(NGHTTP2_DATA, 0, 1, "") + RawClient::frame(NGHTTP2_DATA, 0, 1, "x");
  }
  CHECK(p.feed(bytes));
  CHECK(p.recorder.requests[1].body.size() == 1500);
}

TEST_CASE("ServerSession: connection-specific fields and bad pseudo-headers are stream errors",
          "[unit][http2][hostile]") {
  RawPair p;
  REQUIRE(p.feed(RawClient::preface()));
  std::string fields;
  SECTION("connection") { fields = RawClient::literal("connection", "close"); }
  SECTION("keep-alive") { fields = RawClient::literal("keep-alive", "timeout=5"); }
  SECTION("transfer-encoding") { fields = RawClient::literal("transfer-encoding", "chunked"); }
  SECTION("upgrade") { fields = RawClient::literal("upgrade", "h2c"); }
  SECTION("proxy-connection") { fields = RawClient::literal("proxy-connection", "keep-alive"); }
  SECTION("te other than trailers") { fields = RawClient::literal("te", "gzip"); }
  SECTION("upper-case name") { fields = RawClient::literal("X-Upper", "1"); }
  SECTION("unknown pseudo-header") { fields = RawClient::literal(":protocol-x", "1"); }
  SECTION("pseudo-header after a regular field") {
    fields = RawClient::literal("x-a", "1") + RawClient::literal(":path", "/again");
  }
  SECTION("repeated :method") { fields = RawClient::literal(":method", "POST"); }
  std::string block;
  SECTION("missing :path") {
    block = RawClient::literal(":method", "GET") + RawClient::literal(":scheme", "https") +
            RawClient::literal(":authority", "a.test");
  }
  if (block.empty()) block = p.raw.block(pseudo()) + fields;
  CHECK(p.feed(RawClient::frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM,
                                1, block)));
  std::optional<test::Frame> rst = findFrame(p.drain(), NGHTTP2_RST_STREAM, 1);
  REQUIRE(rst);
  CHECK(rst->errorCode() == NGHTTP2_PROTOCOL_ERROR);
  CHECK(p.recorder.heads == 0);
  CHECK(p.recorder.closes == 0);
  CHECK(p.feed(RawClient::plainGet(3)));  // the connection lives on
  CHECK(p.recorder.heads == 1);
}

TEST_CASE("ServerSession lets te: trailers through", "[unit][http2][hostile]") {
  RawPair p;
  CHECK(p.feed(RawClient::preface() + p.raw.get(1, {{"te", "trailers"}})));
  REQUIRE(p.recorder.heads == 1);
  REQUIRE(p.recorder.requests[1].head.headers.size() == 1);
  CHECK(p.recorder.requests[1].head.headers[0].value == "trailers");
}

TEST_CASE("ServerSession: submitGoaway with an error code ends the session",
          "[unit][http2][hostile]") {
  RawPair p;
  REQUIRE(p.feed(RawClient::preface() + p.raw.get(1, {}, false)));
  p.server->submitGoaway(NGHTTP2_INTERNAL_ERROR);
  CHECK(p.server->wantsWrite());
  std::optional<test::Frame> goaway = findFrame(p.drain(), NGHTTP2_GOAWAY);
  REQUIRE(goaway);
  CHECK(goaway->lastStreamId() == 1);
  CHECK(goaway->errorCode() == NGHTTP2_INTERNAL_ERROR);
  CHECK_FALSE(p.server->wantsRead());
  CHECK_FALSE(p.server->wantsWrite());
  CHECK(p.server->errorReason() == "sent GOAWAY INTERNAL_ERROR");
  p.server->closeAllStreams(NGHTTP2_INTERNAL_ERROR);
  CHECK(p.recorder.requests[1].close_code == NGHTTP2_INTERNAL_ERROR);
}

TEST_CASE("ServerSession refuses bytes that are not the HTTP/2 preface", "[unit][http2][hostile]") {
  RawPair p;
  CHECK_FALSE(p.feed("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"));
  CHECK_FALSE(p.server->errorReason().empty());
  CHECK_FALSE(p.server->wantsRead());
  std::optional<test::Frame> goaway = findFrame(p.drain(), NGHTTP2_GOAWAY);
  REQUIRE(goaway);
  CHECK(goaway->errorCode() == NGHTTP2_PROTOCOL_ERROR);
  CHECK_FALSE(p.server->wantsWrite());
  CHECK(p.drain().empty());
  CHECK_FALSE(p.feed(RawClient::preface()));
}

TEST_CASE("ServerSession delivers body bytes that came with their head after it and in order",
          "[unit][http2]") {
  // Heads wait for the end of receive() (rapid reset); DATA read with them is noted in the
  // input, not copied, and must reach each stream after its head, in order, uninterleaved.
  RawPair p;
  // One statement each: the HPACK encoder's state makes the order matter.
  std::string input = RawClient::preface();
  input += p.raw.get(1, {}, false);
  input += RawClient::frame(NGHTTP2_DATA, 0, 1, "ab");
  input += p.raw.get(3, {}, false);
  input += RawClient::frame(NGHTTP2_DATA, 0, 3, "y");
  input += RawClient::frame(NGHTTP2_DATA, 0, 1, "cd");
  input += RawClient::frame(NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 1, "ef");
  input += RawClient::frame(NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 3, "z");
  REQUIRE(p.feed(input));
  INFO(p.server->errorReason());
  CHECK(p.recorder.requests[1].body == "abcdef");
  CHECK(p.recorder.requests[3].body == "yz");
  const std::vector<std::string> order = {"head 1", "data 1", "data 1", "data 1", "end 1",
                                          "head 3", "data 3", "data 3", "end 3"};
  CHECK(p.recorder.order == order);

  // Fed a byte at a time (the same bytes: a fresh session decodes them alike), each
  // piece is delivered as it comes.
  RawPair q;
  for (char c : input) REQUIRE(q.feed(std::string(1, c)));
  CHECK(q.recorder.requests[1].body == "abcdef");
  CHECK(q.recorder.requests[3].body == "yz");
  CHECK(q.recorder.requests[1].ended);
  CHECK(q.recorder.requests[3].ended);
}

}  // namespace
}  // namespace proxy::http2
