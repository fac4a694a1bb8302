#include "proxy/downstream/access_log.h"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "tests/support/temp_dir.h"

using proxy::downstream::AccessLog;

namespace {

bool has(const std::string& line, const std::string& part) {
  return line.find(part) != std::string::npos;
}

AccessLog::Entry tlsEntry() {
  AccessLog::Entry e;
  e.peer_ip = "192.0.2.7";
  e.peer_port = 51234;
  e.tls_version = "TLSv1.3";
  e.tls_cipher = "TLS_AES_128_GCM_SHA256";
  e.sni = "apm.example.com";
  e.client_subject = "CN=agent\\, one,OU=apm+CN=second";
  e.client_sans = "URI:spiffe://cluster.local/ns/a/sa/b";
  e.method = "POST";
  e.path = "/intake/v2/events?secret_token=abc";
  e.status = 202;
  e.bytes_in = 1234;
  e.bytes_out = 99;
  e.duration_s = 0.25;
  e.upstream_s = 0.125;
  e.http_version = "1.1";
  e.user_agent = "apm-agent-java/1.50.0 (opbeans)";
  e.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  e.tls_resumed = true;
  e.client_cert_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  e.request_head_bytes = 200;
  e.response_head_bytes = 90;
  return e;
}

}  // namespace

