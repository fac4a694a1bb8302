// RequestStream: one request and its response, from the request's first byte to the
// response's end, whichever protocol the client speaks. It holds what both server codecs
// share: the upstream lease (an HTTP/1.1 pool connection or an h2c stream), the request
// body's way upstream with backpressure, the one replay of a request the upstream never
// saw, the response relayed through a StreamEncoder, local replies as values, the
// request deadlines' outcome, the metrics and the access-log record. The codec owns the
// stream and is its StreamEncoder: it turns the stream's decisions into bytes (HTTP/1.1)
// or frames (HTTP/2). No socket here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/downstream/access_log.h"
#include "proxy/http/http2/session_common.h"
#include "proxy/upstream/response_sink.h"
#include "proxy/upstream/upstream_request.h"

namespace proxy::downstream {

class CodecHost;

// An answer the proxy makes itself. Each codec encodes it its own way: JSON with the
// status (HTTP/1.1 adds Connection: close), or for a gRPC call over HTTP/2 a
// trailers-only 200 with grpc-status and grpc-message.
struct LocalReply {
  int status;           // 400, 405, 408, 413, 431, 502, 503, 504
  const char* message;  // for the client, and the gRPC grpc-message
  // The grpc-status for a gRPC call; nullptr: the one `status` stands for
  // (http2::grpcStatusFor: 4 for 408 and 504, else 14).
  const char* grpc_status = nullptr;
};
// What the client is told when the upstream exchange failed before a response started.
LocalReply localReplyFor(upstream::UpstreamError error);

// Why a response that already reached the client must be cut instead of ended: a cut
// body must never look complete (HTTP/1.1: the connection is reset; HTTP/2: the stream).
enum class StreamCut : uint8_t {
  kUpstreamCut,  // the upstream failed mid-response
  kTimeout,      // a stream deadline passed (the request body, or a shut client window)
};

// The codec side of a RequestStream. Each call happens once per response event, in order:
// head (interim heads first), body pieces, trailers, then exactly one of end, local reply
// or cut, then streamDone(). Loop thread only.
class StreamEncoder {
 public:
  // What a local reply put on the wire, for the log and the metrics.
  struct Encoded {
    int status;    // as the client sees it (a gRPC reply is a 200)
    size_t bytes;  // response bytes
  };

  virtual ~StreamEncoder() = default;
  // A 1xx head. Codecs that cannot relay it ignore it.
  virtual void encodeInterim(http::MessageHead& head) { (void)head; }
  // The final head. True when it reached the client now; false when the codec holds it
  // until the body or the end (HTTP/2, so that a trailers-only gRPC answer stays one
  // HEADERS frame): a failure before then can still be answered with a local reply.
  virtual bool encodeHead(http::MessageHead& head) = 0;
  // Response body bytes, valid during the call; a held head goes first.
  virtual void encodeBody(const char* data, size_t len) = 0;
  // Trailer fields, just before encodeEnd. Codecs that cannot relay them ignore them.
  virtual void encodeTrailers(const http::MessageHead& trailers) { (void)trailers; }
  // The response is complete.
  virtual void encodeEnd() = 0;
  // The proxy's own answer, replacing a held head.
  virtual Encoded encodeLocalReply(const LocalReply& reply) = 0;
  // The response must not end cleanly.
  virtual void encodeCut(StreamCut why) = 0;
  // The stream has ended and its log line is written: the codec moves on (the next
  // request, Connection: close, a reset, a flush). Always the stream's last act in a call.
  virtual void streamDone() = 0;
  // The upstream finished one read or write event: flush what was produced.
  virtual void upstreamEventDone() = 0;
  // Request bytes queued upstream fell below the low watermark.
  virtual void upstreamDrained() = 0;
  // The request moved to another upstream connection (a replay).
  virtual void leaseChanged() {}
  // The access-log fields only the codec knows (peer and TLS come from its host):
  // http_version, and close_reason when the connection ends with this request.
  virtual void fillLogEntry(AccessLog::Entry& e) = 0;
};

// Owned by its codec (a member of Http1Codec, reused request after request; one per
// Http2Stream). Its address must not change while it holds a lease: it is the lease's
// ResponseSink. Loop thread only.
class RequestStream final : public upstream::ResponseSink {
 public:
  enum class Response : uint8_t {
    kWaiting,    // no final head yet
    kHeld,       // the final head is held by the codec
    kStreaming,  // the client has the head
    kDone,       // ended: complete, answered locally, cut, or the client went away
  };

