// DownstreamConnection in HTTP/1.1 mode: the request side (parser callbacks, the upstream
// lease), the response side (ResponseSink), the proxy's own answers and the access-log
// line. The transport (socket, TLS pump, writer, deadlines, close) is in
// downstream_connection.cc; HTTP/2 mode in downstream_http2.cc.
#include <algorithm>
#include <cstring>

#include "proxy/common/log.h"
#include "proxy/downstream/access_log.h"
#include "proxy/downstream/downstream_connection.h"
#include "proxy/downstream/downstream_limits.h"
#include "proxy/upstream/upstream_connection.h"

namespace proxy::downstream {

void DownstreamConnection::parsePending() {
  if (pendingInput() == 0 || parser_.paused() || requestBlocked()) return;
  parseInput(in_.data() + in_off_, pendingInput(), /*owned=*/true);
}

void DownstreamConnection::parseInput(const char* data, size_t len, bool owned) {
  while (len > 0 && !closing() && conn_state_ == ConnState::kOpen && !parser_.paused()) {
    if (request_state_ == RequestState::kIdle && response_state_ != ResponseState::kNone) break;
    http::Http1Parser::ExecResult r = parser_.execute(data, len);
    if (closing()) return;
    if (request_state_ == RequestState::kIdle && parser_.inMessage()) {
      beginRequest();  // the head is still incomplete: its timer starts now
      rearmTimer();
    }
    data += r.consumed;
    len -= r.consumed;
    request_bytes_ += r.consumed;
    if (r.outcome == http::Http1Parser::Outcome::kError) {
      onParseError();
      return;
    }
    if (r.outcome == http::Http1Parser::Outcome::kPaused) break;
  }
  if (owned) {
    in_off_ = static_cast<size_t>(data - in_.data());
    if (in_off_ == in_.size()) {
      in_.clear();
      in_off_ = 0;
    } else if (in_off_ > in_.size() / 2) {
      in_.erase(0, in_off_);
      in_off_ = 0;
    }
  } else if (len > 0 && !closing()) {
    in_.append(data, len);  // what the paused parser left for later
  }
}

void DownstreamConnection::onParseError() {
  switch (parser_.error()) {
    case http::ParseError::kHeadTooLarge:
      respondLocal(431, "request header fields too large");
      break;
    case http::ParseError::kUnsupported:
      respondLocal(405, "method not supported by the proxy");
      break;
    default:
      log::debug("bad request",
                 {{"conn", id_}, {"peer", peer_ip_}, {"error", parser_.errorReason()}});
      respondLocal(400, "malformed HTTP request");
      break;
  }
}

void DownstreamConnection::beginRequest() {
  request_state_ = RequestState::kHead;
  request_start_ms_ = uv_now(ctx_.loop);
  request_start_ns_ = uv_hrtime();
  request_done_ns_ = 0;
  request_bytes_ = 0;
  upstream_start_ns_ = 0;
  replays_ = 0;
}

bool DownstreamConnection::onHead(http::MessageHead& head) {
  // A head that arrived in one read was never seen half-done: its request starts here.
  if (request_state_ == RequestState::kIdle) beginRequest();
  ctx_.stats->requests_total.add();
  request_state_ = RequestState::kBody;
  response_state_ = ResponseState::kWaiting;
  client_major_ = head.http_major;
  client_minor_ = head.http_minor;
  head_request_ = head.methodName() == "HEAD";
  response_bytes_ = 0;
  response_status_ = 0;
  if (ctx_.access_log != nullptr) {
    method_.assign(head.methodName());
    path_.assign(head.url());
    request_facts_.capture(head);
  }
  if (!head.keep_alive || ctx_.draining) close_after_ = true;
  rearmTimer();
  if (head.headerCount() > ctx_.config->server.max_header_fields) {
    respondLocal(431, "too many request header fields");
    return false;
  }

  upstream::UpstreamError why = upstream::UpstreamError::kConnectFailed;
  upstream_ = ctx_.pool->checkout(this, head_request_, &why);
  if (upstream_ == nullptr) {
    if (why == upstream::UpstreamError::kOverloaded) {
      respondLocal(503, "no upstream connection available; retry later");
    } else {
      respondLocal(502, "upstream unavailable");
    }
    return false;
  }
  // The same client-address and certificate facts as an HTTP/2 stream's (h2Forward).
  request_framing_ = http::writeRequestHead(head, h2Forward(), upstream_->out());
  return false;
}

void DownstreamConnection::onBody(const char* data, size_t len) {
  if (upstream_ == nullptr || discard_body_) return;
  int rc = upstream_->sendBody(std::string_view(data, len),
                               request_framing_ == http::BodyFraming::kChunked);
  // Small pieces collect in the upstream's buffer; hand them over once they add up, so
  // the queue the watermarks look at is what is really pending.
  if (rc == 0 && upstream_->out().size() >= kLowWatermark) rc = upstream_->flush();
  if (rc < 0) upstreamWriteFailed(rc);
}

void DownstreamConnection::upstreamWriteFailed(int rc) {
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

void DownstreamConnection::onMessageComplete() {
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
  rearmTimer();
  if (response_state_ == ResponseState::kDone) {
    // The response came first (an early error from the upstream): it said close.
    finish();
  }
}

void DownstreamConnection::onResponseHead(http::MessageHead& head) {
  if (closing()) return;
  if (head.status < 200) {
    // Interim responses (100 Continue, 103 Early Hints) go to HTTP/1.1 clients only
    // (RFC 9110 §15.2). 101 cannot happen: Upgrade is never forwarded.
    if (client_minor_ >= 1 && head.status != 101) {
      http::ResponseContext rc{client_major_, client_minor_, false, false};
      http::writeResponseHead(head, rc, out_);
    }
    return;
  }
  response_state_ = ResponseState::kStreaming;
  response_status_ = head.status;
  if (request_done_ns_ != 0) upstream_start_ns_ = uv_hrtime() - request_done_ns_;
  // A response that arrives before the request body ended leaves the rest of the body
  // unread: the connection cannot carry another request.
  if (request_state_ != RequestState::kDone || ctx_.draining) close_after_ = true;
  http::ResponseContext rc{client_major_, client_minor_, head_request_, close_after_};
  size_t before = out_.size();
  response_framing_ = http::writeResponseHead(head, rc, out_);
  response_bytes_ += out_.size() - before;
  if (response_framing_ == http::BodyFraming::kUntilClose) close_after_ = true;
  int cls = head.status / 100;
  if (cls >= 1 && cls <= 5) ctx_.stats->responses_by_class[static_cast<size_t>(cls)].add();
}

void DownstreamConnection::onResponseBody(const char* data, size_t len) {
  if (closing()) return;
  response_bytes_ += len;
  if (!tls_ && len >= kDirectWriteMin && response_framing_ != http::BodyFraming::kChunked) {
    // A large piece goes out from the upstream's read buffer with whatever is queued
    // before it (the head), in one writev; the writer copies only what the kernel leaves.
    int rc = writer_.write({out_, std::string_view(data, len)});
    ctx_.stats->bytes_sent.add(out_.size() + len);
    out_.clear();
    if (rc < 0) close(CloseReason::kWriteError);
    return;
  }
  if (response_framing_ == http::BodyFraming::kChunked) {
    http::appendChunkHeader(out_, len);
    out_.append(data, len);
    out_.append(http::kChunkEnd);
  } else {
    out_.append(data, len);
  }
}

void DownstreamConnection::onResponseComplete() {
  upstream_ = nullptr;
  if (closing()) return;
  if (response_framing_ == http::BodyFraming::kChunked) out_.append(http::kLastChunk);
  response_state_ = ResponseState::kDone;
  ++requests_served_;
  ctx_.stats->request_duration.observe(static_cast<double>(uv_hrtime() - request_start_ns_) / 1e9);
  writeAccessLog();
  if (close_after_ || peer_eof_) {
    if (request_state_ == RequestState::kDone || request_state_ == RequestState::kIdle) {
      finish();
    } else {
      // Stop forwarding the rest of this request; finish() once the response is out.
      discard_body_ = true;
      finish();
    }
    return;
  }
  if (request_state_ != RequestState::kDone) {
    close_after_ = true;
    finish();
    return;
  }
  startNextRequest();
}

void DownstreamConnection::startNextRequest() {
  request_state_ = RequestState::kIdle;
  response_state_ = ResponseState::kNone;
  request_framing_ = http::BodyFraming::kNone;
  response_framing_ = http::BodyFraming::kNone;
  head_request_ = false;
  discard_body_ = false;
  last_progress_ms_ = uv_now(ctx_.loop);
  if (parser_.paused()) parser_.resume();
  if (ctx_.draining && pendingInput() == 0) {
    close_reason_ = CloseReason::kDrain;
    finish();
    return;
  }
  rearmTimer();
  pump();  // pipelined requests already received, and the flush of this response
}

void DownstreamConnection::onUpstreamReplayable(std::string unsent, const char* detail) {
  upstream_ = nullptr;
  if (closing()) return;
  // Once per request: the upstream never saw it (docs/http.md, "Retries"). A second
  // failure of the same kind is the upstream's state, not a race, and is answered.
  if (replays_ > 0 || response_state_ != ResponseState::kWaiting) {
    onUpstreamError(upstream::UpstreamError::kClosedEarly, detail);
    return;
  }
  ++replays_;
  ctx_.stats->upstream_retries.add();
  log::debug("upstream request replayed", {{"conn", id_}, {"detail", detail}});
  upstream::UpstreamError why = upstream::UpstreamError::kConnectFailed;
  upstream_ = ctx_.pool->checkout(this, head_request_, &why, /*fresh=*/true);
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
  updateReading();
}

void DownstreamConnection::onUpstreamError(upstream::UpstreamError error, const char* detail) {
  upstream_ = nullptr;
  if (closing()) return;
  log::debug("upstream error",
             {{"conn", id_}, {"reason", upstream::toString(error)}, {"detail", detail}});
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
  close(CloseReason::kUpstreamCut, /*reset=*/true);
}

void DownstreamConnection::onUpstreamEventDone() {
  if (closing()) return;
  flush();
  if (closing()) return;
  if (upstream_ != nullptr && queuedOutput() > kHighWatermark) upstream_->pauseReading();
}

void DownstreamConnection::onUpstreamDrained() {
  if (closing()) return;
  if (!reading_ || pendingInput() > 0) pump();
}

void DownstreamConnection::respondLocal(int status, const char* message) {
  if (upstream_ != nullptr) {
    upstream_->detach();
    upstream_ = nullptr;
  }
  if (response_state_ == ResponseState::kStreaming) {
    close(CloseReason::kUpstreamCut, /*reset=*/true);
    return;
  }
  ctx_.stats->local_responses.add();
  ctx_.stats->responses_by_class[static_cast<size_t>(status / 100)].add();
  // A request refused at its first bytes never reached onHead: it starts (and ends) here.
  if (request_state_ == RequestState::kIdle) beginRequest();
  ctx_.stats->request_duration.observe(static_cast<double>(uv_hrtime() - request_start_ns_) / 1e9);
  response_status_ = status;
  std::string resp = http::localResponse(status, message);
  response_bytes_ = resp.size();
  out_.append(resp);
  response_state_ = ResponseState::kDone;
  discard_body_ = true;
  close_after_ = true;
  close_reason_ = status >= 500 ? CloseReason::kUpstreamFailed : CloseReason::kBadRequest;
  if (status == 408) {
    close_reason_ = request_state_ == RequestState::kHead ? CloseReason::kHeaderTimeout
                                                          : CloseReason::kReadTimeout;
  }
  writeAccessLog();
  finish();
}

void DownstreamConnection::writeAccessLog() {
  if (ctx_.access_log == nullptr) return;
  AccessLog::Entry e;
  h2FillAccessLog(e);  // the peer and TLS fields, the same for both protocols
  e.http_version = AccessLog::httpVersionName(client_major_, client_minor_);
  request_facts_.fill(e);
  e.method = method_;
  e.path = path_;
  e.status = response_status_;
  e.bytes_in = request_bytes_;
  e.bytes_out = response_bytes_;
  e.duration_s = static_cast<double>(uv_hrtime() - request_start_ns_) / 1e9;
  if (upstream_start_ns_ != 0) e.upstream_s = static_cast<double>(upstream_start_ns_) / 1e9;
  e.close_reason = close_after_ ? toString(close_reason_) : "";
  ctx_.access_log->write(e);
  request_facts_.clear();  // a request refused before its head must not log these again
}

}  // namespace proxy::downstream
