#include "proxy/downstream/downstream_connection.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "proxy/common/check.h"
#include "proxy/common/log.h"
#include "proxy/downstream/access_log.h"
#include "proxy/downstream/downstream_limits.h"
#include "proxy/tls/tls_context.h"
#include "proxy/upstream/upstream_connection.h"

namespace proxy::downstream {
namespace {

void formatPeer(const sockaddr_storage& ss, std::string& ip, uint16_t& port) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    uv_ip4_name(a, buf, sizeof buf);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(a, buf, sizeof buf);
    port = ntohs(a->sin6_port);
    // An IPv4 client on a dual-stack socket: report the IPv4 address.
    if (std::strncmp(buf, "::ffff:", 7) == 0 && std::strchr(buf + 7, '.') != nullptr) {
      std::memmove(buf, buf + 7, std::strlen(buf + 7) + 1);
    }
  }
  ip = buf;
}

size_t versionIndex(const char* protocol) {
  if (std::strcmp(protocol, "TLSv1.3") == 0) return 3;
  if (std::strcmp(protocol, "TLSv1.2") == 0) return 2;
  if (std::strcmp(protocol, "TLSv1.1") == 0) return 1;
  return 0;
}

}  // namespace

const char* toString(CloseReason r) {
  switch (r) {
    case CloseReason::kDone:
      return "done";
    case CloseReason::kPeerClosed:
      return "peer_closed";
    case CloseReason::kPeerClosedEarly:
      return "peer_closed_mid_request";
    case CloseReason::kReadError:
      return "read_error";
    case CloseReason::kWriteError:
      return "write_error";
    case CloseReason::kIdleTimeout:
      return "idle_timeout";
    case CloseReason::kHeaderTimeout:
      return "request_header_timeout";
    case CloseReason::kReadTimeout:
      return "read_timeout";
    case CloseReason::kWriteTimeout:
      return "write_timeout";
    case CloseReason::kHandshakeTimeout:
      return "tls_handshake_timeout";
    case CloseReason::kHandshakeFailed:
      return "tls_handshake_failed";
    case CloseReason::kTlsError:
      return "tls_error";
    case CloseReason::kBadRequest:
      return "bad_request";
    case CloseReason::kUpstreamFailed:
      return "upstream_failed";
    case CloseReason::kUpstreamCut:
      return "upstream_cut";
    case CloseReason::kDrain:
      return "drain";
    case CloseReason::kShutdown:
      return "shutdown";
  }
  return "unknown";
}

DownstreamConnection::DownstreamConnection(DownstreamContext& ctx, uint64_t id)
    : ctx_(ctx),
      id_(id),
      writer_(reinterpret_cast<uv_stream_t*>(&socket_), *this),
      parser_(http::Http1Parser::Kind::kRequest, *this, ctx.config->server.max_header_size) {}

DownstreamConnection::~DownstreamConnection() {
  PROXY_CHECK(open_handles_ == 0, "downstream connection freed with open handles");
}

int DownstreamConnection::accept(uv_stream_t* server) {
  uv_tcp_init(ctx_.loop, &socket_);
  socket_.data = this;
  ++open_handles_;
  uv_timer_init(ctx_.loop, &timer_);
  timer_.data = this;
  ++open_handles_;
  ctx_.stats->connections_active.add();
  int rc = uv_accept(server, reinterpret_cast<uv_stream_t*>(&socket_));
  if (rc < 0) {
    close(CloseReason::kReadError);
    return rc;
  }
  ctx_.stats->connections_accepted.add();
  uv_tcp_nodelay(&socket_, 1);
  sockaddr_storage peer{};
  int len = sizeof peer;
  if (uv_tcp_getpeername(&socket_, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
    formatPeer(peer, peer_ip_, peer_port_);
  }
  for (const config::Cidr& net : ctx_.config->server.trusted_proxies) {
    if (net.contains(peer_ip_)) {
      peer_trusted_ = true;
      break;
    }
  }
  accepted_at_ms_ = uv_now(ctx_.loop);
  last_progress_ms_ = accepted_at_ms_;
  if (ctx_.tls) {
    tls_ = tls::TlsSession::createServer(*ctx_.tls);
    conn_state_ = ConnState::kHandshaking;
  }
  updateReading();
  rearmTimer();
  return 0;
}

// ---- reading ----

void DownstreamConnection::uvOnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  *buf = static_cast<DownstreamConnection*>(h->data)->ctx_.read_buffer->get();
}

void DownstreamConnection::uvOnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  static_cast<DownstreamConnection*>(s->data)->onRead(nread, buf);
}

