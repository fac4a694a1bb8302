// Acceptor: the accept loop of one worker's listening socket. Accepts while the connection
// count that all workers share is under max_connections, and otherwise leaves connections
// in the kernel's backlog until a slot frees. First half of the listener (config ->
// listener -> downstream): it knows nothing of what it accepts; a Sink does. Owns its two
// libuv handles. Loop thread only; never sees TLS or HTTP.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>

#include "proxy/common/status.h"

namespace proxy::listener {

// Owned by the Listener (or a test). Its handles are closed by closeHandles(); the owner
// frees it only after the loop has run their close callbacks.
class Acceptor {
 public:
  // What the acceptor hands each connection to (the Listener; a fake in tests).
  class Sink {
   public:
    virtual ~Sink() = default;
    // Takes the pending connection from `server` with uv_accept(). The connection counts
    // towards max_connections from this call on, even if uv_accept() fails; the sink calls
    // Acceptor::release() exactly once when it is gone. May call release() re-entrantly
    // only from a later loop callback, never from inside this call.
    virtual void acceptFrom(uv_stream_t* server) = 0;
    // accept(2) failed. On EMFILE/ENFILE libuv first frees its reserve descriptor to accept
    // and close what waits in the backlog, so the loop neither spins nor stops; what is
    // reported here is whatever it could not absorb that way.
    virtual void onAcceptError(int status) = 0;
  };

  // `connection_count` counts connections across all workers; it outlives the acceptor.
  Acceptor(uv_loop_t* loop, Sink& sink, std::atomic<uint32_t>& connection_count);
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  // Takes ownership of a bound (not yet listening) socket and starts accepting; 0 means
  // no limit. The fd is closed on failure too.
  Status start(int fd, uint32_t max_connections);
  // Stops accepting; connections already handed to the sink go on. Idempotent.
  void stopAccepting();
  // Closes both handles (stops accepting first). Idempotent.
  void closeHandles();
  // A connection handed to the sink is gone: frees its slot, and accepts a connection that
  // waits for one. May call Sink::acceptFrom() before it returns.
  void release();
  // True while a connection waits (in libuv and the backlog) for a free slot.
  bool acceptPendingForTest() const { return accept_pending_; }
  bool listeningForTest() const { return listening_; }

 private:
  static void uvOnConnection(uv_stream_t* server, int status);
  static void uvOnRetry(uv_timer_t* t);
  void onConnection(int status);
  void onRetry();
  bool atCapacity() const;
  void acceptOne();

  Sink& sink_;
  std::atomic<uint32_t>& connection_count_;
  uint32_t max_connections_ = 0;
  uv_tcp_t server_{};
  uv_timer_t retry_timer_{};
  bool listening_ = false;
  bool accept_pending_ = false;
};

}  // namespace proxy::listener
