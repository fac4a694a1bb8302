// UpstreamPool: a worker's keep-alive connections to the intake server. Checks out an
// idle connection (most recently used first) or dials a new one, takes clean ones back
// after their exchange, and closes idle ones after upstream.idle_timeout. Caps the
// connections per worker (upstream.max_connections); requests beyond wait in a bounded
// queue (upstream.max_pending). Last stage of the data flow. Owns every
// UpstreamConnection of its worker; sockets come from the worker's UpstreamConnector.
// Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "proxy/common/stats.h"
#include "proxy/config/config.h"
#include "proxy/http/head_writer.h"
#include "proxy/upstream/response_sink.h"
#include "proxy/upstream/upstream_connector.h"
#include "proxy/uv/read_buffer.h"

namespace proxy::upstream {

class UpstreamConnection;

class UpstreamPool {
 public:
  // An idle connection is reused without asking the kernel whether the upstream closed
  // it (a recv(MSG_PEEK), one system call per request) when the upstream is on this host
  // (UpstreamConnection::localPeer), the connection went idle less than this long ago,
  // and the whole request fits the copy kept for a replay: an upstream closes idle
  // connections after seconds (APM Server: 45 s), so within this time only its shutdown
  // can have closed it, and a request written into a connection a local upstream closed
  // draws its RST at once and is sent again whole (docs/http.md, "Retries"). Any other
  // request, an older idle connection, or an upstream across a network (whose RST may
  // come later than the proxy waits for it) is checked first.
  static constexpr uint64_t kTrustedIdleMs = 1000;

  // `connector` dials every connection; it must outlive the pool.
  UpstreamPool(uv_loop_t* loop, const config::UpstreamConfig& config, WorkerStats& stats,
               uv::ReadBuffer& read_buffer, UpstreamConnector* connector);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // Leases a connection to `sink`: a live idle one, a new one that is still connecting,
  // or, when max_connections are open, one that waits for a free slot (request bytes
  // wait in it either way). Returns nullptr when the request cannot be taken at all:
  // `*why` is then kOverloaded (queue full: answer 503) or kConnectFailed (no socket
  // could be created, e.g. out of file descriptors: answer 502).
  // `fresh`: never an idle connection (a replay goes on a new one: the idle ones may be
  // closing for the same reason as the one that failed). `request_bytes`: an upper bound
  // on the request's bytes towards the upstream (head and body), http::kUnknownBytes
  // when the codec cannot bound it; see kTrustedIdleMs.
  UpstreamConnection* checkout(ResponseSink* sink, bool head_request, UpstreamError* why,
                               bool fresh = false, uint64_t request_bytes = http::kUnknownBytes);
  // A connection finished a clean exchange and may be reused.
  void release(UpstreamConnection* conn);
  // Called from a connection's last close callback: frees it.
  void erase(UpstreamConnection* conn);
  // Closes every connection (shutdown). Leased ones report an error to their sink.
  void closeAll();

  uv_loop_t* loop() const { return loop_; }
  UpstreamConnector& connector() { return *connector_; }
  // Called by a connection as it starts closing; `held_slot` = it counted against
  // max_connections. May start a waiting connection (never calls a sink).
  void slotFreed(UpstreamConnection* conn, bool held_slot);
  const config::UpstreamConfig& config() const { return config_; }
  WorkerStats& stats() { return stats_; }
  uv::ReadBuffer& readBuffer() { return read_buffer_; }
  size_t idleCount() const { return idle_.size(); }
  size_t size() const { return all_.size(); }
  size_t waitingCount() const { return waiting_.size(); }
  size_t slotsInUse() const { return slots_; }

 private:
  void removeIdle(UpstreamConnection* conn);

  uv_loop_t* loop_;
  const config::UpstreamConfig& config_;
  WorkerStats& stats_;
  uv::ReadBuffer& read_buffer_;
  UpstreamConnector* connector_;
  uint64_t next_id_ = 1;
  size_t slots_ = 0;  // connecting, active or idle connections
  bool closing_all_ = false;
  std::unordered_map<UpstreamConnection*, std::unique_ptr<UpstreamConnection>> all_;
  std::vector<UpstreamConnection*> idle_;    // most recently released last
  std::deque<UpstreamConnection*> waiting_;  // oldest first
  friend class UpstreamConnection;
};

}  // namespace proxy::upstream
