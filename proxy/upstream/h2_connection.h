// H2Connection: one h2c (HTTP/2 with prior knowledge) connection to the upstream, TCP or
// unix socket, multiplexing H2Streams through a ClientSession. The libuv side of the
// HTTP/2 upstream: socket, one write in flight, connect and idle timers, a zero timer that
// defers sending out of the sink's calls. Owned by H2Pool; streams are not its to free.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/http/http2/client_session.h"
#include "proxy/upstream/upstream_connector.h"
#include "proxy/uv/stream_writer.h"

namespace proxy::upstream {

class H2Pool;
class H2Stream;

// Owned by H2Pool (unique_ptr in its map). Loop thread only. close() starts the
// teardown; the pool frees it in the last close callback.
class H2Connection : public http2::ClientSession::Callbacks,
                     public uv::StreamWriter::Owner,
                     public UpstreamConnector::Client {
 public:
  enum class State { kConnecting, kReady, kDraining, kClosing };
  // Streams a new connection is expected to take once the upstream's SETTINGS arrive
  // (RFC 9113 §6.5.2 recommends allowing at least 100; nghttp2 assumes the same).
  static constexpr size_t kAssumedStreams = 100;

  H2Connection(H2Pool& pool, uint64_t id);
  ~H2Connection() override;
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  // Starts connecting through the pool's connector. Returns an error only when no connect
  // could be started (then close() it); a failed connect is reported to the pool later.
  Status connect();
  // Streams this connection can take now: the upstream's MAX_CONCURRENT_STREAMS less the
  // open ones once its SETTINGS arrived; 0 before that, and once going away.
  size_t room() const;
  // Connecting, or connected and waiting for the upstream's first SETTINGS: the pool
  // counts on it for kAssumedStreams more streams.
  bool awaitingSettings() const {
    return state_ == State::kConnecting || (state_ == State::kReady && !settings_seen_);
  }
  // Submits `stream`'s request. False when nghttp2 refused it (the caller fails the
  // stream). Never calls a sink; the frames go out from the zero timer.
  bool attach(H2Stream* stream);
  // Forgets `stream`; sends RST_STREAM(`reset_code`) if its upstream stream is still
  // open and not cleanly finished, and gives its unconsumed credit back to the connection
  // window. Never calls a sink.
  void detach(H2Stream* stream, uint32_t reset_code);
  // `stream` has new body bytes or its end.
  void resumeBody(H2Stream* stream);
  // `stream`'s downstream accepted `n` bytes: window credit for the upstream.
  void consume(H2Stream* stream, size_t n);
  // Sends what the session has from a zero timer (out of the caller's call stack).
  void scheduleFlush();

  // Starts teardown; streams still here fail with `detail`. Idempotent; never frees.
  // Calls sinks: only from a loop callback.
  void close(const char* detail);
  bool closing() const { return state_ == State::kClosing; }
  State state() const { return state_; }
  uint64_t id() const { return id_; }
  size_t streamCount() const { return streams_.size(); }
  const http2::SessionCounters& counters() const { return codec_->counters(); }

 private:
  // ClientSession callbacks (inside receive()/send()).
  void onResponseHead(int32_t id, http::MessageHead& head, bool end_stream) override;
  void onResponseData(int32_t id, const char* data, size_t len) override;
  void onResponseTrailers(int32_t id, http::MessageHead& trailers) override;
  void onResponseEnd(int32_t id) override;
  void onStreamClose(int32_t id, uint32_t error_code, bool reset_by_peer) override;
  void onRequestNotSent(int32_t id) override;
  void onGoaway(int32_t last_stream_id, uint32_t error_code) override;
  // Writer callback.
  void onWriteDone(int status) override;
  // Connector callback.
  void onUpstreamConnected(const Status& status) override;

  static void uvOnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void uvOnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void uvOnTimer(uv_timer_t* t);
  static void uvOnFlushTimer(uv_timer_t* t);
  static void uvOnClose(uv_handle_t* h);
  void onRead(ssize_t nread, const uv_buf_t* buf);
  // The connection is gone (EOF, a socket error, bytes that are not HTTP/2): closes it,
  // counting it as a failed connect when the upstream's SETTINGS never came.
  void lost(const char* detail);
  void onTimer();
  void onFlushTimer();
  // Frames what the session has into the socket while the writer is not backed up,
  // then tells streams whose body drained. May close this connection.
  void flush();
  // Closes when the session is over, arms the idle timer when no stream is left.
  void afterEvent();
  H2Stream* find(int32_t id);
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&handle_); }

  H2Pool& pool_;
  uint64_t id_;
  State state_ = State::kConnecting;
  UpstreamSocket handle_{};
  uv_timer_t timer_{};        // connect timeout, SETTINGS timeout, then idle timeout
  uv_timer_t flush_timer_{};  // zero timer: deferred flush()
  UpstreamConnector::Attempt attempt_{};
  int open_handles_ = 0;
  bool idle_timer_on_ = false;
  bool settings_seen_ = false;  // the upstream's first SETTINGS arrived
  uv::StreamWriter writer_;
  std::unique_ptr<http2::ClientSession> codec_;
  std::string out_;
  std::unordered_map<int32_t, H2Stream*> streams_;
  std::vector<H2Stream*> touched_;  // streams that got events in the current read
};

}  // namespace proxy::upstream
