#include "proxy/common/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "proxy/common/ecs_fields.h"

namespace proxy::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<int> g_format{static_cast<int>(Format::kText)};
std::atomic<int> g_fd{2};

bool needsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
      return true;
  }
  return false;
}

void appendTextValue(std::string& out, std::string_view v) {
  if (!needsQuotes(v)) {
    out.append(v);
    return;
  }
  appendJsonString(out, v);  // JSON escaping is a fine, unambiguous quoting for text too.
}

}  // namespace

void configure(Level level, Format format) {
  g_level.store(static_cast<int>(level));
  g_format.store(static_cast<int>(format));
}

void setFdForTest(int fd) { g_fd.store(fd); }

bool enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void appendJsonString(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

namespace {

// `digits` of fractional seconds: 3 (milliseconds) or 6 (microseconds).
void appendTimestampWith(std::string& out, int digits) {
  auto now = std::chrono::system_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  int fraction = static_cast<int>(us % 1000000);
  if (digits == 3) fraction /= 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%0*dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, digits, fraction);
  out.append(buf);
}

}  // namespace

void appendTimestamp(std::string& out) { appendTimestampWith(out, 3); }

void appendTimestampMicros(std::string& out) { appendTimestampWith(out, 6); }

const char* levelName(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

void write(Level level, std::string_view event, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  std::string line;
  line.reserve(128);
  auto format = static_cast<Format>(g_format.load(std::memory_order_relaxed));
  if (format == Format::kEcs) {
    line = formatEcsLine(level, event, fields);
  } else if (format == Format::kJson) {
    line.append("{\"time\":\"");
    appendTimestamp(line);
    line.append("\",\"level\":\"").append(levelName(level)).append("\",\"msg\":");
    appendJsonString(line, event);
    for (const Field& f : fields) {
      line.push_back(',');
      appendJsonString(line, f.key);
      line.push_back(':');
      appendJsonString(line, f.value);
    }
    line.append("}\n");
  } else {
    appendTimestamp(line);
    line.append(" level=").append(levelName(level)).append(" msg=");
    appendTextValue(line, event);
    for (const Field& f : fields) {
      line.push_back(' ');
      line.append(f.key).push_back('=');
      appendTextValue(line, f.value);
    }
    line.push_back('\n');
  }
  // One write(2) per line keeps lines whole when several threads log at once.
  const char* p = line.data();
  size_t left = line.size();
  int fd = g_fd.load(std::memory_order_relaxed);
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace proxy::log
