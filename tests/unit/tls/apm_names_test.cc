#include "proxy/tls/apm_names.h"

#include <openssl/ssl.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <memory>

#include "proxy/app/tls_options.h"

namespace proxy::tls {
namespace {

// Where the keys were written in a config file: app places tls's problems by their keys.
config::Config positions() {
  config::Config c;
  c.file = "apm.toml";
  c.positions["ssl.cipher_suites"] = {7, 17};
  c.positions["ssl.cipher_suites[2]"] = {7, 60};
  c.positions["ssl.curve_types"] = {8, 15};
  c.positions["ssl.supported_protocols"] = {9, 23};
  return c;
}
config::SourcePos posOf(const Problem& p) { return app::toConfigProblem(positions(), p).pos; }

TEST_CASE("APM protocol lists become a contiguous BoringSSL version range", "[unit][tls]") {
  ServerOptions c;
  std::vector<Problem> problems;
  SECTION("defaults") {
    c.supported_protocols.clear();
    auto r = mapProtocols(c, problems);
    CHECK(r.min_version == TLS1_2_VERSION);
    CHECK(r.max_version == TLS1_3_VERSION);
  }
  SECTION("a gap is filled, as APM Server does") {
    c.supported_protocols = {"TLSv1.3", "TLSv1.1"};
    auto r = mapProtocols(c, problems);
    CHECK(r.min_version == TLS1_1_VERSION);
    CHECK(r.max_version == TLS1_3_VERSION);
  }
  SECTION("both spellings of TLS 1.0") {
    for (const char* name : {"TLSv1", "TLSv1.0"}) {
      c.supported_protocols = {name};
      auto r = mapProtocols(c, problems);
      CHECK(r.min_version == TLS1_VERSION);
      CHECK(r.max_version == TLS1_VERSION);
    }
  }
  SECTION("SSLv3 and unknown names are errors at their index") {
    c.supported_protocols = {"TLSv1.2", "SSLv3", "TLSv1.4"};
    mapProtocols(c, problems);
    REQUIRE(problems.size() == 2);
    CHECK(problems[0].key == "ssl.supported_protocols[1]");
    CHECK(problems[0].message ==
          "unsupported TLS protocol \"SSLv3\": SSLv3 is insecure and not supported (APM "
          "Server rejects it too)");
    CHECK(posOf(problems[0]).line == 9);
    CHECK(problems[1].key == "ssl.supported_protocols[2]");
    CHECK(problems[1].message ==
          "unsupported TLS protocol \"TLSv1.4\"; valid values are TLSv1.0 (or TLSv1), TLSv1.1, "
          "TLSv1.2, TLSv1.3");
  }
  CHECK(std::string(protocolName(TLS1_3_VERSION)) == "TLSv1.3");
}

TEST_CASE("Every APM cipher name maps to BoringSSL or to a precise error", "[unit][tls]") {
  for (const auto& m : apmCipherTable()) {
    ServerOptions c;
    c.cipher_suites = {m.apm_name};
    std::vector<Problem> problems, warnings;
    std::string list = mapCipherSuites(c, problems, warnings).aes_first;
    INFO(m.apm_name);
    if (m.tls13) {
      CHECK(problems.empty());
      CHECK(list == cipherOrder(goDefaultSuites()).aes_first);
      REQUIRE(warnings.size() == 2);  // "fixed", then "only TLS 1.3 suites listed"
      CHECK(warnings[0].warning);
      CHECK(warnings[0].message.find("TLS 1.3 suites are fixed in BoringSSL") != std::string::npos);
      CHECK(warnings[0].message.find("cannot be switched off") != std::string::npos);
    } else if (m.boring_name && boringSupportsCipher(m.boring_name)) {
      CHECK(problems.empty());
      CHECK(list == m.boring_name);
    } else {
      CHECK(list == cipherOrder(goDefaultSuites()).aes_first);  // moot: the problem stops start-up
      REQUIRE(problems.size() == 1);
      CHECK(problems[0].key == "ssl.cipher_suites[0]");
      CHECK(problems[0].message.find("is not available") != std::string::npos);
    }
  }
}

TEST_CASE("Cipher suite errors name the value, the index and why", "[unit][tls]") {
  ServerOptions c;
  std::vector<Problem> problems, warnings;
  c.cipher_suites = {"ECDHE-RSA-AES-128-GCM-SHA256",
                     "ECDHE-RSA-CHACHA20-POLY1205",
                     "RSA-RC4-128-SHA",
                     "ECDHE-RSA-AES-128-CBC-SHA256",
                     "ECDHE-RSA-3DES-CBC3-SHA",
                     "NOT-A-CIPHER",
                     "RSA-3DES-CBC3-SHA",
                     "ECDHE-RSA-CHACHA20-POLY1305",
                     "TLS-AES-128-GCM-SHA256"};
  CipherOrder order = mapCipherSuites(c, problems, warnings);
  CHECK(order.aes_first == "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:DES-CBC3-SHA");
  CHECK(order.chacha_first ==
        "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:DES-CBC3-SHA");
  REQUIRE(problems.size() == 4);
  CHECK(problems[0].key == "ssl.cipher_suites[2]");
  CHECK(posOf(problems[0]).line == 7);
  CHECK(posOf(problems[0]).column == 60);
  CHECK(problems[0].message ==
        "cipher suite \"RSA-RC4-128-SHA\" is not available: RC4 is broken and BoringSSL does "
        "not implement it; remove it from the list");
  CHECK(app::toConfigProblem(positions(), problems[0]).format() ==
        "apm.toml:7:60: ssl.cipher_suites[2]: cipher suite \"RSA-RC4-128-SHA\" is not "
        "available: RC4 is broken and BoringSSL does not implement it; remove it from the list");
  CHECK(problems[1].key == "ssl.cipher_suites[3]");
  CHECK(posOf(problems[1]).line == 7);  // no position of its own: the list's
  CHECK(problems[1].message ==
        "cipher suite \"ECDHE-RSA-AES-128-CBC-SHA256\" (BoringSSL: ECDHE-RSA-AES128-SHA256) is "
        "not available: this BoringSSL build does not implement it; remove it from the list");
  CHECK(problems[2].message ==
        "cipher suite \"ECDHE-RSA-3DES-CBC3-SHA\" (BoringSSL: ECDHE-RSA-DES-CBC3-SHA) is not "
        "available: this BoringSSL build does not implement it; remove it from the list");
  CHECK(problems[3].key == "ssl.cipher_suites[5]");
  CHECK(problems[3].message ==
        "unknown cipher suite \"NOT-A-CIPHER\"; use APM Server's names, e.g. "
        "ECDHE-ECDSA-AES-128-GCM-SHA256 (all are listed in docs/tls.md)");
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0].key == "ssl.cipher_suites[6]");
  CHECK(warnings[0].message ==
        "\"RSA-3DES-CBC3-SHA\" uses 3DES, which is weak (64-bit blocks, Sweet32); it is "
        "enabled because it was asked for");
  CHECK(warnings[1].key == "ssl.cipher_suites[8]");
  CHECK(warnings[1].message ==
        "\"TLS-AES-128-GCM-SHA256\" is a TLS 1.3 suite: TLS 1.3 suites are fixed in BoringSSL "
        "(TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256 are "
        "always on) and cannot be switched off; ssl.cipher_suites only shapes TLS 1.2 and "
        "below");
}

