// Client certificates against the real proxy: every client_authentication mode (none,
// optional, required, and APM's default of "required" when only CAs are given) crossed
// with every kind of client (none, good, rogue CA, expired, not yet valid, refused by the
// allow-list by CN, URI SAN or DNS SAN, pin mismatch), over TLS 1.2 and 1.3. A refusal is
// a TLS alert plus one log line and one counter under its reason; an admission is a 2xx
// from the demo upstream through the proxy.
#include <catch2/catch.hpp>
#include <iterator>
#include <optional>

#include "tests/integration/harness.h"
#include "tests/integration/tls_support.h"

namespace proxy::integration::tls {
namespace {

constexpr int64_t kDay = 86400;

// The client side of the PKI: two trusted client CAs (only the first pinned by ca_sha256),
// an intermediate under the first, and a rogue CA nobody trusts.
struct ClientPki {
  ClientPki()
      : trusted(mintCa("Clients CA")),
        second(mintCa("Second Clients CA")),
        rogue(mintCa("Rogue CA")),
        intermediate(mintIssued(intermediateSpec(), trusted)) {}
  static CertSpec intermediateSpec() {
    CertSpec spec;
    spec.subject = "CN=Clients Intermediate CA";
    spec.is_ca = true;
    spec.path_len = 0;
    return spec;
  }
  Minted trusted;
  Minted second;
  Minted rogue;
  Minted intermediate;
};

// What the proxy must do with one kind of client when it asks for a certificate.
struct Refusal {
  const char* reason;  // log reason and metric label
  int alert;           // the alert the client receives
};

struct Cell {
  const char* name;
  // The client certificate (PEM chain, key), or nullopt for no certificate.
  std::optional<std::pair<std::string, std::string>> (*mint)(const ClientPki&);
  std::optional<Refusal> refusal;  // when a certificate is requested; nullopt = admitted
};

std::pair<std::string, std::string> pemPair(const Minted& m, const std::string& chain = "") {
  return {m.certPem() + chain, m.keyPem()};
}

CertSpec withValidity(CertSpec spec, int64_t not_before, int64_t not_after) {
  spec.not_before_offset = not_before;
  spec.not_after_offset = not_after;
  return spec;
}

CertSpec withUri(CertSpec spec, const std::string& uri) {
  spec.uris = {uri};
  return spec;
}

CertSpec withDns(CertSpec spec, const std::string& dns) {
  spec.dns = {dns};
  return spec;
}

const Cell
    kCells[] =
        {
            {"no certificate",
             [](const ClientPki&) -> std::optional<std::pair<std::string, std::string>> {
               return std::nullopt;
             },
             Refusal{"no_client_certificate", 0}},  // alert depends on the version: see below
            {"good certificate (allowed CN)",
             [](const ClientPki& p) -> std::optional<std::pair<std::string, std::string>> {
               return pemPair(mintIssued(clientSpec("CN=apm-agent,OU=observability"), p.trusted));
             },
             std::nullopt},
            {"good certificate through an intermediate",
             [](const ClientPki& p) -> std::optional<std::pair<std::string, std::string>> {
               return pemPair(mintIssued(clientSpec("CN=apm-agent"), p.intermediate),
                              p.intermediate.certPem());
             },
             std::nullopt},
            {"allowed by URI SAN wildcard segment",
             [](const ClientPki& p) -> std::optional<std::pair<std::string, std::string>> {
               return pemPair(mintIssued(withUri(clientSpec("CN=workload-17"),
                                                 "spiffe://cluster.local/ns/prod/sa/apm-agent"),
                                         p.trusted));
             },
             std::nullopt},
            {"allowed by DNS SAN",
             [](const ClientPki& p) -> std::optional<std::pair<std::string, std::string>> {
               return pemPair(mintIssued(withDns(clientSpec("CN=workload-18"), "agent.example.com"),
                                         p.trusted));
             },
             std::nullopt},
            {"rogue CA",
             [](const ClientPki& p) -> std::optional<std::pair<std::string, std::string>> {
               return pemPair(mintIssued(clientSpec("CN=apm-agent"), p.rogue));
             },
             Refusal{"unknown_ca", SSL_AD_UNKNOWN_CA}},
            {"expired",
             [](const ClientPki& p) -> std::optional<std::pair<std::string, std::string>> {
               return pemPair(mintIssued(
                   withValidity(clientSpec("CN=apm-agent"), -10 * kDay, -kDay), p.trusted));
             },
             Refusal{"certificate_expired", SSL_AD_CERTIFICATE_EXPIRED}},
            {"not yet valid",
             [](const ClientPki& p) -> std::optional<std::pair<std::string, std::string>> {
               return pemPair(mintIssued(withValidity(clientSpec("CN=apm-agent"), kDay, 10 * kDay),
                                         p.trusted));
             },
             // BoringSSL sends certificate_expired for both ends of the validity period; the log
             // and the metric tell them apart.
             Refusal{"certificate_not_yet_valid", SSL_AD_CERTIFICATE_EXPIRED}},
            {"refused CN",
             [](const ClientPki& p) -> std::optional<std::pair<std::string, std::string>> {
               return pemPair(mintIssued(clientSpec("CN=intruder"), p.trusted));
             },
             Refusal{"identity_not_allowed", SSL_AD_ACCESS_DENIED}},
            {"refused URI SAN (another service account)",
             [](const ClientPki& p) -> std::optional<std::pair<std::string, std::string>> {
               return pemPair(mintIssued(
                   withUri(clientSpec("CN=workload-19"), "spiffe://cluster.local/ns/prod/sa/other"),
                   p.trusted));
             },
             Refusal{"identity_not_allowed", SSL_AD_ACCESS_DENIED}},
            {"refused URI SAN (* spans one segment only)",
             [](const ClientPki& p) -> std::optional<std::pair<std::string, std::string>> {
               return pemPair(
                   mintIssued(withUri(clientSpec("CN=workload-20"),
                                      "spiffe://cluster.local/ns/prod/extra/sa/apm-agent"),
                              p.trusted));
             },
             Refusal{"identity_not_allowed", SSL_AD_ACCESS_DENIED}},
            {"refused DNS SAN",
             [](const ClientPki& p) -> std::optional<std::pair<std::string, std::string>> {
               return pemPair(mintIssued(withDns(clientSpec("CN=workload-21"), "other.example.com"),
                                         p.trusted));
             },
             Refusal{"identity_not_allowed", SSL_AD_ACCESS_DENIED}},
            {"pin mismatch (trusted, but from the unpinned CA)",
             [](const ClientPki& p) -> std::optional<std::pair<std::string, std::string>> {
               return pemPair(mintIssued(clientSpec("CN=apm-agent"), p.second));
             },
             Refusal{"pin_mismatch", SSL_AD_BAD_CERTIFICATE}},
};

struct Mode {
  const char* name;
  const char* setting;  // the client_authentication line, "" for none written
  bool requests;        // a certificate is requested
  bool requires;        // and must be present
};

const Mode kModes[] = {
    {"none", "client_authentication = \"none\"\n", false, false},
    {"optional", "client_authentication = \"optional\"\n", true, false},
    {"required", "client_authentication = \"required\"\n", true, true},
    {"absent with CAs (APM: required)", "", true, true},
};

TEST_CASE("Every client_authentication mode admits or refuses each kind of client certificate",
          "[integration][tls]") {
  size_t mode_index = GENERATE(range<size_t>(0, std::size(kModes)));
  size_t cell_index = GENERATE(range<size_t>(0, std::size(kCells)));
  uint16_t version = GENERATE(as<uint16_t>{}, TLS1_2_VERSION, TLS1_3_VERSION);
  const Mode& mode = kModes[mode_index];
  const Cell& cell = kCells[cell_index];
  INFO("client_authentication: " << mode.name << "; client: " << cell.name << "; TLS "
                                 << (version == TLS1_3_VERSION ? "1.3" : "1.2"));

  ClientPki clients;
  TempDir keys;
  std::string ca1 = keys.write("clients-ca.crt", clients.trusted.certPem());
  std::string ca2 = keys.write("second-ca.crt", clients.second.certPem());
  TlsStackOptions options;
  options.ssl = std::string(mode.setting) + "certificate_authorities = " + quotedList({ca1, ca2}) +
                "\nca_sha256 = " + quotedList({clients.trusted.spkiSha256()}) + "\n";
  if (mode.requests) {
    options.more_tables =
        "[ssl.allowed_clients]\n"
        "common_names = [\"apm-agent\"]\n"
        "uris = [\"spiffe://cluster.local/ns/*/sa/apm-agent\"]\n"
        "dns_names = [\"agent.example.com\"]\n";
  }
  TlsStack stack(options);

  ClientOptions client_options = stack.clientOptions();
  client_options.max_version = version;
  client_options.min_version = version;
  if (auto pair = cell.mint(clients)) {
    client_options.cert_pem = pair->first;
    client_options.key_pem = pair->second;
  }
  TlsClient client(stack.port(), client_options);
  Response r = client.exchange(httpRequest("GET", "/"));

  // Without a request the client sends nothing; "optional" admits a client that sends none.
  bool sent = !client_options.cert_pem.empty();
  std::optional<Refusal> refusal;
  if (mode.requests && (sent || mode.requires)) refusal = cell.refusal;

  INFO("client error: " << client.error() << "; alert: " << client.alertName());
  if (!refusal) {
    CHECK(r.status == 200);
    CHECK(stack.demo.waitForRecords(1).size() == 1);
    return;
  }
  CHECK(r.status == 0);
  int alert = refusal->alert;
  if (alert == 0) {
    alert = version == TLS1_3_VERSION ? SSL_AD_CERTIFICATE_REQUIRED : SSL_AD_HANDSHAKE_FAILURE;
  }
  CHECK(client.alert() == alert);
  std::string line = stack.expectFailureRecorded(refusal->reason);
  CHECK(line.find("peer=127.0.0.1") != std::string::npos);
  CHECK(line.find("sni=localhost") != std::string::npos);
  CHECK(stack.demo.records().empty());
}

TEST_CASE("Optional client authentication still checks the allow-list of a client that sends one",
          "[integration][tls]") {
  ClientPki clients;
  TempDir keys;
  std::string ca = keys.write("clients-ca.crt", clients.trusted.certPem());
  TlsStackOptions options;
  options.ssl =
      "client_authentication = \"optional\"\ncertificate_authorities = " + quotedList({ca}) + "\n";
  options.more_tables = "[ssl.allowed_clients]\ncommon_names = [\"apm-agent\"]\n";
  TlsStack stack(options);

  // Several clients on one proxy: admitted, refused, admitted without a certificate.
  Minted good = mintIssued(clientSpec("CN=apm-agent"), clients.trusted);
  Minted refused = mintIssued(clientSpec("CN=someone-else"), clients.trusted);
  ClientOptions with_good = stack.clientOptions();
  with_good.cert_pem = good.certPem();
  with_good.key_pem = good.keyPem();
  ClientOptions with_refused = stack.clientOptions();
  with_refused.cert_pem = refused.certPem();
  with_refused.key_pem = refused.keyPem();
  {
    TlsClient client(stack.port(), with_good);
    INFO(client.error());
    CHECK(client.exchange(httpRequest("GET", "/")).status == 200);
  }
  {
    TlsClient client(stack.port(), with_refused);
    CHECK(client.exchange(httpRequest("GET", "/")).status == 0);
    CHECK(client.alert() == SSL_AD_ACCESS_DENIED);
  }
  {
    TlsClient client(stack.port(), stack.clientOptions());
    INFO(client.error());
    CHECK(client.exchange(httpRequest("GET", "/")).status == 200);
  }
  std::string line = stack.expectFailureRecorded("identity_not_allowed");
  CHECK(line.find("someone-else") != std::string::npos);
  CHECK(stack.demo.waitForRecords(2).size() == 2);
}

TEST_CASE("curl and openssl s_client present client certificates to a required-mode proxy",
          "[integration][tls]") {
  ClientPki clients;
  TempDir keys;
  std::string ca = keys.write("clients-ca.crt", clients.trusted.certPem());
  TlsStackOptions options;
  options.ssl = "certificate_authorities = " + quotedList({ca}) + "\n";
  TlsStack stack(options);
  auto [good_crt, good_key] =
      writePair(keys, "agent", mintIssued(clientSpec("CN=apm-agent"), clients.trusted));
  auto [rogue_crt, rogue_key] =
      writePair(keys, "rogue", mintIssued(clientSpec("CN=apm-agent"), clients.rogue));
  std::string target = "https://localhost:" + std::to_string(stack.port()) + "/";
  auto curl = [&](std::vector<std::string> extra, const std::string& name) {
    std::vector<std::string> argv{
        toolPath("curl"), "-sS",        "-o", "/dev/null", "-w",
        "%{http_code}",   "--max-time", "10", "--cacert",  stack.pki.root_path};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(target);
    return runToCompletion(argv, stack.dir, name, Millis{15000});
  };

  RunResult good = curl({"--cert", good_crt, "--key", good_key}, "curl_good");
  INFO(good.out << good.err);
  CHECK(good.exit_code == 0);
  CHECK(good.out == "200");

  RunResult none = curl({}, "curl_none");
  INFO(none.out << none.err);
  CHECK(none.exit_code != 0);
  stack.expectFailureRecorded("no_client_certificate");

  RunResult rogue = curl({"--cert", rogue_crt, "--key", rogue_key}, "curl_rogue");
  INFO(rogue.out << rogue.err);
  CHECK(rogue.exit_code != 0);
  stack.expectFailureRecorded("unknown_ca");

  RunResult s_client = runToCompletion(
      {toolPath("openssl"), "s_client", "-connect", "127.0.0.1:" + std::to_string(stack.port()),
       "-CAfile", stack.pki.root_path, "-cert", good_crt, "-key", good_key, "-verify_return_error"},
      stack.dir, "s_client", Millis{15000});
  INFO(s_client.out << s_client.err);
  CHECK(s_client.exit_code == 0);
  CHECK(s_client.out.find("Acceptable client certificate CA names") != std::string::npos);
  CHECK(s_client.out.find("CN = Clients CA") != std::string::npos);
}

}  // namespace
}  // namespace proxy::integration::tls
