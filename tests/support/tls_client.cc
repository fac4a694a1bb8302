#include "tests/support/tls_client.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tests/support/net.h"
#include "tests/support/pem.h"

namespace proxy::testsupport {
namespace {

// Index 0 of an SSL's ex_data is the application's (what SSL_set_app_data uses).
constexpr int kSelfIndex = 0;

std::string alpnWire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const auto& proto : protocols) {
    wire += static_cast<char>(proto.size());
    wire += proto;
  }
  return wire;
}

}  // namespace

bool TlsClientContext::check(bool ok, const std::string& what) {
  if (!ok && error_.empty()) {
    error_ = what;
    uint32_t e = ERR_get_error();
    if (e != 0) {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      error_ += std::string(": ") + buf;
    }
  }
  ERR_clear_error();
  return ok;
}

void TlsClientContext::addVerification() {
  const TlsClientOptions& o = options_;
  if (o.trust_pem.empty()) {
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    return;
  }
  auto roots = certsFromPem(o.trust_pem);
  check(!roots.empty(), "no certificate in trust_pem");
  for (auto& root : roots) {
    check(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), root.get()) == 1, "trust_pem");
  }
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx_);
  if (!o.verify_ip.empty()) {
    check(X509_VERIFY_PARAM_set1_ip_asc(param, o.verify_ip.c_str()) == 1, "verify_ip");
  }
  if (!o.verify_host.empty()) {
    check(X509_VERIFY_PARAM_set1_host(param, o.verify_host.data(), o.verify_host.size()) == 1,
          "verify_host");
  }
}

void TlsClientContext::addClientCertificate() {
  auto chain = certsFromPem(options_.cert_pem);
  if (!check(!chain.empty(), "no certificate in cert_pem")) return;
  check(SSL_CTX_use_certificate(ctx_, chain[0].get()) == 1, "cert_pem");
  for (size_t i = 1; i < chain.size(); ++i) {
    check(SSL_CTX_add1_chain_cert(ctx_, chain[i].get()) == 1, "cert_pem chain");
  }
  auto key = keyFromPem(options_.key_pem);
  if (!check(key != nullptr, "no key in key_pem")) return;
  check(SSL_CTX_use_PrivateKey(ctx_, key.get()) == 1, "key_pem");
}

TlsClientContext::TlsClientContext(const TlsClientOptions& o) : options_(o) {
  ctx_ = SSL_CTX_new(TLS_method());
  if (!check(ctx_ != nullptr, "SSL_CTX_new")) return;
  if (o.min_version != 0) {
    check(SSL_CTX_set_min_proto_version(ctx_, o.min_version) == 1, "min_version");
  }
  if (o.max_version != 0) {
    check(SSL_CTX_set_max_proto_version(ctx_, o.max_version) == 1, "max_version");
  }
  if (!o.ciphers.empty()) {
    check(SSL_CTX_set_strict_cipher_list(ctx_, o.ciphers.c_str()) == 1, "ciphers " + o.ciphers);
  }
  if (!o.curves.empty()) {
    check(SSL_CTX_set1_curves_list(ctx_, o.curves.c_str()) == 1, "curves " + o.curves);
  }
  addVerification();
  if (!o.cert_pem.empty()) addClientCertificate();
  if (!o.alpn.empty()) {
    std::string wire = alpnWire(o.alpn);
    check(SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const uint8_t*>(wire.data()),
                                  wire.size()) == 0,
          "alpn");
  }
  SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_sess_set_new_cb(ctx_, &TlsClient::onNewSession);
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

TlsClient::TlsClient(uint16_t port, const TlsClientContext& ctx) : port_(port), ctx_(ctx) {}

TlsClient::TlsClient(AdoptFd connected, const TlsClientContext& ctx)
    : port_(0), ctx_(ctx), fd_(connected.fd) {
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  if (!ctx_.error().empty()) {
    recordError("options", ctx_.error());
    return;
  }
  startTls();
}

TlsClient::TlsClient(uint16_t port, TlsClientOptions options)
    : port_(port), own_ctx_(std::make_unique<TlsClientContext>(options)), ctx_(*own_ctx_) {
  openSocket(options.timeout);
}

TlsClient::~TlsClient() {
  if (ssl_ != nullptr) {
    if (ctx_.options().close_notify && error_.empty() && SSL_is_init_finished(ssl_)) {
      SSL_shutdown(ssl_);
    }
    SSL_free(ssl_);
  }
  if (fd_ >= 0) ::close(fd_);
  ERR_clear_error();
}