void DownstreamConnection::onRead(ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0 || closing()) return;
  if (h2_) h2_->collect();  // a libuv callback: no stream is inside one of its calls
  if (nread < 0) {
    if (nread == UV_EOF) {
      onEof();
    } else {
      close(conn_state_ == ConnState::kLingering ? CloseReason::kDone : CloseReason::kReadError);
    }
    return;
  }
  ctx_.stats->bytes_received.add(static_cast<uint64_t>(nread));
  if (conn_state_ == ConnState::kLingering || conn_state_ == ConnState::kFinishing) return;
  if (tls_) {
    tls_->receiveCiphertext(buf->base, static_cast<size_t>(nread));
    pump();
    return;
  }
  if (pendingInput() == 0 && !parser_.paused() && preface_checked_ && !h2_) {
    // Common case: parse straight from the shared read buffer; only leftovers are
    // copied (pipelined requests behind a paused parser).
    ++pump_depth_;
    parseInput(buf->base, static_cast<size_t>(nread), /*owned=*/false);
    --pump_depth_;
    if (closing()) return;
    pump();
    return;
  }
  in_.append(buf->base, static_cast<size_t>(nread));
  pump();
}

void DownstreamConnection::onEof() {
  if (conn_state_ == ConnState::kLingering || conn_state_ == ConnState::kHandshaking) {
    close(conn_state_ == ConnState::kLingering ? CloseReason::kDone : CloseReason::kPeerClosed);
    return;
  }
  if (request_state_ == RequestState::kHead || request_state_ == RequestState::kBody) {
    close(CloseReason::kPeerClosedEarly);
    return;
  }
  if (request_state_ == RequestState::kDone && response_state_ != ResponseState::kDone &&
      response_state_ != ResponseState::kNone) {
    // Half-close after a complete request: answer it, then close (RFC 9112 §9.6).
    peer_eof_ = true;
    close_after_ = true;
    updateReading();
    return;
  }
  if (!out_.empty() || writer_.writing() || (tls_ && !tls_->pendingCiphertext().empty())) {
    // Between requests, with the last response still being written: a half-close
    // only says the client sends nothing more. Finish writing, then close.
    peer_eof_ = true;
    close_reason_ = CloseReason::kPeerClosed;
    finish();
    return;
  }
  close(CloseReason::kPeerClosed);
}

bool DownstreamConnection::requestBlocked() const {
  return upstream_ != nullptr && upstream_->queuedBytes() > kHighWatermark;
}

void DownstreamConnection::updateReading() {
  bool want = !closing() && !peer_eof_ && conn_state_ != ConnState::kFinishing &&
              (conn_state_ == ConnState::kLingering ||
               (!requestBlocked() && pendingInput() < kMaxPendingInput &&
                (!h2_ || queuedOutput() < kHighWatermark) &&
                (!tls_ || tls_->handshakeDone() || conn_state_ == ConnState::kHandshaking)));
  auto* stream = reinterpret_cast<uv_stream_t*>(&socket_);
  if (want && !reading_) {
    if (uv_read_start(stream, &DownstreamConnection::uvOnAlloc, &DownstreamConnection::uvOnRead) ==
        0)
      reading_ = true;
  } else if (!want && reading_) {
    uv_read_stop(stream);
    reading_ = false;
  }
}

// ---- the pump ----

void DownstreamConnection::pump() {
  if (pump_depth_ > 0) {
    repump_ = true;
    return;
  }
  ++pump_depth_;
  do {
    repump_ = false;
    pumpOnce();
  } while (repump_ && !closing());
  // Under TLS one pass decrypts at most kMaxPendingInput; go on while that was not all
  // and each pass still decrypts something (a partial record waits for more bytes).
  while (tls_ && !closing() && conn_state_ == ConnState::kOpen && pendingInput() == 0 &&
         !parser_.paused() && !requestBlocked() && tls_->hasBufferedInput()) {
    if (!pumpOnce()) break;
  }
  --pump_depth_;
  if (closing()) return;
  // Request bytes go upstream at the end of every pass: agents stream one request for
  // seconds, and the upstream must see each piece as it comes.
  if (upstream_ != nullptr && upstream_->flush() < 0) {
    upstream_ = nullptr;
    onUpstreamError(upstream::UpstreamError::kClosedEarly, "write to upstream failed");
    if (closing()) return;
  }
  flush();
  if (closing()) return;
  updateReading();
  // Between requests a connection keeps no buffers (agents are idle most of the time).
  if (idle() && !writer_.writing()) releaseIdleMemory();
}

