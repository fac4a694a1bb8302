// Support for the operations integration tests (issue 5: certificate reload, drain,
// admin endpoint, metrics, access log, workers): certificates minted at test time, a
// Kubernetes-style Secret directory updated with the kubelet's ..data symlink swap, a
// small blocking BoringSSL client with deadlines, admin/metrics helpers and a minimal JSON
// reader for log lines. Nothing here uses Catch2 from other threads: the TLS client
// reports errors as values so a load thread can use it.
#pragma once

#include <openssl/base.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace proxy::integration::ops {

// ---- certificates ----

struct PemPair {
  std::string cert;  // leaf (PEM)
  std::string key;   // PKCS#8 (PEM)
  std::string serial_hex;
  std::string subject_cn;
};

// One CA and what it issues (ECDSA P-256 everywhere: fast to mint).
class Pki {
 public:
  explicit Pki(const std::string& ca_cn = "ops test CA");
  ~Pki();
  Pki(const Pki&) = delete;
  Pki& operator=(const Pki&) = delete;

  const std::string& caPem() const { return ca_pem_; }
  // A server leaf for localhost / 127.0.0.1 with CN `cn`.
  PemPair server(const std::string& cn) const;
  // A client leaf with CN `cn` and DNS SAN `dns` (when non-empty) and URI SAN `uri`.
  PemPair client(const std::string& cn, const std::string& dns, const std::string& uri) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string ca_pem_;
};

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
  std::vector<std::string> names_;
  int generation_ = 0;
};

// ---- TLS client ----

struct TlsClientOptions {
  std::string sni = "localhost";
  std::string ca_pem;  // verify the server against this CA (and the name "localhost")
  std::string cert_pem;
  std::string key_pem;
  uint16_t max_version = 0;  // e.g. TLS1_1_VERSION; 0 = library default
  uint16_t min_version = 0;
};

// Shared client settings (an SSL_CTX); safe to use from several threads.
class TlsClientContext {
 public:
  explicit TlsClientContext(const TlsClientOptions& options = {});
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  SSL_CTX* get() const { return ctx_; }
  const std::string& sni() const { return sni_; }

 private:
  SSL_CTX* ctx_ = nullptr;
  std::string sni_;
};

// A TLS connection over a non-blocking socket; every call has a deadline. Errors are
// returned as values (error()), never reported through Catch2, so load threads can use it.
class TlsClient {
 public:
  TlsClient(uint16_t port, const TlsClientContext& ctx);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // Connects and handshakes; false with error() set on failure.
  bool connect(Millis timeout = Millis{5000});
  bool send(std::string_view bytes, Millis timeout = Millis{5000});
  // Reads one HTTP/1.1 response (not for HEAD). status 0 with error() when none arrived.
  Response readResponse(Millis timeout = Millis{10000});
  // Sends a request and reads its response.
  Response request(std::string_view bytes, Millis timeout = Millis{10000});
  // True when the peer closes (close_notify, FIN or reset) within `timeout`.
  bool waitClosed(Millis timeout);
  const std::string& error() const { return error_; }
  // Wire size (head and body, as framed) of the response readResponse() returned last.
  size_t lastResponseBytes() const { return last_response_bytes_; }

  // Details of the established session.
  std::string peerSubjectCn() const;
  std::string peerSerialHex() const;
  std::string version() const;
  // True once the server's close_notify alert has been read.
  bool receivedCloseNotify() const;
  std::string cipher() const;
  uint16_t localPort() const;

 private:
  enum class Io { kOk, kWantRead, kWantWrite, kClosed, kError };
  Io step(int rc);
  bool waitFor(Io io, std::chrono::steady_clock::time_point deadline);
  bool readMore(std::chrono::steady_clock::time_point deadline);

  uint16_t port_;
  const TlsClientContext& ctx_;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string in_;
  bool closed_ = false;
  size_t last_response_bytes_ = 0;
  std::string error_;
};

// Connects `c` or fails the test with the handshake error (test thread only).
void requireConnect(TlsClient& c, Millis timeout = Millis{5000});

// Parses one response from the front of `buffer` (consuming it) when complete; with
// `eof` a close-delimited body ends. nullopt when more bytes are needed.
std::optional<Response> takeResponse(std::string& buffer, bool eof);

// A TCP connect to 127.0.0.1:port: the fd (caller closes) or -1 with errno (ECONNREFUSED
// when nothing listens).
int tcpConnect(uint16_t port, Millis timeout = Millis{2000});

// ---- admin endpoint and metrics ----

// GET `path` from the admin endpoint (plain HTTP, one request per connection).
Response adminGet(uint16_t admin_port, const std::string& path, Millis timeout = Millis{5000});

// The `admin=HOST:PORT` port from a proxy's ready file.
uint16_t adminPortFromReadyFile(const TempDir& dir, const std::string& name = "proxy");

// Prometheus text format: every sample as "name{labels}" (labels as written) -> value.
std::map<std::string, double> parseMetrics(const std::string& text);
// The value of the series `series` ("name" or "name{a=\"b\"}"); nullopt when absent.
std::optional<double> metric(const std::map<std::string, double>& metrics,
                             const std::string& series);

// ---- JSON (log lines) ----

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> array;
  std::vector<std::pair<std::string, JsonValue>> object;
  bool has(const std::string& key) const;
  const JsonValue& get(const std::string& key) const;
};
std::optional<JsonValue> parseJson(std::string_view text);

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
// Polls `predicate` every few ms until true or `timeout`; its last value.
template <typename F>
bool eventually(F predicate, Millis timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (predicate()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(Millis{10});
  }
}
// Occurrences of `needle` in `haystack`.
size_t countOf(const std::string& haystack, const std::string& needle);
// Threads of a process (entries of /proc/PID/task).
size_t threadCount(pid_t pid);

}  // namespace proxy::integration::ops
