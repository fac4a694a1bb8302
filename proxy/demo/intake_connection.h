// IntakeConnection: one accepted client of apm-intake-demo. Like APM Server, it serves
// HTTP/1.1 and h2c (prior knowledge) on one port, choosing by the first bytes. HTTP/1.1:
// llhttp (strict), bodies streamed and counted (never held whole), answers in order,
// X-Demo-* knobs (docs/intake-demo.md). h2c: an IntakeH2Session it feeds and drains.
// Owns its socket, its timer, its parser and its h2c session. The methods live in
// intake_connection.cc (transport) and intake_http1.cc (HTTP/1.1 requests and answers).
#pragma once

#include <llhttp.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace proxy::demo {

class IntakeH2Session;
class IntakeServer;

// Owned by IntakeServer. Freed in the last close callback (IntakeServer::erase).
// Loop thread only.
class IntakeConnection {
 public:
  IntakeConnection(IntakeServer& server, uint64_t id);
  ~IntakeConnection();
  IntakeConnection(const IntakeConnection&) = delete;
  IntakeConnection& operator=(const IntakeConnection&) = delete;

  // Initialises the handles and accepts from `listener`; on failure the connection is
  // already closing and the server frees it from the close callbacks.
  void accept(uv_stream_t* listener);
  // Starts teardown: idempotent, never frees. Records a request left incomplete.
  void close();
  bool closing() const { return state_ == State::kClosing; }

 private:
  // Chosen once per connection by its first bytes (RFC 9113 §3.4: the preface).
  enum class Protocol { kSniffing, kHttp1, kH2c };
  // kReading: parsing requests. kDiscarding: answered with Connection: close (400, 413)
  // or silent; reads and drops input until EOF or the linger timer.
  enum class State { kReading, kDiscarding, kClosing };
  enum class Behavior {
    kNormal,
    kSilent,
    kCloseMidBody,
    kCloseMidChunked,
    kChunkedResponse,
    kLargeResponse,
    kEcho,
    kSlowReader,
    kEarlyResponse,
  };
  enum class TimerUse { kNone, kDelay, kPace, kLinger, kH2Deadline };
  // What to do once every queued byte of the current response has been written.
  enum class AfterResponse { kNextRequest, kClose, kLinger };

  struct Request {
    std::string method;
    std::string target;
    std::vector<std::pair<std::string, std::string>> headers;
    bool last_was_value = false;
    bool head_done = false;
    bool complete = false;
    bool recorded = false;
    bool keep_alive = true;
    bool expect_continue = false;
    uint64_t body_bytes = 0;
    uint64_t body_lines = 0;
    std::string body_head;  // first 64 bytes
    Behavior behavior = Behavior::kNormal;
    std::string behavior_name = "normal";
    std::chrono::milliseconds delay{0};
    uint64_t size = 0;  // X-Demo-Size
    std::string origin;
  };

  // Stop reading while this many response bytes wait in libuv's write queue (echo, h2c and
  // generated bodies), so a client that does not read cannot grow our memory.
  static constexpr uint64_t kHighWatermark = 1 << 20;
  static constexpr size_t kGeneratedChunk = 64 * 1024;

  struct WriteOp {
    uv_write_t req;
    std::string bytes;
  };

  static void uvOnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void uvOnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void uvOnWrite(uv_write_t* req, int status);
  static void uvOnShutdown(uv_shutdown_t* req, int status);
  static void uvOnTimer(uv_timer_t* timer);
  static void uvOnClose(uv_handle_t* handle);

  static int llOnMessageBegin(llhttp_t* p);
  static int llOnUrl(llhttp_t* p, const char* at, size_t len);
  static int llOnHeaderField(llhttp_t* p, const char* at, size_t len);
  static int llOnHeaderValue(llhttp_t* p, const char* at, size_t len);
  static int llOnHeadersComplete(llhttp_t* p);
  static int llOnBody(llhttp_t* p, const char* at, size_t len);
  static int llOnMessageComplete(llhttp_t* p);

  void onRead(ssize_t nread, const uv_buf_t* buf);
  void onWrite(WriteOp* op, int status);
  void onTimer();
  int onHeadersComplete();
  int onBody(const char* at, size_t len);
  int onMessageComplete();

  // Buffers the first bytes until they show the protocol, then hands them on.
  void sniff(const char* data, size_t len);
  // Feeds bytes to the h2c session and sends what it answers. May close.
  void receiveH2(const char* data, size_t len);
  // Queues the h2c session's frames up to the watermark, arms the timer for delayed
  // answers, and lingers once the session is finished. May close.
  void pumpH2();
  // Feeds bytes to the parser; stops at a pause and keeps the rest in pending_.
  void parse(const char* data, size_t len);
  void onParseError(llhttp_errno_t err);
  // Sends the answer for the completed request (after any X-Demo-Delay).
  void respond();
  void respondRoute();
  void queueWrite(std::string bytes);
  // Queues a JSON error answer with Connection: close and discards the rest of the input.
  void answerAndDiscard(const char* status, const std::string& body);
  void fillGeneratedBody();
  // Called when the response is fully queued and the queue has drained.
  void maybeFinishResponse();
  void startLinger();
  void resumeParsing();
  // Starts or stops reading according to the state, pauses and queued bytes.
  void updateReading();
  void startTimer(TimerUse use, std::chrono::milliseconds after);
  void writeRecord();
  void logLine(int status);

  IntakeServer& server_;
  const uint64_t id_;
  uint64_t seq_ = 0;
  State state_ = State::kReading;
  Protocol protocol_ = Protocol::kSniffing;
  std::string sniffed_;  // the first bytes, while they could still be the h2 preface
  std::unique_ptr<IntakeH2Session> h2_;
  uv_tcp_t socket_{};
  uv_timer_t timer_{};
  TimerUse timer_use_ = TimerUse::kNone;
  int open_handles_ = 0;
  bool reading_ = false;
  bool paused_ = false;     // parser paused at a message end: response pending
  bool pace_wait_ = false;  // slow-reader: waiting before the next read
  bool shutdown_sent_ = false;
  llhttp_settings_t settings_{};
  llhttp_t parser_{};
  std::string pending_;  // unparsed bytes after a pause
  Request req_;
  uint64_t queued_bytes_ = 0;
  bool response_queued_ = false;  // the last byte of the current response is queued
  bool responding_ = false;       // a response for req_ has started
  AfterResponse after_ = AfterResponse::kNextRequest;
  uint64_t gen_remaining_ = 0;  // generated response body still to queue
  uint64_t gen_offset_ = 0;
  bool gen_chunked_ = false;
};

}  // namespace proxy::demo
