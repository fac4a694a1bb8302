// VerifiedChains: the client chains a TlsContext has verified, remembered by a digest of
// their DER, so that a client reconnecting with the same chain skips X509_verify_cert (two
// ECDSA verifications and the chain building, a quarter of an mTLS handshake's CPU;
// issue 12). Owned by one TlsContext, whose trust store, pins and allow-list the cached
// result stands for: a reload builds a new context and so starts empty. No libuv.
#pragma once

#include <openssl/pool.h>
#include <openssl/x509.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace proxy::tls {

// A verified client certificate, as headers and logs show it. Immutable once made; shared
// by every session of the same chain.
struct VerifiedClient {
  std::string cert_header;  // X-Forwarded-Client-Cert
  std::string subject;
  std::string sans;  // "DNS:a,URI:b"
};

// Thread-safe: the workers' handshakes share their context's cache.
class VerifiedChains {
 public:
  // Chains kept at most; a full cache starts again empty (an agent fleet has few).
  static constexpr size_t kMaxEntries = 4096;
  using Digest = std::array<uint8_t, 32>;

  // The SHA-256 of the chain as sent (each certificate's length, then its DER).
  static Digest digestOf(const STACK_OF(CRYPTO_BUFFER) * chain);
  // The client of a chain with this digest that passed every check, when `now` lies
  // within the validity of every certificate of the chain it was verified with (trust
  // anchor too); else null.
  std::shared_ptr<const VerifiedClient> find(const Digest& digest, std::time_t now) const;
  // Remembers a chain that passed every check; `built` is the verified chain, leaf to
  // trust anchor, whose validity periods bound the entry's.
  void remember(const Digest& digest, STACK_OF(X509) * built,
                std::shared_ptr<const VerifiedClient> client);
  size_t sizeForTest() const;

 private:
  struct Entry {
    int64_t not_before = 0;  // the latest notBefore of the chain, unix seconds
    int64_t not_after = 0;   // the earliest notAfter
    std::shared_ptr<const VerifiedClient> client;
  };
  struct DigestHash {
    size_t operator()(const Digest& d) const;
  };
  mutable std::mutex mutex_;
  std::unordered_map<Digest, Entry, DigestHash> entries_;
};

}  // namespace proxy::tls