TEST_CASE("An empty cipher list means Go's defaults, as APM Server's", "[unit][tls]") {
  ServerOptions c;
  std::vector<Problem> problems, warnings;
  CipherOrder order = mapCipherSuites(c, problems, warnings);
  CHECK(problems.empty());
  CHECK(warnings.empty());
  // Forward-secret suites only (no RSA key exchange, no 3DES), AEADs before CBC.
  CHECK(order.aes_first ==
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
        "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA");
  CHECK(order.chacha_first ==
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
        "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA");
  // BoringSSL takes both as they are: exactly those ten suites.
  for (const std::string* list : {&order.aes_first, &order.chacha_first}) {
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_method()), SSL_CTX_free);
    REQUIRE(SSL_CTX_set_strict_cipher_list(ctx.get(), list->c_str()) == 1);
    CHECK(sk_SSL_CIPHER_num(SSL_CTX_get_ciphers(ctx.get())) == 10);
  }
}

TEST_CASE("Listed suites are ordered as Go orders them, whatever the list's order", "[unit][tls]") {
  ServerOptions c;
  std::vector<Problem> problems, warnings;
  c.cipher_suites = {"RSA-AES-128-CBC-SHA",         "RSA-3DES-CBC3-SHA",
                     "ECDHE-RSA-AES-128-CBC-SHA",   "RSA-AES-256-GCM-SHA384",
                     "ECDHE-RSA-CHACHA20-POLY1305", "RSA-AES-128-GCM-SHA256",
                     "ECDHE-ECDSA-AES-256-CBC-SHA", "ECDHE-RSA-AES-256-GCM-SHA384"};
  CipherOrder order = mapCipherSuites(c, problems, warnings);
  CHECK(problems.empty());
  CHECK(order.aes_first ==
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-SHA:"
        "ECDHE-ECDSA-AES256-SHA:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:DES-CBC3-SHA");
  CHECK(order.chacha_first ==
        "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA:"
        "ECDHE-ECDSA-AES256-SHA:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:DES-CBC3-SHA");
  // Without a ChaCha20 suite there is one order only.
  c.cipher_suites = {"ECDHE-ECDSA-AES-128-CBC-SHA", "ECDHE-ECDSA-AES-128-GCM-SHA256"};
  order = mapCipherSuites(c, problems, warnings);
  CHECK(order.aes_first == "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA");
  CHECK(order.chacha_first.empty());
}

