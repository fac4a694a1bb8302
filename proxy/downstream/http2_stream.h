// Http2Stream: one request of an HTTP/2 client, from its head to the end of its
// response. Applies the forwarding policy (the same rules as HTTP/1.1), leases the
// upstream (gRPC calls over h2c through H2Pool, other requests over the HTTP/1.1 pool),
// relays body, trailers and end-of-stream both ways with flow control, turns upstream
// failures into local replies (JSON, or gRPC's trailers-only UNAVAILABLE), and writes
// the access-log line. Talks to the client only through the codec's ServerSession.
#pragma once

#include <cstdint>
#include <string>

#include "proxy/downstream/access_log.h"
#include "proxy/http/head_writer.h"
#include "proxy/http/http2/server_session.h"
#include "proxy/upstream/response_sink.h"

namespace proxy::upstream {
class UpstreamConnection;
class H2Stream;
}  // namespace proxy::upstream

namespace proxy::downstream {

class Http2Codec;

// Owned by Http2Codec, from onRequestHead until the session closes the stream (then
// freed from the codec's graveyard, outside its own calls). Loop thread only.
class Http2Stream : public upstream::ResponseSink {
 public:
  Http2Stream(Http2Codec& codec, int32_t id, uint64_t now_ms);
  ~Http2Stream() override;
  Http2Stream(const Http2Stream&) = delete;
  Http2Stream& operator=(const Http2Stream&) = delete;

  // Events from the client, in order (see ServerSession::Callbacks).
  void onRequestHead(http2::RequestHead& head);
  void onRequestData(const char* data, size_t len);
  void onRequestTrailers(http2::HeaderFields& trailers);
  void onRequestEnd();
  // Frames took buffered response bytes: the upstream may be read again.
  void onResponseDrained();
  // The session closed the stream (done, or reset by either side): let go of the
  // upstream; no more calls follow except the destructor.
  void onClosed(uint32_t error_code);
  // The stream's next deadline in loop ms: the request's (read_timeout) until it ended,
  // and server.write_timeout from the moment response bytes pile up because the client
  // does not open its window (the upstream is paused); UINT64_MAX when none runs.
  uint64_t deadline() const;
  // The deadline passed: 408 (or a reset once the response started).
  void onDeadline();

 private:
  // ResponseSink
  void onResponseHead(http::MessageHead& head) override;
  void onResponseBody(const char* data, size_t len) override;
  void onResponseTrailers(const http::MessageHead& trailers) override;
  void onResponseComplete() override;
  void onUpstreamError(upstream::UpstreamError error, const char* detail) override;
  void onUpstreamReplayable(std::string unsent, const char* detail) override;
  void onUpstreamEventDone() override;
  void onUpstreamDrained() override;

  bool startHttp1(const http2::RequestHead& head, const http::ForwardContext& fwd);
  bool startGrpc(const http2::RequestHead& head, const http::ForwardContext& fwd);
  // A flush towards the HTTP/1.1 upstream failed with `rc`: replay or answer.
  void http1WriteFailed(int rc);
  void endHttp1Request();
  // Sends the response head now if it is still held (see head_pending_).
  void submitHead(bool end_stream);
  // The proxy's own answer: JSON with `status`, or for gRPC a trailers-only 200 with
  // grpc-status (14 UNAVAILABLE, 4 DEADLINE_EXCEEDED) and grpc-message.
  void replyLocal(int status, const char* message);
  // Gives request bytes back to the client's window once the upstream took them.
  void consumeIfAccepted();
  size_t upstreamQueued() const;
  void pauseUpstream();
  void resumeUpstream();
  // Lets go of the upstream lease (closing an HTTP/1.1 connection mid-exchange,
  // cancelling an h2c stream).
  void releaseUpstream();
  void writeAccessLog();

  Http2Codec& codec_;
  int32_t id_;
  bool grpc_ = false;
  bool head_request_ = false;
  bool request_ended_ = false;
  bool chunked_ = false;           // HTTP/1.1 upstream: the request body is chunked
  bool response_started_ = false;  // a response head was submitted to the client
  bool head_pending_ = false;      // an upstream head is held until body or end
  bool done_ = false;              // the response ended or the stream was reset
  bool logged_ = false;
  bool paused_ = false;
  uint64_t paused_ms_ = 0;  // loop ms when paused_ turned true
  int replays_ = 0;
  upstream::UpstreamConnection* h1_ = nullptr;
  upstream::H2Stream* h2_ = nullptr;
  int status_ = 0;
  http2::HeaderFields held_head_;  // the upstream head, until submitHead()
  http2::HeaderFields trailers_;
  http2::HeaderFields request_trailers_;
  size_t unconsumed_ = 0;  // request bytes not yet given back to the client's window
  uint64_t start_ms_ = 0;
  uint64_t start_ns_ = 0;
  uint64_t request_bytes_ = 0;
  uint64_t response_bytes_ = 0;
  std::string method_;
  std::string path_;
  AccessLog::RequestFacts facts_;
};

}  // namespace proxy::downstream
