// A plain TCP client on 127.0.0.1 for tests, reading responses through Http1Reader. Every
// call has a deadline, and send() keeps reading what the peer sends meanwhile, so a test
// never deadlocks against a server that answers (or echoes) while it uploads. Fails the
// test through Catch2 when it cannot connect (test thread only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tests/support/deadline.h"
#include "tests/support/http1_reader.h"

namespace proxy::testsupport {

// One connection, owned by the test; the destructor closes the socket.
class Client {
 public:
  // Connects or fails the test.
  explicit Client(uint16_t port, Millis timeout = Millis{5000});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends all of `bytes`; false when the peer closed or reset, or `timeout` passed.
  bool send(std::string_view bytes, Millis timeout = Millis{10000});
  // Sends as much of `bytes` as the socket takes within `timeout`; bytes sent.
  size_t sendSome(std::string_view bytes, Millis timeout);
  void shutdownWrite();
  // Reads one final response (collecting 1xx ones into Response::interim). With
  // `stop_at_interim`, returns a 1xx response as soon as it arrives. `head_request`:
  // the response has no body (RFC 9112 §6.3).
  Response readResponse(Millis timeout = Millis{10000}, bool stop_at_interim = false,
                        bool head_request = false);
  // Reads until the peer closes; true when it did within `timeout`. Bytes read are
  // appended to buffered().
  bool waitClosed(Millis timeout = Millis{5000});
  // True when nothing arrives and the connection stays open for `duration`.
  bool staysQuiet(Millis duration);
  bool closed() const { return closed_; }
  bool reset() const { return reset_; }
  // Bytes received and not yet consumed by readResponse().
  const std::string& buffered() const { return in_; }
  int fd() const { return fd_; }

 private:
  // Reads once (waiting up to `timeout`); false on timeout or when already closed.
  bool readMore(Millis timeout);
  int fd_ = -1;
  std::string in_;
  bool closed_ = false;
  bool reset_ = false;
};

// GET `path` on a fresh connection (plain HTTP, Host: admin); fails the test when the
// request cannot be sent.
Response httpGet(uint16_t port, const std::string& path, Millis timeout = Millis{5000});

}  // namespace proxy::testsupport
