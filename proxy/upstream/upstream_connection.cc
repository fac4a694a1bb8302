#include "proxy/upstream/upstream_connection.h"

#include <sys/socket.h>

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

int UpstreamConnection::connect() {
  uv_loop_t* loop = pool_.loop();
  const config::UpstreamConfig& cfg = pool_.config();
  uv_timer_init(loop, &timer_);  // cannot fail
  timer_.data = this;
  ++open_handles_;
  pool_.stats().upstream_connections_active.add();

  int rc;
  connect_req_.data = this;
  if (cfg.tcp) {
    rc = uv_tcp_init(loop, &handle_.tcp);
    if (rc < 0) return rc;
    handle_.tcp.data = this;
    ++open_handles_;
    uv_tcp_nodelay(&handle_.tcp, 1);
    const sockaddr* addr = pool_.upstreamAddress();
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
  if (state_ == State::kIdle) {
    state_ = State::kActive;
    uv_timer_stop(&timer_);
  }
}

void UpstreamConnection::detach() {
  sink_ = nullptr;
  // A half-done exchange leaves the socket in an unknown place in the protocol.
  if (state_ != State::kIdle) close();
}

int UpstreamConnection::flush() {
  if (state_ != State::kActive || out_.empty()) return 0;
  wrote_any_ = true;
  int rc = writer_.write(out_);
  out_.clear();
  if (rc < 0) {
    // Reported to the caller as a value, never through the sink, because the caller
    // is the sink (../shared/STYLE.md §3.8).
    sink_ = nullptr;
    close();
    return rc;
  }
  startResponseTimerIfSent();
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
  wrote_any_ = true;
  int rc = writer_.write({out_, head, data, tail});
  out_.clear();
  if (rc < 0) {
    sink_ = nullptr;
    close();
    return rc;
  }
  return 0;
}

void UpstreamConnection::requestComplete() {
  request_done_ = true;
  request_sent_at_ = uv_hrtime();
  startResponseTimerIfSent();
}

void UpstreamConnection::startResponseTimerIfSent() {
  if (!request_done_ || got_response_byte_ || response_timer_on_ || state_ != State::kActive ||
      queuedBytes() != 0) {
    return;
  }
  response_timer_on_ = true;
  uv_timer_start(&timer_, &UpstreamConnection::uvOnTimer, toMillis(pool_.config().response_timeout),
                 0);
}

void UpstreamConnection::pauseReading() {
  if (read_paused_) return;
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
  response_timer_on_ = false;
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
  state_ = State::kClosing;
  sink_ = nullptr;
  pool_.stats().upstream_connections_active.sub();
  auto closeHandle = [this](uv_handle_t* h) {
    if (h->loop != nullptr && !uv_is_closing(h)) uv_close(h, &UpstreamConnection::uvOnClose);
  };
  closeHandle(reinterpret_cast<uv_handle_t*>(&timer_));
  closeHandle(reinterpret_cast<uv_handle_t*>(&handle_));
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
    fail(UpstreamError::kConnectFailed, uv_strerror(status));
    return;
  }
  state_ = State::kActive;
  uv_read_start(stream(), &UpstreamConnection::uvOnAlloc, &UpstreamConnection::uvOnRead);
  reading_ = true;
  if (read_paused_) pauseReading();
  if (sink_ == nullptr) {
    close();
    return;
  }
  int rc = flush();
  if (rc < 0) {
    ResponseSink* sink = sink_;
    sink_ = nullptr;
    close();
    if (sink) sink->onUpstreamError(UpstreamError::kClosedEarly, uv_strerror(rc));
    return;
  }
  startResponseTimerIfSent();
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
  if (nread < 0) {
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
    response_timer_on_ = false;
    uv_timer_stop(&timer_);
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
    pool_.stats().upstream_duration.observe(static_cast<double>(uv_hrtime() - request_sent_at_) /
                                            1e9);
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
    fail(got_response_byte_ ? UpstreamError::kClosedMidBody : UpstreamError::kClosedEarly,
         uv_strerror(status));
    return;
  }
  startResponseTimerIfSent();
  if (sink_ != nullptr && queuedBytes() < kLowWatermark) sink_->onUpstreamDrained();
}

void UpstreamConnection::uvOnTimer(uv_timer_t* t) {
  static_cast<UpstreamConnection*>(t->data)->onTimer();
}

void UpstreamConnection::onTimer() {
  switch (state_) {
    case State::kConnecting:
      pool_.stats().upstream_connect_failures.add();
      fail(UpstreamError::kConnectFailed, "connect timeout");
      return;
    case State::kActive:
      pool_.stats().upstream_timeouts.add();
      fail(UpstreamError::kResponseTimeout, "no response within upstream.response_timeout");
      return;
    case State::kIdle:
      close();
      return;
    case State::kClosing:
      return;
  }
}

void UpstreamConnection::fail(UpstreamError error, const char* detail) {
  ResponseSink* sink = sink_;
  sink_ = nullptr;
  log::debug("upstream failed",
             {{"upstream", id_}, {"reason", toString(error)}, {"detail", detail}});
  close();
  if (sink != nullptr) sink->onUpstreamError(error, detail);
}

}  // namespace proxy::upstream
