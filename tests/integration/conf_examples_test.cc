// Every annotated example in conf/ passes `apm-tls-proxy check` as shipped: only the
// certificate and key paths are pointed at files minted for the test, since the
// examples name where an operator keeps them (/etc/apm-tls-proxy/tls/...).
#include <dirent.h>

#include <catch2/catch.hpp>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

using namespace proxy::integration;

namespace {

std::vector<std::string> confFiles() {
  std::vector<std::string> out;
  std::string dir = std::string(PROXY_SOURCE_DIR) + "/conf";
  DIR* d = opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".toml") == 0) {
      out.push_back(dir + "/" + name);
    }
  }
  closedir(d);
  return out;
}

}  // namespace

TEST_CASE("Every example in conf/ passes check", "[integration][conf]") {
  TempDir dir;
  std::string certs = dir.file("certs");
  RunResult ca =
      runToCompletion({proxyBinary(), "certutil", "ca", "--out", certs}, dir, "ca", Millis{30000});
  REQUIRE(ca.exit_code == 0);
  RunResult leaf =
      runToCompletion({proxyBinary(), "certutil", "cert", "--ca-cert", certs + "/ca.crt",
                       "--ca-key", certs + "/ca.key", "--name", "localhost", "--out", certs},
                      dir, "leaf", Millis{30000});
  REQUIRE(leaf.exit_code == 0);

  // "…/something.crt" or "…/something.key" in a TOML string: a CA bundle when its name
  // says so, else the server certificate or key.
  const std::regex path_re("\"([^\"\\n]*/)?([A-Za-z0-9_.-]+)\\.(crt|key)\"");
  const std::regex ca_re("(^|[-_.])ca([-_.]|$)");  // "ca", "clients-ca", not "localhost"
  std::vector<std::string> files = confFiles();
  REQUIRE(files.size() >= 5);
  for (const std::string& file : files) {
    std::string text = readFile(file);
    std::string out;
    auto begin = std::sregex_iterator(text.begin(), text.end(), path_re);
    size_t last = 0;
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
      const std::smatch& m = *it;
      std::string base = m[2].str();
      std::string replacement;
      if (m[3] == "key") {
        replacement = certs + "/localhost/localhost.key";
      } else if (std::regex_search(base, ca_re)) {
        replacement = certs + "/ca.crt";
      } else {
        replacement = certs + "/localhost/localhost.crt";
      }
      out.append(text, last, static_cast<size_t>(m.position(0)) - last);
      out.append("\"" + replacement + "\"");
      last = static_cast<size_t>(m.position(0) + m.length(0));
    }
    out.append(text, last, std::string::npos);
    std::string name = file.substr(file.rfind('/') + 1);
    std::string copy = dir.write(name, out);
    RunResult r = runToCompletion({proxyBinary(), "check", "--config", copy}, dir, "check");
    INFO(name << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("[server]") != std::string::npos);
  }
}