int TlsClient::onNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<TlsClient*>(SSL_get_ex_data(ssl, kSelfIndex));
  if (self == nullptr) return 0;
  self->session_ = SessionPtr(session, [](SSL_SESSION* s) { SSL_SESSION_free(s); });
  return 1;  // we took the reference
}

bool TlsClient::openSocket(Millis timeout) {
  if (!ctx_.error().empty()) {
    recordError("options", ctx_.error());
    return false;
  }
  fd_ = tcpConnect(port_, timeout);
  if (fd_ < 0) {
    recordError("connect", "127.0.0.1:" + std::to_string(port_) + ": " + std::strerror(errno));
    return false;
  }
  return startTls();
}

bool TlsClient::startTls() {
  const TlsClientOptions& o = ctx_.options();
  ssl_ = SSL_new(ctx_.get());
  if (ssl_ == nullptr) {
    recordError("connect", "SSL_new failed");
    return false;
  }
  SSL_set_ex_data(ssl_, kSelfIndex, this);
  if (!o.sni.empty()) SSL_set_tlsext_host_name(ssl_, o.sni.c_str());
  if (o.session) SSL_set_session(ssl_, o.session.get());
  SSL_set_fd(ssl_, fd_);
  SSL_set_connect_state(ssl_);
  return true;
}

void TlsClient::recordError(const std::string& what, const std::string& detail) {
  if (error_.empty()) error_ = what + ": " + detail;
}

TlsClient::Io TlsClient::step(int ret, const char* what) {
  if (ret > 0) return Io::kOk;
  int saved_errno = errno;
  int kind = SSL_get_error(ssl_, ret);
  if (kind == SSL_ERROR_WANT_READ) return Io::kWantRead;
  if (kind == SSL_ERROR_WANT_WRITE) return Io::kWantWrite;
  if (kind == SSL_ERROR_ZERO_RETURN) return Io::kClosed;  // a clean end, not a failure
  std::string detail;
  Io io = Io::kError;
  if (kind == SSL_ERROR_SYSCALL) {
    bool eof = saved_errno == 0 || saved_errno == ECONNRESET || saved_errno == EPIPE;
    detail = saved_errno == 0 ? "the server closed the connection"
                              : std::string("socket error: ") + std::strerror(saved_errno);
    io = eof ? Io::kClosed : Io::kError;
  }
  while (uint32_t e = ERR_get_error()) {
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET &&
        ERR_GET_REASON(e) < SSL_AD_REASON_OFFSET + 256 && alert_ < 0) {
      alert_ = ERR_GET_REASON(e) - SSL_AD_REASON_OFFSET;
    }
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    detail += (detail.empty() ? "" : "; ") + std::string(buf);
  }
  if (io == Io::kError && SSL_get_verify_result(ssl_) != X509_V_OK) {
    detail += std::string(" (verify: ") +
              X509_verify_cert_error_string(SSL_get_verify_result(ssl_)) + ")";
  }
  recordError(what, detail);
  return io;
}

bool TlsClient::waitFor(Io io, Clock::time_point deadline, const char* what) {
  short events = io == Io::kWantWrite ? POLLOUT : POLLIN;
  if (pollOne(fd_, events, remaining(deadline)) != 0) return true;
  recordError(what, "timed out");
  return false;
}

bool TlsClient::connect(Millis timeout) {
  auto deadline = Clock::now() + timeout;
  if (ssl_ == nullptr && !openSocket(timeout)) return false;
  for (;;) {
    Io io = step(SSL_do_handshake(ssl_), "handshake");
    if (io == Io::kOk) return true;
    if (io == Io::kClosed || io == Io::kError) {
      recordError("handshake", "closed");
      return false;
    }
    if (!waitFor(io, deadline, "handshake")) return false;
  }
}

bool TlsClient::handshake() { return connect(ctx_.options().timeout); }

bool TlsClient::send(std::string_view bytes, Millis timeout) {
  if (ssl_ == nullptr) {
    recordError("write", "not connected");
    return false;
  }
  auto deadline = Clock::now() + (timeout.count() > 0 ? timeout : ctx_.options().timeout);
  size_t off = 0;
  while (off < bytes.size()) {
    size_t chunk = std::min<size_t>(bytes.size() - off, 16384);
    int ret = SSL_write(ssl_, bytes.data() + off, static_cast<int>(chunk));
    Io io = step(ret, "write");
    if (io == Io::kOk) {
      off += static_cast<size_t>(ret);
      continue;
    }
    if (io == Io::kClosed || io == Io::kError) return false;
    if (!waitFor(io, deadline, "write")) return false;
  }
  return true;
}

