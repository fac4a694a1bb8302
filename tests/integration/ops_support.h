// Support for the operations integration tests (issue 5: certificate reload, drain,
// admin endpoint, metrics, access log, workers): a proxy with TLS and its admin endpoint
// in front of apm-intake-demo, a Kubernetes-style Secret directory updated with the
// kubelet's ..data symlink swap, and the admin and log helpers these scenarios share.
// Certificates, the TLS client, JSON and metrics come from tests/support.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/support/json.h"
#include "tests/support/metrics.h"
#include "tests/support/pki.h"
#include "tests/support/tls_client_checked.h"

namespace proxy::integration::ops {

using testsupport::eventually;
using testsupport::JsonValue;
using testsupport::metric;
using testsupport::parseJson;
using testsupport::parseMetrics;
using testsupport::PemPair;
using testsupport::Pki;
using testsupport::tcpConnect;
using testsupport::threadCount;
using TlsClient = testsupport::CheckedTlsClient;

// A directory laid out as the kubelet's atomic writer lays out a mounted Secret:
// dir/..<timestamp>/{files}, dir/..data -> ..<timestamp>, dir/<name> -> ..data/<name>.
class SecretDir {
 public:
  explicit SecretDir(std::string path);
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // The first publish creates the layout; later ones do exactly what the kubelet does:
  // write a new timestamped dir, point ..data_tmp at it, rename ..data_tmp over ..data,
  // then delete the old timestamped dir.
  void publish(const std::map<std::string, std::string>& files);

 private:
  std::string path_;
  std::string current_;  // "..2026_..." currently behind ..data
  int generation_ = 0;
};

// ---- TLS client settings of the operations tests ----

// What these scenarios vary: verify the proxy against `ca_pem` as "localhost" (no check
// when empty), a client certificate, the versions (0: the library's defaults). No ALPN,
// and no close_notify when a client goes away.
struct TlsClientOptions {
  std::string sni = "localhost";
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  uint16_t max_version = 0;  // e.g. TLS1_1_VERSION
  uint16_t min_version = 0;
  // The same settings for tests/support's client.
  testsupport::TlsClientOptions toClientOptions() const;
};

// Shared client settings (an SSL_CTX); safe to use from several threads.
class TlsClientContext : public testsupport::CheckedTlsClientContext {
 public:
  explicit TlsClientContext(const TlsClientOptions& options = {})
      : testsupport::CheckedTlsClientContext(options.toClientOptions()) {}
};

// Connects `c` or fails the test with the handshake error (test thread only).
void requireConnect(TlsClient& c, Millis timeout = Millis{5000});

// ---- admin endpoint and metrics ----

// GET `path` from the admin endpoint (plain HTTP, one request per connection).
Response adminGet(uint16_t admin_port, const std::string& path, Millis timeout = Millis{5000});

// The `admin=HOST:PORT` port from a proxy's ready file.
uint16_t adminPortFromReadyFile(const TempDir& dir, const std::string& name = "proxy");

// ---- a proxy with TLS and the admin endpoint ----

struct OpsOptions {
  bool tls = true;
  bool admin = true;
  ProxyConfig config;          // [server]/[upstream]/[log] values; upstream port is filled in
  uint16_t upstream_port = 0;  // 0: the stack's apm-intake-demo; else this port
  std::string ssl_extra;       // more lines for the [ssl] table
  std::string admin_extra;     // more lines for the [admin] table
  std::string extra;           // more tables, appended at the end
  std::vector<std::string> proxy_env;  // NAME=VALUE added to the proxy's environment
};

// A temp dir with a CA and a server leaf (CN "apm-server", files server.crt/server.key),
// apm-intake-demo, and apm-tls-proxy in front of it (TLS and admin on 127.0.0.1:0 unless
// switched off).
class OpsStack {
 public:
  explicit OpsStack(OpsOptions options = {});
  TempDir dir;
  Pki pki;
  PemPair leaf;
  std::string cert_path;
  std::string key_path;
  DemoServer demo;

  uint16_t port() const { return proxy_->port(); }
  uint16_t adminPort() const { return admin_port_; }
  Process& process() { return proxy_->process(); }
  std::string stderrText() { return proxy_->process().stderrText(); }
  // A client context that verifies the proxy against the stack's CA.
  const TlsClientContext& client() const { return *client_; }
  // GET /metrics, parsed.
  std::map<std::string, double> metrics() const;

 private:
  std::unique_ptr<ProxyProcess> proxy_;
  std::unique_ptr<TlsClientContext> client_;
  uint16_t admin_port_ = 0;
};

// The [ssl] and [admin] tables OpsStack writes.
std::string sslTable(const std::string& cert_path, const std::string& key_path,
                     const std::string& more = "");

// ---- misc ----

// Lines of `text` (without the newline), empty lines dropped.
std::vector<std::string> lines(const std::string& text);
// Occurrences of `needle` in `haystack`.
size_t countOf(const std::string& haystack, const std::string& needle);

}  // namespace proxy::integration::ops