bool DownstreamConnection::pumpOnce() {
  if (closing() || conn_state_ == ConnState::kFinishing || conn_state_ == ConnState::kLingering)
    return false;
  bool decrypted = false;
  if (tls_) {
    // Never decrypt more than the upstream can take (../shared/STYLE.md §2).
    if (!requestBlocked() && pendingInput() < kMaxPendingInput) {
      if (in_off_ == in_.size()) {
        in_.clear();
        in_off_ = 0;
      }
      bool was_done = tls_->handshakeDone();
      size_t before = in_.size();
      tls::TlsSession::IoStatus st = tls_->readPlaintext(in_, kMaxPendingInput);
      decrypted = in_.size() > before;
      if (!was_done && tls_->handshakeDone()) {
        onHandshakeDone();
        if (closing()) return false;
      }
      if (st == tls::TlsSession::IoStatus::kError) {
        if (!tls_->handshakeDone()) {
          onHandshakeFailed();
        } else {
          log::debug("tls error", {{"conn", id_}, {"error", tls_->errorMessage()}});
          flush();
          close(CloseReason::kTlsError);
        }
        return false;
      }
      if (st == tls::TlsSession::IoStatus::kClosed) {
        if (h2_) {
          feedHttp2();
        } else {
          parsePending();
        }
        if (!closing()) onEof();
        return false;
      }
    }
  }
  if (!h2_ && !preface_checked_ && !detectPreface()) return decrypted;
  if (h2_) {
    feedHttp2();
  } else {
    parsePending();
  }
  return decrypted;
}

// ---- TLS ----

void DownstreamConnection::onHandshakeDone() {
  conn_state_ = ConnState::kOpen;
  preface_checked_ = true;  // under TLS, ALPN alone decides (RFC 9113 §3.2)
  if (tls_->alpnProtocol() == "h2") startHttp2();
  if (ctx_.draining) close_after_ = true;
  ctx_.stats->handshakes[versionIndex(tls_->protocolName())].add();
  if (tls_->sessionReused()) ctx_.stats->sessions_resumed.add();
  rearmTimer();
}

void DownstreamConnection::onHandshakeFailed() {
  tls::HandshakeFailure why = tls_->failure();
  size_t idx = static_cast<size_t>(why);
  if (idx < kHandshakeFailureKinds) ctx_.stats->handshake_failures[idx].add();
  uint64_t suppressed = 0;
  // Limited per peer and reason: a client looping on one failure is not let flood the
  // log, while a different failure from it is always seen.
  if (ctx_.failure_log_limiter.allow(peer_ip_ + " " + tls::toString(why), uv_now(ctx_.loop),
                                     &suppressed)) {
    log::info("tls handshake failed", {{"conn", id_},
                                       {"peer", peer_ip_},
                                       {"sni", tls_->sni()},
                                       {"reason", tls::toString(why)},
                                       {"detail", tls_->errorMessage()},
                                       {"suppressed_before", suppressed}});
  }
  if (why == tls::HandshakeFailure::kNotTls) {
    // A plain-HTTP client on the TLS port gets an answer it can read (as nginx does),
    // written raw because it does not speak TLS.
    std::string resp =
        http::localResponse(400, "plain HTTP request was sent to the HTTPS port; use https://");
    ctx_.stats->local_responses.add();
    ctx_.stats->responses_by_class[4].add();
    int rc = writer_.write(resp);
    if (rc < 0) {
      close(CloseReason::kHandshakeFailed);
      return;
    }
    tls_.reset();
    close_reason_ = CloseReason::kHandshakeFailed;
    finish();
    return;
  }
  flush();  // the alert
  if (closing()) return;
  close_reason_ = CloseReason::kHandshakeFailed;
  finish();
}

// ---- writing ----

void DownstreamConnection::flush() {
  if (closing()) return;
  if (h2_) produceHttp2();
  if (!out_.empty()) {
    if (tls_ && tls_->handshakeDone()) {
      if (tls_->writePlaintext(out_.data(), out_.size()) == tls::TlsSession::IoStatus::kError) {
        out_.clear();
        close(CloseReason::kTlsError);
        return;
      }
    } else if (!tls_) {
      int rc = writer_.write(out_);
      if (rc < 0) {
        out_.clear();
        close(CloseReason::kWriteError);
        return;
      }
    }
    ctx_.stats->bytes_sent.add(tls_ ? 0 : out_.size());
    out_.clear();
  }
  if (tls_) {
    std::string_view pending = tls_->pendingCiphertext();
    if (!pending.empty()) {
      size_t n = pending.size();
      int rc = writer_.write(pending);
      tls_->consumeCiphertext(n);
      ctx_.stats->bytes_sent.add(n);
      if (rc < 0) {
        close(CloseReason::kWriteError);
        return;
      }
    }
  }
  if (conn_state_ == ConnState::kFinishing && !writer_.writing()) {
    finish();
    return;
  }
  if (writer_.writing()) rearmTimer();
}

