#include "proxy/upstream/upstream_connection.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "proxy/common/check.h"
#include "proxy/common/log.h"
#include "proxy/http/head_writer.h"
#include "proxy/upstream/upstream_pool.h"

namespace proxy::upstream {
namespace {

// Response heads from our own intake server are small; 1 MiB matches APM Server's
// request limit and keeps a broken upstream from growing memory without bound.
constexpr uint64_t kMaxResponseHeadBytes = 1024 * 1024;
// Request bytes queued towards the upstream below which the client is read again.
constexpr size_t kLowWatermark = 64 * 1024;
// Request bytes a reused connection keeps for a replay after an unanswered reset.
constexpr size_t kReplayLimit = 64 * 1024;
// How long an unanswered FIN waits for the RST that tells an unread request (loopback
// and a pod's network deliver it within microseconds; this is only a failure path).
constexpr uint64_t kResetGraceMs = 20;
// Body pieces at least this large are written from the caller's buffer (no copy);
// smaller ones are batched so that a stream of small chunks is not a syscall each.
constexpr size_t kDirectWriteMin = 16 * 1024;

uint64_t toMillis(config::Millis d) { return static_cast<uint64_t>(d.count()); }

}  // namespace

const char* toString(UpstreamError e) {
  switch (e) {
    case UpstreamError::kConnectFailed:
      return "upstream_connect_failed";
    case UpstreamError::kResponseTimeout:
      return "upstream_timeout";
    case UpstreamError::kClosedEarly:
      return "upstream_closed_early";
    case UpstreamError::kBadResponse:
      return "upstream_bad_response";
    case UpstreamError::kClosedMidBody:
      return "upstream_closed_mid_body";
    case UpstreamError::kStalled:
      return "upstream_stalled";
    case UpstreamError::kOverloaded:
      return "upstream_overloaded";
  }
  return "upstream_error";
}

UpstreamConnection::UpstreamConnection(UpstreamPool& pool, uint64_t id)
    : pool_(pool),
      id_(id),
      writer_(stream(), *this),
      parser_(http::Http1Parser::Kind::kResponse, *this, kMaxResponseHeadBytes) {}

UpstreamConnection::~UpstreamConnection() {
  PROXY_CHECK(open_handles_ == 0, "upstream connection freed with open handles");
}

int UpstreamConnection::connect(bool wait) {
  uv_timer_init(pool_.loop(), &timer_);  // cannot fail
  timer_.data = this;
  ++open_handles_;
  if (wait) {
    // The wait for a free slot is bounded like a connect.
    state_ = State::kWaiting;
    uv_timer_start(&timer_, &UpstreamConnection::uvOnTimer,
                   toMillis(pool_.config().connect_timeout), 0);
    return 0;
  }
  return openSocket();
}

void UpstreamConnection::connectNow() {
  if (state_ != State::kWaiting) return;
  int rc = openSocket();
  if (rc < 0 && !closing()) {
    // Reported from the timer: this runs inside the pool, never in the sink's call.
    pending_error_ = rc;
    state_ = State::kConnecting;
    uv_timer_start(&timer_, &UpstreamConnection::uvOnTimer, 0, 0);
  }
}

int UpstreamConnection::openSocket() {
  uv_loop_t* loop = pool_.loop();
  const config::UpstreamConfig& cfg = pool_.config();
  state_ = State::kConnecting;
  counted_ = true;
  pool_.stats().upstream_connections_active.add();
  int rc;
  connect_req_.data = this;
  if (cfg.tcp) {
    rc = uv_tcp_init(loop, &handle_.tcp);
    if (rc < 0) return rc;
    handle_.tcp.data = this;
    ++open_handles_;
    uv_tcp_nodelay(&handle_.tcp, 1);
    const sockaddr* addr = pool_.upstreamAddress(&address_index_);
    if (addr == nullptr) return UV_EAI_NONAME;
    rc = uv_tcp_connect(&connect_req_, &handle_.tcp, addr, &UpstreamConnection::uvOnConnect);
    if (rc < 0) return rc;
  } else {
    rc = uv_pipe_init(loop, &handle_.pipe, 0);
    if (rc < 0) return rc;
    handle_.pipe.data = this;
    ++open_handles_;
    uv_pipe_connect(&connect_req_, &handle_.pipe, cfg.unix_path.c_str(),
                    &UpstreamConnection::uvOnConnect);
  }
  uv_timer_start(&timer_, &UpstreamConnection::uvOnTimer, toMillis(cfg.connect_timeout), 0);
  return 0;
}

void UpstreamConnection::attach(ResponseSink* sink, bool head_request) {
  PROXY_CHECK(sink_ == nullptr, "upstream connection leased twice");
  sink_ = sink;
  head_request_ = head_request;
  writer_.clearTouched();
  reused_ = state_ == State::kIdle;
  replay_kept_ = reused_;
  if (state_ == State::kIdle) {
    state_ = State::kActive;
    last_io_ms_ = uv_now(pool_.loop());
    armActiveTimer();
  }
}

void UpstreamConnection::detach() {
  sink_ = nullptr;
  // A half-done exchange leaves the socket in an unknown place in the protocol.
  if (state_ != State::kIdle) close();
}

void UpstreamConnection::keepForReplay(std::string_view bytes) {
  if (!replay_kept_) return;
  if (replay_copy_.size() + bytes.size() > kReplayLimit) {
    replay_kept_ = false;
    std::string().swap(replay_copy_);
    return;
  }
  replay_copy_.append(bytes);
}

int UpstreamConnection::flush() {
  if (state_ != State::kActive || out_.empty()) return 0;
  keepForReplay(out_);
  int rc = writer_.write(out_);
  if (rc < 0) {
    // Reported to the caller as a value, never through the sink, because the caller
    // is the sink (../shared/STYLE.md §3.8). When nothing of this exchange reached the
    // kernel, out_ keeps the request so that the caller can replay it.
    if (writer_.touched()) out_.clear();
    sink_ = nullptr;
    close();
    return rc;
  }
  out_.clear();
  last_io_ms_ = uv_now(pool_.loop());
  markSentIfDone();
  return 0;
}

int UpstreamConnection::sendBody(std::string_view data, bool chunked) {
  char size_line[24] = {};
  size_t size_len = 0;
  if (chunked) {
    int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", data.size());
    size_len = static_cast<size_t>(n);
  }
  std::string_view head(size_line, size_len);
  std::string_view tail = chunked ? http::kChunkEnd : std::string_view();
  if (state_ != State::kActive || data.size() < kDirectWriteMin) {
    out_.append(head).append(data).append(tail);
    return 0;
  }
  if (replay_kept_) {
    keepForReplay(out_);
    keepForReplay(head);
    keepForReplay(data);
    keepForReplay(tail);
  }
  int rc = writer_.write({out_, head, data, tail});
  if (rc < 0 && !writer_.touched()) {
    // Nothing left: keep the whole request for a replay (see flush()).
    out_.append(head).append(data).append(tail);
  } else {
    out_.clear();
  }
  if (rc < 0) {
    sink_ = nullptr;
    close();
    return rc;
  }
  last_io_ms_ = uv_now(pool_.loop());
  return 0;
}

void UpstreamConnection::requestComplete() {
  request_done_ = true;
  markSentIfDone();
}

void UpstreamConnection::markSentIfDone() {
  if (!request_done_ || request_sent_ || state_ != State::kActive || queuedBytes() != 0) return;
  request_sent_ = true;
  request_sent_ns_ = uv_hrtime();
  request_sent_ms_ = uv_now(pool_.loop());
  armActiveTimer();
}

void UpstreamConnection::armActiveTimer() {
  if (state_ != State::kActive || eof_pending_) return;
  const config::UpstreamConfig& cfg = pool_.config();
  uint64_t deadline = last_io_ms_ + toMillis(cfg.streamIdleTimeout());
  if (request_sent_ && !got_response_byte_) {
    deadline = std::min(deadline, request_sent_ms_ + toMillis(cfg.response_timeout));
  }
  uint64_t now = uv_now(pool_.loop());
  uv_timer_start(&timer_, &UpstreamConnection::uvOnTimer, deadline > now ? deadline - now : 0, 0);
}

void UpstreamConnection::pauseReading() {
  read_paused_ = true;
  if (reading_) {
    uv_read_stop(stream());
    reading_ = false;
  }
}

void UpstreamConnection::resumeReading() {
  if (!read_paused_) return;
  read_paused_ = false;
  if (!reading_ && (state_ == State::kActive || state_ == State::kIdle)) {
    uv_read_start(stream(), &UpstreamConnection::uvOnAlloc, &UpstreamConnection::uvOnRead);
    reading_ = true;
  }
}

bool UpstreamConnection::stillOpen() const {
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&handle_), &fd) != 0) return false;
  char c;
  ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  // 0 = the upstream closed; > 0 = bytes nobody asked for; both make it unusable.
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void UpstreamConnection::enterIdle() {
  state_ = State::kIdle;
  idle_since_ms_ = uv_now(pool_.loop());
  head_request_ = false;
  request_done_ = false;
  request_sent_ = false;
  replay_kept_ = false;
  std::string().swap(replay_copy_);
  got_response_byte_ = false;
  final_head_seen_ = false;
  response_done_ = false;
  if (parser_.paused()) parser_.resume();
  writer_.releaseMemory();
  out_ = std::string();
  resumeReading();
  if (!reading_) {
    uv_read_start(stream(), &UpstreamConnection::uvOnAlloc, &UpstreamConnection::uvOnRead);
    reading_ = true;
  }
  uv_timer_start(&timer_, &UpstreamConnection::uvOnTimer, toMillis(pool_.config().idle_timeout), 0);
}

