#include "tests/integration/scripted_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace proxy::integration {
namespace {

using Clock = std::chrono::steady_clock;

bool waitReadable(int fd, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

// Length of a complete request at the start of `buf` (head plus body), or 0.
size_t completeRequest(const std::string& buf) {
  size_t head_end = buf.find("\r\n\r\n");
  if (head_end == std::string::npos) return 0;
  size_t body_start = head_end + 4;
  std::string head = buf.substr(0, body_start);
  std::string lower = head;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.find("transfer-encoding: chunked") != std::string::npos) {
    size_t end = buf.find("\r\n0\r\n\r\n", body_start - 2);
    return end == std::string::npos ? 0 : end + 7;
  }
  size_t cl = lower.find("content-length:");
  size_t len = cl == std::string::npos ? 0 : std::strtoull(lower.c_str() + cl + 15, nullptr, 10);
  return buf.size() >= body_start + len ? body_start + len : 0;
}

}  // namespace

ScriptedUpstream::ScriptedUpstream(Script script) : script_(std::move(script)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(listen_fd_, 128);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

ScriptedUpstream::~ScriptedUpstream() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (std::thread& t : workers) t.join();
}

void ScriptedUpstream::acceptLoop() {
  while (!stopping_) {
    if (!waitReadable(listen_fd_, Clock::now() + std::chrono::milliseconds(100))) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    size_t index = accepted_++;
    std::lock_guard<std::mutex> lock(mu_);
    fds_.push_back(fd);
    workers_.emplace_back([this, fd, index] {
      script_(fd, index);
      std::lock_guard<std::mutex> l(mu_);
      auto it = std::find(fds_.begin(), fds_.end(), fd);
      if (it != fds_.end()) {
        fds_.erase(it);
        ::close(fd);
      }
    });
  }
}

std::string ScriptedUpstream::readRequest(int fd, std::string& buf,
                                          std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    size_t n = completeRequest(buf);
    if (n > 0) {
      std::string req = buf.substr(0, n);
      buf.erase(0, n);
      return req;
    }
    if (!waitReadable(fd, deadline)) return {};
    char chunk[65536];
    ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
    if (got <= 0) return {};
    buf.append(chunk, static_cast<size_t>(got));
  }
}

bool ScriptedUpstream::writeAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

void ScriptedUpstream::reset(int fd) {
  linger l{1, 0};
  // With SO_LINGER 0 the close that the runner does when the script returns sends a
  // RST instead of a FIN; scripts call reset() last.
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

bool ScriptedUpstream::waitPeerClose(int fd, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (!waitReadable(fd, deadline)) return false;
    char c[4096];
    ssize_t n = ::recv(fd, c, sizeof c, 0);
    if (n <= 0) return true;
  }
}

}  // namespace proxy::integration
