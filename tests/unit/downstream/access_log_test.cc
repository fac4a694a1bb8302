#include "proxy/downstream/access_log.h"

#include <catch2/catch.hpp>
#include <string>

using proxy::downstream::AccessLog;

TEST_CASE("Access log lines are one JSON object with every field", "[unit][downstream]") {
  AccessLog::Entry e;
  e.peer_ip = "192.0.2.7";
  e.peer_port = 51234;
  e.tls_version = "TLSv1.3";
  e.tls_cipher = "TLS_AES_128_GCM_SHA256";
  e.sni = "apm.example.com";
  e.client_subject = "CN=agent \"one\"";
  e.client_sans = "URI:spiffe://cluster.local/ns/a/sa/b";
  e.method = "POST";
  e.path = "/intake/v2/events?secret_token=abc";
  e.status = 202;
  e.bytes_in = 1234;
  e.bytes_out = 99;
  e.duration_s = 0.25;
  e.upstream_s = 0.125;
  std::string line = AccessLog::format(e);
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
  CHECK(line.find("\"client_ip\":\"192.0.2.7\",\"client_port\":51234,\"tls_version\":\"TLSv1.3\","
                  "\"tls_cipher\":\"TLS_AES_128_GCM_SHA256\",\"sni\":\"apm.example.com\","
                  "\"client_subject\":\"CN=agent \\\"one\\\"\","
                  "\"client_sans\":\"URI:spiffe://cluster.local/ns/a/sa/b\",\"method\":\"POST\","
                  "\"path\":\"/intake/v2/events\",\"status\":202,\"bytes_in\":1234,"
                  "\"bytes_out\":99,\"duration_s\":0.250000,\"upstream_s\":0.125000}") !=
        std::string::npos);
  // The query string never reaches the log: it may carry a secret token.
  CHECK(line.find("secret") == std::string::npos);
}

TEST_CASE("Plain-HTTP access log lines carry no TLS fields", "[unit][downstream]") {
  AccessLog::Entry e;
  e.peer_ip = "::1";
  e.method = "GET";
  e.path = "/";
  e.status = 200;
  e.close_reason = "done";
  std::string line = AccessLog::format(e);
  CHECK(line.find("tls_version") == std::string::npos);
  CHECK(line.find("upstream_s") == std::string::npos);
  CHECK(line.find("\"close_reason\":\"done\"") != std::string::npos);
}
