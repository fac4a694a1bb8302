#include "proxy/certutil/certutil_command.h"

#include <catch2/catch.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/certutil/cert_builder.h"
#include "tests/unit/certutil/certutil_test_support.h"

namespace {

using proxy::certutil::testing::exists;
using proxy::certutil::testing::modeOf;
using proxy::certutil::testing::opensslText;
using proxy::certutil::testing::readFile;
using proxy::certutil::testing::run;
using proxy::certutil::testing::TempDir;
using proxy::certutil::testing::writeFile;

struct Run {
  int exit_code;
  std::string out;
  std::string err;
};

// Runs `certutil ARGS...` in-process, as main.cc would.
Run certutil(const std::vector<std::string>& args) {
  std::vector<std::string> storage{"certutil"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::ostringstream out;
  std::ostringstream err;
  int rc = proxy::certutil::runCertutil(static_cast<int>(storage.size()), argv.data(), out, err);
  return {rc, out.str(), err.str()};
}

void requireOk(const Run& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
}

std::string quoted(const std::string& path) { return "'" + path + "'"; }

// Writes a CA with `extra` options: dir/ca/ca.crt and dir/ca/ca.key.
void makeCa(const TempDir& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"ca", "--out", dir.file("ca")};
  args.insert(args.end(), extra.begin(), extra.end());
  requireOk(certutil(args));
}

}  // namespace

TEST_CASE("certutil ca writes a CA certificate and key with the right modes and contents",
          "[unit][certutil]") {
  TempDir dir;
  Run r = certutil({"ca", "--out", dir.file("certs")});
  requireOk(r);
  std::string crt = dir.file("certs/ca.crt");
  std::string key = dir.file("certs/ca.key");
  CHECK(modeOf(dir.file("certs")) == 0700);
  CHECK(modeOf(crt) == 0644);
  CHECK(modeOf(key) == 0600);
  CHECK_THAT(r.out, Catch::Contains("Wrote the CA certificate " + crt));
  CHECK_THAT(r.out, Catch::Contains("Subject:   CN=apm-tls-proxy CA"));
  CHECK_THAT(r.out, Catch::Contains("ECDSA P-256"));
  CHECK_THAT(r.out, Catch::Contains("(1095 days)"));

  std::string text = opensslText(crt);
  CHECK_THAT(text, Catch::Contains("CA:TRUE"));
  CHECK_THAT(text, Catch::Contains("Subject: CN = apm-tls-proxy CA"));
  CHECK_THAT(text, Catch::Contains("Issuer: CN = apm-tls-proxy CA"));
  CHECK_THAT(text, Catch::Contains("NIST CURVE: P-256"));
  CHECK_THAT(readFile(key), Catch::StartsWith("-----BEGIN PRIVATE KEY-----"));
  auto days =
      run("openssl x509 -noout -checkend " + std::to_string(1094 * 86400) + " -in " + quoted(crt));
  CHECK(days.exit_code == 0);
  auto too_long =
      run("openssl x509 -noout -checkend " + std::to_string(1096 * 86400) + " -in " + quoted(crt));
  CHECK(too_long.exit_code != 0);
}

