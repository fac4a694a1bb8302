// Invalid configurations: every error message, with the line and column it points at.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "proxy/config/config.h"

using namespace proxy::config;

namespace {

// Every problem of a config that must fail, formatted.
std::vector<std::string> errorsOf(const std::string& text) {
  LoadResult r = loadString(text, "bad.toml");
  CHECK_FALSE(r.config.has_value());
  std::vector<std::string> out;
  for (const Problem& p : r.problems) out.push_back(p.format());
  return out;
}

// The single error of `text` (warnings aside), formatted.
std::string errorOf(const std::string& text) {
  LoadResult r = loadString(text, "bad.toml");
  std::vector<std::string> errors;
  INFO(text);
  for (const Problem& p : r.problems) {
    UNSCOPED_INFO(p.format());
    if (!p.warning) errors.push_back(p.format());
  }
  REQUIRE(errors.size() == 1);
  return errors[0];
}

const std::string kTls = "[ssl]\ncertificate = \"s.crt\"\nkey = \"s.key\"\n";

}  // namespace

TEST_CASE("A TOML syntax error is reported with its line and column", "[unit][config]") {
  std::string e = errorOf("[server]\nhost = \"127.0.0.1:8200\nworkers = 2\n");
  CHECK_THAT(e, Catch::StartsWith("bad.toml:2:"));
  LoadResult r = loadString("[server]\nworkers = = 2\n", "bad.toml");
  REQUIRE(r.problems.size() == 1);
  CHECK(r.problems[0].pos.line == 2);
  CHECK(r.problems[0].pos.column > 0);
  CHECK(r.problems[0].key.empty());
}

TEST_CASE("A duplicate key is a syntax error, not a silent override", "[unit][config]") {
  CHECK_THAT(errorOf("[server]\nworkers = 1\nworkers = 2\n"), Catch::StartsWith("bad.toml:3:"));
}

TEST_CASE("A file that cannot be read is one problem naming the file", "[unit][config]") {
  LoadResult r = loadFile("tests/unit/config/fixtures/does-not-exist.toml");
  REQUIRE(r.problems.size() == 1);
  CHECK(r.problems[0].format() ==
        "tests/unit/config/fixtures/does-not-exist.toml: cannot read the file: No such file or "
        "directory");
}

TEST_CASE("Unknown keys are errors with a did-you-mean for close names", "[unit][config]") {
  CHECK(errorOf("[server]\nidle_timout = \"45s\"\n") ==
        "bad.toml:2:1: server.idle_timout: unknown key `idle_timout` in [server]; did you "
        "mean `idle_timeout`?");
  CHECK(errorOf("[ssl]\ncertificate = \"a\"\nkey = \"b\"\nclient_authentification = "
                "\"required\"\n") ==
        "bad.toml:4:1: ssl.client_authentification: unknown key `client_authentification` in "
        "[ssl]; did you mean `client_authentication`?");
  CHECK(errorOf("[server]\n  host = \":8200\"\n  timeout = \"5s\"\n") ==
        "bad.toml:3:3: server.timeout: unknown key `timeout` in [server]; known keys: host, "
        "max_header_size, max_header_fields, http2, http2_max_concurrent_streams, idle_timeout, "
        "read_timeout, request_header_timeout, write_timeout, "
        "shutdown_timeout, shutdown_delay, tls_handshake_timeout, max_connections, "
        "trusted_proxies, workers");
  // Transposed letters count as one edit.
  CHECK_THAT(errorOf("[log]\nlevle = \"info\"\n"), Catch::EndsWith("did you mean `level`?"));
  // A prefix of a known key.
  CHECK_THAT(errorOf("[upstream]\nmax_idle = 3\n"),
             Catch::EndsWith("did you mean `max_idle_connections`?"));
}

