#include "proxy/upstream/upstream_pool.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "proxy/common/log.h"
#include "proxy/upstream/upstream_connection.h"

namespace proxy::upstream {

UpstreamPool::UpstreamPool(uv_loop_t* loop, const config::UpstreamConfig& config,
                           WorkerStats& stats, uv::ReadBuffer& read_buffer)
    : loop_(loop), config_(config), stats_(stats), read_buffer_(read_buffer) {
  // Resolved once, when the worker starts and before it serves anyone, so the blocking
  // lookup stalls no client. A name that does not resolve then is looked up again in
  // the background (uv_getaddrinfo, on libuv's thread pool) when a request needs it.
  if (config_.tcp) resolveNow();
}

UpstreamPool::~UpstreamPool() = default;

bool UpstreamPool::resolveNow() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(config_.tcp->port);
  int rc = getaddrinfo(config_.tcp->host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    log::error("upstream address does not resolve",
               {{"host", config_.tcp->host}, {"error", gai_strerror(rc)}});
    return false;
  }
  storeAddresses(res);
  freeaddrinfo(res);
  return true;
}

void UpstreamPool::storeAddresses(const addrinfo* res) {
  addresses_.clear();
  preferred_ = 0;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    addresses_.push_back(ss);
  }
}

void UpstreamPool::resolveInBackground() {
  if (resolving_ || closing_all_) return;
  resolving_ = std::make_unique<uv_getaddrinfo_t>();
  resolving_->data = this;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  std::string port = std::to_string(config_.tcp->port);
  if (uv_getaddrinfo(loop_, resolving_.get(), &UpstreamPool::uvOnResolved,
                     config_.tcp->host.c_str(), port.c_str(), &hints) < 0) {
    resolving_.reset();
  }
}

void UpstreamPool::uvOnResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  auto* self = static_cast<UpstreamPool*>(req->data);
  if (status == 0 && res != nullptr) {
    self->storeAddresses(res);
    log::info("upstream address resolved", {{"host", self->config_.tcp->host}});
  }
  if (res != nullptr) uv_freeaddrinfo(res);
  self->resolving_.reset();  // libuv is done with the request
}

const sockaddr* UpstreamPool::upstreamAddress(size_t* index) {
  if (addresses_.empty()) {
    resolveInBackground();
    return nullptr;
  }
  *index = preferred_ % addresses_.size();
  return reinterpret_cast<const sockaddr*>(&addresses_[*index]);
}

void UpstreamPool::connectFailed(size_t index) {
  if (addresses_.size() > 1 && index == preferred_ % addresses_.size()) {
    preferred_ = (index + 1) % addresses_.size();
  }
}

UpstreamConnection* UpstreamPool::checkout(ResponseSink* sink, bool head_request,
                                           UpstreamError* why, bool fresh) {
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
    // the last poll: a request is never written to a connection already known closed.
    if (conn->stillOpen()) {
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
  int rc = conn->connect(wait);
  if (rc < 0) {
    stats_.upstream_connect_failures.add();
    log::warn("upstream connect failed", {{"error", uv_strerror(rc)}});
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
  if (resolving_) uv_cancel(reinterpret_cast<uv_req_t*>(resolving_.get()));
  // close() never frees (that happens in the close callback), so iterating a copy is
  // safe even though a sink told of the failure may lease nothing new (closing_all_).
  std::vector<UpstreamConnection*> conns;
  conns.reserve(all_.size());
  for (auto& entry : all_) conns.push_back(entry.second.get());
  for (UpstreamConnection* conn : conns) conn->shutdown();
}

}  // namespace proxy::upstream
