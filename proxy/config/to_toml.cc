// Config -> TOML text: what `check` prints. Written by hand rather than with toml++'s
// formatter so that keys keep the documented order and durations keep their string form.
#include <cstdio>
#include <map>
#include <sstream>
#include <string>

#include "proxy/config/config.h"
#include "proxy/config/env_expand.h"

namespace proxy::config {

namespace {

// A TOML basic string (TOML v1.0.0 "String": escape ", \ and control characters).
std::string basicString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// A value as loaded: "$" doubled so that loading the output does not expand it again.
std::string stringValue(const std::string& s) { return tomlString(escapeVariables(s)); }

std::string stringArray(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    out += stringValue(values[i]);
  }
  return out + "]";
}

std::string duration(Millis d) { return "\"" + formatDuration(d) + "\""; }
std::string boolean(bool b) { return b ? "true" : "false"; }
std::string quote(const char* s) { return std::string("\"") + s + "\""; }

// Puts "# from ..." above each key whose value was written with ${VAR} (Config::sources).
// Lines inside a multi-line string are skipped; only "key = value" lines are keys.
std::string annotateSources(const std::string& text,
                            const std::map<std::string, std::string>& sources) {
  if (sources.empty()) return text;
  std::istringstream lines(text);
  std::ostringstream out;
  std::string line;
  std::string table;
  bool in_multiline = false;
  while (std::getline(lines, line)) {
    if (!in_multiline && !line.empty() && line[0] == '[') {
      table = line.substr(1, line.find(']') - 1);
    } else if (!in_multiline && line.find(" = ") != std::string::npos && line[0] != '#') {
      std::string key = table + "." + line.substr(0, line.find(" = "));
      for (auto it = sources.lower_bound(key);
           it != sources.end() && it->first.compare(0, key.size(), key) == 0; ++it) {
        const std::string& path = it->first;
        if (path == key) {
          out << "# from " << it->second << "\n";
        } else if (path[key.size()] == '[') {
          out << "# " << path.substr(key.size()) << " from " << it->second << "\n";
        }
      }
    }
    // An odd number of """ on a line opens or closes a multi-line string.
    size_t delimiters = 0;
    for (size_t at = line.find("\"\"\""); at != std::string::npos;
         at = line.find("\"\"\"", at + 3)) {
      ++delimiters;
    }
    if (delimiters % 2 == 1) in_multiline = !in_multiline;
    out << line << "\n";
  }
  return out.str();
}

// `key_from_variable`: ssl.key was written with ${VAR}; an inline PEM key from there is
// redacted like the passphrase.
std::string sslSection(const SslConfig& ssl, bool key_from_variable) {
  std::ostringstream out;
  out << "[ssl]\n";
  out << "enabled = " << boolean(ssl.present ? ssl.enabled : true) << "\n";
  // Empty only when TLS is off; an empty value would not load, so show it as a comment.
  if (ssl.certificate.empty()) {
    out << "# certificate is unset (required when TLS is on)\n";
  } else {
    out << "certificate = " << stringValue(ssl.certificate) << "\n";
  }
  if (ssl.key.empty()) {
    out << "# key is unset (required when TLS is on)\n";
  } else {
    out << "key = "
        << (isInlinePem(ssl.key) && key_from_variable ? "\"<redacted>\"" : stringValue(ssl.key))
        << "\n";
  }
  out << "key_passphrase = " << (ssl.key_passphrase.empty() ? "\"\"" : "\"<redacted>\"") << "\n";
  out << "key_passphrase_path = " << stringValue(ssl.key_passphrase_path) << "\n";
  out << "supported_protocols = " << stringArray(ssl.supported_protocols) << "\n";
  out << "cipher_suites = " << stringArray(ssl.cipher_suites) << "\n";
  out << "curve_types = " << stringArray(ssl.curve_types) << "\n";
  out << "certificate_authorities = " << stringArray(ssl.certificate_authorities) << "\n";
  out << "client_authentication = " << quote(toString(ssl.client_authentication));
  if (!ssl.client_authentication_explicit && !ssl.certificate_authorities.empty()) {
    out << "  # derived: certificate_authorities is set and this key was absent";
  }
  out << "\n";
  out << "verification_mode = " << quote(toString(ssl.verification_mode)) << "\n";
  out << "ca_sha256 = " << stringArray(ssl.ca_sha256) << "\n";
  out << "forward_client_cert = " << boolean(ssl.forward_client_cert) << "\n";
  out << "session_tickets = " << boolean(ssl.session_tickets) << "\n";
  out << "session_ticket_rotation = " << duration(ssl.session_ticket_rotation) << "\n";
  out << "wait_for_certificates = " << boolean(ssl.wait_for_certificates) << "\n";
  out << "reload_interval = " << duration(ssl.reload_interval) << "\n";
  const AllowedClients& a = ssl.allowed_clients;
  out << "\n[ssl.allowed_clients]\n";
  out << "common_names = " << stringArray(a.common_names) << "\n";
  out << "organizational_units = " << stringArray(a.organizational_units) << "\n";
  out << "dns_names = " << stringArray(a.dns_names) << "\n";
  out << "uris = " << stringArray(a.uris) << "\n";
  out << "ip_addresses = " << stringArray(a.ip_addresses) << "\n";
  return out.str();
}

}  // namespace

