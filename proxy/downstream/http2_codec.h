// Http2Codec: the HTTP/2 side of one client connection, chosen once per connection (ALPN
// h2, or the h2c preface on a plain listener). Wraps the nghttp2 server session, owns one
// Http2Stream per request, and keeps the connection-level deadlines of HTTP/2 (idle, the
// GOAWAY grace of a drain). The transport is its CodecHost; no socket here.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/common/flat_map.h"
#include "proxy/downstream/server_codec.h"
#include "proxy/http/http2/server_session.h"

namespace proxy::downstream {

struct DownstreamContext;
class Http2Stream;

// Owned by its DownstreamConnection; loop thread only. Streams live from their request
// head to onStreamClose, then wait in a graveyard until collect() frees them (never
// inside one of their own calls).
class Http2Codec : public ServerCodec, public http2::ServerSession::Callbacks {
 public:
  explicit Http2Codec(CodecHost& host);
  ~Http2Codec() override;
  Http2Codec(const Http2Codec&) = delete;
  Http2Codec& operator=(const Http2Codec&) = delete;

  // Creates the session (our SETTINGS are queued). False only when out of memory.
  bool start();

  // ServerCodec. receive() takes every byte; on a connection error the session's GOAWAY
  // is sent and the connection finishes.
  size_t receive(const char* data, size_t len) override;
  bool acceptsInput() const override { return true; }
  bool requestBlocked() const override { return false; }
  // Frames wait in the session while the write queue is full.
  bool readBlocked() const override;
  void produce() override;
  std::optional<CloseReason> ended() override;
  void onWriteDone() override;
  void runQueuedFlush() override;
  void collect() override;
  uint64_t deadline() const override;
  void onDeadline(uint64_t now_ms) override;
  void drain() override;
  bool idle() const override { return openStreams() == 0; }
  EofAction onPeerEof() override { return EofAction::kIdle; }
  void closeAll() override;
  uint64_t requestsServed() const override { return requests_served_; }

  // Frames wait to be sent: write them at the end of the loop's round of I/O
  // (CodecHost::flushLater), or at the end of the pump pass or receive() the connection
  // is inside.
  void flushSoon();
  // Why the connection ends once its last stream has: a drain, else the idle timeout.
  CloseReason endReason() const;
  // Why a session that wants nothing more ended.
  CloseReason sessionEndReason() const;
  bool receiving() const { return receiving_; }
  size_t openStreams() const { return streams_.size(); }
  // Streams that carried a request on this connection so far.
  uint64_t streamsSeen() const { return streams_seen_; }
  // A stream's upstream response ended (its end or trailers are queued), as
  // Http1Codec::encodeEnd counts one.
  void responseEnded() { ++requests_served_; }
  bool goawaySent() const { return final_goaway_; }

  http2::ServerSession& session() { return *session_; }
  CodecHost& host() { return host_; }

 private:
  // ServerSession::Callbacks
  void onRequestHead(int32_t stream_id, http2::RequestHead& head) override;
  void onRequestData(int32_t stream_id, const char* data, size_t len) override;
  void onRequestTrailers(int32_t stream_id, http2::HeaderFields& trailers) override;
  void onRequestEnd(int32_t stream_id) override;
  void onStreamClose(int32_t stream_id, uint32_t error_code) override;
  void onResponseDrained(int32_t stream_id) override;
  Http2Stream* find(int32_t stream_id);
  void finalGoaway();
  // The earliest stream deadline (loop ms), or UINT64_MAX.
  uint64_t streamDeadline() const;
  // How long the connection may sit without a stream: request_header_timeout before the
  // first request, as for HTTP/1.1, so a silent client cannot hold a connection long.
  uint64_t idleTimeoutMs() const;
  // Adds what the session counted since the last call to the worker's metrics.
  void syncCounters();

  CodecHost& host_;
  std::unique_ptr<http2::ServerSession> session_;
  FlatMap<int32_t, std::unique_ptr<Http2Stream>> streams_;
  std::vector<std::unique_ptr<Http2Stream>> graveyard_;
  bool receiving_ = false;
  bool final_goaway_ = false;
  bool closed_ = false;
  uint32_t requests_served_ = 0;  // in the bools' padding: no bytes added per connection
  uint64_t streams_seen_ = 0;
  uint64_t drain_started_ms_ = 0;  // loop ms of the graceful GOAWAY; 0 = not draining
};

}  // namespace proxy::downstream
