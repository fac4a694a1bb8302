// Child processes for tests: start a binary with its output in files, signal it, wait for
// it with a deadline, run one to completion, and read what /proc says about it. Every
// child is reaped; failures are reported through Catch2 (test thread only).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/deadline.h"
#include "tests/support/temp_dir.h"

namespace proxy::testsupport {

// A child started with fork + execve (killed with the test process, via
// PR_SET_PDEATHSIG, should the test itself be killed); stdin is /dev/null, stdout and
// stderr go to `log_prefix.stdout` and `log_prefix.stderr`. `extra_env` entries
// (NAME=VALUE) replace or add to the inherited environment. Owned by the test; the
// destructor kills (SIGKILL) a child that is still running and always reaps it.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::string& log_prefix,
          const std::vector<std::string>& extra_env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // True while the child has not exited (reaps it when it has).
  bool running();
  // Waits up to `timeout` for the child to exit; its exit code (128 + signal number when
  // killed by a signal), or nullopt when it is still running.
  std::optional<int> wait(Millis timeout);
  // SIGTERM, wait up to `timeout`, then SIGKILL; returns the exit code.
  int stop(Millis timeout = Millis{5000});
  // Sends `signum` without waiting.
  void signal(int signum);
  std::string stdoutText() const { return readFile(log_prefix_ + ".stdout"); }
  std::string stderrText() const { return readFile(log_prefix_ + ".stderr"); }

 private:
  bool reap(bool block);
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_prefix_;
};

// What a process run to completion left behind.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs argv to completion (killed after `timeout`, which fails the test); its outputs are
// kept in `dir` as NAME.stdout and NAME.stderr.
RunResult runToCompletion(const std::vector<std::string>& argv, const TempDir& dir,
                          const std::string& name, Millis timeout = Millis{10000});

// What a shell command run to completion printed (stdout and stderr together).
struct ShellResult {
  int exit_code = -1;
  std::string output;
};
// Runs `command` with /bin/sh, stdin from /dev/null, stderr into stdout. For commands
// whose merged text a test checks (openssl, promtool); tests pass only paths they created.
ShellResult runShell(const std::string& command);

// Polls until `path` exists and ends in a newline (the child writes it atomically), then
// returns its key=value lines. Fails the test, quoting the child's stderr, if the child
// exits or `timeout` passes first.
std::map<std::string, std::string> waitForReadyFile(Process& process, const std::string& path,
                                                    Millis timeout = Millis{10000});

// The full path of a tool found on $PATH (execve does not search it); fails the test
// when it is missing, saying where it comes from (`installed_by`) when given.
std::string toolPath(const std::string& name, const std::string& installed_by = "");

// Peak (VmHWM) and current (VmRSS) resident set size of a process, in KiB.
struct Memory {
  uint64_t hwm_kib = 0;
  uint64_t rss_kib = 0;
};
Memory readMemory(pid_t pid);

// Threads of a process (entries of /proc/PID/task).
size_t threadCount(pid_t pid);

}  // namespace proxy::testsupport
