#include "proxy/tls/tls_context.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <ctime>
#include <fstream>
#include <string>

#include "proxy/tls/tls_session.h"
#include "tests/unit/tls/tls_test_support.h"

namespace proxy::tls {
namespace {

using certutil::CertSpec;
using certutil::KeyType;

template <class T>
T must(Result<T> r) {
  if (!r) FAIL(r.status().message());
  return std::move(r).value();
}

// Serves `issued` (cert + key in the PEM form `key_pem`) and checks a client connects.
void expectServes(const ServerOptions& c) {
  auto ctx = testing::makeContext(c);
  testing::ClientOptions o;
  o.verify_server = false;
  auto cctx = testing::clientCtx(o);
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  auto server = TlsSession::createServer(*ctx);
  REQUIRE(testing::handshake(*client, *server));
}

std::string problemsText(const TlsContext::CreateResult& r) {
  std::string s;
  for (const auto& p : r.problems) s += testing::describe(p) + "\n";
  return s;
}

TEST_CASE("Every key format APM Server accepts loads, RSA and ECDSA", "[unit][tls]") {
  static const certutil::Issued kRsa = [] {
    CertSpec spec;
    spec.subject = "CN=rsa.localhost";
    spec.dns = {"localhost"};
    return must(certutil::selfSigned(spec, KeyType::kRsa2048));
  }();
  static const certutil::Issued kEc = [] {
    CertSpec spec;
    spec.subject = "CN=ec.localhost";
    return must(certutil::selfSigned(spec, KeyType::kEcdsaP384));
  }();
  const certutil::Issued& issued = GENERATE(0, 1) == 0 ? kRsa : kEc;
  testing::TempDir dir;
  ServerOptions c;
  c.certificate = dir.write("c.pem", certutil::certToPem(issued.cert.get()));
  std::string key_pem;
  SECTION("PKCS#1 / SEC1") {
    key_pem = must(certutil::keyToTraditionalPem(issued.key.get()));
    CHECK((key_pem.find("RSA PRIVATE KEY") != std::string::npos ||
           key_pem.find("EC PRIVATE KEY") != std::string::npos));
  }
  SECTION("PKCS#8") { key_pem = must(certutil::keyToPem(issued.key.get())); }
  SECTION("encrypted PKCS#8") {
    key_pem = must(certutil::keyToPem(issued.key.get(), "s3cret"));
    CHECK(key_pem.find("ENCRYPTED PRIVATE KEY") != std::string::npos);
    c.key_passphrase = "s3cret";
  }
  SECTION("legacy encrypted PEM, passphrase from a file with a trailing newline") {
    key_pem = must(certutil::keyToTraditionalPem(issued.key.get(), "s3cret"));
    CHECK(key_pem.find("Proc-Type: 4,ENCRYPTED") != std::string::npos);
    c.key_passphrase_path = dir.write("pass.txt", "s3cret\n");
  }
  SECTION("inline PEM, indented as in a TOML multi-line string") {
    std::string pem = must(certutil::keyToPem(issued.key.get()));
    std::string indented;
    for (size_t i = 0; i < pem.size(); ++i) {
      if (i == 0 || pem[i - 1] == '\n') indented += "    ";
      indented += pem[i];
    }
    c.key = "\n" + indented;
  }
  if (c.key.empty()) c.key = dir.write("k.pem", key_pem);
  expectServes(c);
}

TEST_CASE("Key problems are start-up errors naming the key and the file", "[unit][tls]") {
  testing::TempDir dir;
  ServerOptions c = testing::serverOptions(dir);
  const EVP_PKEY* key = testing::pki().server.key.get();
  std::string expected;
  SECTION("wrong passphrase") {
    c.key = dir.write("enc.key", must(certutil::keyToPem(key, "right")));
    c.key_passphrase = "wrong";
    expected = "ssl.key: cannot decrypt the private key in " + c.key + ": wrong passphrase";
  }
  SECTION("wrong passphrase, legacy encryption") {
    c.key = dir.write("enc.key", must(certutil::keyToTraditionalPem(key, "right")));
    c.key_passphrase = "wrong";
    expected = "ssl.key: cannot decrypt the private key in " + c.key + ": wrong passphrase";
  }
  SECTION("missing passphrase") {
    c.key = dir.write("enc.key", must(certutil::keyToPem(key, "right")));
    expected = "ssl.key: the private key in " + c.key +
               " is encrypted; set ssl.key_passphrase or ssl.key_passphrase_path";
  }
  SECTION("key of another certificate") {
    c.key = dir.write("other.key", must(certutil::keyToPem(testing::pki().root.key.get())));
    expected = "ssl.key: the private key in " + c.key +
               " does not match the certificate CN=localhost in " + c.certificate;
  }
  SECTION("unreadable file") {
    c.key = dir.path() + "/missing.key";
    expected = "ssl.key: cannot read " + c.key + ": No such file or directory";
  }
  SECTION("no key in the file") {
    c.key = dir.write("empty.key", "hello\n");
    expected = "ssl.key: no PEM private key block found in " + c.key;
  }
  SECTION("unreadable passphrase file") {
    c.key_passphrase_path = dir.path() + "/nope";
    expected = "ssl.key_passphrase_path: cannot read " + c.key_passphrase_path;
  }
  auto r = TlsContext::create(c, nullptr);
  CHECK(r.context == nullptr);
  REQUIRE(r.problems.size() == 1);
  INFO(problemsText(r));
  std::string text = testing::describe(r.problems[0]);
  CHECK(text.find(expected) == 0);
}

TEST_CASE("Certificate problems are start-up errors: an expired one is a warning", "[unit][tls]") {
  testing::TempDir dir;
  ServerOptions c = testing::serverOptions(dir);
  SECTION("no certificate in the file") {
    c.certificate = dir.write("x.crt", "not a certificate\n");
    auto r = TlsContext::create(c, nullptr);
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].key == "ssl.certificate");
    CHECK(r.problems[0].message == "no PEM CERTIFICATE block found in " + c.certificate);
  }
  SECTION("missing certificate and key") {
    c.certificate.clear();
    c.key.clear();
    auto r = TlsContext::create(c, nullptr);
    REQUIRE(r.problems.size() == 2);
    CHECK(r.problems[0].message == "TLS is enabled but no certificate is set (a file path or PEM)");
    CHECK(r.problems[1].message == "TLS is enabled but no private key is set (a file path or PEM)");
  }
  SECTION("unreadable CA file and a CA file without certificates") {
    c.certificate_authorities = {dir.path() + "/none.pem", dir.write("bad.pem", "junk")};
    c.client_authentication = ClientAuth::kRequired;
    auto r = TlsContext::create(c, nullptr);
    REQUIRE(r.problems.size() == 2);
    CHECK(r.problems[0].key == "ssl.certificate_authorities[0]");
    CHECK(r.problems[0].message.rfind("cannot read " + dir.path() + "/none.pem", 0) == 0);
    CHECK(r.problems[1].key == "ssl.certificate_authorities[1]");
    CHECK(r.problems[1].message == "no PEM CERTIFICATE block found in " + dir.path() + "/bad.pem");
  }
  SECTION("expired server certificate") {
    CertSpec spec;
    spec.subject = "CN=old";
    spec.not_before_offset = -20 * 86400;
    spec.not_after_offset = -86400;
    auto old = must(certutil::selfSigned(spec, KeyType::kEcdsaP256));
    c.certificate = dir.write("old.crt", certutil::certToPem(old.cert.get()));
    c.key = dir.write("old.key", must(certutil::keyToPem(old.key.get())));
    auto r = TlsContext::create(c, nullptr);
    CHECK(r.problems.empty());
    REQUIRE(r.context != nullptr);
    REQUIRE(r.warnings.size() == 1);
    CHECK(r.warnings[0].warning);
    CHECK(r.warnings[0].key == "ssl.certificate");
    CHECK(r.warnings[0].message.find("the server certificate CN=old in " + c.certificate +
                                     " expired on 20") == 0);
    auto all = TlsContext::validate(c);
    REQUIRE(all.size() == 1);
    CHECK(all[0].warning);
  }
  SECTION("every problem at once") {
    c.certificate = dir.path() + "/nope.crt";
    c.cipher_suites = {"RSA-RC4-128-SHA"};
    c.curve_types = {"X25519MLKEM768"};
    c.ca_sha256 = {"not base64!"};
    c.client_authentication = ClientAuth::kOptional;
    auto all = TlsContext::validate(c);
    std::vector<std::string> keys;
    for (const auto& p : all) {
      if (!p.warning) keys.push_back(p.key);
    }
    CHECK(keys == std::vector<std::string>{"ssl.cipher_suites[0]", "ssl.curve_types[0]",
                                           "ssl.certificate", "ssl.ca_sha256[0]"});
  }
}

