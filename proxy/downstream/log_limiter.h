// LogLimiter: at most a few log lines per key (a peer address and what went wrong) per
// window, so one client retrying a failing handshake in a loop cannot flood the log. Bounded
// memory; one per worker, loop thread only.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace proxy::downstream {

class LogLimiter {
 public:
  static constexpr uint64_t kWindowMs = 10'000;
  static constexpr uint32_t kLinesPerWindow = 5;
  static constexpr size_t kMaxPeers = 4096;

  // True when a line for `key` may be written at `now_ms`; `suppressed` receives how
  // many lines were held back for that key since the last one written.
  bool allow(const std::string& key, uint64_t now_ms, uint64_t* suppressed);

 private:
  struct Entry {
    uint64_t window_start = 0;
    uint32_t lines = 0;
    uint64_t suppressed = 0;
  };
  std::unordered_map<std::string, Entry> peers_;
};

}  // namespace proxy::downstream