TEST_CASE("A key written in the wrong table points to the right one", "[unit][config]") {
  CHECK(errorOf("[server]\ncertificate = \"a.crt\"\n") ==
        "bad.toml:2:1: server.certificate: unknown key `certificate` in [server]; did you mean "
        "`certificate` in [ssl]?");
  CHECK(errorOf("host = \":8200\"\n") ==
        "bad.toml:1:1: host: unknown key `host` at the top level; did you mean `host` in "
        "[server]?");
}

TEST_CASE("Unknown tables are errors with a did-you-mean", "[unit][config]") {
  CHECK(errorOf("[sever]\nhost = \":8200\"\n") ==
        "bad.toml:1:2: sever: unknown table [sever]; did you mean [server]?");
  // The typo still creates [ssl], so certificate and key are missing too.
  CHECK_THAT(errorsOf("[ssl.allowed_client]\ncommon_names = [\"x\"]\n"),
             Catch::VectorContains(std::string(
                 "bad.toml:1:6: ssl.allowed_client: unknown table [ssl.allowed_client]; did "
                 "you mean [ssl.allowed_clients]?")));
  CHECK(errorOf("[metrics]\n") ==
        "bad.toml:1:2: metrics: unknown table [metrics]; known tables: [server], [upstream], "
        "[ssl], [admin], [log]");
}

TEST_CASE("A known table written as a value is a type error", "[unit][config]") {
  CHECK(errorOf("ssl = true\n") == "bad.toml:1:7: ssl: expected a table ([ssl]), got a boolean");
}

TEST_CASE("Wrong types name the expected type", "[unit][config]") {
  CHECK(errorOf("[server]\nhost = 8200\n") ==
        "bad.toml:2:8: server.host: expected a string, got an integer");
  CHECK(errorOf("[server]\nworkers = \"4\"\n") ==
        "bad.toml:2:11: server.workers: expected an integer, got a string (write the number "
        "without quotes)");
  CHECK(errorOf("[server]\nworkers = 2.5\n") ==
        "bad.toml:2:11: server.workers: expected an integer, got a float");
  CHECK(errorOf("[admin]\nready_requires_upstream = \"yes\"\n") ==
        "bad.toml:2:27: admin.ready_requires_upstream: expected a boolean, got a string (write "
        "true or false without quotes)");
  CHECK(errorOf("[server]\ntrusted_proxies = \"10.0.0.0/8\"\n") ==
        "bad.toml:2:19: server.trusted_proxies: expected an array of strings, got a string "
        "(write a list: [\"10.0.0.0/8\"])");
  CHECK(errorOf("[server]\ntrusted_proxies = [\"10.0.0.0/8\", 7]\n") ==
        "bad.toml:2:34: server.trusted_proxies[1]: expected a string, got an integer");
  CHECK(errorOf("[log]\nlevel = 1979-05-27\n") ==
        "bad.toml:2:9: log.level: expected a string, got a date");
}

TEST_CASE("A duration written as a number asks for a string with a unit", "[unit][config]") {
  CHECK(errorOf("[server]\nidle_timeout = 45\n") ==
        "bad.toml:2:16: server.idle_timeout: expected a duration string, got an integer "
        "(durations are strings with a unit: write \"45s\" for 45 seconds)");
  CHECK(errorOf("[server]\nidle_timeout = 4.5\n") ==
        "bad.toml:2:16: server.idle_timeout: expected a duration string, got a float (write "
        "e.g. \"45s\", \"1m30s\" or \"500ms\")");
  CHECK(errorOf("[server]\nidle_timeout = \"45\"\n") ==
        "bad.toml:2:16: server.idle_timeout: invalid duration \"45\": missing unit after the "
        "number; write e.g. \"45s\", \"1m30s\", \"500ms\" or \"1h\"");
}

