// Helpers for the tests that drive apm-intake-demo with real HTTP/2 and gRPC clients
// (curl, nghttp, the Node.js clients of tests/clients): finding the tools, and reading
// the demo's record file line by line. Header-only; used by intake_demo_test.cc and
// otlp_clients_test.cc. Uses Catch2 to fail a test whose tool is missing.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace proxy::integration {

// The full path of `name` on $PATH (Process runs argv[0] as a path); fails the test with
// where it comes from when it is missing.
inline std::string requireTool(const std::string& name, const std::string& installed_by) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  FAIL(name << " is not installed (" << installed_by << ")");
  return {};
}

// The lines of apm-intake-demo's record file (DemoServer writes `dir/demo.jsonl`).
inline std::vector<std::string> recordLines(const TempDir& dir) {
  std::vector<std::string> lines;
  std::istringstream text(readFile(dir.file("demo.jsonl")));
  std::string line;
  while (std::getline(text, line)) lines.push_back(line);
  return lines;
}

// True when the JSON line has `"key":value` with `value` written as JSON (a quoted
// string, a number, true/false): enough for the demo's flat, escaped record lines.
inline bool hasField(const std::string& line, const std::string& key, const std::string& value) {
  std::string needle = "\"" + key + "\":" + value;
  for (size_t at = line.find(needle); at != std::string::npos; at = line.find(needle, at + 1)) {
    char next = at + needle.size() < line.size() ? line[at + needle.size()] : '\0';
    if (next == ',' || next == '}' || next == ']') return true;  // not a longer number
  }
  return false;
}

inline std::string quoted(const std::string& s) { return "\"" + s + "\""; }

}  // namespace proxy::integration
