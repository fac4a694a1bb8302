#include "tests/unit/listener/acceptor_test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace proxy::listener::testing {

FakeSink::~FakeSink() = default;

void FakeSink::acceptFrom(uv_stream_t* server) {
  auto owned = std::make_unique<Conn>();
  Conn& c = *owned;
  c.sink = this;
  c.order = next_order_++;
  uv_tcp_init(loop_, &c.tcp);
  c.tcp.data = &c;
  conns_.emplace(c.order, std::move(owned));
  auto* stream = reinterpret_cast<uv_stream_t*>(&c.tcp);
  if (uv_accept(server, stream) != 0) {
    ++accept_failures;
    close(c);
    return;
  }
  ++accepted;
  char greeting[] = "A";
  uv_buf_t buf = uv_buf_init(greeting, 1);
  (void)uv_try_write(stream, &buf, 1);  // one byte into an empty socket buffer
}

void FakeSink::close(Conn& c) {
  if (c.closing) return;
  c.closing = true;
  ++closing_;
  uv_close(reinterpret_cast<uv_handle_t*>(&c.tcp), &FakeSink::uvOnClose);
}

void FakeSink::uvOnClose(uv_handle_t* h) {
  auto* c = static_cast<Conn*>(h->data);
  FakeSink* self = c->sink;
  --self->closing_;
  ++self->released;
  self->conns_.erase(c->order);  // frees c
  if (self->acceptor_ != nullptr) self->acceptor_->release();
}

void FakeSink::closeOldest() {
  for (auto& entry : conns_) {
    if (!entry.second->closing) {
      close(*entry.second);
      return;
    }
  }
}

void FakeSink::closeAll() {
  for (auto& entry : conns_) close(*entry.second);
}

bool runUntil(uv_loop_t* loop, const std::function<bool()>& done, uint64_t limit_ms) {
  // A ticking timer wakes UV_RUN_ONCE so that `done` is checked even when the loop has
  // nothing to do (the condition may depend on a client socket, outside the loop).
  uv_timer_t tick{};
  uv_timer_init(loop, &tick);
  uv_timer_start(
      &tick, [](uv_timer_t*) {}, 2, 2);
  const uint64_t deadline = uv_now(loop) + limit_ms;
  while (!done() && uv_now(loop) < deadline) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return done();
}

int boundSocket(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

int newClient() { return ::socket(AF_INET, SOCK_STREAM, 0); }

bool connectClient(int fd, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

ClientView peek(int fd) {
  char c = 0;
  ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
  if (n == 1) return ClientView::kGreeted;
  if (n == 0) return ClientView::kClosed;
  return errno == EAGAIN || errno == EWOULDBLOCK ? ClientView::kNothingYet : ClientView::kClosed;
}

}  // namespace proxy::listener::testing
