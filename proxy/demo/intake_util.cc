#include "proxy/demo/intake_util.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace proxy::demo {
namespace {

// JSON string escaping; bytes >= 0x80 become \u00XX so any input round-trips as bytes.
void appendJsonString(std::string& out, const std::string& s) {
  out += '"';
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

bool equalsIgnoreCase(const std::string& a, const char* b) {
  size_t n = std::strlen(b);
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::chrono::milliseconds parseDelay(const std::string& text) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || value < 0) return std::chrono::milliseconds{0};
  std::string unit(end);
  if (unit == "s") value *= 1000;
  return std::chrono::milliseconds{static_cast<int64_t>(value)};
}

std::string pattern(uint64_t offset, size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>('a' + (offset + i) % 26);
  return out;
}

uint64_t countNewlines(const char* data, size_t len) {
  uint64_t n = 0;
  const char* end = data + len;
  for (const char* p = data; (p = static_cast<const char*>(std::memchr(p, '\n', end - p))); ++p) {
    ++n;
  }
  return n;
}

std::string toJsonLine(const RequestRecord& r) {
  std::string line = "{\"conn\":" + std::to_string(r.conn) + ",\"seq\":" + std::to_string(r.seq) +
                     ",\"protocol\":";
  appendJsonString(line, r.protocol);
  if (r.stream != 0) line += ",\"stream\":" + std::to_string(r.stream);
  line += ",\"method\":";
  appendJsonString(line, r.method);
  line += ",\"target\":";
  appendJsonString(line, r.target);
  line += ",\"headers\":[";
  if (r.headers != nullptr) {
    for (size_t i = 0; i < r.headers->size(); ++i) {
      if (i > 0) line += ',';
      line += '[';
      appendJsonString(line, (*r.headers)[i].first);
      line += ',';
      appendJsonString(line, (*r.headers)[i].second);
      line += ']';
    }
  }
  line += "],\"body_bytes\":" + std::to_string(r.body_bytes) +
          ",\"body_lines\":" + std::to_string(r.body_lines) + ",\"body_head\":";
  appendJsonString(line, r.body_head);
  line += ",\"complete\":";
  line += r.complete ? "true" : "false";
  line += ",\"behavior\":";
  appendJsonString(line, r.behavior);
  if (r.grpc_messages >= 0) line += ",\"grpc_messages\":" + std::to_string(r.grpc_messages);
  line += '}';
  return line;
}

}  // namespace proxy::demo
