#include "tests/support/pki.h"

#include <openssl/base64.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>

#include "tests/support/toml_text.h"

namespace proxy::testsupport {
namespace {

std::string sha256(const uint8_t* data, size_t len) {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(data, len, digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

Minted fromIssued(Result<certutil::Issued> issued) {
  INFO((issued ? "" : issued.status().message()));
  REQUIRE(issued.isOk());
  return Minted{std::move(issued.value().cert), std::move(issued.value().key)};
}

CertSpec intermediateSpec() {
  CertSpec spec;
  spec.subject = "CN=Test Intermediate CA";
  spec.is_ca = true;
  spec.path_len = 0;
  return spec;
}

}  // namespace

std::string Minted::certPem() const { return certutil::certToPem(cert.get()); }

std::string Minted::keyPem(const std::string& passphrase) const {
  auto pem = certutil::keyToPem(key.get(), passphrase);
  INFO((pem ? "" : pem.status().message()));
  REQUIRE(pem.isOk());
  return pem.value();
}

std::string Minted::spkiSha256() const {
  uint8_t* der = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert.get()), &der);
  REQUIRE(len > 0);
  std::string digest = sha256(der, static_cast<size_t>(len));
  OPENSSL_free(der);
  std::string b64(((digest.size() + 2) / 3) * 4 + 1, '\0');
  size_t n = EVP_EncodeBlock(reinterpret_cast<uint8_t*>(b64.data()),
                             reinterpret_cast<const uint8_t*>(digest.data()), digest.size());
  b64.resize(n);
  return b64;
}

std::string Minted::derSha256Hex() const {
  uint8_t* der = nullptr;
  int len = i2d_X509(cert.get(), &der);
  REQUIRE(len > 0);
  std::string digest = sha256(der, static_cast<size_t>(len));
  OPENSSL_free(der);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (char c : digest) {
    auto b = static_cast<uint8_t>(c);
    hex += kHex[b >> 4];
    hex += kHex[b & 0xf];
  }
  return hex;
}

Minted mintSelfSigned(const CertSpec& spec, KeyType key_type) {
  return fromIssued(certutil::selfSigned(spec, key_type));
}

Minted mintCa(const std::string& cn, KeyType key_type) {
  CertSpec spec;
  spec.subject = "CN=" + cn;
  spec.is_ca = true;
  return mintSelfSigned(spec, key_type);
}

Minted mintIssued(const CertSpec& spec, const Minted& issuer, KeyType key_type) {
  return fromIssued(certutil::issue(spec, key_type, issuer.cert.get(), issuer.key.get()));
}

CertSpec clientSpec(const std::string& subject) {
  CertSpec spec;
  spec.subject = subject;
  spec.client_auth = true;
  return spec;
}

CertSpec serverSpec(const std::string& subject) {
  CertSpec spec;
  spec.subject = subject;
  spec.server_auth = true;
  spec.dns = {"localhost"};
  spec.ips = {"127.0.0.1"};
  return spec;
}

std::pair<std::string, std::string> writePair(const TempDir& dir, const std::string& name,
                                              const Minted& minted) {
  return {dir.write(name + ".crt", minted.certPem()), dir.write(name + ".key", minted.keyPem())};
}

ServerPki::ServerPki(const TempDir& dir, KeyType leaf_key, const CertSpec& leaf_spec)
    : root(mintCa("Test Root CA")),
      intermediate(mintIssued(intermediateSpec(), root)),
      leaf(mintIssued(leaf_spec, intermediate, leaf_key)) {
  root_path = dir.write("root.crt", root.certPem());
  chain_path = dir.write("server.crt", leaf.certPem() + intermediate.certPem());
  key_path = dir.write("server.key", leaf.keyPem());
}

std::string ServerPki::sslLines() const {
  return "certificate = " + quoted(chain_path) + "\nkey = " + quoted(key_path) + "\n";
}

Pki::Pki(const std::string& ca_cn) {
  CertSpec spec;
  spec.subject = "CN=" + ca_cn + ",O=apm-tls-proxy tests";
  spec.is_ca = true;
  ca_ = mintSelfSigned(spec);
  ca_pem_ = ca_.certPem();
}

PemPair Pki::issue(const CertSpec& spec) const {
  Minted leaf = mintIssued(spec, ca_);
  return PemPair{leaf.certPem(), leaf.keyPem(), certSerialHex(leaf.cert.get()),
                 certCommonName(leaf.cert.get())};
}

PemPair Pki::server(const std::string& cn) const { return issue(serverSpec("CN=" + cn)); }

PemPair Pki::client(const std::string& cn, const std::string& dns, const std::string& uri) const {
  CertSpec spec = clientSpec("CN=" + cn + ",OU=agents");
  if (!dns.empty()) spec.dns = {dns};
  if (!uri.empty()) spec.uris = {uri};
  return issue(spec);
}

}  // namespace proxy::testsupport
