#include "proxy/listener/acceptor.h"

#include <unistd.h>

#include <initializer_list>

#include "proxy/uv/stream_writer.h"

namespace proxy::listener {
namespace {

// While at max_connections, how often a worker checks whether another worker freed a slot
// (a slot this worker frees is taken at once, in release()).
constexpr uint64_t kCapacityRetryMs = 50;
constexpr int kBacklog = 511;  // as the Server's listen(2) before the worker starts

}  // namespace

Acceptor::Acceptor(uv_loop_t* loop, Sink& sink, std::atomic<uint32_t>& connection_count)
    : sink_(sink), connection_count_(connection_count) {
  uv_tcp_init(loop, &server_);
  server_.data = this;
  uv_timer_init(loop, &retry_timer_);
  retry_timer_.data = this;
}

Status Acceptor::start(int fd, uint32_t max_connections) {
  max_connections_ = max_connections;
  int rc = uv_tcp_open(&server_, fd);
  if (rc < 0) {
    ::close(fd);
    return Status::error("cannot adopt listening socket: " + uv::errorText(rc));
  }
  rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), kBacklog, &Acceptor::uvOnConnection);
  if (rc < 0) return Status::error("listen failed: " + uv::errorText(rc));
  listening_ = true;
  return Status::ok();
}

void Acceptor::uvOnConnection(uv_stream_t* server, int status) {
  static_cast<Acceptor*>(server->data)->onConnection(status);
}

void Acceptor::uvOnRetry(uv_timer_t* t) { static_cast<Acceptor*>(t->data)->onRetry(); }

bool Acceptor::atCapacity() const {
  return max_connections_ != 0 &&
         connection_count_.load(std::memory_order_relaxed) >= max_connections_;
}

void Acceptor::onConnection(int status) {
  if (status < 0) {
    sink_.onAcceptError(status);
    return;
  }
  if (!listening_) return;
  if (atCapacity()) {
    // libuv holds the accepted descriptor and stops polling the listening socket until we
    // call uv_accept(), so further connections wait in the kernel's backlog (APM Server's
    // own behaviour at max_connections). The timer notices slots other workers free.
    accept_pending_ = true;
    uv_timer_start(&retry_timer_, &Acceptor::uvOnRetry, kCapacityRetryMs, kCapacityRetryMs);
    return;
  }
  acceptOne();
}

void Acceptor::onRetry() {
  if (!accept_pending_ || !listening_) {
    uv_timer_stop(&retry_timer_);
    return;
  }
  if (!atCapacity()) {
    uv_timer_stop(&retry_timer_);
    acceptOne();
  }
}

void Acceptor::acceptOne() {
  accept_pending_ = false;
  connection_count_.fetch_add(1, std::memory_order_relaxed);
  sink_.acceptFrom(reinterpret_cast<uv_stream_t*>(&server_));
}

void Acceptor::release() {
  connection_count_.fetch_sub(1, std::memory_order_relaxed);
  if (accept_pending_ && listening_ && !atCapacity()) {
    uv_timer_stop(&retry_timer_);
    acceptOne();
  }
}

void Acceptor::stopAccepting() {
  if (!listening_) return;
  listening_ = false;
  accept_pending_ = false;
  uv_timer_stop(&retry_timer_);
  auto* h = reinterpret_cast<uv_handle_t*>(&server_);
  if (!uv_is_closing(h)) uv_close(h, nullptr);
}

void Acceptor::closeHandles() {
  stopAccepting();
  for (auto* h :
       {reinterpret_cast<uv_handle_t*>(&retry_timer_), reinterpret_cast<uv_handle_t*>(&server_)}) {
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  }
}

}  // namespace proxy::listener
