// Http2Codec: the HTTP/2 side of one client connection, chosen once per connection (ALPN
// h2, or the h2c preface on a plain listener). Wraps the nghttp2 server session and owns
// one Http2Stream per request; the DownstreamConnection stays the transport (socket, TLS,
// writer, deadlines) and feeds it plaintext, asking it for frames to send. No socket here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/downstream/access_log.h"
#include "proxy/http/head_writer.h"
#include "proxy/http/http2/server_session.h"

namespace proxy::downstream {

struct DownstreamContext;
class Http2Stream;

// What the codec and its streams need from the connection that carries them.
// Implemented by DownstreamConnection.
class Http2Host {
 public:
  virtual ~Http2Host() = default;
  virtual DownstreamContext& h2Context() = 0;
  // Client address, TLS and the X-Forwarded-Client-Cert value, for the forwarded fields.
  virtual http::ForwardContext h2Forward() = 0;
  // Peer and TLS fields of an access-log line.
  virtual void h2FillAccessLog(AccessLog::Entry& e) = 0;
  // Frames wait to be sent: write them now, or at the end of the current event when the
  // connection is inside a call that must not produce (may free closed streams then).
  virtual void h2Flush() = 0;
};

// Owned by its DownstreamConnection; loop thread only. Streams live from their request
// head to onStreamClose, then wait in a graveyard until collect() frees them (never
// inside one of their own calls).
class Http2Codec : public http2::ServerSession::Callbacks {
 public:
  explicit Http2Codec(Http2Host& host);
  ~Http2Codec() override;
  Http2Codec(const Http2Codec&) = delete;
  Http2Codec& operator=(const Http2Codec&) = delete;

  // Creates the session (our SETTINGS are queued). False only when out of memory.
  bool start();
  // Client plaintext in. False on a connection error: frames to send (a GOAWAY) may be
  // pending; the caller writes them, then closes.
  bool receive(const char* data, size_t len);
  // Appends frames to `out`, about `max_bytes` at most.
  void produce(std::string& out, size_t max_bytes);
  bool wantsWrite() const;
  bool wantsRead() const;
  bool receiving() const { return receiving_; }
  size_t openStreams() const { return streams_.size(); }
  // Streams that carried a request on this connection so far.
  uint64_t streamsSeen() const { return streams_seen_; }
  // Graceful shutdown: GOAWAY with last-stream-id 2^31-1 now; finalGoaway() later.
  void drain();
  void finalGoaway();
  bool goawaySent() const { return final_goaway_; }
  // The connection is closing: every stream lets go of its upstream and is freed.
  void closeAll();
  // Frees streams that closed (call from loop callbacks only).
  void collect();
  // The earliest stream deadline (loop ms), or UINT64_MAX; and the check when it passed.
  uint64_t nextDeadline() const;
  void checkDeadlines(uint64_t now_ms);
  const std::string& errorReason() const;

  http2::ServerSession& session() { return *session_; }
  Http2Host& host() { return host_; }

 private:
  // ServerSession::Callbacks
  void onRequestHead(int32_t stream_id, http2::RequestHead& head) override;
  void onRequestData(int32_t stream_id, const char* data, size_t len) override;
  void onRequestTrailers(int32_t stream_id, http2::HeaderFields& trailers) override;
  void onRequestEnd(int32_t stream_id) override;
  void onStreamClose(int32_t stream_id, uint32_t error_code) override;
  void onResponseDrained(int32_t stream_id) override;
  Http2Stream* find(int32_t stream_id);
  // Adds what the session counted since the last call to the worker's metrics.
  void syncCounters();

  Http2Host& host_;
  std::unique_ptr<http2::ServerSession> session_;
  std::unordered_map<int32_t, std::unique_ptr<Http2Stream>> streams_;
  std::vector<std::unique_ptr<Http2Stream>> graveyard_;
  http2::SessionCounters synced_;  // what syncCounters() already added
  bool receiving_ = false;
  bool final_goaway_ = false;
  bool closed_ = false;
  uint64_t streams_seen_ = 0;
};

}  // namespace proxy::downstream
