// Helpers for the TLS unit tests: a temporary directory, a PKI minted at test time
// (root CA, intermediate, server leaf, client leaves), server options pointing at
// files in the temp dir, client SSL_CTXs, and a pump that shuttles bytes between two
// TlsSessions in memory. Test-only code; nothing here touches a socket.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "proxy/certutil/cert_builder.h"
#include "proxy/tls/tls_context.h"
#include "proxy/tls/tls_session.h"
#include "tests/support/temp_dir.h"

namespace proxy::tls::testing {

// tests/support's TempDir whose files are private to the test (0600), as an operator's
// key files should be (a key every user can read makes TlsContext warn).
class TempDir : public testsupport::TempDir {
 public:
  TempDir() : testsupport::TempDir("tls_unit") {}
  // Writes `contents` to path()/name (mode 0600) and returns the full path.
  std::string write(const std::string& name, const std::string& contents) const {
    return testsupport::TempDir::write(name, contents, 0600);
  }
};

struct Pki {
  certutil::Issued root;          // CN=Test Root CA
  certutil::Issued intermediate;  // CN=Test Intermediate CA, issued by root
  certutil::Issued server;        // CN=localhost, DNS:localhost, IP:127.0.0.1, by intermediate
  certutil::Issued rogue_root;    // an unrelated CA
};
// Minted once per test binary (ECDSA P-256: fast), shared read-only by the tests.
const Pki& pki();

// A client certificate issued by `issuer` (default: the trusted root) per `spec`.
certutil::Issued clientCert(certutil::CertSpec spec, const certutil::Issued* issuer = nullptr);

// ServerOptions with certificate = server leaf + intermediate, key = server key, all
// written to `dir`. Tests adjust the rest.
ServerOptions serverOptions(const TempDir& dir);
// Writes the trusted root to `dir` and lists it in certificate_authorities.
void trustRoot(ServerOptions& options, const TempDir& dir);
// "key: message", for test output.
std::string describe(const Problem& p);

// Builds a context, failing the test (with every problem printed) when it does not build.
std::shared_ptr<TlsContext> makeContext(const ServerOptions& options,
                                        std::shared_ptr<TicketKeys> keys = nullptr);

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

struct ClientOptions {
  uint16_t min_version = TLS1_2_VERSION;
  uint16_t max_version = TLS1_3_VERSION;
  std::vector<std::string> alpn{"http/1.1"};
  const certutil::Issued* cert = nullptr;  // client certificate to present
  const X509* extra_chain = nullptr;       // sent after the client leaf
  const char* cipher_list = nullptr;       // TLS 1.2 ciphers
  const char* curves = nullptr;
  bool verify_server = true;   // against pki().root
  bool session_cache = false;  // remember sessions in lastSession()
};
// A client SSL_CTX. With session_cache, new sessions are stored in the ctx's app data
// slot; take them with takeSession().
SslCtxPtr clientCtx(const ClientOptions& options);
// The most recent session the client ctx received (owned by the caller).
SSL_SESSION* takeSession(SSL_CTX* ctx);

// Moves bytes between the two sessions (reading plaintext into `*_plain`) until
// neither makes progress. Returns false if either side reported kError.
bool pump(TlsSession& client, TlsSession& server, std::string* client_plain = nullptr,
          std::string* server_plain = nullptr);
// Handshake helper: creates the sessions and pumps. Returns true when both finished.
bool handshake(TlsSession& client, TlsSession& server);

}  // namespace proxy::tls::testing
