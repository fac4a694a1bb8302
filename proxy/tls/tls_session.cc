#include "proxy/tls/tls_session.h"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "proxy/common/check.h"
#include "proxy/tls/tls_context.h"

namespace proxy::tls {

const char* toString(HandshakeFailure f) {
  switch (f) {
    case HandshakeFailure::kNone:
      return "none";
    case HandshakeFailure::kNoClientCertificate:
      return "no_client_certificate";
    case HandshakeFailure::kUnknownCa:
      return "unknown_ca";
    case HandshakeFailure::kCertificateExpired:
      return "certificate_expired";
    case HandshakeFailure::kCertificateNotYetValid:
      return "certificate_not_yet_valid";
    case HandshakeFailure::kIdentityNotAllowed:
      return "identity_not_allowed";
    case HandshakeFailure::kPinMismatch:
      return "pin_mismatch";
    case HandshakeFailure::kProtocolVersion:
      return "protocol_version";
    case HandshakeFailure::kNoSharedCipher:
      return "no_shared_cipher";
    case HandshakeFailure::kNotTls:
      return "not_tls";
    case HandshakeFailure::kPeerAlert:
      return "peer_alert";
    case HandshakeFailure::kTimeout:
      return "timeout";
    case HandshakeFailure::kOther:
      return "other";
  }
  return "other";
}

// The BIO under every session: reads pull from in_, writes append to out_. Unlike a
// BIO_s_mem pair it keeps no buffer of its own, so releaseBuffers() really frees
// everything (h2o lib/common/socket.c does the same over its own buffers).
struct BioAccess {
  static TlsSession* session(BIO* bio) { return static_cast<TlsSession*>(BIO_get_data(bio)); }

  static int read(BIO* bio, char* out, int len) {
    BIO_clear_retry_flags(bio);
    TlsSession* s = session(bio);
    size_t avail = s->in_.size() - s->in_off_;
    if (avail == 0 && !s->lent_.empty()) {
      size_t n = std::min(s->lent_.size(), static_cast<size_t>(len));
      std::memcpy(out, s->lent_.data(), n);
      s->lent_.remove_prefix(n);
      return static_cast<int>(n);
    }
    if (avail == 0) {
      // "No bytes yet", not EOF: SSL_get_error then says SSL_ERROR_WANT_READ.
      BIO_set_retry_read(bio);
      return -1;
    }
    size_t n = std::min(avail, static_cast<size_t>(len));
    std::memcpy(out, s->in_.data() + s->in_off_, n);
    s->in_off_ += n;
    if (s->in_off_ == s->in_.size()) {
      s->in_.clear();
      s->in_off_ = 0;
    }
    return static_cast<int>(n);
  }

  static int write(BIO* bio, const char* data, int len) {
    BIO_clear_retry_flags(bio);
    session(bio)->out_.append(data, static_cast<size_t>(len));
    return len;
  }

  static long ctrl(BIO* bio, int cmd, long /*num*/, void* /*ptr*/) {
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;
      case BIO_CTRL_PENDING: {
        TlsSession* s = session(bio);
        return static_cast<long>(s->in_.size() - s->in_off_ + s->lent_.size());
      }
      case BIO_CTRL_WPENDING: {
        TlsSession* s = session(bio);
        return static_cast<long>(s->out_.size() - s->out_off_);
      }
      default:
        return 0;
    }
  }

  static int create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }
  static int destroy(BIO* /*bio*/) { return 1; }
};

namespace {

// A constant method table (bio.h documents struct bio_method_st in this API version),
// so no BIO_meth_new allocation and no process-wide mutable state.
const BIO_METHOD kSessionBioMethod = {
    BIO_TYPE_SOURCE_SINK | 0x7e,  // a private type number; BIO_find_type is never used
    "apm-tls-proxy session",
    BioAccess::write,
    BioAccess::read,
    nullptr,
    nullptr,
    BioAccess::ctrl,
    BioAccess::create,
    BioAccess::destroy,
    nullptr,
};

}  // namespace