TEST_CASE("certutil ca honours --ca-dn, --days, --key-type and --pass", "[unit][certutil]") {
  TempDir dir;
  requireOk(
      certutil({"ca", "--out=" + dir.path(), "--ca-dn", "CN=Ops Root,O=Example Corp", "--days",
                "30", "--key-type", "rsa", "--key-size", "3072", "--pass", "topsecret"}));
  std::string text = opensslText(dir.file("ca.crt"));
  CHECK_THAT(text, Catch::Contains("Subject: O = Example Corp, CN = Ops Root"));
  CHECK_THAT(text, Catch::Contains("Public-Key: (3072 bit)"));
  CHECK_THAT(text, Catch::Contains("sha256WithRSAEncryption"));
  CHECK(run("openssl x509 -noout -checkend " + std::to_string(31 * 86400) + " -in " +
            quoted(dir.file("ca.crt")))
            .exit_code != 0);

  std::string key = dir.file("ca.key");
  CHECK_THAT(readFile(key), Catch::StartsWith("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
  CHECK(run("openssl pkey -noout -in " + quoted(key) + " -passin pass:topsecret").exit_code == 0);
  CHECK(run("openssl pkey -noout -in " + quoted(key) + " -passin pass:wrong").exit_code != 0);
}

TEST_CASE("certutil cert writes a localhost server certificate with default SANs",
          "[unit][certutil]") {
  TempDir dir;
  makeCa(dir);
  Run r = certutil({"cert", "--ca-cert", dir.file("ca/ca.crt"), "--ca-key", dir.file("ca/ca.key"),
                    "--name", "localhost", "--out", dir.file("out")});
  requireOk(r);
  std::string crt = dir.file("out/localhost/localhost.crt");
  std::string key = dir.file("out/localhost/localhost.key");
  CHECK(modeOf(dir.file("out")) == 0700);
  CHECK(modeOf(dir.file("out/localhost")) == 0700);
  CHECK(modeOf(crt) == 0644);
  CHECK(modeOf(key) == 0600);
  CHECK_THAT(r.out, Catch::Contains("SANs:      DNS:localhost, IP:127.0.0.1, IP:::1"));
  CHECK_THAT(r.out, Catch::Contains("EKU:       serverAuth"));
  CHECK_THAT(r.out, Catch::Contains("Issuer:    CN=apm-tls-proxy CA"));

  std::string text = opensslText(crt);
  CHECK_THAT(text,
             Catch::Contains("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"));
  CHECK_THAT(text, Catch::Contains("TLS Web Server Authentication"));
  CHECK_THAT(text, Catch::Contains("CA:FALSE"));
  CHECK_THAT(text, Catch::Contains("Subject: CN = localhost"));
  CHECK_THAT(text, Catch::Contains("id-ecPublicKey"));

  auto verified = run("openssl verify -purpose sslserver -CAfile " + quoted(dir.file("ca/ca.crt")) +
                      " " + quoted(crt));
  INFO(verified.output);
  CHECK(verified.exit_code == 0);
  // The key matches the certificate.
  auto cert_pub = run("openssl x509 -noout -pubkey -in " + quoted(crt));
  auto key_pub = run("openssl pkey -pubout -in " + quoted(key));
  CHECK(cert_pub.output == key_pub.output);
}

TEST_CASE("certutil cert picks default SANs from the name and takes explicit ones",
          "[unit][certutil]") {
  TempDir dir;
  makeCa(dir);
  std::string ca_crt = dir.file("ca/ca.crt");
  std::string ca_key = dir.file("ca/ca.key");

  SECTION("a DNS name") {
    requireOk(certutil({"cert", "--ca-cert", ca_crt, "--ca-key", ca_key, "--name",
                        "apm.example.com", "--out", dir.path()}));
    std::string text = opensslText(dir.file("apm.example.com/apm.example.com.crt"));
    CHECK_THAT(text, Catch::Contains("DNS:apm.example.com"));
    CHECK_THAT(text, !Catch::Contains("DNS:localhost"));
    CHECK_THAT(text, !Catch::Contains("IP Address"));
  }
  SECTION("an IP address") {
    requireOk(certutil({"cert", "--ca-cert", ca_crt, "--ca-key", ca_key, "--name", "10.1.2.3",
                        "--out", dir.path()}));
    std::string text = opensslText(dir.file("10.1.2.3/10.1.2.3.crt"));
    CHECK_THAT(text, Catch::Contains("IP Address:10.1.2.3"));
    CHECK_THAT(text, !Catch::Contains("DNS:"));
  }
  SECTION("explicit --dns and --ip, repeated and comma-separated, replace the defaults") {
    Run r = certutil({"cert", "--ca-cert", ca_crt, "--ca-key", ca_key, "--name", "apm-server",
                      "--out", dir.path(), "--dns", "apm.example.com, apm", "--dns=*.apm.svc",
                      "--ip", "10.0.0.1,fd00::1", "--uri", "spiffe://cluster.local/ns/apm/sa/x",
                      "--dn", "CN=apm-server,OU=Observability"});
    requireOk(r);
    CHECK_THAT(r.out, Catch::Contains("DNS:apm.example.com, DNS:apm, DNS:*.apm.svc, "
                                      "IP:10.0.0.1, IP:fd00::1, "
                                      "URI:spiffe://cluster.local/ns/apm/sa/x"));
    std::string text = opensslText(dir.file("apm-server/apm-server.crt"));
    CHECK_THAT(text, Catch::Contains("DNS:apm.example.com, DNS:apm, DNS:*.apm.svc, "
                                     "IP Address:10.0.0.1, IP Address:FD00:0:0:0:0:0:0:1, "
                                     "URI:spiffe://cluster.local/ns/apm/sa/x"));
    CHECK_THAT(text, Catch::Contains("Subject: OU = Observability, CN = apm-server"));
    CHECK_THAT(text, !Catch::Contains("DNS:apm-server"));
  }
  SECTION("a name that is not a host name needs --dns or --ip") {
    Run r = certutil({"cert", "--ca-cert", ca_crt, "--ca-key", ca_key, "--name", "my server",
                      "--out", dir.path()});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("give the server's names with --dns"));
    CHECK(!exists(dir.file("my server")));
  }
}

TEST_CASE("certutil cert --client makes a clientAuth certificate for mutual TLS",
          "[unit][certutil]") {
  TempDir dir;
  makeCa(dir);
  Run r = certutil({"cert", "--client", "--ca-cert", dir.file("ca/ca.crt"), "--ca-key",
                    dir.file("ca/ca.key"), "--name", "agent-1", "--out", dir.path(), "--uri",
                    "spiffe://cluster.local/ns/apm/sa/apm-agent", "--key-type", "rsa2048"});
  requireOk(r);
  CHECK_THAT(r.out, Catch::Contains("EKU:       clientAuth"));
  std::string crt = dir.file("agent-1/agent-1.crt");
  std::string text = opensslText(crt);
  CHECK_THAT(text, Catch::Contains("TLS Web Client Authentication"));
  CHECK_THAT(text, !Catch::Contains("TLS Web Server Authentication"));
  CHECK_THAT(text, Catch::Contains("URI:spiffe://cluster.local/ns/apm/sa/apm-agent"));
  CHECK_THAT(text, !Catch::Contains("DNS:"));
  CHECK_THAT(text, Catch::Contains("rsaEncryption"));
  CHECK_THAT(text, Catch::Contains("Digital Signature, Key Encipherment"));
  CHECK(run("openssl verify -purpose sslclient -CAfile " + quoted(dir.file("ca/ca.crt")) + " " +
            quoted(crt))
            .exit_code == 0);
  CHECK(run("openssl verify -purpose sslserver -CAfile " + quoted(dir.file("ca/ca.crt")) + " " +
            quoted(crt))
            .exit_code != 0);
}

TEST_CASE("certutil cert reads an encrypted CA key only with its passphrase", "[unit][certutil]") {
  TempDir dir;
  makeCa(dir, {"--pass", "ca-secret"});
  std::string ca_crt = dir.file("ca/ca.crt");
  std::string ca_key = dir.file("ca/ca.key");

  Run no_pass = certutil(
      {"cert", "--ca-cert", ca_crt, "--ca-key", ca_key, "--name", "a", "--out", dir.path()});
  CHECK(no_pass.exit_code == 1);
  CHECK_THAT(no_pass.err, Catch::Contains("encrypted and no passphrase was given"));
  CHECK_THAT(no_pass.err, Catch::Contains("--ca-pass"));

  Run wrong = certutil({"cert", "--ca-cert", ca_crt, "--ca-key", ca_key, "--ca-pass", "nope",
                        "--name", "a", "--out", dir.path()});
  CHECK(wrong.exit_code == 1);
  CHECK_THAT(wrong.err, Catch::Contains("wrong passphrase"));
  CHECK(!exists(dir.file("a")));

  writeFile(dir.file("ca-pass.txt"), "ca-secret\n");
  writeFile(dir.file("leaf-pass.txt"), "leaf-secret\n");
  requireOk(certutil({"cert", "--ca-cert", ca_crt, "--ca-key", ca_key, "--ca-pass-file",
                      dir.file("ca-pass.txt"), "--pass-file", dir.file("leaf-pass.txt"), "--name",
                      "a", "--out", dir.path()}));
  std::string key = dir.file("a/a.key");
  CHECK(run("openssl pkey -noout -in " + quoted(key) + " -passin pass:leaf-secret").exit_code == 0);
  CHECK(run("openssl pkey -noout -in " + quoted(key) + " -passin pass:wrong").exit_code != 0);
}

TEST_CASE("certutil never overwrites, checking every target before writing anything",
          "[unit][certutil]") {
  TempDir dir;
  SECTION("ca") {
    requireOk(certutil({"ca", "--out", dir.path()}));
    std::string before = readFile(dir.file("ca.crt"));
    Run again = certutil({"ca", "--out", dir.path()});
    CHECK(again.exit_code == 1);
    CHECK_THAT(again.err, Catch::Contains(dir.file("ca.crt") + " already exists"));
    CHECK_THAT(again.err, Catch::Contains(dir.file("ca.key") + " already exists"));
    CHECK(readFile(dir.file("ca.crt")) == before);
  }
  SECTION("cert, when only the key exists") {
    makeCa(dir);
    REQUIRE(::mkdir(dir.file("srv").c_str(), 0755) == 0);
    writeFile(dir.file("srv/srv.key"), "precious");
    Run r = certutil({"cert", "--ca-cert", dir.file("ca/ca.crt"), "--ca-key", dir.file("ca/ca.key"),
                      "--name", "srv", "--out", dir.path()});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("srv.key already exists"));
    CHECK_THAT(r.err, Catch::Contains("nothing was written"));
    CHECK(readFile(dir.file("srv/srv.key")) == "precious");
    CHECK(!exists(dir.file("srv/srv.crt")));
    // An existing directory keeps its mode.
    CHECK(modeOf(dir.file("srv")) == 0755);
  }
}