void UpstreamConnection::close() {
  if (state_ == State::kClosing) return;
  if (state_ == State::kIdle) pool_.removeIdle(this);
  bool held_slot = state_ != State::kWaiting;
  state_ = State::kClosing;
  sink_ = nullptr;
  if (counted_) pool_.stats().upstream_connections_active.sub();
  counted_ = false;
  pool_.slotFreed(this, held_slot);
  auto closeHandle = [this](uv_handle_t* h) {
    if (h->loop != nullptr && !uv_is_closing(h)) uv_close(h, &UpstreamConnection::uvOnClose);
  };
  closeHandle(reinterpret_cast<uv_handle_t*>(&timer_));
  closeHandle(reinterpret_cast<uv_handle_t*>(&handle_));
}

void UpstreamConnection::shutdown() {
  if (sink_ != nullptr) {
    fail(final_head_seen_ ? UpstreamError::kClosedMidBody : UpstreamError::kClosedEarly,
         "proxy shutting down");
  } else {
    close();
  }
}

void UpstreamConnection::uvOnClose(uv_handle_t* h) {
  auto* self = static_cast<UpstreamConnection*>(h->data);
  if (--self->open_handles_ == 0) self->pool_.erase(self);
}

void UpstreamConnection::uvOnConnect(uv_connect_t* req, int status) {
  static_cast<UpstreamConnection*>(req->data)->onConnect(status);
}

