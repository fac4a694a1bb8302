// ${VAR} expansion: the expander on its own (a fake environment), then through the loader
// (the real environment, with variable names no one else uses): values, errors with their
// line and column, and what `check` prints about where a value came from.
#include "proxy/config/env_expand.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <string>

#include "proxy/config/config.h"

using namespace proxy::config;
using proxy::Result;

namespace {

EnvLookup fakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const EnvLookup kEnv = fakeEnv({{"HOST", "10.0.0.1"}, {"PORT", "8200"}, {"EMPTY", ""}});

std::string expanded(const std::string& text) {
  Result<Expanded> r = expandVariables(text, kEnv);
  INFO(text << " -> " << (r ? "" : r.status().message()));
  REQUIRE(r);
  return r.value().value;
}

std::string refusal(const std::string& text) {
  Result<Expanded> r = expandVariables(text, kEnv);
  INFO(text << " -> " << (r ? r.value().value : ""));
  REQUIRE_FALSE(r);
  return r.status().message();
}

// Sets an environment variable for the life of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

const std::string kTls = "[ssl]\ncertificate = \"s.crt\"\nkey = \"s.key\"\n";

std::vector<std::string> problemsOf(const std::string& text) {
  LoadResult r = loadString(text, "env.toml");
  CHECK_FALSE(r.config.has_value());
  std::vector<std::string> out;
  for (const Problem& p : r.problems) out.push_back(p.format());
  return out;
}

}  // namespace

TEST_CASE("Text without references is unchanged", "[unit][config][env]") {
  CHECK(expanded("") == "");
  CHECK(expanded("/etc/apm-tls-proxy/tls/tls.crt") == "/etc/apm-tls-proxy/tls/tls.crt");
  Result<Expanded> r = expandVariables("plain", kEnv);
  REQUIRE(r);
  CHECK(r.value().variables.empty());
}

TEST_CASE("${VAR} is replaced by the variable's value", "[unit][config][env]") {
  CHECK(expanded("${HOST}") == "10.0.0.1");
  CHECK(expanded("${HOST}:${PORT}") == "10.0.0.1:8200");
  CHECK(expanded("http://${HOST}:${PORT}/") == "http://10.0.0.1:8200/");
  CHECK(expanded("[${EMPTY}]") == "[]");
  Result<Expanded> r = expandVariables("${HOST}:${PORT}", kEnv);
  REQUIRE(r);
  REQUIRE(r.value().variables.size() == 2);
  CHECK(r.value().variables[0].name == "HOST");
  CHECK(r.value().variables[1].name == "PORT");
  CHECK_FALSE(r.value().variables[0].used_default);
}

TEST_CASE("${VAR:default} takes the default only when VAR is unset", "[unit][config][env]") {
  CHECK(expanded("${NOPE:fallback}") == "fallback");
  CHECK(expanded("${HOST:fallback}") == "10.0.0.1");
  CHECK(expanded("${EMPTY:fallback}") == "");  // set but empty counts as set
  CHECK(expanded("${NOPE:}") == "");
  Result<Expanded> r = expandVariables("${NOPE:x}", kEnv);
  REQUIRE(r);
  REQUIRE(r.value().variables.size() == 1);
  CHECK(r.value().variables[0].used_default);
}

TEST_CASE("A default may contain colons: the name ends at the first one", "[unit][config][env]") {
  CHECK(expanded("${UPSTREAM:http://127.0.0.1:8201}") == "http://127.0.0.1:8201");
  CHECK(expanded("${NOPE::}") == ":");
  CHECK(expanded("${NOPE:a:b:c}") == "a:b:c");
  CHECK(expanded("${HOST:a:b}") == "10.0.0.1");
}

TEST_CASE("$$ is a literal dollar sign", "[unit][config][env]") {
  CHECK(expanded("$$") == "$");
  CHECK(expanded("pa$$$$word") == "pa$$word");
  CHECK(expanded("$${HOST}") == "${HOST}");
  CHECK(expanded("$$$${HOST}") == "$$" + std::string("{HOST}"));
  CHECK(expanded("$$${HOST}") == "$10.0.0.1");
}

TEST_CASE("A $ not followed by { or $ is kept", "[unit][config][env]") {
  CHECK(expanded("$") == "$");
  CHECK(expanded("a$b") == "a$b");
  CHECK(expanded("5$") == "5$");
  CHECK(expanded("$ {HOST}") == "$ {HOST}");
  CHECK(expanded("$HOST") == "$HOST");  // only the braced form is a reference
  CHECK(expanded("}") == "}");
}

