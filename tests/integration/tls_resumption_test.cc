// Session resumption with tickets, observed from the client (SSL_session_reused, and
// openssl s_client's "Reused") and counted by the proxy's metric: TLS 1.2 and 1.3, with
// one worker and with two (the ticket keys are shared by every worker), and none at all
// with session_tickets = false.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/tls_support.h"

namespace proxy::integration::tls {
namespace {

// One full handshake with a request, so that TLS 1.3 tickets (sent after the handshake)
// arrive; the session to resume.
SessionPtr firstSession(const TlsStack& stack, uint16_t version) {
  ClientOptions options = stack.clientOptions();
  options.min_version = options.max_version = version;
  TlsClient client(stack.port(), options);
  Response r = client.exchange(httpRequest("GET", "/"));
  INFO(client.error());
  CHECK(r.status == 200);
  CHECK_FALSE(client.sessionReused());
  return client.session();
}

// A new connection offering `session`; whether it resumed.
bool resumes(const TlsStack& stack, uint16_t version, const SessionPtr& session) {
  ClientOptions options = stack.clientOptions();
  options.min_version = options.max_version = version;
  options.session = session;
  TlsClient client(stack.port(), options);
  Response r = client.exchange(httpRequest("GET", "/"));
  INFO(client.error());
  CHECK(r.status == 200);
  return client.sessionReused();
}

TEST_CASE("A second connection resumes the session from a ticket", "[integration][tls]") {
  uint16_t version = GENERATE(as<uint16_t>{}, TLS1_2_VERSION, TLS1_3_VERSION);
  INFO("TLS " << (version == TLS1_3_VERSION ? "1.3" : "1.2"));
  TlsStack stack;
  SessionPtr session = firstSession(stack, version);
  REQUIRE(session != nullptr);
  CHECK(resumes(stack, version, session));
  CHECK(resumes(stack, version, session));
  CHECK(sessionsResumed(stack.adminPort()) == 2);
}

TEST_CASE("openssl s_client resumes a TLS 1.2 session with -sess_out and -sess_in",
          "[integration][tls]") {
  TlsStack stack;
  std::string sess = stack.dir.file("s_client.session");
  std::vector<std::string> base{toolPath("openssl"),
                                "s_client",
                                "-connect",
                                "127.0.0.1:" + std::to_string(stack.port()),
                                "-CAfile",
                                stack.pki.root_path,
                                "-verify_return_error",
                                "-tls1_2"};
  std::vector<std::string> first = base;
  first.insert(first.end(), {"-sess_out", sess});
  RunResult r1 = runToCompletion(first, stack.dir, "s_client1", Millis{15000});
  INFO(r1.out << r1.err);
  REQUIRE(r1.exit_code == 0);
  CHECK(r1.out.find("New, TLSv1.2") != std::string::npos);
  std::vector<std::string> second = base;
  second.insert(second.end(), {"-sess_in", sess});
  RunResult r2 = runToCompletion(second, stack.dir, "s_client2", Millis{15000});
  INFO(r2.out << r2.err);
  CHECK(r2.exit_code == 0);
  CHECK(r2.out.find("Reused, TLSv1.2") != std::string::npos);
  CHECK(sessionsResumed(stack.adminPort()) == 1);
}

TEST_CASE("With two workers every connection resumes, wherever it lands", "[integration][tls]") {
  uint16_t version = GENERATE(as<uint16_t>{}, TLS1_2_VERSION, TLS1_3_VERSION);
  INFO("TLS " << (version == TLS1_3_VERSION ? "1.3" : "1.2"));
  TlsStack stack({"", "", {{"workers", "2"}}});
  SessionPtr session = firstSession(stack, version);
  REQUIRE(session != nullptr);
  constexpr int kConnections = 24;
  int resumed = 0;
  for (int i = 0; i < kConnections; ++i) resumed += resumes(stack, version, session) ? 1 : 0;
  CHECK(resumed == kConnections);
  CHECK(sessionsResumed(stack.adminPort()) == kConnections);
  CHECK(metricValue(fetchMetrics(stack.adminPort()), "apm_tls_proxy_workers") == 2);
}

TEST_CASE("A ticket does not let a client certificate that has since expired back in",
          "[integration][tls]") {
  uint16_t version = GENERATE(as<uint16_t>{}, TLS1_2_VERSION, TLS1_3_VERSION);
  INFO("TLS " << (version == TLS1_3_VERSION ? "1.3" : "1.2"));
  Minted clients_ca = mintCa("Clients CA");
  TempDir keys;
  TlsStackOptions options;
  options.ssl =
      "certificate_authorities = [" + quoted(keys.write("ca.crt", clients_ca.certPem())) + "]\n";
  TlsStack stack(options);
  // Valid for two more seconds (the client does not check its own certificate).
  CertSpec spec = clientSpec("CN=short-lived");
  spec.not_after_offset = 2;
  Minted agent = mintIssued(spec, clients_ca);
  ClientOptions client_options = stack.clientOptions();
  client_options.min_version = client_options.max_version = version;
  client_options.cert_pem = agent.certPem();
  client_options.key_pem = agent.keyPem();

  SessionPtr session;
  {
    TlsClient client(stack.port(), client_options);
    INFO(client.error());
    REQUIRE(client.exchange(httpRequest("GET", "/")).status == 200);
    session = client.session();
  }
  REQUIRE(session != nullptr);
  // Wait until the certificate's notAfter (whole seconds) has passed.
  auto expiry = std::chrono::system_clock::now() + std::chrono::seconds(3);
  while (std::chrono::system_clock::now() < expiry) {
    std::this_thread::sleep_for(Millis{50});
  }
  client_options.session = session;
  TlsClient late(stack.port(), client_options);
  Response r = late.exchange(httpRequest("GET", "/"));
  INFO(late.error() << "; status " << r.status << "; resumed " << late.sessionReused());
  // docs/tls.md: "a resumed session's chain is verified again, so an expired client
  // certificate cannot ride on an old ticket".
  CHECK(r.status == 0);
  CHECK(late.alert() == SSL_AD_CERTIFICATE_EXPIRED);
  stack.expectFailureRecorded("certificate_expired");
  CHECK(stack.demo.records().size() == 1);
}

TEST_CASE("session_tickets = false means no resumption", "[integration][tls]") {
  uint16_t version = GENERATE(as<uint16_t>{}, TLS1_2_VERSION, TLS1_3_VERSION);
  INFO("TLS " << (version == TLS1_3_VERSION ? "1.3" : "1.2"));
  TlsStack stack({"session_tickets = false\n", "", {}});
  SessionPtr session = firstSession(stack, version);
  if (session != nullptr) CHECK_FALSE(resumes(stack, version, session));
  CHECK(sessionsResumed(stack.adminPort()) == 0);
}

}  // namespace
}  // namespace proxy::integration::tls
