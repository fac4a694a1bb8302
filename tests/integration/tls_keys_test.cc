// Server keys and certificates end to end: encrypted PKCS#8 with key_passphrase and with
// key_passphrase_path, legacy encrypted PEM, SEC1 and an RSA leaf all serve handshakes;
// `check` (and `run`) exit 2 with a clear message for a wrong passphrase or a key that
// does not match, and warn about an expired server certificate and about a plaintext
// upstream off the host while TLS is on.
#include <catch2/catch.hpp>
#include <cctype>

#include "tests/integration/harness.h"
#include "tests/integration/tls_support.h"

namespace proxy::integration::tls {
namespace {

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A proxy whose [ssl] table names `pki`'s chain and the key file `key_path` (plus `more`
// lines); a GET through it with a client trusting `pki`'s root.
struct KeyCase {
  std::string name;
  KeyType key_type;
  std::string (*key_pem)(const Minted& leaf);  // the key file's contents
  std::string more;                            // e.g. key_passphrase = "..."
};

std::string traditionalPem(const Minted& leaf, const std::string& passphrase) {
  auto pem = certutil::keyToTraditionalPem(leaf.key.get(), passphrase);
  INFO((pem ? "" : pem.status().message()));
  REQUIRE(pem.isOk());
  return pem.value();
}

const char kPassphrase[] = "correct horse battery staple";

TEST_CASE("Every key format serves TLS end to end", "[integration][tls]") {
  const KeyCase cases[] = {
      {"encrypted PKCS#8 with key_passphrase", KeyType::kEcdsaP256,
       [](const Minted& leaf) { return leaf.keyPem(kPassphrase); },
       "key_passphrase = " + quoted(kPassphrase) + "\n"},
      {"encrypted PKCS#8 with key_passphrase_path", KeyType::kEcdsaP256,
       [](const Minted& leaf) { return leaf.keyPem(kPassphrase); }, "(passphrase file)"},
      {"legacy encrypted PEM (RSA)", KeyType::kRsa2048,
       [](const Minted& leaf) { return traditionalPem(leaf, kPassphrase); },
       "key_passphrase = " + quoted(kPassphrase) + "\n"},
      {"SEC1 EC PRIVATE KEY", KeyType::kEcdsaP384,
       [](const Minted& leaf) { return traditionalPem(leaf, ""); }, ""},
      {"RSA leaf, PKCS#8", KeyType::kRsa2048, [](const Minted& leaf) { return leaf.keyPem(); }, ""},
  };
  size_t index = GENERATE(range<size_t>(0, 5));
  const KeyCase& c = cases[index];
  INFO(c.name);

  TempDir keys;
  ServerPki pki(keys, c.key_type);
  std::string key_path = keys.write("served.key", c.key_pem(pki.leaf));
  std::string more = c.more;
  if (more == "(passphrase file)") {
    more = "key_passphrase_path = " +
           quoted(keys.write("passphrase", std::string(kPassphrase) + "\n")) + "\n";
  }
  TlsStackOptions options;
  options.ssl =
      "certificate = " + quoted(pki.chain_path) + "\nkey = " + quoted(key_path) + "\n" + more;
  TlsStack stack(options);

  uint16_t version = GENERATE(as<uint16_t>{}, TLS1_2_VERSION, TLS1_3_VERSION);
  ClientOptions client_options;
  client_options.trust_pem = pki.root.certPem();
  client_options.max_version = version;
  TlsClient client(stack.port(), client_options);
  Response r = client.exchange(httpRequest("GET", "/"));
  INFO(client.error());
  CHECK(r.status == 200);
  CHECK(client.verifyResult() == X509_V_OK);
  if (version == TLS1_2_VERSION) {
    std::string expected = c.key_type == KeyType::kRsa2048 ? "ECDHE-RSA-" : "ECDHE-ECDSA-";
    CHECK(client.cipher().rfind(expected, 0) == 0);
  }
}

// A full config file for `check`/`run` with the given [ssl] body.
std::string configWithSsl(const TempDir& dir, const std::string& ssl,
                          const std::string& upstream_url = "http://127.0.0.1:8201") {
  ProxyConfig config;
  config.upstream["url"] = quoted(upstream_url);
  config.extra = "[ssl]\n" + ssl;
  return dir.write("check.toml", config.toToml());
}

RunResult check(const TempDir& dir, const std::string& config_path) {
  return runToCompletion({proxyBinary(), "check", "--config", config_path}, dir, "check");
}

TEST_CASE("check and run refuse a wrong key passphrase with a clear message",
          "[integration][tls]") {
  TempDir dir;
  ServerPki pki(dir);
  std::string key_path = dir.write("enc.key", pki.leaf.keyPem(kPassphrase));
  std::string path =
      configWithSsl(dir, "certificate = " + quoted(pki.chain_path) + "\nkey = " + quoted(key_path) +
                             "\nkey_passphrase = \"not the passphrase\"\n");
  RunResult r = check(dir, path);
  std::string all = r.out + r.err;
  INFO(all);
  CHECK(r.exit_code == 2);
  CHECK(contains(all, "ssl.key"));
  CHECK(contains(all, key_path));
  CHECK(contains(all, "wrong passphrase"));

  RunResult run = runToCompletion({proxyBinary(), "run", "--config", path}, dir, "run");
  INFO(run.out << run.err);
  CHECK(run.exit_code == 2);
  CHECK(contains(lower(run.err), "passphrase"));
}

TEST_CASE("check refuses an encrypted key without a passphrase", "[integration][tls]") {
  TempDir dir;
  ServerPki pki(dir);
  std::string key_path = dir.write("enc.key", pki.leaf.keyPem(kPassphrase));
  std::string path = configWithSsl(
      dir, "certificate = " + quoted(pki.chain_path) + "\nkey = " + quoted(key_path) + "\n");
  RunResult r = check(dir, path);
  std::string all = r.out + r.err;
  INFO(all);
  CHECK(r.exit_code == 2);
  CHECK(contains(all, key_path));
  CHECK(contains(lower(all), "passphrase"));
}

TEST_CASE("check refuses a key that does not match the certificate", "[integration][tls]") {
  TempDir dir;
  ServerPki pki(dir);
  Minted other = mintIssued(ServerPki::defaultLeafSpec(), pki.intermediate);
  std::string other_key = dir.write("other.key", other.keyPem());
  std::string path = configWithSsl(
      dir, "certificate = " + quoted(pki.chain_path) + "\nkey = " + quoted(other_key) + "\n");
  RunResult r = check(dir, path);
  std::string all = r.out + r.err;
  INFO(all);
  CHECK(r.exit_code == 2);
  CHECK(contains(all, "ssl.key"));
  CHECK(contains(all, other_key));
  CHECK(contains(all, "does not match the certificate"));
  CHECK(contains(all, pki.chain_path));
}

TEST_CASE("check warns about an expired server certificate, and the proxy still starts",
          "[integration][tls]") {
  TempDir dir;
  CertSpec expired = ServerPki::defaultLeafSpec();
  expired.not_before_offset = -30 * 86400;
  expired.not_after_offset = -86400;
  ServerPki pki(dir, KeyType::kEcdsaP256, expired);
  std::string path = configWithSsl(dir, pki.sslLines());
  RunResult r = check(dir, path);
  std::string all = r.out + r.err;
  INFO(all);
  CHECK(r.exit_code == 0);
  CHECK(contains(all, "warning: ssl.certificate"));
  CHECK(contains(all, "expired on"));
  CHECK(contains(all, pki.chain_path));

  // `run` starts (a warning, not an error), and a verifying client refuses the certificate.
  TlsStackOptions options;
  options.ssl = pki.sslLines();
  TlsStack stack(options);
  CHECK(contains(lower(stack.proxy->process().stderrText()), "expired"));
  ClientOptions client_options;
  client_options.trust_pem = pki.root.certPem();
  TlsClient client(stack.port(), client_options);
  CHECK_FALSE(client.handshake());
  CHECK(client.verifyResult() == X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST_CASE("check warns when TLS is on and the plaintext upstream is not on loopback",
          "[integration][tls]") {
  TempDir dir;
  ServerPki pki(dir);
  SECTION("an address off the host") {
    RunResult r = check(dir, configWithSsl(dir, pki.sslLines(), "http://10.1.2.3:8200"));
    std::string all = r.out + r.err;
    INFO(all);
    CHECK(r.exit_code == 0);
    CHECK(contains(all, "warning: upstream.url"));
    CHECK(contains(all, "plaintext leaves the host"));
  }
  SECTION("loopback: no such warning") {
    RunResult r = check(dir, configWithSsl(dir, pki.sslLines(), "http://127.0.0.1:8200"));
    std::string all = r.out + r.err;
    INFO(all);
    CHECK(r.exit_code == 0);
    CHECK_FALSE(contains(all, "plaintext leaves the host"));
  }
}

}  // namespace
}  // namespace proxy::integration::tls
