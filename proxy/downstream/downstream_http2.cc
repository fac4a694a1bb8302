// DownstreamConnection in HTTP/2 mode: choosing the codec, feeding it, writing its frames,
// and the connection-level deadlines and drain of an HTTP/2 client. The transport (socket,
// TLS pump, writer, close) is the same as for HTTP/1.1, in downstream_connection.cc.
#include <algorithm>
#include <cstring>
#include <string_view>

#include "proxy/common/log.h"
#include "proxy/downstream/downstream_connection.h"
#include "proxy/downstream/downstream_limits.h"
#include "proxy/tls/tls_context.h"

namespace proxy::downstream {
namespace {

// RFC 9113 §3.4: every HTTP/2 connection starts with these 24 bytes.
constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// Between the graceful GOAWAY and the final one (RFC 9113 §6.8: "at least one round trip").
constexpr uint64_t kGoawayGraceMs = 1000;

}  // namespace

void DownstreamConnection::startHttp2() {
  h2_ = std::make_unique<Http2Codec>(*this);
  if (!h2_->start()) {
    h2_.reset();
    close(CloseReason::kTlsError);
    return;
  }
  log::debug("http2", {{"conn", id_}, {"tls", tls_ != nullptr}});
  if (ctx_.draining) drainHttp2();
}

bool DownstreamConnection::detectPreface() {
  if (!ctx_.config->server.http2 || tls_ || requests_served_ > 0) {
    preface_checked_ = true;
    return true;
  }
  size_t n = std::min(pendingInput(), kPreface.size());
  if (std::memcmp(in_.data() + in_off_, kPreface.data(), n) != 0) {
    preface_checked_ = true;  // HTTP/1.1 (an "Upgrade: h2c" request stays HTTP/1.1)
    return true;
  }
  if (n < kPreface.size()) return false;  // a prefix so far: wait for the rest
  preface_checked_ = true;
  startHttp2();
  return !closing();
}

void DownstreamConnection::feedHttp2() {
  if (pendingInput() == 0 || closing()) return;
  last_progress_ms_ = uv_now(ctx_.loop);
  bool ok = h2_->receive(in_.data() + in_off_, pendingInput());
  in_.clear();
  in_off_ = 0;
  if (closing()) return;
  if (!ok || !h2_->wantsRead()) {
    // A connection error: the session queued its GOAWAY; send it, then close.
    log::debug("http2 session ended",
               {{"conn", id_}, {"peer", peer_ip_}, {"reason", h2_->errorReason()}});
    close_reason_ = CloseReason::kBadRequest;
    finish();
    return;
  }
  rearmTimer();
}

void DownstreamConnection::produceHttp2() {
  if (h2_->receiving() || conn_state_ != ConnState::kOpen) return;
  size_t queued = queuedOutput();
  if (queued >= kHighWatermark || !h2_->wantsWrite()) return;
  h2_->produce(out_, kHighWatermark - queued);
}

void DownstreamConnection::h2Flush() {
  // Inside a pump pass the pass flushes at its end; inside receive() nothing may produce.
  if (pump_depth_ > 0 || h2_->receiving()) return;
  flush();
  if (closing()) return;
  if (h2_->goawaySent() && h2_->openStreams() == 0) {
    finish();
    return;
  }
  rearmTimer();  // a stream's deadline may have changed (a response paused, a stream done)
}

http::ForwardContext DownstreamConnection::h2Forward() {
  http::ForwardContext fwd;
  fwd.client_ip = peer_ip_;
  fwd.client_is_trusted_proxy = peer_trusted_;
  fwd.tls = tls_ != nullptr;
  if (tls_ && ctx_.tls && ctx_.config->ssl.forward_client_cert) {
    fwd.client_cert_header = tls_->clientCertHeader();
  }
  return fwd;
}

void DownstreamConnection::h2FillAccessLog(AccessLog::Entry& e) {
  e.peer_ip = peer_ip_;
  e.peer_port = peer_port_;
  if (tls_ && tls_->handshakeDone()) {
    e.tls_version = tls_->protocolName();
    e.tls_cipher = tls_->cipherName();
    e.sni = tls_->sni();
    e.client_subject = tls_->clientSubject();
    e.client_sans = tls_->clientSans();
    e.tls_resumed = tls_->sessionReused();
    e.client_cert_sha256 = AccessLog::sha256FromXfcc(tls_->clientCertHeader());
  }
}

uint64_t DownstreamConnection::http2Deadline() const {
  const config::ServerConfig& s = ctx_.config->server;
  uint64_t deadline = h2_->nextDeadline();
  if (h2_->openStreams() == 0) {
    // No stream open: the connection is idle (request_header_timeout before the first
    // request, as for HTTP/1.1, so a silent client cannot hold a connection long).
    uint64_t idle = toMs(h2_->streamsSeen() == 0 ? s.request_header_timeout : s.idle_timeout);
    deadline = std::min(deadline, last_progress_ms_ + idle);
  }
  if (drain_started_ms_ != 0 && !h2_->goawaySent()) {
    deadline = std::min(deadline, drain_started_ms_ + kGoawayGraceMs);
  }
  return deadline;
}

void DownstreamConnection::onHttp2Timer(uint64_t now) {
  if (drain_started_ms_ != 0 && !h2_->goawaySent() && now >= drain_started_ms_ + kGoawayGraceMs) {
    h2_->finalGoaway();
  }
  h2_->checkDeadlines(now);
  if (closing()) return;
  const config::ServerConfig& s = ctx_.config->server;
  uint64_t idle = toMs(h2_->streamsSeen() == 0 ? s.request_header_timeout : s.idle_timeout);
  bool idle_expired = h2_->openStreams() == 0 && now >= last_progress_ms_ + idle;
  if (idle_expired || (h2_->goawaySent() && h2_->openStreams() == 0)) {
    // RFC 9113 §6.8: say why before closing, so the client opens no stream in vain.
    h2_->finalGoaway();
    close_reason_ = drain_started_ms_ != 0 ? CloseReason::kDrain : CloseReason::kIdleTimeout;
    finish();
    return;
  }
  flush();
  if (closing()) return;
  rearmTimer();
}

void DownstreamConnection::drainHttp2() {
  if (drain_started_ms_ != 0) return;
  drain_started_ms_ = uv_now(ctx_.loop);
  h2_->drain();
  flush();
  if (closing()) return;
  rearmTimer();
}

}  // namespace proxy::downstream
