// Helpers for the certutil tests: a fresh temporary directory per test, file reading, and
// running the system openssl CLI to check our output with a second implementation.
// Test-only; never linked into the product.
#pragma once

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "proxy/common/status.h"

namespace proxy::certutil::testing {

// The failure message of `r`, or "" when it holds a value (for INFO()).
template <class T>
std::string why(const Result<T>& r) {
  return r.isOk() ? std::string() : r.status().message();
}

// A directory created by mkdtemp and removed, with everything in it, when destroyed.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = std::string(tmpRoot()) + "/certutil-test-XXXXXX";
    char* made = mkdtemp(tmpl.data());
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  static const char* tmpRoot() {
    const char* t = getenv("TMPDIR");
    return t != nullptr && *t != '\0' ? t : "/tmp";
  }
  std::string path_;
};

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void writeFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
}

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

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `command` with /bin/sh, stdin from /dev/null. Tests pass only paths they created.
inline CommandResult run(const std::string& command) {
  CommandResult r;
  FILE* p = popen((command + " </dev/null 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The text `openssl x509 -text -noout` prints for a PEM certificate file.
inline std::string opensslText(const std::string& cert_path) {
  CommandResult r = run("openssl x509 -text -noout -in '" + cert_path + "'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  return r.output;
}

}  // namespace proxy::certutil::testing
