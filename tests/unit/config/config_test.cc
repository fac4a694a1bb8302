// Loading valid configurations: every key, every default, APM's client_authentication rule,
// warnings, and the toToml() round trip.
#include "proxy/config/config.h"

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

using namespace proxy::config;

namespace {

Config load(const std::string& text) {
  LoadResult r = loadString(text, "test.toml");
  for (const Problem& p : r.problems) UNSCOPED_INFO(p.format());
  REQUIRE(r.config.has_value());
  return *r.config;
}

bool hasWarning(const Config& c, const std::string& key, const std::string& fragment) {
  for (const Problem& p : c.warnings) {
    if (p.key == key && p.warning && p.message.find(fragment) != std::string::npos) return true;
  }
  return false;
}

const char* const kTlsFiles = R"(
[ssl]
certificate = "server.crt"
key = "server.key"
)";

// Every key set to something other than its default.
const char* const kEverything = R"(
[server]
host = "[::1]:9443"
max_header_size = 65536
idle_timeout = "1m"
read_timeout = "2m30s"
request_header_timeout = "5s"
write_timeout = "15s"
shutdown_timeout = "20s"
shutdown_delay = "5s"
tls_handshake_timeout = "3s"
max_connections = 1000
trusted_proxies = ["10.0.0.0/8", "::1/128", "192.168.1.7"]
workers = 4

[upstream]
url = "unix:/run/apm-server.sock"
connect_timeout = "2s"
response_timeout = "90s"
max_idle_connections = 8
idle_timeout = "20s"

[ssl]
enabled = true
certificate = "/etc/tls/server.crt"
key = "/etc/tls/server.key"
key_passphrase_path = "/etc/tls/passphrase"
supported_protocols = ["TLSv1.3"]
cipher_suites = ["ECDHE-ECDSA-AES-128-GCM-SHA256", "ECDHE-RSA-AES-256-GCM-SHA384"]
curve_types = ["X25519", "P-256"]
certificate_authorities = ["/etc/tls/ca.crt", "/etc/tls/other-ca.crt"]
client_authentication = "optional"
verification_mode = "certificate"
ca_sha256 = ["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="]
forward_client_cert = true
session_tickets = false
session_ticket_rotation = "2h"
wait_for_certificates = true
reload_interval = "0s"

[ssl.allowed_clients]
common_names = ["collector"]
organizational_units = ["observability"]
dns_names = ["*.agents.example.com", "collector.example.com"]
uris = ["spiffe://cluster.local/ns/*/sa/apm-agent"]
ip_addresses = ["10.1.2.3", "fd00::7"]

[admin]
host = "0.0.0.0:9900"
ready_requires_upstream = true

[log]
level = "debug"
format = "json"
access = "/var/log/apm-tls-proxy/access.log"
)";

