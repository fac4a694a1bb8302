// Client identity: what a verified client certificate says about its holder (subject
// CN/OU, DNS/URI/IP SANs), the [ssl.allowed_clients] matching rules, and the strings
// handed upstream (RFC 2253 subject, "DNS:a,URI:b" SANs, X-Forwarded-Client-Cert).
// Pure code used by TlsSession during the handshake; no SSL*, no sockets.
#pragma once

#include <openssl/base.h>

#include <string>
#include <string_view>
#include <vector>

#include "proxy/tls/tls_options.h"

namespace proxy::tls {

// The identity fields of one certificate, in certificate order.
struct ClientIdentity {
  std::vector<std::string> common_names;
  std::vector<std::string> organizational_units;
  std::vector<std::string> dns_names;
  std::vector<std::string> uris;
  std::vector<std::string> ip_addresses;  // canonical text ("10.0.0.1", "::1")
};

// Reads subject CN/OU and the subjectAltName entries of `cert`.
ClientIdentity identityOf(const X509* cert);

// "*.example.com" matches exactly one extra leftmost label ("a.example.com", not
// "example.com" nor "a.b.example.com"); otherwise an exact, case-insensitive match.
bool dnsPatternMatches(std::string_view pattern, std::string_view name);
// "*" as a whole '/'-separated segment matches exactly one non-empty segment
// ("spiffe://cluster.local/ns/*/sa/apm-agent"); everything else compares exactly.
bool uriPatternMatches(std::string_view pattern, std::string_view uri);
// True when both texts parse as the same IPv4 or IPv6 address.
bool ipMatches(std::string_view allowed, std::string_view ip);
// True when any entry of any list matches `id`, or when `allowed` is empty.
bool isAllowed(const AllowedClients& allowed, const ClientIdentity& id);
// Checks the patterns themselves (IP entries must be addresses, '*' only where it
// works); one Problem per bad entry, tagged "ssl.allowed_clients.<list>[i]".
std::vector<Problem> validateAllowedClients(const AllowedClients& allowed);

// RFC 2253 form of `cert`'s subject ("CN=agent,OU=apm,O=Example").
std::string subjectRfc2253(const X509* cert);
// Appends `v` with control bytes (< 0x20, DEL) and non-ASCII bytes percent-encoded as
// %XX, so that no certificate field can break a header or a log line.
void appendPrintable(std::string& out, std::string_view v);
// "DNS:a,URI:b,IP:c" in certificate order (values through appendPrintable).
std::string sansString(const ClientIdentity& id);
// Envoy's x-forwarded-client-cert element for `cert`:
// Hash=<hex SHA-256 of DER>;Subject="...";URI=...;DNS=...  (one URI=/DNS= per SAN).
// A value containing ',', ';', '=', '"' or a backslash is double-quoted with '"' and backslashes
// backslash-escaped; control and non-ASCII bytes are percent-encoded (appendPrintable).
std::string forwardedClientCert(const X509* cert, const ClientIdentity& id);
// Quotes `v` as X-Forwarded-Client-Cert requires (see above); returns it bare otherwise.
std::string xfccValue(std::string_view v, bool always_quote = false);

}  // namespace proxy::tls
