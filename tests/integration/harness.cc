#include "tests/integration/harness.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "tests/support/json.h"

namespace proxy::integration {
namespace {

using testsupport::Clock;
using testsupport::JsonValue;

// Polling interval when waiting for records: short enough to add no noticeable latency,
// long enough not to spin a core.
constexpr Millis kPollInterval{2};

uint64_t asUint(const JsonValue& j) { return static_cast<uint64_t>(j.number); }

// The demo escapes each byte >= 0x80 as \u00XX, so its strings are bytes, not text.
std::string bytesOf(const JsonValue& j) { return testsupport::latin1Bytes(j.string); }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

std::string proxyBinary() {
  // Lets the suite run against another build (a release or installed binary).
  const char* other = std::getenv("APM_TLS_PROXY_BINARY");
  return other != nullptr && *other != '\0' ? other : PROXY_BINARY;
}
std::string demoBinary() { return DEMO_BINARY; }

DemoServer::DemoServer(const TempDir& dir, const std::string& name)
    : record_path_(dir.file(name + ".jsonl")) {
  std::string ready = dir.file(name + ".ready");
  process_ = std::make_unique<Process>(
      std::vector<std::string>{demoBinary(), "--listen", "127.0.0.1:0", "--ready-file", ready,
                               "--record", record_path_, "--quiet"},
      dir.file(name));
  port_ = portOf(waitForReadyFile(*process_, ready)["listen"]);
}

std::vector<Record> DemoServer::records() const {
  std::vector<Record> out;
  std::istringstream lines(readFile(record_path_));
  std::string line;
  while (std::getline(lines, line)) {
    auto json = testsupport::parseJson(line);
    INFO("record line: " << line);
    REQUIRE(json.has_value());
    Record r;
    r.conn = asUint(json->get("conn"));
    r.seq = asUint(json->get("seq"));
    r.method = bytesOf(json->get("method"));
    r.target = bytesOf(json->get("target"));
    for (const JsonValue& pair : json->get("headers").array) {
      REQUIRE(pair.array.size() == 2);
      r.headers.emplace_back(bytesOf(pair.array[0]), bytesOf(pair.array[1]));
    }
    r.body_bytes = asUint(json->get("body_bytes"));
    r.body_lines = asUint(json->get("body_lines"));
    r.body_head = bytesOf(json->get("body_head"));
    r.complete = json->get("complete").boolean;
    r.behavior = bytesOf(json->get("behavior"));
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Record> DemoServer::waitForRecords(size_t n, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto r = records();
    if (r.size() >= n) return r;
    if (Clock::now() >= deadline) {
      FAIL("the demo upstream recorded " << r.size() << " requests, expected " << n << " within "
                                         << timeout.count() << " ms");
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

ProxyConfig& ProxyConfig::upstreamPort(uint16_t port) {
  upstream["url"] = "\"http://127.0.0.1:" + std::to_string(port) + "\"";
  return *this;
}

std::string ProxyConfig::toToml() const {
  auto table = [](const std::string& name, std::map<std::string, std::string> values,
                  const std::map<std::string, std::string>& defaults) {
    for (const auto& [k, v] : defaults) values.emplace(k, v);
    std::string out = "[" + name + "]\n";
    for (const auto& [k, v] : values) out += k + " = " + v + "\n";
    return out + "\n";
  };
  return table("server", server, {{"host", "\"127.0.0.1:0\""}, {"workers", "1"}}) +
         table("upstream", upstream, {}) + table("log", log, {{"level", "\"debug\""}}) + extra;
}

ProxyProcess::ProxyProcess(const TempDir& dir, const ProxyConfig& config, const std::string& name,
                           const std::vector<std::string>& extra_env)
    : config_path_(dir.write(name + ".toml", config.toToml())) {
  std::string ready = dir.file(name + ".ready");
  process_ =
      std::make_unique<Process>(std::vector<std::string>{proxyBinary(), "run", "--config",
                                                         config_path_, "--ready-file", ready},
                                dir.file(name), extra_env);
  auto values = waitForReadyFile(*process_, ready);
  INFO("ready file of " << name << " has no listen= line");
  REQUIRE(values.count("listen") == 1);
  port_ = portOf(values["listen"]);
}

ProxyStack::ProxyStack(ProxyConfig config)
    : demo(dir), proxy(dir, config.upstreamPort(demo.port())) {}

std::string demoPattern(uint64_t offset, size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>('a' + (offset + i) % 26);
  return out;
}

std::string httpRequest(const std::string& method, const std::string& target,
                        const std::string& headers, const std::string& body) {
  std::string out = method + " " + target + " HTTP/1.1\r\nHost: apm.test\r\n" + headers;
  if (lower(headers).find("transfer-encoding:") == std::string::npos &&
      (!body.empty() || method == "POST" || method == "PUT")) {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return out + "\r\n" + body;
}

std::string chunked(std::string_view body, size_t chunk) {
  std::string out;
  char size[32];
  for (size_t at = 0; at < body.size(); at += chunk) {
    size_t n = std::min(chunk, body.size() - at);
    std::snprintf(size, sizeof size, "%zx\r\n", n);
    out += size;
    out.append(body.substr(at, n));
    out += "\r\n";
  }
  return out + "0\r\n\r\n";
}

}  // namespace proxy::integration
