// Structured, one-line-per-event logging to stderr, as text (key=value), JSON, or ECS JSON
// (Elastic Common Schema, ecs_fields.h).
// Used by every module; depends on nothing else. Configured once by main() before any
// thread starts; after that it only reads that setting, so any thread may log.
// Never log at info or above on the per-request hot path.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace proxy::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class Format {
  kText,  // 2026-01-02T03:04:05.678Z level=info msg="..." key=value ...
  kJson,  // {"time":...,"level":...,"msg":...,"key":"value",...}: our own flat schema
  kEcs,   // ecs-logging JSON: "@timestamp", "log.level", "message", ECS field names
};

// One key=value pair of a log line. Numbers are formatted at construction.
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, uint64_t v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, int64_t v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, int v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, unsigned v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  std::string_view key;
  std::string value;
};

// Sets the minimum level and the format. Call before starting threads.
void configure(Level level, Format format);
// Redirects output to a file descriptor (tests use a pipe). Default: 2 (stderr).
void setFdForTest(int fd);
// True when a line at `level` would be written; guard costly field formatting with it.
bool enabled(Level level);
// Writes one line: time, level, msg=event, then the fields in order.
void write(Level level, std::string_view event, std::initializer_list<Field> fields = {});

inline void debug(std::string_view e, std::initializer_list<Field> f = {}) {
  if (enabled(Level::kDebug)) write(Level::kDebug, e, f);
}
inline void info(std::string_view e, std::initializer_list<Field> f = {}) {
  write(Level::kInfo, e, f);
}
inline void warn(std::string_view e, std::initializer_list<Field> f = {}) {
  write(Level::kWarn, e, f);
}
inline void error(std::string_view e, std::initializer_list<Field> f = {}) {
  write(Level::kError, e, f);
}

// Appends `s` to `out` as a JSON string literal (with quotes), escaping as RFC 8259 asks.
void appendJsonString(std::string& out, std::string_view s);
// Appends an RFC 3339 UTC timestamp with milliseconds for the current time.
void appendTimestamp(std::string& out);
// The same with microseconds ("2026-01-02T03:04:05.678901Z"), as ECS's @timestamp wants.
void appendTimestampMicros(std::string& out);
// "debug", "info", "warn", "error".
const char* levelName(Level level);

}  // namespace proxy::log
