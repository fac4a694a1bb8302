// Http2Stream: one request of an HTTP/2 client, as the HTTP/2 side of its RequestStream.
// It picks the upstream (gRPC calls over h2c through H2Pool, other requests over the
// HTTP/1.1 pool) with the forwarding policy of http2/forwarding, feeds the request's
// DATA to the stream and gives the client's window back as the upstream takes the bytes,
// and, as the stream's StreamEncoder, turns the response into frames: the head held until
// the body or the end, trailers, a reset for a cut, and local replies as JSON or as gRPC's
// trailers-only UNAVAILABLE. Talks to the client only through the codec's ServerSession.
#pragma once

#include <cstdint>

#include "proxy/downstream/request_stream.h"
#include "proxy/http/http2/server_session.h"

namespace proxy::downstream {

class Http2Codec;

// Owned by Http2Codec, from onRequestHead until the session closes the stream (then
// freed from the codec's graveyard, outside its own calls). Loop thread only.
class Http2Stream : public StreamEncoder {
 public:
  Http2Stream(Http2Codec& codec, int32_t id);
  ~Http2Stream() override = default;
  Http2Stream(const Http2Stream&) = delete;
  Http2Stream& operator=(const Http2Stream&) = delete;

  // Events from the client, in order (see ServerSession::Callbacks).
  void onRequestHead(http2::RequestHead& head);
  void onRequestData(const char* data, size_t len);
  void onRequestTrailers(http2::HeaderFields& trailers);
  void onRequestEnd();
  // Frames took buffered response bytes: the upstream may be read again.
  void onResponseDrained() { stream_.resumeUpstream(); }
  // The session closed the stream (done, or reset by either side): let go of the
  // upstream; no more calls follow except the destructor.
  void onClosed(uint32_t error_code);
  // The stream's next deadline in loop ms: the request's (read_timeout) until it ended,
  // and server.write_timeout from the moment response bytes pile up because the client
  // does not open its window (the upstream is paused); UINT64_MAX when none runs.
  uint64_t deadline() const { return stream_.deadline(/*limit_pause=*/true); }
  // The deadline passed: 408 (or a reset once the response started).
  void onDeadline() { stream_.onDeadline(); }

 private:
  // StreamEncoder
  bool encodeHead(http::MessageHead& head) override;
  void encodeBody(const char* data, size_t len) override;
  void encodeTrailers(const http::MessageHead& trailers) override;
  void encodeEnd() override;
  Encoded encodeLocalReply(const LocalReply& reply) override;
  void encodeCut(StreamCut why) override;
  void streamDone() override;
  void upstreamEventDone() override;
  void upstreamDrained() override;
  void fillLogEntry(AccessLog::Entry& e) override;

  // Keeps the grpc-status among `fields` (a gRPC call's head or trailers) for the log.
  void noteGrpcStatus(const http2::HeaderFields& fields);
  // Sends the response head now if it is still held (see head_pending_).
  void submitHead(bool end_stream);
  // Gives request bytes back to the client's window once the upstream took them.
  void consumeIfAccepted();

  Http2Codec& codec_;
  int32_t id_;
  bool grpc_ = false;
  int grpc_status_ = -1;       // the grpc-status the client was sent; -1: none (yet)
  bool grpc_counted_ = false;  // in WorkerStats::grpc_responses
  bool head_pending_ = false;  // an upstream head is held until body or end
  int status_ = 0;             // of the held head
  size_t unconsumed_ = 0;      // request bytes not yet given back to the client's window
  http2::HeaderFields held_head_;
  http2::HeaderFields trailers_;
  http2::HeaderFields request_trailers_;
  RequestStream stream_;  // last: it may call the members above until it is destroyed
};

}  // namespace proxy::downstream
