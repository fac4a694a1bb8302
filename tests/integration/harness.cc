#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace proxy::integration {
namespace {

using Clock = std::chrono::steady_clock;

// Polling interval when waiting on files and child exits: short enough to add no
// noticeable latency, long enough not to spin a core.
constexpr Millis kPollInterval{2};

Millis remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
  return left.count() > 0 ? left : Millis{0};
}

int pollOne(int fd, short events, Millis timeout) {
  pollfd p{fd, events, 0};
  for (;;) {
    int rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (rc < 0 && errno == EINTR) continue;
    return rc > 0 ? p.revents : 0;
  }
}

// A minimal JSON reader: enough for the demo's record lines (objects, arrays, strings
// with \uXXXX escapes below 0x100, numbers, booleans, null).
struct Json {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;

  const Json& get(const std::string& key) const {
    static const Json kNull;
    for (const auto& [k, v] : object) {
      if (k == key) return v;
    }
    return kNull;
  }
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : text_(text) {}
  std::optional<Json> parse() {
    Json value;
    if (!readValue(value)) return std::nullopt;
    skipSpace();
    if (pos_ != text_.size()) return std::nullopt;
    return value;
  }

 private:
  void skipSpace() {
    while (pos_ < text_.size() && std::strchr(" \t\r\n", text_[pos_]) != nullptr) ++pos_;
  }
  bool consume(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  bool readString(std::string& out) {
    if (!consume("\"")) return false;
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == '"') return true;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) return false;
      char e = text_[pos_++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          if (pos_ + 4 > text_.size()) return false;
          unsigned code = static_cast<unsigned>(
              std::strtoul(std::string(text_.substr(pos_, 4)).c_str(), nullptr, 16));
          pos_ += 4;
          if (code > 0xff) return false;  // the demo escapes single bytes only
          out += static_cast<char>(code);
          break;
        }
        default:
          out += e;
          break;
      }
    }
    return false;
  }
  bool readValue(Json& v) {
    skipSpace();
    if (pos_ >= text_.size()) return false;
    char c = text_[pos_];
    if (c == '{') {
      ++pos_;
      v.type = Json::Type::kObject;
      skipSpace();
      if (consume("}")) return true;
      for (;;) {
        std::string key;
        skipSpace();
        if (!readString(key)) return false;
        skipSpace();
        if (!consume(":")) return false;
        Json item;
        if (!readValue(item)) return false;
        v.object.emplace_back(std::move(key), std::move(item));
        skipSpace();
        if (consume("}")) return true;
        if (!consume(",")) return false;
      }
    }
    if (c == '[') {
      ++pos_;
      v.type = Json::Type::kArray;
      skipSpace();
      if (consume("]")) return true;
      for (;;) {
        Json item;
        if (!readValue(item)) return false;
        v.array.push_back(std::move(item));
        skipSpace();
        if (consume("]")) return true;
        if (!consume(",")) return false;
      }
    }
    if (c == '"') {
      v.type = Json::Type::kString;
      return readString(v.string);
    }
    if (consume("true")) {
      v.type = Json::Type::kBool;
      v.boolean = true;
      return true;
    }
    if (consume("false")) {
      v.type = Json::Type::kBool;
      return true;
    }
    if (consume("null")) return true;
    size_t start = pos_;
    while (pos_ < text_.size() && std::strchr("+-0123456789.eE", text_[pos_]) != nullptr) ++pos_;
    if (start == pos_) return false;
    v.type = Json::Type::kNumber;
    v.number = std::strtod(std::string(text_.substr(start, pos_ - start)).c_str(), nullptr);
    return true;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

uint64_t asUint(const Json& j) { return static_cast<uint64_t>(j.number); }

std::string trim(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return std::string(s.substr(b, e - b));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Incremental HTTP/1.1 response framing (RFC 9112 §6.3) over the client's buffer.
class ResponseReader {
 public:
  ResponseReader(bool stop_at_interim, bool head_request)
      : stop_at_interim_(stop_at_interim), head_request_(head_request) {}

  // Consumes bytes from the front of `in`; true once a response is complete.
  bool advance(std::string& in) {
    for (;;) {
      switch (state_) {
        case State::kHead: {
          size_t end = in.find("\r\n\r\n");
          if (end == std::string::npos) return false;
          std::string head = in.substr(0, end);
          in.erase(0, end + 4);
          if (!parseHead(head)) {
            state_ = State::kBroken;
            return false;
          }
          if (r_.status >= 100 && r_.status < 200) {
            if (stop_at_interim_) {
              r_.complete = true;
              return true;
            }
            Response interim = std::move(r_);
            interim.complete = true;
            r_ = Response{};
            r_.interim = std::move(interim.interim);
            r_.interim.push_back(std::move(interim));
            continue;
          }
          startBody();
          continue;
        }
        case State::kLength: {
          size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
          r_.body.append(in, 0, n);
          in.erase(0, n);
          remaining_ -= n;
          if (remaining_ > 0) return false;
          state_ = State::kDone;
          continue;
        }
        case State::kChunkSize: {
          size_t eol = in.find("\r\n");
          if (eol == std::string::npos) return false;
          std::string line = in.substr(0, eol);
          in.erase(0, eol + 2);
          line = line.substr(0, line.find(';'));
          char* end = nullptr;
          remaining_ = std::strtoull(line.c_str(), &end, 16);
          if (line.empty() || *end != '\0') {
            state_ = State::kBroken;
            return false;
          }
          state_ = remaining_ == 0 ? State::kTrailers : State::kChunkData;
          continue;
        }
        case State::kChunkData: {
          size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
          r_.body.append(in, 0, n);
          in.erase(0, n);
          remaining_ -= n;
          if (remaining_ > 0) return false;
          state_ = State::kChunkCrlf;
          continue;
        }
        case State::kChunkCrlf: {
          if (in.size() < 2) return false;
          if (in.compare(0, 2, "\r\n") != 0) {
            state_ = State::kBroken;
            return false;
          }
          in.erase(0, 2);
          state_ = State::kChunkSize;
          continue;
        }
        case State::kTrailers: {
          size_t eol = in.find("\r\n");
          if (eol == std::string::npos) return false;
          in.erase(0, eol + 2);
          if (eol == 0) state_ = State::kDone;
          continue;
        }
        case State::kUntilClose:
          r_.body += in;
          in.clear();
          return false;
        case State::kDone:
          r_.complete = true;
          return true;
        case State::kBroken:
          return false;
      }
    }
  }

  // The peer closed: a close-delimited body ends here; anything else is truncated.
  void onClose(std::string& in) {
    r_.closed = true;
    if (state_ == State::kUntilClose) {
      r_.body += in;
      in.clear();
      r_.complete = true;
    }
  }

  Response& response() { return r_; }

 private:
  enum class State {
    kHead,
    kLength,
    kChunkSize,
    kChunkData,
    kChunkCrlf,
    kTrailers,
    kUntilClose,
    kDone,
    kBroken
  };

  bool parseHead(const std::string& head) {
    std::istringstream lines(head);
    std::string line;
    std::getline(lines, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.compare(0, 7, "HTTP/1.") != 0 || line.size() < 12) return false;
    r_.status = std::atoi(line.substr(9, 3).c_str());
    r_.reason = line.size() > 13 ? line.substr(13) : "";
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      size_t colon = line.find(':');
      if (colon == std::string::npos) return false;
      r_.headers.emplace_back(line.substr(0, colon), trim(line.substr(colon + 1)));
    }
    return true;
  }

  void startBody() {
    auto te = findHeader(r_.headers, "transfer-encoding");
    auto cl = findHeader(r_.headers, "content-length");
    if (head_request_ || r_.status == 204 || r_.status == 304) {
      state_ = State::kDone;
    } else if (te && lower(*te).find("chunked") != std::string::npos) {
      r_.chunked = true;
      state_ = State::kChunkSize;
    } else if (cl) {
      remaining_ = std::strtoull(cl->c_str(), nullptr, 10);
      state_ = State::kLength;
    } else {
      state_ = State::kUntilClose;
    }
  }

  bool stop_at_interim_;
  bool head_request_;
  State state_ = State::kHead;
  uint64_t remaining_ = 0;
  Response r_;
};

}  // namespace

