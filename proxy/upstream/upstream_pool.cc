#include "proxy/upstream/upstream_pool.h"

#include <algorithm>

#include "proxy/common/log.h"
#include "proxy/upstream/upstream_connection.h"

namespace proxy::upstream {

UpstreamPool::UpstreamPool(uv_loop_t* loop, const config::UpstreamConfig& config,
                           WorkerStats& stats, uv::ReadBuffer& read_buffer,
                           UpstreamConnector* connector)
    : loop_(loop),
      config_(config),
      stats_(stats),
      read_buffer_(read_buffer),
      connector_(connector) {}

UpstreamPool::~UpstreamPool() = default;

UpstreamConnection* UpstreamPool::checkout(ResponseSink* sink, bool head_request,
                                           UpstreamError* why, bool fresh, uint64_t request_bytes) {
  if (closing_all_) {
    *why = UpstreamError::kConnectFailed;
    return nullptr;
  }
  while (!fresh && !idle_.empty()) {
    UpstreamConnection* conn = idle_.back();
    idle_.pop_back();
    stats_.upstream_connections_idle.sub();
    // An idle connection is read all the time, so an upstream close is normally seen
    // (and the connection dropped) by the loop. The peek catches one that arrived since
    // the last poll; it is skipped only where a write into a closed connection is
    // replayed whole (kTrustedIdleMs).
    bool trusted = conn->localPeer() && request_bytes <= UpstreamConnection::kReplayLimit &&
                   uv_now(loop_) - conn->idleSinceMs() < kTrustedIdleMs;
    if (trusted || conn->stillOpen()) {
      conn->attach(sink, head_request);
      return conn;
    }
    conn->close();
  }
  bool wait = slots_ >= config_.max_connections;
  if (wait && waiting_.size() >= config_.max_pending) {
    stats_.upstream_overloaded.add();
    *why = UpstreamError::kOverloaded;
    return nullptr;
  }
  auto owned = std::make_unique<UpstreamConnection>(*this, next_id_++);
  UpstreamConnection* conn = owned.get();
  all_.emplace(conn, std::move(owned));
  if (wait) {
    waiting_.push_back(conn);
  } else {
    ++slots_;
  }
  Status st = conn->connect(wait);
  if (!st) {
    stats_.upstream_connect_failures.add();
    log::warn("upstream connect failed", {{"error", st.message()}});
    conn->close();
    *why = UpstreamError::kConnectFailed;
    return nullptr;
  }
  conn->attach(sink, head_request);
  return conn;
}

void UpstreamPool::release(UpstreamConnection* conn) {
  // With requests waiting for a slot, this connection's slot goes to them instead.
  if (idle_.size() >= config_.max_idle_connections || !waiting_.empty()) {
    conn->close();
    return;
  }
  conn->enterIdle();
  idle_.push_back(conn);
  stats_.upstream_connections_idle.add();
}

void UpstreamPool::slotFreed(UpstreamConnection* conn, bool held_slot) {
  if (!held_slot) {
    auto it = std::find(waiting_.begin(), waiting_.end(), conn);
    if (it != waiting_.end()) waiting_.erase(it);
    return;
  }
  if (slots_ > 0) --slots_;
  if (closing_all_) return;
  while (!waiting_.empty() && slots_ < config_.max_connections) {
    UpstreamConnection* next = waiting_.front();
    waiting_.pop_front();
    ++slots_;
    next->connectNow();
  }
}

void UpstreamPool::removeIdle(UpstreamConnection* conn) {
  auto it = std::find(idle_.begin(), idle_.end(), conn);
  if (it != idle_.end()) {
    idle_.erase(it);
    stats_.upstream_connections_idle.sub();
  }
}

void UpstreamPool::erase(UpstreamConnection* conn) { all_.erase(conn); }

void UpstreamPool::closeAll() {
  closing_all_ = true;
  // close() never frees (that happens in the close callback), so iterating a copy is
  // safe even though a sink told of the failure may lease nothing new (closing_all_).
  std::vector<UpstreamConnection*> conns;
  conns.reserve(all_.size());
  for (auto& entry : all_) conns.push_back(entry.second.get());
  for (UpstreamConnection* conn : conns) conn->shutdown();
}

}  // namespace proxy::upstream
