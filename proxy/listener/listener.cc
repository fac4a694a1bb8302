#include "proxy/listener/listener.h"

#include <unistd.h>

#include <vector>

#include "proxy/common/log.h"
#include "proxy/uv/stream_writer.h"

namespace proxy::listener {
namespace {

// While at max_connections, how often a worker checks whether another worker freed a slot.
constexpr uint64_t kCapacityRetryMs = 50;
constexpr int kBacklog = 511;  // as the Server's listen(2) before the worker starts

}  // namespace

Listener::Listener(uv_loop_t* loop_in, std::atomic<uint32_t>& connection_count)
    : connection_count_(connection_count) {
  loop = loop_in;
  uv_tcp_init(loop, &server_);
  server_.data = this;
  uv_timer_init(loop, &retry_timer_);
  retry_timer_.data = this;
}

Listener::~Listener() = default;

Status Listener::start(int fd) {
  int rc = uv_tcp_open(&server_, fd);
  if (rc < 0) {
    ::close(fd);
    return Status::error("cannot adopt listening socket: " + uv::errorText(rc));
  }
  rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), kBacklog, &Listener::uvOnConnection);
  if (rc < 0) return Status::error("listen failed: " + uv::errorText(rc));
  listening_ = true;
  return Status::ok();
}

void Listener::uvOnConnection(uv_stream_t* server, int status) {
  static_cast<Listener*>(server->data)->onConnection(status);
}

bool Listener::atCapacity() const {
  uint32_t max = config->server.max_connections;
  return max != 0 && connection_count_.load(std::memory_order_relaxed) >= max;
}

void Listener::onConnection(int status) {
  if (status < 0) {
    // EMFILE/ENFILE: libuv accepts and drops the connection with its reserve descriptor,
    // so we neither spin nor crash; say so at most once a second.
    stats->connections_rejected.add();
    uint64_t now = uv_now(loop);
    if (now - last_accept_error_log_ms_ >= 1000) {
      last_accept_error_log_ms_ = now;
      log::warn("accept failed", {{"error", uv::errorText(status)}});
    }
    return;
  }
  if (!listening_) return;
  if (atCapacity()) {
    // Not calling uv_accept makes libuv stop polling the listening socket until we do
    // (APM Server's own behaviour at max_connections).
    accept_pending_ = true;
    uv_timer_start(&retry_timer_, &Listener::uvOnRetry, kCapacityRetryMs, kCapacityRetryMs);
    return;
  }
  acceptOne();
}

void Listener::uvOnRetry(uv_timer_t* t) {
  auto* self = static_cast<Listener*>(t->data);
  if (!self->accept_pending_ || !self->listening_) {
    uv_timer_stop(t);
    return;
  }
  if (!self->atCapacity()) {
    uv_timer_stop(t);
    self->acceptOne();
  }
}

void Listener::acceptOne() {
  accept_pending_ = false;
  auto owned = std::make_unique<downstream::DownstreamConnection>(*this, next_id_++);
  downstream::DownstreamConnection* conn = owned.get();
  connections_.emplace(conn, std::move(owned));
  connection_count_.fetch_add(1, std::memory_order_relaxed);
  // A failed accept closes the connection, which erases itself in its close callback.
  (void)conn->accept(reinterpret_cast<uv_stream_t*>(&server_));
}

void Listener::erase(downstream::DownstreamConnection* conn) {
  if (connections_.erase(conn) > 0) connection_count_.fetch_sub(1, std::memory_order_relaxed);
  if (accept_pending_ && listening_ && !atCapacity()) {
    uv_timer_stop(&retry_timer_);
    acceptOne();
  }
}

void Listener::stopAccepting() {
  if (!listening_) return;
  listening_ = false;
  uv_timer_stop(&retry_timer_);
  auto* h = reinterpret_cast<uv_handle_t*>(&server_);
  if (!uv_is_closing(h)) uv_close(h, nullptr);
}

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
  stopAccepting();
  auto* t = reinterpret_cast<uv_handle_t*>(&retry_timer_);
  if (!uv_is_closing(t)) uv_close(t, nullptr);
  auto* h = reinterpret_cast<uv_handle_t*>(&server_);
  if (!uv_is_closing(h)) uv_close(h, nullptr);
}

}  // namespace proxy::listener
