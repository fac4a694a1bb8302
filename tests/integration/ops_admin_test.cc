// The admin endpoint against the real binary: readiness that follows the upstream
// ([admin] ready_requires_upstream), and /metrics parsed and checked value by value after
// a known sequence of requests, handshake failures and a 502 (plus `promtool check
// metrics` when PROMTOOL names the binary).
#include <openssl/ssl.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <ctime>

#include "tests/integration/ops_support.h"

namespace proxy::integration::ops {
namespace {

TEST_CASE("With ready_requires_upstream, /readyz follows the upstream's reachability",
          "[integration][ops][admin][readiness]") {
  TempDir dir;
  Pki pki;
  PemPair leaf = pki.server("apm-server");
  std::string cert = dir.write("server.crt", leaf.cert);
  std::string key = dir.write("server.key", leaf.key);
  uint16_t upstream_port = unusedPort();  // nothing listens there yet
  ProxyConfig config;
  config.upstreamPort(upstream_port);
  config.extra =
      sslTable(cert, key) + "[admin]\nhost = \"127.0.0.1:0\"\nready_requires_upstream = true\n";
  ProxyProcess proxy(dir, config);
  uint16_t admin = adminPortFromReadyFile(dir);

  // Live, listening, certificates loaded, but the upstream is down.
  CHECK(adminGet(admin, "/healthz").status == 200);
  Response r = adminGet(admin, "/readyz");
  CHECK(r.status == 503);
  CHECK(r.body.find("upstream unreachable") != std::string::npos);
  CHECK(metric(parseMetrics(adminGet(admin, "/metrics").body), "apm_tls_proxy_ready") == 0.0);

  // The upstream comes up on that port: ready within a probe interval or two (2 s each).
  Process upstream({demoBinary(), "--listen", "127.0.0.1:" + std::to_string(upstream_port),
                    "--ready-file", dir.file("upstream.ready"), "--quiet"},
                   dir.file("upstream"));
  waitForReadyFile(upstream, dir.file("upstream.ready"));
  auto up_at = std::chrono::steady_clock::now();
  bool ready = eventually([&] { return adminGet(admin, "/readyz").status == 200; }, Millis{5000});
  INFO("stderr:\n" << proxy.process().stderrText());
  REQUIRE(ready);
  CHECK(std::chrono::steady_clock::now() - up_at < Millis{4500});
  CHECK(adminGet(admin, "/readyz").body.find("ready") != std::string::npos);
  CHECK(metric(parseMetrics(adminGet(admin, "/metrics").body), "apm_tls_proxy_ready") == 1.0);

  // And it goes away again.
  CHECK(upstream.stop() == 0);
  bool unready = eventually(
      [&] {
        Response again = adminGet(admin, "/readyz");
        return again.status == 503 && again.body.find("upstream unreachable") != std::string::npos;
      },
      Millis{5000});
  CHECK(unready);
  CHECK(adminGet(admin, "/healthz").status == 200);  // liveness never follows the upstream
}

// A series' value; -1 when it is missing (so a failed check shows the number).
double val(const std::map<std::string, double>& m, const std::string& series) {
  return metric(m, series).value_or(-1);
}

// Reads the stack's handshake failures by reason.
double failures(const std::map<std::string, double>& m, const std::string& reason) {
  return val(m, "apm_tls_proxy_tls_handshake_failures_total{reason=\"" + reason + "\"}");
}

TEST_CASE("Metrics count a known sequence of requests, handshake failures and a 502 exactly",
          "[integration][ops][admin][metrics]") {
  // Client certificates are optional, so unknown_ca can be provoked while clients
  // without one still get through.
  OpsOptions o;
  Pki agent_pki("agents CA");
  TempDir ca_dir;
  std::string ca_path = ca_dir.write("agents-ca.crt", agent_pki.caPem());
  o.ssl_extra =
      "certificate_authorities = [\"" + ca_path + "\"]\nclient_authentication = \"optional\"\n";
  OpsStack stack(o);
  const uint16_t port = stack.port();

  auto start = stack.metrics();
  for (const char* reason :
       {"no_client_certificate", "unknown_ca", "certificate_expired", "certificate_not_yet_valid",
        "identity_not_allowed", "pin_mismatch", "protocol_version", "no_shared_cipher", "not_tls",
        "peer_alert", "timeout", "other"}) {
    INFO("reason " << reason << " is exported from the first scrape");
    CHECK(failures(start, reason) == 0);
  }
  CHECK(val(start, "apm_tls_proxy_connections_accepted_total") == 0.0);
  CHECK(val(start, "apm_tls_proxy_http_requests_total") == 0.0);

  // 5 successful requests: 3 on one keep-alive connection, 2 on connections of their own.
  {
    TlsClient c(port, stack.client());
    requireConnect(c);
    for (int i = 0; i < 3; ++i) {
      CHECK(c.request(httpRequest("POST", "/intake/v2/events", "", "{}\n")).status == 202);
    }
  }
  for (int i = 0; i < 2; ++i) {
    TlsClient c(port, stack.client());
    requireConnect(c);
    CHECK(c.request(httpRequest("GET", "/", "Connection: close\r\n")).status == 200);
  }

  // 5 handshake failures: 2 not_tls, 1 protocol_version, 1 unknown_ca, 1 peer_alert.
  for (int i = 0; i < 2; ++i) {
    Client plain(port);
    REQUIRE(plain.send(httpRequest("GET", "/")));
    Response r = plain.readResponse(Millis{5000});
    CHECK(r.status == 400);
    CHECK(r.body.find("HTTPS port") != std::string::npos);
    CHECK(plain.waitClosed(Millis{5000}));
  }
  {
    TlsClientOptions old_tls;
    old_tls.max_version = TLS1_1_VERSION;
    TlsClientContext ctx(old_tls);
    TlsClient c(port, ctx);
    CHECK_FALSE(c.connect());
  }
  {
    Pki stranger("stranger CA");
    PemPair cert = stranger.client("intruder", "", "");
    TlsClientOptions opt;
    opt.ca_pem = stack.pki.caPem();
    opt.cert_pem = cert.cert;
    opt.key_pem = cert.key;
    TlsClientContext ctx(opt);
    TlsClient c(port, ctx);
    // Under TLS 1.3 the client finishes first and learns of the refusal from the alert.
    if (c.connect()) {
      CHECK(c.request(httpRequest("GET", "/")).status == 0);
    }
  }
  {
    Pki other("a CA the client trusts instead");
    TlsClientOptions opt;
    opt.ca_pem = other.caPem();
    TlsClientContext ctx(opt);
    TlsClient c(port, ctx);
    CHECK_FALSE(c.connect());  // the client rejects our certificate and sends an alert
  }

  // A 502: the upstream is gone.
  REQUIRE(stack.demo.process().stop() == 0);
  {
    TlsClient c(port, stack.client());
    requireConnect(c);
    Response r = c.request(httpRequest("POST", "/intake/v2/events", "", "{}\n"));
    CHECK(r.status == 502);
  }

  std::map<std::string, double> m;
  bool settled = eventually(
      [&] {
        m = stack.metrics();
        return val(m, "apm_tls_proxy_connections_active") == 0.0 && failures(m, "peer_alert") == 1;
      },
      Millis{5000});
  INFO("metrics:\n" << adminGet(stack.adminPort(), "/metrics").body);
  INFO("stderr:\n" << stack.stderrText());
  CHECK(settled);

  // 1 + 2 + 5 + 1 connections; 6 requests; 5 answered 2xx by the upstream, one 502 locally.
  CHECK(val(m, "apm_tls_proxy_connections_accepted_total") == 9.0);
  CHECK(val(m, "apm_tls_proxy_connections_rejected_total") == 0.0);
  CHECK(val(m, "apm_tls_proxy_http_requests_total") == 6.0);
  CHECK(val(m, "apm_tls_proxy_http_responses_total{code_class=\"1xx\"}") == 0.0);
  CHECK(val(m, "apm_tls_proxy_http_responses_total{code_class=\"2xx\"}") == 5.0);
  CHECK(val(m, "apm_tls_proxy_http_responses_total{code_class=\"3xx\"}") == 0.0);
  CHECK(val(m, "apm_tls_proxy_http_responses_total{code_class=\"5xx\"}") == 1.0);
  // The proxy answered three requests itself: the 502, and the readable 400 that each of
  // the two plain-HTTP requests on the TLS port got.
  CHECK(val(m, "apm_tls_proxy_http_responses_total{code_class=\"4xx\"}") == 2.0);
  CHECK(val(m, "apm_tls_proxy_local_responses_total") == 3.0);
  // Every answered request has a duration, the proxy's own 502 included.
  CHECK(val(m, "apm_tls_proxy_http_request_duration_seconds_count") == 6.0);
  CHECK(val(m, "apm_tls_proxy_http_request_duration_seconds_bucket{le=\"+Inf\"}") == 6.0);
  CHECK(val(m, "apm_tls_proxy_upstream_response_duration_seconds_count") == 5.0);
  // The 502's request was tried twice: a refused connect means the upstream never saw it.
  CHECK(val(m, "apm_tls_proxy_upstream_connect_failures_total") == 2.0);
  CHECK(val(m, "apm_tls_proxy_upstream_retries_total") == 1.0);
  CHECK(val(m, "apm_tls_proxy_upstream_timeouts_total") == 0.0);

  CHECK(failures(m, "not_tls") == 2);
  CHECK(failures(m, "protocol_version") == 1);
  CHECK(failures(m, "unknown_ca") == 1);
  CHECK(failures(m, "peer_alert") == 1);
  for (const char* reason :
       {"no_client_certificate", "certificate_expired", "certificate_not_yet_valid",
        "identity_not_allowed", "pin_mismatch", "no_shared_cipher", "timeout", "other"}) {
    INFO("reason " << reason);
    CHECK(failures(m, reason) == 0);
  }
  // Completed handshakes: the 3 + 2 good clients and the one that got the 502.
  CHECK(val(m, "apm_tls_proxy_tls_handshakes_total{version=\"TLSv1.3\"}") == 4.0);
  CHECK(val(m, "apm_tls_proxy_tls_handshakes_total{version=\"TLSv1.2\"}") == 0.0);
  CHECK(val(m, "apm_tls_proxy_tls_sessions_resumed_total") == 0.0);
  CHECK(val(m, "apm_tls_proxy_received_bytes_total") > 0);
  CHECK(val(m, "apm_tls_proxy_sent_bytes_total") > 0);
  CHECK(val(m, "apm_tls_proxy_workers") == 1.0);
  CHECK(val(m, "apm_tls_proxy_ready") == 1.0);
  CHECK(val(m, "apm_tls_proxy_draining") == 0.0);

  // Certificates: the server leaf and the client CA, with their expiry times.
  std::string text = adminGet(stack.adminPort(), "/metrics").body;
  double now = static_cast<double>(std::time(nullptr));
  int server_certs = 0;
  int ca_certs = 0;
  for (const auto& [series, value] : m) {
    if (series.rfind("apm_tls_proxy_certificate_not_after_timestamp_seconds{", 0) != 0) continue;
    INFO(series << " " << value);
    CHECK(value > now + 1000 * 86400.0);
    CHECK(value < now + 1100 * 86400.0);
    if (series.find("role=\"server\"") != std::string::npos) {
      ++server_certs;
      CHECK(series.find(stack.cert_path) != std::string::npos);
      CHECK(series.find("apm-server") != std::string::npos);
    }
    if (series.find("role=\"ca\"") != std::string::npos) {
      ++ca_certs;
      CHECK(series.find(ca_path) != std::string::npos);
    }
  }
  CHECK(server_certs == 1);
  CHECK(ca_certs == 1);
  CHECK(text.find("apm_tls_proxy_build_info{") != std::string::npos);
  CHECK(text.find("tls_library=\"BoringSSL\"") != std::string::npos);
  double started = val(m, "apm_tls_proxy_process_start_time_seconds");
  CHECK(started > now - 600);
  CHECK(started <= now);

  // promtool, when available.
  const char* promtool = std::getenv("PROMTOOL");
  if (promtool == nullptr || *promtool == '\0') {
    WARN("PROMTOOL is not set: skipping `promtool check metrics`");
  } else {
    std::string file = stack.dir.write("metrics.txt", text);
    RunResult rr = runToCompletion(
        {"/bin/sh", "-c", std::string("\"$0\" check metrics < \"$1\""), promtool, file}, stack.dir,
        "promtool");
    INFO("promtool: " << rr.out << rr.err);
    CHECK(rr.exit_code == 0);
    CHECK(rr.out + rr.err == "");
  }
}

}  // namespace
}  // namespace proxy::integration::ops
