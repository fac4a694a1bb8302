#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

extern char** environ;

namespace proxy::testsupport {
namespace {

// Polling interval when waiting on files and child exits: short enough to add no
// noticeable latency, long enough not to spin a core.
constexpr Millis kPollInterval{2};

// The inherited environment with `extra` (NAME=VALUE) replacing or adding entries.
std::vector<std::string> environmentWith(const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    bool overridden = false;
    for (const auto& x : extra) {
      if (entry.compare(0, x.find('=') + 1, x, 0, x.find('=') + 1) == 0) overridden = true;
    }
    if (!overridden) out.push_back(entry);
  }
  for (const auto& x : extra) out.push_back(x);
  return out;
}

}  // namespace

Process::Process(const std::vector<std::string>& argv, const std::string& log_prefix,
                 const std::vector<std::string>& extra_env)
    : log_prefix_(log_prefix) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage = environmentWith(extra_env);
  std::vector<char*> env;
  for (auto& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);

  std::string out_path = log_prefix + ".stdout";
  std::string err_path = log_prefix + ".stderr";
  int in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  REQUIRE(in_fd >= 0);
  REQUIRE(out_fd >= 0);
  REQUIRE(err_fd >= 0);
  // fork + execve rather than posix_spawn, for PR_SET_PDEATHSIG: when ctest kills a
  // test that timed out, its children die with it instead of running on. The child
  // only makes async-signal-safe calls.
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    // The test runner may ignore or block signals; the child gets the defaults back.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  int fork_errno = errno;
  ::close(in_fd);
  ::close(out_fd);
  ::close(err_fd);
  INFO("fork for " << argv[0] << ": " << std::strerror(fork_errno));
  REQUIRE(pid > 0);
  pid_ = pid;
}

Process::~Process() {
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
}

bool Process::reap(bool block) {
  if (exit_code_) return true;
  int status = 0;
  for (;;) {
    pid_t rc = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (rc < 0 && errno == EINTR) continue;
    if (rc != pid_) return false;
    break;
  }
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

bool Process::running() { return !reap(false); }

std::optional<int> Process::wait(Millis timeout) {
  auto deadline = Clock::now() + timeout;
  while (!reap(false)) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollInterval);
  }
  return exit_code_;
}

int Process::stop(Millis timeout) {
  if (exit_code_) return *exit_code_;
  ::kill(pid_, SIGTERM);
  if (auto code = wait(timeout)) return *code;
  ::kill(pid_, SIGKILL);
  reap(true);
  return *exit_code_;
}

void Process::signal(int signum) {
  if (!exit_code_) ::kill(pid_, signum);
}

RunResult runToCompletion(const std::vector<std::string>& argv, const TempDir& dir,
                          const std::string& name, Millis timeout) {
  Process p(argv, dir.file(name));
  RunResult result;
  auto code = p.wait(timeout);
  INFO(argv[0] << " did not finish within " << timeout.count() << " ms");
  CHECK(code.has_value());
  result.exit_code = code ? *code : p.stop(Millis{1000});
  result.out = p.stdoutText();
  result.err = p.stderrText();
  return result;
}

std::map<std::string, std::string> waitForReadyFile(Process& process, const std::string& path,
                                                    Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    std::string text = readFile(path);
    if (!text.empty() && text.back() == '\n') {
      std::map<std::string, std::string> values;
      std::istringstream lines(text);
      std::string line;
      while (std::getline(lines, line)) {
        size_t eq = line.find('=');
        if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
      }
      return values;
    }
    if (!process.running()) {
      FAIL("process " << process.pid() << " exited (code " << process.wait(Millis{0}).value_or(-1)
                      << ") before writing " << path << "; stderr:\n"
                      << process.stderrText());
    }
    if (Clock::now() >= deadline) {
      FAIL("no ready file " << path << " after " << timeout.count() << " ms; stderr:\n"
                            << process.stderrText());
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::string toolPath(const std::string& name, const std::string& installed_by) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t pos = 0;
  while (pos <= dirs.size()) {
    size_t end = dirs.find(':', pos);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(pos, end - pos) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    pos = end + 1;
  }
  FAIL("the test needs '" << name << "' on PATH"
                          << (installed_by.empty() ? "" : " (" + installed_by + ")"));
  return "";
}

Memory readMemory(pid_t pid) {
  Memory m;
  std::istringstream lines(readFile("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.compare(0, 6, "VmHWM:") == 0) m.hwm_kib = std::strtoull(line.c_str() + 6, nullptr, 10);
    if (line.compare(0, 6, "VmRSS:") == 0) m.rss_kib = std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  REQUIRE(m.hwm_kib > 0);
  return m;
}

size_t threadCount(pid_t pid) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    (void)entry;
    ++n;
  }
  return n;
}

ShellResult runShell(const std::string& command) {
  ShellResult r;
  FILE* p = ::popen((command + " </dev/null 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace proxy::testsupport