TlsSession::TlsSession(SSL* ssl) : ssl_(ssl) {
  BIO* bio = BIO_new(&kSessionBioMethod);
  PROXY_CHECK(bio != nullptr, "BIO_new failed (out of memory)");
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways; the SSL owns it; fromSsl() reads it
}

TlsSession* TlsSession::fromSsl(const SSL* ssl) {
  BIO* bio = SSL_get_rbio(ssl);
  if (bio == nullptr || BIO_method_type(bio) != kSessionBioMethod.type) return nullptr;
  return BioAccess::session(bio);
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

std::unique_ptr<TlsSession> TlsSession::createServer(const TlsContext& ctx) {
  SSL* ssl = SSL_new(ctx.sslCtx());
  PROXY_CHECK(ssl != nullptr, "SSL_new failed (out of memory)");
  SSL_set_accept_state(ssl);
  // Frees the handshake-only configuration (cipher/curve lists, certificate
  // references...) once established: most of our memory per idle connection.
  SSL_set_shed_handshake_config(ssl, 1);
  std::unique_ptr<TlsSession> session(new TlsSession(ssl));
  session->context_ = ctx.shared_from_this();
  return session;
}

std::unique_ptr<TlsSession> TlsSession::createClient(SSL_CTX* ctx, const std::string& sni) {
  SSL* ssl = SSL_new(ctx);
  PROXY_CHECK(ssl != nullptr, "SSL_new failed (out of memory)");
  SSL_set_connect_state(ssl);
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl, sni.c_str());
  return std::unique_ptr<TlsSession>(new TlsSession(ssl));
}

void TlsSession::receiveCiphertext(const char* data, size_t len) {
  // Compact before growing so a slow reader does not keep consumed bytes around.
  if (in_off_ > 0 && in_off_ >= in_.size() / 2) {
    in_.erase(0, in_off_);
    in_off_ = 0;
  }
  in_.append(data, len);
}

void TlsSession::lendCiphertext(const char* data, size_t len) {
  PROXY_DCHECK(lent_.empty(), "lendCiphertext twice without keepLentCiphertext");
  if (in_off_ < in_.size()) {
    receiveCiphertext(data, len);  // after older bytes: keep the order, copy
    return;
  }
  lent_ = std::string_view(data, len);
}

void TlsSession::keepLentCiphertext() {
  if (!lent_.empty()) receiveCiphertext(lent_.data(), lent_.size());
  lent_ = std::string_view();
}

TlsSession::IoStatus TlsSession::readPlaintext(std::string& out, size_t max) {
  // Decrypt into a stack buffer and append only what came out: growing `out` first
  // would zero 16 KiB per call and leave an idle connection holding that capacity.
  char record[16384];  // one TLS record's plaintext at most
  size_t total = 0;
  for (;;) {
    size_t chunk = std::min<size_t>(max - total, sizeof record);
    size_t n = 0;
    IoStatus st = readPlaintext(record, chunk, &n);
    out.append(record, n);
    total += n;
    // Less than asked for: SSL wants more ciphertext (or the session ended).
    if (st != IoStatus::kOk || n < chunk || total >= max) return st;
  }
}

TlsSession::IoStatus TlsSession::readPlaintext(char* out, size_t cap, size_t* produced) {
  *produced = 0;
  if (failure_ != HandshakeFailure::kNone) return IoStatus::kError;
  if (!handshake_done_) {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int err = SSL_get_error(ssl_, r);
      if (err == SSL_ERROR_WANT_READ) return IoStatus::kOk;
      return fail(err);
    }
    if (!onHandshakeDone()) return IoStatus::kError;
  }
  while (*produced < cap) {
    size_t chunk = std::min<size_t>(cap - *produced, INT_MAX);
    ERR_clear_error();
    int r = SSL_read(ssl_, out + *produced, static_cast<int>(chunk));
    if (r > 0) {
      *produced += static_cast<size_t>(r);
      continue;
    }
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ) break;
    if (err == SSL_ERROR_ZERO_RETURN) return IoStatus::kClosed;
    return fail(err);
  }
  return IoStatus::kOk;
}

