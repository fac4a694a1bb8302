// The client-certificate side of TlsSession: the custom verify callback of a server
// context (chains arrive as DER buffers and are parsed only while they are checked), the
// re-check of a resumed session's chain, and the identity text kept for the connection.
#include <openssl/pool.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <algorithm>
#include <ctime>

#include "proxy/tls/identity.h"
#include "proxy/tls/tls_context.h"
#include "proxy/tls/tls_session.h"
#include "proxy/tls/verified_chains.h"

namespace proxy::tls {
namespace {

std::string formatTime(const ASN1_TIME* t) {
  ASN1_TIME* epoch = ASN1_TIME_set(nullptr, 0);
  int days = 0, secs = 0;
  bool ok = epoch && ASN1_TIME_diff(&days, &secs, epoch, t);
  ASN1_TIME_free(epoch);
  if (!ok) return "unknown time";
  std::time_t tt = static_cast<std::time_t>(int64_t{days} * 86400 + secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "client certificate" for the leaf, else "certificate <subject> in the client chain".
std::string whichCert(X509* cert, int depth) {
  if (depth <= 0) return "client certificate " + subjectRfc2253(cert);
  return "certificate " + subjectRfc2253(cert) + " in the client chain";
}

// The peer's chain (leaf first) parsed from the DER the SSL keeps, for as long as one
// check needs it: the buffers-method SSL_CTX (context_builder.cc) never keeps parsed
// certificates, so an idle connection holds none. ok() is false when a certificate does
// not parse (BoringSSL checked only its outer structure and public key).
class ParsedChain {
 public:
  explicit ParsedChain(const SSL* ssl) : certs_(sk_X509_new_null()) {
    const STACK_OF(CRYPTO_BUFFER)* buffers = SSL_get0_peer_certificates(ssl);
    ok_ = certs_ != nullptr;
    for (size_t i = 0; ok_ && buffers != nullptr && i < sk_CRYPTO_BUFFER_num(buffers); ++i) {
      X509* cert = X509_parse_from_buffer(sk_CRYPTO_BUFFER_value(buffers, i));
      ok_ = cert != nullptr && sk_X509_push(certs_, cert) != 0;
      if (!ok_) X509_free(cert);
    }
  }
  ~ParsedChain() { sk_X509_pop_free(certs_, X509_free); }
  ParsedChain(const ParsedChain&) = delete;
  ParsedChain& operator=(const ParsedChain&) = delete;

  bool ok() const { return ok_; }
  size_t size() const { return certs_ == nullptr ? 0 : sk_X509_num(certs_); }
  X509* at(size_t i) const { return sk_X509_value(certs_, i); }
  STACK_OF(X509) * stack() const { return certs_; }

 private:
  STACK_OF(X509) * certs_;
  bool ok_ = false;
};

bool spkiMatches(X509* cert, const std::vector<std::array<uint8_t, 32>>& pins) {
  uint8_t* der = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (len <= 0) return false;
  std::array<uint8_t, 32> digest{};
  SHA256(der, static_cast<size_t>(len), digest.data());
  OPENSSL_free(der);
  return std::find(pins.begin(), pins.end(), digest) != pins.end();
}

}  // namespace

std::shared_ptr<const VerifiedClient> TlsSession::describeClient(const X509* leaf,
                                                                 const ClientIdentity& id) {
  // Only called for a chain that was verified (now, or when the resumed session was
  // established), so this is a verified identity.
  auto client = std::make_shared<VerifiedClient>();
  client->subject = subjectRfc2253(leaf);
  client->sans = sansString(id);
  client->cert_header = forwardedClientCert(leaf, id);
  return client;
}

bool TlsSession::resumedChainStillValid() {
  ParsedChain chain(ssl_);
  if (!chain.ok()) {
    failure_ = HandshakeFailure::kOther;
    errors().message =
        "TLS handshake failed: the client chain of the resumed session does not parse";
    return false;
  }
  for (size_t i = 0; i < chain.size(); ++i) {
    X509* cert = chain.at(i);
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
      failure_ = HandshakeFailure::kCertificateExpired;
      errors().message = "TLS handshake failed: " + whichCert(cert, static_cast<int>(i)) +
                         " expired (notAfter " + formatTime(X509_get0_notAfter(cert)) +
                         ") since the session it resumes was established";
      return false;
    }
  }
  if (chain.size() > 0) client_ = describeClient(chain.at(0), identityOf(chain.at(0)));
  return true;
}

enum ssl_verify_result_t TlsSession::verifyClientCallback(SSL* ssl, uint8_t* out_alert) {
  TlsSession* self = fromSsl(ssl);
  if (self == nullptr || self->context_ == nullptr) {
    *out_alert = SSL_AD_INTERNAL_ERROR;
    return ssl_verify_invalid;
  }
  const TlsContext& context = *self->context_;
  auto refuse = [&](HandshakeFailure why, std::string detail, uint8_t alert) {
    self->verify_failure_ = why;
    self->errors().verify_detail = std::move(detail);
    *out_alert = alert;
    return ssl_verify_invalid;
  };
  // The same chain passed every check below against this context before (agents
  // reconnect with the same certificate): only the dates can have changed since, and
  // its identity text is the same, so nothing of it is parsed again.
  const STACK_OF(CRYPTO_BUFFER)* sent = SSL_get0_peer_certificates(ssl);
  VerifiedChains::Digest digest = VerifiedChains::digestOf(sent);
  if (sent != nullptr && sk_CRYPTO_BUFFER_num(sent) > 0) {
    if (auto known = context.verifiedChains().find(digest, std::time(nullptr))) {
      self->client_ = std::move(known);
      return ssl_verify_ok;
    }
  }
  ParsedChain parsed(ssl);
  if (parsed.size() == 0 && parsed.ok()) {
    // BoringSSL calls us only when certificates were sent; be safe anyway.
    return refuse(HandshakeFailure::kNoClientCertificate, "the client sent no certificate",
                  SSL_AD_CERTIFICATE_REQUIRED);
  }
  if (!parsed.ok()) {
    return refuse(HandshakeFailure::kOther, "a certificate in the client chain does not parse",
                  SSL_AD_BAD_CERTIFICATE);
  }
  STACK_OF(X509)* chain = parsed.stack();
  X509* leaf = parsed.at(0);
  bssl::UniquePtr<X509_STORE_CTX> store_owner(X509_STORE_CTX_new());
  X509_STORE_CTX* store_ctx = store_owner.get();
  if (store_ctx == nullptr || !X509_STORE_CTX_init(store_ctx, context.certStore(), leaf, chain)) {
    return refuse(HandshakeFailure::kOther, "cannot set up certificate verification",
                  SSL_AD_INTERNAL_ERROR);
  }
  // "ssl_client": a leaf with an extended key usage must allow clientAuth, as Go's
  // x509.VerifyOptions{KeyUsages: ClientAuth} demands in APM Server.
  X509_STORE_CTX_set_default(store_ctx, "ssl_client");
  bool verified = X509_verify_cert(store_ctx) == 1;
  enum ssl_verify_result_t result = ssl_verify_ok;
  if (!verified) {
    int err = X509_STORE_CTX_get_error(store_ctx);
    int depth = X509_STORE_CTX_get_error_depth(store_ctx);
    X509* bad = X509_STORE_CTX_get_current_cert(store_ctx);
    if (bad == nullptr) bad = leaf;
    uint8_t alert = static_cast<uint8_t>(SSL_alert_from_verify_result(err));
    switch (err) {
      case X509_V_ERR_CERT_HAS_EXPIRED:
        result = refuse(HandshakeFailure::kCertificateExpired,
                        whichCert(bad, depth) + " expired (notAfter " +
                            formatTime(X509_get0_notAfter(bad)) + ")",
                        SSL_AD_CERTIFICATE_EXPIRED);
        break;
      case X509_V_ERR_CERT_NOT_YET_VALID:
        result = refuse(HandshakeFailure::kCertificateNotYetValid,
                        whichCert(bad, depth) + " is not yet valid (notBefore " +
                            formatTime(X509_get0_notBefore(bad)) + ")",
                        alert);
        break;
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_CERT_UNTRUSTED: {
        char issuer[256] = {};
        X509_NAME_oneline(X509_get_issuer_name(bad), issuer, sizeof issuer);
        result =
            refuse(HandshakeFailure::kUnknownCa,
                   whichCert(bad, depth) + " is not issued by a trusted CA (issuer " + issuer + ")",
                   SSL_AD_UNKNOWN_CA);
        break;
      }
      case X509_V_ERR_INVALID_PURPOSE:
        result = refuse(
            HandshakeFailure::kOther,
            whichCert(bad, depth) + " is not valid for client authentication (extended key usage)",
            SSL_AD_UNSUPPORTED_CERTIFICATE);
        break;
      default:
        result = refuse(HandshakeFailure::kOther,
                        whichCert(bad, depth) + " rejected: " + X509_verify_cert_error_string(err),
                        alert);
        break;
    }
  } else if (!context.pins().empty()) {
    // APM Server (tlscommon verifyCAPin) passes when any certificate of a verified chain
    // matches; the built chain includes the trust anchor.
    STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(store_ctx);
    bool pinned = false;
    for (size_t i = 0; built != nullptr && i < sk_X509_num(built) && !pinned; ++i) {
      pinned = spkiMatches(sk_X509_value(built, i), context.pins());
    }
    if (!pinned) {
      result = refuse(HandshakeFailure::kPinMismatch,
                      "no certificate in the chain of client " + subjectRfc2253(leaf) +
                          " matches ssl.ca_sha256",
                      SSL_AD_BAD_CERTIFICATE);
    }
  }
  if (result != ssl_verify_ok) return result;

  const AllowedClients& allowed = context.options().allowed_clients;
  ClientIdentity id = identityOf(leaf);
  if (!allowed.empty()) {
    if (!isAllowed(allowed, id)) {
      std::string sans = sansString(id);
      return refuse(HandshakeFailure::kIdentityNotAllowed,
                    "client " + subjectRfc2253(leaf) + (sans.empty() ? "" : " (" + sans + ")") +
                        " is not in ssl.allowed_clients",
                    SSL_AD_ACCESS_DENIED);
    }
  }
  self->client_ = describeClient(leaf, id);
  context.verifiedChains().remember(digest, X509_STORE_CTX_get0_chain(store_ctx), self->client_);
  return ssl_verify_ok;
}

}  // namespace proxy::tls
