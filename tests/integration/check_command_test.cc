// `apm-tls-proxy check` and `run` on good and bad configuration files: exit codes, the
// effective configuration, and every problem as FILE:LINE:COLUMN: key: message.
#include <catch2/catch.hpp>
#include <regex>

#include "tests/integration/harness.h"

namespace proxy::integration {
namespace {

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

bool matches(const std::string& text, const std::string& pattern) {
  return std::regex_search(text, std::regex(pattern));
}

std::string escape(const std::string& path) {
  return std::regex_replace(path, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)");
}

TEST_CASE("check accepts a valid config and prints it with every default", "[integration][check]") {
  TempDir dir;
  std::string path = dir.write("good.toml",
                               "[server]\n"
                               "host = \"127.0.0.1:0\"\n"
                               "request_header_timeout = \"1s\"\n"
                               "[upstream]\n"
                               "url = \"http://127.0.0.1:8201\"\n"
                               "response_timeout = \"1m30s\"\n");
  RunResult r = runToCompletion({proxyBinary(), "check", "--config", path}, dir, "check");
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "[server]"));
  CHECK(contains(r.out, "request_header_timeout = \"1s\""));
  CHECK(contains(r.out, "response_timeout = \"1m30s\""));
  // Defaults are filled in.
  CHECK(contains(r.out, "idle_timeout = \"45s\""));
  CHECK(contains(r.out, "max_header_size = 1048576"));
}

TEST_CASE("check reports an unknown key with its position and a suggestion",
          "[integration][check]") {
  TempDir dir;
  std::string path = dir.write("typo.toml",
                               "[server]\n"
                               "host = \"127.0.0.1:0\"\n"
                               "idle_timout = \"30s\"\n");
  RunResult r = runToCompletion({proxyBinary(), "check", "--config", path}, dir, "check");
  std::string all = r.out + r.err;
  INFO(all);
  CHECK(r.exit_code == 2);
  CHECK(matches(all, escape(path) + R"(:3:\d+: server\.idle_timout: .*unknown key)"));
  CHECK(matches(all, "did you mean [`\"]idle_timeout[`\"]"));
}

TEST_CASE("check reports every problem, not just the first", "[integration][check]") {
  TempDir dir;
  std::string path = dir.write("bad.toml",
                               "[server]\n"
                               "idle_timeout = \"forever\"\n"
                               "max_header_size = -5\n"
                               "[upstream]\n"
                               "url = \"ftp://127.0.0.1:8201\"\n");
  RunResult r = runToCompletion({proxyBinary(), "check", "--config", path}, dir, "check");
  std::string all = r.out + r.err;
  INFO(all);
  CHECK(r.exit_code == 2);
  CHECK(matches(all, escape(path) + R"(:2:\d+: server\.idle_timeout: )"));
  CHECK(matches(all, escape(path) + R"(:3:\d+: server\.max_header_size: )"));
  CHECK(matches(all, escape(path) + R"(:5:\d+: upstream\.url: )"));
}

TEST_CASE("check reports a TOML syntax error with its position", "[integration][check]") {
  TempDir dir;
  std::string path = dir.write("syntax.toml", "[server]\nhost = \"127.0.0.1:0\n");
  RunResult r = runToCompletion({proxyBinary(), "check", "--config", path}, dir, "check");
  std::string all = r.out + r.err;
  INFO(all);
  CHECK(r.exit_code == 2);
  CHECK(matches(all, escape(path) + R"(:2:\d+: )"));
}

TEST_CASE("check fails on a missing file", "[integration][check]") {
  TempDir dir;
  RunResult r =
      runToCompletion({proxyBinary(), "check", "--config", dir.file("absent.toml")}, dir, "check");
  INFO(r.out + r.err);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.out + r.err, "absent.toml"));
}

TEST_CASE("run refuses a bad config with exit code 2 and listens on nothing",
          "[integration][check]") {
  TempDir dir;
  std::string path = dir.write("bad.toml", "[server]\nhost = \"127.0.0.1:0\"\nbogus = 1\n");
  std::string ready = dir.file("ready");
  RunResult r =
      runToCompletion({proxyBinary(), "run", "--config", path, "--ready-file", ready}, dir, "run");
  INFO(r.out + r.err);
  CHECK(r.exit_code == 2);
  CHECK(matches(r.out + r.err, escape(path) + R"(:3:\d+: server\.bogus: )"));
  CHECK(readFile(ready).empty());
}

TEST_CASE("check accepts the plain-HTTP example in conf/", "[integration][check]") {
  TempDir dir;
  std::string path = std::string(PROXY_SOURCE_DIR) + "/conf/plain.toml";
  REQUIRE_FALSE(readFile(path).empty());
  RunResult r = runToCompletion({proxyBinary(), "check", "--config", path}, dir, "check");
  INFO(r.out + r.err);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "[upstream]"));
}

}  // namespace
}  // namespace proxy::integration
