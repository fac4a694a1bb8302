// Plain values a TlsContext is built from: what [ssl] says, without the config module
// (issue 13 item 1: tls depends on common only). proxy/app fills ServerOptions from
// config::SslConfig and turns each Problem back into a "FILE:LINE:COLUMN: key: message".
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace proxy::tls {

// Whether clients must, may or need not present a certificate.
enum class ClientAuth { kNone, kOptional, kRequired };
// "none", "optional", "required": APM Server's spelling, as the config file writes it.
const char* toString(ClientAuth mode);

// Who may connect once the chain verified ([ssl.allowed_clients]); empty = everyone.
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

// Everything the server context needs. Names and meanings are those of [ssl]
// (docs/configuration.md); "path or PEM" values hold a file path or the PEM itself.
struct ServerOptions {
  std::string certificate;  // path or inline PEM: leaf first, then intermediates
  std::string key;          // path or inline PEM
  std::string key_passphrase;
  std::string key_passphrase_path;
  std::vector<std::string> supported_protocols{"TLSv1.2", "TLSv1.3"};  // APM spellings
  std::vector<std::string> cipher_suites;            // APM names; empty = Go's defaults
  std::vector<std::string> curve_types;              // empty = library defaults
  std::vector<std::string> certificate_authorities;  // paths or inline PEM
  ClientAuth client_authentication = ClientAuth::kNone;
  bool client_authentication_explicit = false;  // set by the user, not defaulted
  std::vector<std::string> ca_sha256;           // base64 SHA-256 of SubjectPublicKeyInfo DER
  AllowedClients allowed_clients;
  bool session_tickets = true;
  std::chrono::milliseconds session_ticket_rotation{3'600'000};
  bool http2 = true;  // ALPN offers h2 before http/1.1 (server.http2)
};

// One error or warning about the options, tagged with the [ssl] key it is about:
// "ssl.key", "ssl.cipher_suites[2]", "ssl.allowed_clients.dns_names[0]". The caller knows
// where each key was written and says so.
struct Problem {
  std::string key;
  std::string message;
  bool warning = false;
};

}  // namespace proxy::tls
