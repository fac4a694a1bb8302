// [log] format = "ecs" against the real binary: every line it writes (process log on
// stderr and access log) is checked field by field against tests/fixtures/ecs-fields.json
// (names and ECS types), and the fields of one TLS request, a resumed session and a failed
// handshake are checked by value. Then the access log under rotation: renamed + SIGUSR1,
// and removed without a signal, new lines land in a new file.
#include <arpa/inet.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "tests/integration/ops_support.h"
#include "tests/integration/tls_support.h"

namespace proxy::integration {
namespace {

using ops::JsonValue;

constexpr const char* kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr const char* kSpanId = "00f067aa0ba902b7";
constexpr const char* kElasticTraceId = "0af7651916cd43dd8448eb211c80319c";
constexpr const char* kElasticSpanId = "b7ad6b7169203331";

struct Schema {
  std::map<std::string, std::string> types;  // "tls.version" -> "keyword"; "labels.*" too
  std::vector<std::string> required;
  std::string ecs_version;

  // The type of `name`, by exact name or by the longest "prefix.*" entry; "" when unknown.
  std::string typeOf(const std::string& name) const {
    auto it = types.find(name);
    if (it != types.end()) return it->second;
    std::string best;
    size_t best_len = 0;
    for (const auto& [key, type] : types) {
      if (key.size() < 2 || key.compare(key.size() - 2, 2, ".*") != 0) continue;
      std::string prefix = key.substr(0, key.size() - 1);  // "labels."
      if (name.rfind(prefix, 0) == 0 && prefix.size() > best_len) {
        best = type;
        best_len = prefix.size();
      }
    }
    return best;
  }
};

Schema loadSchema() {
  std::string text = readFile(std::string(PROXY_SOURCE_DIR) + "/tests/fixtures/ecs-fields.json");
  auto j = ops::parseJson(text);
  REQUIRE(j.has_value());
  Schema s;
  s.ecs_version = j->get("ecs_version").string;
  for (const auto& [name, type] : j->get("fields").object) s.types[name] = type.string;
  for (const JsonValue& r : j->get("required").array) s.required.push_back(r.string);
  REQUIRE(s.types.size() > 20);
  return s;
}

// "2026-01-02T03:04:05.678901Z": ISO 8601 UTC with microseconds.
bool isMicroTimestamp(const std::string& s) {
  if (s.size() != 27) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char want = "0000-00-00T00:00:00.000000Z"[i];
    if (want == '0' ? (s[i] < '0' || s[i] > '9') : s[i] != want) return false;
  }
  return true;
}

bool isIp(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// Whether one (non-array) JSON value has the ECS type `type`.
bool scalarFits(const JsonValue& v, const std::string& type) {
  using T = JsonValue::Type;
  if (type == "keyword" || type == "match_only_text" || type == "wildcard") {
    return v.type == T::kString;
  }
  if (type == "long") {
    return v.type == T::kNumber && v.number == static_cast<double>(static_cast<int64_t>(v.number));
  }
  if (type == "boolean") return v.type == T::kBool;
  if (type == "ip") return v.type == T::kString && isIp(v.string);
  if (type == "date") return v.type == T::kString && isMicroTimestamp(v.string);
  return false;
}

// Checks one emitted line field by field; returns it parsed.
JsonValue checkLine(const Schema& schema, const std::string& line) {
  INFO("line: " << line);
  auto j = ops::parseJson(line);
  REQUIRE(j.has_value());
  REQUIRE(j->type == JsonValue::Type::kObject);
  std::set<std::string> seen;
  for (const auto& [name, value] : j->object) {
    INFO("field " << name);
    CHECK(seen.insert(name).second);  // no name twice
    std::string type = schema.typeOf(name);
    CHECK_FALSE(type.empty());  // every name is in the schema
    if (type.empty()) continue;
    if (value.type == JsonValue::Type::kArray) {  // any ECS field may hold an array
      CHECK_FALSE(value.array.empty());
      for (const JsonValue& item : value.array) CHECK(scalarFits(item, type));
    } else {
      CHECK(scalarFits(value, type));
    }
  }
  for (const std::string& name : schema.required) {
    INFO("required field " << name);
    CHECK(j->has(name));
  }
  CHECK(j->get("ecs.version").string == schema.ecs_version);
  CHECK(j->get("service.name").string == "apm-tls-proxy");
  return *j;
}

std::vector<JsonValue> checkLines(const Schema& schema, const std::string& text,
                                  std::set<std::string>* names) {
  std::vector<JsonValue> out;
  for (const std::string& l : ops::lines(text)) {
    out.push_back(checkLine(schema, l));
    for (const auto& [name, value] : out.back().object) names->insert(name);
  }
  return out;
}

// Upper-case hex SHA-256 of the DER of the first certificate in `pem`.
std::string certSha256(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  REQUIRE(cert != nullptr);
  uint8_t* der = nullptr;
  int len = i2d_X509(cert, &der);
  X509_free(cert);
  REQUIRE(len > 0);
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(len), digest);
  OPENSSL_free(der);
  std::string hex;
  char buf[3];
  for (uint8_t b : digest) {
    std::snprintf(buf, sizeof buf, "%02X", b);
    hex += buf;
  }
  return hex;
}

const JsonValue* findMessage(const std::vector<JsonValue>& lines, const std::string& message) {
  for (const JsonValue& j : lines) {
    if (j.get("message").string == message) return &j;
  }
  return nullptr;
}

std::vector<std::string> waitForLines(const std::string& path, size_t n) {
  std::vector<std::string> text;
  bool got = ops::eventually(
      [&] {
        text = ops::lines(readFile(path));
        return text.size() >= n;
      },
      Millis{5000});
  INFO(path << ":\n" << readFile(path));
  REQUIRE(got);
  return text;
}

TEST_CASE("format = \"ecs\": every line matches the ECS schema, and the fields say what happened",
          "[integration][ops][logs][ecs]") {
  Schema schema = loadSchema();
  TempDir side;
  ops::Pki agents("agents CA");
  std::string ca_path = side.write("agents-ca.crt", agents.caPem());
  std::string log_path = side.file("access.log");
  ops::OpsOptions o;
  o.config.log["format"] = "\"ecs\"";
  o.config.log["access"] = "\"" + log_path + "\"";
  o.ssl_extra =
      "certificate_authorities = [\"" + ca_path + "\"]\nclient_authentication = \"required\"\n";
  ops::OpsStack stack(o);
  ops::PemPair agent =
      agents.client("agent-1", "agent-1.apm.test", "spiffe://cluster.local/ns/apm/sa/agent");

  // 1. A session to resume later (one GET).
  tls::ClientOptions to;
  to.trust_pem = stack.pki.caPem();
  to.cert_pem = agent.cert;
  to.key_pem = agent.key;
  tls::SessionPtr session;
  {
    tls::TlsClient first(stack.port(), to);
    REQUIRE(first.exchange(httpRequest("GET", "/", "Connection: close\r\n")).status == 200);
    session = first.session();
    REQUIRE(session != nullptr);
  }
  waitForLines(log_path, 1);

  // 2. The request checked by value, then one with only elastic-apm-traceparent.
  ops::TlsClientOptions co;
  co.ca_pem = stack.pki.caPem();
  co.cert_pem = agent.cert;
  co.key_pem = agent.key;
  ops::TlsClientContext ctx(co);
  ops::TlsClient c(stack.port(), ctx);
  ops::requireConnect(c);
  const std::string body = "{\"metadata\":{}}\n{\"transaction\":{}}\n";
  const std::string traceparent = std::string("00-") + kTraceId + "-" + kSpanId + "-01";
  const std::string request = httpRequest(
      "POST", "/intake/v2/events?secret=s3cr3t",
      "Content-Type: application/x-ndjson\r\nUser-Agent: apm-agent-go/2.6.0 (ecs test)\r\n"
      "traceparent: " +
          traceparent + "\r\n",
      body);
  Response r = c.request(request);
  REQUIRE(r.status == 202);
  size_t response_bytes = c.lastResponseBytes();
  const std::string elastic =
      httpRequest("GET", "/",
                  std::string("traceparent: 00-") + std::string(32, '0') + "-" + kSpanId +
                      "-01\r\nelastic-apm-traceparent: 00-" + kElasticTraceId + "-" +
                      kElasticSpanId + "-01\r\nConnection: close\r\n");
  REQUIRE(c.request(elastic).status == 200);
  waitForLines(log_path, 3);

  // 3. The resumed session.
  {
    tls::ClientOptions ro = to;
    ro.session = session;
    tls::TlsClient again(stack.port(), ro);
    REQUIRE(again.exchange(httpRequest("GET", "/", "Connection: close\r\n")).status == 200);
    CHECK(again.sessionReused());
  }
  // 4. A failed handshake: plain HTTP on the TLS port.
  {
    Client plain(stack.port());
    REQUIRE(plain.send(httpRequest("GET", "/")));
    CHECK(plain.waitClosed(Millis{5000}));
  }
  // 5. A certificate reload, and the stop.
  stack.process().signal(SIGHUP);
  REQUIRE(ops::eventually(
      [&] { return stack.stderrText().find("certificates reloaded") != std::string::npos; },
      Millis{5000}));
  CHECK(stack.process().stop() == 0);

  std::set<std::string> names;
  std::vector<JsonValue> access = checkLines(schema, readFile(log_path), &names);
  std::vector<JsonValue> process = checkLines(schema, stack.stderrText(), &names);
  REQUIRE(access.size() == 4);
  REQUIRE(process.size() >= 4);

  const JsonValue& e = access[1];
  CHECK(e.get("log.logger").string == "access");
  CHECK(e.get("event.dataset").string == "apm_tls_proxy.access");
  CHECK(e.get("message").string == "POST /intake/v2/events 202");
  CHECK(e.get("event.outcome").string == "success");
  CHECK(e.get("http.request.method").string == "POST");
  CHECK(e.get("url.path").string == "/intake/v2/events");  // the query (a secret) dropped
  CHECK(e.get("http.version").string == "1.1");
  CHECK(e.get("http.request.bytes").number == static_cast<double>(request.size()));
  CHECK(e.get("http.request.body.bytes").number == static_cast<double>(body.size()));
  CHECK(e.get("http.response.status_code").number == 202);
  CHECK(e.get("http.response.bytes").number == static_cast<double>(response_bytes));
  CHECK(e.get("event.duration").number > 0);
  CHECK(e.get("event.duration").number < 5e9);
  CHECK(e.get("source.ip").string == "127.0.0.1");
  CHECK(e.get("source.port").number == c.localPort());
  CHECK(e.get("user_agent.original").string == "apm-agent-go/2.6.0 (ecs test)");
  CHECK(e.get("tls.established").boolean);
  CHECK(e.get("tls.version").string == "1.3");
  CHECK(e.get("tls.cipher").string == c.cipher());
  CHECK_FALSE(e.get("tls.resumed").boolean);
  CHECK(e.get("tls.client.server_name").string == "localhost");
  REQUIRE(e.get("tls.client.x509.subject.common_name").array.size() == 1);
  CHECK(e.get("tls.client.x509.subject.common_name").array[0].string == "agent-1");
  CHECK(e.get("tls.client.x509.subject.distinguished_name").string == "CN=agent-1,OU=agents");
  CHECK(e.get("tls.client.hash.sha256").string == certSha256(agent.cert));
  CHECK(e.get("trace.id").string == kTraceId);
  CHECK(e.get("span.id").string == kSpanId);
  CHECK(e.has("apm_tls_proxy.upstream.duration"));
  CHECK_FALSE(e.has("apm_tls_proxy.close_reason"));  // the connection stayed open

  const JsonValue& f = access[2];  // an all-zero traceparent is invalid: the Elastic one counts
  CHECK(f.get("trace.id").string == kElasticTraceId);
  CHECK(f.get("span.id").string == kElasticSpanId);
  CHECK_FALSE(f.has("user_agent.original"));
  CHECK(f.get("apm_tls_proxy.close_reason").string == "done");

  CHECK(access[3].get("tls.resumed").boolean);
  CHECK(access[3].get("tls.client.hash.sha256").string == certSha256(agent.cert));

  const JsonValue* failed = findMessage(process, "tls handshake failed");
  REQUIRE(failed != nullptr);
  CHECK(failed->get("event.outcome").string == "failure");
  CHECK(failed->get("event.reason").string == "not_tls");
  CHECK(failed->get("event.action").string == "tls-handshake");
  CHECK(failed->get("source.ip").string == "127.0.0.1");
  CHECK_FALSE(failed->get("tls.established").boolean);
  CHECK(failed->get("log.logger").string == "apm-tls-proxy");
  const JsonValue* reloaded = findMessage(process, "certificates reloaded");
  REQUIRE(reloaded != nullptr);
  CHECK(reloaded->get("event.outcome").string == "success");
  CHECK(reloaded->get("labels.trigger").string == "SIGHUP");
  const JsonValue* stopped = findMessage(process, "stopped");
  REQUIRE(stopped != nullptr);
  CHECK(stopped->get("process.exit_code").number == 0);

  // Every field the issue names was emitted (and so type-checked) at least once.
  for (const char* name : {"@timestamp",
                           "log.level",
                           "message",
                           "ecs.version",
                           "service.name",
                           "log.logger",
                           "event.reason",
                           "event.outcome",
                           "http.request.method",
                           "url.path",
                           "http.version",
                           "http.request.body.bytes",
                           "http.response.status_code",
                           "event.duration",
                           "source.ip",
                           "source.port",
                           "user_agent.original",
                           "tls.version",
                           "tls.cipher",
                           "tls.established",
                           "tls.resumed",
                           "tls.client.x509.subject.common_name",
                           "tls.client.hash.sha256",
                           "trace.id",
                           "span.id"}) {
    INFO("never emitted: " << name);
    CHECK(names.count(name) == 1);
  }
}

void oneRequest(ops::OpsStack& stack, const std::string& target) {
  ops::TlsClient c(stack.port(), stack.client());
  ops::requireConnect(c);
  REQUIRE(c.request(httpRequest("GET", target, "Connection: close\r\n")).status != 0);
}

// A proxy whose access log (`path`) already holds the line of a request to /before.
std::unique_ptr<ops::OpsStack> stackWithOneLine(const std::string& path) {
  ops::OpsOptions o;
  o.config.log["access"] = "\"" + path + "\"";
  auto stack = std::make_unique<ops::OpsStack>(o);
  oneRequest(*stack, "/before");
  waitForLines(path, 1);
  return stack;
}

// After a rotation: a request to /after lands, alone, in a new file at `path`.
void requireFreshFile(ops::OpsStack& stack, const std::string& path) {
  oneRequest(stack, "/after");
  auto fresh = waitForLines(path, 1);
  REQUIRE(fresh.size() == 1);
  CHECK(fresh[0].find("\"path\":\"/after\"") != std::string::npos);
}

TEST_CASE("Access log rotation: renamed, then SIGUSR1, new lines go to a new file",
          "[integration][ops][logs]") {
  TempDir side;
  std::string path = side.file("access.log");
  auto stack = stackWithOneLine(path);
  REQUIRE(std::rename(path.c_str(), (path + ".1").c_str()) == 0);
  stack->process().signal(SIGUSR1);
  REQUIRE(ops::eventually(
      [&] { return stack->stderrText().find("access log reopened") != std::string::npos; },
      Millis{5000}));
  requireFreshFile(*stack, path);
  auto rotated = ops::lines(readFile(path + ".1"));
  REQUIRE(rotated.size() == 1);
  CHECK(rotated[0].find("\"path\":\"/before\"") != std::string::npos);
  CHECK(stack->stderrText().find("trigger=SIGUSR1") != std::string::npos);
  CHECK(stack->process().stop() == 0);  // SIGUSR1 did not end the process
}

TEST_CASE("Access log rotation: a removed file is recreated without a signal",
          "[integration][ops][logs]") {
  TempDir side;
  std::string path = side.file("access.log");
  auto stack = stackWithOneLine(path);
  REQUIRE(::unlink(path.c_str()) == 0);
  // The writer checks about once a second whether its path still names its file.
  REQUIRE(ops::eventually([&] { return ::access(path.c_str(), F_OK) == 0; }, Millis{5000}));
  requireFreshFile(*stack, path);
  CHECK(stack->stderrText().find("file renamed or removed") != std::string::npos);
}

}  // namespace
}  // namespace proxy::integration