TEST_CASE("Access log lines are one JSON object with every field", "[unit][downstream]") {
  AccessLog::Entry e = tlsEntry();  // the ECS-only fields must not show in this format
  e.client_subject = "CN=agent \"one\"";
  std::string line = AccessLog::format(e);
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
  CHECK(line.find("\"client_ip\":\"192.0.2.7\",\"client_port\":51234,\"tls_version\":\"TLSv1.3\","
                  "\"tls_cipher\":\"TLS_AES_128_GCM_SHA256\",\"sni\":\"apm.example.com\","
                  "\"client_subject\":\"CN=agent \\\"one\\\"\","
                  "\"client_sans\":\"URI:spiffe://cluster.local/ns/a/sa/b\",\"protocol\":\"1.1\","
                  "\"method\":\"POST\","
                  "\"path\":\"/intake/v2/events\",\"status\":202,\"bytes_in\":1234,"
                  "\"bytes_out\":99,\"duration_s\":0.250000,\"upstream_s\":0.125000}") !=
        std::string::npos);
  // The query string never reaches the log: it may carry a secret token.
  CHECK(line.find("secret") == std::string::npos);
  for (const char* ecs_only : {"agent-java", "4bf92f35", "0123456789", "resumed"}) {
    INFO(ecs_only);
    CHECK_FALSE(has(line, ecs_only));
  }
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

TEST_CASE("ECS access lines carry every ECS field, field by field", "[unit][downstream]") {
  std::string line = AccessLog::formatEcs(tlsEntry());
  CHECK(line.rfind("{\"@timestamp\":\"", 0) == 0);
  CHECK(line.find('\n') == line.size() - 1);
  for (const char* part : {
           ",\"log.level\":\"info\",\"message\":\"POST /intake/v2/events 202\",",
           ",\"ecs.version\":\"8.11.0\",\"service.name\":\"apm-tls-proxy\",",
           ",\"log.logger\":\"access\",\"event.dataset\":\"apm_tls_proxy.access\",",
           ",\"event.kind\":\"event\",\"event.category\":[\"web\"],\"event.type\":[\"access\"],",
           ",\"event.outcome\":\"success\",",
           ",\"event.duration\":250000000,",
           ",\"source.ip\":\"192.0.2.7\",\"source.port\":51234,",
           ",\"http.version\":\"1.1\",",
           ",\"http.request.method\":\"POST\",",
           ",\"url.path\":\"/intake/v2/events\",",
           ",\"http.request.bytes\":1234,\"http.request.body.bytes\":1034,",
           ",\"http.response.status_code\":202,",
           ",\"http.response.bytes\":99,\"http.response.body.bytes\":9,",
           ",\"user_agent.original\":\"apm-agent-java/1.50.0 (opbeans)\",",
           ",\"tls.established\":true,\"tls.version_protocol\":\"tls\",\"tls.version\":\"1.3\",",
           ",\"tls.cipher\":\"TLS_AES_128_GCM_SHA256\",\"tls.resumed\":true,",
           ",\"tls.client.server_name\":\"apm.example.com\",",
           ",\"tls.client.x509.subject.distinguished_name\":\"CN=agent\\\\, "
           "one,OU=apm+CN=second\",",
           ",\"tls.client.x509.subject.common_name\":[\"agent, one\",\"second\"],",
           ",\"tls.client.hash.sha256\":"
           "\"0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\",",
           ",\"apm_tls_proxy.client.sans\":\"URI:spiffe://cluster.local/ns/a/sa/b\",",
           ",\"trace.id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span.id\":\"00f067aa0ba902b7\",",
           ",\"apm_tls_proxy.upstream.duration\":125000000}",
       }) {
    INFO("expected: " << part << "\nline: " << line);
    CHECK(has(line, part));
  }
  CHECK_FALSE(has(line, "secret"));
  CHECK_FALSE(has(line, "close_reason"));
}

TEST_CASE("ECS access lines leave out what is unknown or absent", "[unit][downstream]") {
  AccessLog::Entry e;
  e.peer_ip = "::1";
  e.peer_port = 4000;
  e.method = "GET";
  e.path = "/";
  e.status = 503;
  e.close_reason = "done";
  e.traceparent = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";  // invalid
  e.elastic_traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  std::string line = AccessLog::formatEcs(e);
  CHECK(has(line, ",\"event.outcome\":\"failure\","));
  CHECK(has(line, ",\"source.ip\":\"::1\",\"source.port\":4000,"));
  CHECK(has(line, ",\"trace.id\":\"0af7651916cd43dd8448eb211c80319c\","));
  CHECK(has(line, ",\"apm_tls_proxy.close_reason\":\"done\"}"));
  for (const char* absent : {"tls.", "user_agent", "body.bytes", "http.version", "upstream"}) {
    INFO("absent: " << absent);
    CHECK_FALSE(has(line, absent));
  }
  e.status = 0;  // no response at all
  CHECK(has(AccessLog::formatEcs(e), ",\"event.outcome\":\"unknown\","));
}

TEST_CASE("A gRPC call's grpc-status is logged, and a non-zero one is a failure",
          "[unit][downstream]") {
  AccessLog::Entry e = tlsEntry();
  e.http_version = "2";
  e.status = 200;
  CHECK_FALSE(has(AccessLog::format(e), "grpc"));  // not a gRPC call: no field
  CHECK_FALSE(has(AccessLog::formatEcs(e), "grpc"));
  e.grpc_status = 0;
  CHECK(has(AccessLog::format(e), ",\"upstream_s\":0.125000,\"grpc_status\":0}"));
  std::string ok = AccessLog::formatEcs(e);
  CHECK(has(ok, ",\"event.outcome\":\"success\","));
  CHECK(has(ok, ",\"apm_tls_proxy.grpc.status_code\":0}"));
  e.grpc_status = 14;  // UNAVAILABLE, under :status 200
  CHECK(has(AccessLog::format(e), ",\"grpc_status\":14}"));
  std::string failed = AccessLog::formatEcs(e);
  CHECK(has(failed, ",\"event.outcome\":\"failure\","));
  CHECK(has(failed, ",\"http.response.status_code\":200,"));
  CHECK(has(failed, ",\"apm_tls_proxy.grpc.status_code\":14}"));
}

TEST_CASE("ECS access-log helpers: HTTP version names and the XFCC hash", "[unit][downstream]") {
  CHECK(AccessLog::httpVersionName(1, 0) == "1.0");
  CHECK(AccessLog::httpVersionName(1, 1) == "1.1");
  CHECK(AccessLog::httpVersionName(2, 0) == "2");
  CHECK(AccessLog::httpVersionName(0, 9).empty());
  const std::string hex(64, 'a');
  CHECK(AccessLog::sha256FromXfcc("Hash=" + hex + ";Subject=\"CN=x\"") == hex);
  CHECK(AccessLog::sha256FromXfcc("").empty());
  CHECK(AccessLog::sha256FromXfcc("Hash=abc;Subject=\"CN=x\"").empty());
  CHECK(AccessLog::sha256FromXfcc("Hash=" + std::string(64, 'z')).empty());
}

TEST_CASE("An ECS access log writes its lines to the file", "[unit][downstream]") {
  proxy::testsupport::TempDir dir;
  std::string path = dir.file("access.log");
  {
    auto log = AccessLog::open(path, AccessLog::Format::kEcs);
    REQUIRE(log);
    log.value()->write(tlsEntry());
    log.value()->flushForTest();
  }
  std::ifstream in(path);
  std::string line;
  REQUIRE(std::getline(in, line));
  CHECK(has(line, "\"url.path\":\"/intake/v2/events\""));
  CHECK_FALSE(std::getline(in, line));
}

TEST_CASE("RequestFacts keeps the three headers the ECS line needs, and forgets them",
          "[unit][downstream]") {
  AccessLog::RequestFacts facts;
  const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  facts.captureHeader("user-agent", std::string(2000, 'u'));
  facts.captureHeader("traceparent", traceparent);
  facts.captureHeader("elastic-apm-traceparent", "e");
  facts.captureHeader("authorization", "Bearer secret");
  AccessLog::Entry e;
  facts.fill(e);
  CHECK(e.user_agent == std::string(1024, 'u'));  // capped at 1 KiB
  CHECK(e.traceparent == traceparent);
  CHECK(e.elastic_traceparent == "e");
  std::string line = AccessLog::formatEcs(e);
  CHECK(has(line, "\"trace.id\":\"4bf92f3577b34da6a3ce929d0e0e4736\""));
  CHECK_FALSE(has(line, "secret"));
  facts.clear();
  AccessLog::Entry empty;
  facts.fill(empty);
  CHECK(empty.user_agent.empty());
  CHECK(empty.traceparent.empty());
  CHECK(empty.elastic_traceparent.empty());
}
