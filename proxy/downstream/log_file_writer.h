// LogFileWriter: appends whole lines to a log file (or stderr) from a thread of its own, so
// that a slow or stalled disk never blocks an event loop. Lines are queued (bounded;
// beyond the bound they are dropped and counted) and written in batches of whole lines
// by one writer, so they never interleave. The writer gathers lines for a few milliseconds
// before it writes, so at high request rates one wake-up and one write(2) carry many lines. A file
// is reopened on request (SIGUSR1) and when it was renamed or removed (checked about once a
// second), for logrotate.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "proxy/common/status.h"

namespace proxy::downstream {

// Owned by AccessLog (one per process). append(), requestReopen() and flush() may be
// called from any thread; the writer thread runs from open() until the destructor, which
// writes what is still queued.
class LogFileWriter {
 public:
  struct Options {
    size_t max_pending_bytes = size_t{8} << 20;      // queue bound; beyond it lines drop
    std::chrono::milliseconds check_interval{1000};  // rename/removal check period
    // How long the writer lets lines gather after the first one arrives, unless
    // batch_bytes are queued first. Lines reach the file at most this much later.
    std::chrono::milliseconds batch_delay{20};
    size_t batch_bytes = size_t{64} << 10;
  };

  // `target` is "stderr" or a file path (created 0640, appended to).
  static Result<std::unique_ptr<LogFileWriter>> open(const std::string& target,
                                                     const Options& options);
  static Result<std::unique_ptr<LogFileWriter>> open(const std::string& target) {
    return open(target, Options{});
  }
  ~LogFileWriter();
  LogFileWriter(const LogFileWriter&) = delete;
  LogFileWriter& operator=(const LogFileWriter&) = delete;

  // Queues `line` (one or more whole lines, each ending in '\n'). Never blocks on I/O.
  void append(std::string_view line);
  // Asks the writer to reopen the file by its path (a no-op for stderr).
  void requestReopen();
  // Blocks until every line appended before the call has been handed to write(2).
  void flush();

  uint64_t droppedLines() const { return dropped_.load(); }
  uint64_t reopens() const { return reopens_.load(); }

 private:
  LogFileWriter(std::string path, int fd, bool regular, const Options& options);
  void run();
  // Reopens when asked to or when the path no longer names the open file.
  void reopenIfNeeded(bool requested);
  void writeBatch(const std::string& batch);
  void writeAll(const char* p, size_t n);

  const std::string path_;  // empty for stderr
  const Options options_;
  int fd_;        // writer thread only, after open()
  bool regular_;  // a regular file: no PIPE_BUF limit on atomic writes
  bool reopen_failing_ = false;
  bool write_failing_ = false;
  uint64_t dropped_reported_ = 0;

  std::mutex mu_;  // guards everything below it
  std::condition_variable wake_;
  std::condition_variable written_;
  std::string pending_;
  uint64_t queued_total_ = 0;   // bytes ever queued
  uint64_t written_total_ = 0;  // bytes of those handed to write(2) (or given up on)
  bool reopen_requested_ = false;
  bool stopping_ = false;
  int flush_waiters_ = 0;

  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> reopens_{0};
  std::thread thread_;
};

}  // namespace proxy::downstream
