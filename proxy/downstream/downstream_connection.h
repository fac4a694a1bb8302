// DownstreamConnection: one client connection: socket, optional TlsSession, request
// parser, and the lease on an upstream connection while a request is in flight. The
// state machine of the proxy lives here (docs/architecture.md follows one request
// through it). Implements ResponseSink so responses flow back through it.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "proxy/common/stats.h"
#include "proxy/config/config.h"
#include "proxy/downstream/access_log.h"
#include "proxy/downstream/close_reason.h"
#include "proxy/downstream/http2_codec.h"
#include "proxy/downstream/log_limiter.h"
#include "proxy/http/head_writer.h"
#include "proxy/http/http1_parser.h"
#include "proxy/tls/tls_session.h"
#include "proxy/upstream/response_sink.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/uv/read_buffer.h"
#include "proxy/uv/stream_writer.h"

namespace proxy::tls {
class TlsContext;
}
namespace proxy::upstream {
class H2Pool;
}

namespace proxy::downstream {

class DownstreamConnection;
class AccessLog;

// What every connection of one worker shares. Owned by the Worker; outlives every
// connection. Loop thread only.
struct DownstreamContext {
  uv_loop_t* loop = nullptr;
  const config::Config* config = nullptr;
  upstream::UpstreamPool* pool = nullptr;
  upstream::H2Pool* h2_pool = nullptr;  // gRPC calls of HTTP/2 clients go over h2c
  WorkerStats* stats = nullptr;
  uv::ReadBuffer* read_buffer = nullptr;
  std::shared_ptr<const tls::TlsContext> tls;  // current context; replaced on reload
  AccessLog* access_log = nullptr;             // nullptr = access log off
  bool draining = false;
  LogLimiter failure_log_limiter;  // handshake-failure log lines, per peer address
  // Frees a connection; called from its last close callback.
  virtual void erase(DownstreamConnection* conn) = 0;
  virtual ~DownstreamContext() = default;
};

// Owned by the Listener (unique_ptr in its map). Loop thread only. close() starts the
// teardown; the context erases (frees) the connection in the last close callback.
class DownstreamConnection : public upstream::ResponseSink,
                             public http::Http1Parser::Callbacks,
                             public uv::StreamWriter::Owner,
                             public Http2Host {
 public:
  DownstreamConnection(DownstreamContext& ctx, uint64_t id);
  ~DownstreamConnection() override;
  DownstreamConnection(const DownstreamConnection&) = delete;
  DownstreamConnection& operator=(const DownstreamConnection&) = delete;

  // Accepts a pending connection from `server` and starts reading. On failure the
  // connection is already closing.
  int accept(uv_stream_t* server);
  // Graceful shutdown: close now when idle, else after the current response (which
  // carries Connection: close).
  void drain();
  // Starts teardown. Idempotent; never frees. `reset` sends a TCP RST instead of FIN.
  void close(CloseReason reason, bool reset = false);
  bool closing() const { return conn_state_ == ConnState::kClosing; }
  uint64_t id() const { return id_; }

 private:
  enum class ConnState { kHandshaking, kOpen, kFinishing, kLingering, kClosing };
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
  // StreamWriter::Owner
  void onWriteDone(int status) override;
  // Http2Host (downstream_http2.cc)
  DownstreamContext& h2Context() override { return ctx_; }
  // Also used by the HTTP/1.1 side for its forwarded fields.
  http::ForwardContext h2Forward() override;
  // Also used by the HTTP/1.1 side's access-log line.
  void h2FillAccessLog(AccessLog::Entry& e) override;
  void h2Flush() override;

  // HTTP/2 mode (downstream_http2.cc). The codec is chosen once per connection: ALPN h2
  // under TLS, the connection preface on a plain listener.
  void startHttp2();
  // Plain listener: true once the first bytes decided the protocol (h2c preface or not).
  bool detectPreface();
  void feedHttp2();
  // Frames the session has ready, appended to out_ while the write queue has room.
  void produceHttp2();
  uint64_t http2Deadline() const;
  void onHttp2Timer(uint64_t now);
  void drainHttp2();

  static void uvOnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void uvOnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void uvOnTimer(uv_timer_t* t);
  static void uvOnClose(uv_handle_t* h);
  static void uvOnShutdown(uv_shutdown_t* req, int status);
  void onRead(ssize_t nread, const uv_buf_t* buf);
  void onEof();
  void onTimer();

  // Feeds TLS and the parser until nothing moves, then flushes. Re-entrant calls
  // schedule one more pass instead of recursing. May close this connection.
  void pump();
  bool pumpOnce();  // true when TLS produced plaintext in this pass
  void parseInput(const char* data, size_t len, bool owned);
  void parsePending();
  void onParseError();
  void onHandshakeDone();
  void onHandshakeFailed();
  // Sends buffered plaintext (encrypting it under TLS). May close this connection.
  void flush();
  void respondLocal(int status, const char* message);
  // A flush towards the upstream failed with `rc`: replay or answer the request.
  void upstreamWriteFailed(int rc);
  void finish();  // no more input; close once everything is written
  void startNextRequest();
  void beginRequest();  // first byte of a request: its clocks and counters start
  void updateReading();
  void rearmTimer();
  bool requestBlocked() const;
  size_t pendingInput() const { return in_.size() - in_off_; }
  size_t queuedOutput() const { return out_.size() + writer_.queued(); }
  bool idle() const;
  void releaseIdleMemory();
  void writeAccessLog();

  DownstreamContext& ctx_;
  uint64_t id_;
  uv_tcp_t socket_{};
  uv_timer_t timer_{};
  std::unique_ptr<uv_shutdown_t> shutdown_req_;  // in flight while lingering; freed with us
  int open_handles_ = 0;
  uv::StreamWriter writer_;
  std::unique_ptr<tls::TlsSession> tls_;
  http::Http1Parser parser_;
  upstream::UpstreamConnection* upstream_ = nullptr;  // leased; set by onHead only

  ConnState conn_state_ = ConnState::kOpen;
  RequestState request_state_ = RequestState::kIdle;
  ResponseState response_state_ = ResponseState::kNone;
  http::BodyFraming request_framing_ = http::BodyFraming::kNone;
  http::BodyFraming response_framing_ = http::BodyFraming::kNone;
  bool close_after_ = false;  // Connection: close decided for the current response
  bool peer_eof_ = false;     // the client half-closed after a complete request
  bool reading_ = false;
  bool discard_body_ = false;  // the request is being answered locally
  int pump_depth_ = 0;
  bool repump_ = false;

  std::string in_;  // plaintext received and not yet parsed (from in_off_)
  size_t in_off_ = 0;
  std::string out_;  // plaintext to send at the next flush
  std::string peer_ip_;
  uint16_t peer_port_ = 0;
  bool peer_trusted_ = false;
  std::unique_ptr<Http2Codec> h2_;  // set once the connection speaks HTTP/2
  bool preface_checked_ = false;    // the protocol of a plain connection is decided
  uint64_t drain_started_ms_ = 0;

  uint8_t client_major_ = 1;
  uint8_t client_minor_ = 1;
  bool head_request_ = false;
  uint64_t accepted_at_ms_ = 0;
  uint64_t request_start_ms_ = 0;
  uint64_t last_progress_ms_ = 0;  // last completed write, for write_timeout
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
  CloseReason close_reason_ = CloseReason::kDone;
};

}  // namespace proxy::downstream