TEST_CASE("Timeouts must be positive: shutdown_delay may be zero", "[unit][config]") {
  for (const char* key : {"idle_timeout", "read_timeout", "request_header_timeout", "write_timeout",
                          "shutdown_timeout", "tls_handshake_timeout"}) {
    std::string e = errorOf(std::string("[server]\n") + key + " = \"0s\"\n");
    CHECK_THAT(e, Catch::EndsWith("must be greater than 0 (e.g. \"30s\"), got \"0s\""));
  }
  for (const char* key : {"connect_timeout", "response_timeout", "idle_timeout"}) {
    std::string e = errorOf(std::string("[upstream]\n") + key + " = \"0\"\n");
    CHECK_THAT(e, Catch::Contains("upstream." + std::string(key) + ": must be greater than 0"));
  }
  CHECK(loadString("[server]\nshutdown_delay = \"0s\"\n", "ok.toml").config.has_value());
}

TEST_CASE("Integers outside their range state the range", "[unit][config]") {
  CHECK(errorOf("[server]\nmax_header_size = 512\n") ==
        "bad.toml:2:19: server.max_header_size: must be from 1024 to 67108864 bytes (64 MiB), "
        "got 512");
  CHECK_THAT(errorOf("[server]\nmax_header_size = 67108865\n"), Catch::EndsWith("got 67108865"));
  CHECK(loadString("[server]\nmax_header_size = 67108864\n", "ok").config.has_value());
  CHECK(loadString("[server]\nmax_header_size = 1024\n", "ok").config.has_value());
  CHECK(errorOf("[server]\nworkers = 257\n") ==
        "bad.toml:2:11: server.workers: must be from 0 (one per usable CPU) to 256, got 257");
  CHECK_THAT(errorOf("[server]\nmax_connections = -1\n"),
             Catch::EndsWith("must be from 0 (unlimited) to 4294967295, got -1"));
  CHECK_THAT(errorOf("[upstream]\nmax_idle_connections = 4294967296\n"),
             Catch::EndsWith("must be from 0 to 4294967295, got 4294967296"));
}

TEST_CASE("Bad addresses and networks are reported at their value", "[unit][config]") {
  CHECK(errorOf("[server]\nhost = \"::1:8200\"\n") ==
        "bad.toml:2:8: server.host: \"::1:8200\": an IPv6 address must be written in brackets, "
        "e.g. \"[::1]:8200\"");
  CHECK(errorOf("[admin]\nhost = \"127.0.0.1\"\n") ==
        "bad.toml:2:8: admin.host: \"127.0.0.1\": missing port; write HOST:PORT, e.g. "
        "\"127.0.0.1:8200\", \"[::1]:8200\"");
  CHECK(errorOf("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"10.0.0.0/40\"]\n") ==
        "bad.toml:2:34: server.trusted_proxies[1]: \"10.0.0.0/40\": prefix length must be at "
        "most 32");
}

TEST_CASE("Upstream URLs other than http:// and unix: are refused with the reason",
          "[unit][config]") {
  CHECK(errorOf("[upstream]\nurl = \"https://127.0.0.1:8200\"\n") ==
        "bad.toml:2:7: upstream.url: TLS to the upstream is not supported: the proxy "
        "terminates TLS and speaks plain HTTP to an upstream on the same host or pod; use "
        "\"http://\" or \"unix:\"");
  CHECK_THAT(errorOf("[upstream]\nurl = \"ftp://x:1\"\n"), Catch::Contains("unsupported scheme"));
  CHECK_THAT(errorOf("[upstream]\nurl = \"127.0.0.1:8200\"\n"),
             Catch::Contains("unsupported scheme"));
  CHECK_THAT(errorOf("[upstream]\nurl = \"http://127.0.0.1:8200/intake\"\n"),
             Catch::Contains("a path is not supported"));
  CHECK_THAT(errorOf("[upstream]\nurl = \"http://\"\n"), Catch::Contains("missing host"));
  CHECK_THAT(errorOf("[upstream]\nurl = \"http://127.0.0.1:0\"\n"),
             Catch::Contains("port 0 cannot be connected to"));
  CHECK_THAT(errorOf("[upstream]\nurl = \"http://0.0.0.0:8201\"\n"),
             Catch::Contains("is a listen address"));
  CHECK_THAT(errorOf("[upstream]\nurl = \"unix:\"\n"), Catch::Contains("empty unix socket path"));
  CHECK_THAT(errorOf("[upstream]\nurl = \"unix:/" + std::string(110, 'x') + "\"\n"),
             Catch::Contains("longer than 107 bytes"));
}

