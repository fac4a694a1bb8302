// Metrics: renders the Prometheus text exposition (format 0.0.4) served at /metrics.
// Sits beside the data path: the admin server asks its host for a MetricsSnapshot (the
// workers' WorkerStats plus server-level facts) and this module turns it into text.
// Owns nothing; pure code: no libuv, no I/O, no clock (every time comes in the snapshot).
// Families and labels are documented in docs/metrics.md; keep the two in step.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/common/stats.h"
#include "proxy/common/version.h"

namespace proxy::admin {

// The Content-Type of the rendered text.
inline constexpr const char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Label values of apm_tls_proxy_tls_handshakes_total{version}, indexed like
// WorkerStats::handshakes (SSL_get_version's names, as the access log writes them).
inline constexpr std::array<const char*, kTlsVersions> kTlsVersionNames = {"TLSv1", "TLSv1.1",
                                                                           "TLSv1.2", "TLSv1.3"};

// One certificate whose expiry is exported. (role, source, index) must be unique.
struct CertificateInfo {
  std::string role;       // "server" or "ca"
  std::string source;     // the file it was read from (bounded: paths come from the config)
  unsigned index = 0;     // position within that file (a CA bundle holds several)
  std::string subject;    // subject DN, for alert messages (bounded by the files)
  int64_t not_after = 0;  // Unix seconds
};

// Facts about this binary for apm_tls_proxy_build_info.
struct BuildInfo {
  std::string version = kVersion;
  std::string tls_library = "BoringSSL";
  std::string libuv;  // uv_version_string(); see admin::currentBuildInfo()
};

// Everything /metrics reports, gathered by the host on the loop thread. Worker counters
// are read with relaxed loads while the workers keep running, so families are each
// consistent only to within the requests in flight, as any Prometheus exporter's are.
struct MetricsSnapshot {
  // Every worker's stats, summed by the renderer. Not owned; must outlive the render call.
  std::vector<const WorkerStats*> workers;
  // Label values of handshake_failures_total{reason}, indexed like
  // WorkerStats::handshake_failures: tls::toString(tls::HandshakeFailure(i)). Index 0
  // ("none") and null entries are not exported.
  std::array<const char*, kHandshakeFailureKinds> handshake_failure_reasons{};
  BuildInfo build;
  double start_time_seconds = 0;              // Unix time the process started
  bool ready = false;                         // what /readyz answers
  bool draining = false;                      // SIGTERM received
  std::vector<CertificateInfo> certificates;  // server certificate first, then each CA
  uint64_t reload_successes = 0;
  uint64_t reload_failures = 0;
  // Unix time of the last successful load of the certificate set (start-up counts); 0 if none.
  double last_reload_success_seconds = 0;
};

// Renders the snapshot as Prometheus text: one HELP and TYPE per family, families in a
// fixed order, every known label value present (zeros included) so rate() works at once.
std::string renderMetrics(const MetricsSnapshot& snapshot);

// Escapes a label value for the text format: backslash, double quote and newline.
std::string escapeLabelValue(std::string_view value);

}  // namespace proxy::admin
