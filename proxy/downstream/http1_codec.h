// Http1Codec: the HTTP/1.1 side of one client connection. Parses requests with llhttp, one
// at a time (a pipelined request is parsed only after the current response), leases an
// upstream connection per request, writes response heads through http/head_writer, decides
// keep-alive and Connection: close, and answers locally (JSON) when the proxy must. The
// transport (socket, TLS, writer, close) is its CodecHost. No socket here.
#pragma once

#include <cstdint>
#include <string>

#include "proxy/downstream/access_log.h"
#include "proxy/downstream/server_codec.h"
#include "proxy/http/head_writer.h"
#include "proxy/http/http1_parser.h"
#include "proxy/upstream/response_sink.h"

namespace proxy::upstream {
class UpstreamConnection;
}

namespace proxy::downstream {

// Owned by its DownstreamConnection once the connection speaks HTTP/1.1; freed with it.
// Loop thread only.
class Http1Codec : public ServerCodec,
                   public upstream::ResponseSink,
                   public http::Http1Parser::Callbacks {
 public:
  explicit Http1Codec(CodecHost& host);
  ~Http1Codec() override;
  Http1Codec(const Http1Codec&) = delete;
  Http1Codec& operator=(const Http1Codec&) = delete;

  // ServerCodec
  size_t receive(const char* data, size_t len) override;
  bool acceptsInput() const override;
  bool requestBlocked() const override;
  void endOfPass() override;
  void onWriteDone() override;
  uint64_t deadline() const override;
  void onDeadline(uint64_t now_ms) override;
  void drain() override;
  bool idle() const override;
  EofAction onPeerEof() override;
  void closeAll() override;
  void releaseMemory() override;
  uint64_t requestsServed() const override { return requests_served_; }

 private:
  enum class RequestState { kIdle, kHead, kBody, kDone };
  enum class ResponseState { kNone, kWaiting, kStreaming, kDone };

  // ResponseSink
  void onResponseHead(http::MessageHead& head) override;
  void onResponseBody(const char* data, size_t len) override;
  void onResponseComplete() override;
  void onUpstreamError(upstream::UpstreamError error, const char* detail) override;
  void onUpstreamReplayable(std::string unsent, const char* detail) override;
  void onUpstreamEventDone() override;
  void onUpstreamDrained() override;
  // Http1Parser::Callbacks
  bool onHead(http::MessageHead& head) override;
  void onBody(const char* data, size_t len) override;
  void onMessageComplete() override;

  void onParseError();
  void beginRequest();  // first byte of a request: its clocks and counters start
  void startNextRequest();
  // A flush towards the upstream failed with `rc`: replay or answer the request.
  void upstreamWriteFailed(int rc);
  // The proxy's own answer (JSON), then the connection finishes.
  void respondLocal(int status, const char* message);
  void writeAccessLog(CloseReason reason);

  CodecHost& host_;
  http::Http1Parser parser_;
  upstream::UpstreamConnection* upstream_ = nullptr;  // leased; set by onHead and replays

  RequestState request_state_ = RequestState::kIdle;
  ResponseState response_state_ = ResponseState::kNone;
  http::BodyFraming request_framing_ = http::BodyFraming::kNone;
  http::BodyFraming response_framing_ = http::BodyFraming::kNone;
  bool close_after_ = false;   // Connection: close decided for the current response
  bool discard_body_ = false;  // the request is being answered locally

  uint8_t client_major_ = 1;
  uint8_t client_minor_ = 1;
  bool head_request_ = false;
  uint64_t request_start_ms_ = 0;
  uint64_t request_start_ns_ = 0;
  uint64_t request_done_ns_ = 0;    // the request's last byte was queued upstream
  uint64_t upstream_start_ns_ = 0;  // request done -> response head, for the access log
  uint64_t requests_served_ = 0;
  int response_status_ = 0;
  int replays_ = 0;  // times this request was sent again on a new upstream connection
  uint64_t request_bytes_ = 0;
  uint64_t response_bytes_ = 0;
  std::string method_;
  std::string path_;
  AccessLog::RequestFacts request_facts_;  // User-Agent, traceparent... for the ECS access log
};

}  // namespace proxy::downstream