std::string proxyBinary() {
  // Lets the suite run against another build (a release or installed binary).
  const char* other = std::getenv("APM_TLS_PROXY_BINARY");
  return other != nullptr && *other != '\0' ? other : PROXY_BINARY;
}
std::string demoBinary() { return DEMO_BINARY; }

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/apm-tls-proxy-it-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  REQUIRE(::mkdtemp(buf.data()) != nullptr);
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (std::getenv("KEEP_TEST_DIRS") != nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  std::string p = file(name);
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  REQUIRE(out.good());
  return p;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Process::Process(const std::vector<std::string>& argv, const std::string& log_prefix,
                 const std::vector<std::string>& extra_env)
    : log_prefix_(log_prefix) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    bool overridden = false;
    for (const auto& x : extra_env) {
      if (entry.compare(0, x.find('=') + 1, x, 0, x.find('=') + 1) == 0) overridden = true;
    }
    if (!overridden) env_storage.push_back(entry);
  }
  for (const auto& x : extra_env) env_storage.push_back(x);
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

uint16_t portOf(const std::string& host_port) {
  size_t colon = host_port.rfind(':');
  REQUIRE(colon != std::string::npos);
  return static_cast<uint16_t>(std::atoi(host_port.c_str() + colon + 1));
}

uint16_t unusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
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

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && lower(a) == lower(b);
}

