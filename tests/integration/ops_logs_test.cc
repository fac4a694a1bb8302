// Logs against the real binary: the access log (to a file) checked field by field for a
// TLS request with a client certificate and for a plain request, and [log] format =
// "json" making every stderr line a JSON object.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <set>

#include "tests/integration/ops_support.h"

namespace proxy::integration::ops {
namespace {

const std::set<std::string> kAccessFields = {
    "time",           "client_ip",   "client_port", "tls_version",  "tls_cipher", "sni",
    "client_subject", "client_sans", "method",      "path",         "status",     "bytes_in",
    "bytes_out",      "duration_s",  "upstream_s",  "close_reason", "protocol",   "grpc_status"};

std::vector<JsonValue> accessLines(const std::string& path, size_t n) {
  std::vector<std::string> text;
  bool got = eventually(
      [&] {
        text = lines(readFile(path));
        return text.size() >= n;
      },
      Millis{5000});
  INFO("access log:\n" << readFile(path));
  REQUIRE(got);
  REQUIRE(text.size() == n);
  std::vector<JsonValue> out;
  for (const std::string& l : text) {
    auto j = parseJson(l);
    INFO("line: " << l);
    REQUIRE(j.has_value());
    REQUIRE(j->type == JsonValue::Type::kObject);
    for (const auto& [k, v] : j->object) {
      INFO("unexpected field " << k);
      CHECK(kAccessFields.count(k) == 1);
    }
    out.push_back(*j);
  }
  return out;
}

// "2026-01-02T03:04:05.678Z"
bool isTimestamp(const std::string& s) {
  if (s.size() != 24) return false;
  const std::string digits = "0123456789";
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22}) {
    if (digits.find(s[i]) == std::string::npos) return false;
  }
  return s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' &&
         s[19] == '.' && s[23] == 'Z';
}

TEST_CASE("Access log: a TLS request with a client certificate, field by field",
          "[integration][ops][logs]") {
  TempDir side;
  Pki agents("agents CA");
  std::string ca_path = side.write("agents-ca.crt", agents.caPem());
  std::string log_path = side.file("access.log");
  OpsOptions o;
  o.config.log["access"] = "\"" + log_path + "\"";
  o.ssl_extra =
      "certificate_authorities = [\"" + ca_path + "\"]\nclient_authentication = \"required\"\n";
  OpsStack stack(o);

  PemPair agent =
      agents.client("agent-1", "agent-1.apm.test", "spiffe://cluster.local/ns/apm/sa/agent");
  TlsClientOptions co;
  co.ca_pem = stack.pki.caPem();
  co.cert_pem = agent.cert;
  co.key_pem = agent.key;
  TlsClientContext ctx(co);
  TlsClient c(stack.port(), ctx);
  requireConnect(c);

  const std::string body = "{\"metadata\":{}}\n{\"transaction\":{}}\n";
  const std::string first =
      httpRequest("POST", "/intake/v2/events?verbose=true&secret=s3cr3t",
                  "Content-Type: application/x-ndjson\r\nX-Demo-Delay: 200ms\r\n", body);
  Response r1 = c.request(first);
  REQUIRE(r1.status == 202);
  size_t r1_bytes = c.lastResponseBytes();
  const std::string second = httpRequest("GET", "/?pretty", "Connection: close\r\n");
  Response r2 = c.request(second);
  REQUIRE(r2.status == 200);
  size_t r2_bytes = c.lastResponseBytes();

  auto entries = accessLines(log_path, 2);
  const JsonValue& e = entries[0];
  INFO("first line parsed; checking fields");
  CHECK(isTimestamp(e.get("time").string));
  CHECK(e.get("client_ip").string == "127.0.0.1");
  CHECK(e.get("client_port").number == c.localPort());
  CHECK(e.get("tls_version").string == "TLSv1.3");
  CHECK(e.get("tls_version").string == c.versionName());
  CHECK(e.get("tls_cipher").string == c.cipher());
  CHECK_FALSE(e.get("tls_cipher").string.empty());
  CHECK(e.get("sni").string == "localhost");
  // RFC 2253, most specific RDN first: the subject exactly as the certificate spec wrote it.
  CHECK(e.get("client_subject").string == "CN=agent-1,OU=agents");
  CHECK(e.get("client_sans").string ==
        "DNS:agent-1.apm.test,URI:spiffe://cluster.local/ns/apm/sa/agent");
  CHECK(e.get("method").string == "POST");
  CHECK(e.get("path").string == "/intake/v2/events");  // the query (with its secret) dropped
  CHECK(e.get("status").number == 202);
  CHECK(e.get("bytes_in").number == static_cast<double>(first.size()));
  CHECK(e.get("bytes_out").number == static_cast<double>(r1_bytes));
  REQUIRE(e.has("upstream_s"));
  // The demo waits 200 ms on libuv's millisecond loop clock while upstream_s comes from
  // uv_hrtime(): allow the coarser clock its millisecond (issue 9 item 10: 0.199993 was seen).
  CHECK(e.get("upstream_s").number >= 0.195);
  CHECK(e.get("duration_s").number >= e.get("upstream_s").number);
  CHECK(e.get("duration_s").number < 5);
  CHECK_FALSE(e.has("close_reason"));  // the connection stayed open

  const JsonValue& f = entries[1];
  CHECK(isTimestamp(f.get("time").string));
  CHECK(f.get("client_port").number == c.localPort());
  CHECK(f.get("client_subject").string == "CN=agent-1,OU=agents");
  CHECK(f.get("method").string == "GET");
  CHECK(f.get("path").string == "/");
  CHECK(f.get("status").number == 200);
  CHECK(f.get("bytes_in").number == static_cast<double>(second.size()));
  CHECK(f.get("bytes_out").number == static_cast<double>(r2_bytes));
  CHECK(f.get("upstream_s").number >= 0);
  CHECK(f.get("duration_s").number < 5);
  CHECK(f.get("close_reason").string == "done");
}

