// TLS versions, cipher suites, curves and the served chain, against the real proxy with
// openssl s_client, curl and a BoringSSL client: each setting accepted and refused as
// configured, with the refusal logged and counted under its reason.
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"
#include "tests/integration/tls_support.h"

namespace proxy::integration::tls {
namespace {

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

size_t countOf(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

std::string url(const TlsStack& stack, const std::string& host = "127.0.0.1",
                const std::string& path = "/") {
  return "https://" + host + ":" + std::to_string(stack.port()) + path;
}

// curl against the proxy; `extra` goes before the URL. Prints only the status code.
RunResult curl(const TlsStack& stack, std::vector<std::string> extra, const std::string& name,
               const std::string& target_url = "") {
  std::vector<std::string> argv{
      toolPath("curl"), "-sS",        "-o", "/dev/null", "-w",
      "%{http_code}",   "--max-time", "10", "--cacert",  stack.pki.root_path};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(target_url.empty() ? url(stack) : target_url);
  return runToCompletion(argv, stack.dir, name, Millis{15000});
}

// openssl s_client against the proxy (stdin is /dev/null, so it closes after the
// handshake); `extra` are further options.
RunResult sClient(const TlsStack& stack, std::vector<std::string> extra, const std::string& name) {
  std::vector<std::string> argv{
      toolPath("openssl"),   "s_client",  "-connect", "127.0.0.1:" + std::to_string(stack.port()),
      "-servername",         "localhost", "-CAfile",  stack.pki.root_path,
      "-verify_return_error"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return runToCompletion(argv, stack.dir, name, Millis{15000});
}

Response getThrough(TlsClient& client) { return client.exchange(httpRequest("GET", "/")); }

TEST_CASE("Default protocols accept TLS 1.2 and 1.3 and refuse TLS 1.1", "[integration][tls]") {
  TlsStack stack;

  SECTION("TLS 1.3 by default, ALPN http/1.1, 200 through the proxy") {
    TlsClient client(stack.port(), stack.clientOptions());
    Response r = getThrough(client);
    INFO(client.error());
    CHECK(r.status == 200);
    CHECK(client.version() == TLS1_3_VERSION);
    CHECK(client.alpn() == "http/1.1");
    CHECK(client.verifyResult() == X509_V_OK);
  }
  SECTION("TLS 1.2 when the client offers at most 1.2") {
    ClientOptions options = stack.clientOptions();
    options.max_version = TLS1_2_VERSION;
    TlsClient client(stack.port(), options);
    Response r = getThrough(client);
    INFO(client.error());
    CHECK(r.status == 200);
    CHECK(client.version() == TLS1_2_VERSION);
    CHECK(client.alpn() == "http/1.1");
  }
  SECTION("a TLS 1.1-only client gets a protocol_version alert") {
    ClientOptions options = stack.clientOptions();
    options.min_version = TLS1_VERSION;
    options.max_version = TLS1_1_VERSION;
    TlsClient client(stack.port(), options);
    CHECK_FALSE(client.handshake());
    INFO(client.error());
    CHECK(client.alert() == SSL_AD_PROTOCOL_VERSION);
    stack.expectFailureRecorded("protocol_version");
  }
  SECTION("openssl s_client -tls1_3 and -tls1_2 both connect and verify the chain") {
    RunResult r13 = sClient(stack, {"-tls1_3"}, "s_client13");
    INFO(r13.out << r13.err);
    CHECK(r13.exit_code == 0);
    CHECK(contains(r13.out, "TLSv1.3"));
    CHECK(contains(r13.out, "Verify return code: 0 (ok)"));
    RunResult r12 = sClient(stack, {"-tls1_2"}, "s_client12");
    INFO(r12.out << r12.err);
    CHECK(r12.exit_code == 0);
    CHECK(contains(r12.out, "TLSv1.2"));
  }
  SECTION("curl with --tlsv1.2 --tls-max 1.2 gets a 2xx, and posts events") {
    RunResult get = curl(stack, {"--tlsv1.2", "--tls-max", "1.2"}, "curl12");
    INFO(get.out << get.err);
    CHECK(get.exit_code == 0);
    CHECK(get.out == "200");
    std::string events = stack.dir.write("events.ndjson", "{\"metadata\":{}}\n{\"span\":{}}\n");
    RunResult post =
        curl(stack, {"-H", "Content-Type: application/x-ndjson", "--data-binary", "@" + events},
             "curlpost", url(stack, "localhost", "/intake/v2/events"));
    INFO(post.out << post.err);
    CHECK(post.exit_code == 0);
    CHECK(post.out == "202");
    auto records = stack.demo.waitForRecords(2);
    CHECK(records.back().target == "/intake/v2/events");
    CHECK(records.back().body_lines == 2);
  }
}

TEST_CASE("ALPN selects h2, else http/1.1, and otherwise answers nothing rather than failing",
          "[integration][tls]") {
  TlsStack stack;
  using Offer = std::vector<std::string>;
  auto [offer, expected] = GENERATE(table<Offer, std::string>({
      {Offer{"h2", "http/1.1"}, "h2"},
      {Offer{"h2"}, "h2"},
      {Offer{"http/1.1"}, "http/1.1"},
      {Offer{"spdy/3"}, ""},
      {Offer{}, ""},
  }));
  ClientOptions options = stack.clientOptions();
  options.alpn = offer;
  TlsClient client(stack.port(), options);
  INFO("offered " << offer.size() << " protocols; " << client.error());
  if (expected == "h2") {
    REQUIRE(client.handshake());  // HTTP/2 itself is tested in http2_*_test
  } else {
    // Without h2, the connection is HTTP/1.1 exactly as before.
    Response r = getThrough(client);
    CHECK(r.status == 200);
  }
  CHECK(client.alpn() == expected);
}

TEST_CASE("supported_protocols = [\"TLSv1.2\"] refuses TLS 1.3-only clients",
          "[integration][tls]") {
  TlsStack stack({"supported_protocols = [\"TLSv1.2\"]\n", "", {}});
  {
    TlsClient client(stack.port(), stack.clientOptions());
    Response r = getThrough(client);
    INFO(client.error());
    CHECK(r.status == 200);
    CHECK(client.version() == TLS1_2_VERSION);
  }
  ClientOptions only13 = stack.clientOptions();
  only13.min_version = TLS1_3_VERSION;
  TlsClient refused(stack.port(), only13);
  CHECK_FALSE(refused.handshake());
  INFO(refused.error());
  CHECK(refused.alert() == SSL_AD_PROTOCOL_VERSION);
  stack.expectFailureRecorded("protocol_version");

  RunResult s13 = sClient(stack, {"-tls1_3"}, "s_client13");
  INFO(s13.out << s13.err);
  CHECK(s13.exit_code != 0);
  RunResult c12 = curl(stack, {"--tlsv1.2", "--tls-max", "1.2"}, "curl12");
  INFO(c12.out << c12.err);
  CHECK(c12.out == "200");
  CHECK(stack.expectFailureRecorded("protocol_version", 2) != "");
}

TEST_CASE("supported_protocols = [\"TLSv1.3\"] refuses TLS 1.2-only clients",
          "[integration][tls]") {
  TlsStack stack({"supported_protocols = [\"TLSv1.3\"]\n", "", {}});
  {
    TlsClient client(stack.port(), stack.clientOptions());
    Response r = getThrough(client);
    INFO(client.error());
    CHECK(r.status == 200);
    CHECK(client.version() == TLS1_3_VERSION);
  }
  ClientOptions only12 = stack.clientOptions();
  only12.max_version = TLS1_2_VERSION;
  TlsClient refused(stack.port(), only12);
  CHECK_FALSE(refused.handshake());
  INFO(refused.error());
  CHECK(refused.alert() == SSL_AD_PROTOCOL_VERSION);
  stack.expectFailureRecorded("protocol_version");

  RunResult c12 = curl(stack, {"--tlsv1.2", "--tls-max", "1.2"}, "curl12");
  INFO(c12.out << c12.err);
  CHECK(c12.exit_code != 0);
  RunResult s13 = sClient(stack, {"-tls1_3"}, "s_client13");
  INFO(s13.out << s13.err);
  CHECK(s13.exit_code == 0);
  CHECK(stack.expectFailureRecorded("protocol_version", 2) != "");
}

TEST_CASE("cipher_suites admits the listed APM suite and refuses another TLS 1.2 suite",
          "[integration][tls]") {
  TlsStack stack({"cipher_suites = [\"ECDHE-ECDSA-AES-128-GCM-SHA256\"]\n", "", {}});
  ClientOptions tls12 = stack.clientOptions();
  tls12.max_version = TLS1_2_VERSION;

  SECTION("the listed suite (BoringSSL client)") {
    tls12.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
    TlsClient client(stack.port(), tls12);
    Response r = getThrough(client);
    INFO(client.error());
    CHECK(r.status == 200);
    CHECK(client.cipher() == "ECDHE-ECDSA-AES128-GCM-SHA256");
  }
  SECTION("another suite (BoringSSL client): no_shared_cipher") {
    tls12.ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384";
    TlsClient client(stack.port(), tls12);
    CHECK_FALSE(client.handshake());
    INFO(client.error());
    CHECK(client.alert() == SSL_AD_HANDSHAKE_FAILURE);
    stack.expectFailureRecorded("no_shared_cipher");
  }
  SECTION("curl --ciphers: the listed suite passes, ChaCha20 is refused") {
    RunResult ok =
        curl(stack, {"--tlsv1.2", "--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"},
             "curl_ok");
    INFO(ok.out << ok.err);
    CHECK(ok.out == "200");
    RunResult refused =
        curl(stack, {"--tlsv1.2", "--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-CHACHA20-POLY1305"},
             "curl_refused");
    INFO(refused.out << refused.err);
    CHECK(refused.exit_code != 0);
    stack.expectFailureRecorded("no_shared_cipher");
  }
  SECTION("TLS 1.3 suites are fixed and still negotiate") {
    TlsClient client(stack.port(), stack.clientOptions());
    Response r = getThrough(client);
    INFO(client.error());
    CHECK(r.status == 200);
    CHECK(client.version() == TLS1_3_VERSION);
  }
}

TEST_CASE("TLS 1.2 suites: the server's order decides, and no RSA key exchange by default",
          "[integration][tls]") {
  SECTION("ECDSA leaf: a client listing CBC first still gets an AEAD (openssl s_client)") {
    TlsStack stack;
    RunResult r = sClient(
        stack, {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-GCM-SHA384"},
        "s_client_cbc_first");
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.out, "Cipher is ECDHE-ECDSA-AES256-GCM-SHA384"));
    // Between AEADs too: AES-128-GCM before AES-256-GCM, whichever the client lists first
    // (what testssl.sh's "server cipher order" check sends, both ways).
    RunResult r256 = sClient(
        stack,
        {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"},
        "s_client_256_first");
    INFO(r256.out << r256.err);
    CHECK(contains(r256.out, "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"));
    // A client that lists ChaCha20 first (no AES hardware) gets it, as from Go.
    ClientOptions tls12 = stack.clientOptions();
    tls12.max_version = TLS1_2_VERSION;
    tls12.ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256";
    TlsClient client(stack.port(), tls12);
    Response ok = getThrough(client);
    INFO(client.error());
    CHECK(ok.status == 200);
    CHECK(client.cipher() == "ECDHE-ECDSA-CHACHA20-POLY1305");
    // CBC only when the client offers nothing better.
    tls12.ciphers = "ECDHE-ECDSA-AES256-SHA";
    TlsClient cbc(stack.port(), tls12);
    CHECK(getThrough(cbc).status == 200);
    CHECK(cbc.cipher() == "ECDHE-ECDSA-AES256-SHA");
  }
  SECTION("RSA leaf: RSA key exchange (no forward secrecy) is refused unless listed") {
    TlsStack stack({}, KeyType::kRsa2048);
    ClientOptions tls12 = stack.clientOptions();
    tls12.max_version = TLS1_2_VERSION;
    tls12.ciphers = "AES128-GCM-SHA256:AES128-SHA";
    TlsClient rsa_kex(stack.port(), tls12);
    CHECK_FALSE(rsa_kex.handshake());
    INFO(rsa_kex.error());
    stack.expectFailureRecorded("no_shared_cipher");
    tls12.ciphers = "AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256";
    TlsClient client(stack.port(), tls12);
    Response ok = getThrough(client);
    INFO(client.error());
    CHECK(ok.status == 200);
    CHECK(client.cipher() == "ECDHE-RSA-AES128-GCM-SHA256");
  }
  SECTION("RSA leaf with RSA key exchange listed: still after every ECDHE suite") {
    TlsStack stack(
        {"cipher_suites = [\"RSA-AES-128-GCM-SHA256\", \"ECDHE-RSA-AES-128-CBC-SHA\"]\n", "", {}},
        KeyType::kRsa2048);
    ClientOptions tls12 = stack.clientOptions();
    tls12.max_version = TLS1_2_VERSION;
    tls12.ciphers = "AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA";
    TlsClient client(stack.port(), tls12);
    CHECK(getThrough(client).status == 200);
    CHECK(client.cipher() == "ECDHE-RSA-AES128-SHA");
    tls12.ciphers = "AES128-GCM-SHA256";
    TlsClient rsa_only(stack.port(), tls12);
    CHECK(getThrough(rsa_only).status == 200);
    CHECK(rsa_only.cipher() == "AES128-GCM-SHA256");
  }
}

TEST_CASE("curve_types = [\"P-384\"] refuses an X25519-only client and accepts P-384",
          "[integration][tls]") {
  TlsStack stack({"curve_types = [\"P-384\"]\n", "", {}});
  uint16_t version = GENERATE(as<uint16_t>{}, TLS1_2_VERSION, TLS1_3_VERSION);
  ClientOptions options = stack.clientOptions();
  options.max_version = version;
  INFO("client max version " << std::hex << version);

  SECTION("P-384") {
    // P-256 too: a TLS 1.2 client checks the server's ECDSA P-256 key against its groups.
    options.curves = "X25519:P-384:P-256";
    TlsClient client(stack.port(), options);
    Response r = getThrough(client);
    INFO(client.error());
    CHECK(r.status == 200);
    CHECK(client.curve() == "P-384");
  }
  SECTION("X25519 only") {
    options.curves = "X25519";
    TlsClient client(stack.port(), options);
    CHECK_FALSE(client.handshake());
    INFO(client.error());
    CHECK(client.alert() == SSL_AD_HANDSHAKE_FAILURE);
    stack.expectFailureRecorded("no_shared_cipher");
  }
  SECTION("curl --curves") {
    RunResult ok = curl(stack, {"--curves", "P-384"}, "curl_p384");
    INFO(ok.out << ok.err);
    CHECK(ok.out == "200");
    RunResult refused = curl(stack, {"--curves", "X25519"}, "curl_x25519");
    INFO(refused.out << refused.err);
    CHECK(refused.exit_code != 0);
  }
}

TEST_CASE("The proxy serves leaf and intermediate, so a client trusting only the root verifies",
          "[integration][tls]") {
  TlsStack stack;

  SECTION("openssl s_client -showcerts shows two certificates and verifies") {
    RunResult r = sClient(stack, {"-showcerts"}, "s_client");
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(countOf(r.out, "-----BEGIN CERTIFICATE-----") == 2);
    CHECK(contains(r.out, "CN = localhost"));
    CHECK(contains(r.out, "CN = Test Intermediate CA"));
    CHECK(contains(r.out, "Verify return code: 0 (ok)"));
  }
  SECTION("BoringSSL client: chain of 2, verified against the root and the IP SAN") {
    TlsClient client(stack.port(), stack.clientOptions());
    REQUIRE(client.handshake());
    CHECK(client.peerChainLength() == 2);
    CHECK(client.verifyResult() == X509_V_OK);
  }
  SECTION("curl by name and by IP") {
    RunResult by_ip = curl(stack, {}, "curl_ip");
    INFO(by_ip.out << by_ip.err);
    CHECK(by_ip.out == "200");
    RunResult by_name = curl(stack, {}, "curl_name", url(stack, "localhost"));
    INFO(by_name.out << by_name.err);
    CHECK(by_name.out == "200");
  }
  SECTION("a client that trusts another root aborts: peer_alert") {
    ClientOptions options;
    options.trust_pem = mintCa("Somebody Else's CA").certPem();
    TlsClient client(stack.port(), options);
    CHECK_FALSE(client.handshake());
    stack.expectFailureRecorded("peer_alert");
  }
}

}  // namespace
}  // namespace proxy::integration::tls
