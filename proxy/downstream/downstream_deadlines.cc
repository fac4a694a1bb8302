// DownstreamConnection, its deadlines: the one timer of a client connection, armed for
// the earliest of the TLS handshake, write, header and the codec's deadlines (idle,
// request, stream), kept when it already fires earlier, and what is due when it fires.
// The socket, pump, writer and close are in downstream_connection.cc.
#include <uv.h>

#include <algorithm>
#include <cstdint>

#include "proxy/downstream/downstream_connection.h"
#include "proxy/downstream/downstream_limits.h"

namespace proxy::downstream {

void DownstreamConnection::rearmTimer() {
  if (closing() || conn_state_ == ConnState::kLingering) return;
  const config::ServerConfig& s = ctx_.config->server;
  uint64_t deadline = UINT64_MAX;
  if (conn_state_ == ConnState::kHandshaking) {
    deadline = accepted_at_ms_ + toMs(s.tls_handshake_timeout);
  } else if (conn_state_ == ConnState::kOpen) {
    // Before the protocol is known, the first request's header timeout runs.
    deadline = codec_ ? codec_->deadline() : last_progress_ms_ + toMs(s.request_header_timeout);
  }
  if (writer_.writing()) deadline = std::min(deadline, last_progress_ms_ + toMs(s.write_timeout));
  // A timer that fires no later than the new deadline is kept: onTimer() checks what is
  // due when it fires and re-arms if nothing is. A keep-alive request moves the deadline
  // three or four times (head, body, response, idle), each a timer-heap update otherwise
  // (issue 12: the largest item of ours left in such a request).
  bool armed = uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_)) != 0;
  if (deadline == UINT64_MAX) {
    if (!armed) return;
    // Only when the timer would fire within a second anyway: a far one is cheaper to
    // leave in place than to stop now and start again at the next request.
    if (uv_timer_get_due_in(&timer_) < 1000) uv_timer_stop(&timer_);
    return;
  }
  uint64_t now = uv_now(ctx_.loop);
  uint64_t delay = deadline > now ? deadline - now : 0;
  if (armed && uv_timer_get_due_in(&timer_) <= delay) return;
  uv_timer_start(&timer_, &DownstreamConnection::uvOnTimer, delay, 0);
}

uint64_t DownstreamConnection::dueMs() const {
  if (conn_state_ != ConnState::kOpen) return 0;  // the other states are checked apart
  if (codec_) return codec_->deadline();
  return last_progress_ms_ + toMs(ctx_.config->server.request_header_timeout);
}

void DownstreamConnection::uvOnTimer(uv_timer_t* t) {
  static_cast<DownstreamConnection*>(t->data)->onTimer();
}

void DownstreamConnection::onTimer() {
  if (closing()) return;
  if (codec_) codec_->collect();
  const config::ServerConfig& s = ctx_.config->server;
  uint64_t now = uv_now(ctx_.loop);
  if (conn_state_ == ConnState::kLingering) {
    close(close_reason_);
    return;
  }
  if (writer_.writing() && now >= last_progress_ms_ + toMs(s.write_timeout)) {
    close(CloseReason::kWriteTimeout);
    return;
  }
  if (conn_state_ == ConnState::kFinishing) {
    rearmTimer();
    return;
  }
  if (conn_state_ == ConnState::kHandshaking) {
    if (now < accepted_at_ms_ + toMs(s.tls_handshake_timeout)) {
      rearmTimer();  // a kept earlier timer (a write deadline that has passed)
      return;
    }
    onHandshakeTimeout();
    return;
  }
  if (now < dueMs()) {
    rearmTimer();  // an earlier timer was kept (see rearmTimer); nothing is due yet
    return;
  }
  if (!codec_) {
    close(CloseReason::kHeaderTimeout);
    return;
  }
  codec_->onDeadline(now);
}

}  // namespace proxy::downstream
