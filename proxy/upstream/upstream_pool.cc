#include "proxy/upstream/upstream_pool.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "proxy/common/log.h"
#include "proxy/upstream/upstream_connection.h"

namespace proxy::upstream {
namespace {
constexpr uint64_t kRecentlyReleasedMs = 1000;
}  // namespace

UpstreamPool::UpstreamPool(uv_loop_t* loop, const config::UpstreamConfig& config,
                           WorkerStats& stats, uv::ReadBuffer& read_buffer)
    : loop_(loop), config_(config), stats_(stats), read_buffer_(read_buffer) {
  if (config_.tcp) upstreamAddress();
}

UpstreamPool::~UpstreamPool() = default;

const sockaddr* UpstreamPool::upstreamAddress() {
  if (resolved_) return reinterpret_cast<const sockaddr*>(&address_);
  // Resolved once, when the worker starts (a literal IP resolves without a lookup). A
  // name that does not resolve then is retried at the next request, blocking this
  // loop only while the upstream is unusable anyway.
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(config_.tcp->port);
  int rc = getaddrinfo(config_.tcp->host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    log::error("upstream address does not resolve",
               {{"host", config_.tcp->host}, {"error", gai_strerror(rc)}});
    return nullptr;
  }
  std::memcpy(&address_, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  resolved_ = true;
  return reinterpret_cast<const sockaddr*>(&address_);
}

UpstreamConnection* UpstreamPool::checkout(ResponseSink* sink, bool head_request) {
  while (!idle_.empty()) {
    UpstreamConnection* conn = idle_.back();
    idle_.pop_back();
    stats_.upstream_connections_idle.sub();
    // An idle connection is read all the time, so an upstream close is normally seen
    // (and the connection dropped) by the loop. The peek catches one that arrived since
    // the last poll; it costs a system call per request, so it is skipped for a
    // connection released within the last second, which an upstream closes only with
    // Connection: close (never pooled).
    if (uv_now(loop_) - conn->idleSinceMs() < kRecentlyReleasedMs || conn->stillOpen()) {
      conn->attach(sink, head_request);
      return conn;
    }
    conn->close();
  }
  auto owned = std::make_unique<UpstreamConnection>(*this, next_id_++);
  UpstreamConnection* conn = owned.get();
  all_.emplace(conn, std::move(owned));
  int rc = conn->connect();
  if (rc < 0) {
    stats_.upstream_connect_failures.add();
    log::warn("upstream connect failed", {{"error", uv_strerror(rc)}});
    conn->close();
    return nullptr;
  }
  conn->attach(sink, head_request);
  return conn;
}

void UpstreamPool::release(UpstreamConnection* conn) {
  if (idle_.size() >= config_.max_idle_connections) {
    conn->close();
    return;
  }
  conn->enterIdle();
  idle_.push_back(conn);
  stats_.upstream_connections_idle.add();
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
  // close() never frees (that happens in the close callback), so iterating is safe.
  for (auto& entry : all_) entry.second->close();
}

}  // namespace proxy::upstream
