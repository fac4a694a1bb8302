#include "proxy/downstream/downstream_connection.h"

#include <algorithm>
#include <cstring>

#include "proxy/common/check.h"
#include "proxy/common/log.h"
#include "proxy/downstream/access_log.h"
#include "proxy/downstream/downstream_limits.h"
#include "proxy/downstream/http1_codec.h"
#include "proxy/downstream/http2_codec.h"
#include "proxy/tls/tls_context.h"

namespace proxy::downstream {
namespace {

// RFC 9113 §3.4: every HTTP/2 connection starts with these 24 bytes.
constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

}  // namespace

DownstreamConnection::DownstreamConnection(DownstreamContext& ctx, uint64_t id)
    : ctx_(ctx), id_(id), writer_(reinterpret_cast<uv_stream_t*>(&socket_), *this) {}

DownstreamConnection::~DownstreamConnection() {
  PROXY_CHECK(open_handles_ == 0, "downstream connection freed with open handles");
  if (flushQueued()) ctx_.flush_queue->remove(this);
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
  if (codec_) codec_->collect();  // a libuv callback: no request is inside one of its calls
  if (nread < 0) {
    if (nread == UV_EOF) {
      onEof();
    } else {
      // A lingering connection ends for the reason it was finished with (as the linger
      // deadline closes it), not as a plain "done".
      close(conn_state_ == ConnState::kLingering ? close_reason_ : CloseReason::kReadError);
    }
    return;
  }
  ctx_.stats->bytes_received.add(static_cast<uint64_t>(nread));
  if (conn_state_ == ConnState::kLingering || conn_state_ == ConnState::kFinishing) return;
  if (tls_) {
    // SSL reads the shared read buffer in place; what it leaves is copied before the
    // buffer serves another socket.
    tls_->lendCiphertext(buf->base, static_cast<size_t>(nread));
    pump();
    if (tls_) tls_->keepLentCiphertext();  // a plain-HTTP client drops tls_ (onHandshakeFailed)
    return;
  }
  if (pendingInput() == 0 && codec_ && codec_->acceptsInput()) {
    // Common case: the codec reads straight from the shared read buffer; only leftovers
    // are copied (pipelined requests behind a paused parser).
    auto n = static_cast<size_t>(nread);
    ++pump_depth_;
    size_t taken = codec_->receive(buf->base, n);
    --pump_depth_;
    if (closing()) return;
    if (taken < n) in_.append(buf->base + taken, n - taken);
    pump();
    return;
  }
  in_.append(buf->base, static_cast<size_t>(nread));
  pump();
}

void DownstreamConnection::onEof() {
  if (conn_state_ == ConnState::kLingering || conn_state_ == ConnState::kHandshaking) {
    close(conn_state_ == ConnState::kLingering ? close_reason_ : CloseReason::kPeerClosed);
    return;
  }
  EofAction action = codec_ ? codec_->onPeerEof() : EofAction::kIdle;
  if (action == EofAction::kCloseEarly) {
    close(CloseReason::kPeerClosedEarly);
    return;
  }
  if (action == EofAction::kAnswerThenClose) {
    peer_eof_ = true;
    updateReading();
    return;
  }
  if (!out_.empty() || writer_.writing() || (tls_ && !tls_->pendingCiphertext().empty())) {
    // Between requests, with the last response still being written: a half-close
    // only says the client sends nothing more. Finish writing, then close.
    peer_eof_ = true;
    finish(CloseReason::kPeerClosed);
    return;
  }
  close(CloseReason::kPeerClosed);
}

void DownstreamConnection::updateReading() {
  bool want = !closing() && !peer_eof_ && conn_state_ != ConnState::kFinishing &&
              (conn_state_ == ConnState::kLingering ||
               (pendingInput() < kMaxPendingInput && !(codec_ && codec_->readBlocked()) &&
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
         (!codec_ || codec_->acceptsInput()) && tls_->hasBufferedInput()) {
    if (!pumpOnce()) break;
  }
  --pump_depth_;
  if (closing()) return;
  if (codec_) {
    codec_->endOfPass();
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
      tls::TlsSession::IoStatus st = decrypt(decrypted);
      if (closing()) return false;
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
        feedPending();
        if (!closing()) onEof();
        return false;
      }
    }
  }
  // Under TLS the codec is chosen when the handshake ends (ALPN alone decides, RFC 9113
  // §3.2); on a plain listener by the first bytes.
  if (!codec_ && (tls_ || !detectPreface())) return decrypted;
  feedPending();
  return decrypted;
}

