// A fresh temporary directory per test, and whole-file reads and writes. Fails the test
// through Catch2 when the directory or a file cannot be made.
#pragma once

#include <string>

namespace proxy::testsupport {

// A fresh directory (mkdtemp under $TMPDIR or /tmp), removed with its contents on
// destruction unless KEEP_TEST_DIRS is set in the environment. Owned by the test.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "apm-tls-proxy-it");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // `path()/name`.
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `content` to `path()/name` and returns the full path; with `mode` >= 0 the file
  // gets those permission bits (e.g. 0600 for a key only its owner may read).
  std::string write(const std::string& name, const std::string& content, int mode = -1) const;

 private:
  std::string path_;
};

// The whole file, or "" when it cannot be read.
std::string readFile(const std::string& path);

// Writes `content` to `path` (truncating it); fails the test when that does not work.
void writeFile(const std::string& path, const std::string& content);

}  // namespace proxy::testsupport
