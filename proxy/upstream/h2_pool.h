// H2Pool: a worker's h2c connections to the upstream and the requests (H2Streams) riding
// them. Opens a new connection only when every open one is at the upstream's
// SETTINGS_MAX_CONCURRENT_STREAMS, queues requests beyond (bounded), retries requests the
// upstream refused unprocessed, and enforces the per-stream deadlines. Owned by the
// Worker next to UpstreamPool, sharing its UpstreamConnector; owns every H2Connection and
// H2Stream. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "proxy/common/stats.h"
#include "proxy/config/config.h"
#include "proxy/http/http2/session_common.h"
#include "proxy/upstream/response_sink.h"
#include "proxy/upstream/upstream_connector.h"
#include "proxy/uv/read_buffer.h"

namespace proxy::upstream {

class H2Connection;
class H2Stream;

class H2Pool {
 public:
  // Connections per worker at most; requests beyond their capacity wait, at most
  // upstream.max_pending of them (beyond: kOverloaded).
  static constexpr size_t kMaxConnections = 4;

  // Counters the metrics will want (kept here until WorkerStats has h2 fields).
  struct Counters {
    uint64_t retries = 0;     // requests sent again after REFUSED_STREAM or GOAWAY
    uint64_t overloaded = 0;  // requests refused because the wait queue was full
    uint64_t connections_opened = 0;
    uint64_t streams_opened = 0;
  };

  // `connector` dials every connection; it must outlive the pool.
  H2Pool(uv_loop_t* loop, const config::UpstreamConfig& config, WorkerStats& stats,
         uv::ReadBuffer& read_buffer, UpstreamConnector* connector);
  ~H2Pool();
  H2Pool(const H2Pool&) = delete;
  H2Pool& operator=(const H2Pool&) = delete;

  // Starts a request. `headers` begin with :method :scheme (http) :authority :path, then
  // regular fields already filtered by the forwarding policy; `end_stream`: no body.
  // Returns nullptr only when no connection can be created (the caller answers 503 or
  // UNAVAILABLE); every other failure reaches sink->onUpstreamError later, never from
  // inside this call.
  // The stream keeps `headers` (moved in) for a replay.
  H2Stream* open(ResponseSink* sink, http2::HeaderFields headers, bool end_stream);
  // Shutdown: every stream's sink gets onUpstreamError, every connection and timer
  // closes; run the loop afterwards to let the close callbacks free them. Not from a
  // sink callback.
  void closeAll();
  size_t connectionCount() const { return connections_.size(); }
  size_t waitingCount() const { return waiting_.size(); }
  size_t streamCount() const { return streams_.size(); }
  const Counters& counters() const { return counters_; }
  // RST_STREAM and GOAWAY counts by error code and streams opened, summed over every
  // connection this pool has had (closed ones included).
  http2::SessionCounters sessionCounters() const;

  // --- H2Connection and H2Stream ---
  uv_loop_t* loop() const { return loop_; }
  const config::UpstreamConfig& config() const { return config_; }
  WorkerStats& stats() { return stats_; }
  uv::ReadBuffer& readBuffer() { return read_buffer_; }
  UpstreamConnector& connector() { return *connector_; }
  // Hands waiting streams to connections with room; opens a connection if they are full.
  void dispatch();
  // `stream` goes back to the front of the queue (refused unprocessed, or never sent).
  void requeue(H2Stream* stream);
  // `stream` leaves the queue (it finished while waiting).
  void removeWaiting(H2Stream* stream);
  // Counts a retry.
  // Counts a retry, in the worker's metrics too (upstream_retries_total covers both pools).
  void countRetry() {
    ++counters_.retries;
    stats_.upstream_retries.add();
  }
  // A connection could not connect: the waiting streams try another connection (on the
  // connector's next address) until every address failed in a row; then they fail unless
  // another live connection can take them.
  void onConnectFailed(H2Connection* conn, const char* detail);
  // A connection connected and got the upstream's SETTINGS.
  void onConnected() { failed_in_row_ = 0; }
  // `stream` is done: report its deferred failure, if any, and free it from the zero timer.
  void scheduleReap(H2Stream* stream);
  // Called from a connection's last close callback: frees it.
  void erase(H2Connection* conn);

 private:
  static void uvOnReapTimer(uv_timer_t* t);
  static void uvOnTickTimer(uv_timer_t* t);
  void reap();
  void tick();
  H2Connection* newConnection();

  uv_loop_t* loop_;
  const config::UpstreamConfig& config_;
  WorkerStats& stats_;
  uv::ReadBuffer& read_buffer_;
  uv_timer_t reap_timer_{};  // zero timer: deferred reports and frees
  uv_timer_t tick_timer_{};  // per-stream deadlines, while streams exist
  bool tick_on_ = false;
  bool closed_ = false;
  uint64_t next_id_ = 1;
  UpstreamConnector* connector_;
  size_t failed_in_row_ = 0;  // connects failed since the last that succeeded
  std::unordered_map<H2Connection*, std::unique_ptr<H2Connection>> connections_;
  std::unordered_map<H2Stream*, std::unique_ptr<H2Stream>> streams_;
  std::deque<H2Stream*> waiting_;
  std::vector<H2Stream*> finished_;  // done, freed by the next reap()
  Counters counters_;
  http2::SessionCounters closed_counters_;  // of the connections already freed
};

}  // namespace proxy::upstream
