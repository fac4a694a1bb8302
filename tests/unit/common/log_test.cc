#include "proxy/common/log.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

namespace {

std::string captureLine(proxy::log::Format format) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  proxy::log::configure(proxy::log::Level::kInfo, format);
  proxy::log::setFdForTest(fds[1]);
  proxy::log::info("conn closed", {{"conn", uint64_t{7}}, {"reason", "peer \"reset\""}});
  proxy::log::debug("hidden", {});
  proxy::log::setFdForTest(2);
  close(fds[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  return out;
}

}  // namespace

TEST_CASE("Text log lines carry level, message and quoted fields", "[unit][common]") {
  std::string line = captureLine(proxy::log::Format::kText);
  CHECK(line.find("level=info msg=\"conn closed\" conn=7 reason=\"peer \\\"reset\\\"\"\n") !=
        std::string::npos);
  CHECK(line.find("hidden") == std::string::npos);
}

TEST_CASE("JSON log lines are one escaped object per line", "[unit][common]") {
  std::string line = captureLine(proxy::log::Format::kJson);
  CHECK(line.rfind("{\"time\":\"", 0) == 0);
  CHECK(line.find("\"level\":\"info\",\"msg\":\"conn closed\",\"conn\":\"7\","
                  "\"reason\":\"peer \\\"reset\\\"\"}\n") != std::string::npos);
}

TEST_CASE("ECS log lines follow ecs-logging: @timestamp, log.level, message first",
          "[unit][common]") {
  std::string line = captureLine(proxy::log::Format::kEcs);
  CHECK(line.rfind("{\"@timestamp\":\"", 0) == 0);
  CHECK(line.find("\",\"log.level\":\"info\",\"message\":\"conn closed\",") != std::string::npos);
  CHECK(line.find(",\"labels.conn\":\"7\",\"event.reason\":\"peer \\\"reset\\\"\"}\n") !=
        std::string::npos);
  CHECK(line.find("hidden") == std::string::npos);
  CHECK(line.find('\n') == line.size() - 1);  // one line: the debug call wrote nothing
}

TEST_CASE("Timestamps carry milliseconds, or microseconds for ECS", "[unit][common]") {
  std::string ms;
  std::string us;
  proxy::log::appendTimestamp(ms);
  proxy::log::appendTimestampMicros(us);
  REQUIRE(ms.size() == 24);
  REQUIRE(us.size() == 27);
  CHECK(ms[19] == '.');
  CHECK(us[19] == '.');
  CHECK(ms.back() == 'Z');
  CHECK(us.back() == 'Z');
  CHECK(us.find_first_not_of("0123456789", 20) == 26);
}
