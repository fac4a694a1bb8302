#include "proxy/tls/identity.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/digest.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>

namespace proxy::tls {
namespace {

std::string asn1String(const ASN1_STRING* s) {
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return {};
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

void subjectEntries(const X509_NAME* name, int nid, std::vector<std::string>& out) {
  for (int i = -1; (i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0;) {
    out.push_back(asn1String(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i))));
  }
}

// Parses an IPv4 or IPv6 literal into 16 bytes (IPv4 in the first 4); false if neither.
bool parseIp(std::string_view text, unsigned char out[16], int& family) {
  std::string s(text);
  std::memset(out, 0, 16);
  if (inet_pton(AF_INET, s.c_str(), out) == 1) {
    family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out) == 1) {
    family = AF_INET6;
    return true;
  }
  return false;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) return false;
  }
  return true;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

}  // namespace

ClientIdentity identityOf(const X509* cert) {
  ClientIdentity id;
  if (cert == nullptr) return id;
  const X509_NAME* subject = X509_get_subject_name(cert);
  subjectEntries(subject, NID_commonName, id.common_names);
  subjectEntries(subject, NID_organizationalUnitName, id.organizational_units);
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return id;
  for (size_t i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    switch (gn->type) {
      case GEN_DNS:
        id.dns_names.push_back(asn1String(gn->d.dNSName));
        break;
      case GEN_URI:
        id.uris.push_back(asn1String(gn->d.uniformResourceIdentifier));
        break;
      case GEN_IPADD: {
        const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
        char buf[INET6_ADDRSTRLEN] = {};
        int len = ASN1_STRING_length(ip);
        int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
        if (family != 0 && inet_ntop(family, ASN1_STRING_get0_data(ip), buf, sizeof buf)) {
          id.ip_addresses.emplace_back(buf);
        }
        break;
      }
      default:
        break;
    }
  }
  GENERAL_NAMES_free(names);
  return id;
}

bool dnsPatternMatches(std::string_view pattern, std::string_view name) {
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    // RFC 6125 §6.4.3: the wildcard stands for exactly one whole left-most label.
    size_t dot = name.find('.');
    if (dot == 0 || dot == std::string_view::npos) return false;
    return iequals(pattern.substr(1), name.substr(dot));
  }
  return iequals(pattern, name);
}

bool uriPatternMatches(std::string_view pattern, std::string_view uri) {
  if (pattern.find('*') == std::string_view::npos) return pattern == uri;
  auto p = split(pattern, '/');
  auto u = split(uri, '/');
  if (p.size() != u.size()) return false;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == "*") {
      if (u[i].empty()) return false;
    } else if (p[i] != u[i]) {
      return false;
    }
  }
  return true;
}

bool ipMatches(std::string_view allowed, std::string_view ip) {
  unsigned char a[16], b[16];
  int fa = 0, fb = 0;
  if (!parseIp(allowed, a, fa) || !parseIp(ip, b, fb)) return false;
  return fa == fb && std::memcmp(a, b, 16) == 0;
}

bool isAllowed(const AllowedClients& allowed, const ClientIdentity& id) {
  if (allowed.empty()) return true;
  for (const auto& want : allowed.common_names) {
    for (const auto& cn : id.common_names) {
      if (cn == want) return true;
    }
  }
  for (const auto& want : allowed.organizational_units) {
    for (const auto& ou : id.organizational_units) {
      if (ou == want) return true;
    }
  }
  for (const auto& pattern : allowed.dns_names) {
    for (const auto& dns : id.dns_names) {
      if (dnsPatternMatches(pattern, dns)) return true;
    }
  }
  for (const auto& pattern : allowed.uris) {
    for (const auto& uri : id.uris) {
      if (uriPatternMatches(pattern, uri)) return true;
    }
  }
  for (const auto& want : allowed.ip_addresses) {
    for (const auto& ip : id.ip_addresses) {
      if (ipMatches(want, ip)) return true;
    }
  }
  return false;
}

