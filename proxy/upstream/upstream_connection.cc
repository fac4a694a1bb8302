#include "proxy/upstream/upstream_connection.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "proxy/common/check.h"
#include "proxy/common/log.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/uv/peer_address.h"

namespace proxy::upstream {
namespace {

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
    case UpstreamError::kRefused:
      return "upstream_refused";
    case UpstreamError::kStreamReset:
      return "upstream_stream_reset";
    case UpstreamError::kStreamCancelled:
      return "upstream_stream_cancelled";
    case UpstreamError::kStreamRefusedBusy:
      return "upstream_enhance_your_calm";
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

Status UpstreamConnection::connect(bool wait) {
  uv_timer_init(pool_.loop(), &timer_);  // cannot fail
  timer_.data = this;
  ++open_handles_;
  if (wait) {
    // The wait for a free slot is bounded like a connect.
    state_ = State::kWaiting;
    uv_timer_start(&timer_, &UpstreamConnection::uvOnTimer,
                   toMillis(pool_.config().connect_timeout), 0);
    return Status::ok();
  }
  return openSocket();
}

void UpstreamConnection::connectNow() {
  if (state_ != State::kWaiting) return;
  Status st = openSocket();
  if (!st && !closing()) {
    // Reported from the timer: this runs inside the pool, never in the sink's call.
    pending_error_ = st.message();
    state_ = State::kConnecting;
    uv_timer_start(&timer_, &UpstreamConnection::uvOnTimer, 0, 0);
  }
}

Status UpstreamConnection::openSocket() {
  state_ = State::kConnecting;
  counted_ = true;
  pool_.stats().upstream_connections_active.add();
  Status st = pool_.connector().connect(handle_, this, this, attempt_);
  if (attempt_.handle_open) ++open_handles_;
  if (!st) return st;
  uv_timer_start(&timer_, &UpstreamConnection::uvOnTimer, toMillis(pool_.config().connect_timeout),
                 0);
  return Status::ok();
}

void UpstreamConnection::attach(ResponseSink* sink, bool head_request) {
  PROXY_CHECK(sink_ == nullptr, "upstream connection leased twice");
  sink_ = sink;
  head_request_ = head_request;
  writer_.clearTouched();
  reused_ = state_ == State::kIdle;
  replay_kept_ = reused_;
  leased_ms_ = uv_now(pool_.loop());
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

void UpstreamConnection::armActiveTimer() {
  if (state_ != State::kActive || eof_pending_) return;
  const config::UpstreamConfig& cfg = pool_.config();
  uint64_t deadline = last_io_ms_ + toMillis(cfg.streamIdleTimeout());
  if (request_sent_ && !got_response_byte_) {
    deadline = std::min(deadline, request_sent_ms_ + toMillis(cfg.response_timeout));
  }
  uint64_t now = uv_now(pool_.loop());
  armAtMost(deadline > now ? deadline - now : 0);
}

void UpstreamConnection::armAtMost(uint64_t delay_ms) {
  // An earlier wake-up is kept: the active and idle handlers re-check their deadlines and
  // re-arm, so firing early costs one callback, while moving the timer costs a removal
  // and an insertion in libuv's heap, three times per keep-alive request (issue 12).
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_)) &&
      uv_timer_get_due_in(&timer_) <= delay_ms)
    return;
  uv_timer_start(&timer_, &UpstreamConnection::uvOnTimer, delay_ms, 0);
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
  armAtMost(toMillis(pool_.config().idle_timeout));
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
  pool_.connector().abandon(attempt_);
  auto closeHandle = [this](uv_handle_t* h) {
    if (!uv_is_closing(h)) uv_close(h, &UpstreamConnection::uvOnClose);
  };
  if (timer_.loop != nullptr) closeHandle(reinterpret_cast<uv_handle_t*>(&timer_));
  if (attempt_.handle_open) closeHandle(reinterpret_cast<uv_handle_t*>(&handle_));
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

void UpstreamConnection::onUpstreamConnected(const Status& status) {
  if (closing()) return;
  uv_timer_stop(&timer_);
  if (!status) {
    pool_.stats().upstream_connect_failures.add();
    failOrReplay(UpstreamError::kConnectFailed, status.message().c_str());
    return;
  }
  state_ = State::kActive;
  last_io_ms_ = uv_now(pool_.loop());
  local_peer_ = uv::peerIsLocal(reinterpret_cast<const uv_handle_t*>(&handle_));
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
      if (!pending_error_.empty()) {
        failOrReplay(UpstreamError::kConnectFailed, pending_error_.c_str());
        return;
      }
      pool_.stats().upstream_connect_failures.add();
      pool_.connector().timedOut(attempt_);
      fail(UpstreamError::kConnectFailed, "connect timeout");
      return;
    case State::kActive:
      if (eof_pending_) {
        onEofGrace();
        return;
      }
      onActiveTimer();
      return;
    case State::kIdle: {
      // The timer may be one armed earlier (armAtMost): close only once idle long enough.
      uint64_t deadline = idle_since_ms_ + toMillis(pool_.config().idle_timeout);
      uint64_t now = uv_now(pool_.loop());
      if (now < deadline) {
        uv_timer_start(&timer_, &UpstreamConnection::uvOnTimer, deadline - now, 0);
        return;
      }
      close();
      return;
    }
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
  // The FIN came within kUnreadResetWindowMs (onRead): the RST that followed it counts.
  failOrReplay(UpstreamError::kClosedEarly,
               reset ? "connection reset by peer" : "upstream closed the connection",
               reset && reused_ && replay_kept_);
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

bool UpstreamConnection::unreadIfReset() const {
  return reused_ && replay_kept_ && uv_now(pool_.loop()) <= leased_ms_ + kUnreadResetWindowMs;
}

void UpstreamConnection::failOrReplay(UpstreamError error, const char* detail, bool reset_unread) {
  // A TCP reset with no answer on a reused connection, right after the lease, means the
  // upstream closed the socket with our first bytes unread in it (a clean close after
  // reading sends FIN, not RST): its idle timer closed the connection while the request
  // was on the wire. The callers judge that (unreadIfReset()).
  if ((writer_.touched() && !reset_unread) || sink_ == nullptr) {
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
