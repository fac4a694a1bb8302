// Listener: a worker's listening socket (bound with SO_REUSEPORT by the Server, one per
// worker; its accept loop is the Acceptor) and every DownstreamConnection it accepted.
// Second stage of the data flow: config -> listener -> downstream -> upstream. Owns the
// connections; loop thread only.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include "proxy/common/status.h"
#include "proxy/downstream/downstream_connection.h"
#include "proxy/listener/acceptor.h"

namespace proxy::listener {

// Owned by the Worker. Frees each connection in its last close callback (erase()).
class Listener : public downstream::DownstreamContext, private Acceptor::Sink {
 public:
  // `connection_count` counts connections across all workers (for max_connections).
  Listener(uv_loop_t* loop, std::atomic<uint32_t>& connection_count);
  ~Listener() override;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Takes ownership of a bound (not yet listening) socket and starts accepting, up to
  // config->server.max_connections across all workers. `config` must be set.
  Status start(int fd);
  // Stops accepting; established connections go on. Idempotent.
  void stopAccepting();
  // Graceful shutdown of every connection (see DownstreamConnection::drain).
  void drainAll();
  // Closes every connection now (drain deadline).
  void closeAll();
  // Closes the listener's own handles; the loop can finish once connections are gone.
  void closeHandles();
  size_t connectionCount() const { return connections_.size(); }

  void erase(downstream::DownstreamConnection* conn) override;

 private:
  // Acceptor::Sink
  void acceptFrom(uv_stream_t* server) override;
  void onAcceptError(int status) override;

  Acceptor acceptor_;
  uv::FlushQueue flush_queue_;
  uint64_t next_id_ = 1;
  uint64_t last_accept_error_log_ms_ = 0;
  std::unordered_map<downstream::DownstreamConnection*,
                     std::unique_ptr<downstream::DownstreamConnection>>
      connections_;
};

}  // namespace proxy::listener
