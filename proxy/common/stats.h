// Stats: the counters and histograms one worker thread updates on its hot path, read
// by the admin endpoint from another thread. Each worker owns one WorkerStats and is
// its only writer, so an increment is a relaxed load + store (a plain add, no locked
// instruction); readers sum the workers. No libuv, no I/O.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace proxy {

// A counter with a single writer thread and any number of reader threads.
class Counter {
 public:
  void add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Latency buckets in seconds (the OpenTelemetry HTTP buckets), upper bounds inclusive.
inline constexpr std::array<double, 14> kLatencyBuckets = {
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};

// A histogram with a single writer. Bucket counts are per-bucket (not cumulative);
// the exposition sums them.
class Histogram {
 public:
  void observe(double seconds) {
    size_t i = 0;
    while (i < kLatencyBuckets.size() && seconds > kLatencyBuckets[i]) ++i;
    buckets_[i].add();
    sum_micros_.add(static_cast<uint64_t>(seconds * 1e6));
  }
  uint64_t bucket(size_t i) const { return buckets_[i].get(); }  // i == size() is +Inf
  double sum() const { return static_cast<double>(sum_micros_.get()) / 1e6; }

 private:
  std::array<Counter, kLatencyBuckets.size() + 1> buckets_;
  Counter sum_micros_;
};

// Handshake failure reasons, in tls::HandshakeFailure order (kept in step by a test).
inline constexpr size_t kHandshakeFailureKinds = 13;
// TLS versions for labels: 0 = TLSv1.0, 1 = 1.1, 2 = 1.2, 3 = 1.3.
inline constexpr size_t kTlsVersions = 4;

// HTTP/2 error codes 0x0..0xd, plus one slot for codes RFC 9113 does not define.
inline constexpr size_t kHttp2ErrorCodes = 15;
// Their names (RFC 9113 §7), in code order: metric labels and log fields.
inline constexpr std::array<const char*, kHttp2ErrorCodes> kHttp2ErrorCodeNames = {
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
    "UNKNOWN"};

// gRPC status codes 0..16 ("gRPC status codes", grpc/doc/statuscodes.md): metric labels.
inline constexpr size_t kGrpcStatusCodes = 17;
inline constexpr std::array<const char*, kGrpcStatusCodes> kGrpcStatusNames = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

struct WorkerStats {
  Counter connections_accepted;
  Counter connections_active;
  Counter connections_rejected;                  // over max_connections or accept errors
  std::array<Counter, kTlsVersions> handshakes;  // completed, by version
  std::array<Counter, kHandshakeFailureKinds> handshake_failures;
  Counter sessions_resumed;
  std::array<Counter, 6> responses_by_class;  // index 1..5 = 1xx..5xx; 0 unused
  Counter requests_total;
  Histogram request_duration;   // first request byte -> last response byte
  Histogram upstream_duration;  // request fully sent -> response head from upstream
  Counter bytes_received;       // from clients (wire bytes, ciphertext under TLS)
  Counter bytes_sent;           // to clients
  Counter upstream_connect_failures;
  Counter upstream_timeouts;
  Counter upstream_connections_active;
  Counter upstream_connections_idle;
  Counter upstream_retries;     // requests sent again because the upstream never saw them
  Counter upstream_overloaded;  // requests refused (503) for want of an upstream connection
  Counter local_responses;      // errors the proxy answered itself
  // HTTP/2 clients (requests_total and the histograms count their streams too).
  Counter http2_connections;                                // open HTTP/2 client connections
  Counter http2_streams_total;                              // streams that carried a request
  Counter http2_streams_active;                             // streams open now
  std::array<Counter, kHttp2ErrorCodes> http2_resets_sent;  // RST_STREAM by error code
  std::array<Counter, kHttp2ErrorCodes> http2_resets_received;
  std::array<Counter, kHttp2ErrorCodes> http2_goaways_sent;  // GOAWAY by error code
  std::array<Counter, kHttp2ErrorCodes> http2_goaways_received;
  // gRPC calls answered with a grpc-status (the upstream's or the proxy's), by status.
  std::array<Counter, kGrpcStatusCodes> grpc_responses;
};

}  // namespace proxy
