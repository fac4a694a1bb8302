#include "tests/unit/tls/tls_test_support.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "proxy/tls/ticket_keys.h"

namespace proxy::tls::testing {

namespace fs = std::filesystem;

namespace {

template <class T>
T must(Result<T> r) {
  if (!r) FAIL("cert_builder: " << r.status().message());
  return std::move(r).value();
}

Pki mintPki() {
  using certutil::CertSpec;
  using certutil::KeyType;
  Pki p;
  CertSpec root;
  root.subject = "CN=Test Root CA,O=apm-tls-proxy tests";
  root.is_ca = true;
  p.root = must(certutil::selfSigned(root, KeyType::kEcdsaP256));
  CertSpec inter;
  inter.subject = "CN=Test Intermediate CA,O=apm-tls-proxy tests";
  inter.is_ca = true;
  inter.path_len = 0;
  p.intermediate =
      must(certutil::issue(inter, KeyType::kEcdsaP256, p.root.cert.get(), p.root.key.get()));
  CertSpec server;
  server.subject = "CN=localhost";
  server.server_auth = true;
  server.dns = {"localhost"};
  server.ips = {"127.0.0.1"};
  p.server = must(certutil::issue(server, KeyType::kEcdsaP256, p.intermediate.cert.get(),
                                  p.intermediate.key.get()));
  CertSpec rogue;
  rogue.subject = "CN=Rogue CA";
  rogue.is_ca = true;
  p.rogue_root = must(certutil::selfSigned(rogue, KeyType::kEcdsaP256));
  return p;
}

}  // namespace

const Pki& pki() {
  static const Pki kPki = mintPki();
  return kPki;
}

certutil::Issued clientCert(certutil::CertSpec spec, const certutil::Issued* issuer) {
  if (issuer == nullptr) issuer = &pki().root;
  spec.client_auth = true;
  return must(
      certutil::issue(spec, certutil::KeyType::kEcdsaP256, issuer->cert.get(), issuer->key.get()));
}

ServerOptions serverOptions(const TempDir& dir) {
  ServerOptions c;
  c.certificate = dir.write("server.crt", certutil::certToPem(pki().server.cert.get()) +
                                              certutil::certToPem(pki().intermediate.cert.get()));
  c.key = dir.write("server.key", must(certutil::keyToPem(pki().server.key.get())));
  return c;
}

void trustRoot(ServerOptions& options, const TempDir& dir) {
  options.certificate_authorities.push_back(
      dir.write("ca.crt", certutil::certToPem(pki().root.cert.get())));
  options.client_authentication = ClientAuth::kRequired;
}

std::string describe(const Problem& p) { return p.key + ": " + p.message; }

std::shared_ptr<TlsContext> makeContext(const ServerOptions& options,
                                        std::shared_ptr<TicketKeys> keys) {
  auto r = TlsContext::create(options, std::move(keys));
  for (const auto& p : r.problems) UNSCOPED_INFO(describe(p));
  REQUIRE(r.problems.empty());
  REQUIRE(r.context != nullptr);
  return r.context;
}

namespace {

int newSessionCallback(SSL* ssl, SSL_SESSION* session) {
  SSL_CTX* ctx = SSL_get_SSL_CTX(ssl);
  auto* old = static_cast<SSL_SESSION*>(SSL_CTX_get_ex_data(ctx, 0));
  SSL_SESSION_free(old);
  SSL_CTX_set_ex_data(ctx, 0, session);
  return 1;  // we keep the reference
}

}  // namespace

SslCtxPtr clientCtx(const ClientOptions& o) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_method()));
  REQUIRE(ctx);
  SSL_CTX_set_min_proto_version(ctx.get(), o.min_version);
  SSL_CTX_set_max_proto_version(ctx.get(), o.max_version);
  if (!o.alpn.empty()) {
    std::string wire;
    for (const auto& p : o.alpn) {
      wire += static_cast<char>(p.size());
      wire += p;
    }
    REQUIRE(SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const uint8_t*>(wire.data()),
                                    wire.size()) == 0);
  }
  if (o.verify_server) {
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), pki().root.cert.get());
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  if (o.cert) {
    REQUIRE(SSL_CTX_use_certificate(ctx.get(), o.cert->cert.get()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey(ctx.get(), o.cert->key.get()) == 1);
    if (o.extra_chain) {
      REQUIRE(SSL_CTX_add1_chain_cert(ctx.get(), const_cast<X509*>(o.extra_chain)) == 1);
    }
  }
  if (o.cipher_list) REQUIRE(SSL_CTX_set_strict_cipher_list(ctx.get(), o.cipher_list) == 1);
  if (o.curves) REQUIRE(SSL_CTX_set1_curves_list(ctx.get(), o.curves) == 1);
  if (o.session_cache) {
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx.get(), newSessionCallback);
  }
  return ctx;
}

SSL_SESSION* takeSession(SSL_CTX* ctx) {
  auto* s = static_cast<SSL_SESSION*>(SSL_CTX_get_ex_data(ctx, 0));
  SSL_CTX_set_ex_data(ctx, 0, nullptr);
  return s;
}

bool pump(TlsSession& client, TlsSession& server, std::string* client_plain,
          std::string* server_plain) {
  std::string scratch_c, scratch_s;
  if (!client_plain) client_plain = &scratch_c;
  if (!server_plain) server_plain = &scratch_s;
  bool ok = true;
  for (int round = 0; round < 200; ++round) {
    bool progress = false;
    auto move = [&](TlsSession& from, TlsSession& to) {
      std::string_view out = from.pendingCiphertext();
      if (out.empty()) return;
      to.receiveCiphertext(out.data(), out.size());
      from.consumeCiphertext(out.size());
      progress = true;
    };
    auto read = [&](TlsSession& s, std::string& plain) {
      bool was_done = s.handshakeDone();
      size_t before = plain.size();
      auto st = s.readPlaintext(plain, 1 << 20);
      if (st == TlsSession::IoStatus::kError) ok = false;
      if (plain.size() != before || s.handshakeDone() != was_done) progress = true;
    };
    read(client, *client_plain);
    move(client, server);
    read(server, *server_plain);
    move(server, client);
    if (!progress) break;
  }
  return ok;
}

bool handshake(TlsSession& client, TlsSession& server) {
  bool ok = pump(client, server);
  return ok && client.handshakeDone() && server.handshakeDone();
}

}  // namespace proxy::tls::testing
