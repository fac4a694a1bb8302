// H2Stream: one request on the h2c upstream (gRPC call or other HTTP/2 request), from
// H2Pool::open() until its sink is told the outcome. Carries the request head and body
// (RequestBody, kept for a replay while small), hands response events to the
// ResponseSink, and owns the stream's flow-control credit. Rides one H2Connection at a
// time and may move to another when the upstream refused it. Never touches a socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "proxy/http/http2/client_session.h"
#include "proxy/upstream/response_sink.h"
#include "proxy/upstream/upstream_request.h"

namespace proxy::upstream {

class H2Connection;
class H2Pool;

// Owned by H2Pool (unique_ptr in its map); freed from the pool's zero timer once done,
// never inside a call. The caller of open() may use the pointer until its sink has been
// told onResponseComplete/onUpstreamError, or until it calls cancel(); calls made from
// inside those two callbacks are harmless no-ops. Once the stream is over (a failure may
// be on its way to the sink from the zero timer) every method is a no-op, and cancel()
// still silences the sink. Loop thread only.
class H2Stream : public UpstreamRequest {
 public:
  H2Stream(H2Pool& pool, ResponseSink* sink, http2::HeaderFields headers, bool end_stream);
  H2Stream(const H2Stream&) = delete;
  H2Stream& operator=(const H2Stream&) = delete;

  // Request body bytes (copied and queued; DATA frames respect the upstream's window).
  // Returns 0, or UV_ECANCELED when the stream is over, UV_EINVAL after endRequest().
  int sendBody(const char* data, size_t len);
  // End of the request: trailers (if non-null and non-empty) in a HEADERS frame with
  // END_STREAM, otherwise END_STREAM on the last DATA frame.
  void endRequest(const http2::HeaderFields* trailers);
  // Request bytes not yet framed towards the upstream (all of them while waiting for a
  // connection). onUpstreamDrained() tells when this fell below 64 KiB again.
  size_t queuedBytes() const override;
  // Response backpressure: while paused, consumed() credit is held back, so the
  // upstream stops once the stream window is spent.
  void pauseReading() override;
  void resumeReading() override;
  // The downstream accepted `n` response body bytes: the upstream may send as many more.
  void consumed(size_t n);
  // The downstream went away: RST_STREAM(CANCEL) upstream; the sink is never called
  // again. The pointer must not be used after this.
  void cancel();

  // UpstreamRequest: the calls above. Failures always reach the sink (from the pool's
  // zero timer), so nothing returns an error and nothing is replayed by the caller: the
  // pool retries what the upstream refused (GOAWAY, REFUSED_STREAM) itself.
  int writeBody(std::string_view data, bool) override {
    sendBody(data.data(), data.size());
    return 0;
  }
  int flushRequest() override { return 0; }  // frames go out from the connection's timer
  int endRequest(const http2::HeaderFields* trailers, bool) override {
    endRequest(trailers);
    return 0;
  }
  bool replayable() const override { return false; }
  std::string takeUnsent() override { return {}; }
  void responseConsumed(size_t n) override { consumed(n); }
  void release() override { cancel(); }

  // --- H2Pool and H2Connection ---
  enum class State { kWaiting, kOnConnection, kDone };
  State state() const { return state_; }
  bool done() const { return state_ == State::kDone; }
  const http2::HeaderFields& headers() const { return headers_; }
  // Null for a request without a body (END_STREAM on its HEADERS).
  http2::RequestBody* body() { return body_ ? &*body_ : nullptr; }
  H2Connection* connection() const { return connection_; }
  int32_t streamId() const { return stream_id_; }
  // A response head or body byte reached the sink: the request cannot be retried.
  bool responseStarted() const { return response_started_; }
  // The final (non-1xx) response head reached the sink: a failure now cuts a body.
  bool finalHeadSeen() const { return final_head_; }
  // The request's last frame (END_STREAM or trailers) has been produced.
  bool requestFramed() const;
  // Credit owed to the connection window: delivered but not consumed bytes.
  size_t unconsumedBytes() const { return unconsumed_ + held_credit_; }

  void attached(H2Connection* connection, int32_t stream_id);
  void detached();
  // Prepares a retry after the upstream refused the stream without processing it.
  // False when the request cannot be sent again (body past the replay limit, or the
  // retry budget is spent). `by_reset`: RST_STREAM REFUSED_STREAM (retried once)
  // rather than a GOAWAY.
  bool prepareRetry(bool by_reset);

  // Response events from the connection, inside its read callback (the sink may be
  // called). May finish the stream; check done() afterwards.
  void deliverHead(http::MessageHead& head);
  void deliverData(const char* data, size_t len);
  void deliverTrailers(http::MessageHead& trailers);
  // The response ended cleanly: detach, then onResponseComplete.
  void complete();
  // The exchange failed: detach (resetting the upstream stream if open), then tell the
  // sink. Only from a loop callback, never from a call the sink made.
  void fail(UpstreamError error, const char* detail);
  // The same, but the sink hears of it from the pool's zero timer (for failures found
  // inside a call the sink made, e.g. open()).
  void failLater(UpstreamError error, const char* detail);
  // Reports a failure recorded by failLater(). Called by the pool.
  void reportDeferred();
  // Tells the sink that one read event is done, if it saw anything of it.
  void eventDone();
  // Tells the sink the request bytes drained, if it was waiting for that.
  void notifyIfDrained();
  // Checks the deadlines at loop time `now_ms`: the response head within
  // response_timeout of the request's end, and a byte either way within
  // stream_idle_timeout. Fails the stream when one passed and returns true.
  bool checkDeadlines(uint64_t now_ms);
  // Loop time of the last byte either way.
  void touch();

 private:
  // Detaches (RST_STREAM(reset_code) if the upstream stream is unfinished), marks the
  // stream done and asks the pool to free it later.
  void finish(uint32_t reset_code);

  H2Pool& pool_;
  ResponseSink* sink_;
  http2::HeaderFields headers_;
  std::optional<http2::RequestBody> body_;
  State state_ = State::kWaiting;
  H2Connection* connection_ = nullptr;
  int32_t stream_id_ = -1;
  bool response_started_ = false;
  bool final_head_ = false;
  bool event_pending_ = false;  // the sink got events this read; owes onUpstreamEventDone
  bool drain_wanted_ = false;
  bool paused_ = false;
  size_t unconsumed_ = 0;   // delivered to the sink, not yet consumed()
  size_t held_credit_ = 0;  // consumed() while paused, not yet given to the upstream
  int goaway_retries_ = 0;
  int reset_retries_ = 0;
  uint64_t last_activity_ms_ = 0;
  bool request_ended_ = false;   // the whole request was queued
  uint64_t request_end_ms_ = 0;  // loop time it was
  std::optional<UpstreamError> deferred_error_;
  std::string deferred_detail_;
};

}  // namespace proxy::upstream
