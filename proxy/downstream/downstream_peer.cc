// DownstreamConnection, what it learns about its client: the accepted socket's address
// (and whether it is a trusted proxy), the TLS handshake's outcome (done and the protocol
// chosen by ALPN, failed, timed out), and the facts both codecs put in forwarded fields
// and access-log lines. The socket, pump, writer and close are in downstream_connection.cc.
#include <netinet/in.h>

#include <cstring>

#include "proxy/common/log.h"
#include "proxy/downstream/downstream_connection.h"
#include "proxy/downstream/downstream_limits.h"
#include "proxy/tls/tls_context.h"

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

void DownstreamConnection::onHandshakeDone() {
  conn_state_ = ConnState::kOpen;
  startCodec(tls_->alpnProtocol() == "h2");
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
    finish(CloseReason::kHandshakeFailed);
    return;
  }
  flush();  // the alert
  if (closing()) return;
  finish(CloseReason::kHandshakeFailed);
}

void DownstreamConnection::onHandshakeTimeout() {
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
}

void DownstreamConnection::onTlsOnPlainPort() {
  // The likeliest cause is a configuration that lost its [ssl] table (the proxy then
  // serves plain HTTP, as its start-up line says): every agent fails its handshake with
  // "wrong version number" and nothing in the proxy's log said why.
  uint64_t suppressed = 0;
  if (ctx_.failure_log_limiter.allow(peer_ip_ + " tls_on_plain_port", uv_now(ctx_.loop),
                                     &suppressed)) {
    log::warn("tls handshake on the plain-HTTP port",
              {{"conn", id_},
               {"peer", peer_ip_},
               {"hint",
                "the client uses https:// but this listener has no [ssl] table: "
                "configure [ssl], or point the client at http://"},
               {"suppressed_before", suppressed}});
  }
  // Go's HTTP server, so APM Server's plain port, answers these bytes with a 400 too. A
  // TLS client cannot read it; anything else that sent them can.
  std::string resp =
      http::localResponse(400, "TLS handshake was sent to the plain-HTTP port; use http://");
  ctx_.stats->local_responses.add();
  ctx_.stats->responses_by_class[4].add();
  in_.clear();
  in_off_ = 0;
  if (writer_.write(resp) < 0) {
    close(CloseReason::kTlsOnPlainPort);
    return;
  }
  finish(CloseReason::kTlsOnPlainPort);
}

http::ForwardContext DownstreamConnection::forwardContext() {
  http::ForwardContext fwd;
  fwd.client_ip = peer_ip_;
  fwd.client_is_trusted_proxy = peer_trusted_;
  fwd.tls = tls_ != nullptr;
  if (tls_ && ctx_.tls && ctx_.config->ssl.forward_client_cert) {
    fwd.client_cert_header = tls_->clientCertHeader();
  }
  return fwd;
}

void DownstreamConnection::fillAccessLog(AccessLog::Entry& e) {
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

}  // namespace proxy::downstream
