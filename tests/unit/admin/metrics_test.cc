#include "proxy/admin/metrics.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/process.h"

namespace proxy::admin {
namespace {

// tls::toString(tls::HandshakeFailure(i)) as of this writing; the names are copied here so
// that this test needs no TLS module. Server passes the real ones.
constexpr std::array<const char*, kHandshakeFailureKinds> kReasons = {"none",
                                                                      "no_client_certificate",
                                                                      "unknown_ca",
                                                                      "certificate_expired",
                                                                      "certificate_not_yet_valid",
                                                                      "identity_not_allowed",
                                                                      "pin_mismatch",
                                                                      "protocol_version",
                                                                      "no_shared_cipher",
                                                                      "not_tls",
                                                                      "peer_alert",
                                                                      "timeout",
                                                                      "other"};

// Two workers with known, distinct numbers, so that sums and cumulative buckets show.
struct Fixture {
  WorkerStats w0;
  WorkerStats w1;
  MetricsSnapshot snapshot;

  Fixture() {
    w0.connections_accepted.add(10);
    w1.connections_accepted.add(5);
    w0.connections_active.add(3);
    w1.connections_active.add(1);
    w1.connections_rejected.add(2);
    w0.handshakes[2].add(4);
    w0.handshakes[3].add(6);
    w1.handshakes[3].add(1);
    w0.handshake_failures[0].add(99);  // kNone: must not be exported
    w0.handshake_failures[2].add(3);   // unknown_ca
    w1.handshake_failures[2].add(1);
    w1.handshake_failures[9].add(7);  // not_tls
    w0.sessions_resumed.add(2);
    w0.requests_total.add(20);
    w1.requests_total.add(2);
    w0.responses_by_class[2].add(18);
    w1.responses_by_class[2].add(1);
    w0.responses_by_class[4].add(1);
    w1.responses_by_class[5].add(2);
    w0.request_duration.observe(0.001);
    w0.request_duration.observe(0.02);
    w1.request_duration.observe(0.02);
    w1.request_duration.observe(0.3);
    w0.request_duration.observe(12);
    w0.upstream_duration.observe(0.004);
    w1.upstream_duration.observe(0.5);
    w0.bytes_received.add(123456);
    w1.bytes_received.add(1);
    w0.bytes_sent.add(654321);
    w0.upstream_connect_failures.add(1);
    w1.http2_connections.add(1);
    w1.http2_streams_total.add(4);
    w1.http2_resets_sent[11].add(2);  // ENHANCE_YOUR_CALM
    w1.http2_goaways_received[0].add(1);
    w0.grpc_responses[0].add(5);  // OK
    w1.grpc_responses[0].add(1);
    w1.grpc_responses[14].add(2);  // UNAVAILABLE
    w1.upstream_timeouts.add(1);
    w0.upstream_connections_active.add(2);
    w1.upstream_connections_idle.add(3);
    w1.local_responses.add(3);

    snapshot.workers = {&w0, &w1};
    snapshot.handshake_failure_reasons = kReasons;
    snapshot.build.version = "0.1.0";
    snapshot.build.libuv = "1.44.2";
    snapshot.start_time_seconds = 1700000000.25;
    snapshot.ready = true;
    snapshot.draining = false;
    snapshot.certificates = {
        {"server", "/etc/apm-tls-proxy/tls.crt", 0, "CN=apm-server", 1735689600},
        {"ca", "/etc/apm-tls-proxy/ca.crt", 0, "CN=Agents CA,O=Example", 1893456000},
        {"ca", "/etc/apm-tls-proxy/ca.crt", 1, "CN=Old \"Agents\" CA\\", 1767225600},
    };
    snapshot.reload_successes = 2;
    snapshot.reload_failures = 1;
    snapshot.last_reload_success_seconds = 1700003600;
  }
};

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TEST_CASE("renderMetrics matches the golden exposition for a known snapshot", "[unit][admin]") {
  Fixture f;
  const std::string text = renderMetrics(f.snapshot);
  const std::string golden_path = std::string(ADMIN_FIXTURES_DIR) + "/metrics.golden";
  // UPDATE_GOLDEN=1 rewrites the fixture; review the diff before committing it.
  if (std::getenv("UPDATE_GOLDEN") != nullptr) {
    std::ofstream(golden_path, std::ios::binary) << text;
  }
  const std::string golden = readFile(golden_path);
  REQUIRE_FALSE(golden.empty());
  CHECK(text == golden);
}

TEST_CASE("renderMetrics sums workers and makes histogram buckets cumulative", "[unit][admin]") {
  Fixture f;
  const std::string text = renderMetrics(f.snapshot);
  CHECK(text.find("apm_tls_proxy_connections_accepted_total 15\n") != std::string::npos);
  CHECK(text.find("apm_tls_proxy_worker_connections_accepted_total{worker=\"0\"} 10\n") !=
        std::string::npos);
  CHECK(text.find("apm_tls_proxy_worker_connections_accepted_total{worker=\"1\"} 5\n") !=
        std::string::npos);
  CHECK(text.find("apm_tls_proxy_http_request_duration_seconds_bucket{le=\"0.025\"} 3\n") !=
        std::string::npos);
  CHECK(text.find("apm_tls_proxy_http_request_duration_seconds_bucket{le=\"+Inf\"} 5\n") !=
        std::string::npos);
  CHECK(text.find("apm_tls_proxy_http_request_duration_seconds_count 5\n") != std::string::npos);
  CHECK(text.find("apm_tls_proxy_workers 2\n") != std::string::npos);
}

TEST_CASE("renderMetrics never exports the 'none' handshake failure reason", "[unit][admin]") {
  Fixture f;
  const std::string text = renderMetrics(f.snapshot);
  CHECK(text.find("reason=\"none\"") == std::string::npos);
  CHECK(text.find("apm_tls_proxy_tls_handshake_failures_total{reason=\"unknown_ca\"} 4\n") !=
        std::string::npos);
}

TEST_CASE("renderMetrics works with no workers and no certificates", "[unit][admin]") {
  MetricsSnapshot empty;
  const std::string text = renderMetrics(empty);
  CHECK(text.find("apm_tls_proxy_workers 0\n") != std::string::npos);
  CHECK(text.find("apm_tls_proxy_http_request_duration_seconds_count 0\n") != std::string::npos);
  // Null reason names are skipped rather than exported with an empty label.
  CHECK(text.find("reason=") == std::string::npos);
}

TEST_CASE("escapeLabelValue escapes backslash, double quote and newline", "[unit][admin]") {
  CHECK(escapeLabelValue("plain/path.pem") == "plain/path.pem");
  CHECK(escapeLabelValue("a\\b") == "a\\\\b");
  CHECK(escapeLabelValue("say \"hi\"") == "say \\\"hi\\\"");
  CHECK(escapeLabelValue("two\nlines") == "two\\nlines");
}

// CI sets PROMTOOL to a promtool binary (Debian's prometheus package, see
// reference/deployment.md); elsewhere this test only warns.
TEST_CASE("promtool check metrics accepts the rendered text", "[unit][admin]") {
  const char* promtool = std::getenv("PROMTOOL");
  if (promtool == nullptr || *promtool == '\0') {
    WARN("PROMTOOL is not set; skipping promtool check metrics");
    return;
  }
  REQUIRE(access(promtool, X_OK) == 0);
  Fixture f;
  char path[] = "/tmp/admin_metrics_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  const std::string text = renderMetrics(f.snapshot);
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  ::close(fd);

  testsupport::ShellResult r =
      testsupport::runShell(std::string("'") + promtool + "' check metrics < " + path);
  unlink(path);
  INFO("promtool output:\n" << r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.empty());
}

}  // namespace
}  // namespace proxy::admin
