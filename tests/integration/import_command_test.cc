// `apm-tls-proxy import` and `check` together, against the built binary: each example of
// APM Server's SSL documentation (tests/unit/config/fixtures/apm-server/) imports to a
// TOML file that `check` accepts, with certificates minted by the binary's own certutil.
// Also: ${VAR} at check time (values, errors, redaction), and import's exit codes.
#include <catch2/catch.hpp>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace proxy::integration {
namespace {

const char kFixtures[] = "/tests/unit/config/fixtures/apm-server/";
const char kDocPath[] = "/etc/apm-server/certs";  // where the fixtures keep their files
const char kPassphrase[] = "import-test-passphrase";

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// Like runToCompletion, with extra environment variables ("NAME=value").
RunResult runWithEnv(const std::vector<std::string>& argv, const TempDir& dir,
                     const std::string& name, const std::vector<std::string>& env) {
  Process p(argv, dir.file(name), env);
  std::optional<int> code = p.wait(Millis{30000});
  INFO(argv[0] << " " << argv[1] << " did not finish in time");
  CHECK(code.has_value());
  RunResult r;
  r.exit_code = code ? *code : p.stop(Millis{1000});
  r.out = p.stdoutText();
  r.err = p.stderrText();
  return r;
}

void certutil(const TempDir& dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {proxyBinary(), "certutil"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = runToCompletion(argv, dir, "certutil-" + args[0], Millis{30000});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
}

// The files the fixtures name, minted into DIR/certs and copied to DIR/tls-NAME under the
// fixtures' file names. Returns the common prefix "DIR/tls-".
std::string mintFixtureFiles(const TempDir& dir) {
  std::string certs = dir.file("certs");
  certutil(dir, {"ca", "--out", certs});
  std::vector<std::string> ca = {"--ca-cert",       certs + "/ca.crt", "--ca-key",
                                 certs + "/ca.key", "--out",           certs};
  auto cert = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> args = {"cert", "--name", name};
    args.insert(args.end(), ca.begin(), ca.end());
    args.insert(args.end(), extra.begin(), extra.end());
    certutil(dir, args);
  };
  cert("apm-server", {});
  cert("apm-server-rsa", {"--key-type", "rsa"});
  cert("apm-server-encrypted", {"--pass", kPassphrase});
  std::vector<std::pair<std::string, std::string>> copies = {{certs + "/ca.crt", "ca.crt"}};
  for (const char* name : {"apm-server", "apm-server-rsa", "apm-server-encrypted"}) {
    std::string base = certs + "/" + name + "/" + name;
    copies.push_back({base + ".crt", std::string(name) + ".crt"});
    copies.push_back({base + ".key", std::string(name) + ".key"});
  }
  for (const auto& [from, to] : copies) {
    std::string text = readFile(from);
    REQUIRE_FALSE(text.empty());
    dir.write("tls-" + to, text);
  }
  return dir.file("tls-");
}

std::string replaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

}  // namespace

TEST_CASE("Each APM Server SSL example imports to TOML that check accepts",
          "[integration][import]") {
  TempDir dir;
  std::string prefix = mintFixtureFiles(dir);  // DIR/tls-<name>
  std::vector<std::string> env = {"APM_KEY_PASSPHRASE=" + std::string(kPassphrase),
                                  "APM_CERT_DIR=" + prefix};
  for (const char* name : {"ssl-minimal.yml", "ssl-dotted.yml", "ssl-client-auth.yml",
                           "ssl-protocols-ciphers.yml", "server-settings.yml"}) {
    std::string yaml = readFile(std::string(PROXY_SOURCE_DIR) + kFixtures + name);
    REQUIRE_FALSE(yaml.empty());
    // "/etc/apm-server/certs/x.crt" -> "DIR/tls-x.crt"; "${APM_CERT_DIR}/x" likewise.
    yaml = replaceAll(yaml, std::string(kDocPath) + "/", prefix);
    yaml = replaceAll(yaml, "${APM_CERT_DIR}/", "${APM_CERT_DIR}");
    std::string yml = dir.write(name, yaml);
    RunResult imported = runToCompletion({proxyBinary(), "import", yml}, dir, "import");
    INFO(name << "\nimport stdout:\n" << imported.out << "\nimport stderr:\n" << imported.err);
    REQUIRE(imported.exit_code == 0);
    CHECK(contains(imported.err, "apm-server.host: \"127.0.0.1:8201\""));
    CHECK(contains(imported.err, "apm-server.ssl.enabled: false"));
    std::string toml = dir.write(std::string(name) + ".toml", imported.out);
    RunResult check = runWithEnv({proxyBinary(), "check", "--config", toml}, dir, "check", env);
    INFO("check stdout:\n" << check.out << "\ncheck stderr:\n" << check.err);
    CHECK(check.exit_code == 0);
    CHECK(contains(check.out, "[ssl]\nenabled = true\n"));
    CHECK(contains(check.out, "url = \"http://127.0.0.1:8201\""));
    CHECK_FALSE(contains(check.out + check.err, kPassphrase));
  }
}

