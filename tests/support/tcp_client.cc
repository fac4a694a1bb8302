#include "tests/support/tcp_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>

#include "tests/support/net.h"

namespace proxy::testsupport {

Client::Client(uint16_t port, Millis timeout) {
  fd_ = tcpConnect(port, timeout);
  INFO("connect to 127.0.0.1:" << port << ": " << std::strerror(errno));
  REQUIRE(fd_ >= 0);
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

size_t Client::sendSome(std::string_view bytes, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  size_t sent = 0;
  while (sent < bytes.size()) {
    // After the peer's EOF only writability matters (it may have half-closed).
    short ev = pollOne(fd_, closed_ ? POLLOUT : POLLIN | POLLOUT, remaining(deadline));
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
  Http1Reader::Options options;
  options.stop_at_interim = stop_at_interim;
  options.head_request = head_request;
  Http1Reader reader(options);
  for (;;) {
    in_.erase(0, reader.feed(in_));
    if (reader.done()) return std::move(reader.response());
    if (closed_) {
      reader.finish();
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

Response httpGet(uint16_t port, const std::string& path, Millis timeout) {
  Client c(port, timeout);
  REQUIRE(c.send("GET " + path + " HTTP/1.1\r\nHost: admin\r\n\r\n", timeout));
  return c.readResponse(timeout);
}

}  // namespace proxy::testsupport
