// The one certificate-minting helper of the tests, on top of proxy_certutil: CAs, leaves
// and client certificates minted at test time (nothing that can expire is committed),
// PEM in and out, and the digests tests compare against. Fails the test through Catch2
// when minting fails (test thread only).
#pragma once

#include <openssl/base.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "proxy/certutil/cert_builder.h"
#include "tests/support/pem.h"
#include "tests/support/temp_dir.h"

namespace proxy::testsupport {

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

// A self-signed certificate for `spec`.
Minted mintSelfSigned(const CertSpec& spec, KeyType key_type = KeyType::kEcdsaP256);
// A self-signed CA called `cn`.
Minted mintCa(const std::string& cn, KeyType key_type = KeyType::kEcdsaP256);
// A certificate issued by `issuer`.
Minted mintIssued(const CertSpec& spec, const Minted& issuer,
                  KeyType key_type = KeyType::kEcdsaP256);
// A client certificate (clientAuth EKU) for `subject` ("CN=...").
CertSpec clientSpec(const std::string& subject);
// A server certificate (serverAuth EKU) for DNS:localhost and IP:127.0.0.1.
CertSpec serverSpec(const std::string& subject = "CN=localhost");

// Writes `minted` as NAME.crt / NAME.key into `dir`; returns {cert path, key path}.
std::pair<std::string, std::string> writePair(const TempDir& dir, const std::string& name,
                                              const Minted& minted);

// The server side of a test PKI, written into a TempDir: a root CA, an intermediate CA,
// and a server leaf for DNS:localhost and IP:127.0.0.1 issued by the intermediate.
// server.crt holds leaf + intermediate (the chain the proxy serves), root.crt the root.
struct ServerPki {
  explicit ServerPki(const TempDir& dir, KeyType leaf_key = KeyType::kEcdsaP256,
                     const CertSpec& leaf_spec = serverSpec());
  static CertSpec defaultLeafSpec() { return serverSpec(); }
  Minted root;
  Minted intermediate;
  Minted leaf;
  std::string root_path;   // root.crt
  std::string chain_path;  // server.crt: leaf then intermediate
  std::string key_path;    // server.key (unencrypted PKCS#8)
  // `certificate = "..."` and `key = "..."` lines for the proxy's [ssl] table.
  std::string sslLines() const;
};

// A leaf as PEM texts, with what tests compare against.
struct PemPair {
  std::string cert;  // leaf (PEM)
  std::string key;   // PKCS#8 (PEM)
  std::string serial_hex;
  std::string subject_cn;
};

// One CA and the leaves it issues (ECDSA P-256 everywhere: fast to mint), as PEM.
class Pki {
 public:
  explicit Pki(const std::string& ca_cn = "ops test CA");
  const std::string& caPem() const { return ca_pem_; }
  // A server leaf for localhost / 127.0.0.1 with CN `cn`.
  PemPair server(const std::string& cn) const;
  // A client leaf "CN=cn,OU=agents" with DNS SAN `dns` and URI SAN `uri` (when not empty).
  PemPair client(const std::string& cn, const std::string& dns, const std::string& uri) const;

 private:
  PemPair issue(const CertSpec& spec) const;
  Minted ca_;
  std::string ca_pem_;
};

}  // namespace proxy::testsupport