void DownstreamConnection::onWriteDone(int status) {
  if (status == UV_ECANCELED || closing()) return;
  if (status < 0) {
    close(CloseReason::kWriteError);
    return;
  }
  last_progress_ms_ = uv_now(ctx_.loop);
  if (conn_state_ == ConnState::kFinishing && !writer_.writing()) {
    finish();
    return;
  }
  if (h2_) {
    h2_->collect();  // a libuv callback: no stream is inside one of its calls
    flush();         // more frames may wait for room in the write queue
    if (closing()) return;
    updateReading();
  }
  if (upstream_ != nullptr && queuedOutput() < kLowWatermark) upstream_->resumeReading();
  rearmTimer();
  if (idle() && !writer_.writing()) releaseIdleMemory();
}

// finish(): no more requests. Write what is queued, send close_notify under TLS, then
// half-close and linger briefly so a client still sending reads our last response.
void DownstreamConnection::finish() {
  if (closing() || conn_state_ == ConnState::kLingering) return;
  if (conn_state_ != ConnState::kFinishing) {
    if (h2_) produceHttp2();  // the last frames (a GOAWAY) go before close_notify
    conn_state_ = ConnState::kFinishing;
    updateReading();
    if (tls_ && tls_->handshakeDone()) {
      // The last response, then close_notify, both encrypted before anything is sent.
      if (!out_.empty() &&
          tls_->writePlaintext(out_.data(), out_.size()) == tls::TlsSession::IoStatus::kError) {
        close(CloseReason::kTlsError);
        return;
      }
      out_.clear();
      tls_->shutdown();
    }
    flush();
    return;  // flush() calls finish() again once nothing is in flight
  }
  if (!out_.empty() || writer_.writing()) return;
  if (tls_ && !tls_->pendingCiphertext().empty()) return;
  // Everything is out: FIN, then read and discard until the client closes.
  conn_state_ = ConnState::kLingering;
  // Allocated only now: most connections never get here, and an idle one stays small.
  shutdown_req_ = std::make_unique<uv_shutdown_t>();
  shutdown_req_->data = this;
  if (uv_shutdown(shutdown_req_.get(), reinterpret_cast<uv_stream_t*>(&socket_),
                  &DownstreamConnection::uvOnShutdown) < 0) {
    close(close_reason_);
    return;
  }
  peer_eof_ = false;
  updateReading();
  uv_timer_start(&timer_, &DownstreamConnection::uvOnTimer, kLingerMs, 0);
}

void DownstreamConnection::uvOnShutdown(uv_shutdown_t* req, int status) {
  auto* self = static_cast<DownstreamConnection*>(req->data);
  if (status < 0 && status != UV_ECANCELED && !self->closing()) self->close(self->close_reason_);
}

// Idle keep-alive connections are the common case for agents between flushes; what an
// idle connection holds is what docs/architecture.md promises (buffers are re-grown on
// the next request, a cost measured in docs/benchmarks.md).
void DownstreamConnection::releaseIdleMemory() {
  if (pendingInput() == 0) {
    std::string().swap(in_);
    in_off_ = 0;
  }
  if (out_.empty()) std::string().swap(out_);
  writer_.releaseMemory();
  parser_.releaseMemory();
  if (tls_) tls_->releaseBuffers();
}

void DownstreamConnection::drain() {
  if (closing()) return;
  if (conn_state_ == ConnState::kHandshaking) return;  // the handshake timeout bounds it
  if (h2_) {
    drainHttp2();
    return;
  }
  if (idle()) {
    close_reason_ = CloseReason::kDrain;
    finish();
    return;
  }
  close_after_ = true;  // the current response carries Connection: close
}

bool DownstreamConnection::idle() const {
  if (h2_) return conn_state_ == ConnState::kOpen && h2_->openStreams() == 0;
  return conn_state_ == ConnState::kOpen && request_state_ == RequestState::kIdle &&
         response_state_ == ResponseState::kNone && !parser_.inMessage() && pendingInput() == 0;
}

// ---- timers ----

