// Value syntaxes: durations, host:port, networks, Problem formatting.
#include <catch2/catch.hpp>
#include <string>

#include "proxy/config/config.h"

using proxy::config::Cidr;
using proxy::config::formatDuration;
using proxy::config::formatHostPort;
using proxy::config::HostPort;
using proxy::config::Millis;
using proxy::config::parseCidr;
using proxy::config::parseDuration;
using proxy::config::parseHostPort;
using proxy::config::Problem;

namespace {

std::string durationError(const std::string& text) {
  auto r = parseDuration(text);
  REQUIRE_FALSE(r.isOk());
  return r.status().message();
}

std::string hostPortError(const std::string& text) {
  auto r = parseHostPort(text);
  REQUIRE_FALSE(r.isOk());
  return r.status().message();
}

}  // namespace

TEST_CASE("Durations are read the way APM Server (Go) writes them", "[unit][config]") {
  auto [text, ms] = GENERATE(table<std::string, int64_t>({
      {"0", 0},
      {"0s", 0},
      {"45s", 45'000},
      {"1m30s", 90'000},
      {"500ms", 500},
      {"1h", 3'600'000},
      {"2h45m", 9'900'000},
      {"3600s", 3'600'000},
      {"1.5s", 1'500},
      {"0.3s", 300},
      {"1s500ms", 1'500},
      {"+10s", 10'000},
      {"2000000ns", 2},
      {"1.5h", 5'400'000},
  }));
  auto r = parseDuration(text);
  INFO(text);
  REQUIRE(r.isOk());
  CHECK(r.value() == Millis{ms});
}

TEST_CASE("Durations accept microseconds only when they add up to whole milliseconds",
          "[unit][config]") {
  CHECK(parseDuration("3000us").value() == Millis{3});
  CHECK(parseDuration("3000\xC2\xB5s").value() == Millis{3});
  CHECK_THAT(durationError("1500us"), Catch::Contains("finer than a millisecond"));
}

TEST_CASE("Invalid durations are refused with the reason and an example", "[unit][config]") {
  CHECK_THAT(durationError(""), Catch::Contains("empty"));
  CHECK_THAT(durationError("45"), Catch::Contains("missing unit"));
  CHECK_THAT(durationError("45"), Catch::Contains("\"45s\""));
  CHECK_THAT(durationError("45x"), Catch::Contains("unknown unit \"x\""));
  CHECK_THAT(durationError("10 s"), Catch::Contains("unknown unit \" s\""));
  CHECK_THAT(durationError("-5s"), Catch::Contains("must not be negative"));
  CHECK_THAT(durationError("s"), Catch::Contains("expected a number"));
  CHECK_THAT(durationError("1m30"), Catch::Contains("missing unit"));
  CHECK_THAT(durationError("99999999999999999999h"), Catch::Contains("too large"));
  CHECK_THAT(durationError("9999999h"), Catch::Contains("too large"));
  CHECK_THAT(durationError("+"), Catch::Contains("no number"));
}

TEST_CASE("Durations format so that they parse back to the same value", "[unit][config]") {
  CHECK(formatDuration(Millis{0}) == "0s");
  CHECK(formatDuration(Millis{45'000}) == "45s");
  CHECK(formatDuration(Millis{90'000}) == "1m30s");
  CHECK(formatDuration(Millis{500}) == "500ms");
  CHECK(formatDuration(Millis{3'600'000}) == "1h");
  CHECK(formatDuration(Millis{9'900'000}) == "2h45m");
  CHECK(formatDuration(Millis{3'661'001}) == "1h1m1s1ms");
  int64_t ms = GENERATE(0, 1, 999, 1'000, 59'999, 60'000, 3'599'999, 86'400'000, 123'456'789);
  CHECK(parseDuration(formatDuration(Millis{ms})).value() == Millis{ms});
}

TEST_CASE("Listen addresses parse as host and port, IPv6 in brackets", "[unit][config]") {
  CHECK(parseHostPort("127.0.0.1:8200").value() == HostPort{"127.0.0.1", 8200});
  CHECK(parseHostPort("[::1]:8200").value() == HostPort{"::1", 8200});
  CHECK(parseHostPort("[::]:8200").value() == HostPort{"::", 8200});
  CHECK(parseHostPort("localhost:8200").value() == HostPort{"localhost", 8200});
  CHECK(parseHostPort("apm.example.com:443").value() == HostPort{"apm.example.com", 443});
  CHECK(parseHostPort(":8200").value() == HostPort{"0.0.0.0", 8200});
  CHECK(parseHostPort("0.0.0.0:0").value() == HostPort{"0.0.0.0", 0});
  CHECK(parseHostPort("127.0.0.1:65535").value().port == 65535);
}

TEST_CASE("Listen addresses that cannot be bound are refused with the reason", "[unit][config]") {
  CHECK_THAT(hostPortError(""), Catch::Contains("empty address"));
  CHECK_THAT(hostPortError("127.0.0.1"), Catch::Contains("missing port"));
  CHECK_THAT(hostPortError("::1:8200"), Catch::Contains("must be written in brackets"));
  CHECK_THAT(hostPortError("[::1]"), Catch::Contains("missing port"));
  CHECK_THAT(hostPortError("[::1:8200"), Catch::Contains("missing ']'"));
  CHECK_THAT(hostPortError("[zz::1]:8200"), Catch::Contains("is not an IPv6 address"));
  CHECK_THAT(hostPortError("300.1.1.1:80"), Catch::Contains("is not an IPv4 address"));
  CHECK_THAT(hostPortError("bad_host:80"), Catch::Contains("is not a valid host name"));
  CHECK_THAT(hostPortError("127.0.0.1:65536"), Catch::Contains("from 0 to 65535"));
  CHECK_THAT(hostPortError("127.0.0.1:http"), Catch::Contains("from 0 to 65535"));
  CHECK_THAT(hostPortError("127.0.0.1:"), Catch::Contains("from 0 to 65535"));
}

TEST_CASE("Host and port format back to the text they parse from", "[unit][config]") {
  CHECK(formatHostPort(HostPort{"127.0.0.1", 8200}) == "127.0.0.1:8200");
  CHECK(formatHostPort(HostPort{"::1", 8200}) == "[::1]:8200");
  CHECK(formatHostPort(HostPort{"localhost", 1}) == "localhost:1");
}

TEST_CASE("Networks contain the addresses inside their prefix", "[unit][config]") {
  Cidr ten = parseCidr("10.0.0.0/8").value();
  CHECK_FALSE(ten.v6);
  CHECK(ten.prefix == 8);
  CHECK(ten.text == "10.0.0.0/8");
  CHECK(ten.contains("10.1.2.3"));
  CHECK(ten.contains("10.255.255.255"));
  CHECK_FALSE(ten.contains("11.0.0.1"));
  CHECK_FALSE(ten.contains("not an ip"));
  // Dual-stack sockets report IPv4 peers as IPv4-mapped IPv6 addresses.
  CHECK(ten.contains("::ffff:10.9.8.7"));
  CHECK_FALSE(ten.contains("::1"));

  Cidr odd = parseCidr("192.168.1.128/25").value();
  CHECK(odd.contains("192.168.1.200"));
  CHECK_FALSE(odd.contains("192.168.1.127"));

  Cidr host = parseCidr("192.168.1.7").value();
  CHECK(host.prefix == 32);
  CHECK(host.contains("192.168.1.7"));
  CHECK_FALSE(host.contains("192.168.1.8"));

  Cidr loop6 = parseCidr("::1/128").value();
  CHECK(loop6.v6);
  CHECK(loop6.contains("::1"));
  CHECK_FALSE(loop6.contains("::2"));

  Cidr ula = parseCidr("fd00::/8").value();
  CHECK(ula.contains("fd12:3456::1"));
  CHECK_FALSE(ula.contains("fe80::1"));
  CHECK_FALSE(ula.contains("10.0.0.1"));

  Cidr all = parseCidr("0.0.0.0/0").value();
  CHECK(all.contains("8.8.8.8"));
}

TEST_CASE("Networks written with host bits mean the network they lie in", "[unit][config]") {
  Cidr c = parseCidr("10.1.2.3/8").value();
  CHECK(c.addr[0] == 10);
  CHECK(c.addr[1] == 0);
  CHECK(c.addr[3] == 0);
  CHECK(c.contains("10.200.0.1"));
}

TEST_CASE("Invalid networks are refused with an example", "[unit][config]") {
  for (const char* bad : {"10.0.0.0/", "10.0.0.0/x", "10.0.0/8", "", "example.com", "/8"}) {
    INFO(bad);
    auto r = parseCidr(bad);
    REQUIRE_FALSE(r.isOk());
    CHECK_THAT(r.status().message(), Catch::Contains("\"10.0.0.0/8\""));
  }
  CHECK_THAT(parseCidr("10.0.0.0/33").status().message(), Catch::Contains("at most 32"));
  CHECK_THAT(parseCidr("::/129").status().message(), Catch::Contains("at most 128"));
}

TEST_CASE("Problems format as FILE:LINE:COLUMN: key: message", "[unit][config]") {
  Problem p{"proxy.toml", {3, 7}, "server.host", "missing port", false};
  CHECK(p.format() == "proxy.toml:3:7: server.host: missing port");
  p.warning = true;
  CHECK(p.format() == "proxy.toml:3:7: warning: server.host: missing port");
  Problem unknown{"proxy.toml", {}, "", "cannot read the file", false};
  CHECK(unknown.format() == "proxy.toml: cannot read the file");
  Problem quoted{"proxy.toml", {1, 1}, "log.level", "invalid value \"a\nb\tc\x7f\"", false};
  CHECK(quoted.format() == "proxy.toml:1:1: log.level: invalid value \"a\\x0ab\\x09c\\x7f\"");
}
