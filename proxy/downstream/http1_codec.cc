#include "proxy/downstream/http1_codec.h"

#include <uv.h>

#include "proxy/common/log.h"
#include "proxy/downstream/downstream_connection.h"
#include "proxy/downstream/downstream_limits.h"
#include "proxy/upstream/upstream_connection.h"

namespace proxy::downstream {

Http1Codec::Http1Codec(CodecHost& host)
    : host_(host),
      parser_(http::Http1Parser::Kind::kRequest, *this,
              host.context().config->server.max_header_size),
      // A connection that starts while the proxy drains answers one request, then closes.
      close_after_(host.context().draining) {}

Http1Codec::~Http1Codec() { closeAll(); }

// ---- the request side ----

bool Http1Codec::acceptsInput() const { return !parser_.paused() && !requestBlocked(); }

bool Http1Codec::requestBlocked() const {
  return upstream_ != nullptr && upstream_->queuedBytes() > kHighWatermark;
}

size_t Http1Codec::receive(const char* data, size_t len) {
  const char* start = data;
  while (len > 0 && host_.open() && !parser_.paused()) {
    // Pipelining: the next request is parsed only once the current response is out.
    if (request_state_ == RequestState::kIdle && response_state_ != ResponseState::kNone) break;
    http::Http1Parser::ExecResult r = parser_.execute(data, len);
    if (host_.closing()) return 0;
    if (request_state_ == RequestState::kIdle && parser_.inMessage()) {
      beginRequest();  // the head is still incomplete: its timer starts now
      host_.rearmTimer();
    }
    data += r.consumed;
    len -= r.consumed;
    request_bytes_ += r.consumed;
    if (r.outcome == http::Http1Parser::Outcome::kError) {
      onParseError();
      break;
    }
    if (r.outcome == http::Http1Parser::Outcome::kPaused) break;
  }
  return static_cast<size_t>(data - start);
}

void Http1Codec::onParseError() {
  switch (parser_.error()) {
    case http::ParseError::kHeadTooLarge:
      respondLocal(431, "request header fields too large");
      break;
    case http::ParseError::kUnsupported:
      respondLocal(405, "method not supported by the proxy");
      break;
    default:
      log::debug("bad request", {{"conn", host_.connectionId()},
                                 {"peer", host_.peerIp()},
                                 {"error", parser_.errorReason()}});
      respondLocal(400, "malformed HTTP request");
      break;
  }
}

void Http1Codec::beginRequest() {
  request_state_ = RequestState::kHead;
  request_start_ms_ = uv_now(host_.context().loop);
  request_start_ns_ = uv_hrtime();
  request_done_ns_ = 0;
  request_bytes_ = 0;
  upstream_start_ns_ = 0;
  replays_ = 0;
}

bool Http1Codec::onHead(http::MessageHead& head) {
  DownstreamContext& ctx = host_.context();
  // A head that arrived in one read was never seen half-done: its request starts here.
  if (request_state_ == RequestState::kIdle) beginRequest();
  ctx.stats->requests_total.add();
  request_state_ = RequestState::kBody;
  response_state_ = ResponseState::kWaiting;
  client_major_ = head.http_major;
  client_minor_ = head.http_minor;
  head_request_ = head.methodName() == "HEAD";
  response_bytes_ = 0;
  response_status_ = 0;
  if (ctx.access_log != nullptr) {
    method_.assign(head.methodName());
    path_.assign(head.url());
    request_facts_.capture(head);
  }
  if (!head.keep_alive || ctx.draining) close_after_ = true;
  host_.rearmTimer();
  if (head.headerCount() > ctx.config->server.max_header_fields) {
    respondLocal(431, "too many request header fields");
    return false;
  }

  upstream::UpstreamError why = upstream::UpstreamError::kConnectFailed;
  upstream_ = ctx.pool->checkout(this, head_request_, &why);
  if (upstream_ == nullptr) {
    if (why == upstream::UpstreamError::kOverloaded) {
      respondLocal(503, "no upstream connection available; retry later");
    } else {
      respondLocal(502, "upstream unavailable");
    }
    return false;
  }
  // The same client-address and certificate facts as an HTTP/2 stream's.
  request_framing_ = http::writeRequestHead(head, host_.forwardContext(), upstream_->out());
  return false;
}

void Http1Codec::onBody(const char* data, size_t len) {
  if (upstream_ == nullptr || discard_body_) return;
  int rc = upstream_->sendBody(std::string_view(data, len),
                               request_framing_ == http::BodyFraming::kChunked);
  // Small pieces collect in the upstream's buffer; hand them over once they add up, so
  // the queue the watermarks look at is what is really pending.
  if (rc == 0 && upstream_->out().size() >= kLowWatermark) rc = upstream_->flush();
  if (rc < 0) upstreamWriteFailed(rc);
}

void Http1Codec::upstreamWriteFailed(int rc) {
  // The connection closed itself; it stays allocated until its close callback, so its
  // buffer can still be taken here.
  upstream::UpstreamConnection* failed = upstream_;
  upstream_ = nullptr;
  if (failed->replayable()) {
    onUpstreamReplayable(std::move(failed->out()), uv_strerror(rc));
  } else {
    onUpstreamError(upstream::UpstreamError::kClosedEarly, "write to upstream failed");
  }
}

void Http1Codec::onMessageComplete() {
  request_state_ = RequestState::kDone;
  request_done_ns_ = uv_hrtime();
  if (upstream_ != nullptr && !discard_body_) {
    if (request_framing_ == http::BodyFraming::kChunked) upstream_->out().append(http::kLastChunk);
    int rc = upstream_->flush();
    if (rc < 0) {
      upstreamWriteFailed(rc);
      return;  // a replay completes the request on its new connection
    }
    upstream_->requestComplete();
  }
  host_.rearmTimer();
  if (response_state_ == ResponseState::kDone) {
    // The response came first (an early error from the upstream): it said close.
    host_.finish(host_.closeReason());
  }
}

void Http1Codec::endOfPass() {
  // Request bytes go upstream at the end of every pass: agents stream one request for
  // seconds, and the upstream must see each piece as it comes.
  if (upstream_ != nullptr && upstream_->flush() < 0) {
    upstream_ = nullptr;
    onUpstreamError(upstream::UpstreamError::kClosedEarly, "write to upstream failed");
  }
}

// ---- the response side ----

void Http1Codec::onResponseHead(http::MessageHead& head) {
  if (host_.closing()) return;
  std::string& out = host_.output();
  if (head.status < 200) {
    // Interim responses (100 Continue, 103 Early Hints) go to HTTP/1.1 clients only
    // (RFC 9110 §15.2). 101 cannot happen: Upgrade is never forwarded.
    if (client_minor_ >= 1 && head.status != 101) {
      http::ResponseContext rc{client_major_, client_minor_, false, false};
      http::writeResponseHead(head, rc, out);
    }
    return;
  }
  response_state_ = ResponseState::kStreaming;
  response_status_ = head.status;
  if (request_done_ns_ != 0) upstream_start_ns_ = uv_hrtime() - request_done_ns_;
  // A response that arrives before the request body ended leaves the rest of the body
  // unread: the connection cannot carry another request.
  if (request_state_ != RequestState::kDone || host_.context().draining) close_after_ = true;
  http::ResponseContext rc{client_major_, client_minor_, head_request_, close_after_};
  size_t before = out.size();
  response_framing_ = http::writeResponseHead(head, rc, out);
  response_bytes_ += out.size() - before;
  if (response_framing_ == http::BodyFraming::kUntilClose) close_after_ = true;
  int cls = head.status / 100;
  if (cls >= 1 && cls <= 5)
    host_.context().stats->responses_by_class[static_cast<size_t>(cls)].add();
}

void Http1Codec::onResponseBody(const char* data, size_t len) {
  if (host_.closing()) return;
  response_bytes_ += len;
  // A large piece goes out from the upstream's read buffer with whatever is queued before
  // it (the head), in one writev; the writer copies only what the kernel leaves.
  if (len >= kDirectWriteMin && response_framing_ != http::BodyFraming::kChunked &&
      host_.writeThrough(std::string_view(data, len))) {
    return;
  }
  std::string& out = host_.output();
  if (response_framing_ == http::BodyFraming::kChunked) {
    http::appendChunkHeader(out, len);
    out.append(data, len);
    out.append(http::kChunkEnd);
  } else {
    out.append(data, len);
  }
}

void Http1Codec::onResponseComplete() {
  upstream_ = nullptr;
  if (host_.closing()) return;
  if (response_framing_ == http::BodyFraming::kChunked) host_.output().append(http::kLastChunk);
  response_state_ = ResponseState::kDone;
  ++requests_served_;
  host_.context().stats->request_duration.observe(
      static_cast<double>(uv_hrtime() - request_start_ns_) / 1e9);
  writeAccessLog(host_.closeReason());
  if (close_after_) {
    // Stop forwarding the rest of this request; finish() once the response is out.
    if (request_state_ != RequestState::kDone && request_state_ != RequestState::kIdle) {
      discard_body_ = true;
    }
    host_.finish(host_.closeReason());
    return;
  }
  if (request_state_ != RequestState::kDone) {
    close_after_ = true;
    host_.finish(host_.closeReason());
    return;
  }
  startNextRequest();
}

void Http1Codec::startNextRequest() {
  request_state_ = RequestState::kIdle;
  response_state_ = ResponseState::kNone;
  request_framing_ = http::BodyFraming::kNone;
  response_framing_ = http::BodyFraming::kNone;
  head_request_ = false;
  discard_body_ = false;
  host_.markProgress();
  if (parser_.paused()) parser_.resume();
  if (host_.context().draining && host_.pendingInput() == 0) {
    host_.finish(CloseReason::kDrain);
    return;
  }
  host_.rearmTimer();
  host_.pump();  // pipelined requests already received, and the flush of this response
}

void Http1Codec::onUpstreamReplayable(std::string unsent, const char* detail) {
  upstream_ = nullptr;
  if (host_.closing()) return;
  // Once per request: the upstream never saw it (docs/http.md, "Retries"). A second
  // failure of the same kind is the upstream's state, not a race, and is answered.
  if (replays_ > 0 || response_state_ != ResponseState::kWaiting) {
    onUpstreamError(upstream::UpstreamError::kClosedEarly, detail);
    return;
  }
  ++replays_;
  DownstreamContext& ctx = host_.context();
  ctx.stats->upstream_retries.add();
  log::debug("upstream request replayed", {{"conn", host_.connectionId()}, {"detail", detail}});
  upstream::UpstreamError why = upstream::UpstreamError::kConnectFailed;
  upstream_ = ctx.pool->checkout(this, head_request_, &why, /*fresh=*/true);
  if (upstream_ == nullptr) {
    onUpstreamError(why, "no upstream connection for the replay");
    return;
  }
  upstream_->out() = std::move(unsent);
  if (request_state_ == RequestState::kDone && !discard_body_) {
    int rc = upstream_->flush();
    if (rc < 0) {
      upstreamWriteFailed(rc);
      return;
    }
    upstream_->requestComplete();
  }
  host_.updateReading();
}

void Http1Codec::onUpstreamError(upstream::UpstreamError error, const char* detail) {
  upstream_ = nullptr;
  if (host_.closing()) return;
  log::debug(
      "upstream error",
      {{"conn", host_.connectionId()}, {"reason", upstream::toString(error)}, {"detail", detail}});
  if (response_state_ == ResponseState::kWaiting) {
    switch (error) {
      case upstream::UpstreamError::kResponseTimeout:
      case upstream::UpstreamError::kStalled:
        respondLocal(504, "upstream did not respond in time");
        break;
      case upstream::UpstreamError::kOverloaded:
        respondLocal(503, "no upstream connection available; retry later");
        break;
      default:
        respondLocal(502, "upstream connection failed");
        break;
    }
    return;
  }
  // Mid-response: a reset, so the client can never take a cut body for a whole one.
  host_.close(CloseReason::kUpstreamCut, /*reset=*/true);
}

void Http1Codec::onUpstreamEventDone() {
  if (host_.closing()) return;
  host_.flush();
  if (host_.closing()) return;
  if (upstream_ != nullptr && host_.queuedOutput() > kHighWatermark) upstream_->pauseReading();
}

void Http1Codec::onUpstreamDrained() {
  if (host_.closing()) return;
  host_.inputUnblocked();
}

void Http1Codec::onWriteDone() {
  if (upstream_ != nullptr && host_.queuedOutput() < kLowWatermark) upstream_->resumeReading();
}

void Http1Codec::respondLocal(int status, const char* message) {
  if (upstream_ != nullptr) {
    upstream_->detach();
    upstream_ = nullptr;
  }
  if (response_state_ == ResponseState::kStreaming) {
    host_.close(CloseReason::kUpstreamCut, /*reset=*/true);
    return;
  }
  DownstreamContext& ctx = host_.context();
  ctx.stats->local_responses.add();
  ctx.stats->responses_by_class[static_cast<size_t>(status / 100)].add();
  // A request refused at its first bytes never reached onHead: it starts (and ends) here.
  if (request_state_ == RequestState::kIdle) beginRequest();
  ctx.stats->request_duration.observe(static_cast<double>(uv_hrtime() - request_start_ns_) / 1e9);
  response_status_ = status;
  std::string resp = http::localResponse(status, message);
  response_bytes_ = resp.size();
  host_.output().append(resp);
  response_state_ = ResponseState::kDone;
  discard_body_ = true;
  close_after_ = true;
  CloseReason reason = status >= 500 ? CloseReason::kUpstreamFailed : CloseReason::kBadRequest;
  if (status == 408) {
    reason = request_state_ == RequestState::kHead ? CloseReason::kHeaderTimeout
                                                   : CloseReason::kReadTimeout;
  }
  writeAccessLog(reason);
  host_.finish(reason);
}

void Http1Codec::writeAccessLog(CloseReason reason) {
  DownstreamContext& ctx = host_.context();
  if (ctx.access_log == nullptr) return;
  AccessLog::Entry e;
  host_.fillAccessLog(e);
  e.http_version = AccessLog::httpVersionName(client_major_, client_minor_);
  request_facts_.fill(e);
  e.method = method_;
  e.path = path_;
  e.status = response_status_;
  e.bytes_in = request_bytes_;
  e.bytes_out = response_bytes_;
  e.duration_s = static_cast<double>(uv_hrtime() - request_start_ns_) / 1e9;
  if (upstream_start_ns_ != 0) e.upstream_s = static_cast<double>(upstream_start_ns_) / 1e9;
  e.close_reason = close_after_ ? toString(reason) : "";
  ctx.access_log->write(e);
  request_facts_.clear();  // a request refused before its head must not log these again
}

// ---- the connection's view ----

uint64_t Http1Codec::deadline() const {
  const config::ServerConfig& s = host_.context().config->server;
  switch (request_state_) {
    case RequestState::kIdle:
      if (response_state_ != ResponseState::kNone) return UINT64_MAX;
      return host_.lastProgressMs() +
             toMs(requests_served_ == 0 ? s.request_header_timeout : s.idle_timeout);
    case RequestState::kHead:
      return request_start_ms_ + toMs(s.request_header_timeout);
    case RequestState::kBody:
      return request_start_ms_ + toMs(s.read_timeout);
    case RequestState::kDone:
      break;  // the upstream's response_timeout runs now
  }
  return UINT64_MAX;
}

void Http1Codec::onDeadline(uint64_t) {
  switch (request_state_) {
    case RequestState::kIdle:
      if (requests_served_ > 0 && host_.hasTls()) {
        // A keep-alive connection that idled out ends with close_notify, so the client
        // can tell our close from a truncation attack (RFC 8446 §6.1).
        host_.finish(CloseReason::kIdleTimeout);
        return;
      }
      host_.close(requests_served_ == 0 ? CloseReason::kHeaderTimeout : CloseReason::kIdleTimeout);
      return;
    case RequestState::kHead:
      respondLocal(408, "request header not received in time");
      return;
    case RequestState::kBody:
      if (response_state_ == ResponseState::kWaiting) {
        respondLocal(408, "request body not received in time");
      } else {
        host_.close(CloseReason::kReadTimeout);
      }
      return;
    case RequestState::kDone:
      host_.rearmTimer();
      return;
  }
}

void Http1Codec::drain() {
  if (idle()) {
    host_.finish(CloseReason::kDrain);
    return;
  }
  close_after_ = true;  // the current response carries Connection: close
}

bool Http1Codec::idle() const {
  return request_state_ == RequestState::kIdle && response_state_ == ResponseState::kNone &&
         !parser_.inMessage() && host_.pendingInput() == 0;
}

EofAction Http1Codec::onPeerEof() {
  if (request_state_ == RequestState::kHead || request_state_ == RequestState::kBody) {
    return EofAction::kCloseEarly;
  }
  if (request_state_ == RequestState::kDone && response_state_ != ResponseState::kDone &&
      response_state_ != ResponseState::kNone) {
    // Half-close after a complete request: answer it, then close (RFC 9112 §9.6).
    close_after_ = true;
    return EofAction::kAnswerThenClose;
  }
  return EofAction::kIdle;
}

void Http1Codec::closeAll() {
  if (upstream_ != nullptr) {
    upstream_->detach();
    upstream_ = nullptr;
  }
}

void Http1Codec::releaseMemory() { parser_.releaseMemory(); }

}  // namespace proxy::downstream
