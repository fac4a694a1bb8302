// TlsSession: one server-side SSL connection over in-memory buffers. Ciphertext in
// from the socket, plaintext out to the parser, plaintext in from the upstream,
// ciphertext out to the socket. No libuv, no sockets: two sessions wired back to back
// are unit-tested entirely in memory. Vocabulary after Node's TLSWrap (enc/clear).
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/common/status.h"
#include "proxy/tls/verified_chains.h"

namespace proxy::tls {

class TlsContext;
struct ClientIdentity;

// Why a handshake failed, in words an operator understands (see docs/troubleshooting.md).
enum class HandshakeFailure : uint8_t {
  kNone,
  kNoClientCertificate,  // client auth required and none sent
  kUnknownCa,            // client chain does not verify against the configured CAs
  kCertificateExpired,   // client certificate expired
  kCertificateNotYetValid,
  kIdentityNotAllowed,  // verified, but not on [ssl.allowed_clients]
  kPinMismatch,         // no certificate of the chain matches ssl.ca_sha256
  kProtocolVersion,     // client offered no enabled TLS version
  kNoSharedCipher,      // no cipher suite / curve in common
  kNotTls,              // the first bytes were not a TLS record (plain HTTP?)
  kPeerAlert,           // the client aborted with an alert (e.g. it did not trust us)
  kTimeout,             // set by the connection, not by the session
  kOther,
};
const char* toString(HandshakeFailure f);  // stable snake_case, used as metric label

// Owned by one DownstreamConnection; loop thread only. Holds a reference on the
// SSL_CTX it was created from, so a certificate reload never affects it.
class TlsSession {
 public:
  // Creates a server session from the context's current SSL_CTX.
  static std::unique_ptr<TlsSession> createServer(const TlsContext& ctx);
  // A client session (tests and the quick start use it): `sni` may be empty,
  // `ctx` is a client SSL_CTX the caller made.
  static std::unique_ptr<TlsSession> createClient(SSL_CTX* ctx, const std::string& sni);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  enum class IoStatus {
    kOk,      // progress made or nothing to do; call again when more bytes arrive
    kClosed,  // the peer sent close_notify; no more plaintext will come
    kError,   // fatal: see failure() and errorMessage(); flush pendingCiphertext() (alert)
  };

  // Feeds ciphertext read from the socket. Never fails; bytes are kept until read.
  void receiveCiphertext(const char* data, size_t len);
  // Feeds ciphertext without copying it: SSL reads straight from `data`, which must stay
  // valid and unchanged until keepLentCiphertext(). Copies only when older ciphertext
  // still waits (order is kept). Issue 12: one copy less per byte on the TLS read path.
  void lendCiphertext(const char* data, size_t len);
  // Copies whatever SSL did not read of the lent bytes into the session; call before the
  // lent buffer is reused, whatever happened meanwhile (also when the connection closed).
  void keepLentCiphertext();
  // Drives the handshake and decrypts into `out` (appends at most `max` bytes).
  IoStatus readPlaintext(std::string& out, size_t max);
  // The same into out[0, cap): `*produced` is set to the bytes written (also on errors).
  IoStatus readPlaintext(char* out, size_t cap, size_t* produced);
  // Encrypts `len` bytes; ciphertext accumulates in pendingCiphertext(). Only valid
  // once handshakeDone(). `now_ms`: the loop's time, for the record sizes below.
  IoStatus writePlaintext(const char* data, size_t len, uint64_t now_ms);

  // Dynamic record sizing (issue 12 item 3). At the start of a connection and after it
  // wrote nothing for kRecordIdleMs, the first kWarmupBytes leave in records that fit
  // one TCP segment: a client decrypts the start of a response as soon as its first
  // packet arrives, instead of waiting for a whole 16 KiB record to cross a cold
  // congestion window. Later bytes go in full 16 KiB records, the fewest cipher calls
  // and record headers per byte. kSmallRecord plus a record's overhead (22 bytes in TLS
  // 1.3, 29 with TLS 1.2's AES-GCM) fits the smallest common segment (IPv6 with TCP
  // timestamps: 1428 bytes).
  static constexpr size_t kSmallRecord = 1300;
  static constexpr uint32_t kWarmupBytes = 1024 * 1024;
  static constexpr uint32_t kRecordIdleMs = 1000;
  // Queues a close_notify alert.
  void shutdown();