TEST_CASE("An unset variable without a default is an error naming it", "[unit][config][env]") {
  CHECK(refusal("${MISSING}") == "environment variable MISSING is not set (and no default given)");
  CHECK(refusal("${HOST}/${MISSING}") ==
        "environment variable MISSING is not set (and no default given)");
}

TEST_CASE("Malformed references are refused with the reason", "[unit][config][env]") {
  CHECK_THAT(refusal("${A:${B}}"), Catch::Contains("nested braces"));
  CHECK_THAT(refusal("${${B}}"), Catch::Contains("nested braces"));
  CHECK_THAT(refusal("${}"), Catch::Contains("empty variable name"));
  CHECK_THAT(refusal("${:default}"), Catch::Contains("empty variable name"));
  CHECK_THAT(refusal("${HOST"), Catch::Contains("without a closing"));
  CHECK_THAT(refusal("abc${"), Catch::Contains("without a closing"));
  CHECK_THAT(refusal("${1ST}"), Catch::Contains("invalid variable name \"1ST\""));
  CHECK_THAT(refusal("${A-B}"), Catch::Contains("invalid variable name \"A-B\""));
  CHECK_THAT(refusal("${A B}"), Catch::Contains("invalid variable name"));
}

TEST_CASE("escapeVariables gives text that expands back to itself", "[unit][config][env]") {
  for (const std::string s : {"", "$", "$$", "${HOST}", "$${HOST}", "a$b$", "${", "}$"}) {
    INFO(s);
    CHECK(expanded(escapeVariables(s)) == s);
  }
}

TEST_CASE("describeSource shows the original text, or only names for a secret",
          "[unit][config][env]") {
  Result<Expanded> r = expandVariables("${NOPE:hunter2}-${HOST}", kEnv);
  REQUIRE(r);
  CHECK(describeSource("${NOPE:hunter2}-${HOST}", r.value(), false) ==
        "\"${NOPE:hunter2}-${HOST}\" (unset, default used: NOPE)");
  std::string secret = describeSource("${NOPE:hunter2}-${HOST}", r.value(), true);
  CHECK(secret == "${NOPE} ${HOST} (value redacted)");
  CHECK(secret.find("hunter2") == std::string::npos);
}

