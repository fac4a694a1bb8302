// UpstreamConnector: the seam between the upstream pools and the network. A connection
// asks it to connect the socket handle the connection owns; the connector picks the
// address (or unix path) and reports the outcome once, later, as a Status. One per worker,
// shared by the HTTP/1.1 and h2c pools; tests substitute a fake. Owns no connection and
// no socket; never calls a pool.
#pragma once

#include <uv.h>

#include <cstddef>

#include "proxy/common/status.h"

namespace proxy::upstream {

// TCP or unix-socket handle, as a member of its connection (which uv_close()s it).
union UpstreamSocket {
  uv_tcp_t tcp;
  uv_pipe_t pipe;
};

class UpstreamConnector {
 public:
  // Told how a connect attempt ended. Implemented by the upstream connections.
  class Client {
   public:
    virtual ~Client() = default;
    // ok: the socket is connected. Otherwise the reason (refused, unreachable, no such
    // name). Called once per attempt from a loop callback, never after abandon().
    virtual void onUpstreamConnected(const Status& status) = 0;
  };

  // One connect attempt: a member of the connection that makes it, so the attempt lives
  // exactly as long as the socket it connects. The connector's fields; callers only
  // read handle_open.
  struct Attempt {
    uv_connect_t req{};        // first member: the connector finds the attempt from it
    Client* client = nullptr;  // null once the outcome was reported or abandoned
    UpstreamSocket* socket = nullptr;
    size_t address = 0;            // which of the upstream's addresses was dialled
    bool handle_open = false;      // the socket handle exists: its owner must uv_close() it
    bool awaiting_lookup = false;  // parked until the upstream name resolves
  };

  virtual ~UpstreamConnector() = default;

  // Initialises `socket` (with `data` as its handle data) and starts connecting it on
  // behalf of `client`. The outcome reaches client->onUpstreamConnected later, never from
  // inside this call. An error Status means no attempt started and nothing will be
  // reported (e.g. out of file descriptors); attempt.handle_open still says whether the
  // handle must be closed.
  virtual Status connect(UpstreamSocket& socket, void* data, Client* client, Attempt& attempt) = 0;
  // The caller gives up on `attempt` (it is closing its socket): no report follows.
  // Harmless on an attempt that already reported.
  virtual void abandon(Attempt& attempt) = 0;
  // `attempt` did not connect within upstream.connect_timeout (the caller's timer): it is
  // abandoned, and the next attempt dials another address when there is one.
  virtual void timedOut(Attempt& attempt) = 0;
  // `attempt` connected, but the upstream closed or reset the socket, or never spoke its
  // protocol (h2c: no SETTINGS), before it could serve: a failed connect all the same, so
  // the next attempt dials another address when there is one.
  virtual void failedAfterConnect(const Attempt& attempt) = 0;
  // How many addresses a connection may be tried on in turn (1 for a unix socket); a
  // pool fails its waiting requests after that many connects failed in a row.
  virtual size_t addressCount() const = 0;
  // Worker shutdown: stops background lookups. Attempts must be abandoned first.
  virtual void close() = 0;
};

}  // namespace proxy::upstream
