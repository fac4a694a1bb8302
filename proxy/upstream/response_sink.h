// ResponseSink: how an upstream connection hands a response back to whoever sent the
// request. Declared here, implemented by DownstreamConnection, so callbacks point up
// while includes only point down (downstream -> upstream).
#pragma once

#include <cstddef>
#include <string>

#include "proxy/http/message.h"

namespace proxy::upstream {

// Why an upstream exchange failed. Drives the downstream's local response (502/504)
// or its decision to cut the client connection.
enum class UpstreamError {
  kConnectFailed,    // could not connect (refused, unreachable, connect timeout) -> 502
  kResponseTimeout,  // no response byte within response_timeout -> 504
  kClosedEarly,      // closed or reset before a complete response head -> 502
  kBadResponse,      // the response did not parse -> 502
  kClosedMidBody,    // closed inside the response body: the client must see a cut
  kStalled,          // no byte either way for stream_idle_timeout after the head: a cut
  kOverloaded,       // every upstream connection busy and the wait queue full or timed out -> 503
  // An h2c upstream refused the request unprocessed (RST_STREAM REFUSED_STREAM, or a
  // GOAWAY below its stream) more often than the proxy resends, or with a body too large
  // to resend -> 503; gRPC 14 UNAVAILABLE, which clients may safely retry.
  kRefused,
  // An h2c upstream reset the stream with a code other than REFUSED_STREAM: it may have
  // processed the request, so the client is told what it would read from that reset
  // itself (gRPC's mapping of RST_STREAM codes), never "unavailable", which gRPC clients
  // retry. A cut if the client already has the response head.
  kStreamReset,        // INTERNAL_ERROR and every other code -> 502; gRPC 13 INTERNAL
  kStreamCancelled,    // CANCEL -> 502; gRPC 1 CANCELLED
  kStreamRefusedBusy,  // ENHANCE_YOUR_CALM -> 503; gRPC 8 RESOURCE_EXHAUSTED
};
const char* toString(UpstreamError e);

class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  // A response head arrived (1xx interim heads too: check head.status).
  virtual void onResponseHead(http::MessageHead& head) = 0;
  // Decoded response body bytes; valid only during the call.
  virtual void onResponseBody(const char* data, size_t len) = 0;
  // Trailer fields after the body (HTTP/2 upstreams: gRPC's grpc-status). Called at most
  // once, just before onResponseComplete. Sinks that cannot relay trailers ignore them.
  virtual void onResponseTrailers(const http::MessageHead& trailers) { (void)trailers; }
  // The final response is complete. The upstream connection is detached from this
  // sink before the call (it went back to the pool or is closing).
  virtual void onResponseComplete() = 0;
  // The exchange failed; the upstream connection is detached before the call.
  virtual void onUpstreamError(UpstreamError error, const char* detail) = 0;
  // The connection failed before a single request byte was written to it (refused, or
  // a keep-alive connection the upstream closed while it was idle): the upstream never
  // saw the request, so it may be sent again on another connection (RFC 9110 §9.2.2).
  // `unsent` is every request byte queued so far. Detached before the call.
  virtual void onUpstreamReplayable(std::string unsent, const char* detail) = 0;
  // The upstream finished handling one read or write event: flush what was produced.
  virtual void onUpstreamEventDone() = 0;
  // The request bytes queued towards the upstream fell below the low watermark.
  virtual void onUpstreamDrained() = 0;
};

}  // namespace proxy::upstream