TEST_CASE("A client prefers AES-GCM when its first known suite is AES-GCM, as Go decides",
          "[unit][tls]") {
  auto prefers = [](std::vector<uint16_t> suites) {
    std::vector<uint8_t> wire;
    for (uint16_t s : suites) {
      wire.push_back(static_cast<uint8_t>(s >> 8));
      wire.push_back(static_cast<uint8_t>(s & 0xff));
    }
    return clientPrefersAesGcm(wire.data(), wire.size());
  };
  CHECK(prefers({0x1301, 0x1303, 0xc02b}));        // TLS_AES_128_GCM_SHA256 first
  CHECK(prefers({0x0a0a, 0xc02c, 0xcca9}));        // GREASE skipped, then AES-256-GCM
  CHECK_FALSE(prefers({0x1a1a, 0x1303, 0x1301}));  // ChaCha20 first
  CHECK_FALSE(prefers({0xcca9, 0xc02b}));          // ECDHE-ECDSA-CHACHA20 first
  CHECK_FALSE(prefers({0xc009, 0xc02b}));          // CBC first (Go: not AES-GCM)
  CHECK_FALSE(prefers({0x00ff, 0xfefe}));          // nothing known
  CHECK_FALSE(prefers({}));
}

TEST_CASE("Curve names map one to one: X25519MLKEM768 is refused clearly", "[unit][tls]") {
  ServerOptions c;
  std::vector<Problem> problems;
  c.curve_types = {"X25519", "P-256", "P-384", "P-521", "P-256"};
  CHECK(mapCurves(c, problems) == "X25519:P-256:P-384:P-521");
  CHECK(problems.empty());
  c.curve_types = {"X25519MLKEM768", "secp256r1"};
  CHECK(mapCurves(c, problems).empty());
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].key == "ssl.curve_types[0]");
  CHECK(posOf(problems[0]).line == 8);
  CHECK(problems[0].message ==
        "curve \"X25519MLKEM768\" is not available in this BoringSSL (it predates ML-KEM); use "
        "P-256, P-384, P-521 or X25519");
  CHECK(problems[1].message ==
        "unknown curve \"secp256r1\"; valid values are P-256, P-384, P-521, X25519");
}

}  // namespace
}  // namespace proxy::tls

namespace proxy::tls {
namespace {

TEST_CASE("docs/tls.md lists every APM cipher name with its real availability", "[unit][tls]") {
  std::ifstream f("docs/tls.md");
  if (!f) {
    WARN("docs/tls.md not found from the working directory; run from the repository root");
    return;
  }
  std::string doc((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  for (const auto& m : apmCipherTable()) {
    INFO(m.apm_name);
    std::string row_start = std::string("| `") + m.apm_name + "` | ";
    size_t at = doc.find(row_start);
    REQUIRE(at != std::string::npos);
    std::string row = doc.substr(at, doc.find('\n', at) - at);
    std::string availability = row.substr(row.rfind(" | ") + 3);
    if (m.tls13) {
      CHECK(availability == "TLS 1.3: always on |");
    } else if (m.boring_name && boringSupportsCipher(m.boring_name)) {
      CHECK(availability.rfind("yes", 0) == 0);
      CHECK(row.find(std::string("`") + m.boring_name + "`") != std::string::npos);
    } else {
      CHECK(availability == "no |");
    }
  }
}

}  // namespace
}  // namespace proxy::tls
