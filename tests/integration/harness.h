// Integration-test harness: starts the real apm-tls-proxy and apm-intake-demo binaries
// on 127.0.0.1 (ports chosen by the kernel), in a fresh temp dir per test, and talks to
// them with a raw TCP client and a minimal HTTP/1.1 response reader. Everything is
// bounded in time; every child is reaped. Uses Catch2 assertions to report failures.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxy::integration {

using Millis = std::chrono::milliseconds;
using Headers = std::vector<std::pair<std::string, std::string>>;

// Path of the binaries under test (compile definitions set by CMake; the environment
// variable APM_TLS_PROXY_BINARY overrides the proxy's).
std::string proxyBinary();
std::string demoBinary();

// A fresh directory (mkdtemp under $TMPDIR or /tmp), removed with its contents on
// destruction unless KEEP_TEST_DIRS is set in the environment.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // `path()/name`.
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `content` to `path()/name` and returns the full path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

// The whole file, or "" when it cannot be read.
std::string readFile(const std::string& path);

// A child started with fork + execve (killed with the test process, via
// PR_SET_PDEATHSIG, should the test itself be killed); stdin is /dev/null, stdout and stderr go to
// `log_prefix.stdout` and `log_prefix.stderr`. Owned by the test; the destructor kills
// (SIGKILL) a child that is still running and always reaps it.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::string& log_prefix,
          const std::vector<std::string>& extra_env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // True while the child has not exited (reaps it when it has).
  bool running();
  // Waits up to `timeout` for the child to exit; its exit code (128 + signal number when
  // killed by a signal), or nullopt when it is still running.
  std::optional<int> wait(Millis timeout);
  // SIGTERM, wait up to `timeout`, then SIGKILL; returns the exit code.
  int stop(Millis timeout = Millis{5000});
  // Sends `signal` without waiting.
  void signal(int signum);
  std::string stdoutText() const { return readFile(log_prefix_ + ".stdout"); }
  std::string stderrText() const { return readFile(log_prefix_ + ".stderr"); }

 private:
  bool reap(bool block);
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_prefix_;
};

// Runs argv to completion (killed after `timeout`); exit code and both outputs.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
RunResult runToCompletion(const std::vector<std::string>& argv, const TempDir& dir,
                          const std::string& name, Millis timeout = Millis{10000});

// Polls until `path` exists (written atomically by the child), then returns its
// key=value lines. Fails the test, quoting the child's stderr, if the child exits or
// `timeout` passes first.
std::map<std::string, std::string> waitForReadyFile(Process& process, const std::string& path,
                                                    Millis timeout = Millis{10000});

// "127.0.0.1:8200" -> 8200.
uint16_t portOf(const std::string& host_port);
// A port that nothing listens on (bound to 127.0.0.1:0 and closed again).
uint16_t unusedPort();

// Peak (VmHWM) and current (VmRSS) resident set size of a process, in KiB.
struct Memory {
  uint64_t hwm_kib = 0;
  uint64_t rss_kib = 0;
};
Memory readMemory(pid_t pid);

// Name lookup in a header list is case-insensitive.
bool equalsIgnoreCase(std::string_view a, std::string_view b);
std::optional<std::string> findHeader(const Headers& headers, std::string_view name);
size_t countHeader(const Headers& headers, std::string_view name);

// One HTTP/1.1 response as read off the wire by Client::readResponse.
struct Response {
  int status = 0;  // 0: no complete status line and head arrived
  std::string reason;
  Headers headers;
  std::string body;               // de-chunked
  bool chunked = false;           // framed with Transfer-Encoding: chunked
  bool complete = false;          // head and body fully framed (or a close-delimited body ended)
  bool timed_out = false;         // the deadline passed first
  bool closed = false;            // the peer closed (or reset) the connection while reading
  std::vector<Response> interim;  // 1xx responses that came before this one
  std::optional<std::string> header(std::string_view name) const {
    return findHeader(headers, name);
  }
};

// A blocking-style TCP client on 127.0.0.1 built on a non-blocking socket: every call
// has a deadline, and send() keeps reading what the peer sends meanwhile, so a test
// never deadlocks against a server that answers (or echoes) while it uploads.
class Client {
 public:
  // Connects or fails the test.
  explicit Client(uint16_t port, Millis timeout = Millis{5000});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends all of `bytes`; false when the peer closed or reset, or `timeout` passed.
  bool send(std::string_view bytes, Millis timeout = Millis{10000});
  // Sends as much of `bytes` as the socket takes within `timeout`; bytes sent.
  size_t sendSome(std::string_view bytes, Millis timeout);
  void shutdownWrite();
  // Reads one final response (collecting 1xx ones into Response::interim). With
  // `stop_at_interim`, returns a 1xx response as soon as it arrives. `head_request`:
  // the response has no body (RFC 9112 §6.3).
  Response readResponse(Millis timeout = Millis{10000}, bool stop_at_interim = false,
                        bool head_request = false);
  // Reads until the peer closes; true when it did within `timeout`. Bytes read are
  // appended to buffered().
  bool waitClosed(Millis timeout = Millis{5000});
  // True when nothing arrives and the connection stays open for `duration`.
  bool staysQuiet(Millis duration);
  bool closed() const { return closed_; }
  bool reset() const { return reset_; }
  // Bytes received and not yet consumed by readResponse().
  const std::string& buffered() const { return in_; }
  int fd() const { return fd_; }

 private:
  // Reads once (waiting up to `timeout`); false on timeout or when already closed.
  bool readMore(Millis timeout);
  int fd_ = -1;
  std::string in_;
  bool closed_ = false;
  bool reset_ = false;
};

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
