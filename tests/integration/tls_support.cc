#include "tests/integration/tls_support.h"

#include <catch2/catch.hpp>
#include <thread>

namespace proxy::integration::tls {
namespace {

using testsupport::Clock;
constexpr Millis kPollInterval{5};

ProxyConfig stackConfig(const TlsStackOptions& options, const ServerPki& pki, uint16_t demo_port) {
  ProxyConfig config;
  config.server = options.server;
  config.upstreamPort(demo_port);
  bool names_files = options.ssl.rfind("certificate =", 0) == 0 ||
                     options.ssl.find("\ncertificate =") != std::string::npos;
  config.extra = "[ssl]\n" + (names_files ? "" : pki.sslLines()) + options.ssl + "\n" +
                 options.more_tables + "\n[admin]\nhost = \"127.0.0.1:0\"\n";
  return config;
}

}  // namespace

TlsStack::TlsStack(const TlsStackOptions& options, KeyType leaf_key)
    : pki(dir, leaf_key), demo(dir) {
  proxy = std::make_unique<ProxyProcess>(dir, stackConfig(options, pki, demo.port()));
  std::string ready = readFile(dir.file("proxy.ready"));
  auto at = ready.find("admin=");
  INFO("ready file: " << ready);
  REQUIRE(at != std::string::npos);
  auto end = ready.find('\n', at);
  admin_port_ = portOf(ready.substr(at + 6, end == std::string::npos ? end : end - at - 6));
}

ClientOptions TlsStack::clientOptions() const {
  ClientOptions options;
  options.trust_pem = pki.root.certPem();
  return options;
}

std::string TlsStack::expectFailureRecorded(const std::string& reason, double count) {
  std::string line = waitForFailureLog(proxy->process(), reason);
  INFO("proxy stderr:\n" << proxy->process().stderrText());
  CHECK(!line.empty());
  CHECK(waitForHandshakeFailures(admin_port_, reason, count) == count);
  return line;
}

double handshakeFailures(uint16_t admin_port, const std::string& reason) {
  return metricValue(fetchMetrics(admin_port),
                     "apm_tls_proxy_tls_handshake_failures_total{reason=\"" + reason + "\"}");
}

double sessionsResumed(uint16_t admin_port) {
  return metricValue(fetchMetrics(admin_port), "apm_tls_proxy_tls_sessions_resumed_total");
}

double waitForHandshakeFailures(uint16_t admin_port, const std::string& reason, double at_least,
                                Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    double value = handshakeFailures(admin_port, reason);
    if (value >= at_least || Clock::now() >= deadline) return value;
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::string waitForFailureLog(Process& proxy, const std::string& reason, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    std::string text = proxy.stderrText();
    size_t pos = 0;
    while ((pos = text.find("msg=\"tls handshake failed\"", pos)) != std::string::npos) {
      size_t begin = text.rfind('\n', pos);
      begin = begin == std::string::npos ? 0 : begin + 1;
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) break;  // a line still being written
      std::string line = text.substr(begin, end - begin);
      if ((line + " ").find(" reason=" + reason + " ") != std::string::npos) return line;
      pos = end;
    }
    if (Clock::now() >= deadline) return "";
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace proxy::integration::tls