void UpstreamConnection::onConnect(int status) {
  if (status == UV_ECANCELED || closing()) return;
  uv_timer_stop(&timer_);
  if (status < 0) {
    pool_.stats().upstream_connect_failures.add();
    pool_.connectFailed(address_index_);
    failOrReplay(UpstreamError::kConnectFailed, uv_strerror(status));
    return;
  }
  state_ = State::kActive;
  last_io_ms_ = uv_now(pool_.loop());
  if (!read_paused_) {
    uv_read_start(stream(), &UpstreamConnection::uvOnAlloc, &UpstreamConnection::uvOnRead);
    reading_ = true;
  }
  if (sink_ == nullptr) {
    close();
    return;
  }
  ResponseSink* sink = sink_;
  int rc = flush();
  if (rc < 0) {
    // flush() closed the connection and let go of the sink: tell it here, or the client
    // side would keep a pointer to a connection the pool is about to free.
    if (!writer_.touched()) {
      sink->onUpstreamReplayable(std::move(out_), uv_strerror(rc));
    } else {
      sink->onUpstreamError(UpstreamError::kClosedEarly, uv_strerror(rc));
    }
    return;
  }
  armActiveTimer();
  // The client may have stopped reading while bytes piled up during the connect. When
  // the kernel took them all at once there is no write callback to say so: say it here.
  if (queuedBytes() < kLowWatermark) sink_->onUpstreamDrained();
}

void UpstreamConnection::uvOnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  *buf = static_cast<UpstreamConnection*>(h->data)->pool_.readBuffer().get();
}

void UpstreamConnection::uvOnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  static_cast<UpstreamConnection*>(s->data)->onRead(nread, buf);
}

