#include "proxy/tls/identity.h"

#include <openssl/x509v3.h>

#include <catch2/catch.hpp>

#include "proxy/app/tls_options.h"
#include "tests/unit/tls/tls_test_support.h"

namespace proxy::tls {
namespace {

TEST_CASE("DNS patterns: exact or one wildcard label", "[unit][tls]") {
  CHECK(dnsPatternMatches("agent.example.com", "agent.example.com"));
  CHECK(dnsPatternMatches("Agent.Example.com", "agent.example.COM"));
  CHECK_FALSE(dnsPatternMatches("agent.example.com", "agent.example.org"));
  CHECK(dnsPatternMatches("*.example.com", "a.example.com"));
  CHECK_FALSE(dnsPatternMatches("*.example.com", "example.com"));
  CHECK_FALSE(dnsPatternMatches("*.example.com", "a.b.example.com"));
  CHECK_FALSE(dnsPatternMatches("*.example.com", ".example.com"));
  CHECK_FALSE(dnsPatternMatches("*.example.com", "aexample.com"));
}

TEST_CASE("URI patterns: '*' stands for exactly one path segment", "[unit][tls]") {
  const char* spiffe = "spiffe://cluster.local/ns/*/sa/apm-agent";
  CHECK(uriPatternMatches(spiffe, "spiffe://cluster.local/ns/prod/sa/apm-agent"));
  CHECK_FALSE(uriPatternMatches(spiffe, "spiffe://cluster.local/ns/prod/x/sa/apm-agent"));
  CHECK_FALSE(uriPatternMatches(spiffe, "spiffe://cluster.local/ns//sa/apm-agent"));
  CHECK_FALSE(uriPatternMatches(spiffe, "spiffe://cluster.local/ns/prod/sa/other"));
  CHECK_FALSE(uriPatternMatches(spiffe, "spiffe://other.local/ns/prod/sa/apm-agent"));
  CHECK(uriPatternMatches("spiffe://*/ns/a/sa/b", "spiffe://any.domain/ns/a/sa/b"));
  CHECK(uriPatternMatches("spiffe://td/ns/a/sa/*", "spiffe://td/ns/a/sa/b"));
  CHECK(uriPatternMatches("spiffe://td/x", "spiffe://td/x"));
  CHECK_FALSE(uriPatternMatches("spiffe://td/x", "spiffe://td/x/"));
}

TEST_CASE("IP entries compare as addresses, not text", "[unit][tls]") {
  CHECK(ipMatches("10.0.0.1", "10.0.0.1"));
  CHECK(ipMatches("fd00::1", "fd00:0:0::1"));
  CHECK_FALSE(ipMatches("10.0.0.1", "10.0.0.2"));
  CHECK_FALSE(ipMatches("::ffff:10.0.0.1", "10.0.0.1"));
  CHECK_FALSE(ipMatches("not-an-ip", "10.0.0.1"));
}

TEST_CASE("A client is allowed when any entry of any list matches", "[unit][tls]") {
  ClientIdentity id;
  id.common_names = {"agent-7"};
  id.organizational_units = {"observability"};
  id.dns_names = {"agent-7.apm.example.com"};
  id.uris = {"spiffe://cluster.local/ns/prod/sa/apm-agent"};
  id.ip_addresses = {"10.1.2.3"};
  AllowedClients allowed;
  CHECK(isAllowed(allowed, id));  // empty = no restriction
  allowed.common_names = {"agent-8"};
  CHECK_FALSE(isAllowed(allowed, id));
  SECTION("CN") {
    allowed.common_names.push_back("agent-7");
    CHECK(isAllowed(allowed, id));
  }
  SECTION("OU") {
    allowed.organizational_units = {"observability"};
    CHECK(isAllowed(allowed, id));
  }
  SECTION("DNS wildcard") {
    allowed.dns_names = {"*.apm.example.com"};
    CHECK(isAllowed(allowed, id));
  }
  SECTION("URI wildcard") {
    allowed.uris = {"spiffe://cluster.local/ns/*/sa/apm-agent"};
    CHECK(isAllowed(allowed, id));
  }
  SECTION("IP") {
    allowed.ip_addresses = {"10.1.2.3"};
    CHECK(isAllowed(allowed, id));
  }
  SECTION("near misses") {
    allowed.organizational_units = {"Observability"};
    allowed.dns_names = {"*.example.com"};
    allowed.uris = {"spiffe://cluster.local/ns/*/sa/other"};
    allowed.ip_addresses = {"10.1.2.4"};
    CHECK_FALSE(isAllowed(allowed, id));
  }
}

TEST_CASE("Allow-list entries that can never match are config errors", "[unit][tls]") {
  config::Config where;  // app places each problem where its list was written
  where.file = "x.toml";
  where.positions["ssl.allowed_clients.uris"] = {12, 8};
  AllowedClients c;
  c.uris = {"spiffe://td/ns/a*/sa/b", "spiffe://td/ns/*/sa/b"};
  c.dns_names = {"a.*.example.com"};
  c.ip_addresses = {"10.0.0.300"};
  auto problems = validateAllowedClients(c);
  REQUIRE(problems.size() == 3);
  CHECK(problems[0].key == "ssl.allowed_clients.dns_names[0]");
  CHECK(problems[1].key == "ssl.allowed_clients.uris[0]");
  CHECK(app::toConfigProblem(where, problems[1]).pos.line == 12);
  CHECK(problems[1].message ==
        "\"spiffe://td/ns/a*/sa/b\": '*' must stand for a whole path segment, as in "
        "\"spiffe://cluster.local/ns/*/sa/apm-agent\"");
  CHECK(problems[2].message == "\"10.0.0.300\" is not an IPv4 or IPv6 address");
}

TEST_CASE("X-Forwarded-Client-Cert values are quoted as Envoy does", "[unit][tls]") {
  CHECK(xfccValue("spiffe://td/ns/a") == "spiffe://td/ns/a");
  CHECK(xfccValue("a,b") == "\"a,b\"");
  CHECK(xfccValue("a;b") == "\"a;b\"");
  CHECK(xfccValue("a=b") == "\"a=b\"");
  CHECK(xfccValue("say \"hi\"") == "\"say \\\"hi\\\"\"");
  CHECK(xfccValue("plain", true) == "\"plain\"");
  ClientIdentity id;
  id.dns_names = {"a.example.com"};
  id.uris = {"spiffe://td/x"};
  id.ip_addresses = {"10.0.0.1", "::1"};
  CHECK(sansString(id) == "DNS:a.example.com,URI:spiffe://td/x,IP:10.0.0.1,IP:::1");
}

TEST_CASE("No certificate field can inject a header through X-Forwarded-Client-Cert",
          "[unit][tls]") {
  CHECK(xfccValue("a\r\nX-Evil: 1") == "a%0D%0AX-Evil: 1");
  CHECK(xfccValue("q\"\x01;") == "\"q\\\"%01;\"");
  CHECK(xfccValue("back\\slash") == "\"back\\\\slash\"");
  CHECK(xfccValue("caf\xc3\xa9\x7f") == "caf%C3%A9%7F");

  certutil::CertSpec spec;
  spec.subject = "CN=agent";
  spec.client_auth = true;
  spec.uris = {"spiffe://td/x"};
  certutil::Issued leaf = testing::clientCert(spec);
  // certutil refuses such a URI; a hostile CA does not. Replace the SAN in place (the
  // signature no longer matters: identity formatting runs after verification).
  const std::string evil = "spiffe://td/x\r\nX-Injected: yes";
  GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
  GENERAL_NAME* name = GENERAL_NAME_new();
  ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
  REQUIRE(ASN1_STRING_set(ia5, evil.data(), static_cast<int>(evil.size())) == 1);
  GENERAL_NAME_set0_value(name, GEN_URI, ia5);
  REQUIRE(sk_GENERAL_NAME_push(names, name) != 0);
  REQUIRE(X509_add1_ext_i2d(leaf.cert.get(), NID_subject_alt_name, names, 0, X509V3_ADD_REPLACE) ==
          1);
  GENERAL_NAMES_free(names);
  ClientIdentity id = identityOf(leaf.cert.get());
  REQUIRE(id.uris.size() == 1);
  std::string xfcc = forwardedClientCert(leaf.cert.get(), id);
  id.dns_names = {"a.example.com\nX-Other: 1"};  // certutil refuses such a name; others may not
  std::string sans = sansString(id);
  for (const std::string* s : {&xfcc, &sans}) {
    INFO(*s);
    for (char c : *s) CHECK((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
  }
  CHECK(xfcc.find(";URI=spiffe://td/x%0D%0AX-Injected: yes") != std::string::npos);
  CHECK(sans.find("DNS:a.example.com%0AX-Other: 1") != std::string::npos);
}

}  // namespace
}  // namespace proxy::tls