TEST_CASE("Enum values list the allowed values", "[unit][config]") {
  CHECK(errorOf(kTls + "client_authentication = \"require\"\n") ==
        "bad.toml:4:25: ssl.client_authentication: invalid value \"require\"; allowed: "
        "\"none\", \"optional\", \"required\"");
  CHECK(errorOf(kTls + "verification_mode = \"off\"\n") ==
        "bad.toml:4:21: ssl.verification_mode: invalid value \"off\"; allowed: \"full\", "
        "\"strict\", \"certificate\", \"none\"");
  CHECK(errorOf("[log]\nlevel = \"warning\"\n") ==
        "bad.toml:2:9: log.level: invalid value \"warning\"; allowed: \"debug\", \"info\", "
        "\"warn\", \"error\"");
  CHECK(errorOf("[log]\nformat = \"JSON\"\n") ==
        "bad.toml:2:10: log.format: invalid value \"JSON\"; allowed: \"text\", \"json\", \"ecs\"");
}

TEST_CASE("TLS on without certificate or key names each missing key at [ssl]", "[unit][config]") {
  std::vector<std::string> e = errorsOf("[server]\nworkers = 1\n\n[ssl]\nenabled = true\n");
  REQUIRE(e.size() == 2);
  CHECK(e[0] ==
        "bad.toml:4:2: ssl.certificate: required when TLS is on (the [ssl] table is present and "
        "enabled is not false); a file path or inline PEM");
  CHECK_THAT(e[1], Catch::StartsWith("bad.toml:4:2: ssl.key: required when TLS is on"));
  CHECK(errorOf("[ssl]\ncertificate = \"\"\nkey = \"k\"\n") ==
        "bad.toml:2:15: ssl.certificate: must not be empty");
  // [ssl.allowed_clients] alone creates [ssl], as apm-server.ssl.* keys do in YAML.
  CHECK(errorsOf("[ssl.allowed_clients]\ncommon_names = [\"a\"]\n").size() >= 2);
}

