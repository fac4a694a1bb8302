#include "proxy/admin/metrics.h"

#include <charconv>
#include <cmath>
#include <initializer_list>
#include <utility>

namespace proxy::admin {
namespace {

constexpr std::string_view kPrefix = "apm_tls_proxy_";

// Go's strconv.FormatFloat(v, 'g', -1, 64) spelling, which Prometheus parses back exactly:
// the shortest text that round-trips, "+Inf"/"-Inf"/"NaN" for the specials.
// https://github.com/prometheus/docs/blob/main/content/docs/instrumenting/exposition_formats.md
std::string formatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return "NaN";  // cannot happen: 32 bytes hold any double
  return std::string(buf, end);
}

// HELP text escaping differs from label values: only backslash and newline.
std::string escapeHelp(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Appends families to one string. Each family() call writes HELP and TYPE once; the
// sample() calls that follow belong to it.
class Writer {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    name_ = std::string(kPrefix) + std::string(name);
    out_ += "# HELP " + name_ + " " + escapeHelp(help) + "\n";
    out_ += "# TYPE " + name_ + " " + std::string(type) + "\n";
  }

  void sample(std::string_view value, Labels labels = {}, std::string_view suffix = {}) {
    out_ += name_;
    out_ += suffix;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [key, val] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += key;
        out_ += "=\"";
        out_ += escapeLabelValue(val);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(uint64_t value, Labels labels = {}) { sample(std::to_string(value), labels); }
  void sampleDouble(double value, Labels labels = {}) { sample(formatDouble(value), labels); }

  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  std::string name_;
};

// Sums one Counter member across the workers.
template <class Get>
uint64_t sum(const MetricsSnapshot& s, Get get) {
  uint64_t total = 0;
  for (const WorkerStats* w : s.workers) total += get(*w);
  return total;
}

void writeHistogram(Writer& w, const MetricsSnapshot& s, std::string_view name,
                    std::string_view help, const Histogram WorkerStats::*member) {
  w.family(name, "histogram", help);
  // The exposition wants cumulative counts (le = "less than or equal"); WorkerStats keeps
  // one count per bucket so that observe() touches a single counter.
  uint64_t cumulative = 0;
  double total_seconds = 0;
  for (size_t i = 0; i <= kLatencyBuckets.size(); ++i) {
    cumulative += sum(s, [&](const WorkerStats& ws) { return (ws.*member).bucket(i); });
    std::string le = i < kLatencyBuckets.size() ? formatDouble(kLatencyBuckets[i]) : "+Inf";
    w.sample(std::to_string(cumulative), {{"le", le}}, "_bucket");
  }
  for (const WorkerStats* ws : s.workers) total_seconds += (ws->*member).sum();
  w.sample(formatDouble(total_seconds), {}, "_sum");
  w.sample(std::to_string(cumulative), {}, "_count");
}

}  // namespace

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string renderMetrics(const MetricsSnapshot& s) {
  Writer w;

  w.family("build_info", "gauge", "Always 1; the labels describe this build.");
  w.sample(uint64_t{1}, {{"version", s.build.version},
                         {"tls_library", s.build.tls_library},
                         {"libuv", s.build.libuv}});

  w.family("process_start_time_seconds", "gauge", "Unix time the proxy started.");
  w.sampleDouble(s.start_time_seconds);

  w.family("workers", "gauge", "Worker threads, each with its own event loop and listener.");
  w.sample(static_cast<uint64_t>(s.workers.size()));

  w.family("ready", "gauge", "1 when /readyz answers 200, else 0.");
  w.sample(uint64_t{s.ready ? 1u : 0u});

  w.family("draining", "gauge", "1 after SIGTERM or SIGINT while connections drain, else 0.");
  w.sample(uint64_t{s.draining ? 1u : 0u});

  w.family("connections_accepted_total", "counter", "Client TCP connections accepted.");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.connections_accepted.get(); }));

  // Per worker, to show how SO_REUSEPORT spreads connections (issue 12 item 4). The index
  // is the worker's position in the snapshot, which is the Server's worker order.
  w.family("worker_connections_accepted_total", "counter",
           "Client TCP connections accepted, by worker thread.");
  for (size_t i = 0; i < s.workers.size(); ++i) {
    w.sample(s.workers[i]->connections_accepted.get(), {{"worker", std::to_string(i)}});
  }

  w.family("connections_active", "gauge", "Client connections currently open.");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.connections_active.get(); }));

  w.family("connections_rejected_total", "counter",
           "Client connections closed at accept: over max_connections, or accept errors.");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.connections_rejected.get(); }));

  w.family("tls_handshakes_total", "counter", "TLS handshakes completed, by protocol version.");
  for (size_t i = 0; i < kTlsVersions; ++i) {
    w.sample(sum(s, [i](const WorkerStats& ws) { return ws.handshakes[i].get(); }),
             {{"version", kTlsVersionNames[i]}});
  }

  w.family("tls_handshake_failures_total", "counter", "TLS handshakes that failed, by reason.");
  // Index 0 is HandshakeFailure::kNone, which is not a failure.
  for (size_t i = 1; i < kHandshakeFailureKinds; ++i) {
    const char* reason = s.handshake_failure_reasons[i];
    if (reason == nullptr) continue;
    w.sample(sum(s, [i](const WorkerStats& ws) { return ws.handshake_failures[i].get(); }),
             {{"reason", reason}});
  }

  w.family("tls_sessions_resumed_total", "counter",
           "TLS handshakes that resumed a session (ticket or cache).");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.sessions_resumed.get(); }));

  w.family("http_requests_total", "counter", "HTTP requests received from clients.");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.requests_total.get(); }));

  w.family("http_responses_total", "counter",
           "HTTP responses sent to clients (proxied and local), by status class.");
  for (size_t c = 1; c <= 5; ++c) {
    std::string code_class = std::to_string(c) + "xx";
    w.sample(sum(s, [c](const WorkerStats& ws) { return ws.responses_by_class[c].get(); }),
             {{"code_class", code_class}});
  }

  writeHistogram(w, s, "http_request_duration_seconds",
                 "Time from the first request byte to the last response byte.",
                 &WorkerStats::request_duration);
  writeHistogram(w, s, "upstream_response_duration_seconds",
                 "Time from the request fully sent upstream to the response head received.",
                 &WorkerStats::upstream_duration);

  w.family("received_bytes_total", "counter",
           "Bytes received from clients on the wire (TLS records included).");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.bytes_received.get(); }));

  w.family("sent_bytes_total", "counter",
           "Bytes sent to clients on the wire (TLS records included).");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.bytes_sent.get(); }));

  w.family("upstream_connect_failures_total", "counter",
           "Upstream TCP connects that failed or timed out.");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.upstream_connect_failures.get(); }));

  w.family("upstream_timeouts_total", "counter",
           "Upstream requests abandoned because the response did not arrive in time.");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.upstream_timeouts.get(); }));

  w.family("upstream_retries_total", "counter",
           "Requests sent again on a new upstream connection because the upstream never saw them.");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.upstream_retries.get(); }));

  w.family("upstream_overloaded_total", "counter",
           "Requests answered 503 because no upstream connection was free in time.");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.upstream_overloaded.get(); }));

  w.family("upstream_connections", "gauge",
           "Upstream connections open, by state: active (serving a request) or idle (pooled).");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.upstream_connections_active.get(); }),
           {{"state", "active"}});
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.upstream_connections_idle.get(); }),
           {{"state", "idle"}});

  w.family("http2_connections", "gauge", "HTTP/2 client connections open.");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.http2_connections.get(); }));
  w.family("http2_streams_total", "counter", "HTTP/2 client streams that carried a request.");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.http2_streams_total.get(); }));
  w.family("http2_streams_active", "gauge", "HTTP/2 client streams open now.");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.http2_streams_active.get(); }));
  // Per error code; a code that never occurred has no series (15 codes times 4 families
  // of zeros would drown the page).
  auto byCode = [&](std::string_view name, std::string_view help,
                    std::array<Counter, kHttp2ErrorCodes> WorkerStats::*field) {
    w.family(name, "counter", help);
    for (size_t i = 0; i < kHttp2ErrorCodes; ++i) {
      uint64_t n = sum(s, [&](const WorkerStats& ws) { return (ws.*field)[i].get(); });
      if (n != 0) w.sample(n, {{"code", kHttp2ErrorCodeNames[i]}});
    }
  };
  byCode("http2_resets_sent_total", "RST_STREAM frames sent to HTTP/2 clients, by error code.",
         &WorkerStats::http2_resets_sent);
  byCode("http2_resets_received_total",
         "RST_STREAM frames received from HTTP/2 clients, by error code.",
         &WorkerStats::http2_resets_received);
  byCode("http2_goaways_sent_total", "GOAWAY frames sent to HTTP/2 clients, by error code.",
         &WorkerStats::http2_goaways_sent);
  byCode("http2_goaways_received_total",
         "GOAWAY frames received from HTTP/2 clients, by error code.",
         &WorkerStats::http2_goaways_received);
  // The same way: a status that never occurred has no series.
  w.family(
      "grpc_responses_total", "counter",
      "gRPC calls answered with a grpc-status (the upstream's or the proxy's own), by status.");
  for (size_t i = 0; i < kGrpcStatusCodes; ++i) {
    uint64_t n = sum(s, [&](const WorkerStats& ws) { return ws.grpc_responses[i].get(); });
    if (n != 0) w.sample(n, {{"code", kGrpcStatusNames[i]}});
  }

  w.family("local_responses_total", "counter",
           "Error responses the proxy generated itself (400, 431, 502, 503, 504, ...).");
  w.sample(sum(s, [](const WorkerStats& ws) { return ws.local_responses.get(); }));

  w.family("certificate_not_after_timestamp_seconds", "gauge",
           "Unix time at which a loaded certificate expires.");
  for (const CertificateInfo& c : s.certificates) {
    std::string index = std::to_string(c.index);
    w.sample(std::to_string(c.not_after),
             {{"role", c.role}, {"source", c.source}, {"index", index}, {"subject", c.subject}});
  }

  w.family("certificate_reloads_total", "counter",
           "Certificate set reloads attempted after start-up, by result.");
  w.sample(s.reload_successes, {{"result", "success"}});
  w.sample(s.reload_failures, {{"result", "failure"}});

  w.family("certificate_last_reload_timestamp_seconds", "gauge",
           "Unix time the serving certificate set was last loaded successfully.");
  w.sampleDouble(s.last_reload_success_seconds);

  return w.take();
}

}  // namespace proxy::admin