TEST_CASE("The context records its files, certificates and a summary", "[unit][tls]") {
  testing::TempDir dir;
  ServerOptions c = testing::serverOptions(dir);
  testing::trustRoot(c, dir);
  c.cipher_suites = {"ECDHE-ECDSA-AES-128-GCM-SHA256"};
  c.curve_types = {"X25519", "P-256"};
  c.key_passphrase_path.clear();
  auto ctx = testing::makeContext(c);
  CHECK(ctx->files() ==
        std::vector<std::string>{c.certificate, c.key, c.certificate_authorities[0]});
  const CertificateInfo& server = ctx->serverCertificate();
  CHECK(server.subject == "CN=localhost");
  CHECK(server.sans == "DNS:localhost, IP:127.0.0.1");
  CHECK(server.source == c.certificate);
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  CHECK(server.not_before < now);
  CHECK(server.not_after > now + 1000 * 86400);
  REQUIRE(ctx->certificateAuthorities().size() == 1);
  CHECK(ctx->certificateAuthorities()[0].subject == "CN=Test Root CA,O=apm-tls-proxy tests");
  CHECK(ctx->clientAuth() == ClientAuth::kRequired);
  std::string s = ctx->summary();
  INFO(s);
  CHECK(s.find("TLS TLSv1.2..TLSv1.3") == 0);
  CHECK(s.find("TLS 1.2 ciphers: ECDHE-ECDSA-AES128-GCM-SHA256") != std::string::npos);
  CHECK(s.find("TLS 1.3 ciphers (fixed)") != std::string::npos);
  CHECK(s.find("curves: X25519:P-256") != std::string::npos);
  CHECK(s.find("client authentication: required against CAs [CN=Test Root CA,O=apm-tls-proxy "
               "tests (until ") != std::string::npos);
  CHECK(s.find("server certificate CN=localhost (DNS:localhost, IP:127.0.0.1) valid ") !=
        std::string::npos);
  CHECK(s.find("session tickets: on") != std::string::npos);

  // With TLS 1.3 alone the TLS 1.2 suites are never used: the summary leaves them out.
  c.supported_protocols = {"TLSv1.3"};
  std::string only13 = testing::makeContext(c)->summary();
  INFO(only13);
  CHECK(only13.find("TLS TLSv1.3; ALPN") == 0);
  CHECK(only13.find("TLS 1.2 ciphers") == std::string::npos);
  CHECK(only13.find("TLS 1.3 ciphers (fixed)") != std::string::npos);
}

