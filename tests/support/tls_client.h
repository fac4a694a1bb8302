// The one BoringSSL client of the tests: TLS to 127.0.0.1 over a non-blocking socket,
// every operation bounded by a deadline, responses read through Http1Reader. Options
// cover what the test families vary: versions, cipher suites, curves, ALPN, SNI, server
// verification (IP or DNS name), a client certificate and chain, session resumption. It
// reports what was negotiated and which alert ended a handshake. No Catch2: errors are
// values (error(), alert()), so load threads and apm-bench-client use it too; test code
// uses CheckedTlsClient (tls_client_checked.h), whose setup failures fail the test.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/deadline.h"
#include "tests/support/http1_reader.h"

namespace proxy::testsupport {

using SessionPtr = std::shared_ptr<SSL_SESSION>;

struct TlsClientOptions {
  uint16_t min_version = TLS1_2_VERSION;  // 0: the library's default
  uint16_t max_version = TLS1_3_VERSION;  // 0: the library's default
  std::string ciphers;    // TLS <= 1.2 suites, BoringSSL names (strict); empty = defaults
  std::string curves;     // "X25519", "P-384:P-256", ...; empty = defaults
  std::string trust_pem;  // roots to verify the server with; empty = no verification
  std::string verify_ip = "127.0.0.1";        // IP SAN the server must carry (with trust_pem)
  std::string verify_host;                    // DNS name the server must carry (with trust_pem)
  std::string sni = "localhost";              // empty = no SNI
  std::string cert_pem;                       // client certificate (and chain), PEM
  std::string key_pem;                        // its key, PEM
  std::vector<std::string> alpn{"http/1.1"};  // empty = no ALPN extension
  SessionPtr session;                         // offered for resumption
  bool close_notify = true;  // the destructor sends close_notify after a clean session
  Millis timeout{5000};      // default bound of each operation
};

// Client settings (an SSL_CTX) built from options; may be shared by clients on several
// threads. `session` is per connection and ignored here.
class TlsClientContext {
 public:
  explicit TlsClientContext(const TlsClientOptions& options = {});
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  SSL_CTX* get() const { return ctx_; }
  const TlsClientOptions& options() const { return options_; }
  // The first option that could not be applied, with BoringSSL's reason ("" when all were).
  const std::string& error() const { return error_; }

 private:
  bool check(bool ok, const std::string& what);
  void addVerification();
  void addClientCertificate();

  TlsClientOptions options_;
  SSL_CTX* ctx_ = nullptr;
  std::string error_;
};

// One TLS connection to 127.0.0.1:port. Owned by the test (or a load thread).
class TlsClient {
 public:
  // Uses the shared `ctx` (which must outlive the client); connects in connect().
  TlsClient(uint16_t port, const TlsClientContext& ctx);
  // A client of its own: the TCP connection is made at once (error() says when it could
  // not be), the handshake in handshake().
  TlsClient(uint16_t port, TlsClientOptions options);
  // A TCP connection made elsewhere (to any loopback address), for the constructor below.
  struct AdoptFd {
    int fd;
  };
  // Adopts `connected.fd` (made non-blocking; closed by the destructor) with the shared
  // `ctx`; the handshake in connect().
  TlsClient(AdoptFd connected, const TlsClientContext& ctx);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // Connects (unless connected) and runs the handshake; false with error() set.
  bool connect(Millis timeout = Millis{5000});
  // connect() within options.timeout; on failure error() and alert() say why.
  bool handshake();
  // Sends `bytes`; false on failure or when `timeout` (0: options.timeout) passed.
  bool send(std::string_view bytes, Millis timeout = Millis{0});
  // Reads one HTTP/1.1 response (not for HEAD). `timeout` bounds the whole read; 0 waits
  // up to options.timeout for each next piece. status 0 with error() when none arrived.
  Response readResponse(Millis timeout = Millis{0});
  // Feeds what arrives to `reader` until its response is complete (true) or the peer
  // closed, the bytes are no response, or time ran out (false; `timeout` as above).
  bool readInto(Http1Reader& reader, Millis timeout = Millis{0});
  // send() and readResponse() with one `timeout`.
  Response request(std::string_view bytes, Millis timeout = Millis{10000});
  // handshake() + send(request) + readResponse(); status 0 when anything failed.
  Response exchange(const std::string& request);
  // True when the peer closes (close_notify, FIN or reset) within `timeout`.
  bool waitClosed(Millis timeout);
  // True when the server neither sends anything nor closes for `duration` (post-handshake
  // messages such as TLS 1.3 tickets do not count).
  bool staysOpen(Millis duration);

  // Negotiated parameters (after a successful handshake).
  uint16_t version() const;
  std::string versionName() const;  // "TLSv1.3"
  std::string cipher() const;       // standard name, e.g. "TLS_AES_128_GCM_SHA256"
  std::string alpn() const;
  std::string curve() const;
  std::string peerSubjectCn() const;
  std::string peerSerialHex() const;
  size_t peerChainLength() const;  // certificates the server sent (leaf first)
  long verifyResult() const;
  bool sessionReused() const;
  // The newest resumable session received from the server (tickets arrive after the
  // TLS 1.3 handshake, so read a response first); null when none.
  SessionPtr session() const { return session_; }
  // True once the server's close_notify alert has been read.
  bool receivedCloseNotify() const;
  uint16_t localPort() const;
  // Wire size (head and body, as framed) of the response readResponse() returned last.
  size_t lastResponseBytes() const { return last_response_bytes_; }

  // The fatal alert received from the server, or -1.
  int alert() const { return alert_; }
  std::string alertName() const;
  // A description of the first failure ("" when none).
  const std::string& error() const { return error_; }

 private:
  friend class TlsClientContext;  // installs onNewSession
  enum class Io { kOk, kWantRead, kWantWrite, kClosed, kError };
  static int onNewSession(SSL* ssl, SSL_SESSION* session);
  // Classifies the result `ret` of an SSL call; records why on kClosed and kError.
  Io step(int ret, const char* what);
  void recordError(const std::string& what, const std::string& detail);
  bool waitFor(Io io, Clock::time_point deadline, const char* what);
  bool readMore(Clock::time_point deadline);
  bool openSocket(Millis timeout);
  bool startTls();

  uint16_t port_;
  std::unique_ptr<TlsClientContext> own_ctx_;
  const TlsClientContext& ctx_;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string in_;
  bool closed_ = false;
  SessionPtr session_;
  size_t last_response_bytes_ = 0;
  int alert_ = -1;
  std::string error_;
};

}  // namespace proxy::testsupport
