// Unit tests of the shared test helpers whose mistakes would hide in every test using
// them: the HTTP/1.1 response reader (fed at every split point), the JSON reader and the
// Prometheus text parser.
#include <catch2/catch.hpp>
#include <string>

#include "tests/support/http1_reader.h"
#include "tests/support/json.h"
#include "tests/support/metrics.h"

namespace proxy::testsupport {
namespace {

// Feeds `wire` in two pieces split at `at`; the reader and the bytes it left unread.
std::pair<Response, std::string> readSplit(const std::string& wire, size_t at,
                                           Http1Reader::Options options = {}) {
  Http1Reader reader(options);
  std::string in = wire.substr(0, at);
  in.erase(0, reader.feed(in));
  in += wire.substr(at);
  in.erase(0, reader.feed(in));
  if (!reader.done()) reader.finish();
  return {reader.response(), in};
}

}  // namespace

TEST_CASE("Http1Reader frames Content-Length, chunked and 1xx responses at every split point",
          "[unit][support]") {
  const std::string chunked =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A:  spaced  \r\n\r\n"
      "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n";
  const std::string next = "HTTP/1.1 204 No Content\r\n\r\n";
  for (size_t at = 0; at <= chunked.size(); ++at) {
    INFO("split at " << at);
    auto [r, rest] = readSplit(chunked + next, at);
    CHECK(r.complete);
    CHECK(r.status == 200);
    CHECK(r.chunked);
    CHECK(r.body == "hello world");
    CHECK(r.header("x-a") == std::optional<std::string>("spaced"));
    REQUIRE(r.interim.size() == 1);
    CHECK(r.interim[0].status == 100);
    CHECK(rest == next);  // a pipelined response stays unread
  }
  const std::string length = "HTTP/1.1 202 Accepted\r\nContent-Length: 3\r\n\r\nabc";
  for (size_t at = 0; at <= length.size(); ++at) {
    auto [r, rest] = readSplit(length, at);
    CHECK(r.complete);
    CHECK(r.body == "abc");
    CHECK_FALSE(r.closed);
  }
}

TEST_CASE("Http1Reader ends a close-delimited body at EOF and counts discarded bodies",
          "[unit][support]") {
  Http1Reader reader;
  reader.feed("HTTP/1.0 200 OK\r\n\r\npart one, ");
  reader.feed("part two");
  CHECK_FALSE(reader.done());
  reader.finish();
  CHECK(reader.done());
  CHECK(reader.response().body == "part one, part two");
  CHECK(reader.response().closed);

  Http1Reader counting(Http1Reader::Options{false, false, /*discard_body=*/true});
  std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
  CHECK(counting.feed(wire) == wire.size());
  CHECK(counting.done());
  CHECK(counting.bodyBytes() == 10);
  CHECK(counting.response().body.empty());
  CHECK(counting.wireBytes() == wire.size());
  counting.reset();
  CHECK_FALSE(counting.done());

  Http1Reader head(Http1Reader::Options{false, /*head_request=*/true, false});
  head.feed("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n");
  CHECK(head.done());

  Http1Reader broken;
  broken.feed("SSH-2.0-OpenSSH\r\n\r\n");
  CHECK(broken.broken());
}

TEST_CASE("parseJson reads objects in order, escapes and numbers: latin1Bytes undoes its escapes",
          "[unit][support]") {
  auto j = parseJson(R"( {"b": [1, 2.5, -3e2], "a": "x\u00e9\n", "t": true, "n": null} )");
  REQUIRE(j.has_value());
  REQUIRE(j->object.size() == 4);
  CHECK(j->object[0].first == "b");
  CHECK(j->get("b").array.at(2).number == -300);
  CHECK(j->get("a").string == "x\xc3\xa9\n");
  CHECK(latin1Bytes(j->get("a").string) == "x\xe9\n");
  CHECK(j->get("t").boolean);
  CHECK(j->has("n"));
  CHECK(j->get("missing").type == JsonValue::Type::kNull);
  CHECK(*parseJson("[1, \"a\", {\"k\": false}]") == *parseJson(" [1,\"a\",{\"k\":false}] "));
  CHECK(*parseJson("[1, \"a\"]") != *parseJson("[1, \"b\"]"));
  CHECK(*parseJson("1") != *parseJson("\"1\""));
  CHECK_FALSE(parseJson("{\"a\": }").has_value());
  CHECK_FALSE(parseJson("{} trailing").has_value());
}

TEST_CASE("parseMetrics reads samples with labels, infinities and timestamps", "[unit][support]") {
  std::string text =
      "# HELP x_total a counter\n# TYPE x_total counter\n"
      "x_total{reason=\"a b\"} 3\nup 1 1700000000\nh_bucket{le=\"+Inf\"} +Inf\n";
  auto m = parseMetrics(text);
  CHECK(metric(m, "x_total{reason=\"a b\"}") == std::optional<double>(3));
  CHECK(metric(m, "up") == std::optional<double>(1));
  CHECK(metricValue(text, "h_bucket{le=\"+Inf\"}") > 1e300);
  CHECK(metricValue(text, "absent") == -1);
}

}  // namespace proxy::testsupport
