// TlsContext: the server SSL_CTX built from ServerOptions, the plain values of [ssl]
// (chain, key, protocols, ciphers, curves, client authentication, allow-list, pins,
// session tickets). Built once at start and again on each reload; a reload builds a
// whole new context and swaps it in only when it validates. No libuv, no config module.
// Shared by every worker thread (read-only).
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/common/status.h"
#include "proxy/tls/cipher_order.h"
#include "proxy/tls/tls_options.h"
#include "proxy/tls/verified_chains.h"

namespace proxy::tls {

class TicketKeys;

// Facts about the loaded certificates, for logs, `check` and metrics.
struct CertificateInfo {
  std::string subject;
  std::string sans;       // "DNS:localhost, IP:127.0.0.1"
  int64_t not_after = 0;  // unix seconds
  int64_t not_before = 0;
  std::string source;  // file path or "inline"
};

// The client_authentication in force: an explicit value wins; otherwise CAs present
// mean "required" and none mean "none" (APM Server's rule, reference §1).
ClientAuth effectiveClientAuth(const ServerOptions& options);

// Created only through create(), always owned by shared_ptr: every TlsSession keeps its
// context alive (and with it the SSL_CTX, the allow-list and the pins its handshake
// callbacks read), so a reload that drops the old context never affects open sessions.
class TlsContext : public std::enable_shared_from_this<TlsContext> {
 public:
  // Loads every file the options name and builds the SSL_CTX. On failure returns every
  // problem found, each tagged with its config key (e.g. "ssl.key"). Warnings (an
  // expired certificate, system roots used for client auth) land in `warnings`.
  // `ticket_keys` null: a fresh set (rotated every options.session_ticket_rotation).
  struct CreateResult {
    std::shared_ptr<TlsContext> context;  // set on success
    std::vector<Problem> problems;        // errors
    std::vector<Problem> warnings;
  };
  static CreateResult create(const ServerOptions& options, std::shared_ptr<TicketKeys> ticket_keys);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // For `check`: every error and warning create() would report, without keeping the
  // context (warnings have Problem::warning set).
  static std::vector<Problem> validate(const ServerOptions& options);
  // One paragraph describing the effective TLS settings for `check` and the start-up
  // log: protocols, ciphers, curves, client authentication, CAs, server certificate.
  std::string summary() const;

  SSL_CTX* sslCtx() const { return ctx_; }
  // The trust store client chains verify against (the configured CAs, or the system
  // roots). Kept here, not in the SSL_CTX: a buffers-method SSL_CTX has no X509_STORE.
  X509_STORE* certStore() const { return store_; }
  const ServerOptions& options() const { return options_; }
  const CertificateInfo& serverCertificate() const { return server_cert_; }
  const std::vector<CertificateInfo>& certificateAuthorities() const { return cas_; }
  // Every file this context read (for the reload watcher).
  const std::vector<std::string>& files() const { return files_; }
  // The client_authentication in force (see effectiveClientAuth()).
  ClientAuth clientAuth() const { return client_auth_; }
  // Decoded ssl.ca_sha256 pins (SHA-256 of a SubjectPublicKeyInfo DER).
  const std::vector<std::array<uint8_t, 32>>& pins() const { return pins_; }
  // The process-wide ticket keys this context encrypts session tickets with.
  const std::shared_ptr<TicketKeys>& ticketKeys() const { return ticket_keys_; }
  // True when client certificates verify against the system roots (no CAs given).
  bool usesSystemRoots() const { return system_roots_; }
  // Client chains that passed this context's checks (thread-safe; see verified_chains.h).
  VerifiedChains& verifiedChains() const { return verified_chains_; }

 private:
  TlsContext() = default;
  SSL_CTX* ctx_ = nullptr;
  // Every certificate the SSL_CTX's connections and sessions hold, each distinct one once.
  // Freed after ctx_: it must outlive every SSL, SSL_SESSION and CRYPTO_BUFFER of it.
  CRYPTO_BUFFER_POOL* pool_ = nullptr;
  X509_STORE* store_ = nullptr;
  ServerOptions options_;
  CertificateInfo server_cert_;
  std::vector<CertificateInfo> cas_;
  std::vector<std::string> files_;
  std::shared_ptr<TicketKeys> ticket_keys_;
  ClientAuth client_auth_ = ClientAuth::kNone;
  std::vector<std::array<uint8_t, 32>> pins_;
  bool system_roots_ = false;
  mutable VerifiedChains verified_chains_;
  uint16_t min_version_ = 0;
  uint16_t max_version_ = 0;
  CipherOrder cipher_order_;  // TLS <= 1.2 suites, the server's order (cipher_order.h)
  bool http2_ = false;        // ALPN offers h2 before http/1.1
  std::string curve_list_;    // empty = library defaults
  friend struct ContextBuilder;
};

}  // namespace proxy::tls
