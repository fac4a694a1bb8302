// UpstreamConnection: one plain-HTTP connection to the intake server (TCP or unix
// socket) plus its response parser. Carries one request at a time for the
// DownstreamConnection that leased it, streaming the response back through a
// ResponseSink. Owned by UpstreamPool; freed in its last close callback.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/common/status.h"
#include "proxy/http/http1_parser.h"
#include "proxy/upstream/response_sink.h"
#include "proxy/upstream/upstream_connector.h"
#include "proxy/upstream/upstream_request.h"
#include "proxy/uv/stream_writer.h"

namespace proxy::upstream {

class UpstreamPool;

// Owned by UpstreamPool (unique_ptr in its map). Loop thread only. close() starts the
// teardown; the pool erases (frees) it in the close callback.
class UpstreamConnection : public http::Http1Parser::Callbacks,
                           public uv::StreamWriter::Owner,
                           public UpstreamConnector::Client,
                           public UpstreamRequest {
 public:
  // Request bytes a reused connection keeps for a replay after an unanswered reset.
  static constexpr size_t kReplayLimit = 64 * 1024;

  // kWaiting: queued for a free connection slot (no socket yet; the timer bounds the wait).
  enum class State { kWaiting, kConnecting, kActive, kIdle, kClosing };

  UpstreamConnection(UpstreamPool& pool, uint64_t id);
  ~UpstreamConnection() override;
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  // Starts connecting through the pool's connector (or, with `wait`, queues for a free
  // slot: the pool calls connectNow() later). Failure is reported later through the sink
  // (never from here) unless no connect could be started at all (returned).
  Status connect(bool wait = false);
  // Pool: a slot is free; open the socket now. Errors are reported through the sink
  // from the next timer callback, never from inside this call.
  void connectNow();

  // Leases the connection to `sink` for one exchange. `head_request` tells the parser
  // the response has no body.
  void attach(ResponseSink* sink, bool head_request);
  // The sink goes away mid-exchange: the connection cannot be reused and closes.
  void detach();

  // Buffer for request bytes; the downstream appends to it, then calls flush().
  std::string& out() { return out_; }
  // Sends request body bytes, chunk-framed when `chunked`. Large pieces go to the kernel
  // straight from `data` (one writev after whatever out() holds); small ones, and all
  // while connecting, are queued in out(). Returns as flush() does.
  int sendBody(std::string_view data, bool chunked);
  // Hands buffered request bytes to the socket (or keeps them until connected).
  // Returns 0, or a libuv error when the socket is broken: the connection has then
  // detached and closed itself (reported as a value, never through the sink). When
  // replayable() is then true, out() still holds every request byte: none was written.
  int flush();
  // replayable(): true when this connection never wrote a request byte to its socket.
  // The whole request has been queued; the response timer starts once it is sent.
  void requestComplete();
  // queuedBytes(): bytes accepted for the upstream but not yet written to the kernel.
  // Response backpressure: stop/start reading from the upstream socket.
  void pauseReading() override;
  void resumeReading() override;

  // UpstreamRequest: the calls above for a leased exchange. Body bytes gather in out()
  // until 64 KiB or a flush; endRequest() adds the last chunk, flushes and says
  // requestComplete(); release() is detach().
  int writeBody(std::string_view data, bool chunked) override;
  int flushRequest() override { return flush(); }
  int endRequest(const http2::HeaderFields* trailers, bool chunked) override;
  bool replayable() const override { return !writer_.touched() || replay_after_reset_; }
  std::string takeUnsent() override { return std::move(out_); }
  size_t queuedBytes() const override { return out_.size() + writer_.queued(); }
  void release() override { detach(); }

  // Starts teardown: stops timers and reads, uv_close()s the handles. Idempotent.
  // Never tells the sink: callers are the sink itself or code that just told it.
  void close();
  // Worker shutdown: a leased connection fails its exchange (the sink is told), an
  // idle one just closes.
  void shutdown();
  bool closing() const { return state_ == State::kClosing; }
  State state() const { return state_; }
  uint64_t id() const { return id_; }

  // Called by the pool on an idle connection before it is reused: false when the
  // upstream has closed it (EOF or reset pending on the socket).
  bool stillOpen() const;
  // Loop time (ms) at which the connection went back to the pool.
  uint64_t idleSinceMs() const { return idle_since_ms_; }
  // The upstream is on this host (unix socket or loopback address), as connected.
  bool localPeer() const { return local_peer_; }
  // Pool: put into the idle state (reading so an upstream close is seen at once).
  void enterIdle();

 private:
  // Parser callbacks.
  bool onHead(http::MessageHead& head) override;
  void onBody(const char* data, size_t len) override;
  void onMessageComplete() override;
  // Writer callback.
  void onWriteDone(int status) override;
  // Connector callback.
  void onUpstreamConnected(const Status& status) override;

  static void uvOnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void uvOnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void uvOnTimer(uv_timer_t* t);
  static void uvOnClose(uv_handle_t* h);
  void onRead(ssize_t nread, const uv_buf_t* buf);
  void onTimer();
  void onActiveTimer();
  // The grace after an unanswered FIN passed: replay if a RST followed it, else fail.
  void onEofGrace();
  void fail(UpstreamError error, const char* detail);
  // Fails the exchange as replayable when the upstream cannot have read the request:
  // nothing was written yet, or `reset_unread`: a TCP reset that unreadIfReset() judged
  // to prove it (every written byte is then kept). Otherwise fails it as `error`.
  void failOrReplay(UpstreamError error, const char* detail, bool reset_unread = false);
  // Keeps a copy of request bytes about to be written, while replay is possible.
  void keepForReplay(std::string_view bytes);
  // A write that failed with `rc` after bytes of this request reached the kernel: when
  // the upstream cannot have read them (a reset on a reused connection with every byte
  // kept, as failOrReplay judges a reset read), moves the kept bytes back into out_ and
  // makes the exchange replayable; otherwise forgets what is unsent.
  void afterBrokenWrite(int rc);
  // The failure seen now may prove the request unread (see kUnreadResetWindowMs): the
  // connection was reused, every byte written is kept, and it was leased a moment ago.
  bool unreadIfReset() const;
  // The same for a read or write that failed with `status`: only a TCP reset
  // (ECONNRESET, or EPIPE on a write) can prove it.
  bool unreadAfter(int status) const {
    return (status == UV_ECONNRESET || status == UV_EPIPE) && unreadIfReset();
  }
  Status openSocket();
  // Arms the timer for the active exchange: the earlier of response_timeout (request
  // sent, no response byte yet) and stream_idle_timeout since the last byte either way.
  void armActiveTimer();
  // Starts the timer to fire in `delay_ms`, unless it already fires no later than that.
  void armAtMost(uint64_t delay_ms);
  void finishExchange(bool reusable);
  void markSentIfDone();
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&handle_); }

  // Response heads from our own intake server are small; 1 MiB matches APM Server's
  // request limit and keeps a broken upstream from growing memory without bound.
  static constexpr uint64_t kMaxResponseHeadBytes = 1024 * 1024;
  // Request bytes queued towards the upstream below which the client is read again.
  static constexpr size_t kLowWatermark = 64 * 1024;
  // How long an unanswered FIN waits for the RST that tells an unread request (loopback
  // and a pod's network deliver it within microseconds; this is only a failure path).
  static constexpr uint64_t kResetGraceMs = 20;
  // A reset (or the FIN before one) proves an unread request only this soon after the
  // connection was leased for it: the reset of a connection the upstream closed while
  // idle answers the request's first bytes within a round trip, while later the upstream
  // may have read and acted on part of a streamed body before closing with the rest
  // unread. Loop time, so it also covers one busy loop iteration.
  static constexpr uint64_t kUnreadResetWindowMs = 50;
  // Body pieces at least this large are written from the caller's buffer (no copy);
  // smaller ones are batched so that a stream of small chunks is not a syscall each.
  static constexpr size_t kDirectWriteMin = 16 * 1024;

  UpstreamPool& pool_;
  uint64_t id_;
  State state_ = State::kConnecting;
  UpstreamSocket handle_{};
  uv_timer_t timer_{};
  UpstreamConnector::Attempt attempt_{};
  int open_handles_ = 0;
  uv::StreamWriter writer_;
  http::Http1Parser parser_;
  std::string out_;
  ResponseSink* sink_ = nullptr;
  bool head_request_ = false;
  bool request_done_ = false;
  bool request_sent_ = false;  // request done and every byte handed to the kernel
  bool got_response_byte_ = false;
  bool final_head_seen_ = false;
  bool response_done_ = false;
  bool reading_ = false;
  bool read_paused_ = false;
  bool counted_ = false;  // counted in upstream_connections_active
  bool local_peer_ = false;
  // A reused connection keeps what it wrote of the current request (up to
  // kReplayLimit) until the first response byte: if the upstream then resets it
  // unanswered, it never read the request (see failOrReplay), which can be sent again.
  bool reused_ = false;
  uint64_t leased_ms_ = 0;           // loop time attach() leased it for this exchange
  bool replay_kept_ = false;         // replay_copy_ holds every byte written so far
  bool replay_after_reset_ = false;  // a write was reset unread: out_ holds it all again
  bool eof_pending_ = false;         // an unanswered FIN waits kResetGraceMs for a RST
  std::string replay_copy_;
  std::string pending_error_;     // connectNow() failed: reported from the timer
  uint64_t request_sent_ns_ = 0;  // uv_hrtime when the request was fully written
  uint64_t request_sent_ms_ = 0;  // loop time of the same moment, for response_timeout
  uint64_t last_io_ms_ = 0;       // loop time of the last byte read or written
  uint64_t idle_since_ms_ = 0;
};

}  // namespace proxy::upstream
