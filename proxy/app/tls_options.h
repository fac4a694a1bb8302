// The seam between the config module and tls (issue 13 item 1): tls takes plain
// tls::ServerOptions and reports tls::Problems keyed by [ssl] keys; app fills the one and
// places the other in the file. Header-only: main.cc and server.cc both build contexts.
#pragma once

#include <vector>

#include "proxy/config/config.h"
#include "proxy/tls/tls_options.h"

namespace proxy::app {

inline tls::ClientAuth toTls(config::ClientAuth mode) {
  switch (mode) {
    case config::ClientAuth::kNone:
      return tls::ClientAuth::kNone;
    case config::ClientAuth::kOptional:
      return tls::ClientAuth::kOptional;
    case config::ClientAuth::kRequired:
      return tls::ClientAuth::kRequired;
  }
  return tls::ClientAuth::kNone;
}

// [ssl] (and server.http2, which decides the ALPN offer) as TlsContext needs them.
inline tls::ServerOptions tlsOptions(const config::Config& config) {
  const config::SslConfig& ssl = config.ssl;
  tls::ServerOptions o;
  o.certificate = ssl.certificate;
  o.key = ssl.key;
  o.key_passphrase = ssl.key_passphrase;
  o.key_passphrase_path = ssl.key_passphrase_path;
  o.supported_protocols = ssl.supported_protocols;
  o.cipher_suites = ssl.cipher_suites;
  o.curve_types = ssl.curve_types;
  o.certificate_authorities = ssl.certificate_authorities;
  o.client_authentication = toTls(ssl.client_authentication);
  o.client_authentication_explicit = ssl.client_authentication_explicit;
  o.ca_sha256 = ssl.ca_sha256;
  const config::AllowedClients& a = ssl.allowed_clients;
  o.allowed_clients = {a.common_names, a.organizational_units, a.dns_names, a.uris, a.ip_addresses};
  o.session_tickets = ssl.session_tickets;
  o.session_ticket_rotation = ssl.session_ticket_rotation;
  o.http2 = config.server.http2;
  return o;
}

// A tls::Problem at the place its key was written ("ssl.cipher_suites[2]" at that element,
// else at the list, else at [ssl]: Config::problemAt walks up to the nearest written key).
inline config::Problem toConfigProblem(const config::Config& config, const tls::Problem& p) {
  return config.problemAt(p.key, p.message, p.warning);
}

inline std::vector<config::Problem> toConfigProblems(const config::Config& config,
                                                     const std::vector<tls::Problem>& problems) {
  std::vector<config::Problem> out;
  out.reserve(problems.size());
  for (const tls::Problem& p : problems) out.push_back(toConfigProblem(config, p));
  return out;
}

}  // namespace proxy::app