TEST_CASE("certutil reports bad usage with exit code 2 and help with 0", "[unit][certutil]") {
  TempDir dir;
  makeCa(dir);
  std::string ca_crt = dir.file("ca/ca.crt");
  std::string ca_key = dir.file("ca/ca.key");

  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<Case> cases = {
      {{}, "Usage: apm-tls-proxy certutil <command>"},
      {{"frobnicate"}, "unknown command \"frobnicate\""},
      {{"ca"}, "--out DIR is required"},
      {{"ca", "--out"}, "--out needs a value"},
      {{"ca", "--out", dir.file("x"), "--bogus", "1"}, "unknown option --bogus"},
      {{"ca", "--out", dir.file("x"), "--days", "0"}, "--days must be a whole number"},
      {{"ca", "--out", dir.file("x"), "--days", "12x"}, "--days must be a whole number"},
      {{"ca", "--out", dir.file("x"), "--key-type", "dsa"}, "unknown --key-type \"dsa\""},
      {{"ca", "--out", dir.file("x"), "--key-type", "rsa", "--key-size", "1024"},
       "unsupported --key-size 1024 for RSA"},
      {{"ca", "--out", dir.file("x"), "--key-type", "rsa4096", "--key-size", "2048"},
       "cannot be combined"},
      {{"ca", "--out", dir.file("x"), "--ca-dn", "Example CA"}, "attribute=value"},
      {{"ca", "--out", dir.file("x"), "--pass", "a", "--pass-file", "b"}, "not both"},
      {{"cert", "--name", "x"}, "missing required options --ca-cert, --ca-key, --out"},
      {{"cert", "--ca-cert", ca_crt, "--ca-key", ca_key, "--name", "../x", "--out", dir.path()},
       "cannot be used as a file name"},
      {{"cert", "--ca-cert", ca_crt, "--ca-key", ca_key, "--name", "x", "--out", dir.path(), "--ip",
        "1.2.3"},
       "invalid IP address \"1.2.3\""},
      {{"cert", "--ca-cert", ca_crt, "--ca-key", ca_key, "--name", "x", "--out", dir.path(),
        "--client", "stray"},
       "unexpected argument \"stray\""},
      {{"ca", "--out", dir.file("x"), "--client"}, "unknown option --client"},
  };
  for (const Case& c : cases) {
    Run r = certutil(c.args);
    INFO((c.args.empty() ? std::string() : c.args[0]) << " -> " << r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(c.message));
    CHECK(r.out.empty());
  }
  CHECK(!exists(dir.file("x")));

  for (const char* command : {"ca", "cert"}) {
    Run help = certutil({command, "--help"});
    CHECK(help.exit_code == 0);
    CHECK_THAT(help.out, Catch::Contains(std::string("apm-tls-proxy certutil ") + command));
    CHECK_THAT(help.out, Catch::Contains("--key-type"));
  }
  Run top = certutil({"--help"});
  CHECK(top.exit_code == 0);
  CHECK_THAT(top.out, Catch::Contains("Commands:"));
}

