// Headers the proxy adds for TLS, as the upstream (apm-intake-demo --record) receives them:
// X-Forwarded-Client-Cert in Envoy's format when forward_client_cert is on (also on a
// resumed session and on every request of a keep-alive connection), a client-sent one
// always removed, and X-Forwarded-Proto: https.
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"
#include "tests/integration/tls_support.h"

namespace proxy::integration::tls {
namespace {

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

const char kSpoofed[] =
    "X-Forwarded-Client-Cert: Hash=0000;Subject=\"CN=admin\"\r\n"
    "x-forwarded-client-cert: URI=spiffe://cluster.local/ns/kube-system/sa/admin\r\n";

struct MtlsSetup {
  explicit MtlsSetup(bool forward, const char* mode = "required")
      : clients_ca(mintCa("Clients CA")),
        agent(mintIssued(agentSpec(), clients_ca)),
        stack(options(forward, mode)) {}

  static CertSpec agentSpec() {
    CertSpec spec = clientSpec("CN=apm-agent,OU=observability");
    spec.uris = {"spiffe://cluster.local/ns/prod/sa/apm-agent"};
    spec.dns = {"agent.example.com"};
    return spec;
  }
  TlsStackOptions options(bool forward, const char* mode) {
    TlsStackOptions o;
    o.ssl = "client_authentication = \"" + std::string(mode) + "\"\ncertificate_authorities = [" +
            quoted(keys.write("ca.crt", clients_ca.certPem())) +
            "]\nforward_client_cert = " + (forward ? "true" : "false") + "\n";
    return o;
  }
  ClientOptions withCertificate() const {
    ClientOptions o = stack.clientOptions();
    o.cert_pem = agent.certPem();
    o.key_pem = agent.keyPem();
    return o;
  }

  TempDir keys;
  Minted clients_ca;
  Minted agent;
  TlsStack stack;
};

TEST_CASE("forward_client_cert sends the verified identity upstream and drops a spoofed one",
          "[integration][tls]") {
  MtlsSetup setup(true);
  TlsClient client(setup.stack.port(), setup.withCertificate());
  Response r = client.exchange(httpRequest("GET", "/", kSpoofed));
  INFO(client.error());
  REQUIRE(r.status == 200);

  Record rec = setup.stack.demo.waitForRecords(1).at(0);
  CHECK(countHeader(rec.headers, "X-Forwarded-Client-Cert") == 1);
  std::string xfcc = rec.header("X-Forwarded-Client-Cert").value_or("");
  INFO("X-Forwarded-Client-Cert: " << xfcc);
  CHECK(xfcc == "Hash=" + setup.agent.derSha256Hex() +
                    ";Subject=\"CN=apm-agent,OU=observability\""
                    ";URI=spiffe://cluster.local/ns/prod/sa/apm-agent;DNS=agent.example.com");
  CHECK_FALSE(contains(xfcc, "CN=admin"));
  CHECK_FALSE(contains(xfcc, "kube-system"));
  CHECK(rec.header("X-Forwarded-Proto") == std::optional<std::string>("https"));
}

TEST_CASE(
    "X-Forwarded-Client-Cert is on every request of a keep-alive connection and after "
    "resumption",
    "[integration][tls]") {
  MtlsSetup setup(true);
  SessionPtr session;
  {
    TlsClient client(setup.stack.port(), setup.withCertificate());
    INFO(client.error());
    REQUIRE(client.exchange(httpRequest("GET", "/")).status == 200);
    REQUIRE(client.send(httpRequest("GET", "/", kSpoofed)));
    CHECK(client.readResponse().status == 200);
    session = client.session();
  }
  REQUIRE(session != nullptr);
  ClientOptions resume = setup.withCertificate();
  resume.session = session;
  TlsClient resumed(setup.stack.port(), resume);
  INFO(resumed.error());
  REQUIRE(resumed.exchange(httpRequest("GET", "/", kSpoofed)).status == 200);
  CHECK(resumed.sessionReused());

  auto records = setup.stack.demo.waitForRecords(3);
  REQUIRE(records.size() == 3);
  std::string first = records[0].header("X-Forwarded-Client-Cert").value_or("");
  CHECK(!first.empty());
  for (const Record& rec : records) {
    INFO("request " << rec.seq << " on demo connection " << rec.conn);
    CHECK(countHeader(rec.headers, "X-Forwarded-Client-Cert") == 1);
    CHECK(rec.header("X-Forwarded-Client-Cert") == std::optional<std::string>(first));
  }
}

TEST_CASE("A client-sent X-Forwarded-Client-Cert is removed when forwarding is off",
          "[integration][tls]") {
  MtlsSetup setup(false);
  TlsClient client(setup.stack.port(), setup.withCertificate());
  INFO(client.error());
  REQUIRE(client.exchange(httpRequest("GET", "/", kSpoofed)).status == 200);
  Record rec = setup.stack.demo.waitForRecords(1).at(0);
  CHECK(countHeader(rec.headers, "X-Forwarded-Client-Cert") == 0);
  CHECK(rec.header("X-Forwarded-Proto") == std::optional<std::string>("https"));
}

TEST_CASE(
    "With forwarding on and no client certificate, no X-Forwarded-Client-Cert reaches "
    "upstream",
    "[integration][tls]") {
  MtlsSetup setup(true, "optional");
  TlsClient client(setup.stack.port(), setup.stack.clientOptions());
  INFO(client.error());
  REQUIRE(client.exchange(httpRequest("GET", "/", kSpoofed)).status == 200);
  Record rec = setup.stack.demo.waitForRecords(1).at(0);
  CHECK(countHeader(rec.headers, "X-Forwarded-Client-Cert") == 0);
}

TEST_CASE("Requests over TLS carry X-Forwarded-Proto: https, replacing a client's value",
          "[integration][tls]") {
  TlsStack stack;
  TlsClient client(stack.port(), stack.clientOptions());
  INFO(client.error());
  REQUIRE(
      client
          .exchange(httpRequest("GET", "/", "X-Forwarded-Proto: http\r\n" + std::string(kSpoofed)))
          .status == 200);
  Record rec = stack.demo.waitForRecords(1).at(0);
  CHECK(countHeader(rec.headers, "X-Forwarded-Client-Cert") == 0);
  CHECK(countHeader(rec.headers, "X-Forwarded-Proto") == 1);
  CHECK(rec.header("X-Forwarded-Proto") == std::optional<std::string>("https"));
}

}  // namespace
}  // namespace proxy::integration::tls
