#include "proxy/downstream/http2_stream.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "proxy/common/log.h"
#include "proxy/downstream/downstream_connection.h"
#include "proxy/downstream/downstream_limits.h"
#include "proxy/downstream/http2_codec.h"
#include "proxy/http/http2/forwarding.h"

namespace proxy::downstream {

Http2Stream::Http2Stream(Http2Codec& codec, int32_t id)
    : codec_(codec), id_(id), stream_(codec.host(), *this) {
  stream_.begin();
}

// ---- the request side ----

void Http2Stream::onRequestHead(http2::RequestHead& head) {
  stream_.onHead(head.method, head.path, head.method == "HEAD");
  bool logging = stream_.logging();
  for (const http2::HeaderField& f : head.headers) {
    if (logging) stream_.facts().captureHeader(f.name, f.value);
    if (f.name == "content-type" && std::string_view(f.value).substr(0, 16) == "application/grpc") {
      grpc_ = true;
    }
  }
  if (head.method == "CONNECT") {
    stream_.replyLocal({405, "method not supported by the proxy"});
    return;
  }
  CodecHost& host = codec_.host();
  http::ForwardContext fwd = host.forwardContext();
  if (grpc_ && host.context().h2_pool != nullptr) {
    bool end_stream = head.end_stream;
    stream_.openHttp2(http2::upstreamRequestFields(std::move(head), fwd), end_stream);
    return;
  }
  std::string* out = stream_.leaseHttp1(http2::http1RequestBytesBound(head, fwd));
  if (out == nullptr) return;  // answered: 502 or 503
  http::BodyFraming framing = http2::writeHttp1Request(head, fwd, *out);
  stream_.setChunkedBody(framing == http::BodyFraming::kChunked);
  if (head.end_stream) stream_.endRequest(nullptr);
}

void Http2Stream::onRequestData(const char* data, size_t len) {
  stream_.countRequestBytes(len);
  unconsumed_ += len;
  stream_.sendBody(data, len);
  stream_.flushRequest();  // each DATA frame goes upstream as it comes
  consumeIfAccepted();
}

void Http2Stream::onRequestTrailers(http2::HeaderFields& trailers) {
  // Only an HTTP/2 upstream can carry request trailers (gRPC clients rarely send any);
  // an HTTP/1.1 upstream gets the body without them, as HTTP/1.1 agents send it.
  request_trailers_ = std::move(trailers);
}

void Http2Stream::onRequestEnd() {
  stream_.endRequest(request_trailers_.empty() ? nullptr : &request_trailers_);
}

void Http2Stream::consumeIfAccepted() {
  if (unconsumed_ == 0 || stream_.upstreamQueued() > kHighWatermark) return;
  codec_.session().consume(id_, unconsumed_);
  unconsumed_ = 0;
}

void Http2Stream::onClosed(uint32_t error_code) {
  if (!stream_.done()) {
    // Reset by the client, or by the session (a protocol error in this stream).
    log::debug("stream reset",
               {{"stream", static_cast<int64_t>(id_)}, {"code", http2::errorCodeName(error_code)}});
  }
  stream_.onClientGone();
}

// ---- the response side: StreamEncoder ----

bool Http2Stream::encodeHead(http::MessageHead& head) {
  status_ = head.status;
  held_head_ = http2::responseFields(head);
  if (grpc_) noteGrpcStatus(held_head_);  // a trailers-only answer carries it here
  head_pending_ = true;
  return false;
}

void Http2Stream::submitHead(bool end_stream) {
  if (!head_pending_) return;
  head_pending_ = false;
  codec_.session().submitResponse(id_, status_, held_head_, end_stream);
  held_head_.clear();
}

void Http2Stream::encodeBody(const char* data, size_t len) {
  submitHead(false);
  codec_.session().sendData(id_, data, len);
  if (codec_.session().bufferedResponseBytes(id_) > kHighWatermark) stream_.pauseUpstream();
}

void Http2Stream::encodeTrailers(const http::MessageHead& trailers) {
  trailers_ = http2::trailerFields(trailers);
  if (grpc_) noteGrpcStatus(trailers_);
}

void Http2Stream::noteGrpcStatus(const http2::HeaderFields& fields) {
  for (const http2::HeaderField& f : fields) {
    if (f.name != "grpc-status") continue;
    // A gRPC status is 0..16; anything else is logged as absent, not guessed at.
    int value = -1;
    if (!f.value.empty() && f.value.size() <= 2 &&
        std::all_of(f.value.begin(), f.value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      value = std::stoi(f.value);
    }
    grpc_status_ = value <= 16 ? value : -1;
  }
}

void Http2Stream::encodeEnd() {
  codec_.responseEnded();
  if (head_pending_ && trailers_.empty()) {
    // A trailers-only gRPC answer (grpc-status in the head) stays one HEADERS frame.
    submitHead(true);
    return;
  }
  submitHead(false);
  codec_.session().endResponse(id_, trailers_.empty() ? nullptr : &trailers_);
}

StreamEncoder::Encoded Http2Stream::encodeLocalReply(const LocalReply& reply) {
  head_pending_ = false;
  held_head_.clear();
  http2::ServerSession& session = codec_.session();
  if (grpc_) {
    // gRPC clients read the outcome from grpc-status, never from :status (a trailers-only
    // response, "gRPC over HTTP/2").
    const char* grpc_status =
        reply.grpc_status != nullptr ? reply.grpc_status : http2::grpcStatusFor(reply.status);
    grpc_status_ = std::atoi(grpc_status);
    session.submitResponse(id_, 200,
                           {{"content-type", "application/grpc"},
                            {"grpc-status", grpc_status},
                            {"grpc-message", http2::grpcMessage(reply.message)}},
                           true);
    return {200, 0};
  }
  std::string body = http::localResponseBody(reply.message);
  http2::HeaderFields fields = {{"content-type", "application/json"},
                                {"content-length", std::to_string(body.size())}};
  if (reply.status == 503) fields.push_back({"retry-after", "1"});
  session.submitResponse(id_, reply.status, fields, false);
  session.sendData(id_, body.data(), body.size());
  session.endResponse(id_, nullptr);
  return {reply.status, body.size()};
}

void Http2Stream::encodeCut(StreamCut why) {
  // Only this stream ends; the connection and its other streams go on.
  codec_.session().resetStream(
      id_, why == StreamCut::kUpstreamCut ? NGHTTP2_INTERNAL_ERROR : NGHTTP2_CANCEL);
}

void Http2Stream::streamDone() {
  if (grpc_status_ >= 0 && !grpc_counted_) {
    grpc_counted_ = true;
    codec_.host().context().stats->grpc_responses[static_cast<size_t>(grpc_status_)].add();
  }
  // The rest of the request body is read and dropped: give its window back as it comes.
  if (!stream_.requestEnded()) consumeIfAccepted();
  codec_.flushSoon();
}

void Http2Stream::upstreamEventDone() { codec_.flushSoon(); }

void Http2Stream::upstreamDrained() {
  consumeIfAccepted();
  codec_.flushSoon();
}

void Http2Stream::fillLogEntry(AccessLog::Entry& e) {
  codec_.host().fillAccessLog(e);
  e.http_version = "2";
  e.grpc_status = grpc_status_;
}

}  // namespace proxy::downstream
