// TLS support for the integration tests: certificates minted at test time (nothing that
// can expire is committed), a proxy started with an [ssl] table and its admin endpoint,
// and a BoringSSL client over a blocking socket that reports exactly what was negotiated
// (version, cipher, ALPN, peer chain, resumption) or which alert ended the handshake.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/certutil/cert_builder.h"
#include "tests/integration/harness.h"

namespace proxy::integration::tls {

using certutil::CertSpec;
using certutil::KeyType;

// A certificate with its private key.
struct Minted {
  certutil::X509Ptr cert;
  certutil::PkeyPtr key;
  std::string certPem() const;
  // PKCS#8; encrypted when `passphrase` is not empty.
  std::string keyPem(const std::string& passphrase = "") const;
  // Standard base64 of SHA-256 over the SubjectPublicKeyInfo DER (an ssl.ca_sha256 pin).
  std::string spkiSha256() const;
  // Lowercase hex SHA-256 of the certificate DER (XFCC's Hash=).
  std::string derSha256Hex() const;
};

// A self-signed CA called `cn`.
Minted mintCa(const std::string& cn, KeyType key_type = KeyType::kEcdsaP256);
// A certificate issued by `issuer`; fails the test when minting fails.
Minted mintIssued(const CertSpec& spec, const Minted& issuer,
                  KeyType key_type = KeyType::kEcdsaP256);
// A client certificate (clientAuth EKU) for `subject` issued by `issuer`.
CertSpec clientSpec(const std::string& subject);

// The server side of a test PKI, written into a TempDir: a root CA, an intermediate CA,
// and a server leaf for DNS:localhost and IP:127.0.0.1 issued by the intermediate.
// server.crt holds leaf + intermediate (the chain the proxy serves), root.crt the root.
struct ServerPki {
  explicit ServerPki(const TempDir& dir, KeyType leaf_key = KeyType::kEcdsaP256,
                     const CertSpec& leaf_spec = defaultLeafSpec());
  static CertSpec defaultLeafSpec();
  Minted root;
  Minted intermediate;
  Minted leaf;
  std::string root_path;   // root.crt
  std::string chain_path;  // server.crt: leaf then intermediate
  std::string key_path;    // server.key (unencrypted PKCS#8)
  // `certificate = "..."` and `key = "..."` lines for the [ssl] table.
  std::string sslLines() const;
};

// Writes `minted` as NAME.crt / NAME.key into `dir`; returns {cert path, key path}.
std::pair<std::string, std::string> writePair(const TempDir& dir, const std::string& name,
                                              const Minted& minted);

// A TOML string literal (basic string, with \ and " escaped).
std::string quoted(const std::string& s);
// A TOML array of string literals.
std::string quotedList(const std::vector<std::string>& items);

// A demo upstream and a TLS proxy in front of it, with the admin endpoint on. `ssl` is the
// body of the [ssl] table (certificate and key lines are added from `pki` unless
// `ssl` names them); `more_tables` is appended verbatim ([ssl.allowed_clients], ...).
struct ClientOptions;

struct TlsStackOptions {
  std::string ssl;
  std::string more_tables;
  std::map<std::string, std::string> server;  // extra [server] keys (raw TOML values)
};
class TlsStack {
 public:
  explicit TlsStack(const TlsStackOptions& options = {}, KeyType leaf_key = KeyType::kEcdsaP256);
  TempDir dir;
  ServerPki pki;
  DemoServer demo;
  std::unique_ptr<ProxyProcess> proxy;
  uint16_t port() const { return proxy->port(); }
  uint16_t adminPort() const { return admin_port_; }
  // Client options that trust the root (and check the IP SAN 127.0.0.1).
  ClientOptions clientOptions() const;
  // Asserts that the proxy logged a handshake failure with `reason` and that its counter
  // reached `count`; the log line (the log keeps 5 lines per peer per 10 s).
  std::string expectFailureRecorded(const std::string& reason, double count = 1);