TEST_CASE("certutil cert refuses a CA certificate that is not a CA or does not match its key",
          "[unit][certutil]") {
  TempDir dir;
  makeCa(dir);
  requireOk(certutil({"cert", "--ca-cert", dir.file("ca/ca.crt"), "--ca-key", dir.file("ca/ca.key"),
                      "--name", "leaf", "--out", dir.path()}));
  Run not_ca = certutil({"cert", "--ca-cert", dir.file("leaf/leaf.crt"), "--ca-key",
                         dir.file("leaf/leaf.key"), "--name", "x", "--out", dir.path()});
  CHECK(not_ca.exit_code == 1);
  CHECK_THAT(not_ca.err, Catch::Contains("is not a CA certificate"));

  Run mismatch = certutil({"cert", "--ca-cert", dir.file("ca/ca.crt"), "--ca-key",
                           dir.file("leaf/leaf.key"), "--name", "x", "--out", dir.path()});
  CHECK(mismatch.exit_code == 1);
  CHECK_THAT(mismatch.err, Catch::Contains("does not match"));

  Run missing = certutil({"cert", "--ca-cert", dir.file("nope.crt"), "--ca-key",
                          dir.file("ca/ca.key"), "--name", "x", "--out", dir.path()});
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.err, Catch::Contains("cannot read the CA certificate"));
  CHECK(!exists(dir.file("x")));
}
