#include "tests/integration/ops_support.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace proxy::integration::ops {

// ---- SecretDir ----

SecretDir::SecretDir(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  std::filesystem::create_directories(path_, ec);
  REQUIRE_FALSE(ec);
}

void SecretDir::publish(const std::map<std::string, std::string>& files) {
  ++generation_;
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "..2026_01_0%d_12_00_00.%09d", generation_ % 10,
                123456789 + generation_);
  std::string ts = stamp;
  std::string ts_path = file(ts);
  INFO("mkdir " << ts_path);
  REQUIRE(::mkdir(ts_path.c_str(), 0755) == 0);
  for (const auto& [name, content] : files) testsupport::writeFile(ts_path + "/" + name, content);

  if (current_.empty()) {
    REQUIRE(::symlink(ts.c_str(), file("..data").c_str()) == 0);
    for (const auto& [name, content] : files) {
      (void)content;
      REQUIRE(::symlink(("..data/" + name).c_str(), file(name).c_str()) == 0);
    }
  } else {
    std::string tmp = file("..data_tmp");
    REQUIRE(::symlink(ts.c_str(), tmp.c_str()) == 0);
    REQUIRE(::rename(tmp.c_str(), file("..data").c_str()) == 0);
    std::error_code ec;
    std::filesystem::remove_all(file(current_), ec);
    REQUIRE_FALSE(ec);
  }
  current_ = ts;
}

// ---- TLS client settings ----

testsupport::TlsClientOptions TlsClientOptions::toClientOptions() const {
  testsupport::TlsClientOptions o;
  o.min_version = min_version;
  o.max_version = max_version;
  o.trust_pem = ca_pem;
  o.verify_ip.clear();
  o.verify_host = "localhost";
  o.sni = sni;
  o.cert_pem = cert_pem;
  o.key_pem = key_pem;
  o.alpn.clear();
  o.close_notify = false;
  // Generous: load threads share the machine with the proxy under test.
  o.timeout = Millis{10000};
  return o;
}

void requireConnect(TlsClient& c, Millis timeout) {
  bool ok = c.connect(timeout);
  INFO("TLS connect failed: " << c.error());
  REQUIRE(ok);
}

// ---- admin ----

Response adminGet(uint16_t admin_port, const std::string& path, Millis timeout) {
  return testsupport::httpGet(admin_port, path, timeout);
}

uint16_t adminPortFromReadyFile(const TempDir& dir, const std::string& name) {
  std::string text = readFile(dir.file(name + ".ready"));
  for (const std::string& l : lines(text)) {
    if (l.rfind("admin=", 0) == 0) return portOf(l.substr(6));
  }
  FAIL("no admin= line in the ready file: " << text);
  return 0;
}

// ---- OpsStack ----

std::string sslTable(const std::string& cert_path, const std::string& key_path,
                     const std::string& more) {
  return "[ssl]\ncertificate = \"" + cert_path + "\"\nkey = \"" + key_path + "\"\n" + more + "\n";
}

OpsStack::OpsStack(OpsOptions o)
    : leaf(pki.server("apm-server")),
      cert_path(dir.write("server.crt", leaf.cert)),
      key_path(dir.write("server.key", leaf.key)),
      demo(dir) {
  ProxyConfig config = o.config;
  config.upstreamPort(o.upstream_port != 0 ? o.upstream_port : demo.port());
  std::string extra;
  if (o.tls) extra += sslTable(cert_path, key_path, o.ssl_extra);
  if (o.admin) extra += "[admin]\nhost = \"127.0.0.1:0\"\n" + o.admin_extra + "\n";
  config.extra = extra + o.extra;
  proxy_ = std::make_unique<ProxyProcess>(dir, config, "proxy", o.proxy_env);
  if (o.admin) admin_port_ = adminPortFromReadyFile(dir);
  TlsClientOptions co;
  co.ca_pem = pki.caPem();
  client_ = std::make_unique<TlsClientContext>(co);
}

std::map<std::string, double> OpsStack::metrics() const {
  Response r = adminGet(admin_port_, "/metrics");
  INFO("GET /metrics: " << r.status << "\n" << r.body);
  REQUIRE(r.status == 200);
  return parseMetrics(r.body);
}

// ---- misc ----

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

size_t countOf(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos;
       p = haystack.find(needle, p + needle.size()))
    ++n;
  return n;
}

}  // namespace proxy::integration::ops
