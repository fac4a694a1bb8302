// Integration-test harness: starts the real apm-tls-proxy and apm-intake-demo binaries
// on 127.0.0.1 (ports chosen by the kernel), in a fresh temp dir per test. The generic
// parts (temp dirs, processes, the TCP client and HTTP/1.1 reader) live in tests/support
// and are named here for the scenario files. Everything is bounded in time; every child
// is reaped. Uses Catch2 assertions to report failures.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/deadline.h"
#include "tests/support/http1_reader.h"
#include "tests/support/net.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/tcp_client.h"
#include "tests/support/temp_dir.h"

namespace proxy::integration {

using testsupport::Client;
using testsupport::countHeader;
using testsupport::equalsIgnoreCase;
using testsupport::findHeader;
using testsupport::Headers;
using testsupport::Memory;
using testsupport::Millis;
using testsupport::portOf;
using testsupport::Process;
using testsupport::readFile;
using testsupport::readMemory;
using testsupport::Response;
using testsupport::RunResult;
using testsupport::runToCompletion;
using testsupport::TempDir;
using testsupport::unusedPort;
using testsupport::waitForReadyFile;

// Path of the binaries under test (compile definitions set by CMake; the environment
// variable APM_TLS_PROXY_BINARY overrides the proxy's).
std::string proxyBinary();
std::string demoBinary();

// One request as apm-intake-demo recorded it (--record), exactly as received.
struct Record {
  uint64_t conn = 0;  // the demo's connection number: equal means the same TCP connection
  uint64_t seq = 0;   // request number on that connection, from 1
  std::string method;
  std::string target;
  Headers headers;  // in order, names as sent
  uint64_t body_bytes = 0;
  uint64_t body_lines = 0;
  std::string body_head;  // first 64 body bytes
  bool complete = false;  // the whole request (body included) arrived
  std::string behavior;
  std::optional<std::string> header(std::string_view name) const {
    return findHeader(headers, name);
  }
};

// A running apm-intake-demo (--listen 127.0.0.1:0 --record --quiet) in `dir`.
class DemoServer {
 public:
  explicit DemoServer(const TempDir& dir, const std::string& name = "demo");
  uint16_t port() const { return port_; }
  Process& process() { return *process_; }
  // Every line of the record file so far.
  std::vector<Record> records() const;
  // Polls until at least `n` records exist; fails the test after `timeout`.
  std::vector<Record> waitForRecords(size_t n, Millis timeout = Millis{5000});

 private:
  std::string record_path_;
  std::unique_ptr<Process> process_;
  uint16_t port_ = 0;
};

// A proxy configuration; values are raw TOML ("\"1s\"", "1024"). Rendered with
// [server] host = "127.0.0.1:0", workers = 1 (so pool reuse and memory are
// deterministic) and [log] level = "debug" unless overridden.
struct ProxyConfig {
  std::map<std::string, std::string> server;
  std::map<std::string, std::string> upstream;
  std::map<std::string, std::string> log;
  std::string extra;  // appended verbatim (more tables)
  // Points [upstream] url at 127.0.0.1:port.
  ProxyConfig& upstreamPort(uint16_t port);
  std::string toToml() const;
};

// A running `apm-tls-proxy run --config FILE --ready-file PATH` in `dir`.
class ProxyProcess {
 public:
  ProxyProcess(const TempDir& dir, const ProxyConfig& config, const std::string& name = "proxy",
               const std::vector<std::string>& extra_env = {});
  uint16_t port() const { return port_; }
  Process& process() { return *process_; }
  const std::string& configPath() const { return config_path_; }

 private:
  std::string config_path_;
  std::unique_ptr<Process> process_;
  uint16_t port_ = 0;
};

// A demo upstream and a proxy in front of it, sharing one temp dir.
struct ProxyStack {
  explicit ProxyStack(ProxyConfig config = {});
  TempDir dir;
  DemoServer demo;
  ProxyProcess proxy;
};

// The generated response bodies of apm-intake-demo: byte i is 'a' + i % 26.
std::string demoPattern(uint64_t offset, size_t n);

// A request with the given extra header lines ("Name: value\r\n" each) and body; adds
// Host and Content-Length (unless `headers` has Transfer-Encoding).
std::string httpRequest(const std::string& method, const std::string& target,
                        const std::string& headers = "", const std::string& body = "");
// `body` in chunked framing, cut into chunks of `chunk` bytes.
std::string chunked(std::string_view body, size_t chunk);

}  // namespace proxy::integration
