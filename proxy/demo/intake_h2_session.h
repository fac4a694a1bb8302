// IntakeH2Session: apm-intake-demo's h2c side (HTTP/2 with prior knowledge, RFC 9113
// §3.3), one per connection whose first bytes were the connection preface. Wraps one
// nghttp2 server session: bytes in, frames out. Answers OTLP/gRPC unary Export calls like
// APM Server, other requests with the HTTP/1.1 routes, and applies the x-demo-* knobs
// (docs/intake-demo.md). No libuv: IntakeConnection owns the socket and the timer.
#pragma once

#include <nghttp2/nghttp2.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace proxy::demo {

class IntakeServer;

// Owned by IntakeConnection once the preface arrived; destroyed with it. Loop thread only.
class IntakeH2Session {
 public:
  using Clock = std::chrono::steady_clock;

  IntakeH2Session(IntakeServer& server, uint64_t conn_id, uint32_t max_concurrent_streams);
  ~IntakeH2Session();
  IntakeH2Session(const IntakeH2Session&) = delete;
  IntakeH2Session& operator=(const IntakeH2Session&) = delete;

  // Feeds received bytes, the connection preface first. False on a fatal error (the
  // connection should close); protocol errors are answered with GOAWAY by nghttp2.
  [[nodiscard]] bool receive(const char* data, size_t len);
  // Appends frames ready to send to `out` until it holds about `limit` bytes (or nothing
  // more is ready). False on a fatal error.
  [[nodiscard]] bool produce(std::string* out, size_t limit);
  // Neither side will send anything more (after a GOAWAY, or an error): close.
  bool finished() const;
  // When the earliest delayed answer (x-demo-delay-ms) is due, if any is waiting.
  std::optional<Clock::time_point> nextDeadline() const;
  // Submits the delayed answers due at `now`; call produce() after it.
  void onDeadline(Clock::time_point now);
  // The connection is closing: records every stream whose request did not complete.
  void abandon();

 private:
  struct Stream;

  static int ngOnBeginHeaders(nghttp2_session* s, const nghttp2_frame* frame, void* user);
  static int ngOnHeader(nghttp2_session* s, const nghttp2_frame* frame, const uint8_t* name,
                        size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                        void* user);
  static int ngOnFrameRecv(nghttp2_session* s, const nghttp2_frame* frame, void* user);
  static int ngOnDataChunk(nghttp2_session* s, uint8_t flags, int32_t stream_id,
                           const uint8_t* data, size_t len, void* user);
  static int ngOnFrameSend(nghttp2_session* s, const nghttp2_frame* frame, void* user);
  static int ngOnStreamClose(nghttp2_session* s, int32_t stream_id, uint32_t error_code,
                             void* user);
  static ssize_t ngReadBody(nghttp2_session* s, int32_t stream_id, uint8_t* buf, size_t length,
                            uint32_t* flags, nghttp2_data_source* source, void* user);

  Stream* find(int32_t stream_id);
  void onHeader(Stream& stream, std::string name, std::string value);
  void onRequestComplete(Stream& stream);
  // Submits the answer for a complete request: gRPC, a generated body, or a route.
  void answer(Stream& stream);
  // Fills `stream`'s response for a gRPC call: an OTLP Export answer or trailers-only.
  void prepareGrpc(Stream& stream);
  // Submits `stream.response` (head, body, trailers), or its reset.
  void submit(Stream& stream);
  ssize_t readBody(Stream& stream, uint8_t* buf, size_t length, uint32_t* flags);
  void onFrameSent(const nghttp2_frame& frame);
  void onStreamClosed(int32_t stream_id, uint32_t error_code);
  void writeRecord(Stream& stream);
  void logLine(const Stream& stream);

  IntakeServer& server_;
  const uint64_t conn_id_;
  nghttp2_session* session_ = nullptr;
  uint64_t seq_ = 0;
  std::map<int32_t, std::unique_ptr<Stream>> streams_;
  std::multimap<Clock::time_point, int32_t> delayed_;
  // The stream that asked for a GOAWAY (x-demo-goaway): it becomes the GOAWAY's
  // last-stream-id, and streams above it are left unanswered (RFC 9113 §6.8).
  int32_t goaway_stream_ = 0;
};

}  // namespace proxy::demo