std::vector<Problem> validateAllowedClients(const AllowedClients& allowed) {
  std::vector<Problem> problems;
  auto bad = [&](const char* list, size_t i, std::string msg) {
    problems.push_back(
        Problem{std::string("ssl.allowed_clients.") + list + "[" + std::to_string(i) + "]",
                std::move(msg)});
  };
  for (size_t i = 0; i < allowed.dns_names.size(); ++i) {
    const std::string& d = allowed.dns_names[i];
    bool wildcard = d.size() > 2 && d[0] == '*' && d[1] == '.';
    if (d.empty() || d.find('*', wildcard ? 1 : 0) != std::string::npos) {
      bad("dns_names", i,
          "\"" + d +
              "\" is not a DNS name; a wildcard is allowed only as a whole first label "
              "(\"*.example.com\")");
    }
  }
  for (size_t i = 0; i < allowed.uris.size(); ++i) {
    const std::string& u = allowed.uris[i];
    bool ok = !u.empty();
    for (auto seg : split(u, '/')) {
      if (seg != "*" && seg.find('*') != std::string_view::npos) ok = false;
    }
    if (!ok) {
      bad("uris", i,
          "\"" + u +
              "\": '*' must stand for a whole path segment, as in "
              "\"spiffe://cluster.local/ns/*/sa/apm-agent\"");
    }
  }
  for (size_t i = 0; i < allowed.ip_addresses.size(); ++i) {
    unsigned char buf[16];
    int family = 0;
    if (!parseIp(allowed.ip_addresses[i], buf, family)) {
      bad("ip_addresses", i, "\"" + allowed.ip_addresses[i] + "\" is not an IPv4 or IPv6 address");
    }
  }
  for (size_t i = 0; i < allowed.common_names.size(); ++i) {
    if (allowed.common_names[i].empty()) bad("common_names", i, "empty common name");
  }
  for (size_t i = 0; i < allowed.organizational_units.size(); ++i) {
    if (allowed.organizational_units[i].empty()) {
      bad("organizational_units", i, "empty organizational unit");
    }
  }
  return problems;
}

std::string subjectRfc2253(const X509* cert) {
  if (cert == nullptr) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  std::string out;
  // XN_FLAG_RFC2253 escapes ',', '+', '"', '\\', '<', '>', ';' as RFC 2253 §2.4 asks and
  // prints the most specific RDN first, as Envoy's Subject= does.
  if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
    const uint8_t* data = nullptr;
    size_t len = 0;
    // The flags escape control bytes already; appendPrintable is the belt to those braces.
    if (BIO_mem_contents(bio, &data, &len)) {
      appendPrintable(out, std::string_view(reinterpret_cast<const char*>(data), len));
    }
  }
  BIO_free(bio);
  return out;
}

std::string sansString(const ClientIdentity& id) {
  std::string out;
  auto add = [&](const char* tag, const std::vector<std::string>& values) {
    for (const auto& v : values) {
      if (!out.empty()) out += ',';
      out += tag;
      appendPrintable(out, v);
    }
  };
  add("DNS:", id.dns_names);
  add("URI:", id.uris);
  add("IP:", id.ip_addresses);
  return out;
}

void appendPrintable(std::string& out, std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    // A certificate field is attacker-chosen bytes (an IA5String may hold CR and LF).
    // Copied raw into a header it would split it and inject fields upstream, so control
    // and non-ASCII bytes leave as %XX (RFC 3986 percent-encoding, already the norm in URIs).
    if (c < 0x20 || c >= 0x7f) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
}

std::string xfccValue(std::string_view v, bool always_quote) {
  // Envoy's header doc: "values containing , ; = must be double-quoted; a double quote
  // inside is escaped with a backslash".
  bool quote = always_quote || v.find_first_of(",;=\"\\") != std::string_view::npos;
  std::string out;
  out.reserve(v.size() + 2);
  if (quote) out += '"';
  for (char c : v) {
    if (quote && (c == '"' || c == '\\')) out += '\\';
    appendPrintable(out, std::string_view(&c, 1));
  }
  if (quote) out += '"';
  return out;
}

std::string forwardedClientCert(const X509* cert, const ClientIdentity& id) {
  if (cert == nullptr) return {};
  uint8_t* der = nullptr;
  int der_len = i2d_X509(const_cast<X509*>(cert), &der);
  if (der_len <= 0) return {};
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(der_len), digest);
  OPENSSL_free(der);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "Hash=";
  for (uint8_t b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  out += ";Subject=" + xfccValue(subjectRfc2253(cert), true);
  for (const auto& uri : id.uris) out += ";URI=" + xfccValue(uri);
  for (const auto& dns : id.dns_names) out += ";DNS=" + xfccValue(dns);
  return out;
}

}  // namespace proxy::tls