void UpstreamConnection::onRead(ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0 || closing()) return;
  if (state_ == State::kIdle || sink_ == nullptr) {
    // An idle keep-alive connection that the upstream closed (or that sent bytes
    // nobody asked for) is simply dropped.
    close();
    return;
  }
  last_io_ms_ = uv_now(pool_.loop());
  if (nread < 0) {
    if (!got_response_byte_) {
      if (nread == UV_EOF && reused_ && replay_kept_ && writer_.touched()) {
        // A FIN with our request written. If the upstream closed before the request
        // arrived, its kernel answers the request with a RST that is a moment behind
        // this FIN: wait that moment, then decide (see onEofGrace).
        eof_pending_ = true;
        uv_timer_start(&timer_, &UpstreamConnection::uvOnTimer, kResetGraceMs, 0);
        return;
      }
      // Closed before answering. If not one byte of this request was written, the
      // upstream never saw it (typically a keep-alive connection it closed while idle).
      failOrReplay(
          UpstreamError::kClosedEarly,
          nread == UV_EOF ? "upstream closed the connection" : uv_strerror(static_cast<int>(nread)),
          nread == UV_ECONNRESET);
      return;
    }
    std::string().swap(replay_copy_);
    if (nread == UV_EOF && final_head_seen_ && !response_done_) {
      // A response without Content-Length or chunking ends when the upstream closes
      // (RFC 9112 §6.3 item 8).
      http::Http1Parser::ExecResult r = parser_.finish();
      if (r.outcome != http::Http1Parser::Outcome::kError && response_done_) {
        finishExchange(/*reusable=*/false);
        return;
      }
    }
    fail(final_head_seen_ ? UpstreamError::kClosedMidBody : UpstreamError::kClosedEarly,
         nread == UV_EOF ? "upstream closed the connection" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (!got_response_byte_) {
    got_response_byte_ = true;
    replay_kept_ = false;
    std::string().swap(replay_copy_);
  }
  const char* p = buf->base;
  size_t left = static_cast<size_t>(nread);
  while (left > 0) {
    http::Http1Parser::ExecResult r = parser_.execute(p, left);
    if (closing() || sink_ == nullptr) return;
    p += r.consumed;
    left -= r.consumed;
    if (r.outcome == http::Http1Parser::Outcome::kError) {
      fail(final_head_seen_ ? UpstreamError::kClosedMidBody : UpstreamError::kBadResponse,
           parser_.errorReason().c_str());
      return;
    }
    if (r.outcome == http::Http1Parser::Outcome::kPaused) {
      if (response_done_) {
        // Bytes after a complete response were never asked for: do not reuse.
        finishExchange(/*reusable=*/left == 0);
        return;
      }
      parser_.resume();  // an interim 1xx response completed; the final one follows
    }
  }
  sink_->onUpstreamEventDone();
}

bool UpstreamConnection::onHead(http::MessageHead& head) {
  if (head.status >= 200) {
    final_head_seen_ = true;
    // Only a response to a request fully sent times the upstream: an early answer (an
    // error before the body ended) has no such start.
    if (request_sent_) {
      pool_.stats().upstream_duration.observe(static_cast<double>(uv_hrtime() - request_sent_ns_) /
                                              1e9);
    }
  }
  sink_->onResponseHead(head);
  return head_request_ && head.status >= 200;
}

void UpstreamConnection::onBody(const char* data, size_t len) {
  if (sink_ != nullptr) sink_->onResponseBody(data, len);
}

void UpstreamConnection::onMessageComplete() {
  if (final_head_seen_) response_done_ = true;
}

void UpstreamConnection::finishExchange(bool reusable) {
  ResponseSink* sink = sink_;
  sink_ = nullptr;
  reusable = reusable && request_done_ && parser_.head().keep_alive && out_.empty() && !closing();
  if (reusable) {
    pool_.release(this);
  } else {
    close();
  }
  sink->onResponseComplete();
}

void UpstreamConnection::onWriteDone(int status) {
  if (status == UV_ECANCELED || closing()) return;
  if (status < 0) {
    if (got_response_byte_) {
      fail(UpstreamError::kClosedMidBody, uv_strerror(status));
    } else {
      failOrReplay(UpstreamError::kClosedEarly, uv_strerror(status),
                   status == UV_ECONNRESET || status == UV_EPIPE);
    }
    return;
  }
  last_io_ms_ = uv_now(pool_.loop());
  markSentIfDone();
  if (sink_ != nullptr && queuedBytes() < kLowWatermark) sink_->onUpstreamDrained();
}

void UpstreamConnection::uvOnTimer(uv_timer_t* t) {
  static_cast<UpstreamConnection*>(t->data)->onTimer();
}

void UpstreamConnection::onTimer() {
  switch (state_) {
    case State::kWaiting:
      pool_.stats().upstream_overloaded.add();
      fail(UpstreamError::kOverloaded,
           "no upstream connection free within upstream.connect_timeout");
      return;
    case State::kConnecting:
      if (pending_error_ != 0) {
        failOrReplay(UpstreamError::kConnectFailed, uv_strerror(pending_error_));
        return;
      }
      pool_.stats().upstream_connect_failures.add();
      pool_.connectFailed(address_index_);
      fail(UpstreamError::kConnectFailed, "connect timeout");
      return;
    case State::kActive:
      if (eof_pending_) {
        onEofGrace();
        return;
      }
      onActiveTimer();
      return;
    case State::kIdle:
      close();
      return;
    case State::kClosing:
      return;
  }
}

void UpstreamConnection::onEofGrace() {
  eof_pending_ = false;
  // A RST after the FIN leaves the socket's error set (EPIPE in CLOSE_WAIT, else
  // ECONNRESET) while reads keep reporting the end-of-file: SO_ERROR tells them apart.
  uv_os_fd_t fd;
  bool reset = false;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&handle_), &fd) == 0) {
    int err = 0;
    socklen_t len = sizeof err;
    reset = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
            (err == ECONNRESET || err == EPIPE);
  }
  failOrReplay(UpstreamError::kClosedEarly,
               reset ? "connection reset by peer" : "upstream closed the connection", reset);
}

