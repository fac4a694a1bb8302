// Config: the whole TOML file turned into a validated, immutable value. All defaults
// live here. First step of the data flow (config -> listener -> downstream -> upstream).
// Pure code: reads one file, touches no socket, no libuv, no BoringSSL. File contents
// named by [ssl] (certificates, keys) are loaded and checked by tls::TlsContext.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/common/status.h"

namespace proxy::config {

using Millis = std::chrono::milliseconds;

// Where a key stood in the file, for "FILE:LINE:COLUMN: key.path: message".
struct SourcePos {
  uint32_t line = 0;
  uint32_t column = 0;
};

// One configuration problem. `key` is the dotted path ("ssl.cipher_suites[2]").
struct Problem {
  std::string file;
  SourcePos pos;
  std::string key;
  std::string message;
  bool warning = false;  // warnings are printed by `check` but do not fail it
  // "FILE:LINE:COLUMN: key: message" (LINE/COLUMN omitted when unknown, "key: " when
  // empty); warnings read "FILE:LINE:COLUMN: warning: key: message".
  std::string format() const;
};

// `text` with every control byte (below 0x20, and 0x7f) written as \xNN: one line, and
// nothing a terminal would act on. Problem::format() applies it to the whole line.
std::string escapeControlBytes(std::string_view text);

// A parsed listen or upstream TCP address. `host` is a literal IP or a name
// ("localhost"); IPv6 literals are written "[::1]:8200" in TOML and stored without brackets.
struct HostPort {
  std::string host;
  uint16_t port = 0;
  bool operator==(const HostPort& o) const { return host == o.host && port == o.port; }
};

// An IPv4 or IPv6 network ("10.0.0.0/8", "::1/128"; a bare address means a single host).
struct Cidr {
  std::string text;  // as written
  bool v6 = false;
  uint8_t addr[16]{};  // network bytes (first 4 used for IPv4)
  uint8_t prefix = 0;  // prefix length in bits
  // True when the textual IP address `ip` (no port) lies inside this network.
  bool contains(const std::string& ip) const;
};

enum class ClientAuth { kNone, kOptional, kRequired };
enum class VerificationMode { kFull, kStrict, kCertificate, kNone };
enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson, kEcs };

