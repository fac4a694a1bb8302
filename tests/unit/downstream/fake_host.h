// FakeHost: a transport for server-codec tests that records what the codec asks of it
// (output, finish, close, reset) instead of owning a socket. Its loop and context are real,
// so an upstream pool can be plugged into context() when a test needs one. Test code only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/common/stats.h"
#include "proxy/config/config.h"
#include "proxy/downstream/downstream_connection.h"
#include "proxy/downstream/server_codec.h"

namespace proxy::downstream {

struct TestContext : DownstreamContext {
  void erase(DownstreamConnection*) override {}
};

// A transport that records what the codec asks of it.
class FakeHost : public CodecHost {
 public:
  FakeHost() {
    uv_loop_init(&loop_);
    ctx_.loop = &loop_;
    ctx_.config = &config;
    ctx_.stats = &stats;
  }
  ~FakeHost() override { uv_loop_close(&loop_); }
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  DownstreamContext& context() override { return ctx_; }
  uint64_t connectionId() const override { return 1; }
  const std::string& peerIp() const override { return peer_ip_; }
  bool hasTls() const override { return false; }
  http::ForwardContext forwardContext() override { return {}; }
  void fillAccessLog(AccessLog::Entry&) override {}
  bool open() const override { return !finished && !closed; }
  bool closing() const override { return closed; }
  bool pumping() const override { return false; }
  std::string& output() override { return out; }
  size_t queuedOutput() const override { return out.size(); }
  bool writeThrough(std::string_view) override { return false; }
  size_t pendingInput() const override { return 0; }
  uint64_t lastProgressMs() const override { return last_progress_ms; }
  void markProgress() override { last_progress_ms = uv_now(&loop_); }
  void pump() override {}
  // As the transport does: the codec's pending output is produced into output().
  void flush() override {
    if (codec != nullptr) codec->produce();
  }
  // As the transport's FlushQueue does, but at once unless `defer_flushes` (as if the
  // round of I/O ended there); with it, runQueuedFlush() runs what was asked, as the loop
  // would after its round of I/O.
  void flushLater() override {
    ++flushes_asked;
    if (defer_flushes) {
      flush_queued = true;
    } else if (codec != nullptr) {
      codec->runQueuedFlush();
    }
  }
  void runQueuedFlush() {
    if (!flush_queued) return;
    flush_queued = false;
    if (codec != nullptr && !closed) codec->runQueuedFlush();
  }
  void inputUnblocked() override {}
  void rearmTimer() override {}
  void updateReading() override {}
  CloseReason closeReason() const override { return reason; }
  void finish(CloseReason r) override {
    reason = r;
    finished = true;
  }
  void close(CloseReason r, bool reset) override {
    reason = r;
    closed = true;
    was_reset = reset;
  }
  uint64_t now() const { return uv_now(&loop_); }
  uv_loop_t* loop() { return &loop_; }

  config::Config config;
  WorkerStats stats;
  ServerCodec* codec = nullptr;
  std::string out;
  uint64_t last_progress_ms = 0;
  CloseReason reason = CloseReason::kDone;
  bool finished = false;
  bool closed = false;
  bool was_reset = false;
  bool defer_flushes = false;
  bool flush_queued = false;
  int flushes_asked = 0;

 private:
  uv_loop_t loop_{};
  TestContext ctx_;
  std::string peer_ip_ = "127.0.0.1";
};

inline size_t feed(ServerCodec& codec, const std::string& bytes) {
  return codec.receive(bytes.data(), bytes.size());
}

}  // namespace proxy::downstream