TEST_CASE("The loader expands string values, arrays and durations", "[unit][config][env]") {
  ScopedEnv pass("APM_TLS_PROXY_TEST_PASSPHRASE", "s3cret pass");
  ScopedEnv dir("APM_TLS_PROXY_TEST_DIR", "/run/secrets");
  LoadResult r = loadString(
      "[server]\n"
      "idle_timeout = \"${APM_TLS_PROXY_TEST_UNSET:50s}\"\n"
      "[ssl]\n"
      "certificate = \"${APM_TLS_PROXY_TEST_DIR}/tls.crt\"\n"
      "key = \"${APM_TLS_PROXY_TEST_DIR}/tls.key\"\n"
      "key_passphrase = \"${APM_TLS_PROXY_TEST_PASSPHRASE}\"\n"
      "certificate_authorities = [\"/etc/ca.crt\", \"${APM_TLS_PROXY_TEST_DIR}/ca.crt\"]\n",
      "env.toml");
  for (const Problem& p : r.problems) UNSCOPED_INFO(p.format());
  REQUIRE(r.config);
  const Config& c = *r.config;
  CHECK(c.server.idle_timeout == Millis{50'000});
  CHECK(c.ssl.certificate == "/run/secrets/tls.crt");
  CHECK(c.ssl.key == "/run/secrets/tls.key");
  CHECK(c.ssl.key_passphrase == "s3cret pass");
  CHECK(c.ssl.certificate_authorities ==
        std::vector<std::string>{"/etc/ca.crt", "/run/secrets/ca.crt"});
  CHECK(c.sources.count("ssl.certificate_authorities[1]") == 1);
  CHECK(c.sources.count("ssl.certificate_authorities[0]") == 0);

  // check's output says where each value came from and never shows the passphrase.
  std::string toml = toToml(c);
  INFO(toml);
  CHECK(toml.find("s3cret") == std::string::npos);
  CHECK(toml.find("key_passphrase = \"<redacted>\"") != std::string::npos);
  CHECK(toml.find("# from ${APM_TLS_PROXY_TEST_PASSPHRASE} (value redacted)\n"
                  "key_passphrase = ") != std::string::npos);
  CHECK(toml.find("# from \"${APM_TLS_PROXY_TEST_DIR}/tls.crt\"\ncertificate = "
                  "\"/run/secrets/tls.crt\"") != std::string::npos);
  CHECK(toml.find("# from \"${APM_TLS_PROXY_TEST_UNSET:50s}\" (unset, default used: "
                  "APM_TLS_PROXY_TEST_UNSET)\nidle_timeout = \"50s\"") != std::string::npos);
  CHECK(toml.find("# [1] from \"${APM_TLS_PROXY_TEST_DIR}/ca.crt\"\n"
                  "certificate_authorities = ") != std::string::npos);
}

TEST_CASE("An unset variable is an error at the value's line and column", "[unit][config][env]") {
  std::vector<std::string> errors =
      problemsOf(kTls +
                 "key_passphrase = \"${APM_TLS_PROXY_TEST_UNSET}\"\n"
                 "certificate_authorities = [\"/etc/ca.crt\", \"${APM_TLS_PROXY_TEST_UNSET2}\"]\n"
                 "[upstream]\n"
                 "url = \"http://${APM_TLS_PROXY_TEST_UNSET3:127.0.0.1:8201}\"\n"
                 "response_timeout = \"${APM_TLS_PROXY_TEST_UNSET4}\"\n");
  REQUIRE(errors.size() == 3);
  CHECK(errors[0] ==
        "env.toml:4:18: ssl.key_passphrase: environment variable APM_TLS_PROXY_TEST_UNSET is "
        "not set (and no default given)");
  CHECK(errors[1] ==
        "env.toml:5:43: ssl.certificate_authorities[1]: environment variable "
        "APM_TLS_PROXY_TEST_UNSET2 is not set (and no default given)");
  CHECK(errors[2] ==
        "env.toml:8:20: upstream.response_timeout: environment variable "
        "APM_TLS_PROXY_TEST_UNSET4 is not set (and no default given)");
}

TEST_CASE("A malformed reference is an error at its value", "[unit][config][env]") {
  std::vector<std::string> errors = problemsOf("[log]\naccess = \"/var/log/${A:${B}}.log\"\n");
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Catch::StartsWith("env.toml:2:10: log.access: nested braces"));
}

TEST_CASE("A value expanding to empty is checked after expansion", "[unit][config][env]") {
  ScopedEnv empty("APM_TLS_PROXY_TEST_EMPTY", "");
  std::vector<std::string> errors =
      problemsOf("[ssl]\ncertificate = \"${APM_TLS_PROXY_TEST_EMPTY}\"\nkey = \"k\"\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == "env.toml:2:15: ssl.certificate: must not be empty");
}

TEST_CASE("check's output reads back to the same values, $ included", "[unit][config][env]") {
  LoadResult first = loadString(kTls +
                                    "key_passphrase_path = \"/run/$${literal}/pa$$ss\"\n"
                                    "[log]\naccess = \"/var/log/a$b.log\"\n",
                                "env.toml");
  REQUIRE(first.config);
  CHECK(first.config->ssl.key_passphrase_path == "/run/${literal}/pa$ss");
  CHECK(first.config->log.access == "/var/log/a$b.log");
  CHECK(first.config->sources.empty());
  LoadResult second = loadString(toToml(*first.config), "effective.toml");
  for (const Problem& p : second.problems) UNSCOPED_INFO(p.format());
  REQUIRE(second.config);
  CHECK(second.config->ssl.key_passphrase_path == "/run/${literal}/pa$ss");
  CHECK(second.config->log.access == "/var/log/a$b.log");
}

TEST_CASE("An inline private key from a variable is not printed by check", "[unit][config][env]") {
  ScopedEnv key("APM_TLS_PROXY_TEST_KEY_PEM",
                "-----BEGIN PRIVATE KEY-----\nSECRETKEYBYTES\n-----END PRIVATE KEY-----\n");
  LoadResult r = loadString(
      "[ssl]\ncertificate = \"s.crt\"\nkey = \"${APM_TLS_PROXY_TEST_KEY_PEM}\"\n", "env.toml");
  REQUIRE(r.config);
  CHECK(r.config->ssl.key.find("SECRETKEYBYTES") != std::string::npos);
  std::string toml = toToml(*r.config);
  INFO(toml);
  CHECK(toml.find("SECRETKEYBYTES") == std::string::npos);
  CHECK(
      toml.find("# from ${APM_TLS_PROXY_TEST_KEY_PEM} (value redacted)\nkey = \"<redacted>\"\n") !=
      std::string::npos);

  // A key file named through a variable is only a path: shown as usual.
  ScopedEnv dir("APM_TLS_PROXY_TEST_DIR", "/run/secrets");
  LoadResult path = loadString(
      "[ssl]\ncertificate = \"s.crt\"\nkey = \"${APM_TLS_PROXY_TEST_DIR}/tls.key\"\n", "env.toml");
  REQUIRE(path.config);
  CHECK(toToml(*path.config).find("key = \"/run/secrets/tls.key\"") != std::string::npos);
}