// [server]: the listening side (APM Server's apm-server.* equivalents noted in docs).
struct ServerConfig {
  HostPort host{"127.0.0.1", 8200};    // "host" key; "127.0.0.1:8200", "[::1]:8200", ":8200"
  uint64_t max_header_size = 1048576;  // bytes of request line + headers; over: 431
  uint32_t max_header_fields = 100;    // header fields in one request; over: 431
  bool http2 = true;                   // offer h2 in ALPN / accept the h2c preface
  uint32_t http2_max_concurrent_streams = 100;  // SETTINGS_MAX_CONCURRENT_STREAMS
  Millis idle_timeout{45'000};                  // keep-alive idle between requests
  Millis read_timeout{3'600'000};               // whole request, first byte to last body byte
  Millis request_header_timeout{10'000};        // complete request head (slowloris guard): 408
  Millis write_timeout{30'000};                 // one write to the client may stall this long
  Millis shutdown_timeout{30'000};              // drain deadline after SIGTERM
  Millis shutdown_delay{0};                     // keep accepting this long after SIGTERM
  Millis tls_handshake_timeout{10'000};         // TLS handshake must complete within this
  uint32_t max_connections = 0;                 // 0 = unlimited; per process
  std::vector<Cidr> trusted_proxies;            // peers whose X-Forwarded-For is appended to
  uint32_t workers = 0;                         // 0 = CPUs usable by this process (cgroups)
};

// [upstream]: the plain-HTTP intake server.
struct UpstreamConfig {
  std::string url = "http://127.0.0.1:8201";  // "http://host:port" or "unix:/path"
  // Derived from url: exactly one of tcp / unix_path is set.
  std::optional<HostPort> tcp = HostPort{"127.0.0.1", 8201};
  std::string unix_path;
  Millis connect_timeout{5'000};
  Millis response_timeout{60'000};     // request fully sent -> first response byte: else 504
  uint32_t max_idle_connections = 64;  // per worker
  Millis idle_timeout{30'000};         // shorter than APM Server's own 45 s idle timeout
  // No byte read from or written to the upstream for this long once an exchange has
  // started: 504 before the response head, a cut connection after it. 0 = response_timeout.
  Millis stream_idle_timeout{0};
  uint32_t max_connections = 256;  // per worker; requests beyond wait in a queue
  uint32_t max_pending = 1024;     // per worker; queued requests beyond this get 503
  // The effective stream idle timeout.
  Millis streamIdleTimeout() const {
    return stream_idle_timeout.count() > 0 ? stream_idle_timeout : response_timeout;
  }
};

// [ssl.allowed_clients]: optional allow-list of verified client identities, checked
// during the handshake. Empty lists = no restriction. A client passes when any one
// entry of any list matches its leaf certificate.
struct AllowedClients {
  std::vector<std::string> common_names;          // subject CN, exact
  std::vector<std::string> organizational_units;  // subject OU, exact
  std::vector<std::string> dns_names;             // DNS SAN, exact or "*.example.com"
  std::vector<std::string> uris;                  // URI SAN, "*" matches one path segment
  std::vector<std::string> ip_addresses;          // IP SAN, exact address
  bool empty() const {
    return common_names.empty() && organizational_units.empty() && dns_names.empty() &&
           uris.empty() && ip_addresses.empty();
  }
};

// [ssl]: mirrors APM Server's apm-server.ssl.* (same names, values and defaults).
struct SslConfig {
  bool present = false;     // the [ssl] table exists in the file
  bool enabled = false;     // present && enabled != false
  std::string certificate;  // path or inline PEM (trimmed value starts with '-')
  std::string key;          // path or inline PEM
  std::string key_passphrase;
  std::string key_passphrase_path;
  std::vector<std::string> supported_protocols{"TLSv1.2", "TLSv1.3"};
  std::vector<std::string> cipher_suites;            // APM names; empty = Go's defaults
  std::vector<std::string> curve_types;              // empty = library defaults
  std::vector<std::string> certificate_authorities;  // paths or inline PEM
  ClientAuth client_authentication = ClientAuth::kNone;
  bool client_authentication_explicit = false;  // the key was written in the file
  VerificationMode verification_mode = VerificationMode::kFull;
  std::vector<std::string> ca_sha256;  // base64 SHA-256 of SubjectPublicKeyInfo DER
  AllowedClients allowed_clients;
  bool forward_client_cert = false;  // send X-Forwarded-Client-Cert upstream
  bool session_tickets = true;
  Millis session_ticket_rotation{3'600'000};  // new ticket key this often; previous kept
  bool wait_for_certificates = false;  // start before the files exist; not ready until loaded
  Millis reload_interval{60'000};      // periodic re-check of certificate files; 0 = off
};

// [admin]: plain-HTTP admin endpoint (/healthz, /readyz, /metrics). Off by default.
struct AdminConfig {
  std::optional<HostPort> host;  // unset = no admin listener
  bool ready_requires_upstream = false;
};

// [log]
struct LogConfig {
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kText;
  std::string access = "off";  // "off", "stderr", or a file path
};

struct Config {
  std::string file;  // path the config was loaded from
  ServerConfig server;
  UpstreamConfig upstream;
  SslConfig ssl;
  AdminConfig admin;
  LogConfig log;
  // Source position of every key written in the file, by dotted path, so that later
  // validation (e.g. TLS files) can report "FILE:LINE:COLUMN: key: message".
  std::map<std::string, SourcePos> positions;
  // Non-fatal findings of load() (e.g. deprecated values); printed by `check` and at start.
  std::vector<Problem> warnings;
  // Where each value written with ${VAR} came from, by dotted path ("ssl.key_passphrase",
  // "ssl.certificate_authorities[0]"): describeSource()'s text, which hides secrets.
  // toToml() prints it as a "# from ..." comment above the key.
  std::map<std::string, std::string> sources;

  // Makes a Problem for `key` at its recorded position, or at that of its nearest
  // written parent ("ssl.certificate" absent: the [ssl] header).
  Problem problemAt(const std::string& key, std::string message, bool warning = false) const;
};

// Loads and validates `path`. On failure returns *every* problem found (never just
// the first). Unknown keys are errors, with "did you mean" when a known key is close.
struct LoadResult {
  std::optional<Config> config;  // set on success
  // Empty on success (warnings are then in config->warnings). On failure: every error,
  // plus any warnings (warning = true), in file order.
  std::vector<Problem> problems;
};
LoadResult loadFile(const std::string& path);
// Same, from TOML text; `name` stands in for the file name in messages.
LoadResult loadString(const std::string& toml_text, const std::string& name);

// Parses "45s", "1m30s", "500ms", "1h", "0" (APM Server's Go duration spellings).
Result<Millis> parseDuration(const std::string& text);
// Formats a duration the way parseDuration reads it back ("45s", "1m30s", "500ms").
std::string formatDuration(Millis d);
// Parses "127.0.0.1:8200", "[::1]:8200", "localhost:8200", ":8200" (all interfaces).
Result<HostPort> parseHostPort(const std::string& text);
std::string formatHostPort(const HostPort& hp);

// Parses "10.0.0.0/8", "::1/128" or a bare address (a single host). Host bits are cleared.
Result<Cidr> parseCidr(const std::string& text);

// The effective configuration as TOML, with every default filled in (for `check`).
// loadString() reads it back to an equal Config, except that a non-empty key_passphrase,
// and an inline PEM key that came from a ${VAR}, are printed as "<redacted>", and
// client_authentication is always written out (so client_authentication_explicit
// becomes true).
std::string toToml(const Config& config);
// A TOML string literal for `s` (a basic string, or a multi-line one for inline PEM),
// written as is: a "${VAR}" in `s` stays a reference (escapeVariables() makes it literal).
std::string tomlString(const std::string& s);
// APM Server's rule for certificate, key and CA values: PEM text when the trimmed value
// starts with '-', else a file path.
bool isInlinePem(const std::string& value);

// One row of the table of known keys (proxy/config/keys.cc): the single list used for
// unknown-key detection, "did you mean", and the test that keeps docs/configuration.md
// in step with the code.
struct KeyInfo {
  const char* path;          // dotted key path: "server.idle_timeout"
  const char* type;          // "duration", "string", "integer", "array of strings", ...
  const char* default_text;  // as toToml() prints it ("\"45s\"", "[]"), or "(required)"
  const char* apm;           // APM Server equivalent ("apm-server.idle_timeout") or
                             // "(apm-tls-proxy only)"
  const char* description;   // one line
};
// Every key the loader accepts, in file order.
const std::vector<KeyInfo>& knownKeys();
// Every table the loader accepts: "server", "upstream", "ssl", "ssl.allowed_clients", ...
const std::vector<std::string>& knownTables();

const char* toString(ClientAuth v);
const char* toString(VerificationMode v);
const char* toString(LogLevel v);
const char* toString(LogFormat v);

}  // namespace proxy::config