TlsSession::IoStatus TlsSession::writePlaintext(const char* data, size_t len, uint64_t now_ms) {
  if (failure_ != HandshakeFailure::kNone) return IoStatus::kError;
  PROXY_DCHECK(handshake_done_, "writePlaintext before the handshake completed");
  // Unsigned 32-bit differences stay right across the wrap of the low bits.
  const auto now32 = static_cast<uint32_t>(now_ms);
  if (now32 - last_write_ms_ >= kRecordIdleMs) warm_bytes_ = 0;
  last_write_ms_ = now32;
  // Our BIO accepts every byte, so SSL_write never takes part of the input: nothing has
  // to be parked here, and backpressure is the caller's look at pendingCiphertext().
  // One SSL_write of at most kSmallRecord bytes is one record.
  while (len > 0) {
    size_t piece = std::min<size_t>(len, INT_MAX / 2);
    if (warm_bytes_ < kWarmupBytes) {
      piece = std::min(piece, kSmallRecord);
      warm_bytes_ += static_cast<uint32_t>(piece);
    }
    int n = static_cast<int>(piece);
    ERR_clear_error();
    int r = SSL_write(ssl_, data, n);
    if (r <= 0) return fail(SSL_get_error(ssl_, r));
    data += r;
    len -= static_cast<size_t>(r);
  }
  return IoStatus::kOk;
}

void TlsSession::shutdown() {
  // Before the handshake there is no session to close; SSL_shutdown would only fail.
  if (!handshake_done_ || failure_ != HandshakeFailure::kNone) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // 0 = our close_notify is queued; the peer's does not matter
  ERR_clear_error();
}

std::string_view TlsSession::pendingCiphertext() const {
  return std::string_view(out_).substr(out_off_);
}

void TlsSession::consumeCiphertext(size_t n) {
  out_off_ += std::min(n, out_.size() - out_off_);
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  }
}

void TlsSession::releaseBuffers() {
  // std::string keeps its capacity on clear(); swapping with an empty one frees it.
  if (in_off_ == in_.size()) {
    std::string().swap(in_);
    in_off_ = 0;
  }
  if (out_off_ == out_.size()) {
    std::string().swap(out_);
    out_off_ = 0;
  }
}

namespace {
const std::string& noText() {
  static const std::string kEmpty;
  return kEmpty;
}
}  // namespace

TlsSession::Errors& TlsSession::errors() {
  if (!errors_) errors_ = std::make_unique<Errors>();
  return *errors_;
}

const std::string& TlsSession::errorMessage() const {
  return errors_ ? errors_->message : noText();
}
const std::string& TlsSession::clientCertHeader() const {
  return client_ ? client_->cert_header : noText();
}
const std::string& TlsSession::clientSubject() const {
  return client_ ? client_->subject : noText();
}
const std::string& TlsSession::clientSans() const { return client_ ? client_->sans : noText(); }

const char* TlsSession::protocolName() const { return SSL_get_version(ssl_); }

const char* TlsSession::cipherName() const {
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
  return c ? SSL_CIPHER_get_name(c) : "";
}

std::string_view TlsSession::sni() const {
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return name ? std::string_view(name) : std::string_view();
}

bool TlsSession::sessionReused() const { return SSL_session_reused(ssl_) == 1; }

std::string_view TlsSession::alpnProtocol() const {
  const uint8_t* data = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return std::string_view(reinterpret_cast<const char*>(data), data == nullptr ? 0 : len);
}

