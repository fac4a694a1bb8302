#include "proxy/tls/tls_session.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "proxy/tls/tls_context.h"
#include "tests/unit/tls/tls_test_support.h"

namespace proxy::tls {
namespace {

using testing::clientCtx;
using testing::ClientOptions;
using testing::handshake;
using testing::pump;
using IoStatus = TlsSession::IoStatus;

TEST_CASE("TlsSession completes a handshake entirely in memory", "[unit][tls]") {
  testing::TempDir dir;
  auto ctx = testing::makeContext(testing::serverOptions(dir));
  auto version = GENERATE(as<uint16_t>{}, TLS1_2_VERSION, TLS1_3_VERSION);
  ClientOptions o;
  o.min_version = o.max_version = version;
  auto cctx = clientCtx(o);
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  auto server = TlsSession::createServer(*ctx);
  REQUIRE(handshake(*client, *server));
  CHECK(std::string(server->protocolName()) == (version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2"));
  CHECK(server->failure() == HandshakeFailure::kNone);
  CHECK(server->sni() == "localhost");
  CHECK_FALSE(server->sessionReused());
  CHECK(server->clientSubject().empty());
  CHECK(server->clientCertHeader().empty());
  const uint8_t* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(client->sslForTest(), &alpn, &alpn_len);
  CHECK(std::string(reinterpret_cast<const char*>(alpn), alpn_len) == "http/1.1");

  SECTION("data flows both ways and close_notify ends the stream") {
    REQUIRE(client->writePlaintext("ping", 4, 0) == IoStatus::kOk);
    std::string got_server, got_client;
    REQUIRE(pump(*client, *server, &got_client, &got_server));
    CHECK(got_server == "ping");
    std::string big(100000, 'x');
    REQUIRE(server->writePlaintext(big.data(), big.size(), 0) == IoStatus::kOk);
    REQUIRE(pump(*client, *server, &got_client, &got_server));
    CHECK(got_client == big);
    client->shutdown();
    std::string_view alert = client->pendingCiphertext();
    server->receiveCiphertext(alert.data(), alert.size());
    client->consumeCiphertext(alert.size());
    std::string more;
    CHECK(server->readPlaintext(more, 1024) == IoStatus::kClosed);
    CHECK(more.empty());
  }
}

}  // namespace
}  // namespace proxy::tls

namespace proxy::tls {
namespace {

using testing::clientCtx;
using testing::ClientOptions;
using testing::handshake;
using testing::pump;
using IoStatus = TlsSession::IoStatus;

struct ServerFixture {
  testing::TempDir dir;
  ServerOptions config = testing::serverOptions(dir);
  std::shared_ptr<TlsContext> ctx;
  std::unique_ptr<TlsSession> server;
  void start() {
    ctx = testing::makeContext(config);
    server = TlsSession::createServer(*ctx);
  }
};

TEST_CASE("Plain HTTP sent to the TLS port is recognised as not TLS", "[unit][tls]") {
  ServerFixture f;
  f.start();
  const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  f.server->receiveCiphertext(get.data(), get.size());
  std::string out;
  CHECK(f.server->readPlaintext(out, 1024) == IoStatus::kError);
  CHECK(f.server->failure() == HandshakeFailure::kNotTls);
  CHECK(f.server->errorMessage() ==
        "TLS handshake failed: the client sent a plain HTTP request to the TLS port (use "
        "https://)");
  // Further calls keep reporting the error without touching SSL again.
  CHECK(f.server->readPlaintext(out, 1024) == IoStatus::kError);
  CHECK(std::string(toString(f.server->failure())) == "not_tls");
}

TEST_CASE("Garbage instead of a ClientHello fails the handshake", "[unit][tls]") {
  ServerFixture f;
  f.start();
  std::string garbage =
      GENERATE(std::string("\x16\x03\x01\x00\x05hello", 10),
               std::string("\x00\x01\x02\x03\x04\x05\x06\x07", 8), std::string(300, '\xff'));
  f.server->receiveCiphertext(garbage.data(), garbage.size());
  std::string out;
  CHECK(f.server->readPlaintext(out, 1024) == IoStatus::kError);
  CHECK(f.server->failure() != HandshakeFailure::kNone);
  CHECK_FALSE(f.server->errorMessage().empty());
  CHECK(out.empty());
}

TEST_CASE("Records split into single bytes still complete the handshake", "[unit][tls]") {
  ServerFixture f;
  f.start();
  auto version = GENERATE(as<uint16_t>{}, TLS1_2_VERSION, TLS1_3_VERSION);
  ClientOptions o;
  o.min_version = o.max_version = version;
  auto cctx = clientCtx(o);
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  std::string plain_c, plain_s;
  // Byte by byte in both directions, reading after each byte.
  for (int round = 0; round < 50 && !(client->handshakeDone() && f.server->handshakeDone());
       ++round) {
    REQUIRE(client->readPlaintext(plain_c, 1024) == IoStatus::kOk);
    std::string c2s(client->pendingCiphertext());
    client->consumeCiphertext(c2s.size());
    for (char c : c2s) {
      f.server->receiveCiphertext(&c, 1);
      REQUIRE(f.server->readPlaintext(plain_s, 1024) == IoStatus::kOk);
    }
    std::string s2c(f.server->pendingCiphertext());
    f.server->consumeCiphertext(s2c.size());
    for (char c : s2c) {
      client->receiveCiphertext(&c, 1);
      REQUIRE(client->readPlaintext(plain_c, 1024) == IoStatus::kOk);
    }
  }
  REQUIRE(client->handshakeDone());
  REQUIRE(f.server->handshakeDone());
  std::string msg = "POST /intake/v2/events HTTP/1.1\r\n\r\n";
  REQUIRE(client->writePlaintext(msg.data(), msg.size(), 0) == IoStatus::kOk);
  std::string record(client->pendingCiphertext());
  client->consumeCiphertext(record.size());
  for (size_t i = 0; i < record.size(); ++i) {
    f.server->receiveCiphertext(&record[i], 1);
    REQUIRE(f.server->readPlaintext(plain_s, 3) == IoStatus::kOk);  // small `max` too
  }
  while (plain_s.size() < msg.size()) {
    size_t before = plain_s.size();
    REQUIRE(f.server->readPlaintext(plain_s, 3) == IoStatus::kOk);
    REQUIRE(plain_s.size() > before);
  }
  CHECK(plain_s == msg);
}

TEST_CASE("ALPN prefers h2, then http/1.1, and goes on without ALPN otherwise", "[unit][tls]") {
  ServerFixture f;
  ClientOptions o;
  std::string expected;
  SECTION("h2 and http/1.1 offered") {
    o.alpn = {"http/1.1", "h2"};
    expected = "h2";
  }
  SECTION("h2 only") {
    o.alpn = {"h2"};
    expected = "h2";
  }
  SECTION("http/1.1 only") {
    o.alpn = {"http/1.1"};
    expected = "http/1.1";
  }
  SECTION("server.http2 = false: h2 is never selected") {
    f.config.http2 = false;
    o.alpn = {"h2", "http/1.1"};
    expected = "http/1.1";
  }
  SECTION("server.http2 = false and h2 only") {
    f.config.http2 = false;
    o.alpn = {"h2"};
  }
  SECTION("an unknown protocol only") { o.alpn = {"spdy/3"}; }
  SECTION("no ALPN") { o.alpn.clear(); }
  f.start();
  auto cctx = clientCtx(o);
  auto client = TlsSession::createClient(cctx.get(), "");
  REQUIRE(handshake(*client, *f.server));
  const uint8_t* alpn = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(client->sslForTest(), &alpn, &len);
  CHECK(std::string(reinterpret_cast<const char*>(alpn), len) == expected);
  CHECK(f.server->alpnProtocol() == expected);
  CHECK(f.server->sni().empty());
}

TEST_CASE("The whole chain is served: the client sees leaf and intermediate", "[unit][tls]") {
  ServerFixture f;
  f.start();
  auto cctx = clientCtx({});  // verifies against the root only: needs the intermediate
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  REQUIRE(handshake(*client, *f.server));
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(client->sslForTest());
  REQUIRE(chain != nullptr);
  REQUIRE(sk_X509_num(chain) == 2);
  CHECK(X509_cmp(sk_X509_value(chain, 0), testing::pki().server.cert.get()) == 0);
  CHECK(X509_cmp(sk_X509_value(chain, 1), testing::pki().intermediate.cert.get()) == 0);
  CHECK(SSL_get_verify_result(client->sslForTest()) == X509_V_OK);
}

TEST_CASE("Protocol, cipher and curve restrictions refuse clients outside them", "[unit][tls]") {
  ServerFixture f;
  ClientOptions o;
  HandshakeFailure expected = HandshakeFailure::kNone;
  SECTION("TLS 1.3 only, client at most 1.2") {
    f.config.supported_protocols = {"TLSv1.3"};
    o.max_version = TLS1_2_VERSION;
    expected = HandshakeFailure::kProtocolVersion;
  }
  SECTION("TLS 1.2 only, client at least 1.3") {
    f.config.supported_protocols = {"TLSv1.2"};
    o.min_version = TLS1_3_VERSION;
    expected = HandshakeFailure::kProtocolVersion;
  }
  SECTION("no shared TLS 1.2 cipher") {
    f.config.cipher_suites = {"ECDHE-ECDSA-AES-256-GCM-SHA384"};
    o.max_version = TLS1_2_VERSION;
    o.cipher_list = "ECDHE-ECDSA-AES128-GCM-SHA256";
    expected = HandshakeFailure::kNoSharedCipher;
  }
  SECTION("no shared curve") {
    f.config.curve_types = {"P-384"};
    o.curves = "X25519";
    expected = HandshakeFailure::kNoSharedCipher;
  }
  SECTION("restricted, but the client fits") {
    f.config.supported_protocols = {"TLSv1.2"};
    f.config.cipher_suites = {"ECDHE-ECDSA-CHACHA20-POLY1305"};
    f.config.curve_types = {"P-256"};
  }
  f.start();
  auto cctx = clientCtx(o);
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  bool ok = handshake(*client, *f.server);
  CHECK(f.server->failure() == expected);
  CHECK(ok == (expected == HandshakeFailure::kNone));
  if (!ok) {
    INFO(f.server->errorMessage());
    CHECK(f.server->errorMessage().rfind("TLS handshake failed: ", 0) == 0);
  } else {
    CHECK(std::string(f.server->cipherName()) == "ECDHE-ECDSA-CHACHA20-POLY1305");
  }
}

TEST_CASE("A client that rejects our certificate shows up as a peer alert", "[unit][tls]") {
  ServerFixture f;
  f.start();
  auto cctx = testing::SslCtxPtr(SSL_CTX_new(TLS_method()));
  // Trust only the rogue root: our chain does not verify for this client.
  X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx.get()), testing::pki().rogue_root.cert.get());
  SSL_CTX_set_verify(cctx.get(), SSL_VERIFY_PEER, nullptr);
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  CHECK_FALSE(handshake(*client, *f.server));
  CHECK(f.server->failure() == HandshakeFailure::kPeerAlert);
  CHECK(f.server->errorMessage() ==
        "TLS handshake failed: the peer sent the alert \"unknown CA\" (it may not trust our "
        "certificate)");
}

TEST_CASE("Records fit one TCP segment for a MiB after an idle second, then are full",
          "[unit][tls]") {
  ServerFixture f;
  f.start();
  ClientOptions o;
  o.min_version = o.max_version = GENERATE(as<uint16_t>{}, TLS1_2_VERSION, TLS1_3_VERSION);
  auto cctx = clientCtx(o);
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  REQUIRE(handshake(*client, *f.server));
  f.server->consumeCiphertext(f.server->pendingCiphertext().size());
  // The lengths of the records the server produced since the last call (5-byte headers).
  auto records = [&] {
    std::vector<size_t> lengths;
    std::string_view wire = f.server->pendingCiphertext();
    while (wire.size() >= 5) {
      size_t len = (static_cast<uint8_t>(wire[3]) << 8) | static_cast<uint8_t>(wire[4]);
      REQUIRE(wire.size() >= 5 + len);
      lengths.push_back(len);
      wire.remove_prefix(5 + len);
    }
    CHECK(wire.empty());
    f.server->consumeCiphertext(f.server->pendingCiphertext().size());
    return lengths;
  };
  // A small record's plaintext plus the AEAD's explicit nonce (TLS 1.2), tag and inner
  // content type (TLS 1.3).
  const size_t small_max = TlsSession::kSmallRecord + 8 + 16 + 1;
  auto allSmall = [&](const std::vector<size_t>& lengths) {
    for (size_t len : lengths) {
      if (len > small_max) return false;
    }
    return !lengths.empty();
  };
  const std::string chunk(64 * 1024, 'r');
  uint64_t now = 5000;
  auto write = [&] {
    REQUIRE(f.server->writePlaintext(chunk.data(), chunk.size(), now) == IoStatus::kOk);
    return records();
  };
  std::vector<size_t> first = write();
  CHECK(allSmall(first));
  CHECK(first.size() >= chunk.size() / TlsSession::kSmallRecord);
  for (size_t sent = chunk.size(); sent < TlsSession::kWarmupBytes; sent += chunk.size()) {
    CHECK(allSmall(write()));
  }
  std::vector<size_t> warm = write();  // past the first MiB: full records
  REQUIRE_FALSE(warm.empty());
  CHECK(warm.size() <= 5);
  CHECK(*std::max_element(warm.begin(), warm.end()) >= 16 * 1024);
  now += TlsSession::kRecordIdleMs - 1;  // less than the idle time since the last write
  CHECK(write().size() <= 5);
  now += TlsSession::kRecordIdleMs;  // a whole idle second: small records again
  CHECK(allSmall(write()));
}

TEST_CASE("releaseBuffers frees the session's buffers once they are empty", "[unit][tls]") {
  ServerFixture f;
  f.start();
  auto cctx = clientCtx({});
  auto client = TlsSession::createClient(cctx.get(), "localhost");
  REQUIRE(handshake(*client, *f.server));
  std::string big(50000, 'y');
  REQUIRE(f.server->writePlaintext(big.data(), big.size(), 0) == IoStatus::kOk);
  CHECK(f.server->pendingCiphertext().size() > big.size());
  f.server->releaseBuffers();  // not empty: kept
  CHECK(f.server->pendingCiphertext().size() > big.size());
  f.server->consumeCiphertext(10);
  CHECK(f.server->pendingCiphertext().size() > big.size() - 10);
  f.server->consumeCiphertext(f.server->pendingCiphertext().size());
  CHECK(f.server->pendingCiphertext().empty());
  f.server->releaseBuffers();
  CHECK(f.server->pendingCiphertext().empty());
}

}  // namespace
}  // namespace proxy::tls
