// Files in the repository: every conf/*.toml loads, every invalid fixture fails with the
// message it announces, and docs/configuration.md lists every key with its default.
// Paths are relative: the tests run from the repository root (tests/CMakeLists.txt).
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/config/config.h"

using namespace proxy::config;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> filesIn(const std::string& dir, const std::string& extension) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == extension) out.push_back(entry.path().generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> linesOf(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("Every example in conf/ loads without errors or warnings", "[unit][config]") {
  std::vector<std::string> files = filesIn("conf", ".toml");
  for (const char* expected : {"conf/plain.toml", "conf/tls.toml", "conf/mtls.toml",
                               "conf/kubernetes.toml", "conf/quickstart.toml"}) {
    CHECK(std::find(files.begin(), files.end(), expected) != files.end());
  }
  for (const std::string& file : files) {
    LoadResult r = loadFile(file);
    INFO(file);
    for (const Problem& p : r.problems) UNSCOPED_INFO(p.format());
    REQUIRE(r.config.has_value());
    for (const Problem& p : r.config->warnings) UNSCOPED_INFO(p.format());
    CHECK(r.config->warnings.empty());
    // What `check` prints for it must load too.
    CHECK(loadString(toToml(*r.config), file + " (printed)").config.has_value());
  }
}

TEST_CASE("The examples in conf/ configure what their names promise", "[unit][config]") {
  Config plain = *loadFile("conf/plain.toml").config;
  CHECK_FALSE(plain.ssl.enabled);

  Config tls = *loadFile("conf/tls.toml").config;
  CHECK(tls.ssl.enabled);
  CHECK(tls.ssl.client_authentication == ClientAuth::kNone);

  Config mtls = *loadFile("conf/mtls.toml").config;
  CHECK(mtls.ssl.enabled);
  CHECK(mtls.ssl.client_authentication == ClientAuth::kRequired);
  CHECK_FALSE(mtls.ssl.allowed_clients.empty());

  Config k8s = *loadFile("conf/kubernetes.toml").config;
  CHECK(k8s.ssl.certificate == "/etc/apm-tls-proxy/tls/tls.crt");
  CHECK(k8s.ssl.key == "/etc/apm-tls-proxy/tls/tls.key");
  CHECK(k8s.ssl.certificate_authorities ==
        std::vector<std::string>{"/etc/apm-tls-proxy/tls/ca.crt"});
  CHECK(k8s.server.host == HostPort{"0.0.0.0", 8200});
  CHECK(k8s.admin.host == HostPort{"0.0.0.0", 9900});
  CHECK(k8s.upstream.tcp == HostPort{"127.0.0.1", 8201});
  CHECK(k8s.server.shutdown_delay == Millis{5'000});

  Config quick = *loadFile("conf/quickstart.toml").config;
  CHECK(quick.ssl.enabled);
  CHECK(quick.ssl.certificate.rfind(".state/quickstart/certs/", 0) == 0);
  CHECK(quick.ssl.key.rfind(".state/quickstart/certs/", 0) == 0);
}

TEST_CASE("Every invalid fixture fails with the messages it announces", "[unit][config]") {
  // Each fixture states its expected problems in "# expect: LINE:COLUMN: key: message"
  // comments; a problem matches when its formatted text starts with FILE:expectation.
  std::vector<std::string> fixtures = filesIn("tests/unit/config/fixtures", ".toml");
  REQUIRE(fixtures.size() >= 10);
  for (const std::string& file : fixtures) {
    LoadResult r = loadFile(file);
    INFO(file);
    CHECK_FALSE(r.config.has_value());
    std::vector<std::string> formatted;
    for (const Problem& p : r.problems) {
      formatted.push_back(p.format());
      UNSCOPED_INFO(p.format());
    }
    int expectations = 0;
    for (const std::string& line : linesOf(file)) {
      const std::string tag = "# expect: ";
      if (line.rfind(tag, 0) != 0) continue;
      ++expectations;
      std::string expected = file + ":" + line.substr(tag.size());
      bool found = std::any_of(formatted.begin(), formatted.end(),
                               [&](const std::string& f) { return f.rfind(expected, 0) == 0; });
      INFO("expected: " << expected);
      CHECK(found);
    }
    CHECK(expectations > 0);
    // Nothing unannounced: every error is expected (warnings may come along).
    int errors = 0;
    for (const Problem& p : r.problems) errors += p.warning ? 0 : 1;
    CHECK(errors == expectations);
  }
}

TEST_CASE("docs/configuration.md lists every key with its default and APM equivalent",
          "[unit][config]") {
  std::vector<std::string> lines = linesOf("docs/configuration.md");
  for (const KeyInfo& key : knownKeys()) {
    std::string path = std::string("`") + key.path + "`";
    const std::string* row = nullptr;
    for (const std::string& line : lines) {
      if (line.rfind("|", 0) == 0 && line.find(path) != std::string::npos) {
        row = &line;
        break;
      }
    }
    INFO(key.path);
    REQUIRE(row != nullptr);
    // TOML defaults appear as code spans; "(required)"-style notes as plain text.
    std::string def = key.default_text;
    CHECK(row->find(def[0] == '(' ? def : "`" + def + "`") != std::string::npos);
    CHECK(row->find(key.apm) != std::string::npos);
  }
}
