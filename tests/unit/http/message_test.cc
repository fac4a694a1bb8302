#include "proxy/http/message.h"

#include <catch2/catch.hpp>
#include <string>

namespace proxy::http {
namespace {

void addHeader(MessageHead& h, std::string_view name, std::string_view value) {
  h.appendHeaderName(name.data(), name.size());
  h.appendHeaderValue(value.data(), value.size());
  h.endHeader();
}

TEST_CASE("equalsIgnoreCase compares ASCII case-insensitively", "[unit][http]") {
  CHECK(equalsIgnoreCase("Content-Length", "content-length"));
  CHECK(equalsIgnoreCase("", ""));
  CHECK_FALSE(equalsIgnoreCase("Host", "Hos"));
  CHECK_FALSE(equalsIgnoreCase("a-b", "a_b"));
}

TEST_CASE("MessageHead assembles names and values delivered in pieces", "[unit][http]") {
  MessageHead h;
  h.appendUrl("/a", 2);
  h.appendUrl("bc", 2);
  h.appendHeaderName("Ho", 2);
  h.appendHeaderName("st", 2);
  h.appendHeaderValue(" exa", 4);
  h.appendHeaderValue("mple \t", 6);
  h.endHeader();
  h.appendHeaderName("X-Empty", 7);
  h.endHeader();
  h.appendHeaderName("X-Last", 6);
  h.appendHeaderValue("v", 1);
  h.finishHeaders();
  CHECK(h.url() == "/abc");
  REQUIRE(h.headerCount() == 3);
  CHECK(h.header(0).name == "Host");
  CHECK(h.header(0).value == "example");
  CHECK(h.header(1).name == "X-Empty");
  CHECK(h.header(1).value.empty());
  CHECK(h.header(2).value == "v");
  std::string_view v;
  CHECK(h.find("host", &v));
  CHECK(v == "example");
  CHECK_FALSE(h.find("missing", &v));
}

TEST_CASE("MessageHead::connectionHas parses comma-separated tokens", "[unit][http]") {
  MessageHead h;
  addHeader(h, "Connection", "keep-alive ,  Upgrade,,");
  addHeader(h, "connection", "X-Custom");
  h.finishHeaders();
  CHECK(h.connectionHas("upgrade"));
  CHECK(h.connectionHas("KEEP-ALIVE"));
  CHECK(h.connectionHas("x-custom"));
  CHECK_FALSE(h.connectionHas("close"));
  CHECK_FALSE(h.connectionHas("keep"));
  CHECK(MessageHead::listHas("gzip, chunked", "chunked"));
  CHECK_FALSE(MessageHead::listHas("", "chunked"));
}

TEST_CASE("MessageHead::clear forgets the message but keeps its capacity", "[unit][http]") {
  MessageHead h;
  for (int i = 0; i < 50; ++i) addHeader(h, "X-Header", std::string(40, 'v'));
  h.addWireBytes(100);
  h.status = 200;
  h.chunked = true;
  h.clear();
  CHECK(h.headerCount() == 0);
  CHECK(h.url().empty());
  CHECK(h.wireBytes() == 0);
  CHECK(h.status == 0);
  CHECK_FALSE(h.chunked);
  CHECK(h.storedBytes() == 0);
  addHeader(h, "A", "b");
  CHECK(h.header(0).name == "A");
}

}  // namespace
}  // namespace proxy::http
