// LogFileWriter: lines reach the file whole, the file is reopened on request and after a
// rename or removal, and an oversized queue drops rather than blocks.
#include "proxy/downstream/log_file_writer.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"

using proxy::downstream::LogFileWriter;

namespace {

using proxy::testsupport::TempDir;
// The whole file ("" when it is missing).
std::string slurp(const std::string& path) { return proxy::testsupport::readFile(path); }

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Polls `done` every few milliseconds for up to five seconds.
template <typename F>
bool eventually(F done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

std::unique_ptr<LogFileWriter> openWriter(const std::string& path,
                                          LogFileWriter::Options options = {}) {
  auto w = LogFileWriter::open(path, options);
  REQUIRE(w);
  return std::move(w).value();
}

// A writer that checks its path every `check_interval`.
std::unique_ptr<LogFileWriter> openChecking(const std::string& path,
                                            std::chrono::milliseconds check_interval) {
  LogFileWriter::Options o;
  o.check_interval = check_interval;
  return openWriter(path, o);
}

}  // namespace

TEST_CASE("LogFileWriter appends lines and flush() waits until they are written",
          "[unit][downstream]") {
  TempDir dir;
  std::string path = dir.file("access.log");
  auto w = openWriter(path);
  w->append("one\n");
  w->append("two\nthree\n");
  w->flush();
  CHECK(slurp(path) == "one\ntwo\nthree\n");
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0137) == 0);  // created 0640: no execute, no group write, no others
}

TEST_CASE("LogFileWriter reopens on request: after a rename new lines go to a new file",
          "[unit][downstream]") {
  TempDir dir;
  std::string path = dir.file("access.log");
  // Only the request may cause the reopen here.
  auto w = openChecking(path, std::chrono::hours(1));
  w->append("before\n");
  w->flush();
  REQUIRE(::rename(path.c_str(), (path + ".1").c_str()) == 0);
  w->append("between\n");  // still the old file: the writer has not been asked yet
  w->flush();
  w->requestReopen();
  REQUIRE(eventually([&] { return w->reopens() == 1; }));
  w->append("after\n");
  w->flush();
  CHECK(slurp(path + ".1") == "before\nbetween\n");
  CHECK(slurp(path) == "after\n");
}

TEST_CASE("LogFileWriter notices by itself that its file was renamed or removed",
          "[unit][downstream]") {
  TempDir dir;
  std::string path = dir.file("access.log");
  auto w = openChecking(path, std::chrono::milliseconds(20));
  w->append("first\n");
  w->flush();
  SECTION("removed") { REQUIRE(::unlink(path.c_str()) == 0); }
  SECTION("renamed") { REQUIRE(::rename(path.c_str(), (path + ".1").c_str()) == 0); }
  SECTION("renamed, and a new file created in its place (logrotate's create)") {
    REQUIRE(::rename(path.c_str(), (path + ".1").c_str()) == 0);
    std::ofstream(path).flush();
  }
  REQUIRE(eventually([&] { return w->reopens() == 1; }));
  REQUIRE(exists(path));
  w->append("second\n");
  w->flush();
  CHECK(slurp(path) == "second\n");
}

TEST_CASE("LogFileWriter keeps the file it has while the path still names it",
          "[unit][downstream]") {
  TempDir dir;
  std::string path = dir.file("access.log");
  auto w = openChecking(path, std::chrono::milliseconds(1));
  for (int i = 0; i < 50; ++i) {
    w->append("line\n");
    w->flush();
  }
  CHECK(w->reopens() == 0);
  CHECK(slurp(path).size() == 50 * 5);
}

TEST_CASE("Lines from many threads never interleave, even beyond PIPE_BUF", "[unit][downstream]") {
  TempDir dir;
  std::string path = dir.file("access.log");
  auto w = openWriter(path);
  constexpr int kThreads = 4;
  constexpr int kLines = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&w, t] {
      for (int i = 0; i < kLines; ++i) {
        // 1 to 12 KiB of one letter per line: PIPE_BUF is 4 KiB.
        size_t len = 1024 + static_cast<size_t>((i * 997 + t * 131) % 11264);
        w->append(std::string(len, static_cast<char>('a' + t)) + "\n");
      }
    });
  }
  for (auto& th : threads) th.join();
  w->flush();
  std::istringstream in(slurp(path));
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    ++count;
    REQUIRE_FALSE(line.empty());
    INFO("line " << count << " mixes letters");
    REQUIRE(line.find_first_not_of(line[0]) == std::string::npos);
  }
  CHECK(count == kThreads * kLines);
}

TEST_CASE("A queue over its bound drops lines and counts them instead of blocking",
          "[unit][downstream]") {
  TempDir dir;
  std::string path = dir.file("access.log");
  LogFileWriter::Options o;
  o.max_pending_bytes = 64;
  auto w = openWriter(path, o);
  w->append(std::string(100, 'x') + "\n");  // larger than the whole queue
  w->append("kept\n");
  w->flush();
  CHECK(w->droppedLines() == 1);
  CHECK(slurp(path) == "kept\n");
}

TEST_CASE("LogFileWriter reports a file it cannot open", "[unit][downstream]") {
  auto w = LogFileWriter::open("/nonexistent-dir/access.log");
  REQUIRE_FALSE(w);
  CHECK(w.status().message().find("/nonexistent-dir/access.log") != std::string::npos);
}

TEST_CASE("LogFileWriter: lines gather into batches, but a full batch or a flush goes at once",
          "[unit][downstream]") {
  TempDir dir;
  std::string path = dir.file("access.log");
  LogFileWriter::Options o;
  o.batch_delay = std::chrono::minutes(10);  // only a full batch or a flush may write
  o.batch_bytes = 64;
  auto w = openWriter(path, o);

  w->append("short line\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(slurp(path).empty());  // one line waits for its batch

  w->append(std::string(70, 'x') + "\n");  // the batch is full: written without the delay
  CHECK(eventually([&] { return slurp(path).size() == 11 + 71; }));

  w->append("after\n");
  w->flush();  // would hang for ten minutes if flush waited for the batch delay
  CHECK(slurp(path) == "short line\n" + std::string(70, 'x') + "\nafter\n");
}
