#include "proxy/listener/listener.h"

#include <vector>

#include "proxy/common/log.h"
#include "proxy/uv/stream_writer.h"

namespace proxy::listener {

Listener::Listener(uv_loop_t* loop_in, std::atomic<uint32_t>& connection_count)
    : acceptor_(loop_in, *this, connection_count), flush_queue_(loop_in) {
  loop = loop_in;
  flush_queue = &flush_queue_;
}

Listener::~Listener() = default;

Status Listener::start(int fd) { return acceptor_.start(fd, config->server.max_connections); }

void Listener::acceptFrom(uv_stream_t* server) {
  auto owned = std::make_unique<downstream::DownstreamConnection>(*this, next_id_++);
  downstream::DownstreamConnection* conn = owned.get();
  connections_.emplace(conn, std::move(owned));
  // A failed accept closes the connection, which erases itself in its close callback.
  (void)conn->accept(server);
}

void Listener::onAcceptError(int status) {
  stats->connections_rejected.add();
  uint64_t now = uv_now(loop);
  if (now - last_accept_error_log_ms_ >= 1000) {
    last_accept_error_log_ms_ = now;
    log::warn("accept failed", {{"error", uv::errorText(status)}});
  }
}

void Listener::erase(downstream::DownstreamConnection* conn) {
  if (connections_.erase(conn) > 0) acceptor_.release();
}

void Listener::stopAccepting() { acceptor_.stopAccepting(); }

void Listener::drainAll() {
  draining = true;
  // drain() may close (never free) connections, so iterating the map is safe; copy the
  // pointers anyway so no future change to drain() can invalidate the iteration.
  std::vector<downstream::DownstreamConnection*> all;
  all.reserve(connections_.size());
  for (auto& entry : connections_) all.push_back(entry.first);
  for (auto* c : all) c->drain();
}

void Listener::closeAll() {
  std::vector<downstream::DownstreamConnection*> all;
  all.reserve(connections_.size());
  for (auto& entry : connections_) all.push_back(entry.first);
  for (auto* c : all) c->close(downstream::CloseReason::kShutdown);
}

void Listener::closeHandles() {
  acceptor_.closeHandles();
  flush_queue_.closeHandle();
}

}  // namespace proxy::listener