tls::TlsSession::IoStatus DownstreamConnection::decrypt(bool& decrypted) {
  bool direct = tls_->handshakeDone() && codec_ != nullptr && pendingInput() == 0 &&
                !ctx_.plaintext_busy && codec_->acceptsInput();
  if (!direct) {
    size_t before = in_.size();
    tls::TlsSession::IoStatus st = tls_->readPlaintext(in_, kMaxPendingInput);
    decrypted = in_.size() > before;
    return st;
  }
  if (!ctx_.plaintext_buffer) ctx_.plaintext_buffer.reset(new char[kMaxPendingInput]);
  char* plain = ctx_.plaintext_buffer.get();
  size_t n = 0;
  tls::TlsSession::IoStatus st = tls_->readPlaintext(plain, kMaxPendingInput, &n);
  decrypted = n > 0;
  if (n == 0 || st == tls::TlsSession::IoStatus::kError) return st;
  // As on the plain path (onRead): the codec reads in place; it forwards large bodies
  // from here with one writev, and only what it does not take yet is copied.
  ctx_.plaintext_busy = true;
  size_t taken = codec_->receive(plain, n);
  ctx_.plaintext_busy = false;
  if (!closing() && taken < n) in_.append(plain + taken, n - taken);
  return st;
}

void DownstreamConnection::feedPending() {
  if (!codec_ || pendingInput() == 0 || !codec_->acceptsInput()) return;
  size_t taken = codec_->receive(in_.data() + in_off_, pendingInput());
  if (closing()) return;
  in_off_ += taken;
  if (in_off_ == in_.size()) {
    in_.clear();
    in_off_ = 0;
  } else if (in_off_ > in_.size() / 2) {
    in_.erase(0, in_off_);
    in_off_ = 0;
  }
}

bool DownstreamConnection::detectPreface() {
  if (pendingInput() == 0) return false;
  // 0x16 starts a TLS handshake record (RFC 8446 §5.1); no HTTP/1.1 method and not the
  // HTTP/2 preface can begin with it.
  if (static_cast<unsigned char>(in_[in_off_]) == 0x16) {
    onTlsOnPlainPort();
    return false;
  }
  if (!ctx_.config->server.http2) {
    startCodec(/*http2=*/false);
    return !closing();
  }
  size_t n = std::min(pendingInput(), kPreface.size());
  if (std::memcmp(in_.data() + in_off_, kPreface.data(), n) != 0) {
    startCodec(/*http2=*/false);  // HTTP/1.1 (an "Upgrade: h2c" request stays HTTP/1.1)
    return !closing();
  }
  if (n < kPreface.size()) return false;  // a prefix so far: wait for the rest
  startCodec(/*http2=*/true);
  return !closing();
}

void DownstreamConnection::startCodec(bool http2) {
  if (!http2) {
    codec_ = std::make_unique<Http1Codec>(*this);
    return;
  }
  auto codec = std::make_unique<Http2Codec>(*this);
  if (!codec->start()) {
    close(CloseReason::kTlsError);
    return;
  }
  codec_ = std::move(codec);
  log::debug("http2", {{"conn", id_}, {"tls", tls_ != nullptr}});
  if (ctx_.draining) codec_->drain();
}

// ---- writing ----