void UpstreamConnection::onActiveTimer() {
  const config::UpstreamConfig& cfg = pool_.config();
  uint64_t now = uv_now(pool_.loop());
  if (request_sent_ && !got_response_byte_ &&
      now >= request_sent_ms_ + toMillis(cfg.response_timeout)) {
    pool_.stats().upstream_timeouts.add();
    fail(UpstreamError::kResponseTimeout, "no response within upstream.response_timeout");
    return;
  }
  // Silence counts against the upstream only while it owes us something: reading the
  // request bytes we queued, or sending the response we wait for. A client that is slow
  // to send its body, or too slow to take the response (reads paused), is bounded by
  // the client side's read_timeout and write_timeout instead.
  bool upstream_owes =
      queuedBytes() > 0 || (!read_paused_ && (request_sent_ || got_response_byte_));
  if (!upstream_owes) {
    last_io_ms_ = now;
  } else if (now >= last_io_ms_ + toMillis(cfg.streamIdleTimeout())) {
    pool_.stats().upstream_timeouts.add();
    fail(final_head_seen_ ? UpstreamError::kStalled : UpstreamError::kResponseTimeout,
         "no byte to or from the upstream within upstream.stream_idle_timeout");
    return;
  }
  armActiveTimer();
}

void UpstreamConnection::fail(UpstreamError error, const char* detail) {
  ResponseSink* sink = sink_;
  sink_ = nullptr;
  log::debug("upstream failed",
             {{"upstream", id_}, {"reason", toString(error)}, {"detail", detail}});
  close();
  if (sink != nullptr) sink->onUpstreamError(error, detail);
}

void UpstreamConnection::failOrReplay(UpstreamError error, const char* detail, bool reset) {
  // A TCP reset with no answer on a reused connection means the upstream closed the
  // socket with our bytes unread in it (a clean close after reading sends FIN, not RST):
  // typically its idle timer closed the connection while the request was on the wire.
  bool unread = reset && reused_ && replay_kept_;
  if ((writer_.touched() && !unread) || sink_ == nullptr) {
    fail(error, detail);
    return;
  }
  ResponseSink* sink = sink_;
  sink_ = nullptr;
  log::debug("upstream never read the request",
             {{"upstream", id_}, {"reason", toString(error)}, {"detail", detail}});
  std::string unsent;
  if (writer_.touched()) {
    unsent = std::move(replay_copy_);
    unsent.append(out_);
  } else {
    unsent = std::move(out_);
  }
  out_ = std::string();
  replay_copy_ = std::string();
  close();
  sink->onUpstreamReplayable(std::move(unsent), detail);
}

}  // namespace proxy::upstream