// Field-by-field equality of two configs (the parts toToml() prints).
void checkSame(const Config& a, const Config& b) {
  CHECK(a.server.host == b.server.host);
  CHECK(a.server.max_header_size == b.server.max_header_size);
  CHECK(a.server.idle_timeout == b.server.idle_timeout);
  CHECK(a.server.read_timeout == b.server.read_timeout);
  CHECK(a.server.request_header_timeout == b.server.request_header_timeout);
  CHECK(a.server.write_timeout == b.server.write_timeout);
  CHECK(a.server.shutdown_timeout == b.server.shutdown_timeout);
  CHECK(a.server.shutdown_delay == b.server.shutdown_delay);
  CHECK(a.server.tls_handshake_timeout == b.server.tls_handshake_timeout);
  CHECK(a.server.max_connections == b.server.max_connections);
  REQUIRE(a.server.trusted_proxies.size() == b.server.trusted_proxies.size());
  for (size_t i = 0; i < a.server.trusted_proxies.size(); ++i) {
    const Cidr& x = a.server.trusted_proxies[i];
    const Cidr& y = b.server.trusted_proxies[i];
    CHECK(x.text == y.text);
    CHECK(x.v6 == y.v6);
    CHECK(x.prefix == y.prefix);
    CHECK(std::equal(std::begin(x.addr), std::end(x.addr), std::begin(y.addr)));
  }
  CHECK(a.server.workers == b.server.workers);

  CHECK(a.upstream.url == b.upstream.url);
  CHECK(a.upstream.tcp == b.upstream.tcp);
  CHECK(a.upstream.unix_path == b.upstream.unix_path);
  CHECK(a.upstream.connect_timeout == b.upstream.connect_timeout);
  CHECK(a.upstream.response_timeout == b.upstream.response_timeout);
  CHECK(a.upstream.max_idle_connections == b.upstream.max_idle_connections);
  CHECK(a.upstream.idle_timeout == b.upstream.idle_timeout);

  const SslConfig& s = a.ssl;
  const SslConfig& t = b.ssl;
  CHECK(s.present == t.present);
  CHECK(s.enabled == t.enabled);
  CHECK(s.certificate == t.certificate);
  CHECK(s.key == t.key);
  CHECK(s.key_passphrase == t.key_passphrase);
  CHECK(s.key_passphrase_path == t.key_passphrase_path);
  CHECK(s.supported_protocols == t.supported_protocols);
  CHECK(s.cipher_suites == t.cipher_suites);
  CHECK(s.curve_types == t.curve_types);
  CHECK(s.certificate_authorities == t.certificate_authorities);
  CHECK(s.client_authentication == t.client_authentication);
  CHECK(s.verification_mode == t.verification_mode);
  CHECK(s.ca_sha256 == t.ca_sha256);
  CHECK(s.allowed_clients.common_names == t.allowed_clients.common_names);
  CHECK(s.allowed_clients.organizational_units == t.allowed_clients.organizational_units);
  CHECK(s.allowed_clients.dns_names == t.allowed_clients.dns_names);
  CHECK(s.allowed_clients.uris == t.allowed_clients.uris);
  CHECK(s.allowed_clients.ip_addresses == t.allowed_clients.ip_addresses);
  CHECK(s.forward_client_cert == t.forward_client_cert);
  CHECK(s.session_tickets == t.session_tickets);
  CHECK(s.session_ticket_rotation == t.session_ticket_rotation);
  CHECK(s.wait_for_certificates == t.wait_for_certificates);
  CHECK(s.reload_interval == t.reload_interval);

  CHECK(a.admin.host == b.admin.host);
  CHECK(a.admin.ready_requires_upstream == b.admin.ready_requires_upstream);
  CHECK(a.log.level == b.log.level);
  CHECK(a.log.format == b.log.format);
  CHECK(a.log.access == b.log.access);
}

