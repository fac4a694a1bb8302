#include "proxy/downstream/http2_stream.h"

#include <uv.h>

#include <algorithm>
#include <cstdio>
#include <string_view>

#include "proxy/common/log.h"
#include "proxy/downstream/downstream_connection.h"
#include "proxy/downstream/downstream_limits.h"
#include "proxy/downstream/http2_codec.h"
#include "proxy/upstream/h2_pool.h"
#include "proxy/upstream/h2_stream.h"
#include "proxy/upstream/upstream_connection.h"

namespace proxy::downstream {
namespace {

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// gRPC status for a failure the proxy answers itself (grpc/doc/statuscodes.md): the
// deadline ones are DEADLINE_EXCEEDED, everything else UNAVAILABLE, which OTLP
// exporters retry.
const char* grpcStatusFor(int http_status) {
  return http_status == 504 || http_status == 408 ? "4" : "14";
}

// grpc-message is percent-encoded (gRPC over HTTP/2, "Responses").
std::string grpcMessage(std::string_view text) {
  std::string out;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7e || c == '%') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

std::string lowerCase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The forwarding policy applied to an HTTP/2 request's fields: the rules of
// http::writeRequestHead (hop-by-hop fields dropped, client-address fields replaced), with
// `te: trailers` kept for an HTTP/2 upstream, where gRPC needs it (RFC 9113 §8.2.2).
http2::HeaderFields forwardedFields(const http2::RequestHead& head, const http::ForwardContext& fwd,
                                    bool to_http2) {
  http2::HeaderFields out;
  out.reserve(head.headers.size() + 3);
  std::string xff;
  for (const http2::HeaderField& f : head.headers) {
    if (http::isHopByHop(f.name)) {
      if (to_http2 && f.name == "te" && f.value == "trailers") out.push_back(f);
      continue;
    }
    if (http::isForwardingHeader(f.name)) {
      if (fwd.client_is_trusted_proxy && f.name == "x-forwarded-for" && !f.value.empty()) {
        xff += xff.empty() ? f.value : ", " + f.value;
      }
      continue;
    }
    if (f.name == "host") continue;  // :authority (or this host) travels as Host/:authority
    out.push_back(f);
  }
  if (!fwd.client_ip.empty()) {
    xff += xff.empty() ? std::string(fwd.client_ip) : ", " + std::string(fwd.client_ip);
  }
  // HTTP/2 names are lower-case (RFC 9113 §8.2.1); towards HTTP/1.1 ours are written as
  // the HTTP/1.1 path writes them.
  if (!xff.empty()) out.push_back({to_http2 ? "x-forwarded-for" : "X-Forwarded-For", xff});
  out.push_back({to_http2 ? "x-forwarded-proto" : "X-Forwarded-Proto", fwd.tls ? "https" : "http"});
  if (!fwd.client_cert_header.empty()) {
    out.push_back({to_http2 ? "x-forwarded-client-cert" : "X-Forwarded-Client-Cert",
                   std::string(fwd.client_cert_header)});
  }
  return out;
}

std::string authorityOf(const http2::RequestHead& head) {
  if (!head.authority.empty()) return head.authority;
  for (const http2::HeaderField& f : head.headers) {
    if (f.name == "host") return f.value;
  }
  return {};
}

}  // namespace

Http2Stream::Http2Stream(Http2Codec& codec, int32_t id, uint64_t now_ms)
    : codec_(codec), id_(id), start_ms_(now_ms), start_ns_(uv_hrtime()) {}

Http2Stream::~Http2Stream() { releaseUpstream(); }

void Http2Stream::onRequestHead(http2::RequestHead& head) {
  DownstreamContext& ctx = codec_.host().context();
  ctx.stats->requests_total.add();
  method_ = head.method;
  path_ = head.path;
  head_request_ = head.method == "HEAD";
  request_ended_ = head.end_stream;
  for (const http2::HeaderField& f : head.headers) {
    facts_.captureHeader(f.name, f.value);
    if (f.name == "content-type" && startsWith(f.value, "application/grpc")) grpc_ = true;
  }
  if (head.method == "CONNECT") {
    replyLocal(405, "method not supported by the proxy");
    return;
  }
  http::ForwardContext fwd = codec_.host().forwardContext();
  bool ok = grpc_ && ctx.h2_pool != nullptr ? startGrpc(head, fwd) : startHttp1(head, fwd);
  if (!ok || done_) return;
  if (request_ended_ && h1_ != nullptr) endHttp1Request();
}

bool Http2Stream::startGrpc(const http2::RequestHead& head, const http::ForwardContext& fwd) {
  http2::HeaderFields fields = forwardedFields(head, fwd, /*to_http2=*/true);
  http2::HeaderFields all;
  all.reserve(fields.size() + 4);
  all.push_back({":method", head.method});
  all.push_back({":scheme", "http"});  // h2c: the upstream hop is cleartext
  all.push_back({":authority", authorityOf(head)});
  all.push_back({":path", head.path});
  for (http2::HeaderField& f : fields) all.push_back(std::move(f));
  h2_ = codec_.host().context().h2_pool->open(this, all, request_ended_);
  if (h2_ == nullptr) {
    replyLocal(503, "no upstream connection available; retry later");
    return false;
  }
  return true;
}

bool Http2Stream::startHttp1(const http2::RequestHead& head, const http::ForwardContext& fwd) {
  DownstreamContext& ctx = codec_.host().context();
  upstream::UpstreamError why = upstream::UpstreamError::kConnectFailed;
  h1_ = ctx.pool->checkout(this, head_request_, &why);
  if (h1_ == nullptr) {
    if (why == upstream::UpstreamError::kOverloaded) {
      replyLocal(503, "no upstream connection available; retry later");
    } else {
      replyLocal(502, "upstream unavailable");
    }
    return false;
  }
  // RFC 9113 §8.3.1: the request line and Host come from the pseudo-header fields;
  // framing is per hop (RFC 9112 §6), so the body is length-delimited when the client
  // said how long it is, chunked otherwise.
  std::string& out = h1_->out();
  out.append(head.method).append(" ").append(head.path).append(" HTTP/1.1\r\n");
  out.append("Host: ").append(authorityOf(head)).append("\r\n");
  bool has_length = false;
  for (const http2::HeaderField& f : forwardedFields(head, fwd, /*to_http2=*/false)) {
    if (f.name == "content-length") has_length = true;
    out.append(f.name).append(": ").append(f.value).append("\r\n");
  }
  if (!has_length) {
    if (!request_ended_) {
      out.append("Transfer-Encoding: chunked\r\n");
      chunked_ = true;
    } else if (head.method == "POST" || head.method == "PUT" || head.method == "PATCH") {
      out.append("Content-Length: 0\r\n");
    }
  }
  out.append("\r\n");
  return true;
}

void Http2Stream::onRequestData(const char* data, size_t len) {
  request_bytes_ += len;
  unconsumed_ += len;
  if (h1_ != nullptr) {
    int rc = h1_->sendBody(std::string_view(data, len), chunked_);
    if (rc == 0) rc = h1_->flush();
    if (rc < 0) {
      http1WriteFailed(rc);
      return;
    }
  } else if (h2_ != nullptr) {
    if (h2_->sendBody(data, len) < 0) return;  // the stream is over; its outcome follows
  }
  consumeIfAccepted();
}

void Http2Stream::onRequestTrailers(http2::HeaderFields& trailers) {
  // Only an HTTP/2 upstream can carry request trailers (gRPC clients rarely send any);
  // an HTTP/1.1 upstream gets the body without them, as HTTP/1.1 agents send it.
  request_trailers_ = std::move(trailers);
}

void Http2Stream::onRequestEnd() {
  request_ended_ = true;
  if (h1_ != nullptr) {
    endHttp1Request();
  } else if (h2_ != nullptr) {
    h2_->endRequest(request_trailers_.empty() ? nullptr : &request_trailers_);
  }
}

void Http2Stream::endHttp1Request() {
  if (chunked_) h1_->out().append(http::kLastChunk);
  int rc = h1_->flush();
  if (rc < 0) {
    http1WriteFailed(rc);
    return;
  }
  h1_->requestComplete();
}

void Http2Stream::http1WriteFailed(int rc) {
  upstream::UpstreamConnection* failed = h1_;
  h1_ = nullptr;
  if (failed->replayable()) {
    onUpstreamReplayable(std::move(failed->out()), uv_strerror(rc));
  } else {
    onUpstreamError(upstream::UpstreamError::kClosedEarly, "write to upstream failed");
  }
}

void Http2Stream::consumeIfAccepted() {
  if (unconsumed_ == 0 || upstreamQueued() > kHighWatermark) return;
  codec_.session().consume(id_, unconsumed_);
  unconsumed_ = 0;
}

size_t Http2Stream::upstreamQueued() const {
  if (h1_ != nullptr) return h1_->queuedBytes();
  if (h2_ != nullptr) return h2_->queuedBytes();
  return 0;
}

void Http2Stream::pauseUpstream() {
  if (paused_) return;
  paused_ = true;
  paused_ms_ = uv_now(codec_.host().context().loop);
  if (h1_ != nullptr) h1_->pauseReading();
  if (h2_ != nullptr) h2_->pauseReading();
}

void Http2Stream::resumeUpstream() {
  if (!paused_) return;
  paused_ = false;
  if (h1_ != nullptr) h1_->resumeReading();
  if (h2_ != nullptr) h2_->resumeReading();
}

void Http2Stream::onResponseDrained() { resumeUpstream(); }

void Http2Stream::onResponseHead(http::MessageHead& head) {
  if (done_ || head.status < 200) return;  // interim responses are not relayed over h2
  status_ = head.status;
  held_head_.clear();
  for (size_t i = 0; i < head.headerCount(); ++i) {
    http::MessageHead::Header h = head.header(i);
    // RFC 9113 §8.2.2: connection-specific fields, and those Connection names, never
    // reach an HTTP/2 client.
    if (http::isHopByHop(h.name) || head.connectionHas(h.name)) continue;
    if (head.chunked && http::equalsIgnoreCase(h.name, "content-length")) continue;
    held_head_.push_back({lowerCase(h.name), std::string(h.value)});
  }
  head_pending_ = true;
  int cls = head.status / 100;
  DownstreamContext& ctx = codec_.host().context();
  if (cls >= 1 && cls <= 5) ctx.stats->responses_by_class[static_cast<size_t>(cls)].add();
}

void Http2Stream::submitHead(bool end_stream) {
  if (!head_pending_) return;
  head_pending_ = false;
  response_started_ = true;
  codec_.session().submitResponse(id_, status_, held_head_, end_stream);
  held_head_.clear();
}

void Http2Stream::onResponseBody(const char* data, size_t len) {
  if (done_) return;
  submitHead(false);
  response_bytes_ += len;
  codec_.session().sendData(id_, data, len);
  if (h2_ != nullptr) h2_->consumed(len);  // credit is held back while paused
  if (codec_.session().bufferedResponseBytes(id_) > kHighWatermark) pauseUpstream();
}

void Http2Stream::onResponseTrailers(const http::MessageHead& trailers) {
  trailers_.clear();
  for (size_t i = 0; i < trailers.headerCount(); ++i) {
    http::MessageHead::Header h = trailers.header(i);
    if (http::isHopByHop(h.name)) continue;
    trailers_.push_back({lowerCase(h.name), std::string(h.value)});
  }
}

void Http2Stream::onResponseComplete() {
  h1_ = nullptr;
  h2_ = nullptr;
  if (done_) return;
  done_ = true;
  if (head_pending_ && trailers_.empty()) {
    // A trailers-only gRPC answer (grpc-status in the head) stays one HEADERS frame.
    submitHead(true);
  } else {
    submitHead(false);
    codec_.session().endResponse(id_, trailers_.empty() ? nullptr : &trailers_);
  }
  codec_.host().context().stats->request_duration.observe(
      static_cast<double>(uv_hrtime() - start_ns_) / 1e9);
  writeAccessLog();
  if (!request_ended_) consumeIfAccepted();
  codec_.flushSoon();
}

void Http2Stream::onUpstreamError(upstream::UpstreamError error, const char* detail) {
  h1_ = nullptr;
  h2_ = nullptr;
  if (done_) return;
  log::debug("upstream error", {{"stream", static_cast<int64_t>(id_)},
                                {"reason", upstream::toString(error)},
                                {"detail", detail}});
  if (response_started_) {
    // The head is out: a cut body must never look complete, so the stream is reset.
    done_ = true;
    codec_.session().resetStream(id_, NGHTTP2_INTERNAL_ERROR);
    writeAccessLog();
    codec_.flushSoon();
    return;
  }
  head_pending_ = false;
  switch (error) {
    case upstream::UpstreamError::kResponseTimeout:
    case upstream::UpstreamError::kStalled:
      replyLocal(504, "upstream did not respond in time");
      break;
    case upstream::UpstreamError::kOverloaded:
      replyLocal(503, "no upstream connection available; retry later");
      break;
    default:
      replyLocal(502, "upstream connection failed");
      break;
  }
  codec_.flushSoon();
}

void Http2Stream::onUpstreamReplayable(std::string unsent, const char* detail) {
  h1_ = nullptr;
  if (done_) return;
  if (replays_ > 0) {
    onUpstreamError(upstream::UpstreamError::kClosedEarly, detail);
    return;
  }
  ++replays_;
  DownstreamContext& ctx = codec_.host().context();
  ctx.stats->upstream_retries.add();
  upstream::UpstreamError why = upstream::UpstreamError::kConnectFailed;
  h1_ = ctx.pool->checkout(this, head_request_, &why, /*fresh=*/true);
  if (h1_ == nullptr) {
    onUpstreamError(why, "no upstream connection for the replay");
    return;
  }
  h1_->out() = std::move(unsent);
  if (request_ended_) endHttp1Request();
}

void Http2Stream::onUpstreamEventDone() { codec_.flushSoon(); }

void Http2Stream::onUpstreamDrained() {
  consumeIfAccepted();
  codec_.flushSoon();
}

void Http2Stream::replyLocal(int status, const char* message) {
  releaseUpstream();
  done_ = true;
  status_ = status;
  DownstreamContext& ctx = codec_.host().context();
  ctx.stats->local_responses.add();
  ctx.stats->responses_by_class[static_cast<size_t>(status / 100)].add();
  http2::ServerSession& session = codec_.session();
  if (grpc_) {
    // gRPC clients read the outcome from grpc-status, never from :status (a trailers-only
    // response, "gRPC over HTTP/2").
    status_ = 200;
    session.submitResponse(id_, 200,
                           {{"content-type", "application/grpc"},
                            {"grpc-status", grpcStatusFor(status)},
                            {"grpc-message", grpcMessage(message)}},
                           true);
  } else {
    std::string body = http::localResponseBody(message);
    http2::HeaderFields fields = {{"content-type", "application/json"},
                                  {"content-length", std::to_string(body.size())}};
    if (status == 503) fields.push_back({"retry-after", "1"});
    session.submitResponse(id_, status, fields, false);
    session.sendData(id_, body.data(), body.size());
    session.endResponse(id_, nullptr);
    response_bytes_ = body.size();
  }
  response_started_ = true;
  writeAccessLog();
  // The rest of the request body is read and dropped: give its window back as it comes.
  consumeIfAccepted();
}

uint64_t Http2Stream::deadline() const {
  if (done_) return UINT64_MAX;
  const config::ServerConfig& s = codec_.host().context().config->server;
  uint64_t deadline = request_ended_ ? UINT64_MAX : start_ms_ + toMs(s.read_timeout);
  // A client that keeps its window shut stalls the response as a socket that is not read
  // stalls a write: the same limit ends it (issue 10 item 5).
  if (paused_) deadline = std::min(deadline, paused_ms_ + toMs(s.write_timeout));
  return deadline;
}

void Http2Stream::onDeadline() {
  if (done_) return;
  if (response_started_) {
    done_ = true;
    codec_.session().resetStream(id_, NGHTTP2_CANCEL);
    writeAccessLog();
    return;
  }
  head_pending_ = false;
  replyLocal(408, "request body not received in time");
}

void Http2Stream::onClosed(uint32_t error_code) {
  releaseUpstream();
  if (!done_) {
    // Reset by the client, or by the session (a protocol error in this stream).
    done_ = true;
    log::debug("stream reset",
               {{"stream", static_cast<int64_t>(id_)}, {"code", http2::errorCodeName(error_code)}});
  }
  if (!logged_) writeAccessLog();
}

void Http2Stream::releaseUpstream() {
  if (h1_ != nullptr) {
    upstream::UpstreamConnection* conn = h1_;
    h1_ = nullptr;
    conn->detach();
  }
  if (h2_ != nullptr) {
    upstream::H2Stream* s = h2_;
    h2_ = nullptr;
    s->cancel();
  }
}

void Http2Stream::writeAccessLog() {
  if (logged_) return;
  logged_ = true;
  DownstreamContext& ctx = codec_.host().context();
  if (ctx.access_log == nullptr) return;
  AccessLog::Entry e;
  codec_.host().fillAccessLog(e);
  e.http_version = "2";
  facts_.fill(e);
  e.method = method_;
  e.path = path_;
  e.status = status_;
  e.bytes_in = request_bytes_;
  e.bytes_out = response_bytes_;
  e.duration_s = static_cast<double>(uv_hrtime() - start_ns_) / 1e9;
  ctx.access_log->write(e);
}

}  // namespace proxy::downstream
