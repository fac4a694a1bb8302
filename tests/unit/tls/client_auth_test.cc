// Every client_authentication mode against every kind of client certificate, asserting
// the HandshakeFailure the server reports and the identity it extracts.
#include <openssl/digest.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <string>

#include "proxy/tls/tls_context.h"
#include "proxy/tls/tls_session.h"
#include "tests/unit/tls/tls_test_support.h"

namespace proxy::tls {
namespace {

using certutil::CertSpec;
using testing::clientCtx;
using testing::ClientOptions;
using testing::handshake;

enum class Client { kNone, kGood, kRogue, kExpired, kNotYetValid, kRefused, kPinMismatch };

const char* name(Client c) {
  switch (c) {
    case Client::kNone:
      return "no certificate";
    case Client::kGood:
      return "good";
    case Client::kRogue:
      return "rogue CA";
    case Client::kExpired:
      return "expired";
    case Client::kNotYetValid:
      return "not yet valid";
    case Client::kRefused:
      return "refused identity";
    case Client::kPinMismatch:
      return "pin mismatch";
  }
  return "";
}

// The base64 SHA-256 of `cert`'s SubjectPublicKeyInfo, as ssl.ca_sha256 takes it.
std::string spkiPin(const X509* cert) {
  uint8_t* der = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  uint8_t digest[32];
  SHA256(der, static_cast<size_t>(len), digest);
  OPENSSL_free(der);
  uint8_t b64[64];
  size_t n = EVP_EncodeBlock(b64, digest, sizeof digest);
  return std::string(reinterpret_cast<char*>(b64), n);
}

TEST_CASE("Every client_authentication mode against every kind of client", "[unit][tls]") {
  auto mode = GENERATE(ClientAuth::kNone, ClientAuth::kOptional, ClientAuth::kRequired);
  auto version = GENERATE(as<uint16_t>{}, TLS1_2_VERSION, TLS1_3_VERSION);
  auto kind = GENERATE(Client::kNone, Client::kGood, Client::kRogue, Client::kExpired,
                       Client::kNotYetValid, Client::kRefused, Client::kPinMismatch);
  INFO("mode " << toString(mode) << ", client " << name(kind) << ", TLS 0x" << std::hex << version);

  testing::TempDir dir;
  ServerOptions c = testing::serverOptions(dir);
  testing::trustRoot(c, dir);
  c.client_authentication = mode;
  c.client_authentication_explicit = true;
  if (kind == Client::kRefused) c.allowed_clients.common_names = {"allowed-agent"};
  if (kind == Client::kPinMismatch) {
    c.ca_sha256 = {spkiPin(testing::pki().rogue_root.cert.get())};
  }
  auto ctx = testing::makeContext(c);

  CertSpec spec;
  spec.subject = "CN=agent";
  certutil::Issued cert;
  const certutil::Issued* issuer = nullptr;
  HandshakeFailure expected = HandshakeFailure::kNone;
  switch (kind) {
    case Client::kNone:
      if (mode == ClientAuth::kRequired) expected = HandshakeFailure::kNoClientCertificate;
      break;
    case Client::kGood:
      break;
    case Client::kRogue:
      issuer = &testing::pki().rogue_root;
      expected = HandshakeFailure::kUnknownCa;
      break;
    case Client::kExpired:
      spec.not_before_offset = -10 * 86400;
      spec.not_after_offset = -86400;
      expected = HandshakeFailure::kCertificateExpired;
      break;
    case Client::kNotYetValid:
      spec.not_before_offset = 86400;
      expected = HandshakeFailure::kCertificateNotYetValid;
      break;
    case Client::kRefused:
      spec.subject = "CN=other-agent";
      expected = HandshakeFailure::kIdentityNotAllowed;
      break;
    case Client::kPinMismatch:
      expected = HandshakeFailure::kPinMismatch;
      break;
  }
  // With "none" no certificate is requested, so nothing the client holds matters.
  if (mode == ClientAuth::kNone) expected = HandshakeFailure::kNone;
  ClientOptions o;
  o.min_version = o.max_version = version;
  if (kind != Client::kNone) {
    cert = testing::clientCert(spec, issuer);
    o.cert = &cert;
  }
  auto cctx = clientCtx(o);
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  auto server = TlsSession::createServer(*ctx);
  bool ok = handshake(*client, *server);
  INFO(server->errorMessage());
  CHECK(server->failure() == expected);
  CHECK(ok == (expected == HandshakeFailure::kNone));
  bool presented = ok && kind != Client::kNone && mode != ClientAuth::kNone;
  CHECK(server->clientSubject() == (presented ? "CN=agent" : ""));
  CHECK(server->clientCertHeader().empty() == !presented);
  if (!ok) {
    // The client learns it too, from the alert (TLS 1.3 clients after their Finished).
    CHECK(client->failure() != HandshakeFailure::kNone);
  }
}

TEST_CASE("Refusals carry a sentence and the matching TLS alert", "[unit][tls]") {
  testing::TempDir dir;
  ServerOptions c = testing::serverOptions(dir);
  testing::trustRoot(c, dir);
  CertSpec spec;
  spec.subject = "CN=agent,OU=team";
  std::string expected_message;
  const char* expected_alert = nullptr;
  std::string detail;  // must appear in the server's message
  SECTION("expired") {
    spec.not_before_offset = -10 * 86400;
    spec.not_after_offset = -86400;
    expected_message = "TLS handshake failed: client certificate ";
    expected_alert = "certificate expired";
    detail = " expired (notAfter 20";
  }
  SECTION("identity") {
    c.allowed_clients.uris = {"spiffe://cluster.local/ns/*/sa/apm-agent"};
    spec.uris = {"spiffe://cluster.local/ns/prod/sa/other"};
    expected_message = "TLS handshake failed: client ";
    expected_alert = "access denied";
    detail = "(URI:spiffe://cluster.local/ns/prod/sa/other) is not in ssl.allowed_clients";
  }
  SECTION("unknown CA") {
    expected_message = "TLS handshake failed: client certificate ";
    expected_alert = "unknown CA";
    detail = "is not issued by a trusted CA (issuer /CN=Rogue CA)";
  }
  SECTION("no certificate") {
    expected_message =
        "TLS handshake failed: the client sent no certificate, but client_authentication is "
        "\"required\"";
  }
  auto ctx = testing::makeContext(c);
  certutil::Issued cert;
  ClientOptions o;
  o.max_version = TLS1_2_VERSION;  // the client sees the alert during its handshake
  if (expected_alert != nullptr) {
    bool rogue = std::string(expected_alert) == "unknown CA";
    cert = testing::clientCert(spec, rogue ? &testing::pki().rogue_root : nullptr);
    o.cert = &cert;
  }
  auto cctx = clientCtx(o);
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  auto server = TlsSession::createServer(*ctx);
  REQUIRE_FALSE(handshake(*client, *server));
  const std::string& msg = server->errorMessage();
  INFO(msg);
  CHECK(msg.rfind(expected_message, 0) == 0);
  if (expected_alert) {
    CHECK(client->failure() == HandshakeFailure::kPeerAlert);
    CHECK(client->errorMessage().find(std::string("\"") + expected_alert + "\"") !=
          std::string::npos);
  }
  CHECK(msg.find(detail) != std::string::npos);
}

TEST_CASE("ca_sha256 passes when any certificate of the verified chain matches", "[unit][tls]") {
  testing::TempDir dir;
  ServerOptions c = testing::serverOptions(dir);
  testing::trustRoot(c, dir);
  CertSpec spec;
  spec.subject = "CN=agent";
  auto cert = testing::clientCert(spec);
  SECTION("the root's key") {
    c.ca_sha256 = {spkiPin(testing::pki().rogue_root.cert.get()),
                   spkiPin(testing::pki().root.cert.get())};
  }
  SECTION("the leaf's key") { c.ca_sha256 = {spkiPin(cert.cert.get())}; }
  auto ctx = testing::makeContext(c);
  ClientOptions o;
  o.cert = &cert;
  auto cctx = clientCtx(o);
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  auto server = TlsSession::createServer(*ctx);
  REQUIRE(handshake(*client, *server));
  CHECK(server->clientSubject() == "CN=agent");
}

TEST_CASE("A client chain through an intermediate verifies: identity is extracted", "[unit][tls]") {
  testing::TempDir dir;
  ServerOptions c = testing::serverOptions(dir);
  testing::trustRoot(c, dir);
  c.allowed_clients.dns_names = {"*.apm.example.com"};
  auto ctx = testing::makeContext(c);
  CertSpec spec;
  spec.subject = "CN=agent 7,OU=observability";
  spec.dns = {"agent-7.apm.example.com"};
  spec.uris = {"spiffe://cluster.local/ns/prod/sa/apm-agent"};
  spec.ips = {"10.1.2.3"};
  auto cert = testing::clientCert(spec, &testing::pki().intermediate);
  ClientOptions o;
  o.cert = &cert;
  o.extra_chain = testing::pki().intermediate.cert.get();
  auto cctx = clientCtx(o);
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  auto server = TlsSession::createServer(*ctx);
  REQUIRE(handshake(*client, *server));
  std::string subject = server->clientSubject();
  CHECK((subject == "OU=observability,CN=agent 7" || subject == "CN=agent 7,OU=observability"));
  CHECK(server->clientSans() ==
        "DNS:agent-7.apm.example.com,URI:spiffe://cluster.local/ns/prod/sa/apm-agent,"
        "IP:10.1.2.3");
  // Hash is the SHA-256 of the leaf's DER, in lower-case hex.
  uint8_t* der = nullptr;
  int len = i2d_X509(cert.cert.get(), &der);
  uint8_t digest[32];
  SHA256(der, static_cast<size_t>(len), digest);
  OPENSSL_free(der);
  std::string hex;
  for (uint8_t b : digest) {
    static const char kHex[] = "0123456789abcdef";
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  CHECK(server->clientCertHeader() ==
        "Hash=" + hex + ";Subject=\"" + subject +
            "\";URI=spiffe://cluster.local/ns/prod/sa/apm-agent;DNS=agent-7.apm.example.com");
}

TEST_CASE("A certificate without the clientAuth usage is refused", "[unit][tls]") {
  testing::TempDir dir;
  ServerOptions c = testing::serverOptions(dir);
  testing::trustRoot(c, dir);
  auto ctx = testing::makeContext(c);
  CertSpec spec;
  spec.subject = "CN=server-only";
  spec.server_auth = true;
  auto cert = certutil::issue(spec, certutil::KeyType::kEcdsaP256, testing::pki().root.cert.get(),
                              testing::pki().root.key.get());
  REQUIRE(cert);
  ClientOptions o;
  o.cert = &cert.value();
  auto cctx = clientCtx(o);
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  auto server = TlsSession::createServer(*ctx);
  CHECK_FALSE(handshake(*client, *server));
  CHECK(server->errorMessage().find("not valid for client authentication") != std::string::npos);
}

}  // namespace
}  // namespace proxy::tls
