#include "proxy/tls/tls_session.h"

#include <catch2/catch.hpp>
#include <string>

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
  auto ctx = testing::makeContext(testing::serverConfig(dir));
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
    REQUIRE(client->writePlaintext("ping", 4) == IoStatus::kOk);
    std::string got_server, got_client;
    REQUIRE(pump(*client, *server, &got_client, &got_server));
    CHECK(got_server == "ping");
    std::string big(100000, 'x');
    REQUIRE(server->writePlaintext(big.data(), big.size()) == IoStatus::kOk);
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
