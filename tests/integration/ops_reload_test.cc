// Certificate reload against the real binary: a Kubernetes Secret update (the kubelet's
// ..data symlink swap) under continuous load with zero failed requests, a bad new set
// rejected while the old one keeps serving, SIGHUP, and start-up before the files exist
// ([ssl] wait_for_certificates).
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <mutex>
#include <thread>

#include "tests/integration/ops_support.h"

namespace proxy::integration::ops {
namespace {

using Clock = std::chrono::steady_clock;

const std::string kReloaded = "msg=\"certificates reloaded\"";
const std::string kRejected = "msg=\"certificate reload rejected; old certificates stay\"";

// A proxy whose certificate and key live in a kubelet-style Secret directory.
struct SecretStack {
  explicit SecretStack(const PemPair& first, const std::string& ssl_extra = "")
      : secret(dir.file("secret")), demo(dir) {
    secret.publish({{"tls.crt", first.cert}, {"tls.key", first.key}});
    ProxyConfig config;
    config.upstreamPort(demo.port());
    config.extra = sslTable(secret.file("tls.crt"), secret.file("tls.key"), ssl_extra) +
                   "[admin]\nhost = \"127.0.0.1:0\"\n";
    proxy = std::make_unique<ProxyProcess>(dir, config);
    admin_port = adminPortFromReadyFile(dir);
  }
  TempDir dir;
  SecretDir secret;
  DemoServer demo;
  std::unique_ptr<ProxyProcess> proxy;
  uint16_t admin_port = 0;
};

// The serial of the leaf a fresh connection is served; "" (with the error in `why`) when
// the handshake fails.
std::string servedSerial(uint16_t port, const TlsClientContext& ctx, std::string* why = nullptr) {
  TlsClient c(port, ctx);
  if (!c.connect()) {
    if (why) *why = c.error();
    return "";
  }
  return c.peerSerialHex();
}

double reloads(uint16_t admin_port, const char* result) {
  Response r = adminGet(admin_port, "/metrics");
  REQUIRE(r.status == 200);
  auto m = parseMetrics(r.body);
  std::string series =
      std::string("apm_tls_proxy_certificate_reloads_total{result=\"") + result + "\"}";
  auto v = metric(m, series);
  INFO("no series " << series);
  REQUIRE(v.has_value());
  return *v;
}

// Clients that keep sending requests until stopped: each loop does one request on a
// long-lived keep-alive connection (renewed every 25 requests) and one on a fresh
// connection. Every failure is recorded with what went wrong.
class Load {
 public:
  Load(uint16_t port, const TlsClientContext& ctx, int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this, port, &ctx] { run(port, ctx); });
  }
  ~Load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  uint64_t ok() const { return ok_; }
  std::vector<std::string> failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }

 private:
  void fail(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (failures_.size() < 20) failures_.push_back(what);
    ++failed_;
  }
  void run(uint16_t port, const TlsClientContext& ctx) {
    std::unique_ptr<TlsClient> keep;
    int on_keep = 0;
    uint64_t n = 0;
    while (!stop_) {
      ++n;
      if (!keep) {
        keep = std::make_unique<TlsClient>(port, ctx);
        on_keep = 0;
        if (!keep->connect()) {
          fail("keep-alive connect: " + keep->error());
          keep.reset();
          continue;
        }
      }
      std::string body = "{\"metadata\":{\"n\":" + std::to_string(n) + "}}\n";
      Response r = keep->request(httpRequest("POST", "/intake/v2/events", "", body));
      if (!r.complete || r.status != 202) {
        fail("keep-alive request " + std::to_string(on_keep) + ": status " +
             std::to_string(r.status) + " " + keep->error());
        keep.reset();
      } else {
        ++ok_;
        if (++on_keep >= 25) keep.reset();
      }
      TlsClient fresh(port, ctx);
      if (!fresh.connect()) {
        fail("new connection: " + fresh.error());
        continue;
      }
      r = fresh.request(httpRequest("GET", "/", "Connection: close\r\n"));
      if (!r.complete || r.status != 200) {
        fail("new-connection request: status " + std::to_string(r.status) + " " + fresh.error());
      } else {
        ++ok_;
      }
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> ok_{0};
  std::atomic<uint64_t> failed_{0};
  std::mutex mu_;
  std::vector<std::string> failures_;
  std::vector<std::thread> threads_;
};

TEST_CASE("A Secret update by ..data symlink swap under load drops no request",
          "[integration][ops][reload]") {
  Pki pki;
  PemPair v1 = pki.server("apm-server-v1");
  PemPair v2 = pki.server("apm-server-v2");
  SecretStack stack(v1);
  TlsClientOptions co;
  co.ca_pem = pki.caPem();
  TlsClientContext ctx(co);
  const uint16_t port = stack.proxy->port();

  // A connection established before the update; it must keep working afterwards.
  TlsClient old_conn(port, ctx);
  requireConnect(old_conn);
  CHECK(old_conn.peerSerialHex() == v1.serial_hex);
  Response first = old_conn.request(httpRequest("POST", "/intake/v2/events", "", "{}\n"));
  REQUIRE(first.status == 202);
  double successes_before = reloads(stack.admin_port, "success");

  Load load(port, ctx, 2);
  REQUIRE(eventually([&] { return load.ok() >= 30; }, Millis{10000}));

  stack.secret.publish({{"tls.crt", v2.cert}, {"tls.key", v2.key}});
  auto swapped_at = Clock::now();
  std::string why;
  bool served_new =
      eventually([&] { return servedSerial(port, ctx, &why) == v2.serial_hex; }, Millis{5000});
  auto took = std::chrono::duration_cast<Millis>(Clock::now() - swapped_at);
  INFO("stderr:\n" << stack.proxy->process().stderrText());
  INFO("last handshake error: " << why);
  REQUIRE(served_new);
  // The debounced directory watch found it, not the 60 s periodic re-check.
  CHECK(took < Millis{3000});

  // Keep the load going a little after the swap too.
  uint64_t at_swap = load.ok();
  REQUIRE(eventually([&] { return load.ok() >= at_swap + 30; }, Millis{10000}));
  load.stop();
  auto failures = load.failures();
  for (const auto& f : failures) UNSCOPED_INFO("failure: " << f);
  CHECK(failures.empty());
  CHECK(load.ok() >= 60);

  // New handshakes get the new leaf; the old connection keeps its session.
  TlsClient fresh(port, ctx);
  requireConnect(fresh);
  CHECK(fresh.peerSerialHex() == v2.serial_hex);
  CHECK(fresh.peerSubjectCn() == "apm-server-v2");
  Response again = old_conn.request(httpRequest("POST", "/intake/v2/events", "", "{}\n"));
  INFO("old connection: " << old_conn.error());
  CHECK(again.status == 202);
  CHECK(old_conn.peerSerialHex() == v1.serial_hex);

  std::string log = stack.proxy->process().stderrText();
  CHECK(countOf(log, kReloaded) == 1);
  CHECK(log.find("trigger=\"file change\"") != std::string::npos);
  CHECK(log.find("apm-server-v2") != std::string::npos);
  CHECK(reloads(stack.admin_port, "success") == successes_before + 1);
  CHECK(reloads(stack.admin_port, "failure") == 0);
}

TEST_CASE("A new certificate whose key does not match is rejected and the old set keeps serving",
          "[integration][ops][reload]") {
  Pki pki;
  PemPair v1 = pki.server("apm-server-v1");
  PemPair v2 = pki.server("apm-server-v2");
  PemPair other = pki.server("unrelated");
  SecretStack stack(v1);
  TlsClientOptions co;
  co.ca_pem = pki.caPem();
  TlsClientContext ctx(co);
  const uint16_t port = stack.proxy->port();
  double successes_before = reloads(stack.admin_port, "success");
  REQUIRE(reloads(stack.admin_port, "failure") == 0);

  stack.secret.publish({{"tls.crt", v2.cert}, {"tls.key", other.key}});
  Process& proc = stack.proxy->process();
  bool rejected = eventually([&] { return proc.stderrText().find(kRejected) != std::string::npos; },
                             Millis{5000});
  INFO("stderr:\n" << proc.stderrText());
  REQUIRE(rejected);
  // The line says why.
  std::string log = proc.stderrText();
  std::string line = log.substr(log.find(kRejected));
  line = line.substr(0, line.find('\n'));
  INFO("rejection line: " << line);
  CHECK(line.find("problem=") != std::string::npos);
  CHECK(log.find("level=error msg=\"certificate reload rejected") != std::string::npos);

  // The old set serves new handshakes, and requests go through.
  TlsClient c(port, ctx);
  requireConnect(c);
  CHECK(c.peerSerialHex() == v1.serial_hex);
  Response r = c.request(httpRequest("POST", "/intake/v2/events", "", "{}\n"));
  CHECK(r.status == 202);
  CHECK(reloads(stack.admin_port, "failure") == 1);
  CHECK(reloads(stack.admin_port, "success") == successes_before);
  CHECK(countOf(proc.stderrText(), kReloaded) == 0);

  // A good set published afterwards is picked up.
  stack.secret.publish({{"tls.crt", v2.cert}, {"tls.key", v2.key}});
  CHECK(eventually([&] { return servedSerial(port, ctx) == v2.serial_hex; }, Millis{5000}));
  CHECK(reloads(stack.admin_port, "success") == successes_before + 1);
}

TEST_CASE("SIGHUP reloads the certificate set and established connections keep working",
          "[integration][ops][reload]") {
  OpsStack stack;
  Process& proc = stack.process();
  // The reload counter counts reloads after start-up (docs/metrics.md).
  CHECK(metric(stack.metrics(), "apm_tls_proxy_certificate_reloads_total{result=\"success\"}")
            .value_or(-1) == 0);
  double successes_before = reloads(stack.adminPort(), "success");

  TlsClient old_conn(stack.port(), stack.client());
  requireConnect(old_conn);
  REQUIRE(old_conn.peerSerialHex() == stack.leaf.serial_hex);

  // Unchanged files: SIGHUP still reloads (the operator asked for it).
  proc.signal(SIGHUP);
  REQUIRE(eventually([&] { return countOf(proc.stderrText(), kReloaded) == 1; }, Millis{5000}));
  CHECK(proc.stderrText().find("trigger=SIGHUP") != std::string::npos);
  CHECK(reloads(stack.adminPort(), "success") == successes_before + 1);

  // New files, replaced the way an editor or cp does it, then SIGHUP at once (well
  // inside the 500 ms debounce of the directory watch).
  PemPair v2 = stack.pki.server("apm-server-v2");
  stack.dir.write("server.crt.new", v2.cert);
  stack.dir.write("server.key.new", v2.key);
  REQUIRE(std::rename(stack.dir.file("server.key.new").c_str(), stack.key_path.c_str()) == 0);
  REQUIRE(std::rename(stack.dir.file("server.crt.new").c_str(), stack.cert_path.c_str()) == 0);
  proc.signal(SIGHUP);
  REQUIRE(eventually([&] { return servedSerial(stack.port(), stack.client()) == v2.serial_hex; },
                     Millis{5000}));
  std::string log = proc.stderrText();
  INFO("stderr:\n" << log);
  CHECK(countOf(log, "trigger=SIGHUP") == 2);
  CHECK(countOf(log, kRejected) == 0);

  Response r = old_conn.request(httpRequest("POST", "/intake/v2/events", "", "{}\n"));
  INFO("old connection: " << old_conn.error());
  CHECK(r.status == 202);
  CHECK(old_conn.peerSerialHex() == stack.leaf.serial_hex);
  CHECK(proc.running());
}

TEST_CASE("wait_for_certificates: not ready until the Secret appears, then serves",
          "[integration][ops][reload][readiness]") {
  TempDir dir;
  Pki pki;
  PemPair leaf = pki.server("apm-server");
  SecretDir secret(dir.file("secret"));  // mounted, still empty
  DemoServer demo(dir);
  // The ready file only appears once the proxy listens, so the admin port is chosen here.
  uint16_t admin_port = unusedPort();
  ProxyConfig config;
  config.upstreamPort(demo.port());
  config.extra =
      sslTable(secret.file("tls.crt"), secret.file("tls.key"), "wait_for_certificates = true\n") +
      "[admin]\nhost = \"127.0.0.1:" + std::to_string(admin_port) + "\"\n";
  std::string config_path = dir.write("proxy.toml", config.toToml());
  std::string ready_path = dir.file("proxy.ready");
  Process proc({proxyBinary(), "run", "--config", config_path, "--ready-file", ready_path},
               dir.file("proxy"));

  bool admin_up = eventually(
      [&] {
        int fd = tcpConnect(admin_port, Millis{500});
        if (fd < 0) return false;
        ::close(fd);
        return true;
      },
      Millis{5000});
  INFO("stderr:\n" << proc.stderrText());
  REQUIRE(admin_up);
  Response healthz = adminGet(admin_port, "/healthz");
  CHECK(healthz.status == 200);
  Response readyz = adminGet(admin_port, "/readyz");
  CHECK(readyz.status == 503);
  CHECK(readyz.body.find("certificates not loaded") != std::string::npos);
  CHECK(readFile(ready_path).empty());
  CHECK(proc.running());

  secret.publish({{"tls.crt", leaf.cert}, {"tls.key", leaf.key}});
  bool ready =
      eventually([&] { return adminGet(admin_port, "/readyz").status == 200; }, Millis{5000});
  INFO("stderr:\n" << proc.stderrText());
  REQUIRE(ready);
  auto values = waitForReadyFile(proc, ready_path);
  REQUIRE(values.count("listen") == 1);
  TlsClientOptions co;
  co.ca_pem = pki.caPem();
  TlsClientContext ctx(co);
  TlsClient c(portOf(values["listen"]), ctx);
  requireConnect(c);
  CHECK(c.peerSerialHex() == leaf.serial_hex);
  Response r = c.request(httpRequest("POST", "/intake/v2/events", "", "{}\n"));
  CHECK(r.status == 202);
  CHECK(proc.stop() == 0);
}

}  // namespace
}  // namespace proxy::integration::ops