 private:
  uint16_t admin_port_ = 0;
};

// The full path of a tool found on $PATH (posix_spawn does not search it); fails the
// test when it is missing.
std::string toolPath(const std::string& name);

// The admin /metrics text of a proxy ("" when it cannot be fetched).
std::string fetchMetrics(uint16_t admin_port);
// The value of one sample line ("name{labels}" exactly as printed), or -1 when absent.
double metricValue(const std::string& metrics, const std::string& sample);
// The handshake-failure counter for `reason`.
double handshakeFailures(uint16_t admin_port, const std::string& reason);
double sessionsResumed(uint16_t admin_port);
// Polls /metrics until handshakeFailures(reason) reaches `at_least`; the last value.
double waitForHandshakeFailures(uint16_t admin_port, const std::string& reason, double at_least,
                                Millis timeout = Millis{5000});
// Polls the proxy's stderr until a `msg="tls handshake failed"` line with
// `reason=<reason>` appears; that line, or "" after `timeout`.
std::string waitForFailureLog(Process& proxy, const std::string& reason,
                              Millis timeout = Millis{5000});

// ---- the BoringSSL client ----

struct SessionDeleter {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using SessionPtr = std::shared_ptr<SSL_SESSION>;

struct ClientOptions {
  uint16_t min_version = TLS1_2_VERSION;
  uint16_t max_version = TLS1_3_VERSION;
  std::string ciphers;    // TLS <= 1.2 suites, BoringSSL names (strict); empty = defaults
  std::string curves;     // "X25519", "P-384:P-256", ...; empty = defaults
  std::string trust_pem;  // roots to verify the server with; empty = no verification
  std::string verify_ip = "127.0.0.1";  // IP SAN the server must carry (with trust_pem)
  std::string sni = "localhost";        // empty = no SNI
  std::string cert_pem;                 // client certificate (and chain), PEM
  std::string key_pem;                  // its key, PEM
  std::vector<std::string> alpn{"http/1.1"};
  SessionPtr session;  // offered for resumption
  Millis timeout{5000};
};

// One TLS connection to 127.0.0.1:port. Every operation is bounded by options.timeout.
class TlsClient {
 public:
  TlsClient(uint16_t port, ClientOptions options);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // Runs the handshake; true when it completed. On failure error() and alert() say why.
  bool handshake();
  // Sends `bytes` over TLS; false on failure (see error()/alert()).
  bool send(const std::string& bytes);
  // Reads one HTTP/1.1 response (Content-Length, chunked, or close-delimited).
  Response readResponse();
  // handshake() + send(request) + readResponse(); status 0 when anything failed.
  Response exchange(const std::string& request);

  // True when the server neither sends anything nor closes for `duration` (after the
  // handshake: e.g. no timer meant for the handshake fires later).
  bool staysOpen(Millis duration);

  // Negotiated parameters (after a successful handshake).
  uint16_t version() const;
  std::string versionName() const;
  std::string cipher() const;  // standard name, e.g. "TLS_AES_128_GCM_SHA256"
  std::string alpn() const;
  std::string curve() const;
  // Certificates the server sent (leaf first).
  size_t peerChainLength() const;
  long verifyResult() const;
  bool sessionReused() const;
  // The newest resumable session received from the server (tickets arrive after the
  // TLS 1.3 handshake, so read a response first); null when none.
  SessionPtr session() const { return session_; }

  // The fatal alert received from the server, or -1.
  int alert() const { return alert_; }
  std::string alertName() const;
  // A description of the last failure ("" when none).
  const std::string& error() const { return error_; }

 private:
  static int onNewSession(SSL* ssl, SSL_SESSION* session);
  void recordError(int ret, const char* what);
  bool readSome(std::string& into);

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  ClientOptions options_;
  SessionPtr session_;
  int alert_ = -1;
  std::string error_;
  std::string in_;
  bool eof_ = false;
};

}  // namespace proxy::integration::tls
