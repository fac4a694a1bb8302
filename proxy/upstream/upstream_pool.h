// UpstreamPool: a worker's keep-alive connections to the intake server. Checks out an
// idle connection (most recently used first) or dials a new one, takes clean ones back
// after their exchange, and closes idle ones after upstream.idle_timeout. Last stage of
// the data flow. Owns every UpstreamConnection of its worker. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "proxy/common/stats.h"
#include "proxy/config/config.h"
#include "proxy/upstream/response_sink.h"
#include "proxy/uv/read_buffer.h"

namespace proxy::upstream {

class UpstreamConnection;

class UpstreamPool {
 public:
  UpstreamPool(uv_loop_t* loop, const config::UpstreamConfig& config, WorkerStats& stats,
               uv::ReadBuffer& read_buffer);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // Leases a connection to `sink`: a live idle one, or a new one that is still
  // connecting (request bytes wait in it). Returns nullptr only when no socket could
  // be created (e.g. out of file descriptors); the caller answers 502.
  UpstreamConnection* checkout(ResponseSink* sink, bool head_request);
  // A connection finished a clean exchange and may be reused.
  void release(UpstreamConnection* conn);
  // Called from a connection's last close callback: frees it.
  void erase(UpstreamConnection* conn);
  // Closes every connection (shutdown). Leased ones report an error to their sink.
  void closeAll();

  uv_loop_t* loop() const { return loop_; }
  // The resolved upstream TCP address, or nullptr when it could not be resolved.
  const sockaddr* upstreamAddress();
  const config::UpstreamConfig& config() const { return config_; }
  WorkerStats& stats() { return stats_; }
  uv::ReadBuffer& readBuffer() { return read_buffer_; }
  size_t idleCount() const { return idle_.size(); }
  size_t size() const { return all_.size(); }

 private:
  void removeIdle(UpstreamConnection* conn);

  uv_loop_t* loop_;
  const config::UpstreamConfig& config_;
  WorkerStats& stats_;
  uv::ReadBuffer& read_buffer_;
  uint64_t next_id_ = 1;
  sockaddr_storage address_{};
  bool resolved_ = false;
  std::unordered_map<UpstreamConnection*, std::unique_ptr<UpstreamConnection>> all_;
  std::vector<UpstreamConnection*> idle_;  // most recently released last
  friend class UpstreamConnection;
};

}  // namespace proxy::upstream
