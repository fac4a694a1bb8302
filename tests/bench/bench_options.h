// apm-bench-client's command line and the small pieces every mode shares. See
// bench_client.cc for what the tool does; docs/benchmarks.md for how scripts/bench.sh
// uses it. Not part of the proxy: owns only its own sockets.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace bench {

using Clock = std::chrono::steady_clock;

extern const char kUsage[];

struct Options {
  std::string mode;
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  bool tls = false;
  bool resume = false;
  bool chunked = false;
  bool request = false;
  bool tls12 = false;
  bool h2 = false;
  std::string cert_file;
  std::string key_file;
  double duration = 5;
  double hold = 60;
  double rate = 0;  // rate mode: requests per second, all connections together
  int concurrency = 64;
  uint64_t bytes = 256ull << 20;
  uint64_t requests = 1;
  uint64_t count = 1000;
  std::string ready_file;
  std::string path = "/intake/v2/events";
};

// Set by SIGTERM/SIGINT: every mode stops soon after.
extern std::atomic<bool> g_stop;

// Fills `o` from argv; false (after a message for a bad argument) when the usage applies.
bool parseArgs(int argc, char** argv, Options& o);
double secondsSince(Clock::time_point start);
// The BoringSSL error queue, drained into one line.
std::string sslErrors();
// The 1 KiB ndjson request every mode that sends "a request" uses.
std::string smallRequest(const Options& o);
// A TCP connection to o.host:o.port with TCP_NODELAY (-1 on failure); `nonblocking`
// returns at once, the connection still in progress.
int openSocket(const Options& o, bool nonblocking);

}  // namespace bench
