// W3C traceparent parsing (Trace Context §3.2): only a valid header yields ids.
#include "proxy/downstream/traceparent.h"

#include <catch2/catch.hpp>
#include <string>

using proxy::downstream::parseTraceparent;
using proxy::downstream::pickTraceContext;

namespace {
const std::string kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string kSpan = "00f067aa0ba902b7";
}  // namespace

TEST_CASE("A version-00 traceparent gives its trace id and parent id", "[unit][downstream]") {
  const std::string value = "00-" + kTrace + "-" + kSpan + "-01";  // the ids are views into it
  auto tc = parseTraceparent(value);
  REQUIRE(tc.has_value());
  CHECK(tc->trace_id == kTrace);
  CHECK(tc->span_id == kSpan);
  CHECK(parseTraceparent("00-" + kTrace + "-" + kSpan + "-00").has_value());  // not sampled
}

TEST_CASE("Invalid traceparent values give nothing", "[unit][downstream]") {
  const std::string good = "00-" + kTrace + "-" + kSpan + "-01";
  auto bad =
      GENERATE_COPY(std::string(""), good.substr(0, 54),  // one character short
                    good + "-",                           // version 00 has exactly four fields
                    "ff" + good.substr(2),                // version ff is forbidden
                    "0g" + good.substr(2),                // version not hex
                    "00-" + std::string(32, '0') + "-" + kSpan + "-01",      // all-zero trace id
                    "00-" + kTrace + "-" + std::string(16, '0') + "-01",     // all-zero parent id
                    "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + kSpan + "-01",  // upper-case hex
                    "00_" + kTrace + "-" + kSpan + "-01",                    // wrong separator
                    "00-" + kTrace + "-" + kSpan + "-0x",                    // flags not hex
                    "00-" + kTrace.substr(1) + "z-" + kSpan + "-01");        // trace id not hex
  INFO("value: " << bad);
  CHECK_FALSE(parseTraceparent(bad).has_value());
}

TEST_CASE("A later traceparent version is read by its first four fields", "[unit][downstream]") {
  const std::string value = "01-" + kTrace + "-" + kSpan + "-01-what-comes-next";
  auto tc = parseTraceparent(value);
  REQUIRE(tc.has_value());
  CHECK(tc->trace_id == kTrace);
  CHECK(parseTraceparent("01-" + kTrace + "-" + kSpan + "-01").has_value());
  CHECK_FALSE(parseTraceparent("01-" + kTrace + "-" + kSpan + "-01x").has_value());
}

TEST_CASE("traceparent wins over elastic-apm-traceparent, which fills in when it is invalid",
          "[unit][downstream]") {
  const std::string other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const std::string mine = "00-" + kTrace + "-" + kSpan + "-01";
  auto both = pickTraceContext(mine, other);
  REQUIRE(both.has_value());
  CHECK(both->trace_id == kTrace);
  auto fallback = pickTraceContext("garbage", other);
  REQUIRE(fallback.has_value());
  CHECK(fallback->trace_id == "0af7651916cd43dd8448eb211c80319c");
  CHECK(fallback->span_id == "b7ad6b7169203331");
  CHECK_FALSE(pickTraceContext("", "").has_value());
}