  RequestStream(CodecHost& host, StreamEncoder& encoder);
  ~RequestStream() override;
  RequestStream(const RequestStream&) = delete;
  RequestStream& operator=(const RequestStream&) = delete;

  // A request starts (its first byte, or its HEADERS): clocks and counters from zero.
  void begin();
  // The request head was read (counts the request; keeps method and path for the log).
  void onHead(std::string_view method, std::string_view path, bool head_request);
  // True when an access log is written (the codec captures the head's facts then).
  bool logging() const;
  AccessLog::RequestFacts& facts() { return facts_; }
  void countRequestBytes(uint64_t n) { request_bytes_ += n; }
  void countResponseBytes(uint64_t n) { response_bytes_ += n; }

  // Leases an HTTP/1.1 upstream connection and returns the buffer the codec writes the
  // request head into; nullptr when there is none (the stream has answered: 502 or 503).
  // `request_bytes`: at most what the request will take upstream, head and body
  // (http::kUnknownBytes when not known); see UpstreamPool::kTrustedIdleMs.
  std::string* leaseHttp1(uint64_t request_bytes);
  // The request head written says the body is chunked towards the upstream.
  void setChunkedBody(bool chunked) { chunked_ = chunked; }
  // Opens an h2c stream with these fields; false when there is none (answered: 503).
  bool openHttp2(http2::HeaderFields fields, bool end_stream);

  // Request body bytes towards the upstream; dropped once the stream has ended. HTTP/1.1
  // bytes gather until the low watermark or flushRequest().
  void sendBody(const char* data, size_t len);
  void flushRequest();
  // The request is complete (`trailers` reach an h2c upstream only).
  void endRequest(const http2::HeaderFields* trailers);
  // Request bytes queued towards the upstream and not yet taken by its kernel.
  size_t upstreamQueued() const;

  // The client cannot take more response bytes now: stop (or restart) reading the upstream.
  void pauseUpstream();
  void resumeUpstream();

  // Answers the request now (a response already streaming is cut instead).
  void replyLocal(const LocalReply& reply);
  // The stream's deadline in loop ms: read_timeout from begin() until the request ended;
  // with `limit_pause`, also write_timeout from the moment the upstream was paused.
  uint64_t deadline(bool limit_pause) const;
  // A deadline passed: 408 while no response reached the client, a cut after.
  void onDeadline();
  // The client or the connection ended the stream: let go of the upstream, log once.
  void onClientGone();
  // Lets go of the upstream lease (an HTTP/1.1 connection closed mid-exchange, an h2c
  // stream cancelled).
  void release();
  // Between requests: give back the log fields' heap.
  void releaseMemory();

  Response response() const { return response_; }
  bool done() const { return response_ == Response::kDone; }
  bool requestEnded() const { return request_ended_; }
  uint64_t startMs() const { return start_ms_; }

 private:
  // ResponseSink
  void onResponseHead(http::MessageHead& head) override;
  void onResponseBody(const char* data, size_t len) override;
  void onResponseTrailers(const http::MessageHead& trailers) override;
  void onResponseComplete() override;
  void onUpstreamError(upstream::UpstreamError error, const char* detail) override;
  void onUpstreamReplayable(std::string unsent, const char* detail) override;
  void onUpstreamEventDone() override;
  void onUpstreamDrained() override;

  // A write through the lease failed with `rc` (the lease is over): replay or answer.
  void writeFailed(int rc);
  void cut(StreamCut why);
  void observeDuration();
  void writeAccessLog();

  CodecHost& host_;
  StreamEncoder& encoder_;
  upstream::UpstreamRequest* lease_ = nullptr;  // an HTTP/1.1 connection or an h2c stream
  Response response_ = Response::kWaiting;
  bool head_request_ = false;
  bool chunked_ = false;  // the HTTP/1.1 upstream request body is chunked
  bool request_ended_ = false;
  bool paused_ = false;
  bool logged_ = false;
  int replays_ = 0;  // times this request was sent again on a new upstream connection
  int status_ = 0;
  uint64_t start_ms_ = 0;
  uint64_t paused_ms_ = 0;
  uint64_t start_ns_ = 0;
  uint64_t request_done_ns_ = 0;  // the request's last byte was queued upstream
  uint64_t upstream_ns_ = 0;      // request done -> response head
  uint64_t request_bytes_ = 0;
  uint64_t response_bytes_ = 0;
  std::string method_;
  std::string path_;
  AccessLog::RequestFacts facts_;
};

}  // namespace proxy::downstream