void DownstreamConnection::rearmTimer() {
  if (closing() || conn_state_ == ConnState::kLingering) return;
  const config::ServerConfig& s = ctx_.config->server;
  uint64_t deadline = UINT64_MAX;
  if (conn_state_ == ConnState::kHandshaking) {
    deadline = accepted_at_ms_ + toMs(s.tls_handshake_timeout);
  } else if (conn_state_ == ConnState::kOpen && h2_) {
    deadline = http2Deadline();
  } else if (conn_state_ == ConnState::kOpen) {
    switch (request_state_) {
      case RequestState::kIdle:
        if (response_state_ == ResponseState::kNone) {
          deadline = last_progress_ms_ +
                     toMs(requests_served_ == 0 ? s.request_header_timeout : s.idle_timeout);
        }
        break;
      case RequestState::kHead:
        deadline = request_start_ms_ + toMs(s.request_header_timeout);
        break;
      case RequestState::kBody:
        deadline = request_start_ms_ + toMs(s.read_timeout);
        break;
      case RequestState::kDone:
        break;  // the upstream's response_timeout runs now
    }
  }
  if (writer_.writing()) deadline = std::min(deadline, last_progress_ms_ + toMs(s.write_timeout));
  if (deadline == UINT64_MAX) {
    uv_timer_stop(&timer_);
    return;
  }
  uint64_t now = uv_now(ctx_.loop);
  uv_timer_start(&timer_, &DownstreamConnection::uvOnTimer, deadline > now ? deadline - now : 0, 0);
}

void DownstreamConnection::uvOnTimer(uv_timer_t* t) {
  static_cast<DownstreamConnection*>(t->data)->onTimer();
}

void DownstreamConnection::onTimer() {
  if (closing()) return;
  if (h2_) h2_->collect();
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
  if (h2_ && conn_state_ == ConnState::kOpen) {
    onHttp2Timer(now);
    return;
  }
  if (conn_state_ == ConnState::kHandshaking) {
    if (tls_) {
      ctx_.stats->handshake_failures[static_cast<size_t>(tls::HandshakeFailure::kTimeout)].add();
      uint64_t suppressed = 0;
      if (ctx_.failure_log_limiter.allow(peer_ip_ + " timeout", uv_now(ctx_.loop), &suppressed)) {
        log::info("tls handshake failed", {{"conn", id_},
                                           {"peer", peer_ip_},
                                           {"reason", "timeout"},
                                           {"suppressed_before", suppressed}});
      }
    }
    close(CloseReason::kHandshakeTimeout);
    return;
  }
  switch (request_state_) {
    case RequestState::kIdle:
      if (requests_served_ > 0 && tls_ && tls_->handshakeDone()) {
        // A keep-alive connection that idled out ends with close_notify, so the client
        // can tell our close from a truncation attack (RFC 8446 §6.1).
        close_reason_ = CloseReason::kIdleTimeout;
        finish();
        return;
      }
      close(requests_served_ == 0 ? CloseReason::kHeaderTimeout : CloseReason::kIdleTimeout);
      return;
    case RequestState::kHead:
      respondLocal(408, "request header not received in time");
      return;
    case RequestState::kBody:
      if (response_state_ == ResponseState::kWaiting) {
        respondLocal(408, "request body not received in time");
      } else {
        close(CloseReason::kReadTimeout);
      }
      return;
    case RequestState::kDone:
      rearmTimer();
      return;
  }
}

// ---- teardown ----

void DownstreamConnection::close(CloseReason reason, bool reset) {
  if (closing()) return;
  conn_state_ = ConnState::kClosing;
  close_reason_ = reason;
  if (upstream_ != nullptr) {
    upstream_->detach();
    upstream_ = nullptr;
  }
  if (h2_) h2_->closeAll();
  ctx_.stats->connections_active.sub();
  log::debug("conn closed", {{"conn", id_},
                             {"peer", peer_ip_},
                             {"reason", toString(reason)},
                             {"requests", requests_served_}});
  auto* sock = reinterpret_cast<uv_handle_t*>(&socket_);
  auto* timer = reinterpret_cast<uv_handle_t*>(&timer_);
  if (timer->loop != nullptr && !uv_is_closing(timer))
    uv_close(timer, &DownstreamConnection::uvOnClose);
  if (sock->loop != nullptr && !uv_is_closing(sock)) {
    if (reset && uv_tcp_close_reset(&socket_, &DownstreamConnection::uvOnClose) == 0) return;
    uv_close(sock, &DownstreamConnection::uvOnClose);
  }
}

void DownstreamConnection::uvOnClose(uv_handle_t* h) {
  auto* self = static_cast<DownstreamConnection*>(h->data);
  if (--self->open_handles_ == 0) self->ctx_.erase(self);
}

}  // namespace proxy::downstream
