// UpstreamRequest: one request leased to the upstream, whichever client codec carries it:
// an UpstreamConnection (HTTP/1.1, one exchange per connection at a time) or an H2Stream
// (h2c, multiplexed). A downstream request sends its body and end through this one
// interface and gets its response through the ResponseSink the lease was made for. How
// the lease was made (a pool checkout, an h2c open) and the HTTP/1.1 head are the only
// codec-specific steps.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "proxy/http/http2/session_common.h"

namespace proxy::upstream {

// Implemented by UpstreamConnection and H2Stream, owned by their pools. Loop thread only.
class UpstreamRequest {
 public:
  virtual ~UpstreamRequest() = default;
  // Request body bytes. `chunked`: the HTTP/1.1 head announced Transfer-Encoding: chunked
  // (an h2c stream frames by itself and ignores it). Returns 0, or a negative libuv error
  // when the lease broke under the write: it is over, and replayable()/takeUnsent() say
  // whether the request may go again. An h2c stream never returns an error: its failures
  // reach the sink.
  virtual int writeBody(std::string_view data, bool chunked) = 0;
  // Hands queued request bytes to the transport now. Returns as writeBody() does.
  virtual int flushRequest() = 0;
  // The request is complete. `trailers` reach an h2c upstream only. Returns as writeBody().
  virtual int endRequest(const http2::HeaderFields* trailers, bool chunked) = 0;
  // After an error: true when the upstream cannot have seen a byte of the request, and
  // then every request byte queued so far, to be sent again elsewhere.
  virtual bool replayable() const = 0;
  virtual std::string takeUnsent() = 0;
  // Request bytes accepted but not yet handed to the kernel (or framed, for h2c).
  virtual size_t queuedBytes() const = 0;
  // Response backpressure: stop/start taking response bytes from the upstream.
  virtual void pauseReading() = 0;
  virtual void resumeReading() = 0;
  // The client accepted `n` response body bytes (flow-control credit, where there is any).
  virtual void responseConsumed(size_t n) { (void)n; }
  // The downstream lets go mid-exchange: the sink is never called again (HTTP/1.1: the
  // connection closes; h2c: RST_STREAM CANCEL). The pointer must not be used after this.
  virtual void release() = 0;
};

}  // namespace proxy::upstream
