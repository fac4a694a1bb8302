// TlsContext itself: its lifetime, validate() for `check`, and the one-line summary the
// proxy logs at start. The builder is context_builder.cc, PEM handling pem.cc.
#include "proxy/tls/tls_context.h"

#include <openssl/pool.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <utility>

#include "proxy/common/duration.h"
#include "proxy/tls/apm_names.h"
#include "proxy/tls/pem.h"

namespace proxy::tls {

const char* toString(ClientAuth mode) {
  switch (mode) {
    case ClientAuth::kNone:
      return "none";
    case ClientAuth::kOptional:
      return "optional";
    case ClientAuth::kRequired:
      return "required";
  }
  return "none";
}

ClientAuth effectiveClientAuth(const ServerOptions& options) {
  if (options.client_authentication_explicit) return options.client_authentication;
  if (!options.certificate_authorities.empty()) return ClientAuth::kRequired;
  return options.client_authentication;
}
TlsContext::~TlsContext() {
  if (ctx_ != nullptr) {
    SSL_CTX_set_ex_data(ctx_, 0, nullptr);
    SSL_CTX_free(ctx_);
  }
  // Every TlsSession held a reference on this context, so no SSL, session or buffer of
  // the pool is left.
  if (pool_ != nullptr) CRYPTO_BUFFER_POOL_free(pool_);
  if (store_ != nullptr) X509_STORE_free(store_);
}
std::vector<Problem> TlsContext::validate(const ServerOptions& options) {
  CreateResult r = create(options, nullptr);
  std::vector<Problem> all = std::move(r.problems);
  for (auto& w : r.warnings) {
    w.warning = true;
    all.push_back(std::move(w));
  }
  return all;
}

std::string TlsContext::summary() const {
  std::string s = "TLS ";
  s += protocolName(min_version_);
  if (max_version_ != min_version_) {
    s += "..";
    s += protocolName(max_version_);
  }
  s += http2_ ? "; ALPN h2, http/1.1" : "; ALPN http/1.1";
  if (min_version_ < TLS1_3_VERSION) {  // TLS 1.3 alone never uses them
    s += "; TLS 1.2 ciphers: ";
    s += cipher_order_.aes_first;
    if (!cipher_order_.chacha_first.empty()) s += " (ChaCha20 first for clients that prefer it)";
  }
  if (max_version_ >= TLS1_3_VERSION) {
    s += "; TLS 1.3 ciphers (fixed): TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, "
         "TLS_CHACHA20_POLY1305_SHA256";
  }
  s += "; curves: ";
  s += curve_list_.empty() ? "library defaults (X25519, P-256, P-384)" : curve_list_;
  s += "; client authentication: ";
  s += toString(client_auth_);
  if (client_auth_ != ClientAuth::kNone) {
    if (system_roots_) {
      s += " against the system trust store";
    } else {
      s += " against CAs [";
      for (size_t i = 0; i < cas_.size(); ++i) {
        if (i) s += "; ";
        s += cas_[i].subject + " (until " + pem::formatTime(cas_[i].not_after) + ")";
      }
      s += "]";
    }
    if (!pins_.empty()) s += ", " + std::to_string(pins_.size()) + " ca_sha256 pin(s)";
    if (!options_.allowed_clients.empty()) s += ", allow-list on";
  }
  s += "; server certificate " + server_cert_.subject;
  if (!server_cert_.sans.empty()) s += " (" + server_cert_.sans + ")";
  s += " valid " + pem::formatTime(server_cert_.not_before) + " to " +
       pem::formatTime(server_cert_.not_after) + " from " + server_cert_.source;
  s += "; session tickets: ";
  if (options_.session_tickets) {
    s += "on, key rotated every " + formatDuration(options_.session_ticket_rotation);
  } else {
    s += "off (no resumption)";
  }
  s += ".";
  return s;
}

}  // namespace proxy::tls
