// The table of known configuration keys. The loader rejects anything not listed here, and
// tests/unit/config/docs_test.cc checks that docs/configuration.md lists every row with its
// default, so adding a key means adding it here, in the loader, and in the docs.
#include <string>
#include <vector>

#include "proxy/config/config.h"

namespace proxy::config {

namespace {
constexpr const char* kOurs = "(apm-tls-proxy only)";
}  // namespace

const std::vector<KeyInfo>& knownKeys() {
  // Defaults are written exactly as toToml() prints them; config_test.cc checks that.
  static const std::vector<KeyInfo> keys = {
      {"server.host", "host:port", "\"127.0.0.1:8200\"", "apm-server.host",
       "listen address; \"[::1]:8200\" for IPv6, \":8200\" for all interfaces, port 0 = any"},
      {"server.max_header_size", "integer (bytes)", "1048576", "apm-server.max_header_size",
       "request line plus headers; larger requests get 431 (1024 .. 67108864)"},
      {"server.max_header_fields", "integer", "100", kOurs,
       "header fields in one request; more get 431 (HTTP/2: the stream is refused)"},
      {"server.http2", "bool", "true", kOurs,
       "offer HTTP/2 (ALPN h2 under TLS, the h2c preface on a plain listener)"},
      {"server.http2_max_concurrent_streams", "integer", "100", kOurs,
       "streams one HTTP/2 client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS)"},
      {"server.idle_timeout", "duration", "\"45s\"", "apm-server.idle_timeout",
       "how long a keep-alive connection may sit idle between requests"},
      {"server.read_timeout", "duration", "\"1h\"", "apm-server.read_timeout",
       "a whole request, first byte to last body byte"},
      {"server.request_header_timeout", "duration", "\"10s\"", kOurs,
       "the complete request head must arrive within this, else 408 (slowloris guard)"},
      {"server.write_timeout", "duration", "\"30s\"", "apm-server.write_timeout",
       "one write to the client may stall at most this long"},
      {"server.shutdown_timeout", "duration", "\"30s\"", "apm-server.shutdown_timeout",
       "after SIGTERM, in-flight requests may finish within this"},
      {"server.shutdown_delay", "duration", "\"0s\"", kOurs,
       "after SIGTERM, keep accepting this long first (lets Kubernetes endpoints update)"},
      {"server.tls_handshake_timeout", "duration", "\"10s\"", kOurs,
       "a TLS handshake must complete within this"},
      {"server.max_connections", "integer", "0", "apm-server.max_connections",
       "open client connections per process; 0 = unlimited"},
      {"server.trusted_proxies", "array of CIDRs", "[]", kOurs,
       "peers whose X-Forwarded-For is appended to instead of replaced"},
      {"server.workers", "integer", "0", kOurs,
       "event-loop threads (0 .. 256); 0 = the CPUs this process may use"},

      {"upstream.url", "url", "\"http://127.0.0.1:8201\"", kOurs,
       "the plain-HTTP intake server: \"http://host:port\" or \"unix:/path\""},
      {"upstream.connect_timeout", "duration", "\"5s\"", kOurs,
       "connecting to the upstream; on expiry the client gets 502"},
      {"upstream.response_timeout", "duration", "\"1m\"", kOurs,
       "request fully sent to first response byte; on expiry the client gets 504"},
      {"upstream.max_idle_connections", "integer", "64", kOurs,
       "idle keep-alive connections kept per worker"},
      {"upstream.idle_timeout", "duration", "\"30s\"", kOurs,
       "idle upstream connections are closed after this (keep below the upstream's 45s)"},
      {"upstream.stream_idle_timeout", "duration", "\"0s\"", kOurs,
       "no byte to or from the upstream this long in an exchange: 504 or a cut; 0 = "
       "response_timeout"},
      {"upstream.max_connections", "integer", "256", kOurs,
       "upstream connections per worker; further requests wait for one"},
      {"upstream.max_pending", "integer", "1024", kOurs,
       "requests per worker waiting for an upstream connection; more get 503"},

      {"ssl.enabled", "bool", "true", "apm-server.ssl.enabled",
       "TLS is on when [ssl] is present and this is not false"},
      {"ssl.certificate", "string", "(required)", "apm-server.ssl.certificate",
       "server certificate chain: a file path or inline PEM"},
      {"ssl.key", "string", "(required)", "apm-server.ssl.key",
       "private key of the certificate: a file path or inline PEM"},
      {"ssl.key_passphrase", "string", "\"\"", "apm-server.ssl.key_passphrase",
       "passphrase of an encrypted key"},
      {"ssl.key_passphrase_path", "string", "\"\"", "apm-server.ssl.key_passphrase_path",
       "file holding the passphrase of an encrypted key"},
      {"ssl.supported_protocols", "array of strings", "[\"TLSv1.2\", \"TLSv1.3\"]",
       "apm-server.ssl.supported_protocols", "TLS versions; the range min .. max is enabled"},
      {"ssl.cipher_suites", "array of strings", "[]", "apm-server.ssl.cipher_suites",
       "TLS 1.2 and older cipher suites, APM names; empty = Go's (APM Server's) defaults"},
      {"ssl.curve_types", "array of strings", "[]", "apm-server.ssl.curve_types",
       "key-exchange groups (P-256, P-384, P-521, X25519); empty = library defaults"},
      {"ssl.certificate_authorities", "array of strings", "[]",
       "apm-server.ssl.certificate_authorities",
       "CAs that verify client certificates: file paths or inline PEM"},
      {"ssl.client_authentication", "string", "\"none\"", "apm-server.ssl.client_authentication",
       "none, optional or required; \"required\" when certificate_authorities is set and this "
       "is absent"},
      {"ssl.verification_mode", "string", "\"full\"", "apm-server.ssl.verification_mode",
       "full, strict, certificate or none; never disables client-certificate verification"},
      {"ssl.ca_sha256", "array of strings", "[]", "apm-server.ssl.ca_sha256",
       "pins: base64 SHA-256 of a SubjectPublicKeyInfo in the client chain"},
      {"ssl.forward_client_cert", "bool", "false", kOurs,
       "send the verified client identity upstream in X-Forwarded-Client-Cert"},
      {"ssl.session_tickets", "bool", "true", kOurs, "TLS session resumption with tickets"},
      {"ssl.session_ticket_rotation", "duration", "\"1h\"", kOurs,
       "a new ticket key this often (at least 1m); the previous one still decrypts"},
      {"ssl.wait_for_certificates", "bool", "false", kOurs,
       "start before the certificate files exist; not ready until they load"},
      {"ssl.reload_interval", "duration", "\"1m\"", kOurs,
       "re-check the certificate files this often; \"0s\" = off, else at least 1s"},
      {"ssl.allowed_clients.common_names", "array of strings", "[]", kOurs,
       "allowed client subject CNs, exact"},
      {"ssl.allowed_clients.organizational_units", "array of strings", "[]", kOurs,
       "allowed client subject OUs, exact"},
      {"ssl.allowed_clients.dns_names", "array of strings", "[]", kOurs,
       "allowed client DNS SANs, exact or \"*.example.com\""},
      {"ssl.allowed_clients.uris", "array of strings", "[]", kOurs,
       "allowed client URI SANs; \"*\" matches one path segment"},
      {"ssl.allowed_clients.ip_addresses", "array of strings", "[]", kOurs,
       "allowed client IP SANs, exact addresses"},

      {"admin.host", "host:port", "(unset: off)", kOurs,
       "plain-HTTP /healthz, /readyz and /metrics listener"},
      {"admin.ready_requires_upstream", "bool", "false", kOurs,
       "/readyz also requires a TCP connection to the upstream"},

      {"log.level", "string", "\"info\"", "logging.level", "debug, info, warn or error"},
      {"log.format", "string", "\"text\"", "logging.json",
       "text, json, or ecs (Elastic Common Schema JSON, also for the access log)"},
      {"log.access", "string", "\"off\"", kOurs,
       "access log: \"off\", \"stderr\" or a file path (one JSON line per request; a file "
       "is reopened on SIGUSR1 and when renamed or removed)"},
  };
  return keys;
}

const std::vector<std::string>& knownTables() {
  static const std::vector<std::string> tables = {
      "server", "upstream", "ssl", "ssl.allowed_clients", "admin", "log"};
  return tables;
}

}  // namespace proxy::config
