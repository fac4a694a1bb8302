// Certificates from certutil must work for what they are for: a real TLS handshake with
// BoringSSL on both ends, wired together in memory (no sockets).
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/certutil/cert_builder.h"
#include "proxy/certutil/certutil_command.h"
#include "tests/unit/certutil/certutil_test_support.h"

namespace {

using proxy::certutil::CertSpec;
using proxy::certutil::Issued;
using proxy::certutil::KeyType;
using proxy::certutil::testing::TempDir;

struct Outcome {
  bool client_ok = false;
  bool server_ok = false;
  long client_verify = X509_V_OK;  // the client's view of the server certificate
  long server_verify = X509_V_OK;  // the server's view of the client certificate
};

struct Endpoint {
  X509* cert = nullptr;
  EVP_PKEY* key = nullptr;
  std::vector<X509*> chain;  // intermediates to send after the leaf
};

bssl::UniquePtr<SSL_CTX> makeCtx(const Endpoint& self, X509* trusted) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  REQUIRE(ctx);
  if (self.cert != nullptr) {
    REQUIRE(SSL_CTX_use_certificate(ctx.get(), self.cert));
    REQUIRE(SSL_CTX_use_PrivateKey(ctx.get(), self.key));
    for (X509* c : self.chain) REQUIRE(SSL_CTX_add1_chain_cert(ctx.get(), c));
  }
  if (trusted != nullptr) {
    REQUIRE(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), trusted));
  }
  return ctx;
}

// Runs a handshake between a client trusting `client_trusts` (checking `host` as a DNS
// name or IP address) and a server presenting `server`; when `server_trusts` is set the
// server requires a client certificate (`client`) that chains to it.
Outcome handshake(const Endpoint& server, X509* client_trusts, const std::string& host,
                  const Endpoint& client = {}, X509* server_trusts = nullptr) {
  bssl::UniquePtr<SSL_CTX> sctx = makeCtx(server, server_trusts);
  bssl::UniquePtr<SSL_CTX> cctx = makeCtx(client, client_trusts);
  SSL_CTX_set_verify(cctx.get(), SSL_VERIFY_PEER, nullptr);
  if (server_trusts != nullptr) {
    SSL_CTX_set_verify(sctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  bssl::UniquePtr<SSL> s(SSL_new(sctx.get()));
  bssl::UniquePtr<SSL> c(SSL_new(cctx.get()));
  REQUIRE((s && c));
  X509_VERIFY_PARAM* param = SSL_get0_param(c.get());
  if (!X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())) {  // not an address: a name
    ERR_clear_error();
    REQUIRE(X509_VERIFY_PARAM_set1_host(param, host.data(), host.size()));
  }
  BIO* bc = nullptr;
  BIO* bs = nullptr;
  REQUIRE(BIO_new_bio_pair(&bc, 0, &bs, 0));
  SSL_set_bio(c.get(), bc, bc);
  SSL_set_bio(s.get(), bs, bs);
  SSL_set_connect_state(c.get());
  SSL_set_accept_state(s.get());

  Outcome o;
  bool client_failed = false;
  bool server_failed = false;
  for (int round = 0; round < 20; ++round) {
    for (SSL* ssl : {c.get(), s.get()}) {
      bool is_client = ssl == c.get();
      bool& ok = is_client ? o.client_ok : o.server_ok;
      bool& failed = is_client ? client_failed : server_failed;
      if (ok || failed) continue;
      ERR_clear_error();
      int r = SSL_do_handshake(ssl);
      if (r == 1) {
        ok = true;
      } else if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ) {
        failed = true;
      }
    }
  }
  o.client_verify = SSL_get_verify_result(c.get());
  o.server_verify = SSL_get_verify_result(s.get());
  return o;
}

Issued mint(const CertSpec& spec, KeyType type, const Issued* issuer) {
  auto r = issuer == nullptr
               ? proxy::certutil::selfSigned(spec, type)
               : proxy::certutil::issue(spec, type, issuer->cert.get(), issuer->key.get());
  INFO(proxy::certutil::testing::why(r));
  REQUIRE(r.isOk());
  return std::move(r).value();
}

CertSpec caSpec(const std::string& cn, int path_len = -1) {
  CertSpec spec;
  spec.subject = "CN=" + cn;
  spec.is_ca = true;
  spec.path_len = path_len;
  return spec;
}

CertSpec leafSpec(bool server) {
  CertSpec spec;
  spec.subject = server ? "CN=apm.example.com" : "CN=agent";
  spec.server_auth = server;
  spec.client_auth = !server;
  if (server) {
    spec.dns = {"apm.example.com"};
    spec.ips = {"127.0.0.1"};
  }
  return spec;
}

}  // namespace

