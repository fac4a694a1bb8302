// TlsContext: the server SSL_CTX built from [ssl] (chain, key, protocols, ciphers,
// curves, client authentication, allow-list, pins, session tickets). Built once at
// start and again on each reload; a reload builds a whole new context and swaps it in
// only when it validates. No libuv. Shared by every worker thread (read-only).
#pragma once

#include <openssl/ssl.h>

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
  std::string sans;             // "DNS:localhost, IP:127.0.0.1"
  int64_t not_after = 0;        // unix seconds
  int64_t not_before = 0;
  std::string source;           // file path or "inline"
};

class TlsContext {
 public:
  // Loads every file [ssl] names and builds the SSL_CTX. On failure returns every
  // problem found, each tagged with its config key (e.g. "ssl.key"). Warnings (an
  // expired certificate, system roots used for client auth) land in `warnings`.
  struct CreateResult {
    std::shared_ptr<TlsContext> context;          // set on success
    std::vector<config::Problem> problems;        // errors
    std::vector<config::Problem> warnings;
  };
  static CreateResult create(const config::Config& config,
                             std::shared_ptr<TicketKeys> ticket_keys);
  ~TlsContext();

  SSL_CTX* sslCtx() const { return ctx_; }
  const config::SslConfig& ssl() const { return ssl_; }
  const CertificateInfo& serverCertificate() const { return server_cert_; }
  const std::vector<CertificateInfo>& certificateAuthorities() const { return cas_; }
  // Every file this context read (for the reload watcher).
  const std::vector<std::string>& files() const { return files_; }

 private:
  TlsContext() = default;
  SSL_CTX* ctx_ = nullptr;
  config::SslConfig ssl_;
  CertificateInfo server_cert_;
  std::vector<CertificateInfo> cas_;
  std::vector<std::string> files_;
  std::shared_ptr<TicketKeys> ticket_keys_;
  friend struct ContextBuilder;
};

}  // namespace proxy::tls
