// DownstreamConnection: the transport of one client connection: socket, optional
// TlsSession, the writer, watermarks, the handshake/idle/linger deadlines and close. It
// chooses the protocol once (ALPN, or the h2c preface on a plain listener) and owns the
// ServerCodec that speaks it (Http1Codec or Http2Codec); requests live in the codec
// (docs/architecture.md follows one request through them).
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "proxy/common/stats.h"
#include "proxy/config/config.h"
#include "proxy/downstream/access_log.h"
#include "proxy/downstream/close_reason.h"
#include "proxy/downstream/log_limiter.h"
#include "proxy/downstream/server_codec.h"
#include "proxy/http/head_writer.h"
#include "proxy/tls/tls_session.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/uv/flush_queue.h"
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
  uv::FlushQueue* flush_queue = nullptr;  // the Listener's; set before any connection
  // Where TLS connections decrypt before the codec reads (kMaxPendingInput bytes,
  // allocated by the first one), so that only what the codec leaves is copied into the
  // connection. `plaintext_busy` while a codec reads it: a nested use takes the slow path.
  std::unique_ptr<char[]> plaintext_buffer;
  bool plaintext_busy = false;
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
class DownstreamConnection : public uv::StreamWriter::Owner,
                             public CodecHost,
                             private uv::FlushQueue::Target {
 public:
  DownstreamConnection(DownstreamContext& ctx, uint64_t id);
  ~DownstreamConnection() override;
  DownstreamConnection(const DownstreamConnection&) = delete;
  DownstreamConnection& operator=(const DownstreamConnection&) = delete;

  // Accepts a pending connection from `server` and starts reading. On failure the
  // connection is already closing.
  int accept(uv_stream_t* server);
  // Graceful shutdown: close now when idle, else after the requests in flight (HTTP/1.1:
  // the current response carries Connection: close; HTTP/2: GOAWAY).
  void drain();
  // Starts teardown. Idempotent; never frees. `reset` sends a TCP RST instead of FIN.
  void close(CloseReason reason, bool reset = false) override;
  bool closing() const override { return conn_state_ == ConnState::kClosing; }
  uint64_t id() const { return id_; }

 private:
  enum class ConnState { kHandshaking, kOpen, kFinishing, kLingering, kClosing };

  // CodecHost
  DownstreamContext& context() override { return ctx_; }
  uint64_t connectionId() const override { return id_; }
  const std::string& peerIp() const override { return peer_ip_; }
  bool hasTls() const override { return tls_ != nullptr && tls_->handshakeDone(); }
  http::ForwardContext forwardContext() override;
  void fillAccessLog(AccessLog::Entry& e) override;
  bool open() const override { return conn_state_ == ConnState::kOpen; }
  bool pumping() const override { return pump_depth_ > 0; }
  std::string& output() override { return out_; }
  size_t queuedOutput() const override { return out_.size() + writer_.queued(); }
  bool writeThrough(std::string_view data) override;
  size_t pendingInput() const override { return in_.size() - in_off_; }
  uint64_t lastProgressMs() const override { return last_progress_ms_; }
  void markProgress() override;
  // Feeds TLS and the codec until nothing moves, then flushes. Re-entrant calls
  // schedule one more pass instead of recursing. May close this connection.
  void pump() override;
  // Sends buffered plaintext (encrypting it under TLS). May close this connection.
  void flush() override;
  void flushLater() override;
  void inputUnblocked() override;
  void rearmTimer() override;
  void updateReading() override;
  CloseReason closeReason() const override { return close_reason_; }
  // No more requests; close once everything is written.
  void finish(CloseReason reason) override;
  // StreamWriter::Owner
  void onWriteDone(int status) override;
  // FlushQueue::Target
  void runQueuedFlush() override;

  // The protocol of a plain connection: true once decided (the h2c preface or not).
  bool detectPreface();
  // Creates the codec of the chosen protocol. May close this connection.
  void startCodec(bool http2);

  static void uvOnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void uvOnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void uvOnTimer(uv_timer_t* t);
  static void uvOnClose(uv_handle_t* h);
  static void uvOnShutdown(uv_shutdown_t* req, int status);
  void onRead(ssize_t nread, const uv_buf_t* buf);
  void onEof();
  void onTimer();

  // Loop ms at which the open connection's codec (or, before one is chosen, the header
  // timeout) has something due; 0 outside the open state.
  uint64_t dueMs() const;
  bool pumpOnce();  // true when TLS produced plaintext in this pass
  // Decrypts what TLS holds: straight to the codec when nothing waits before it (only
  // the rest is kept in in_), else into in_. `decrypted` says whether any came out.
  // May close this connection.
  tls::TlsSession::IoStatus decrypt(bool& decrypted);
  // Offers the received plaintext to the codec and drops what it took.
  void feedPending();
  void onHandshakeDone();
  void onHandshakeFailed();
  void onHandshakeTimeout();
  // A plain connection whose first byte opens a TLS handshake record: the client was
  // told https://, this listener has no [ssl]. Says so in the log, answers 400, finishes.
  void onTlsOnPlainPort();
  void finish();
  bool requestBlocked() const { return codec_ != nullptr && codec_->requestBlocked(); }
  bool idle() const;
  void releaseIdleMemory();

  DownstreamContext& ctx_;
  uint64_t id_;
  uv_tcp_t socket_{};
  uv_timer_t timer_{};
  std::unique_ptr<uv_shutdown_t> shutdown_req_;  // in flight while lingering; freed with us
  int open_handles_ = 0;
  uv::StreamWriter writer_;
  std::unique_ptr<tls::TlsSession> tls_;
  std::unique_ptr<ServerCodec> codec_;  // set once the protocol is chosen

  ConnState conn_state_ = ConnState::kOpen;
  bool peer_eof_ = false;  // the client half-closed after a complete request
  bool reading_ = false;
  int pump_depth_ = 0;
  bool repump_ = false;

  std::string in_;  // plaintext received and not yet taken by the codec (from in_off_)
  size_t in_off_ = 0;
  std::string out_;  // plaintext to send at the next flush
  std::string peer_ip_;
  uint16_t peer_port_ = 0;
  bool peer_trusted_ = false;

  uint64_t accepted_at_ms_ = 0;
  uint64_t last_progress_ms_ = 0;  // last completed write, for write_timeout
  CloseReason close_reason_ = CloseReason::kDone;
};

}  // namespace proxy::downstream