bool TlsSession::onHandshakeDone() {
  if (SSL_is_server(ssl_) && SSL_session_reused(ssl_) && !resumedChainStillValid()) {
    // The session was established when the client certificate was valid; it is not any
    // more. BoringSSL re-verifies stored chains on resumption only on the client side
    // (SSL_CTX_set_reverify_on_resume), so the server checks the dates itself.
    ERR_clear_error();
    SSL_send_fatal_alert(ssl_, SSL_AD_CERTIFICATE_EXPIRED);
    ERR_clear_error();
    return false;
  }
  handshake_done_ = true;
  if (!SSL_is_server(ssl_)) return true;
  // BoringSSL holds TLS 1.3 NewSessionTickets until the server's first write
  // (tls13_server.cc do_send_new_session_ticket); a zero-byte write flushes them now,
  // so the client can resume even before our first response, and the SSL does not
  // keep the pending flight of an idle connection.
  ERR_clear_error();
  SSL_write(ssl_, "", 0);
  ERR_clear_error();
  // client_ was set by verifyClientCallback (full handshake: made from the parsed chain,
  // or the one remembered for the same chain) or resumedChainStillValid (resumption).
  return true;
}

TlsSession::IoStatus TlsSession::fail(int ssl_error) {
  // Drain the whole queue: the first entry is the cause, later ones are context.
  std::string library;
  int reason = 0;
  bool ssl_reason = false;
  uint32_t e;
  while ((e = ERR_get_error()) != 0) {
    if (reason == 0) {
      reason = ERR_GET_REASON(e);
      ssl_reason = ERR_GET_LIB(e) == ERR_LIB_SSL;
    }
    const char* text = ERR_reason_error_string(e);
    if (!library.empty()) library += "; ";
    library += text ? text : "unknown error";
  }

  HandshakeFailure f = HandshakeFailure::kOther;
  std::string msg;
  const char* when = handshake_done_ ? "TLS error" : "TLS handshake failed";
  if (verify_failure_ != HandshakeFailure::kNone) {
    f = verify_failure_;
    msg = errors().verify_detail;
  } else if (ssl_reason && reason >= SSL_AD_REASON_OFFSET) {
    f = handshake_done_ ? HandshakeFailure::kOther : HandshakeFailure::kPeerAlert;
    msg = std::string("the peer sent the alert \"") +
          SSL_alert_desc_string_long(reason - SSL_AD_REASON_OFFSET) + "\"";
    if (!handshake_done_) msg += " (it may not trust our certificate)";
  } else if (ssl_reason) {
    switch (reason) {
      case SSL_R_HTTP_REQUEST:
        f = HandshakeFailure::kNotTls;
        msg = "the client sent a plain HTTP request to the TLS port (use https://)";
        break;
      case SSL_R_HTTPS_PROXY_REQUEST:
        f = HandshakeFailure::kNotTls;
        msg = "the client sent an HTTP proxy CONNECT request to the TLS port";
        break;
      case SSL_R_WRONG_VERSION_NUMBER:
        f = handshake_done_ ? HandshakeFailure::kOther : HandshakeFailure::kNotTls;
        msg = handshake_done_ ? "bad record version" : "the client did not speak TLS";
        break;
      case SSL_R_UNSUPPORTED_PROTOCOL:
        f = HandshakeFailure::kProtocolVersion;
        msg = "the client offered no TLS version that is enabled (ssl.supported_protocols)";
        break;
      case SSL_R_NO_SHARED_CIPHER:
        f = HandshakeFailure::kNoSharedCipher;
        msg = "no cipher suite in common with the client (ssl.cipher_suites)";
        break;
      case SSL_R_NO_SHARED_GROUP:
        f = HandshakeFailure::kNoSharedCipher;
        msg = "no elliptic curve in common with the client (ssl.curve_types)";
        break;
      case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        f = HandshakeFailure::kNoClientCertificate;
        msg = "the client sent no certificate, but client_authentication is \"required\"";
        break;
      default:
        break;
    }
  }
  if (msg.empty()) {
    if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_SSL) {
      msg = library.empty() ? "unexpected error" : library;
    } else {
      msg = "unexpected SSL_get_error " + std::to_string(ssl_error);
      if (!library.empty()) msg += ": " + library;
    }
  }
  failure_ = f;
  errors().message = std::string(when) + ": " + msg;
  return IoStatus::kError;
}

}  // namespace proxy::tls