TEST_CASE("A client completes a handshake with a server certificate from cert_builder",
          "[unit][certutil]") {
  KeyType type = GENERATE(KeyType::kEcdsaP256, KeyType::kEcdsaP384, KeyType::kRsa2048);
  Issued root = mint(caSpec("Root"), KeyType::kEcdsaP256, nullptr);
  Issued inter = mint(caSpec("Intermediate", 0), KeyType::kRsa2048, &root);
  Issued leaf = mint(leafSpec(true), type, &inter);
  Endpoint server{leaf.cert.get(), leaf.key.get(), {inter.cert.get()}};

  SECTION("by DNS name") {
    Outcome o = handshake(server, root.cert.get(), "apm.example.com");
    CHECK(o.client_ok);
    CHECK(o.server_ok);
    CHECK(o.client_verify == X509_V_OK);
  }
  SECTION("by IP address") {
    Outcome o = handshake(server, root.cert.get(), "127.0.0.1");
    CHECK(o.client_ok);
    CHECK(o.client_verify == X509_V_OK);
  }
  SECTION("not for another name") {
    Outcome o = handshake(server, root.cert.get(), "other.example.com");
    CHECK(!o.client_ok);
    CHECK(o.client_verify == X509_V_ERR_HOSTNAME_MISMATCH);
  }
  SECTION("not without the intermediate") {
    server.chain.clear();
    Outcome o = handshake(server, root.cert.get(), "apm.example.com");
    CHECK(!o.client_ok);
    CHECK(o.client_verify == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  }
}

TEST_CASE("Mutual TLS accepts a clientAuth certificate and refuses a rogue or server one",
          "[unit][certutil]") {
  Issued ca = mint(caSpec("CA"), KeyType::kEcdsaP256, nullptr);
  Issued rogue_ca = mint(caSpec("Rogue"), KeyType::kEcdsaP256, nullptr);
  Issued server_leaf = mint(leafSpec(true), KeyType::kEcdsaP256, &ca);
  Endpoint server{server_leaf.cert.get(), server_leaf.key.get(), {}};

  Issued good = mint(leafSpec(false), KeyType::kEcdsaP256, &ca);
  Outcome ok = handshake(server, ca.cert.get(), "apm.example.com",
                         {good.cert.get(), good.key.get(), {}}, ca.cert.get());
  CHECK(ok.server_ok);
  CHECK(ok.server_verify == X509_V_OK);

  Issued rogue = mint(leafSpec(false), KeyType::kEcdsaP256, &rogue_ca);
  Outcome bad = handshake(server, ca.cert.get(), "apm.example.com",
                          {rogue.cert.get(), rogue.key.get(), {}}, ca.cert.get());
  CHECK(!bad.server_ok);
  CHECK(bad.server_verify == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);

  // A serverAuth-only certificate is not a client certificate.
  Issued wrong_eku = mint(leafSpec(true), KeyType::kEcdsaP256, &ca);
  Outcome eku = handshake(server, ca.cert.get(), "apm.example.com",
                          {wrong_eku.cert.get(), wrong_eku.key.get(), {}}, ca.cert.get());
  CHECK(!eku.server_ok);
  CHECK(eku.server_verify == X509_V_ERR_INVALID_PURPOSE);
}

TEST_CASE("Files written by the certutil command load into SSL_CTX and complete mTLS",
          "[unit][certutil]") {
  TempDir dir;
  auto run = [](std::vector<std::string> args) {
    args.insert(args.begin(), "certutil");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::ostringstream out;
    std::ostringstream err;
    int rc = proxy::certutil::runCertutil(static_cast<int>(args.size()), argv.data(), out, err);
    INFO(err.str());
    REQUIRE(rc == 0);
  };
  std::string ca_crt = dir.file("ca.crt");
  std::string ca_key = dir.file("ca.key");
  run({"ca", "--out", dir.path(), "--pass", "capass"});
  run({"cert", "--ca-cert", ca_crt, "--ca-key", ca_key, "--ca-pass", "capass", "--name",
       "localhost", "--out", dir.path(), "--key-type", "rsa"});
  run({"cert", "--client", "--ca-cert", ca_crt, "--ca-key", ca_key, "--ca-pass", "capass", "--name",
       "agent", "--out", dir.path(), "--pass", "agentpass"});

  auto loadCert = [](const std::string& path) {
    auto c = proxy::certutil::certFromPem(proxy::certutil::testing::readFile(path));
    REQUIRE(c.isOk());
    return std::move(c).value();
  };
  auto loadKey = [](const std::string& path, const std::string& pass) {
    auto k = proxy::certutil::keyFromPem(proxy::certutil::testing::readFile(path), pass);
    INFO(proxy::certutil::testing::why(k));
    REQUIRE(k.isOk());
    return std::move(k).value();
  };
  auto ca = loadCert(ca_crt);
  auto server_cert = loadCert(dir.file("localhost/localhost.crt"));
  auto server_key = loadKey(dir.file("localhost/localhost.key"), "");
  auto client_cert = loadCert(dir.file("agent/agent.crt"));
  auto client_key = loadKey(dir.file("agent/agent.key"), "agentpass");

  for (const char* host : {"localhost", "127.0.0.1", "::1"}) {
    CAPTURE(host);
    Outcome o = handshake({server_cert.get(), server_key.get(), {}}, ca.get(), host,
                          {client_cert.get(), client_key.get(), {}}, ca.get());
    CHECK(o.client_ok);
    CHECK(o.server_ok);
    CHECK(o.client_verify == X509_V_OK);
    CHECK(o.server_verify == X509_V_OK);
  }
}
