// The one JSON reader of the tests: Debian's nlohmann-json parses (full RFC 8259, UTF-16
// surrogate pairs, well tested upstream) and the result is copied into JsonValue, a plain
// tree that assertions read without exceptions or casts. For log lines, the demo's record
// file and fixtures. No Catch2.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxy::testsupport {

// One JSON value. Members keep the order of the text.
struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;  // UTF-8
  std::vector<JsonValue> array;
  std::vector<std::pair<std::string, JsonValue>> object;
  // True when the object has member `key`.
  bool has(const std::string& key) const;
  // Member `key` of an object; a null value when absent.
  const JsonValue& get(const std::string& key) const;
};

// Same type and same content (members in the same order).
bool operator==(const JsonValue& a, const JsonValue& b);
inline bool operator!=(const JsonValue& a, const JsonValue& b) { return !(a == b); }

// The value of `text` (one JSON document, whitespace around it allowed); nullopt when it
// is not valid JSON.
std::optional<JsonValue> parseJson(std::string_view text);

// The bytes a string holds when its writer escaped each byte >= 0x80 as \u00XX
// (apm-intake-demo's record file): code points up to U+00FF become one byte each.
std::string latin1Bytes(const std::string& utf8);

}  // namespace proxy::testsupport
