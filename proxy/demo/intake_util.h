// Small helpers shared by apm-intake-demo's HTTP/1.1 connection and its h2c session:
// case-insensitive names, the X-Demo-* value formats, the generated body pattern and the
// --record JSON line. Pure functions; no libuv, no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace proxy::demo {

using HeaderPairs = std::vector<std::pair<std::string, std::string>>;

bool equalsIgnoreCase(const std::string& a, const char* b);
// "1500ms", "2s", or a bare number of milliseconds; anything else is 0.
std::chrono::milliseconds parseDelay(const std::string& text);
// The generated response body: byte i is 'a' + i % 26, so a client can check any range.
std::string pattern(uint64_t offset, size_t n);
// Bytes of `data` that are '\n' (NDJSON lines).
uint64_t countNewlines(const char* data, size_t len);

// One request as the demo saw it; one JSON line of the --record file.
struct RequestRecord {
  uint64_t conn = 0;
  uint64_t seq = 0;      // request number on the connection, from 1
  std::string protocol;  // "http/1.1" or "h2c"
  int32_t stream = 0;    // h2c stream id; 0 on HTTP/1.1
  std::string method;
  std::string target;
  const HeaderPairs* headers = nullptr;  // in order, as received (no pseudo-headers)
  uint64_t body_bytes = 0;
  uint64_t body_lines = 0;
  std::string body_head;  // first 64 body bytes
  bool complete = false;
  std::string behavior;
  int64_t grpc_messages = -1;  // length-prefixed gRPC messages received; -1: not gRPC
};
std::string toJsonLine(const RequestRecord& record);

}  // namespace proxy::demo
