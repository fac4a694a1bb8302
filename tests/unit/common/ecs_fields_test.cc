// ECS output of the process log: the ecs-logging prologue, the ECS names our keys map to,
// the event facts of a handshake failure, and the labels every other key becomes.
#include "proxy/common/ecs_fields.h"

#include <catch2/catch.hpp>
#include <string>

using proxy::log::formatEcsLine;
using proxy::log::Level;

namespace {

bool has(const std::string& line, const std::string& part) {
  return line.find(part) != std::string::npos;
}

// "2026-01-02T03:04:05.678901Z"
bool isMicrosecondTimestamp(const std::string& s) {
  if (s.size() != 27 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != '.' || s[26] != 'Z') {
    return false;
  }
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25}) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

}  // namespace

TEST_CASE("An ECS line opens with @timestamp, log.level and message, then the ecs-logging fields",
          "[unit][common]") {
  std::string line = formatEcsLine(Level::kWarn, "listening", {});
  REQUIRE(line.rfind("{\"@timestamp\":\"", 0) == 0);
  CHECK(isMicrosecondTimestamp(line.substr(15, 27)));
  CHECK(line.substr(42) ==
        "\",\"log.level\":\"warn\",\"message\":\"listening\",\"ecs.version\":\"8.11.0\","
        "\"service.name\":\"apm-tls-proxy\",\"log.logger\":\"apm-tls-proxy\","
        "\"event.dataset\":\"apm_tls_proxy.log\"}\n");
}

TEST_CASE("ECS lines give our keys their ECS names and the rest labels", "[unit][common]") {
  std::string line = formatEcsLine(Level::kError, "start-up failed",
                                   {{"error", "port in use"},
                                    {"exit_code", 1},
                                    {"conn", uint64_t{42}},
                                    {"peer", "2001:db8::1"},
                                    {"status", 502},
                                    {"method", "POST"}});
  CHECK(has(line, ",\"error.message\":\"port in use\""));
  CHECK(has(line, ",\"process.exit_code\":1,"));  // a number, as ECS types it
  CHECK(has(line, ",\"labels.conn\":\"42\""));    // labels are keyword strings
  CHECK(has(line, ",\"source.ip\":\"2001:db8::1\""));
  CHECK(has(line, ",\"http.response.status_code\":502,"));
  CHECK(has(line, ",\"http.request.method\":\"POST\""));
  CHECK(line.find('\n') == line.size() - 1);
}

TEST_CASE("A failed TLS handshake is an ECS event with outcome failure", "[unit][common]") {
  std::string line = formatEcsLine(Level::kInfo, "tls handshake failed",
                                   {{"conn", uint64_t{3}},
                                    {"peer", "192.0.2.9"},
                                    {"sni", "apm.example.com"},
                                    {"reason", "unknown_ca"},
                                    {"detail", "CERTIFICATE_VERIFY_FAILED"},
                                    {"suppressed_before", uint64_t{0}}});
  CHECK(has(line,
            ",\"event.kind\":\"event\",\"event.category\":[\"network\"],"
            "\"event.type\":[\"connection\",\"denied\"],\"event.action\":\"tls-handshake\","
            "\"event.outcome\":\"failure\",\"tls.established\":false"));
  CHECK(has(line, ",\"source.ip\":\"192.0.2.9\""));
  CHECK(has(line, ",\"tls.client.server_name\":\"apm.example.com\""));
  CHECK(has(line, ",\"event.reason\":\"unknown_ca\""));
  CHECK(has(line, ",\"error.message\":\"CERTIFICATE_VERIFY_FAILED\""));
  CHECK(has(line, ",\"labels.suppressed_before\":\"0\""));
}

TEST_CASE("ECS lines never repeat a name nor type a value wrongly", "[unit][common]") {
  SECTION("a second field for the same ECS name becomes a label") {
    std::string line = formatEcsLine(Level::kInfo, "x", {{"error", "first"}, {"detail", "second"}});
    CHECK(has(line, ",\"error.message\":\"first\""));
    CHECK(has(line, ",\"labels.detail\":\"second\""));
  }
  SECTION("a value that does not fit the ECS type becomes a label") {
    std::string line =
        formatEcsLine(Level::kInfo, "x", {{"peer", "unix-socket"}, {"exit_code", "none"}});
    CHECK_FALSE(has(line, "source.ip"));
    CHECK(has(line, ",\"labels.peer\":\"unix-socket\""));
    CHECK(has(line, ",\"labels.exit_code\":\"none\""));
  }
  SECTION("an empty value for an ECS name is left out") {
    std::string line = formatEcsLine(Level::kInfo, "x", {{"sni", ""}});
    CHECK_FALSE(has(line, "sni"));
    CHECK_FALSE(has(line, "server_name"));
  }
  SECTION("label keys lose their dots (ECS label keys may not nest)") {
    std::string line = formatEcsLine(Level::kInfo, "x", {{"a.b", "c\n\"d\""}});
    CHECK(has(line, ",\"labels.a_b\":\"c\\n\\\"d\\\"\""));
  }
}