  // Ciphertext waiting for the socket (handshake messages, records, alerts).
  std::string_view pendingCiphertext() const;
  // Drops the first `n` bytes of pendingCiphertext() once written to the socket.
  void consumeCiphertext(size_t n);
  // Releases buffer memory when nothing is pending (call when the connection is idle).
  void releaseBuffers();
  // True while received ciphertext or decrypted plaintext waits inside the session.
  bool hasBufferedInput() const {
    return in_off_ < in_.size() || !lent_.empty() || SSL_pending(ssl_) > 0;
  }

  bool handshakeDone() const { return handshake_done_; }
  HandshakeFailure failure() const { return failure_; }
  const std::string& errorMessage() const;

  // Facts about the established session (valid after handshakeDone()).
  const char* protocolName() const;  // "TLSv1.3"
  const char* cipherName() const;    // "TLS_AES_128_GCM_SHA256"
  std::string_view sni() const;      // empty when the client sent none
  bool sessionReused() const;
  // The protocol ALPN selected ("h2", "http/1.1"), or "" when none was.
  std::string_view alpnProtocol() const;
  // The verified client identity, for X-Forwarded-Client-Cert and the access log.
  // Empty when the client presented no certificate.
  const std::string& clientCertHeader() const;
  const std::string& clientSubject() const;
  const std::string& clientSans() const;  // "DNS:a,URI:b"
  SSL* sslForTest() { return ssl_; }

  // BoringSSL's custom-verify callback, installed on every server SSL_CTX by TlsContext:
  // checks the client chain against the CAs, then ssl.ca_sha256, then
  // [ssl.allowed_clients], and records why it refused so failure() can say so.
  static enum ssl_verify_result_t verifyClientCallback(SSL* ssl, uint8_t* out_alert);

 private:
  explicit TlsSession(SSL* ssl);
  // The session an SSL belongs to, for BoringSSL's callbacks: found through the SSL's
  // own BIO, so no connection carries an ex_data table for it (issue 12: memory per idle
  // connection). Null for an SSL that is not a TlsSession's.
  static TlsSession* fromSsl(const SSL* ssl);
  // Records the failure behind `ssl_error` (SSL_get_error's value, read by the caller
  // right after the SSL call) and drains the error queue into errorMessage().
  IoStatus fail(int ssl_error);
  // Finishes a completed handshake; false (with failure() set and an alert queued) when a
  // resumed session's client chain has expired since it was established.
  bool onHandshakeDone();
  bool resumedChainStillValid();
  // The verified client's identity text (X-Forwarded-Client-Cert, subject, SANs).
  static std::shared_ptr<const VerifiedClient> describeClient(const X509* leaf,
                                                              const ClientIdentity& id);

  SSL* ssl_ = nullptr;
  // Keeps the context (its SSL_CTX, pins and allow-list) alive for this session's
  // handshake callbacks even after a reload replaced it. Null for client sessions.
  std::shared_ptr<const TlsContext> context_;
  // Why verifyClientCallback refused the client (kNone when it did not).
  HandshakeFailure verify_failure_ = HandshakeFailure::kNone;
  std::string in_;  // ciphertext received, not yet read by SSL (in_off_ consumed)
  size_t in_off_ = 0;
  std::string_view lent_;  // lendCiphertext()'s bytes not yet read by SSL (in_ is empty)
  std::string out_;        // ciphertext produced, not yet consumed (out_off_ consumed)
  size_t out_off_ = 0;
  bool handshake_done_ = false;
  HandshakeFailure failure_ = HandshakeFailure::kNone;
  uint32_t warm_bytes_ = 0;     // bytes sent in small records since the last idle time
  uint32_t last_write_ms_ = 0;  // low 32 bits of the loop time of the last write
  // Text only some sessions need lives behind pointers, so that an idle TLS connection
  // does not carry six empty strings (issue 12: memory per idle connection).
  struct Errors {
    std::string verify_detail;  // why verifyClientCallback refused
    std::string message;        // errorMessage()
  };
  Errors& errors();
  std::unique_ptr<Errors> errors_;
  // Shared with the context's VerifiedChains and every session of the same chain.
  std::shared_ptr<const VerifiedClient> client_;

  friend struct BioAccess;
};

}  // namespace proxy::tls