// Inline PEM reads best as a multi-line string. Used only when the text needs no escaping
// at all, so that it reads back byte for byte (the newline right after the opening
// delimiter is trimmed by TOML; \r is left to basicString so no parser normalises it).
std::string tomlString(const std::string& s) {
  if (s.find('\n') == std::string::npos) return basicString(s);
  for (char c : s) {
    bool plain =
        c == '\n' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7F && c != '"' && c != '\\');
    if (!plain) return basicString(s);
  }
  return "\"\"\"\n" + s + "\"\"\"";
}

bool isInlinePem(const std::string& value) {
  size_t first = value.find_first_not_of(" \t\r\n");
  return first != std::string::npos && value[first] == '-';
}

std::string toToml(const Config& config) {
  std::ostringstream out;
  out << "# Effective configuration";
  if (!config.file.empty()) out << " of " << config.file;
  out << ", every default filled in.\n\n";

  const ServerConfig& s = config.server;
  out << "[server]\n";
  out << "host = " << stringValue(formatHostPort(s.host)) << "\n";
  out << "max_header_size = " << s.max_header_size << "\n";
  out << "max_header_fields = " << s.max_header_fields << "\n";
  out << "http2 = " << (s.http2 ? "true" : "false") << "\n";
  out << "http2_max_concurrent_streams = " << s.http2_max_concurrent_streams << "\n";
  out << "idle_timeout = " << duration(s.idle_timeout) << "\n";
  out << "read_timeout = " << duration(s.read_timeout) << "\n";
  out << "request_header_timeout = " << duration(s.request_header_timeout) << "\n";
  out << "write_timeout = " << duration(s.write_timeout) << "\n";
  out << "shutdown_timeout = " << duration(s.shutdown_timeout) << "\n";
  out << "shutdown_delay = " << duration(s.shutdown_delay) << "\n";
  out << "tls_handshake_timeout = " << duration(s.tls_handshake_timeout) << "\n";
  out << "max_connections = " << s.max_connections << "\n";
  std::vector<std::string> proxies;
  for (const Cidr& c : s.trusted_proxies) proxies.push_back(c.text);
  out << "trusted_proxies = " << stringArray(proxies) << "\n";
  out << "workers = " << s.workers << "\n\n";

  const UpstreamConfig& u = config.upstream;
  out << "[upstream]\n";
  out << "url = " << stringValue(u.url) << "\n";
  out << "connect_timeout = " << duration(u.connect_timeout) << "\n";
  out << "response_timeout = " << duration(u.response_timeout) << "\n";
  out << "max_idle_connections = " << u.max_idle_connections << "\n";
  out << "idle_timeout = " << duration(u.idle_timeout) << "\n";
  out << "stream_idle_timeout = " << duration(u.stream_idle_timeout) << "\n";
  out << "max_connections = " << u.max_connections << "\n";
  out << "max_pending = " << u.max_pending << "\n\n";

  std::string ssl = sslSection(config.ssl, config.sources.count("ssl.key") > 0);
  if (config.ssl.present) {
    out << ssl << "\n";
  } else {
    // Writing [ssl] would turn TLS on, so show its defaults as comments.
    out << "# No [ssl] table: TLS is off and the proxy serves plain HTTP. With the table\n"
           "# present, these are its defaults (certificate and key are required):\n";
    std::istringstream lines(ssl);
    std::string line;
    while (std::getline(lines, line)) out << (line.empty() ? "#" : "# " + line) << "\n";
    out << "\n";
  }

  out << "[admin]\n";
  if (config.admin.host) {
    out << "host = " << stringValue(formatHostPort(*config.admin.host)) << "\n";
  } else {
    out << "# host is unset: the admin endpoint is off (e.g. host = \"127.0.0.1:9900\")\n";
  }
  out << "ready_requires_upstream = " << boolean(config.admin.ready_requires_upstream) << "\n\n";

  out << "[log]\n";
  out << "level = " << quote(toString(config.log.level)) << "\n";
  out << "format = " << quote(toString(config.log.format)) << "\n";
  out << "access = " << stringValue(config.log.access) << "\n";
  return annotateSources(out.str(), config.sources);
}

}  // namespace proxy::config
