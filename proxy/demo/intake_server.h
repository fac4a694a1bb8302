// IntakeServer: the listening side of apm-intake-demo, a plain-HTTP stand-in for APM
// Server used by the quick start and the integration tests (docs/intake-demo.md).
// Owns the libuv loop, the listening socket, the signal handles, every
// IntakeConnection and the --record file. Never used by the proxy itself.
#pragma once

#include <uv.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace proxy::demo {

class IntakeConnection;

struct Options {
  std::string listen = "127.0.0.1:8201";  // "host:port"; port 0 picks a free port
  std::string ready_file;                 // written once listening: "listen=HOST:PORT"
  std::string record_file;                // one JSON line appended per request
  bool quiet = false;                     // no per-request log line on stderr
  uint32_t max_concurrent_streams = 100;  // h2c SETTINGS_MAX_CONCURRENT_STREAMS
};

// Owned by main(). Runs one loop on the calling thread until SIGTERM or SIGINT.
class IntakeServer {
 public:
  explicit IntakeServer(Options options);
  ~IntakeServer();
  IntakeServer(const IntakeServer&) = delete;
  IntakeServer& operator=(const IntakeServer&) = delete;

  // Binds, writes the ready file and serves until a signal; returns the exit code.
  int run();

  uv_loop_t* loop() { return &loop_; }
  bool quiet() const { return options_.quiet; }
  uint32_t maxConcurrentStreams() const { return options_.max_concurrent_streams; }
  // A 64 KiB read buffer shared by every connection: reads are parsed synchronously.
  uv_buf_t readBuffer();
  // Appends one line (a JSON object, no newline) to the record file, if any.
  void record(const std::string& json_line);
  // True the first time `key` is passed, false ever after (x-demo-refuse-once).
  bool firstSighting(const std::string& key) { return seen_keys_.insert(key).second; }
  // Called from a connection's last close callback: destroys it.
  void erase(IntakeConnection* connection);

 private:
  static void uvOnConnection(uv_stream_t* server, int status);
  static void uvOnSignal(uv_signal_t* handle, int signum);
  void onConnection(int status);
  void shutdown();
  bool writeReadyFile(const std::string& address);

  Options options_;
  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_signal_t sigterm_{};
  uv_signal_t sigint_{};
  bool stopping_ = false;
  uint64_t next_id_ = 1;
  std::unique_ptr<char[]> read_buffer_;
  FILE* record_ = nullptr;
  std::unordered_map<IntakeConnection*, std::unique_ptr<IntakeConnection>> connections_;
  std::unordered_set<std::string> seen_keys_;
};

}  // namespace proxy::demo