// The lines of toToml()'s section for `table` ("[x]" or, when commented out, "# [x]").
std::string section(const std::string& toml, const std::string& table) {
  std::istringstream in(toml);
  std::string line;
  std::string out;
  bool inside = false;
  while (std::getline(in, line)) {
    std::string bare = line.rfind("# ", 0) == 0 ? line.substr(2) : line;
    if (!bare.empty() && bare[0] == '[') inside = bare == "[" + table + "]";
    if (inside) out += bare + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("An empty file gives every documented default", "[unit][config]") {
  Config c = load("");
  CHECK(c.file == "test.toml");
  CHECK(c.server.host == HostPort{"127.0.0.1", 8200});
  CHECK(c.server.max_header_size == 1048576);
  CHECK(c.server.idle_timeout == Millis{45'000});
  CHECK(c.server.read_timeout == Millis{3'600'000});
  CHECK(c.server.request_header_timeout == Millis{10'000});
  CHECK(c.server.write_timeout == Millis{30'000});
  CHECK(c.server.shutdown_timeout == Millis{30'000});
  CHECK(c.server.shutdown_delay == Millis{0});
  CHECK(c.server.tls_handshake_timeout == Millis{10'000});
  CHECK(c.server.max_connections == 0);
  CHECK(c.server.trusted_proxies.empty());
  CHECK(c.server.workers == 0);

  CHECK(c.upstream.url == "http://127.0.0.1:8201");
  CHECK(c.upstream.tcp == HostPort{"127.0.0.1", 8201});
  CHECK(c.upstream.unix_path.empty());
  CHECK(c.upstream.connect_timeout == Millis{5'000});
  CHECK(c.upstream.response_timeout == Millis{60'000});
  CHECK(c.upstream.max_idle_connections == 64);
  CHECK(c.upstream.idle_timeout == Millis{30'000});

  CHECK_FALSE(c.ssl.present);
  CHECK_FALSE(c.ssl.enabled);
  CHECK(c.ssl.supported_protocols == std::vector<std::string>{"TLSv1.2", "TLSv1.3"});
  CHECK(c.ssl.cipher_suites.empty());
  CHECK(c.ssl.curve_types.empty());
  CHECK(c.ssl.certificate_authorities.empty());
  CHECK(c.ssl.client_authentication == ClientAuth::kNone);
  CHECK_FALSE(c.ssl.client_authentication_explicit);
  CHECK(c.ssl.verification_mode == VerificationMode::kFull);
  CHECK(c.ssl.ca_sha256.empty());
  CHECK(c.ssl.allowed_clients.empty());
  CHECK_FALSE(c.ssl.forward_client_cert);
  CHECK(c.ssl.session_tickets);
  CHECK(c.ssl.session_ticket_rotation == Millis{3'600'000});
  CHECK_FALSE(c.ssl.wait_for_certificates);
  CHECK(c.ssl.reload_interval == Millis{60'000});

  CHECK_FALSE(c.admin.host.has_value());
  CHECK_FALSE(c.admin.ready_requires_upstream);
  CHECK(c.log.level == LogLevel::kInfo);
  CHECK(c.log.format == LogFormat::kText);
  CHECK(c.log.access == "off");
  CHECK(c.warnings.empty());
  CHECK(c.positions.empty());
}

TEST_CASE("Every key is read into its field", "[unit][config]") {
  Config c = load(kEverything);
  CHECK(c.server.host == HostPort{"::1", 9443});
  CHECK(c.server.max_header_size == 65536);
  CHECK(c.server.idle_timeout == Millis{60'000});
  CHECK(c.server.read_timeout == Millis{150'000});
  CHECK(c.server.request_header_timeout == Millis{5'000});
  CHECK(c.server.write_timeout == Millis{15'000});
  CHECK(c.server.shutdown_timeout == Millis{20'000});
  CHECK(c.server.shutdown_delay == Millis{5'000});
  CHECK(c.server.tls_handshake_timeout == Millis{3'000});
  CHECK(c.server.max_connections == 1000);
  REQUIRE(c.server.trusted_proxies.size() == 3);
  CHECK(c.server.trusted_proxies[0].contains("10.20.30.40"));
  CHECK(c.server.trusted_proxies[1].contains("::1"));
  CHECK(c.server.trusted_proxies[2].contains("192.168.1.7"));
  CHECK(c.server.workers == 4);

  CHECK(c.upstream.url == "unix:/run/apm-server.sock");
  CHECK_FALSE(c.upstream.tcp.has_value());
  CHECK(c.upstream.unix_path == "/run/apm-server.sock");
  CHECK(c.upstream.connect_timeout == Millis{2'000});
  CHECK(c.upstream.response_timeout == Millis{90'000});
  CHECK(c.upstream.max_idle_connections == 8);
  CHECK(c.upstream.idle_timeout == Millis{20'000});

  CHECK(c.ssl.present);
  CHECK(c.ssl.enabled);
  CHECK(c.ssl.certificate == "/etc/tls/server.crt");
  CHECK(c.ssl.key == "/etc/tls/server.key");
  CHECK(c.ssl.key_passphrase.empty());
  CHECK(c.ssl.key_passphrase_path == "/etc/tls/passphrase");
  CHECK(c.ssl.supported_protocols == std::vector<std::string>{"TLSv1.3"});
  CHECK(c.ssl.cipher_suites ==
        std::vector<std::string>{"ECDHE-ECDSA-AES-128-GCM-SHA256", "ECDHE-RSA-AES-256-GCM-SHA384"});
  CHECK(c.ssl.curve_types == std::vector<std::string>{"X25519", "P-256"});
  CHECK(c.ssl.certificate_authorities ==
        std::vector<std::string>{"/etc/tls/ca.crt", "/etc/tls/other-ca.crt"});
  CHECK(c.ssl.client_authentication == ClientAuth::kOptional);
  CHECK(c.ssl.client_authentication_explicit);
  CHECK(c.ssl.verification_mode == VerificationMode::kCertificate);
  CHECK(c.ssl.ca_sha256 ==
        std::vector<std::string>{"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="});
  CHECK(c.ssl.forward_client_cert);
  CHECK_FALSE(c.ssl.session_tickets);
  CHECK(c.ssl.session_ticket_rotation == Millis{7'200'000});
  CHECK(c.ssl.wait_for_certificates);
  CHECK(c.ssl.reload_interval == Millis{0});
  const AllowedClients& a = c.ssl.allowed_clients;
  CHECK(a.common_names == std::vector<std::string>{"collector"});
  CHECK(a.organizational_units == std::vector<std::string>{"observability"});
  CHECK(a.dns_names == std::vector<std::string>{"*.agents.example.com", "collector.example.com"});
  CHECK(a.uris == std::vector<std::string>{"spiffe://cluster.local/ns/*/sa/apm-agent"});
  CHECK(a.ip_addresses == std::vector<std::string>{"10.1.2.3", "fd00::7"});

  CHECK(c.admin.host == HostPort{"0.0.0.0", 9900});
  CHECK(c.admin.ready_requires_upstream);
  CHECK(c.log.level == LogLevel::kDebug);
  CHECK(c.log.format == LogFormat::kJson);
  CHECK(c.log.access == "/var/log/apm-tls-proxy/access.log");
}

TEST_CASE("Every known key is read by the loader, not just accepted", "[unit][config]") {
  // A table value is the wrong type for every key, so each must produce an error that
  // names it; a key in knownKeys() that the loader forgot to read would pass silently.
  for (const KeyInfo& key : knownKeys()) {
    std::string path = key.path;
    size_t dot = path.rfind('.');
    std::string text = "[" + path.substr(0, dot) + "]\n" + path.substr(dot + 1) + " = { x = 1 }\n";
    LoadResult r = loadString(text, "t.toml");
    INFO(text);
    bool named = false;
    for (const Problem& p : r.problems) named = named || (p.key == path && !p.warning);
    CHECK(named);
  }
}

TEST_CASE("Positions of every written key and array element are recorded", "[unit][config]") {
  Config c = load(kEverything);
  CHECK(c.positions.at("server").line == 2);
  CHECK(c.positions.at("server.host").line == 3);
  CHECK(c.positions.at("server.host").column == 1);
  CHECK(c.positions.at("server.trusted_proxies[1]").line == 13);
  CHECK(c.positions.at("server.trusted_proxies[1]").column == 34);
  CHECK(c.positions.at("ssl.certificate").line == 25);
  CHECK(c.positions.at("ssl.certificate_authorities[1]").line == 31);
  CHECK(c.positions.count("ssl.allowed_clients.uris") == 1);
  CHECK(c.positions.count("server.idle_timeout") == 1);
  CHECK(c.positions.count("log.level") == 1);
  Problem p = c.problemAt("ssl.certificate", "cannot open");
  CHECK(p.format() == "test.toml:25:1: ssl.certificate: cannot open");
}

TEST_CASE("A missing key is reported at its table's header", "[unit][config]") {
  Config c = load("\n\n[ssl]\ncertificate = \"a\"\nkey = \"b\"\n");
  CHECK(c.problemAt("ssl.key_passphrase", "x").pos.line == 3);
  CHECK(c.problemAt("log.level", "x").pos.line == 0);
}

TEST_CASE("TLS follows APM Server: on when [ssl] is present and enabled is not false",
          "[unit][config]") {
  SECTION("no [ssl] table: plain HTTP") {
    Config c = load("[server]\nhost = \":8200\"\n");
    CHECK_FALSE(c.ssl.present);
    CHECK_FALSE(c.ssl.enabled);
  }
  SECTION("[ssl] with certificate and key: on") {
    Config c = load(kTlsFiles);
    CHECK(c.ssl.present);
    CHECK(c.ssl.enabled);
  }
  SECTION("enabled = true: on") {
    Config c = load(std::string(kTlsFiles) + "enabled = true\n");
    CHECK(c.ssl.enabled);
  }
  SECTION("enabled = false: off, and the other keys are ignored with a warning") {
    Config c = load(std::string(kTlsFiles) + "enabled = false\n");
    CHECK(c.ssl.present);
    CHECK_FALSE(c.ssl.enabled);
    CHECK(hasWarning(c, "ssl.enabled", "ignored"));
  }
  SECTION("enabled = false alone needs no certificate") {
    Config c = load("[ssl]\nenabled = false\n");
    CHECK_FALSE(c.ssl.enabled);
    CHECK(c.warnings.empty());
  }
}

TEST_CASE("client_authentication follows APM Server's rule in every case", "[unit][config]") {
  std::string base = kTlsFiles;
  std::string cas = "certificate_authorities = [\"ca.crt\"]\n";
  SECTION("absent, no CAs: none") {
    Config c = load(base);
    CHECK(c.ssl.client_authentication == ClientAuth::kNone);
    CHECK_FALSE(c.ssl.client_authentication_explicit);
  }
  SECTION("absent, CAs set: required") {
    Config c = load(base + cas);
    CHECK(c.ssl.client_authentication == ClientAuth::kRequired);
    CHECK_FALSE(c.ssl.client_authentication_explicit);
    CHECK(c.warnings.empty());
  }
  SECTION("absent, CAs an empty list: none") {
    Config c = load(base + "certificate_authorities = []\n");
    CHECK(c.ssl.client_authentication == ClientAuth::kNone);
  }
  SECTION("explicit none with CAs stays none, with a warning that the CAs are ignored") {
    Config c = load(base + cas + "client_authentication = \"none\"\n");
    CHECK(c.ssl.client_authentication == ClientAuth::kNone);
    CHECK(c.ssl.client_authentication_explicit);
    CHECK(hasWarning(c, "ssl.client_authentication", "certificate_authorities is ignored"));
  }
  SECTION("explicit optional with CAs stays optional") {
    Config c = load(base + cas + "client_authentication = \"optional\"\n");
    CHECK(c.ssl.client_authentication == ClientAuth::kOptional);
    CHECK(c.warnings.empty());
  }
  SECTION("explicit required with CAs") {
    Config c = load(base + cas + "client_authentication = \"required\"\n");
    CHECK(c.ssl.client_authentication == ClientAuth::kRequired);
  }
  SECTION("explicit none without CAs") {
    Config c = load(base + "client_authentication = \"none\"\n");
    CHECK(c.ssl.client_authentication == ClientAuth::kNone);
    CHECK(c.warnings.empty());
  }
  // The system-trust-store warning comes once, from tls::TlsContext, which loads it
  // (tests/unit/tls/tls_context_test.cc); the loader does not repeat it.
  SECTION("required without CAs loads without a duplicate warning") {
    Config c = load(base + "client_authentication = \"required\"\n");
    CHECK(c.ssl.client_authentication == ClientAuth::kRequired);
    CHECK_FALSE(hasWarning(c, "ssl.client_authentication", "system trust store"));
  }
  SECTION("optional without CAs likewise") {
    Config c = load(base + "client_authentication = \"optional\"\n");
    CHECK(c.ssl.client_authentication == ClientAuth::kOptional);
    CHECK_FALSE(hasWarning(c, "ssl.client_authentication", "system trust store"));
  }
}

TEST_CASE("Risky but valid settings load with a warning that explains them", "[unit][config]") {
  std::string base = kTlsFiles;
  SECTION("TLS on with a plaintext upstream off the host") {
    Config c = load("[upstream]\nurl = \"http://10.0.0.5:8200\"\n" + base);
    CHECK(hasWarning(c, "upstream.url", "plaintext leaves the host"));
    CHECK(c.warnings[0].pos.line == 2);
  }
  SECTION("TLS on with loopback, localhost or unix upstreams: no warning") {
    for (const char* url : {"http://127.0.0.1:8201", "http://localhost:8201", "http://[::1]:8201",
                            "unix:/run/apm.sock"}) {
      Config c = load(std::string("[upstream]\nurl = \"") + url + "\"\n" + base);
      INFO(url);
      CHECK(c.warnings.empty());
    }
  }
  SECTION("plain HTTP beyond loopback says that tokens travel in plaintext") {
    Config c = load("[server]\nhost = \"0.0.0.0:8200\"\n");
    CHECK(hasWarning(c, "server.host", "travel in plaintext"));
    Config local = load("[server]\nhost = \"127.0.0.1:8200\"\n");
    CHECK(local.warnings.empty());
  }
  SECTION("plain HTTP with an upstream off the host: no warning") {
    Config c = load("[upstream]\nurl = \"http://10.0.0.5:8200\"\n");
    CHECK(c.warnings.empty());
  }
  SECTION("verification_mode none") {
    Config c = load(base + "verification_mode = \"none\"\n");
    CHECK(c.ssl.verification_mode == VerificationMode::kNone);
    CHECK(hasWarning(c, "ssl.verification_mode", "never disables client-certificate"));
  }
  SECTION("TLS 1.0 and 1.1") {
    Config c = load(base + "supported_protocols = [\"TLSv1.1\", \"TLSv1.2\"]\n");
    CHECK(hasWarning(c, "ssl.supported_protocols", "RFC 8996"));
  }
  SECTION("pins without client certificates") {
    Config c = load(base + "ca_sha256 = [\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"]\n");
    CHECK(hasWarning(c, "ssl.ca_sha256", "no client chain is ever checked"));
  }
  SECTION("an upstream idle timeout at or above APM Server's 45s") {
    Config c = load("[upstream]\nidle_timeout = \"45s\"\n");
    CHECK(hasWarning(c, "upstream.idle_timeout", "shorter than the upstream"));
  }
}

TEST_CASE("Upstream URLs derive a TCP address or a unix socket path", "[unit][config]") {
  auto upstream = [](const std::string& url) {
    return load("[upstream]\nurl = \"" + url + "\"\n").upstream;
  };
  CHECK(upstream("http://127.0.0.1:9000").tcp == HostPort{"127.0.0.1", 9000});
  CHECK(upstream("http://localhost").tcp == HostPort{"localhost", 80});
  CHECK(upstream("http://apm-server:8200/").tcp == HostPort{"apm-server", 8200});
  CHECK(upstream("HTTP://[::1]:8201").tcp == HostPort{"::1", 8201});
  CHECK(upstream("http://[::1]").tcp == HostPort{"::1", 80});
  UpstreamConfig u = upstream("unix:/run/apm.sock");
  CHECK_FALSE(u.tcp.has_value());
  CHECK(u.unix_path == "/run/apm.sock");
  CHECK(u.url == "unix:/run/apm.sock");
}

TEST_CASE("Inline PEM values are kept exactly as written", "[unit][config]") {
  Config c = load(
      "[ssl]\ncertificate = \"\"\"\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END "
      "CERTIFICATE-----\n\"\"\"\nkey = '''\n  -----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE "
      "KEY-----'''\n");
  CHECK(c.ssl.certificate == "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  CHECK(c.ssl.key == "  -----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE KEY-----");
}

TEST_CASE("toToml prints every default, matching the table of known keys", "[unit][config]") {
  std::string toml = toToml(load(""));
  for (const KeyInfo& key : knownKeys()) {
    std::string path = key.path;
    std::string def = key.default_text;
    if (def.empty() || def[0] == '(') continue;  // "(required)", "(unset: off)"
    size_t dot = path.rfind('.');
    std::string lines = section(toml, path.substr(0, dot));
    INFO(path << " default " << def << "\n" << lines);
    CHECK(lines.find("\n" + path.substr(dot + 1) + " = " + def + "\n") != std::string::npos);
  }
}

TEST_CASE("toToml output loads back to the same configuration", "[unit][config]") {
  std::string pem =
      "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ+abc/def==\n-----END CERTIFICATE-----\n";
  std::string text = GENERATE_COPY(
      std::string(""), std::string(kEverything), std::string(kTlsFiles),
      std::string("[ssl]\nenabled = false\n"),
      std::string(kTlsFiles) + "certificate_authorities = [\"ca.crt\"]\n",
      std::string("[server]\nhost = \":0\"\n[upstream]\nurl = \"http://localhost\"\n"),
      std::string("[log]\naccess = \"odd \\\"name\\\"\\tand\\\\slash\"\n"),
      "[ssl]\ncertificate = \"\"\"\n" + pem + "\"\"\"\nkey = \"-----BEGIN KEY-----\\r\\nX\"\n" +
          "certificate_authorities = [\"\"\"\n" + pem + pem + "\"\"\"]\n");
  Config first = load(text);
  std::string printed = toToml(first);
  INFO(printed);
  Config second = load(printed);
  checkSame(first, second);
  // Printing is stable from the second pass on (the first may add a "derived" comment).
  std::string again = toToml(second);
  CHECK(toToml(load(again)) == again);
}

TEST_CASE("toToml redacts a key passphrase", "[unit][config]") {
  Config c = load(std::string(kTlsFiles) + "key_passphrase = \"hunter2\"\n");
  CHECK(c.ssl.key_passphrase == "hunter2");
  std::string toml = toToml(c);
  CHECK(toml.find("hunter2") == std::string::npos);
  CHECK(toml.find("key_passphrase = \"<redacted>\"") != std::string::npos);
}