bool TlsClient::readMore(Clock::time_point deadline) {
  if (closed_ || ssl_ == nullptr) return false;
  char buf[16384];
  for (;;) {
    int ret = SSL_read(ssl_, buf, sizeof buf);
    Io io = step(ret, "read");
    if (io == Io::kOk) {
      in_.append(buf, static_cast<size_t>(ret));
      return true;
    }
    if (io == Io::kClosed || io == Io::kError) {
      closed_ = true;
      return false;
    }
    if (!waitFor(io, deadline, "read")) return false;
  }
}

bool TlsClient::readInto(Http1Reader& reader, Millis timeout) {
  bool per_piece = timeout.count() <= 0;
  auto overall = Clock::now() + timeout;
  for (;;) {
    in_.erase(0, reader.feed(in_));
    if (reader.done()) return true;
    if (reader.broken()) {
      recordError("read", "not an HTTP/1.1 response");
      return false;
    }
    if (closed_) {
      reader.finish();
      if (!reader.done()) recordError("read", "closed before a complete response");
      return reader.done();
    }
    auto deadline = per_piece ? Clock::now() + ctx_.options().timeout : overall;
    if (!readMore(deadline) && !closed_) {
      reader.response().timed_out = true;
      return false;
    }
  }
}

Response TlsClient::readResponse(Millis timeout) {
  Http1Reader reader;
  readInto(reader, timeout);
  last_response_bytes_ = reader.wireBytes();
  return std::move(reader.response());
}

Response TlsClient::request(std::string_view bytes, Millis timeout) {
  if (!send(bytes, timeout)) {
    Response r;
    r.closed = true;
    return r;
  }
  return readResponse(timeout);
}

Response TlsClient::exchange(const std::string& request) {
  if (!handshake() || !send(request)) return Response{};
  return readResponse();
}

bool TlsClient::waitClosed(Millis timeout) {
  auto deadline = Clock::now() + timeout;
  while (!closed_) {
    if (!readMore(deadline) && !closed_) return false;
  }
  return true;
}

bool TlsClient::staysOpen(Millis duration) {
  auto deadline = Clock::now() + duration;
  while (Clock::now() < deadline) {
    if (pollOne(fd_, POLLIN, remaining(deadline)) == 0) return true;
    // Readable: post-handshake messages (TLS 1.3 tickets) are fine, anything else is not.
    char byte;
    int ret = SSL_read(ssl_, &byte, 1);
    if (ret > 0) {
      in_.push_back(byte);
      return false;
    }
    if (step(ret, "read") != Io::kWantRead) {
      closed_ = true;
      return false;
    }
  }
  return true;
}

uint16_t TlsClient::version() const { return ssl_ ? SSL_version(ssl_) : 0; }
std::string TlsClient::versionName() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

std::string TlsClient::cipher() const {
  const SSL_CIPHER* c = ssl_ ? SSL_get_current_cipher(ssl_) : nullptr;
  return c ? SSL_CIPHER_get_name(c) : "";
}

std::string TlsClient::alpn() const {
  const uint8_t* data = nullptr;
  unsigned len = 0;
  if (ssl_) SSL_get0_alpn_selected(ssl_, &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string TlsClient::curve() const {
  const char* name = ssl_ ? SSL_get_curve_name(SSL_get_curve_id(ssl_)) : nullptr;
  return name ? name : "";
}

std::string TlsClient::peerSubjectCn() const {
  bssl::UniquePtr<X509> peer(ssl_ ? SSL_get_peer_certificate(ssl_) : nullptr);
  return peer ? certCommonName(peer.get()) : std::string();
}

std::string TlsClient::peerSerialHex() const {
  bssl::UniquePtr<X509> peer(ssl_ ? SSL_get_peer_certificate(ssl_) : nullptr);
  return peer ? certSerialHex(peer.get()) : std::string();
}

size_t TlsClient::peerChainLength() const {
  STACK_OF(X509)* chain = ssl_ ? SSL_get_peer_cert_chain(ssl_) : nullptr;
  return chain ? sk_X509_num(chain) : 0;
}

long TlsClient::verifyResult() const { return SSL_get_verify_result(ssl_); }
bool TlsClient::sessionReused() const { return ssl_ && SSL_session_reused(ssl_) == 1; }

bool TlsClient::receivedCloseNotify() const {
  return ssl_ != nullptr && (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0;
}

uint16_t TlsClient::localPort() const { return localPortOf(fd_); }

std::string TlsClient::alertName() const {
  return alert_ < 0 ? "(none)" : SSL_alert_desc_string_long(alert_);
}

}  // namespace proxy::testsupport
