// Session resumption with tickets: TLS 1.2 and 1.3, across contexts that share one
// TicketKeys (two workers, or a reload), across key rotation, and switched off.
#include <catch2/catch.hpp>
#include <chrono>

#include "proxy/tls/ticket_keys.h"
#include "proxy/tls/tls_context.h"
#include "proxy/tls/tls_session.h"
#include "tests/unit/tls/tls_test_support.h"

namespace proxy::tls {
namespace {

using std::chrono::milliseconds;

struct Resumer {
  testing::ClientOptions options;
  testing::SslCtxPtr cctx;
  SSL_SESSION* session = nullptr;

  explicit Resumer(uint16_t version, const certutil::Issued* cert = nullptr) {
    options.min_version = options.max_version = version;
    options.session_cache = true;
    options.cert = cert;
    cctx = testing::clientCtx(options);
  }
  ~Resumer() { SSL_SESSION_free(session); }

  // One full connection to `ctx`; returns the server session (for its facts).
  std::unique_ptr<TlsSession> connect(const TlsContext& ctx) {
    auto client = TlsSession::createClient(cctx.get(), "localhost");
    if (session) SSL_set_session(client->sslForTest(), session);
    auto server = TlsSession::createServer(ctx);
    REQUIRE(testing::handshake(*client, *server));
    // Let the client read the TLS 1.3 NewSessionTicket that follows the handshake.
    REQUIRE(client->writePlaintext("x", 1, 0) == TlsSession::IoStatus::kOk);
    REQUIRE(testing::pump(*client, *server));
    if (SSL_SESSION* fresh = testing::takeSession(cctx.get())) {
      SSL_SESSION_free(session);
      session = fresh;
    }
    return server;
  }
};

TEST_CASE("Session tickets resume TLS 1.2 and 1.3 sessions", "[unit][tls]") {
  auto version = GENERATE(as<uint16_t>{}, TLS1_2_VERSION, TLS1_3_VERSION);
  testing::TempDir dir;
  auto keys = TicketKeys::create(milliseconds(3'600'000));
  auto ctx = testing::makeContext(testing::serverOptions(dir), keys);
  Resumer r(version);
  CHECK_FALSE(r.connect(*ctx)->sessionReused());
  REQUIRE(r.session != nullptr);
  CHECK(r.connect(*ctx)->sessionReused());
  SECTION("a second context sharing the keys (another worker, or after a reload)") {
    auto other = testing::makeContext(testing::serverOptions(dir), keys);
    CHECK(r.connect(*other)->sessionReused());
  }
  SECTION("a context with its own keys cannot open the ticket") {
    auto other = testing::makeContext(testing::serverOptions(dir), TicketKeys::create({}));
    CHECK_FALSE(r.connect(*other)->sessionReused());
  }
  SECTION("after one rotation the previous key still opens the ticket") {
    keys->advanceClockForTest(milliseconds(3'600'000));
    CHECK(r.connect(*ctx)->sessionReused());
    CHECK(keys->generationForTest() == 2);
  }
  SECTION("after two rotations the ticket is no longer accepted") {
    keys->advanceClockForTest(milliseconds(2 * 3'600'000 + 1));
    CHECK_FALSE(r.connect(*ctx)->sessionReused());
  }
}

TEST_CASE("session_tickets = false turns resumption off", "[unit][tls]") {
  auto version = GENERATE(as<uint16_t>{}, TLS1_2_VERSION, TLS1_3_VERSION);
  testing::TempDir dir;
  ServerOptions c = testing::serverOptions(dir);
  c.session_tickets = false;
  auto ctx = testing::makeContext(c);
  Resumer r(version);
  CHECK_FALSE(r.connect(*ctx)->sessionReused());
  CHECK_FALSE(r.connect(*ctx)->sessionReused());
  CHECK(ctx->summary().find("session tickets: off (no resumption)") != std::string::npos);
}

TEST_CASE("A resumed mTLS session still knows the client, and the policy guards resumption",
          "[unit][tls]") {
  auto version = GENERATE(as<uint16_t>{}, TLS1_2_VERSION, TLS1_3_VERSION);
  testing::TempDir dir;
  auto keys = TicketKeys::create(milliseconds(3'600'000));
  ServerOptions c = testing::serverOptions(dir);
  testing::trustRoot(c, dir);
  auto ctx = testing::makeContext(c, keys);
  certutil::CertSpec spec;
  spec.subject = "CN=agent";
  spec.dns = {"agent.example.com"};
  auto cert = testing::clientCert(spec);
  Resumer r(version, &cert);
  CHECK_FALSE(r.connect(*ctx)->sessionReused());
  auto resumed = r.connect(*ctx);
  CHECK(resumed->sessionReused());
  CHECK(resumed->clientSubject() == "CN=agent");
  CHECK(resumed->clientSans() == "DNS:agent.example.com");
  SECTION("a reload that changes the allow-list does not honour old tickets") {
    c.allowed_clients.common_names = {"someone-else"};
    auto stricter = testing::makeContext(c, keys);
    auto client = TlsSession::createClient(r.cctx.get(), "localhost");
    SSL_set_session(client->sslForTest(), r.session);
    auto server = TlsSession::createServer(*stricter);
    CHECK_FALSE(testing::handshake(*client, *server));
    CHECK(server->failure() == HandshakeFailure::kIdentityNotAllowed);
    CHECK_FALSE(server->sessionReused());
  }
}

}  // namespace
}  // namespace proxy::tls
