#include "proxy/downstream/request_stream.h"

#include <uv.h>

#include <algorithm>
#include <utility>

#include "proxy/common/log.h"
#include "proxy/downstream/downstream_connection.h"
#include "proxy/downstream/downstream_limits.h"
#include "proxy/upstream/h2_pool.h"
#include "proxy/upstream/h2_stream.h"
#include "proxy/upstream/upstream_connection.h"

namespace proxy::downstream {

LocalReply localReplyFor(upstream::UpstreamError error) {
  switch (error) {
    case upstream::UpstreamError::kResponseTimeout:
    case upstream::UpstreamError::kStalled:
      return {504, "upstream did not respond in time"};
    case upstream::UpstreamError::kOverloaded:
      return {503, "no upstream connection available; retry later"};
    case upstream::UpstreamError::kRefused:
      return {503, "upstream refused the request without processing it; retry later"};
    case upstream::UpstreamError::kStreamReset:
      return {502, "upstream reset the stream", "13"};
    case upstream::UpstreamError::kStreamCancelled:
      return {502, "upstream cancelled the stream", "1"};
    case upstream::UpstreamError::kStreamRefusedBusy:
      return {503, "upstream is overloaded (ENHANCE_YOUR_CALM)", "8"};
    default:
      return {502, "upstream connection failed"};
  }
}

RequestStream::RequestStream(CodecHost& host, StreamEncoder& encoder)
    : host_(host), encoder_(encoder) {}

RequestStream::~RequestStream() { release(); }

void RequestStream::begin() {
  release();
  response_ = Response::kWaiting;
  head_request_ = false;
  chunked_ = false;
  request_ended_ = false;
  paused_ = false;
  logged_ = false;
  replays_ = 0;
  status_ = 0;
  start_ms_ = uv_now(host_.context().loop);
  paused_ms_ = 0;
  start_ns_ = uv_hrtime();
  request_done_ns_ = 0;
  upstream_ns_ = 0;
  request_bytes_ = 0;
  response_bytes_ = 0;
  method_.clear();
  path_.clear();
  facts_.clear();
}

bool RequestStream::logging() const { return host_.context().access_log != nullptr; }

void RequestStream::onHead(std::string_view method, std::string_view path, bool head_request) {
  host_.context().stats->requests_total.add();
  head_request_ = head_request;
  if (logging()) {
    method_.assign(method);
    path_.assign(path);
  }
}

// ---- the request side ----

std::string* RequestStream::leaseHttp1(uint64_t request_bytes) {
  upstream::UpstreamError why = upstream::UpstreamError::kConnectFailed;
  upstream::UpstreamConnection* conn =
      host_.context().pool->checkout(this, head_request_, &why, /*fresh=*/false, request_bytes);
  if (conn == nullptr) {
    replyLocal(why == upstream::UpstreamError::kOverloaded
                   ? localReplyFor(why)
                   : LocalReply{502, "upstream unavailable"});
    return nullptr;
  }
  lease_ = conn;
  return &conn->out();
}

bool RequestStream::openHttp2(http2::HeaderFields fields, bool end_stream) {
  request_ended_ = end_stream;
  if (end_stream) request_done_ns_ = uv_hrtime();
  lease_ = host_.context().h2_pool->open(this, std::move(fields), end_stream);
  if (lease_ == nullptr) {
    replyLocal(localReplyFor(upstream::UpstreamError::kOverloaded));
    return false;
  }
  return true;
}

void RequestStream::sendBody(const char* data, size_t len) {
  if (lease_ == nullptr) return;
  int rc = lease_->writeBody(std::string_view(data, len), chunked_);
  if (rc < 0) writeFailed(rc);
}

void RequestStream::flushRequest() {
  if (lease_ == nullptr) return;
  int rc = lease_->flushRequest();
  if (rc < 0) writeFailed(rc);
}

void RequestStream::endRequest(const http2::HeaderFields* trailers) {
  request_ended_ = true;
  request_done_ns_ = uv_hrtime();
  if (lease_ == nullptr) return;
  int rc = lease_->endRequest(trailers, chunked_);
  if (rc < 0) writeFailed(rc);  // a replay completes the request on its new connection
}

void RequestStream::writeFailed(int rc) {
  // The lease closed itself; it stays allocated until its close callback, so its
  // unsent bytes can still be taken here.
  upstream::UpstreamRequest* failed = lease_;
  lease_ = nullptr;
  if (failed->replayable()) {
    onUpstreamReplayable(failed->takeUnsent(), uv_strerror(rc));
  } else {
    onUpstreamError(upstream::UpstreamError::kClosedEarly, "write to upstream failed");
  }
}

size_t RequestStream::upstreamQueued() const {
  return lease_ == nullptr ? 0 : lease_->queuedBytes();
}

void RequestStream::pauseUpstream() {
  if (paused_) return;
  paused_ = true;
  paused_ms_ = uv_now(host_.context().loop);
  if (lease_ != nullptr) lease_->pauseReading();
}

void RequestStream::resumeUpstream() {
  if (!paused_) return;
  paused_ = false;
  if (lease_ != nullptr) lease_->resumeReading();
}

void RequestStream::release() {
  if (lease_ == nullptr) return;
  upstream::UpstreamRequest* lease = lease_;
  lease_ = nullptr;
  lease->release();
}

// ---- the response side ----

void RequestStream::onResponseHead(http::MessageHead& head) {
  if (done()) return;
  if (head.status < 200) {
    encoder_.encodeInterim(head);
    return;
  }
  status_ = head.status;
  if (request_done_ns_ != 0) upstream_ns_ = uv_hrtime() - request_done_ns_;
  int cls = head.status / 100;
  if (cls >= 2 && cls <= 5) {
    host_.context().stats->responses_by_class[static_cast<size_t>(cls)].add();
  }
  response_ = encoder_.encodeHead(head) ? Response::kStreaming : Response::kHeld;
}

void RequestStream::onResponseBody(const char* data, size_t len) {
  if (done()) return;
  response_ = Response::kStreaming;
  response_bytes_ += len;
  encoder_.encodeBody(data, len);
  if (lease_ != nullptr) lease_->responseConsumed(len);  // h2c: held back while paused
}

void RequestStream::onResponseTrailers(const http::MessageHead& trailers) {
  if (!done()) encoder_.encodeTrailers(trailers);
}

void RequestStream::onResponseComplete() {
  lease_ = nullptr;
  if (done()) return;
  response_ = Response::kDone;
  encoder_.encodeEnd();
  observeDuration();
  writeAccessLog();
  encoder_.streamDone();
}

void RequestStream::onUpstreamError(upstream::UpstreamError error, const char* detail) {
  lease_ = nullptr;
  if (done()) return;
  log::debug(
      "upstream error",
      {{"conn", host_.connectionId()}, {"reason", upstream::toString(error)}, {"detail", detail}});
  replyLocal(localReplyFor(error));  // a cut once the client has the head
}

void RequestStream::onUpstreamReplayable(std::string unsent, const char* detail) {
  lease_ = nullptr;
  if (done()) return;
  // Once per request, and only while no response began: the upstream never saw it
  // (docs/http.md, "Retries"). A second failure of the same kind is the upstream's
  // state, not a race, and is answered.
  if (replays_ > 0 || response_ != Response::kWaiting) {
    onUpstreamError(upstream::UpstreamError::kClosedEarly, detail);
    return;
  }
  ++replays_;
  DownstreamContext& ctx = host_.context();
  ctx.stats->upstream_retries.add();
  log::debug("upstream request replayed", {{"conn", host_.connectionId()}, {"detail", detail}});
  // Only HTTP/1.1 leases hand a request back (the h2c pool retries refused streams
  // itself), so the replay goes on a fresh HTTP/1.1 connection.
  upstream::UpstreamError why = upstream::UpstreamError::kConnectFailed;
  upstream::UpstreamConnection* conn = ctx.pool->checkout(this, head_request_, &why, true);
  if (conn == nullptr) {
    onUpstreamError(why, "no upstream connection for the replay");
    return;
  }
  conn->out() = std::move(unsent);
  lease_ = conn;
  if (request_ended_) {
    int rc = lease_->endRequest(nullptr, /*chunked=*/false);  // the last chunk is in `unsent`
    if (rc < 0) writeFailed(rc);
    return;
  }
  encoder_.leaseChanged();
}

void RequestStream::onUpstreamEventDone() { encoder_.upstreamEventDone(); }

void RequestStream::onUpstreamDrained() { encoder_.upstreamDrained(); }

// ---- endings ----

void RequestStream::replyLocal(const LocalReply& reply) {
  if (done()) return;
  release();
  if (response_ == Response::kStreaming) {
    cut(StreamCut::kUpstreamCut);
    return;
  }
  response_ = Response::kDone;
  DownstreamContext& ctx = host_.context();
  ctx.stats->local_responses.add();
  ctx.stats->responses_by_class[static_cast<size_t>(reply.status / 100)].add();
  StreamEncoder::Encoded sent = encoder_.encodeLocalReply(reply);
  status_ = sent.status;
  response_bytes_ = sent.bytes;
  observeDuration();
  writeAccessLog();
  encoder_.streamDone();
}

void RequestStream::cut(StreamCut why) {
  release();
  response_ = Response::kDone;
  encoder_.encodeCut(why);
  writeAccessLog();
  encoder_.streamDone();
}

uint64_t RequestStream::deadline(bool limit_pause) const {
  if (done()) return UINT64_MAX;
  const config::ServerConfig& s = host_.context().config->server;
  uint64_t deadline = request_ended_ ? UINT64_MAX : start_ms_ + toMs(s.read_timeout);
  // A client that keeps its window shut stalls the response as a socket that is not read
  // stalls a write: the same limit ends it (issue 10 item 5).
  if (limit_pause && paused_) deadline = std::min(deadline, paused_ms_ + toMs(s.write_timeout));
  return deadline;
}

void RequestStream::onDeadline() {
  if (done()) return;
  if (response_ == Response::kStreaming) {
    cut(StreamCut::kTimeout);
    return;
  }
  replyLocal({408, "request body not received in time"});
}

void RequestStream::onClientGone() {
  release();
  response_ = Response::kDone;
  writeAccessLog();
}

void RequestStream::releaseMemory() {
  std::string().swap(method_);
  std::string().swap(path_);
  facts_ = AccessLog::RequestFacts();
}

void RequestStream::observeDuration() {
  host_.context().stats->request_duration.observe(static_cast<double>(uv_hrtime() - start_ns_) /
                                                  1e9);
}

void RequestStream::writeAccessLog() {
  if (logged_) return;
  logged_ = true;
  AccessLog* log = host_.context().access_log;
  if (log == nullptr) return;
  AccessLog::Entry e;
  encoder_.fillLogEntry(e);
  facts_.fill(e);
  e.method = method_;
  e.path = path_;
  e.status = status_;
  e.bytes_in = request_bytes_;
  e.bytes_out = response_bytes_;
  e.duration_s = static_cast<double>(uv_hrtime() - start_ns_) / 1e9;
  if (upstream_ns_ != 0) e.upstream_s = static_cast<double>(upstream_ns_) / 1e9;
  log->write(e);
  facts_.clear();  // a request refused before its head must not log these again
}

}  // namespace proxy::downstream
