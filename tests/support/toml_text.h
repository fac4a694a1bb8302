// TOML literals for the configuration files tests write. Header only; no Catch2.
#pragma once

#include <string>
#include <vector>

namespace proxy::testsupport {

// A TOML basic string literal, with \ and " escaped.
inline std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A TOML array of string literals.
inline std::string quotedList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + quoted(items[i]);
  return out + "]";
}

}  // namespace proxy::testsupport
