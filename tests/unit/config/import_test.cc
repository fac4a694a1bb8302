// apm-server.yml -> TOML (`apm-tls-proxy import`): spellings, every known key, conversions,
// what is not carried over, errors, and the fixtures in fixtures/apm-server/ loading back
// through the real configuration loader.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/config/config.h"
#include "proxy/importer/apm_server_yaml.h"
#include "proxy/importer/importer.h"

using namespace proxy::importer;
using proxy::Result;

namespace {

ImportReport imported(const std::string& yaml, const ImportOptions& options = {}) {
  Result<ImportReport> r = importApmServerYaml(yaml, options);
  INFO(yaml);
  if (!r) FAIL(r.status().message());
  UNSCOPED_INFO(r.value().toml << formatReport(r.value()));
  return r.value();
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

bool anyContains(const std::vector<std::string>& lines, const std::string& what) {
  for (const std::string& line : lines) {
    if (contains(line, what)) return true;
  }
  return false;
}

// The TOML's "key = value" lines without their "# from" comments.
std::string valuesOnly(const std::string& toml) {
  std::istringstream in(toml);
  std::string line;
  std::string out;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t comment = line.find("  # ");
    out += line.substr(0, comment) + "\n";
  }
  return out;
}

proxy::config::Config loads(const std::string& toml) {
  proxy::config::LoadResult r = proxy::config::loadString(toml, "imported.toml");
  for (const auto& p : r.problems) UNSCOPED_INFO(p.format());
  INFO(toml);
  REQUIRE(r.config);
  return *r.config;
}

std::string fixture(const std::string& name) {
  std::ifstream in("tests/unit/config/fixtures/apm-server/" + name);
  REQUIRE(in);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("Nested, dotted and mixed YAML keys import the same", "[unit][import]") {
  std::string nested = valuesOnly(imported("apm-server:\n"
                                           "  host: \"0.0.0.0:8200\"\n"
                                           "  ssl:\n"
                                           "    enabled: true\n"
                                           "    certificate: \"/c.crt\"\n"
                                           "    key: \"/c.key\"\n")
                                      .toml);
  std::string dotted = valuesOnly(imported("apm-server.host: \"0.0.0.0:8200\"\n"
                                           "apm-server.ssl.enabled: true\n"
                                           "apm-server.ssl.certificate: \"/c.crt\"\n"
                                           "apm-server.ssl.key: \"/c.key\"\n")
                                      .toml);
  std::string mixed = valuesOnly(imported("apm-server:\n"
                                          "  host: \"0.0.0.0:8200\"\n"
                                          "  ssl.enabled: true\n"
                                          "  ssl:\n"
                                          "    certificate: \"/c.crt\"\n"
                                          "apm-server.ssl.key: \"/c.key\"\n")
                                     .toml);
  CHECK(contains(nested, "[ssl]\nenabled = true\ncertificate = \"/c.crt\"\nkey = \"/c.key\"\n"));
  CHECK(contains(nested, "[server]\nhost = \"0.0.0.0:8200\"\n"));
  CHECK(nested == dotted);
  CHECK(nested == mixed);
}

TEST_CASE("Every apm-server.* key the proxy knows is carried over", "[unit][import]") {
  std::string yaml =
      "apm-server:\n"
      "  host: \"127.0.0.1:8200\"\n"
      "  max_header_size: 65536\n"
      "  idle_timeout: 1m\n"
      "  read_timeout: 30s\n"
      "  write_timeout: 20s\n"
      "  shutdown_timeout: 10s\n"
      "  max_connections: 500\n"
      "  ssl:\n"
      "    enabled: true\n"
      "    certificate: /c.crt\n"
      "    key: /c.key\n"
      "    key_passphrase_path: /run/pass\n"
      "    supported_protocols: [TLSv1.2]\n"
      "    cipher_suites: [ECDHE-ECDSA-AES-128-GCM-SHA256]\n"
      "    curve_types: [P-384]\n"
      "    certificate_authorities: [/ca.crt]\n"
      "    client_authentication: optional\n"
      "    verification_mode: strict\n"
      "    ca_sha256: [\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"]\n";
  ImportReport r = imported(yaml);
  // The table of known keys decides what is imported; this YAML must cover all of it.
  std::set<std::string> apm_keys;
  for (const auto& k : proxy::config::knownKeys()) {
    std::string apm = k.apm;
    if (apm.rfind("apm-server.", 0) == 0 && apm != "apm-server.ssl.key_passphrase") {
      apm_keys.insert(apm);
      std::string leaf = apm.substr(apm.rfind('.') + 1);
      INFO(apm);
      CHECK(contains(yaml, leaf + ":"));
      CHECK(contains(r.toml, "# " + apm + " (line "));
    }
  }
  CHECK(apm_keys.size() >= 18);
  CHECK(r.not_carried.empty());
  proxy::config::Config c = loads(r.toml);
  CHECK(c.server.host.port == 8200);
  CHECK(c.server.max_header_size == 65536);
  CHECK(c.server.idle_timeout == proxy::config::Millis{60'000});
  CHECK(c.server.max_connections == 500);
  CHECK(c.ssl.key_passphrase_path == "/run/pass");
  CHECK(c.ssl.supported_protocols == std::vector<std::string>{"TLSv1.2"});
  CHECK(c.ssl.curve_types == std::vector<std::string>{"P-384"});
  CHECK(c.ssl.client_authentication == proxy::config::ClientAuth::kOptional);
  CHECK(c.ssl.verification_mode == proxy::config::VerificationMode::kStrict);
  CHECK(c.ssl.ca_sha256.size() == 1);
  CHECK(c.upstream.url == "http://127.0.0.1:8201");
}

TEST_CASE("Values are converted the way APM Server reads them", "[unit][import]") {
  ImportReport r = imported(
      "apm-server:\n"
      "  idle_timeout: 45\n"         // a bare number of seconds
      "  read_timeout: \"1m30s\"\n"  // kept
      "  ssl.enabled: yes\n"         // YAML 1.1 boolean
      "  ssl.certificate: /c.crt\n"
      "  ssl.key: /c.key\n"
      "  ssl.certificate_authorities: /ca.crt\n"  // one value is a list of one
      "logging.level: warning\n"
      "logging.json: false\n");
  CHECK(contains(r.toml, "idle_timeout = \"45s\""));
  CHECK(contains(r.toml, "read_timeout = \"1m30s\""));
  CHECK(contains(r.toml, "enabled = true"));
  CHECK(contains(r.toml, "certificate_authorities = [\"/ca.crt\"]"));
  CHECK(contains(r.toml, "[log]\nlevel = \"warn\""));
  CHECK(contains(r.toml, "format = \"text\""));
  loads(r.toml);
}

TEST_CASE("${VAR} is kept, and any other $ stays literal", "[unit][import]") {
  ImportReport r = imported(
      "apm-server.ssl.certificate: \"${CERT_DIR:/etc/tls}/tls.crt\"\n"
      "apm-server.ssl.key: \"/k$1.key\"\n"
      "apm-server.ssl.key_passphrase: \"${PASS:?the passphrase is needed}\"\n"
      "apm-server.ssl.certificate_authorities: [\"$${literal}\"]\n");
  CHECK(contains(r.toml, "certificate = \"${CERT_DIR:/etc/tls}/tls.crt\""));
  CHECK(contains(r.toml, "key = \"/k$$1.key\""));
  CHECK(contains(r.toml, "key_passphrase = \"${PASS}\""));
  CHECK(contains(r.toml, "certificate_authorities = [\"$${literal}\"]"));
  CHECK(anyContains(r.notes, "${PASS:?the passphrase is needed} became ${PASS}"));
  setenv("PASS", "p", 1);
  proxy::config::Config c = loads(r.toml);
  unsetenv("PASS");
  CHECK(c.ssl.certificate == "/etc/tls/tls.crt");
  CHECK(c.ssl.key == "/k$1.key");
  CHECK(c.ssl.certificate_authorities == std::vector<std::string>{"${literal}"});
}

TEST_CASE("Settings that cannot be carried over are listed, never dropped", "[unit][import]") {
  ImportReport r = imported(
      "apm-server:\n"
      "  host: \"0.0.0.0:8200\"\n"
      "  max_header_size: 100\n"          // below the proxy's minimum
      "  max_connections: ${MAX_CONN}\n"  // a variable for a number
      "  ssl.enabled: true\n"
      "  ssl.certificate: /c.crt\n"
      "  ssl.key: /c.key\n"
      "  ssl.supported_protocols: [SSLv3]\n"  // refused by the proxy, as by APM Server
      "  ssl.renegotiation: never\n"          // no such server setting in the proxy
      "  rum.enabled: true\n"
      "  ssl.key_passphrase:\n"  // empty
      "output.elasticsearch.hosts: [\"es:9200\"]\n");
  CHECK(anyContains(r.not_carried, "apm-server.max_header_size (line 3): must be from 1024"));
  CHECK(anyContains(r.not_carried,
                    "apm-server.max_connections (line 4): \"${MAX_CONN}\": a "
                    "variable can only stand for a string"));
  CHECK(anyContains(r.not_carried, "apm-server.ssl.supported_protocols (line 8): [0]: SSLv3"));
  CHECK(anyContains(r.not_carried,
                    "apm-server.ssl.renegotiation (line 9): the proxy has no such TLS setting"));
  CHECK(anyContains(r.left_to_apm_server, "apm-server.rum.enabled"));
  CHECK(anyContains(r.left_to_apm_server, "output.elasticsearch.hosts"));
  CHECK(anyContains(r.notes, "apm-server.ssl.key_passphrase (line 11) is empty"));
  CHECK_FALSE(contains(r.toml, "max_header_size"));
  CHECK_FALSE(contains(r.toml, "max_connections"));
  std::string report = formatReport(r);
  CHECK(contains(report, "Not carried over"));
  CHECK(contains(report, "  apm-server.ssl.renegotiation (line 9)"));
  loads(r.toml);
}

TEST_CASE("A report item never carries a line break or escape sequence from the YAML",
          "[unit][import]") {
  // The loader's complaint quotes the value; a multi-line one (or one with ESC) must
  // stay on its item's line and never reach the terminal raw.
  ImportReport r = imported(
      "apm-server:\n"
      "  ssl.enabled: true\n"
      "  ssl.certificate: /c.crt\n"
      "  ssl.key: /c.key\n"
      "  ssl.client_authentication: \"-----BEGIN CERTIFICATE-----\\nMIIB\\e[2J\"\n");
  REQUIRE(anyContains(r.not_carried, "apm-server.ssl.client_authentication (line 5)"));
  std::string report = formatReport(r);
  CHECK(contains(report, "\\x0aMIIB\\x1b[2J"));
  std::istringstream lines(report);
  std::string line;
  while (std::getline(lines, line)) {
    INFO(line);
    for (char c : line) CHECK((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
  }
}

TEST_CASE("The report says what to change in apm-server.yml", "[unit][import]") {
  ImportReport r = imported("apm-server:\n  host: \"0.0.0.0:8200\"\n  ssl.enabled: false\n");
  REQUIRE(r.apm_changes.size() == 2);
  CHECK_THAT(r.apm_changes[0], Catch::StartsWith("apm-server.host: \"127.0.0.1:8201\""));
  CHECK(contains(r.apm_changes[0], "was \"0.0.0.0:8200\""));
  CHECK_THAT(r.apm_changes[1], Catch::StartsWith("apm-server.ssl.enabled: false"));

  ImportOptions unix_socket;
  unix_socket.upstream_url = "unix:/run/apm/apm.sock";
  ImportReport u = imported("apm-server.host: \"0.0.0.0:8200\"\n", unix_socket);
  CHECK_THAT(u.apm_changes[0], Catch::StartsWith("apm-server.host: \"unix:/run/apm/apm.sock\""));
  CHECK(contains(u.toml, "url = \"unix:/run/apm/apm.sock\""));
  CHECK(anyContains(u.notes, "no apm-server.ssl settings"));

  ImportOptions port_only;
  port_only.upstream_url = "http://localhost:9000/";
  CHECK_THAT(imported("", port_only).apm_changes[0],
             Catch::StartsWith("apm-server.host: \"localhost:9000\""));
}

TEST_CASE("An empty file imports APM Server's defaults", "[unit][import]") {
  ImportReport r = imported("");
  CHECK(contains(r.toml, "host = \"localhost:8200\""));
  CHECK(contains(r.toml, "url = \"http://127.0.0.1:8201\""));
  CHECK_FALSE(contains(r.toml, "[ssl]"));
  loads(r.toml);
}

TEST_CASE("A host the proxy cannot listen on is listed, not replaced", "[unit][import]") {
  ImportReport r = imported("apm-server.host: \"unix:/run/apm-server.sock\"\n");
  CHECK(anyContains(r.not_carried, "apm-server.host (line 1): "));
  CHECK_FALSE(contains(r.toml, "[server]"));  // the proxy's own default applies
  CHECK(contains(r.apm_changes[0], "was \"unix:/run/apm-server.sock\""));
  loads(r.toml);
}

TEST_CASE("A key set twice is noted and the last one wins", "[unit][import]") {
  ImportReport r = imported("apm-server.read_timeout: 10s\napm-server:\n  read_timeout: 20s\n");
  CHECK(contains(r.toml, "read_timeout = \"20s\""));
  CHECK(anyContains(r.notes, "apm-server.read_timeout is set on line 1 and again on line 3"));
}

TEST_CASE("Invalid YAML and a bad --upstream are errors", "[unit][import]") {
  Result<ImportReport> bad = importApmServerYaml("apm-server:\n  ssl: [\n", {});
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.status().message(), Catch::Matches("^3:\\d+: .+"));
  Result<ImportReport> list = importApmServerYaml("- a\n- b\n", {});
  REQUIRE_FALSE(list);
  CHECK_THAT(list.status().message(), Catch::Contains("not a mapping"));
  ImportOptions https;
  https.upstream_url = "https://127.0.0.1:8201";
  Result<ImportReport> tls = importApmServerYaml("", https);
  REQUIRE_FALSE(tls);
  CHECK_THAT(tls.status().message(), Catch::StartsWith("--upstream: TLS to the upstream"));
}

TEST_CASE("flattenYaml gives each leaf its dotted path and position", "[unit][import]") {
  Result<std::vector<YamlSetting>> r =
      flattenYaml("a:\n  b.c: 1\n  d: [x, \"y\"]\n  e: \"true\"\n  f: {}\n");
  REQUIRE(r);
  const auto& s = r.value();
  REQUIRE(s.size() == 4);
  CHECK(s[0].path == "a.b.c");
  CHECK(s[0].value.text == "1");
  CHECK(s[0].value.line == 2);
  CHECK(s[1].path == "a.d");
  CHECK(s[1].value.items == std::vector<std::string>{"x", "y"});
  CHECK(s[2].value.quoted);
  CHECK(s[3].value.kind == YamlValue::Kind::kNull);
}

TEST_CASE("Every fixture imports to TOML the loader accepts", "[unit][import]") {
  setenv("APM_KEY_PASSPHRASE", "unit-test", 1);
  setenv("APM_CERT_DIR", "/etc/apm-server/certs", 1);
  for (const char* name : {"ssl-minimal.yml", "ssl-dotted.yml", "ssl-client-auth.yml",
                           "ssl-protocols-ciphers.yml", "server-settings.yml"}) {
    INFO(name);
    ImportReport r = imported(fixture(name));
    proxy::config::Config c = loads(r.toml);
    CHECK(c.ssl.enabled);
    CHECK(c.ssl.certificate.rfind("/etc/apm-server/certs/", 0) == 0);
  }
  unsetenv("APM_KEY_PASSPHRASE");
  unsetenv("APM_CERT_DIR");
  ImportReport all = imported(fixture("server-settings.yml"));
  CHECK(anyContains(all.not_carried, "apm-server.ssl.renegotiation"));
  CHECK(anyContains(all.left_to_apm_server, "apm-server.auth.secret_token"));
  CHECK(contains(all.toml, "shutdown_timeout = \"30s\""));
  CHECK(contains(all.toml, "host = \"${APM_HOST:0.0.0.0:8200}\""));
  ImportReport mtls = imported(fixture("ssl-client-auth.yml"));
  CHECK(contains(mtls.toml, "client_authentication = \"required\""));
}