TEST_CASE("check shows where a ${VAR} value came from and hides the passphrase",
          "[integration][import]") {
  TempDir dir;
  std::string prefix = mintFixtureFiles(dir);
  std::string toml = dir.write("vars.toml",
                               "[server]\n"
                               "host = \"127.0.0.1:0\"\n"
                               "idle_timeout = \"${IMPORT_TEST_IDLE:40s}\"\n"
                               "[ssl]\n"
                               "certificate = \"${IMPORT_TEST_TLS}apm-server-encrypted.crt\"\n"
                               "key = \"${IMPORT_TEST_TLS}apm-server-encrypted.key\"\n"
                               "key_passphrase = \"${IMPORT_TEST_PASSPHRASE}\"\n");
  RunResult r = runWithEnv(
      {proxyBinary(), "check", "--config", toml}, dir, "check",
      {"IMPORT_TEST_TLS=" + prefix, "IMPORT_TEST_PASSPHRASE=" + std::string(kPassphrase)});
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out,
                 "# from ${IMPORT_TEST_PASSPHRASE} (value redacted)\n"
                 "key_passphrase = \"<redacted>\"\n"));
  CHECK(contains(r.out,
                 "# from \"${IMPORT_TEST_IDLE:40s}\" (unset, default used: "
                 "IMPORT_TEST_IDLE)\nidle_timeout = \"40s\"\n"));
  CHECK(contains(r.out, "certificate = \"" + prefix + "apm-server-encrypted.crt\""));
  CHECK_FALSE(contains(r.out + r.err, kPassphrase));

  // The same file without the variables: each unset one is an error at its value.
  RunResult unset = runWithEnv({proxyBinary(), "check", "--config", toml}, dir, "unset", {});
  std::string all = unset.out + unset.err;
  INFO(all);
  CHECK(unset.exit_code == 2);
  CHECK(contains(all, toml + ":5:15: ssl.certificate: environment variable IMPORT_TEST_TLS is "
                             "not set (and no default given)"));
  CHECK(contains(all, toml + ":7:18: ssl.key_passphrase: environment variable "
                             "IMPORT_TEST_PASSPHRASE is not set (and no default given)"));
}

TEST_CASE("import exits 2 on invalid YAML, a missing file or a bad --upstream",
          "[integration][import]") {
  TempDir dir;
  std::string bad = dir.write("bad.yml", "apm-server:\n  ssl: [one, two\n");
  RunResult r = runToCompletion({proxyBinary(), "import", bad}, dir, "bad");
  INFO(r.out << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  CHECK(std::regex_search(r.err,
                          std::regex(std::regex_replace(bad, std::regex(R"([.\[\]])"), R"(\$&)") +
                                     R"(:\d+:\d+: .*not valid YAML)")));

  RunResult missing =
      runToCompletion({proxyBinary(), "import", dir.file("absent.yml")}, dir, "missing");
  CHECK(missing.exit_code == 2);
  CHECK(contains(missing.err, "absent.yml: cannot read the file"));

  std::string good = dir.write("good.yml", "apm-server.host: \"0.0.0.0:8200\"\n");
  RunResult https = runToCompletion(
      {proxyBinary(), "import", "--upstream", "https://127.0.0.1:8201", good}, dir, "https");
  CHECK(https.exit_code == 2);
  CHECK(contains(https.err, "--upstream: TLS to the upstream is not supported"));

  RunResult unix_socket = runToCompletion(
      {proxyBinary(), "import", "--upstream", "unix:/run/apm/apm.sock", good}, dir, "unix");
  INFO(unix_socket.out << unix_socket.err);
  CHECK(unix_socket.exit_code == 0);
  CHECK(contains(unix_socket.out, "url = \"unix:/run/apm/apm.sock\""));
  CHECK(contains(unix_socket.err, "apm-server.host: \"unix:/run/apm/apm.sock\""));
}

}  // namespace proxy::integration