TEST_CASE("Access log: a plain-HTTP request has no TLS fields and no query string",
          "[integration][ops][logs]") {
  TempDir side;
  std::string log_path = side.file("access.log");
  OpsOptions o;
  o.tls = false;
  o.admin = false;
  o.config.log["access"] = "\"" + log_path + "\"";
  OpsStack stack(o);

  Client c(stack.port());
  uint16_t local_port = testsupport::localPortOf(c.fd());
  const std::string request =
      httpRequest("GET", "/config/v1/agents?service.name=opbeans&service.environment=prod",
                  "Connection: close\r\n");
  REQUIRE(c.send(request));
  REQUIRE(c.waitClosed(Millis{5000}));
  const std::string wire = c.buffered();  // the whole response, as sent
  REQUIRE(wire.rfind("HTTP/1.1 ", 0) == 0);
  int status = std::atoi(wire.c_str() + 9);

  auto entries = accessLines(log_path, 1);
  const JsonValue& e = entries[0];
  CHECK(isTimestamp(e.get("time").string));
  CHECK(e.get("client_ip").string == "127.0.0.1");
  CHECK(e.get("client_port").number == local_port);
  for (const char* key : {"tls_version", "tls_cipher", "sni", "client_subject", "client_sans"}) {
    INFO("field " << key);
    CHECK_FALSE(e.has(key));
  }
  CHECK(e.get("method").string == "GET");
  CHECK(e.get("path").string == "/config/v1/agents");
  CHECK(e.get("status").number == status);
  CHECK(e.get("bytes_in").number == static_cast<double>(request.size()));
  CHECK(e.get("bytes_out").number == static_cast<double>(wire.size()));
  CHECK(e.get("upstream_s").number >= 0);
  CHECK(e.get("duration_s").number >= e.get("upstream_s").number);
  CHECK(e.get("close_reason").string == "done");
}

TEST_CASE("With format = \"json\" every log line on stderr is a JSON object",
          "[integration][ops][logs]") {
  OpsOptions o;
  o.config.log["format"] = "\"json\"";
  o.config.log["access"] = "\"stderr\"";
  OpsStack stack(o);
  Process& proc = stack.process();

  {
    TlsClient c(stack.port(), stack.client());
    requireConnect(c);
    CHECK(c.request(httpRequest("POST", "/intake/v2/events?x=%22q%22", "", "{}\n")).status == 202);
  }
  {
    Client plain(stack.port());  // a handshake failure line
    REQUIRE(plain.send(httpRequest("GET", "/")));
    CHECK(plain.waitClosed(Millis{5000}));
  }
  CHECK(adminGet(stack.adminPort(), "/readyz").status == 200);
  proc.signal(SIGHUP);
  REQUIRE(eventually(
      [&] { return proc.stderrText().find("certificates reloaded") != std::string::npos; },
      Millis{5000}));
  CHECK(proc.stop() == 0);

  auto text = lines(proc.stderrText());
  REQUIRE(text.size() >= 5);
  bool saw_access = false;
  bool saw_handshake_failure = false;
  bool saw_reload = false;
  bool saw_stopped = false;
  for (const std::string& l : text) {
    auto j = parseJson(l);
    INFO("stderr line: " << l);
    REQUIRE(j.has_value());
    REQUIRE(j->type == JsonValue::Type::kObject);
    CHECK(isTimestamp(j->get("time").string));
    if (!j->has("msg")) {  // an access-log line
      saw_access = true;
      CHECK(j->get("path").string == "/intake/v2/events");
      continue;
    }
    CHECK(j->get("level").type == JsonValue::Type::kString);
    CHECK_FALSE(j->get("msg").string.empty());
    const std::string& msg = j->get("msg").string;
    if (msg == "tls handshake failed") {
      saw_handshake_failure = true;
      CHECK(j->get("reason").string == "not_tls");
    }
    if (msg == "certificates reloaded") {
      saw_reload = true;
      CHECK(j->get("trigger").string == "SIGHUP");
    }
    if (msg == "stopped") saw_stopped = true;
  }
  CHECK(saw_access);
  CHECK(saw_handshake_failure);
  CHECK(saw_reload);
  CHECK(saw_stopped);
}

}  // namespace
}  // namespace proxy::integration::ops
