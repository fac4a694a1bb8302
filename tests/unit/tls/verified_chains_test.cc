// VerifiedChains: a client chain verified once is accepted again without
// X509_verify_cert only while every certificate of it is within its validity, only by
// the context that verified it, and never for a chain that failed a check.
#include "proxy/tls/verified_chains.h"

#include <openssl/pool.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <ctime>
#include <string>

#include "proxy/tls/tls_context.h"
#include "proxy/tls/tls_session.h"
#include "tests/unit/tls/tls_test_support.h"

namespace proxy::tls {
namespace {

using certutil::CertSpec;
using testing::ClientOptions;

// `cert`'s DER as a one-certificate chain, as SSL_get0_peer_certificates returns it.
struct BufferChain {
  STACK_OF(CRYPTO_BUFFER) * stack = sk_CRYPTO_BUFFER_new_null();
  explicit BufferChain(X509* cert) {
    uint8_t* der = nullptr;
    int len = i2d_X509(cert, &der);
    REQUIRE(len > 0);
    sk_CRYPTO_BUFFER_push(stack, CRYPTO_BUFFER_new(der, static_cast<size_t>(len), nullptr));
    OPENSSL_free(der);
  }
  ~BufferChain() { sk_CRYPTO_BUFFER_pop_free(stack, CRYPTO_BUFFER_free); }
};

TEST_CASE("A remembered chain is valid only within every certificate's dates", "[unit][tls]") {
  CertSpec spec;
  spec.subject = "CN=agent";
  spec.client_auth = true;
  spec.not_before_offset = -100;
  spec.not_after_offset = 1000;
  certutil::Issued leaf = testing::clientCert(spec);
  BufferChain chain(leaf.cert.get());
  VerifiedChains cache;
  VerifiedChains::Digest d = VerifiedChains::digestOf(chain.stack);
  std::time_t now = std::time(nullptr);
  CHECK(cache.find(d, now) == nullptr);

  STACK_OF(X509)* built = sk_X509_new_null();
  sk_X509_push(built, leaf.cert.get());
  sk_X509_push(built, testing::pki().root.cert.get());
  auto client = std::make_shared<VerifiedClient>();
  client->subject = "CN=agent";
  cache.remember(d, built, client);
  sk_X509_free(built);  // the certificates belong to `leaf` and pki()

  CHECK(cache.find(d, now) == client);
  CHECK(cache.find(d, now + 2000) == nullptr);  // the leaf expired
  CHECK(cache.find(d, now - 1000) == nullptr);  // the leaf not yet valid
  certutil::Issued other = testing::clientCert(spec);
  CHECK(cache.find(VerifiedChains::digestOf(BufferChain(other.cert.get()).stack), now) == nullptr);
}

struct MtlsServer {
  testing::TempDir dir;
  ServerOptions options = testing::serverOptions(dir);
  std::shared_ptr<TlsContext> ctx;
  MtlsServer() {
    testing::trustRoot(options, dir);
    ctx = testing::makeContext(options);
  }
  // One full handshake with `cert`; the server's session.
  std::unique_ptr<TlsSession> session(const certutil::Issued& cert) {
    ClientOptions o;
    o.cert = &cert;
    auto cctx = testing::clientCtx(o);
    auto client = TlsSession::createClient(cctx.get(), "localhost");
    auto server = TlsSession::createServer(*ctx);
    testing::handshake(*client, *server);
    return server;
  }
  // The same: the server session's failure and client subject.
  std::pair<HandshakeFailure, std::string> connect(const certutil::Issued& cert) {
    auto server = session(cert);
    return {server->failure(), server->clientSubject()};
  }
};

TEST_CASE("A client reconnecting with a verified chain is accepted with its identity",
          "[unit][tls]") {
  MtlsServer s;
  CertSpec spec;
  spec.subject = "CN=agent-1";
  certutil::Issued good = testing::clientCert(spec);
  CHECK(s.connect(good) == std::make_pair(HandshakeFailure::kNone, std::string("CN=agent-1")));
  CHECK(s.ctx->verifiedChains().sizeForTest() == 1);
  CHECK(s.connect(good) == std::make_pair(HandshakeFailure::kNone, std::string("CN=agent-1")));
  CHECK(s.ctx->verifiedChains().sizeForTest() == 1);

  SECTION("sessions of the same chain share one copy of its identity text") {
    auto a = s.session(good);
    auto b = s.session(good);
    CHECK(a->clientCertHeader() == b->clientCertHeader());
    CHECK_FALSE(a->clientCertHeader().empty());
    CHECK(&a->clientCertHeader() == &b->clientCertHeader());
  }
  SECTION("a refused chain is never remembered, and stays refused") {
    spec.subject = "CN=agent-1";  // the same name, from an untrusted CA
    certutil::Issued rogue = testing::clientCert(spec, &testing::pki().rogue_root);
    CHECK(s.connect(rogue).first == HandshakeFailure::kUnknownCa);
    CHECK(s.connect(rogue).first == HandshakeFailure::kUnknownCa);
    CHECK(s.ctx->verifiedChains().sizeForTest() == 1);
  }
  SECTION("a reload (a new context) verifies again, against its own CAs") {
    MtlsServer other;  // trusts the same root, but has not seen the chain
    CHECK(other.ctx->verifiedChains().sizeForTest() == 0);
    CHECK(other.connect(good).first == HandshakeFailure::kNone);
    CHECK(other.ctx->verifiedChains().sizeForTest() == 1);
  }
}

}  // namespace
}  // namespace proxy::tls