TEST_CASE("supported_protocols accepts only APM Server's spellings", "[unit][config]") {
  CHECK(errorOf(kTls + "supported_protocols = [\"TLSv1.2\", \"SSLv3\"]\n") ==
        "bad.toml:4:35: ssl.supported_protocols[1]: SSLv3 is not supported (it is insecure: RFC "
        "7568)");
  CHECK(errorOf(kTls + "supported_protocols = [\"TLS1.3\"]\n") ==
        "bad.toml:4:24: ssl.supported_protocols[0]: unknown protocol \"TLS1.3\"; valid names: "
        "\"TLSv1\", \"TLSv1.0\", \"TLSv1.1\", \"TLSv1.2\", \"TLSv1.3\"");
  CHECK(errorOf(kTls + "supported_protocols = []\n") ==
        "bad.toml:4:23: ssl.supported_protocols: must list at least one protocol, e.g. "
        "[\"TLSv1.2\", \"TLSv1.3\"]");
  for (const char* ok : {"TLSv1", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"}) {
    LoadResult r = loadString(kTls + "supported_protocols = [\"" + ok + "\"]\n", "ok.toml");
    CHECK(r.config.has_value());
  }
}

TEST_CASE("cipher_suites and curve_types must be arrays of strings", "[unit][config]") {
  CHECK(errorOf(kTls + "cipher_suites = \"ECDHE-RSA-AES-128-GCM-SHA256\"\n") ==
        "bad.toml:4:17: ssl.cipher_suites: expected an array of strings, got a string (write a "
        "list: [\"ECDHE-RSA-AES-128-GCM-SHA256\"])");
  CHECK(errorOf(kTls + "curve_types = [\"X25519\", 25519]\n") ==
        "bad.toml:4:26: ssl.curve_types[1]: expected a string, got an integer");
}

TEST_CASE("ca_sha256 pins must be base64 of 32 bytes", "[unit][config]") {
  CHECK(errorOf(kTls + "ca_sha256 = [\"abc\"]\n") ==
        "bad.toml:4:14: ssl.ca_sha256[0]: \"abc\" is not a base64 SHA-256 fingerprint (44 "
        "characters of standard base64 encoding 32 bytes)");
  std::string hex(64, 'a');
  CHECK_THAT(errorOf(kTls + "ca_sha256 = [\"" + hex + "\"]\n"),
             Catch::EndsWith("this looks like hex, but APM Server's ca_sha256 takes base64"));
  // URL-safe alphabet and misplaced padding are not standard base64.
  CHECK_THAT(errorOf(kTls + "ca_sha256 = [\"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=\"]\n"),
             Catch::Contains("not a base64 SHA-256"));
  CHECK_THAT(errorOf(kTls + "ca_sha256 = [\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hS=FU=\"]\n"),
             Catch::Contains("not a base64 SHA-256"));
}

TEST_CASE("Both key_passphrase and key_passphrase_path is an error", "[unit][config]") {
  CHECK(errorOf(kTls + "key_passphrase = \"x\"\nkey_passphrase_path = \"/p\"\n") ==
        "bad.toml:5:23: ssl.key_passphrase_path: set either key_passphrase or "
        "key_passphrase_path, not both");
}

TEST_CASE("Ticket rotation and reload intervals state their minimum", "[unit][config]") {
  CHECK(errorOf(kTls + "session_ticket_rotation = \"30s\"\n") ==
        "bad.toml:4:27: ssl.session_ticket_rotation: must be at least \"1m\", got \"30s\"");
  CHECK(errorOf(kTls + "reload_interval = \"500ms\"\n") ==
        "bad.toml:4:19: ssl.reload_interval: must be \"0s\" (off) or at least \"1s\", got "
        "\"500ms\"");
}

TEST_CASE("allowed_clients entries are checked", "[unit][config]") {
  std::string base = kTls + "client_authentication = \"required\"\n[ssl.allowed_clients]\n";
  CHECK(errorOf(base + "ip_addresses = [\"10.0.0.300\"]\n") ==
        "bad.toml:6:17: ssl.allowed_clients.ip_addresses[0]: \"10.0.0.300\" is not an IP "
        "address (write e.g. \"10.1.2.3\" or \"fd00::1\")");
  CHECK(errorOf(base + "dns_names = [\"a.*.example.com\"]\n") ==
        "bad.toml:6:14: ssl.allowed_clients.dns_names[0]: \"a.*.example.com\": a wildcard must "
        "be the whole leftmost label, e.g. \"*.example.com\"");
  CHECK(errorOf(base + "common_names = [\"\"]\n") ==
        "bad.toml:6:17: ssl.allowed_clients.common_names[0]: must not be empty");
  CHECK(errorOf(kTls + "[ssl.allowed_clients]\nuris = [\"spiffe://a/b\"]\n") ==
        "bad.toml:4:6: ssl.allowed_clients: an allow-list needs client certificates, but "
        "client_authentication is \"none\"; set it to \"required\" (or \"optional\")");
}

TEST_CASE("Addresses that would collide or loop are refused", "[unit][config]") {
  CHECK(errorOf("[server]\nhost = \":8200\"\n[admin]\nhost = \"127.0.0.1:8200\"\n") ==
        "bad.toml:4:8: admin.host: the same address as server.host (0.0.0.0:8200); give the "
        "admin endpoint its own port");
  CHECK(errorOf("[upstream]\nurl = \"http://127.0.0.1:8200\"\n") ==
        "bad.toml:2:7: upstream.url: points at the proxy's own listen address (server.host = "
        "\"127.0.0.1:8200\"): requests would loop");
  // Port 0 (pick any free port, as the integration tests do) never collides.
  CHECK(loadString("[server]\nhost = \"127.0.0.1:0\"\n[admin]\nhost = \"127.0.0.1:0\"\n", "ok")
            .config.has_value());
}

TEST_CASE("log.access is off, stderr or a file path", "[unit][config]") {
  CHECK(errorOf("[log]\naccess = \"\"\n") == "bad.toml:2:10: log.access: must not be empty");
  CHECK(errorOf("[log]\naccess = \"stdout\"\n") ==
        "bad.toml:2:10: log.access: \"stdout\" is not supported: use \"off\", \"stderr\" or a "
        "file path");
  CHECK(loadString("[log]\naccess = \"stderr\"\n", "ok").config->log.access == "stderr");
}

TEST_CASE("Every problem is reported at once, in file order, with warnings kept",
          "[unit][config]") {
  std::vector<std::string> e = errorsOf(R"([server]
host = "localhost"
idle_timeout = 30
wrkers = 2

[upstream]
url = "http://10.0.0.9:8200"

[ssl]
key = "k.pem"
verification_mode = "none"
supported_protocols = ["SSLv3"]

[log]
level = "verbose"
)");
  REQUIRE(e.size() == 8);
  CHECK_THAT(e[0], Catch::StartsWith("bad.toml:2:8: server.host: \"localhost\": missing port"));
  CHECK_THAT(e[1], Catch::StartsWith("bad.toml:3:16: server.idle_timeout: expected a duration"));
  CHECK_THAT(e[2], Catch::StartsWith("bad.toml:4:1: server.wrkers: unknown key"));
  CHECK_THAT(e[3], Catch::StartsWith("bad.toml:7:7: warning: upstream.url: TLS is on"));
  CHECK_THAT(e[4], Catch::StartsWith("bad.toml:9:2: ssl.certificate: required when TLS is on"));
  CHECK_THAT(e[5], Catch::StartsWith("bad.toml:11:21: warning: ssl.verification_mode:"));
  CHECK_THAT(e[6], Catch::StartsWith("bad.toml:12:24: ssl.supported_protocols[0]: SSLv3"));
  CHECK_THAT(e[7], Catch::StartsWith("bad.toml:15:9: log.level: invalid value \"verbose\""));
}

TEST_CASE("A TOML syntax error never carries raw control bytes from the file", "[unit][config]") {
  // toml++ quotes what it found; a newline or ESC there must not reach a terminal raw.
  const std::string text = "[ssl]\nenabled = tru\x1b[31m\nkey = \"k\"\n";
  const std::string error = errorOf(text);
  INFO(error);
  CHECK(error.find("bad.toml:2:") == 0);
  for (char c : error) CHECK((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
}

TEST_CASE("A value quoted in a problem never carries raw control bytes either", "[unit][config]") {
  // Found by config_fuzz: a multi-line string (here a PEM pasted into the wrong key) quoted
  // by "invalid value" printed its line breaks, splitting the problem over several lines.
  const std::string text = kTls +
                           "client_authentication = \"\"\"-----BEGIN CERTIFICATE-----\n"
                           "MIIB\\u001b[2J\n-----END CERTIFICATE-----\n\"\"\"\n";
  const std::string error = errorOf(text);
  INFO(error);
  CHECK(error ==
        "bad.toml:4:25: ssl.client_authentication: invalid value \"-----BEGIN "
        "CERTIFICATE-----\\x0aMIIB\\x1b[2J\\x0a-----END CERTIFICATE-----\\x0a\"; allowed: "
        "\"none\", \"optional\", \"required\"");
}