std::optional<std::string> findHeader(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (equalsIgnoreCase(k, name)) return v;
  }
  return std::nullopt;
}

size_t countHeader(const Headers& headers, std::string_view name) {
  size_t n = 0;
  for (const auto& h : headers) n += equalsIgnoreCase(h.first, name) ? 1 : 0;
  return n;
}

Client::Client(uint16_t port, Millis timeout) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  REQUIRE(fd_ >= 0);
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (rc != 0) {
    REQUIRE(errno == EINPROGRESS);
    REQUIRE(pollOne(fd_, POLLOUT, timeout) != 0);
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    INFO("connect to 127.0.0.1:" << port << ": " << std::strerror(err));
    REQUIRE(err == 0);
  }
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

size_t Client::sendSome(std::string_view bytes, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  size_t sent = 0;
  while (sent < bytes.size()) {
    // After the peer's EOF only writability matters (it may have half-closed).
    int ev = pollOne(fd_, closed_ ? POLLOUT : POLLIN | POLLOUT, remaining(deadline));
    if (ev == 0) break;  // timeout
    if ((ev & (POLLIN | POLLHUP | POLLERR)) != 0 && !closed_) readMore(Millis{0});
    if ((ev & POLLOUT) != 0) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        closed_ = true;
        reset_ = reset_ || errno == ECONNRESET || errno == EPIPE;
        break;
      }
    } else if ((ev & (POLLERR | POLLHUP)) != 0) {
      break;
    }
    if (Clock::now() >= deadline) break;
  }
  return sent;
}

bool Client::send(std::string_view bytes, Millis timeout) {
  return sendSome(bytes, timeout) == bytes.size();
}

void Client::shutdownWrite() { ::shutdown(fd_, SHUT_WR); }

bool Client::readMore(Millis timeout) {
  if (closed_) return false;
  if (pollOne(fd_, POLLIN, timeout) == 0) return false;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return false;
    closed_ = true;
    reset_ = n < 0;
    return true;
  }
}

Response Client::readResponse(Millis timeout, bool stop_at_interim, bool head_request) {
  auto deadline = Clock::now() + timeout;
  ResponseReader reader(stop_at_interim, head_request);
  for (;;) {
    if (reader.advance(in_)) return std::move(reader.response());
    if (closed_) {
      reader.onClose(in_);
      return std::move(reader.response());
    }
    if (Clock::now() >= deadline) {
      reader.response().timed_out = true;
      return std::move(reader.response());
    }
    readMore(remaining(deadline));
  }
}

bool Client::waitClosed(Millis timeout) {
  auto deadline = Clock::now() + timeout;
  while (!closed_ && Clock::now() < deadline) readMore(remaining(deadline));
  return closed_;
}

bool Client::staysQuiet(Millis duration) {
  size_t before = in_.size();
  auto deadline = Clock::now() + duration;
  while (!closed_ && Clock::now() < deadline) readMore(remaining(deadline));
  return !closed_ && in_.size() == before;
}

