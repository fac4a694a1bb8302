#include "proxy/downstream/log_limiter.h"

#include <catch2/catch.hpp>
#include <string>

using proxy::downstream::LogLimiter;

TEST_CASE("LogLimiter lets a few lines per peer through and counts the rest",
          "[unit][downstream]") {
  LogLimiter limiter;
  uint64_t suppressed = 99;
  for (uint32_t i = 0; i < LogLimiter::kLinesPerWindow; ++i) {
    CHECK(limiter.allow("192.0.2.1", 1000 + i, &suppressed));
    CHECK(suppressed == 0);
  }
  CHECK_FALSE(limiter.allow("192.0.2.1", 2000, &suppressed));
  CHECK_FALSE(limiter.allow("192.0.2.1", 3000, &suppressed));
  // Another peer has its own budget.
  CHECK(limiter.allow("192.0.2.2", 3000, &suppressed));
  // After the window, the first line reports what was held back.
  CHECK(limiter.allow("192.0.2.1", 1000 + LogLimiter::kWindowMs, &suppressed));
  CHECK(suppressed == 2);
}

TEST_CASE("LogLimiter memory stays bounded under many peers", "[unit][downstream]") {
  LogLimiter limiter;
  uint64_t suppressed = 0;
  for (size_t i = 0; i < LogLimiter::kMaxPeers * 3; ++i) {
    CHECK(limiter.allow("peer-" + std::to_string(i), 5, &suppressed));
  }
  // A new peer is still let through after the table filled up several times.
  CHECK(limiter.allow("last", 5, &suppressed));
}