void DownstreamConnection::flush() {
  if (closing()) return;
  if (codec_) codec_->produce();
  if (!out_.empty()) {
    if (tls_ && tls_->handshakeDone()) {
      if (tls_->writePlaintext(out_.data(), out_.size(), uv_now(ctx_.loop)) ==
          tls::TlsSession::IoStatus::kError) {
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
  if (conn_state_ == ConnState::kOpen && codec_) {
    if (std::optional<CloseReason> why = codec_->ended()) {
      finish(*why);  // the session's last frame is written or queued
      return;
    }
  }
  if (conn_state_ == ConnState::kFinishing && !writer_.writing()) {
    finish();
    return;
  }
  if (writer_.writing()) rearmTimer();
}

void DownstreamConnection::flushLater() {
  if (closing() || flushQueued()) return;
  ctx_.flush_queue->add(this);
}

void DownstreamConnection::runQueuedFlush() {
  if (closing() || !codec_) return;
  codec_->runQueuedFlush();
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
  if (codec_) {
    codec_->onWriteDone();
    if (closing()) return;
  }
  rearmTimer();
  if (idle() && !writer_.writing()) releaseIdleMemory();
}

bool DownstreamConnection::writeThrough(std::string_view data) {
  if (tls_) return false;
  int rc = writer_.write({out_, data});
  ctx_.stats->bytes_sent.add(out_.size() + data.size());
  out_.clear();
  if (rc < 0) close(CloseReason::kWriteError);
  return true;
}

void DownstreamConnection::markProgress() { last_progress_ms_ = uv_now(ctx_.loop); }

void DownstreamConnection::inputUnblocked() {
  if (!reading_ || pendingInput() > 0) pump();
}

void DownstreamConnection::finish(CloseReason reason) {
  // The first reason stands: a finishing connection asked to finish again (a drain's
  // last GOAWAY after an error one) keeps the reason it ends for.
  if (conn_state_ != ConnState::kFinishing && conn_state_ != ConnState::kLingering) {
    close_reason_ = reason;
  }
  finish();
}

// finish(): no more requests. Write what is queued, send close_notify under TLS, then
// half-close and linger briefly so a client still sending reads our last response.
void DownstreamConnection::finish() {
  if (closing() || conn_state_ == ConnState::kLingering) return;
  if (conn_state_ != ConnState::kFinishing) {
    if (codec_) codec_->produce();  // the last frames (a GOAWAY) go before close_notify
    conn_state_ = ConnState::kFinishing;
    updateReading();
    if (tls_ && tls_->handshakeDone()) {
      // The last response, then close_notify, both encrypted before anything is sent.
      if (!out_.empty() && tls_->writePlaintext(out_.data(), out_.size(), uv_now(ctx_.loop)) ==
                               tls::TlsSession::IoStatus::kError) {
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
  if (codec_) codec_->releaseMemory();
  if (tls_) tls_->releaseBuffers();
}

void DownstreamConnection::drain() {
  // A handshake in progress is bounded by its timeout; a finishing connection takes no
  // more requests anyway.
  if (conn_state_ != ConnState::kOpen) return;
  if (codec_) {
    codec_->drain();
    return;
  }
  if (idle()) finish(CloseReason::kDrain);
}

bool DownstreamConnection::idle() const {
  return conn_state_ == ConnState::kOpen && pendingInput() == 0 && (!codec_ || codec_->idle());
}

// ---- teardown ----

void DownstreamConnection::close(CloseReason reason, bool reset) {
  if (closing()) return;
  conn_state_ = ConnState::kClosing;
  close_reason_ = reason;
  if (flushQueued()) ctx_.flush_queue->remove(this);  // a closing connection sends nothing
  if (codec_) codec_->closeAll();
  ctx_.stats->connections_active.sub();
  log::debug("conn closed", {{"conn", id_},
                             {"peer", peer_ip_},
                             {"reason", toString(reason)},
                             {"requests", codec_ ? codec_->requestsServed() : 0}});
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
