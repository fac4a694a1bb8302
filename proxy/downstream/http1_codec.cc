#include "proxy/downstream/http1_codec.h"

#include "proxy/common/log.h"
#include "proxy/downstream/downstream_connection.h"
#include "proxy/downstream/downstream_limits.h"

namespace proxy::downstream {

Http1Codec::Core::Core(Http1Codec& codec, CodecHost& host)
    : parser(http::Http1Parser::Kind::kRequest, codec,
             host.context().config->server.max_header_size),
      stream(host, codec) {}

Http1Codec::Http1Codec(CodecHost& host)
    : host_(host),
      // A connection that starts while the proxy drains answers one request, then closes.
      close_after_(host.context().draining) {}

Http1Codec::~Http1Codec() { closeAll(); }

Http1Codec::Core& Http1Codec::core() {
  if (!core_) core_ = std::make_unique<Core>(*this, host_);
  return *core_;
}

// ---- the request side ----

bool Http1Codec::acceptsInput() const {
  return !core_ || (!core_->parser.paused() && !requestBlocked());
}

bool Http1Codec::requestBlocked() const {
  return core_ && core_->stream.upstreamQueued() > kHighWatermark;
}

size_t Http1Codec::receive(const char* data, size_t len) {
  const char* start = data;
  http::Http1Parser& parser = core().parser;
  RequestStream& stream = core_->stream;
  while (len > 0 && host_.open() && !parser.paused()) {
    // Pipelining: the next request is parsed only once the current response is out.
    if (request_state_ == RequestState::kIdle && response_state_ != ResponseState::kNone) break;
    http::Http1Parser::ExecResult r = parser.execute(data, len);
    if (host_.closing()) return 0;
    if (request_state_ == RequestState::kIdle && parser.inMessage()) {
      beginRequest();  // the head is still incomplete: its timer starts now
      host_.rearmTimer();
    }
    data += r.consumed;
    len -= r.consumed;
    stream.countRequestBytes(r.consumed);
    if (r.outcome == http::Http1Parser::Outcome::kError) {
      onParseError();
      break;
    }
    if (r.outcome == http::Http1Parser::Outcome::kPaused) break;
  }
  return static_cast<size_t>(data - start);
}

void Http1Codec::onParseError() {
  http::Http1Parser& parser = core().parser;
  switch (parser.error()) {
    case http::ParseError::kHeadTooLarge:
      respondLocal(431, "request header fields too large");
      break;
    case http::ParseError::kUnsupported:
      respondLocal(405, "method not supported by the proxy");
      break;
    default:
      log::debug("bad request", {{"conn", host_.connectionId()},
                                 {"peer", host_.peerIp()},
                                 {"error", parser.errorReason()}});
      respondLocal(400, "malformed HTTP request");
      break;
  }
}

void Http1Codec::beginRequest() {
  request_state_ = RequestState::kHead;
  core().stream.begin();
}

bool Http1Codec::onHead(http::MessageHead& head) {
  DownstreamContext& ctx = host_.context();
  // A head that arrived in one read was never seen half-done: its request starts here.
  if (request_state_ == RequestState::kIdle) beginRequest();
  request_state_ = RequestState::kBody;
  response_state_ = ResponseState::kWaiting;
  client_major_ = head.http_major;
  client_minor_ = head.http_minor;
  head_request_ = head.methodName() == "HEAD";
  RequestStream& stream = core().stream;
  stream.onHead(head.methodName(), head.url(), head_request_);
  if (stream.logging()) stream.facts().capture(head);
  if (!head.keep_alive || ctx.draining) close_after_ = true;
  host_.rearmTimer();
  if (head.headerCount() > ctx.config->server.max_header_fields) {
    respondLocal(431, "too many request header fields");
    return false;
  }
  // The same client-address and certificate facts as an HTTP/2 stream's.
  http::ForwardContext fwd = host_.forwardContext();
  std::string* out = stream.leaseHttp1(http::requestBytesBound(head, fwd));
  if (out == nullptr) return false;  // answered: 502 or 503
  http::BodyFraming framing = http::writeRequestHead(head, fwd, *out);
  stream.setChunkedBody(framing == http::BodyFraming::kChunked);
  return false;
}

void Http1Codec::onBody(const char* data, size_t len) {
  if (!discard_body_) core().stream.sendBody(data, len);
}

void Http1Codec::onMessageComplete() {
  request_state_ = RequestState::kDone;
  // An early response (the upstream answered before the body ended) said close.
  bool answered = response_state_ == ResponseState::kDone;
  if (!discard_body_) core().stream.endRequest(nullptr);
  if (host_.closing()) return;
  host_.rearmTimer();
  if (answered) host_.finish(host_.closeReason());
}

void Http1Codec::endOfPass() {
  // Request bytes go upstream at the end of every pass: agents stream one request for
  // seconds, and the upstream must see each piece as it comes.
  if (core_) core_->stream.flushRequest();
}

// ---- the response side: StreamEncoder ----

void Http1Codec::encodeInterim(http::MessageHead& head) {
  // Interim responses (100 Continue, 103 Early Hints) go to HTTP/1.1 clients only
  // (RFC 9110 §15.2). 101 cannot happen: Upgrade is never forwarded.
  if (host_.closing() || client_minor_ < 1 || head.status == 101) return;
  http::ResponseContext rc{client_major_, client_minor_, false, false};
  http::writeResponseHead(head, rc, host_.output());
}

bool Http1Codec::encodeHead(http::MessageHead& head) {
  if (host_.closing()) return true;
  std::string& out = host_.output();
  response_state_ = ResponseState::kStreaming;
  // A response that arrives before the request body ended leaves the rest of the body
  // unread: the connection cannot carry another request.
  if (request_state_ != RequestState::kDone || host_.context().draining) close_after_ = true;
  http::ResponseContext rc{client_major_, client_minor_, head_request_, close_after_};
  size_t before = out.size();
  response_framing_ = http::writeResponseHead(head, rc, out);
  core().stream.countResponseBytes(out.size() - before);
  if (response_framing_ == http::BodyFraming::kUntilClose) close_after_ = true;
  return true;
}

void Http1Codec::encodeBody(const char* data, size_t len) {
  if (host_.closing()) return;
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

void Http1Codec::encodeEnd() {
  if (host_.closing()) return;
  if (response_framing_ == http::BodyFraming::kChunked) host_.output().append(http::kLastChunk);
  response_state_ = ResponseState::kDone;
  ++requests_served_;
  end_reason_ = host_.closeReason();
}

StreamEncoder::Encoded Http1Codec::encodeLocalReply(const LocalReply& reply) {
  std::string resp = http::localResponse(reply.status, reply.message);
  host_.output().append(resp);
  response_state_ = ResponseState::kDone;
  discard_body_ = true;
  close_after_ = true;
  end_reason_ = reply.status >= 500 ? CloseReason::kUpstreamFailed : CloseReason::kBadRequest;
  if (reply.status == 408) {
    end_reason_ = request_state_ == RequestState::kHead ? CloseReason::kHeaderTimeout
                                                        : CloseReason::kReadTimeout;
  }
  return {reply.status, resp.size()};
}

void Http1Codec::encodeCut(StreamCut why) {
  cut_ = true;
  end_reason_ =
      why == StreamCut::kUpstreamCut ? CloseReason::kUpstreamCut : CloseReason::kReadTimeout;
}

void Http1Codec::streamDone() {
  if (cut_) {
    // A reset after an upstream cut, so the client can never take a cut body for a whole
    // one; a timeout ends the connection plainly.
    cut_ = false;
    host_.close(end_reason_, /*reset=*/end_reason_ == CloseReason::kUpstreamCut);
    return;
  }
  if (host_.closing()) return;
  if (close_after_) {
    // Stop forwarding the rest of this request; finish() once the response is out.
    if (request_state_ != RequestState::kDone && request_state_ != RequestState::kIdle) {
      discard_body_ = true;
    }
    host_.finish(end_reason_);
    return;
  }
  if (request_state_ != RequestState::kDone) {
    close_after_ = true;
    host_.finish(end_reason_);
    return;
  }
  startNextRequest();
}

void Http1Codec::startNextRequest() {
  request_state_ = RequestState::kIdle;
  response_state_ = ResponseState::kNone;
  response_framing_ = http::BodyFraming::kNone;
  head_request_ = false;
  discard_body_ = false;
  host_.markProgress();
  if (core_ && core_->parser.paused()) core_->parser.resume();
  if (host_.context().draining && host_.pendingInput() == 0) {
    host_.finish(CloseReason::kDrain);
    return;
  }
  host_.rearmTimer();
  host_.pump();  // pipelined requests already received, and the flush of this response
}

void Http1Codec::upstreamEventDone() {
  if (host_.closing()) return;
  host_.flush();
  if (host_.closing()) return;
  if (core_ && host_.queuedOutput() > kHighWatermark) core_->stream.pauseUpstream();
}

void Http1Codec::upstreamDrained() {
  if (host_.closing()) return;
  host_.inputUnblocked();
}

void Http1Codec::leaseChanged() {
  if (!host_.closing()) host_.updateReading();
}

void Http1Codec::onWriteDone() {
  if (core_ && host_.queuedOutput() < kLowWatermark) core_->stream.resumeUpstream();
}

void Http1Codec::fillLogEntry(AccessLog::Entry& e) {
  host_.fillAccessLog(e);
  e.http_version = AccessLog::httpVersionName(client_major_, client_minor_);
  e.close_reason = close_after_ || cut_ ? toString(end_reason_) : "";
}

void Http1Codec::respondLocal(int status, const char* message) {
  // A request refused at its first bytes never reached onHead: it starts (and ends) here.
  if (request_state_ == RequestState::kIdle) beginRequest();
  RequestStream& stream = core().stream;
  if (stream.done()) {
    // Its response is out already (an early one); the rest of the request is bad: the
    // connection has nothing more to say.
    host_.close(CloseReason::kBadRequest);
    return;
  }
  stream.replyLocal({status, message});
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
      return core_->stream.startMs() + toMs(s.request_header_timeout);
    case RequestState::kBody:
      return core_->stream.startMs() + toMs(s.read_timeout);
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
      if (core().stream.done()) {
        host_.close(CloseReason::kReadTimeout);  // answered early; the body never ended
      } else {
        core_->stream.onDeadline();  // 408, or a plain close once the response streams
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
         !(core_ && core_->parser.inMessage()) && host_.pendingInput() == 0;
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
  if (core_) core_->stream.release();
}

void Http1Codec::releaseMemory() {
  // Called by the transport between requests, never inside receive(); a stream that just
  // ended may still be returning from streamDone(), its last act (request_stream.h), and
  // touches nothing of itself after it.
  if (core_ && idle() && !core_->parser.inMessage()) core_.reset();
}

}  // namespace proxy::downstream
