// TLS support for the integration tests: a proxy started with an [ssl] table and its
// admin endpoint in front of apm-intake-demo, and what the TLS scenarios read back from
// it (handshake-failure logs and counters, resumed sessions). Certificates, the
// BoringSSL client, TOML literals and metrics come from tests/support.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "tests/integration/harness.h"
#include "tests/support/metrics.h"
#include "tests/support/pki.h"
#include "tests/support/tls_client_checked.h"
#include "tests/support/toml_text.h"

namespace proxy::integration::tls {

using testsupport::CertSpec;
using testsupport::clientSpec;
using testsupport::fetchMetrics;
using testsupport::KeyType;
using testsupport::metricValue;
using testsupport::mintCa;
using testsupport::Minted;
using testsupport::mintIssued;
using testsupport::quoted;
using testsupport::quotedList;
using testsupport::ServerPki;
using testsupport::SessionPtr;
using TlsClient = testsupport::CheckedTlsClient;
using testsupport::toolPath;
using testsupport::writePair;
using ClientOptions = testsupport::TlsClientOptions;

// A demo upstream and a TLS proxy in front of it, with the admin endpoint on. `ssl` is the
// body of the [ssl] table (certificate and key lines are added from `pki` unless
// `ssl` names them); `more_tables` is appended verbatim ([ssl.allowed_clients], ...).
struct TlsStackOptions {
  std::string ssl;
  std::string more_tables;
  std::map<std::string, std::string> server;  // extra [server] keys (raw TOML values)
};
class TlsStack {
 public:
  explicit TlsStack(const TlsStackOptions& options = {}, KeyType leaf_key = KeyType::kEcdsaP256);
  TempDir dir;
  ServerPki pki;
  DemoServer demo;
  std::unique_ptr<ProxyProcess> proxy;
  uint16_t port() const { return proxy->port(); }
  uint16_t adminPort() const { return admin_port_; }
  // Client options that trust the root (and check the IP SAN 127.0.0.1).
  ClientOptions clientOptions() const;
  // Asserts that the proxy logged a handshake failure with `reason` and that its counter
  // reached `count`; the log line (the log keeps 5 lines per peer per 10 s).
  std::string expectFailureRecorded(const std::string& reason, double count = 1);

 private:
  uint16_t admin_port_ = 0;
};

// The handshake-failure counter for `reason` (-1 when absent).
double handshakeFailures(uint16_t admin_port, const std::string& reason);
double sessionsResumed(uint16_t admin_port);
// Polls /metrics until handshakeFailures(reason) reaches `at_least`; the last value.
double waitForHandshakeFailures(uint16_t admin_port, const std::string& reason, double at_least,
                                Millis timeout = Millis{5000});
// Polls the proxy's stderr until a `msg="tls handshake failed"` line with
// `reason=<reason>` appears; that line, or "" after `timeout`.
std::string waitForFailureLog(Process& proxy, const std::string& reason,
                              Millis timeout = Millis{5000});

}  // namespace proxy::integration::tls
