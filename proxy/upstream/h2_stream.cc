#include "proxy/upstream/h2_stream.h"

#include <uv.h>

#include <algorithm>
#include <utility>

#include "proxy/common/log.h"
#include "proxy/upstream/h2_connection.h"
#include "proxy/upstream/h2_pool.h"

namespace proxy::upstream {
namespace {

// Request bytes kept so that a request the upstream refused unprocessed (RST_STREAM
// REFUSED_STREAM, or above a GOAWAY's last-stream-id, RFC 9113 §8.7) can be sent again
// exactly. 64 KiB per stream covers a typical OTLP export; a larger body streams on
// without a copy and a refusal then fails it (kClosedEarly) instead of retrying.
constexpr size_t kReplayLimit = 64 * 1024;
// Queued request bytes below which a sink that saw more is told onUpstreamDrained().
constexpr size_t kLowWatermark = 64 * 1024;
// A request is sent again at most this often after GOAWAYs, and once after
// REFUSED_STREAM (issue 10 item 2): an upstream that refuses everything ends it.
constexpr int kMaxGoawayRetries = 3;
constexpr int kMaxResetRetries = 1;

}  // namespace

H2Stream::H2Stream(H2Pool& pool, ResponseSink* sink, http2::HeaderFields headers, bool end_stream)
    : pool_(pool), sink_(sink), headers_(std::move(headers)) {
  if (!end_stream) body_.emplace(kReplayLimit);
  touch();
  if (end_stream) {
    request_ended_ = true;
    request_end_ms_ = last_activity_ms_;
  }
}

int H2Stream::sendBody(const char* data, size_t len) {
  if (done()) return UV_ECANCELED;
  if (!body_ || body_->ended()) return UV_EINVAL;
  body_->append(data, len);
  touch();
  if (body_->unsent() >= kLowWatermark) drain_wanted_ = true;
  if (connection_ != nullptr) connection_->resumeBody(this);
  return 0;
}

void H2Stream::endRequest(const http2::HeaderFields* trailers) {
  if (done() || !body_ || body_->ended()) return;
  body_->end(trailers);
  touch();
  request_ended_ = true;
  request_end_ms_ = last_activity_ms_;
  if (connection_ != nullptr) connection_->resumeBody(this);
}

size_t H2Stream::queuedBytes() const { return body_ ? body_->unsent() : 0; }

bool H2Stream::requestFramed() const { return !body_ || (body_->ended() && body_->unsent() == 0); }

void H2Stream::pauseReading() { paused_ = true; }

void H2Stream::resumeReading() {
  paused_ = false;
  consumed(0);
}

void H2Stream::consumed(size_t n) {
  if (done()) return;
  n = std::min(n, unconsumed_);
  unconsumed_ -= n;
  held_credit_ += n;
  if (paused_ || connection_ == nullptr || held_credit_ == 0) return;
  connection_->consume(this, held_credit_);
  held_credit_ = 0;
}

void H2Stream::cancel() {
  sink_ = nullptr;  // also silences a failure already deferred
  if (!done()) finish(NGHTTP2_CANCEL);
}

void H2Stream::touch() { last_activity_ms_ = uv_now(pool_.loop()); }

void H2Stream::attached(H2Connection* connection, int32_t stream_id) {
  connection_ = connection;
  stream_id_ = stream_id;
  state_ = State::kOnConnection;
}

void H2Stream::detached() {
  connection_ = nullptr;
  stream_id_ = -1;
  if (state_ == State::kOnConnection) state_ = State::kWaiting;
  // Credit was returned to the old connection's window by its detach().
  unconsumed_ = 0;
  held_credit_ = 0;
}

bool H2Stream::prepareRetry(bool by_reset) {
  if (response_started_ || done()) return false;
  int& used = by_reset ? reset_retries_ : goaway_retries_;
  if (used >= (by_reset ? kMaxResetRetries : kMaxGoawayRetries)) return false;
  if (body_ && !body_->rewind()) return false;
  ++used;
  return true;
}

void H2Stream::deliverHead(http::MessageHead& head) {
  touch();
  response_started_ = true;
  if (head.status >= 200) final_head_ = true;
  event_pending_ = true;
  if (sink_ != nullptr) sink_->onResponseHead(head);
}

void H2Stream::deliverData(const char* data, size_t len) {
  touch();
  response_started_ = true;
  unconsumed_ += len;
  event_pending_ = true;
  if (sink_ != nullptr) sink_->onResponseBody(data, len);
}

void H2Stream::deliverTrailers(http::MessageHead& trailers) {
  touch();
  event_pending_ = true;
  if (sink_ != nullptr) sink_->onResponseTrailers(trailers);
}

void H2Stream::finish(uint32_t reset_code) {
  if (connection_ != nullptr) {
    connection_->detach(this, reset_code);
  } else if (state_ == State::kWaiting) {
    pool_.removeWaiting(this);
  }
  state_ = State::kDone;
  pool_.scheduleReap(this);
}

void H2Stream::complete() {
  ResponseSink* sink = sink_;
  sink_ = nullptr;
  finish(NGHTTP2_NO_ERROR);
  if (sink != nullptr) sink->onResponseComplete();
}

void H2Stream::fail(UpstreamError error, const char* detail) {
  if (done()) return;
  log::debug("h2 upstream stream failed",
             {{"stream", stream_id_}, {"reason", toString(error)}, {"detail", detail}});
  ResponseSink* sink = sink_;
  sink_ = nullptr;
  finish(NGHTTP2_CANCEL);
  if (sink != nullptr) sink->onUpstreamError(error, detail);
}

void H2Stream::failLater(UpstreamError error, const char* detail) {
  if (done()) return;
  finish(NGHTTP2_CANCEL);
  deferred_error_ = error;
  deferred_detail_ = detail;
}

void H2Stream::reportDeferred() {
  if (!deferred_error_) return;
  UpstreamError error = *deferred_error_;
  deferred_error_.reset();
  ResponseSink* sink = sink_;
  sink_ = nullptr;
  if (sink != nullptr) sink->onUpstreamError(error, deferred_detail_.c_str());
}

void H2Stream::eventDone() {
  if (!event_pending_) return;
  event_pending_ = false;
  if (sink_ != nullptr && !done()) sink_->onUpstreamEventDone();
}

void H2Stream::notifyIfDrained() {
  if (!drain_wanted_ || done() || queuedBytes() >= kLowWatermark) return;
  drain_wanted_ = false;
  if (sink_ != nullptr) sink_->onUpstreamDrained();
}

bool H2Stream::checkDeadlines(uint64_t now_ms) {
  if (done()) return false;
  const config::UpstreamConfig& cfg = pool_.config();
  const auto head_timeout = static_cast<uint64_t>(cfg.response_timeout.count());
  const auto idle_timeout = static_cast<uint64_t>(cfg.streamIdleTimeout().count());
  bool head_late = !final_head_ && request_ended_ && now_ms - request_end_ms_ >= head_timeout;
  // Silence counts against the upstream only while it owes something, as on HTTP/1.1
  // (UpstreamConnection::onActiveTimer): a free stream, window for the request bytes
  // queued, or the response once the request is whole or the answer has begun. A client
  // slow to send its body, or to take the answer (paused), is bounded by the client
  // side's read_timeout and write_timeout instead.
  bool owes = state_ == State::kWaiting || queuedBytes() > 0 ||
              (!paused_ && (request_ended_ || response_started_));
  if (!owes) last_activity_ms_ = now_ms;
  bool idle = now_ms - last_activity_ms_ >= idle_timeout;
  if (!head_late && !idle) return false;
  // Counted as the HTTP/1.1 pool counts the same endings (docs/metrics.md).
  if (state_ == State::kWaiting) {
    // Every connection stayed full (or none connected) the whole time: the upstream was
    // never asked, so this is a capacity problem (503), not an upstream timeout.
    pool_.stats().upstream_overloaded.add();
    fail(UpstreamError::kOverloaded, "no h2c upstream stream free within stream_idle_timeout");
  } else if (final_head_) {
    pool_.stats().upstream_timeouts.add();
    fail(UpstreamError::kStalled, "no byte either way within upstream.stream_idle_timeout");
  } else {
    pool_.stats().upstream_timeouts.add();
    fail(UpstreamError::kResponseTimeout,
         head_late ? "no response head within upstream.response_timeout"
                   : "no byte either way within upstream.stream_idle_timeout");
  }
  return true;
}

}  // namespace proxy::upstream