DemoServer::DemoServer(const TempDir& dir, const std::string& name)
    : record_path_(dir.file(name + ".jsonl")) {
  std::string ready = dir.file(name + ".ready");
  process_ = std::make_unique<Process>(
      std::vector<std::string>{demoBinary(), "--listen", "127.0.0.1:0", "--ready-file", ready,
                               "--record", record_path_, "--quiet"},
      dir.file(name));
  port_ = portOf(waitForReadyFile(*process_, ready)["listen"]);
}

std::vector<Record> DemoServer::records() const {
  std::vector<Record> out;
  std::istringstream lines(readFile(record_path_));
  std::string line;
  while (std::getline(lines, line)) {
    auto json = JsonReader(line).parse();
    INFO("record line: " << line);
    REQUIRE(json.has_value());
    Record r;
    r.conn = asUint(json->get("conn"));
    r.seq = asUint(json->get("seq"));
    r.method = json->get("method").string;
    r.target = json->get("target").string;
    for (const Json& pair : json->get("headers").array) {
      REQUIRE(pair.array.size() == 2);
      r.headers.emplace_back(pair.array[0].string, pair.array[1].string);
    }
    r.body_bytes = asUint(json->get("body_bytes"));
    r.body_lines = asUint(json->get("body_lines"));
    r.body_head = json->get("body_head").string;
    r.complete = json->get("complete").boolean;
    r.behavior = json->get("behavior").string;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Record> DemoServer::waitForRecords(size_t n, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto r = records();
    if (r.size() >= n) return r;
    if (Clock::now() >= deadline) {
      FAIL("the demo upstream recorded " << r.size() << " requests, expected " << n << " within "
                                         << timeout.count() << " ms");
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

ProxyConfig& ProxyConfig::upstreamPort(uint16_t port) {
  upstream["url"] = "\"http://127.0.0.1:" + std::to_string(port) + "\"";
  return *this;
}

std::string ProxyConfig::toToml() const {
  auto table = [](const std::string& name, std::map<std::string, std::string> values,
                  const std::map<std::string, std::string>& defaults) {
    for (const auto& [k, v] : defaults) values.emplace(k, v);
    std::string out = "[" + name + "]\n";
    for (const auto& [k, v] : values) out += k + " = " + v + "\n";
    return out + "\n";
  };
  return table("server", server, {{"host", "\"127.0.0.1:0\""}, {"workers", "1"}}) +
         table("upstream", upstream, {}) + table("log", log, {{"level", "\"debug\""}}) + extra;
}

ProxyProcess::ProxyProcess(const TempDir& dir, const ProxyConfig& config, const std::string& name,
                           const std::vector<std::string>& extra_env)
    : config_path_(dir.write(name + ".toml", config.toToml())) {
  std::string ready = dir.file(name + ".ready");
  process_ =
      std::make_unique<Process>(std::vector<std::string>{proxyBinary(), "run", "--config",
                                                         config_path_, "--ready-file", ready},
                                dir.file(name), extra_env);
  auto values = waitForReadyFile(*process_, ready);
  INFO("ready file of " << name << " has no listen= line");
  REQUIRE(values.count("listen") == 1);
  port_ = portOf(values["listen"]);
}

ProxyStack::ProxyStack(ProxyConfig config)
    : demo(dir), proxy(dir, config.upstreamPort(demo.port())) {}

std::string demoPattern(uint64_t offset, size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>('a' + (offset + i) % 26);
  return out;
}

std::string httpRequest(const std::string& method, const std::string& target,
                        const std::string& headers, const std::string& body) {
  std::string out = method + " " + target + " HTTP/1.1\r\nHost: apm.test\r\n" + headers;
  if (lower(headers).find("transfer-encoding:") == std::string::npos &&
      (!body.empty() || method == "POST" || method == "PUT")) {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return out + "\r\n" + body;
}

std::string chunked(std::string_view body, size_t chunk) {
  std::string out;
  char size[32];
  for (size_t at = 0; at < body.size(); at += chunk) {
    size_t n = std::min(chunk, body.size() - at);
    std::snprintf(size, sizeof size, "%zx\r\n", n);
    out += size;
    out.append(body.substr(at, n));
    out += "\r\n";
  }
  return out + "0\r\n\r\n";
}

}  // namespace proxy::integration
