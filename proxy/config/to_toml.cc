// Config -> TOML text: what `check` prints. Written by hand rather than with toml++'s
// formatter so that keys keep the documented order and durations keep their string form.
#include <cstdio>
#include <sstream>
#include <string>

#include "proxy/config/config.h"

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

// Inline PEM reads best as a multi-line string. Used only when the text needs no escaping
// at all, so that it reads back byte for byte (the newline right after the opening
// delimiter is trimmed by TOML; \r is left to basicString so no parser normalises it).
std::string stringValue(const std::string& s) {
  if (s.find('\n') == std::string::npos) return basicString(s);
  for (char c : s) {
    bool plain =
        c == '\n' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7F && c != '"' && c != '\\');
    if (!plain) return basicString(s);
  }
  return "\"\"\"\n" + s + "\"\"\"";
}

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

std::string sslSection(const SslConfig& ssl) {
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
    out << "key = " << stringValue(ssl.key) << "\n";
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

std::string toToml(const Config& config) {
  std::ostringstream out;
  out << "# Effective configuration";
  if (!config.file.empty()) out << " of " << config.file;
  out << ", every default filled in.\n\n";

  const ServerConfig& s = config.server;
  out << "[server]\n";
  out << "host = " << basicString(formatHostPort(s.host)) << "\n";
  out << "max_header_size = " << s.max_header_size << "\n";
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
  out << "url = " << basicString(u.url) << "\n";
  out << "connect_timeout = " << duration(u.connect_timeout) << "\n";
  out << "response_timeout = " << duration(u.response_timeout) << "\n";
  out << "max_idle_connections = " << u.max_idle_connections << "\n";
  out << "idle_timeout = " << duration(u.idle_timeout) << "\n\n";

  std::string ssl = sslSection(config.ssl);
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
    out << "host = " << basicString(formatHostPort(*config.admin.host)) << "\n";
  } else {
    out << "# host is unset: the admin endpoint is off (e.g. host = \"127.0.0.1:9900\")\n";
  }
  out << "ready_requires_upstream = " << boolean(config.admin.ready_requires_upstream) << "\n\n";

  out << "[log]\n";
  out << "level = " << quote(toString(config.log.level)) << "\n";
  out << "format = " << quote(toString(config.log.format)) << "\n";
  out << "access = " << basicString(config.log.access) << "\n";
  return out.str();
}

}  // namespace proxy::config
