// Certificate and key minting with BoringSSL: CAs, server and client leaves with SANs
// and extended key usages, encrypted keys, PEM output. Used by `apm-tls-proxy
// certutil` and by the tests, which mint every certificate at test time so that
// nothing committed can expire. No libuv; never shells out to openssl.
#pragma once

#include <openssl/base.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/common/status.h"

namespace proxy::certutil {

enum class KeyType { kEcdsaP256, kEcdsaP384, kRsa2048, kRsa3072, kRsa4096 };

// Deleters so keys and certificates can live in unique_ptrs.
struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* k) const;
};
struct X509Deleter {
  void operator()(X509* x) const;
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

// What to put in a certificate. Times are offsets from now, in seconds, so tests can
// make expired (not_after_offset < 0) and not-yet-valid (not_before_offset > 0) ones.
struct CertSpec {
  // Subject as "CN=name,OU=unit,O=org" (RFC 4514-like, comma-separated, no escaping).
  std::string subject = "CN=apm-tls-proxy";
  int64_t not_before_offset = -300;           // a little in the past, for clock skew
  int64_t not_after_offset = 1095LL * 86400;  // 1095 days, as Elastic's certutil
  bool is_ca = false;                         // basicConstraints CA:TRUE, keyCertSign
  int path_len = -1;                          // CA path length; -1 = unlimited
  bool server_auth = false;                   // EKU serverAuth
  bool client_auth = false;                   // EKU clientAuth
  std::vector<std::string> dns;               // DNS SANs
  std::vector<std::string> ips;               // IP SANs (IPv4 or IPv6 text)
  std::vector<std::string> uris;              // URI SANs ("spiffe://...")
};

struct Issued {
  X509Ptr cert;
  PkeyPtr key;
};

// Generates a fresh private key.
Result<PkeyPtr> generateKey(KeyType type);
// Self-signed certificate (a root CA when spec.is_ca).
Result<Issued> selfSigned(const CertSpec& spec, KeyType key_type);
// Certificate signed by `issuer` (its cert and key). SHA-256 signature, random
// 128-bit serial, subject/authority key identifiers.
Result<Issued> issue(const CertSpec& spec, KeyType key_type, const X509* issuer_cert,
                     const EVP_PKEY* issuer_key);

// PEM encodings.
std::string certToPem(const X509* cert);
// Unencrypted PKCS#8 ("PRIVATE KEY") when passphrase is empty, else encrypted PKCS#8
// ("ENCRYPTED PRIVATE KEY", AES-256-CBC, PBKDF2).
Result<std::string> keyToPem(const EVP_PKEY* key, const std::string& passphrase = "");
// Traditional encodings for tests of every format APM Server accepts: PKCS#1
// "RSA PRIVATE KEY" / SEC1 "EC PRIVATE KEY", optionally with legacy PEM encryption
// (Proc-Type: 4,ENCRYPTED; AES-256-CBC) when passphrase is non-empty.
Result<std::string> keyToTraditionalPem(const EVP_PKEY* key, const std::string& passphrase = "");

// Reads the first PEM certificate in `pem`.
Result<X509Ptr> certFromPem(const std::string& pem);
// Reads a private key in any PEM form keyToPem/keyToTraditionalPem write (PKCS#8,
// encrypted PKCS#8, PKCS#1, SEC1, legacy-encrypted). Never prompts: an encrypted key
// without a passphrase, or with a wrong one, is an error that says so.
Result<PkeyPtr> keyFromPem(const std::string& pem, const std::string& passphrase = "");

// "ECDSA P-256", "RSA 2048", ...: a key's algorithm and size, for humans.
std::string describeKey(const EVP_PKEY* key);

// Writes `contents` to `path` with `mode`, failing (without touching it) if the path
// exists. Creates no directories.
Status writeNewFile(const std::string& path, const std::string& contents, unsigned mode);

}  // namespace proxy::certutil
