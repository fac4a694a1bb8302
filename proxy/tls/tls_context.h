// TlsContext: the server SSL_CTX built from [ssl] (chain, key, protocols, ciphers,
// curves, client authentication, allow-list, pins, session tickets). Built once at
// start and again on each reload; a reload builds a whole new context and swaps it in
// only when it validates. No libuv. Shared by every worker thread (read-only).
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/common/status.h"
#include "proxy/config/config.h"

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
config::ClientAuth effectiveClientAuth(const config::SslConfig& ssl);

// Created only through create(), always owned by shared_ptr: every TlsSession keeps its
// context alive (and with it the SSL_CTX, the allow-list and the pins its handshake
// callbacks read), so a reload that drops the old context never affects open sessions.
class TlsContext : public std::enable_shared_from_this<TlsContext> {
 public:
  // Loads every file [ssl] names and builds the SSL_CTX. On failure returns every
  // problem found, each tagged with its config key (e.g. "ssl.key"). Warnings (an
  // expired certificate, system roots used for client auth) land in `warnings`.
  struct CreateResult {
    std::shared_ptr<TlsContext> context;    // set on success
    std::vector<config::Problem> problems;  // errors
    std::vector<config::Problem> warnings;
  };
  static CreateResult create(const config::Config& config, std::shared_ptr<TicketKeys> ticket_keys);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // For `check`: every error and warning create() would report, without keeping the
  // context (warnings have Problem::warning set). Empty when [ssl] is off.
  static std::vector<config::Problem> validate(const config::Config& config);
  // One paragraph describing the effective TLS settings for `check` and the start-up
  // log: protocols, ciphers, curves, client authentication, CAs, server certificate.
  std::string summary() const;

  SSL_CTX* sslCtx() const { return ctx_; }
  const config::SslConfig& ssl() const { return ssl_; }
  const CertificateInfo& serverCertificate() const { return server_cert_; }
  const std::vector<CertificateInfo>& certificateAuthorities() const { return cas_; }
  // Every file this context read (for the reload watcher).
  const std::vector<std::string>& files() const { return files_; }
  // The client_authentication in force (see effectiveClientAuth()).
  config::ClientAuth clientAuth() const { return client_auth_; }
  // Decoded ssl.ca_sha256 pins (SHA-256 of a SubjectPublicKeyInfo DER).
  const std::vector<std::array<uint8_t, 32>>& pins() const { return pins_; }
  // The process-wide ticket keys this context encrypts session tickets with.
  const std::shared_ptr<TicketKeys>& ticketKeys() const { return ticket_keys_; }
  // True when client certificates verify against the system roots (no CAs given).
  bool usesSystemRoots() const { return system_roots_; }

 private:
  TlsContext() = default;
  SSL_CTX* ctx_ = nullptr;
  config::SslConfig ssl_;
  CertificateInfo server_cert_;
  std::vector<CertificateInfo> cas_;
  std::vector<std::string> files_;
  std::shared_ptr<TicketKeys> ticket_keys_;
  config::ClientAuth client_auth_ = config::ClientAuth::kNone;
  std::vector<std::array<uint8_t, 32>> pins_;
  bool system_roots_ = false;
  uint16_t min_version_ = 0;
  uint16_t max_version_ = 0;
  std::string cipher_list_;  // BoringSSL names; empty = library defaults
  bool http2_ = false;       // ALPN offers h2 before http/1.1
  std::string curve_list_;   // empty = library defaults
  friend struct ContextBuilder;
};

}  // namespace proxy::tls
