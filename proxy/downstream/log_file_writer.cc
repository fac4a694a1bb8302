#include "proxy/downstream/log_file_writer.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "proxy/common/log.h"

namespace proxy::downstream {
namespace {

// A burst may grow the batch buffer; beyond this it is not kept between batches.
constexpr size_t kKeepCapacity = size_t{1} << 20;

int openForAppend(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

bool isRegular(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

uint64_t lineCount(std::string_view s) {
  return static_cast<uint64_t>(std::count(s.begin(), s.end(), '\n'));
}

}  // namespace

Result<std::unique_ptr<LogFileWriter>> LogFileWriter::open(const std::string& target,
                                                           const Options& options) {
  if (target == "stderr") {
    // Never treated as regular: the process log shares fd 2 and writes line by line, so
    // our writes there stay within PIPE_BUF too (a pipe keeps such writes whole).
    return std::unique_ptr<LogFileWriter>(new LogFileWriter("", 2, false, options));
  }
  int fd = openForAppend(target);
  if (fd < 0) {
    return Status::error("cannot open access log " + target + ": " + std::strerror(errno));
  }
  return std::unique_ptr<LogFileWriter>(new LogFileWriter(target, fd, isRegular(fd), options));
}

LogFileWriter::LogFileWriter(std::string path, int fd, bool regular, const Options& options)
    : path_(std::move(path)), options_(options), fd_(fd), regular_(regular) {
  thread_ = std::thread([this] { run(); });
}

LogFileWriter::~LogFileWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  if (!path_.empty()) ::close(fd_);
}

void LogFileWriter::append(std::string_view line) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pending_.size() + line.size() > options_.max_pending_bytes) {
    // The disk stalls longer than the queue covers: dropping a log line is better than
    // blocking the loop that serves traffic or growing memory without bound.
    dropped_.fetch_add(lineCount(line));
    return;
  }
  size_t before = pending_.size();
  pending_.append(line);
  queued_total_ += line.size();
  // Wake the writer for the first line, and again once a batch is full; the lines in
  // between wait for the batch (a notify per line costs a futex call and a context
  // switch per request, about a third of a small request's CPU).
  bool batch_full = before < options_.batch_bytes && pending_.size() >= options_.batch_bytes;
  if (before == 0 || batch_full) wake_.notify_one();
}

void LogFileWriter::requestReopen() {
  std::lock_guard<std::mutex> lock(mu_);
  reopen_requested_ = true;
  wake_.notify_one();
}

void LogFileWriter::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t target = queued_total_;
  ++flush_waiters_;  // a flush does not wait for the batch delay
  wake_.notify_one();
  written_.wait(lock, [&] { return written_total_ >= target; });
  --flush_waiters_;
}

void LogFileWriter::run() {
  using Clock = std::chrono::steady_clock;
  Clock::time_point next_check = Clock::now() + options_.check_interval;
  std::string batch;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait_until(lock, next_check,
                     [&] { return stopping_ || reopen_requested_ || !pending_.empty(); });
    if (!pending_.empty() && options_.batch_delay.count() > 0) {
      wake_.wait_for(lock, options_.batch_delay, [&] {
        return stopping_ || reopen_requested_ || flush_waiters_ > 0 ||
               pending_.size() >= options_.batch_bytes;
      });
    }
    bool requested = std::exchange(reopen_requested_, false);
    bool stop = stopping_;
    batch.swap(pending_);
    uint64_t batch_end = queued_total_;
    lock.unlock();

    Clock::time_point now = Clock::now();
    if (requested || now >= next_check) {
      if (!path_.empty()) reopenIfNeeded(requested);
      next_check = now + options_.check_interval;
      uint64_t dropped = dropped_.load();
      if (dropped != dropped_reported_) {
        log::warn("access log lines dropped: the disk is slower than the traffic",
                  {{"dropped", dropped - dropped_reported_}, {"dropped_total", dropped}});
        dropped_reported_ = dropped;
      }
    }
    if (!batch.empty()) writeBatch(batch);
    batch.clear();
    if (batch.capacity() > kKeepCapacity) std::string().swap(batch);

    lock.lock();
    written_total_ = batch_end;
    written_.notify_all();
    if (stop && pending_.empty()) return;
  }
}

void LogFileWriter::reopenIfNeeded(bool requested) {
  const char* trigger = "SIGUSR1";
  if (!requested) {
    // logrotate's default renames the file (and may create a new one); others remove it.
    // Either way the path no longer names the inode we write to (st_nlink alone would miss
    // a rename). A stat and an fstat per second is the whole cost.
    struct stat by_path {};
    struct stat open_file {};
    if (::stat(path_.c_str(), &by_path) == 0) {
      if (::fstat(fd_, &open_file) == 0 && by_path.st_dev == open_file.st_dev &&
          by_path.st_ino == open_file.st_ino) {
        return;
      }
      trigger = "file replaced";
    } else if (errno == ENOENT) {
      trigger = "file renamed or removed";
    } else {
      return;  // e.g. EACCES: the directory changed under us; keep the file we have
    }
  }
  int fd = openForAppend(path_);
  if (fd < 0) {
    if (!reopen_failing_) {
      log::warn("cannot reopen access log; still writing to the old file",
                {{"path", path_}, {"trigger", trigger}, {"error", std::strerror(errno)}});
    }
    reopen_failing_ = true;
    return;
  }
  reopen_failing_ = false;
  ::close(fd_);
  fd_ = fd;
  regular_ = isRegular(fd);
  reopens_.fetch_add(1);
  log::info("access log reopened", {{"path", path_}, {"trigger", trigger}});
}

void LogFileWriter::writeBatch(const std::string& batch) {
  if (regular_) {
    // One write(2) of whole lines on an O_APPEND descriptor lands in one piece.
    writeAll(batch.data(), batch.size());
    return;
  }
  // Pipes keep a write whole only up to PIPE_BUF (pipe(7)), so cut at line ends within it;
  // a longer line goes alone.
  std::string_view rest(batch);
  while (!rest.empty()) {
    size_t n = rest.size();
    if (n > PIPE_BUF) {
      size_t nl = rest.rfind('\n', PIPE_BUF - 1);
      if (nl == std::string_view::npos) nl = rest.find('\n', PIPE_BUF);
      if (nl != std::string_view::npos) n = nl + 1;
    }
    writeAll(rest.data(), n);
    rest.remove_prefix(n);
  }
}

void LogFileWriter::writeAll(const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pfd{fd_, POLLOUT, 0};
      ::poll(&pfd, 1, 1000);  // this thread may wait; no event loop waits behind it
      continue;
    }
    if (w < 0) {
      if (!write_failing_) {
        log::warn("access log write failed; lines are lost until it works again",
                  {{"path", path_.empty() ? std::string("stderr") : path_},
                   {"error", std::strerror(errno)}});
      }
      write_failing_ = true;
      dropped_.fetch_add(lineCount(std::string_view(p, n)));
      return;
    }
    write_failing_ = false;
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace proxy::downstream
