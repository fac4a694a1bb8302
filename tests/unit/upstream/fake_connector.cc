#include "tests/unit/upstream/fake_connector.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>

namespace proxy::testing {

FakeConnector::FakeConnector(uv_loop_t* loop) : loop_(loop) {
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
}

FakeConnector::~FakeConnector() {
  for (Record& r : records) {
    if (r.peer_fd >= 0) ::close(r.peer_fd);
  }
}

void FakeConnector::close() {
  if (closed_) return;
  closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

Status FakeConnector::connect(upstream::UpstreamSocket& socket, void* data, Client* client,
                              Attempt& attempt) {
  attempt.client = nullptr;
  attempt.handle_open = false;
  attempt.socket = &socket;
  if (fail_start) return *fail_start;
  int fds[2];
  if (tcp) {
    loopbackPair(fds);
    REQUIRE(uv_tcp_init(loop_, &socket.tcp) == 0);
    socket.tcp.data = data;
    attempt.handle_open = true;
    REQUIRE(uv_tcp_open(&socket.tcp, fds[0]) == 0);
  } else {
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    REQUIRE(uv_pipe_init(loop_, &socket.pipe, 0) == 0);
    socket.pipe.data = data;
    attempt.handle_open = true;
    REQUIRE(uv_pipe_open(&socket.pipe, fds[0]) == 0);
  }
  attempt.client = client;
  attempt.address = address_;
  Record r;
  r.client = client;
  r.attempt = &attempt;
  r.peer_fd = fds[1];
  r.address = address_;
  records.push_back(r);
  if (auto_succeed && !closed_) uv_timer_start(&timer_, &FakeConnector::uvOnTimer, 0, 0);
  return Status::ok();
}

void FakeConnector::loopbackPair(int fds[2]) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) == 0);
  REQUIRE(::listen(listener, 1) == 0);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  fds[0] = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fds[0] >= 0);
  // A loopback connect completes at once against the listen backlog.
  REQUIRE(::connect(fds[0], reinterpret_cast<sockaddr*>(&addr), len) == 0);
  fds[1] = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  REQUIRE(fds[1] >= 0);
  ::close(listener);
}

FakeConnector::Record* FakeConnector::find(Attempt& attempt) {
  for (Record& r : records) {
    if (r.attempt == &attempt) return &r;
  }
  return nullptr;
}

void FakeConnector::abandon(Attempt& attempt) {
  attempt.client = nullptr;
  if (Record* r = find(attempt)) {
    r->attempt = nullptr;
    r->abandoned = true;
  }
}

void FakeConnector::timedOut(Attempt& attempt) {
  if (Record* r = find(attempt)) {
    r->timed_out = true;
    rotateFrom(r->address);
  }
  abandon(attempt);
}

void FakeConnector::rotateFrom(size_t address) {
  if (address == address_) address_ = (address_ + 1) % address_count;
}

FakeConnector::Client* FakeConnector::take(size_t i) {
  Record& r = records.at(i);
  REQUIRE(r.attempt != nullptr);
  Client* client = r.attempt->client;
  r.attempt->client = nullptr;
  r.attempt = nullptr;
  r.reported = true;
  return client;
}

void FakeConnector::succeed(size_t i) {
  Client* client = take(i);
  Record& r = records[i];
  if (on_connected && on_connected(i, r.peer_fd)) r.peer_fd = -1;
  client->onUpstreamConnected(Status::ok());  // may add records: `r` is not used after
}

void FakeConnector::refuse(size_t i) {
  Client* client = take(i);
  closePeer(i);
  rotateFrom(records[i].address);
  client->onUpstreamConnected(Status::error("connection refused"));
}

void FakeConnector::closePeer(size_t i) {
  Record& r = records.at(i);
  if (r.peer_fd >= 0) ::close(r.peer_fd);
  r.peer_fd = -1;
}

size_t FakeConnector::pendingCount() const {
  size_t n = 0;
  for (const Record& r : records) n += r.attempt != nullptr ? 1 : 0;
  return n;
}

void FakeConnector::uvOnTimer(uv_timer_t* t) {
  auto* self = static_cast<FakeConnector*>(t->data);
  for (size_t i = 0; i < self->records.size(); ++i) {
    if (self->records[i].attempt != nullptr) self->succeed(i);
  }
}

std::string readAvailable(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void writeAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    REQUIRE(n > 0);
    done += static_cast<size_t>(n);
  }
}

}  // namespace proxy::testing