TEST_CASE("APM's rule: CAs without client_authentication mean required", "[unit][tls]") {
  ServerOptions ssl;
  CHECK(effectiveClientAuth(ssl) == ClientAuth::kNone);
  ssl.certificate_authorities = {"ca.pem"};
  CHECK(effectiveClientAuth(ssl) == ClientAuth::kRequired);
  ssl.client_authentication_explicit = true;
  CHECK(effectiveClientAuth(ssl) == ClientAuth::kNone);
  ssl.client_authentication = ClientAuth::kOptional;
  CHECK(effectiveClientAuth(ssl) == ClientAuth::kOptional);
}

TEST_CASE("A private key file every user can read loads with a warning", "[unit][tls]") {
  testing::TempDir dir;
  ServerOptions c = testing::serverOptions(dir);
  {
    auto r = TlsContext::create(c, nullptr);
    REQUIRE(r.context != nullptr);
    CHECK(r.warnings.empty());  // 0600, as the test support writes it
  }
  REQUIRE(::chmod(c.key.c_str(), 0644) == 0);
  auto r = TlsContext::create(c, nullptr);
  REQUIRE(r.context != nullptr);
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].key == "ssl.key");
  CHECK(r.warnings[0].message.find("readable by every user (mode 0644)") != std::string::npos);
}

TEST_CASE("Client authentication without CAs uses the system roots, with a warning",
          "[unit][tls]") {
  if (!std::ifstream("/etc/ssl/certs/ca-certificates.crt")) {
    WARN("no system trust store on this machine; skipped");
    return;
  }
  testing::TempDir dir;
  ServerOptions c = testing::serverOptions(dir);
  c.client_authentication = ClientAuth::kOptional;
  c.client_authentication_explicit = true;
  auto r = TlsContext::create(c, nullptr);
  REQUIRE(r.context != nullptr);
  CHECK(r.context->usesSystemRoots());
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].key == "ssl.client_authentication");
  CHECK(r.warnings[0].message.find("system trust store") != std::string::npos);
  // Our test CA is not a public root: an optional client with a test cert is refused.
  certutil::CertSpec spec;
  spec.subject = "CN=agent";
  auto cert = testing::clientCert(spec);
  testing::ClientOptions o;
  o.cert = &cert;
  auto cctx = testing::clientCtx(o);
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  auto server = TlsSession::createServer(*r.context);
  CHECK_FALSE(testing::handshake(*client, *server));
  CHECK(server->failure() == HandshakeFailure::kUnknownCa);
}

TEST_CASE("A session keeps its context alive after the context is dropped", "[unit][tls]") {
  testing::TempDir dir;
  ServerOptions c = testing::serverOptions(dir);
  testing::trustRoot(c, dir);
  auto ctx = testing::makeContext(c);
  auto server = TlsSession::createServer(*ctx);
  ctx.reset();  // a reload swapped it out mid-handshake
  certutil::CertSpec spec;
  spec.subject = "CN=agent";
  auto cert = testing::clientCert(spec);
  testing::ClientOptions o;
  o.cert = &cert;
  auto cctx = testing::clientCtx(o);
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  REQUIRE(testing::handshake(*client, *server));
  CHECK(server->clientSubject() == "CN=agent");
}

}  // namespace
}  // namespace proxy::tls
