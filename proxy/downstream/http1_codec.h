// Http1Codec: the HTTP/1.1 side of one client connection. Parses requests with llhttp, one
// at a time (a pipelined request is parsed only after the current response), and hands
// each to its RequestStream (the upstream lease, replay, local replies, the log record).
// As the stream's StreamEncoder it writes response heads through http/head_writer at once
// (1xx included), re-chunks bodies without a length, writes large pieces without a copy,
// decides keep-alive and Connection: close, and encodes local replies as JSON. The
// transport (socket, TLS, writer, close) is its CodecHost. No socket here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "proxy/downstream/access_log.h"
#include "proxy/downstream/request_stream.h"
#include "proxy/downstream/server_codec.h"
#include "proxy/http/head_writer.h"
#include "proxy/http/http1_parser.h"

namespace proxy::downstream {

// Owned by its DownstreamConnection once the connection speaks HTTP/1.1; freed with it.
// Loop thread only.
class Http1Codec : public ServerCodec, public StreamEncoder, public http::Http1Parser::Callbacks {
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

  // StreamEncoder
  void encodeInterim(http::MessageHead& head) override;
  bool encodeHead(http::MessageHead& head) override;
  void encodeBody(const char* data, size_t len) override;
  void encodeEnd() override;
  Encoded encodeLocalReply(const LocalReply& reply) override;
  void encodeCut(StreamCut why) override;
  void streamDone() override;
  void upstreamEventDone() override;
  void upstreamDrained() override;
  void leaseChanged() override;
  void fillLogEntry(AccessLog::Entry& e) override;
  // Http1Parser::Callbacks
  bool onHead(http::MessageHead& head) override;
  void onBody(const char* data, size_t len) override;
  void onMessageComplete() override;

  // What a request needs and an idle connection does not: the parser and the stream.
  // Made at a request's first byte, freed by releaseMemory() between requests (about
  // 0.6 KiB per idle keep-alive connection).
  struct Core {
    Core(Http1Codec& codec, CodecHost& host);
    http::Http1Parser parser;
    RequestStream stream;
  };
  Core& core();

  void onParseError();
  void beginRequest();  // first byte of a request: its stream starts
  void startNextRequest();
  // The proxy's own answer (JSON), then the connection finishes.
  void respondLocal(int status, const char* message);

  CodecHost& host_;
  std::unique_ptr<Core> core_;  // null while idle

  RequestState request_state_ = RequestState::kIdle;
  ResponseState response_state_ = ResponseState::kNone;
  http::BodyFraming response_framing_ = http::BodyFraming::kNone;
  bool close_after_ = false;   // Connection: close decided for the current response
  bool discard_body_ = false;  // the request is being answered locally
  bool cut_ = false;           // the response was cut: the connection ends now
  uint8_t client_major_ = 1;
  uint8_t client_minor_ = 1;
  bool head_request_ = false;
  CloseReason end_reason_ = CloseReason::kDone;  // how the connection ends if it does now
  uint64_t requests_served_ = 0;
};

}  // namespace proxy::downstream
