// Test support for the Acceptor's unit tests: a fake Sink that owns bare accepted TCP
// handles (no TLS, no HTTP), blocking loopback clients, and a loop runner with a deadline.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "proxy/listener/acceptor.h"

namespace proxy::listener::testing {

// Accepts into plain uv_tcp_t handles and greets each client with one byte ("A"), so a
// client can tell that it was accepted. Closing a connection releases its slot.
class FakeSink : public Acceptor::Sink {
 public:
  explicit FakeSink(uv_loop_t* loop) : loop_(loop) {}
  ~FakeSink() override;
  void setAcceptor(Acceptor* acceptor) { acceptor_ = acceptor; }

  void acceptFrom(uv_stream_t* server) override;
  void onAcceptError(int) override { ++accept_errors; }

  // Closes the oldest open connection; its slot is released in the close callback.
  void closeOldest();
  // Closes every connection (for teardown).
  void closeAll();
  size_t open() const { return conns_.size() - closing_; }
  bool empty() const { return conns_.empty(); }

  int accepted = 0;         // uv_accept succeeded
  int accept_failures = 0;  // uv_accept failed (counted, released)
  int accept_errors = 0;    // accept(2) errors reported by the acceptor
  int released = 0;

 private:
  struct Conn {
    uv_tcp_t tcp{};
    FakeSink* sink = nullptr;
    uint64_t order = 0;
    bool closing = false;
  };
  static void uvOnClose(uv_handle_t* h);
  void close(Conn& c);

  uv_loop_t* loop_;
  Acceptor* acceptor_ = nullptr;
  uint64_t next_order_ = 0;
  size_t closing_ = 0;
  std::map<uint64_t, std::unique_ptr<Conn>> conns_;  // by accept order
};

// Runs the loop until `done` or `limit_ms` pass; returns done().
bool runUntil(uv_loop_t* loop, const std::function<bool()>& done, uint64_t limit_ms = 5000);

// A bound, not yet listening IPv4 loopback socket on an ephemeral port (what the Server
// hands a worker). Returns -1 on failure.
int boundSocket(uint16_t* port);

// A blocking TCP socket (not connected); -1 on failure.
int newClient();
// Connects `fd` to 127.0.0.1:port; true on success. Loopback connects complete in the
// kernel's backlog, whether or not anyone accepts.
bool connectClient(int fd, uint16_t port);

enum class ClientView { kNothingYet, kGreeted, kClosed };
// What the client has seen so far, without blocking.
ClientView peek(int fd);

}  // namespace proxy::listener::testing
