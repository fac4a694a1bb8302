// Helpers for the certutil tests: running the system openssl CLI to check our output with
// a second implementation (temporary directories and files come from tests/support).
// Test-only; never linked into the product.
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "proxy/common/status.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace proxy::certutil::testing {

// The failure message of `r`, or "" when it holds a value (for INFO()).
template <class T>
std::string why(const Result<T>& r) {
  return r.isOk() ? std::string() : r.status().message();
}

// Temporary directories and whole-file reads and writes: tests/support's.
using proxy::testsupport::readFile;
using proxy::testsupport::TempDir;
using proxy::testsupport::writeFile;

inline bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Permission bits of `path`, or -1 when it does not exist.
inline int modeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

using CommandResult = testsupport::ShellResult;

// Runs `command` with /bin/sh (tests/support/process.h).
inline CommandResult run(const std::string& command) { return testsupport::runShell(command); }

// The text `openssl x509 -text -noout` prints for a PEM certificate file.
inline std::string opensslText(const std::string& cert_path) {
  CommandResult r = run("openssl x509 -text -noout -in '" + cert_path + "'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  return r.output;
}

}  // namespace proxy::certutil::testing
