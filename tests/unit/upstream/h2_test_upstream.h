// TestH2Upstream: a loopback h2c server for the upstream tests, on the test's own libuv
// loop: accepts on 127.0.0.1, runs a FakeH2Server per connection and lets the test
// answer each request once it has fully arrived. Also: a recording ResponseSink and a
// loop runner with a deadline. Test code only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/upstream/h2_pool.h"
#include "proxy/upstream/h2_stream.h"
#include "proxy/upstream/response_sink.h"
#include "proxy/upstream/upstream_connector.h"
#include "tests/unit/upstream/fake_h2_server.h"

namespace proxy::testing {

class TestH2Upstream {
 public:
  struct Conn {
    TestH2Upstream* owner = nullptr;
    size_t index = 0;                   // order of acceptance
    upstream::UpstreamSocket socket{};  // TCP or pipe, as the listener
    std::unique_ptr<FakeH2Server> server;
    std::vector<int32_t> answered;  // requests the handler has seen
    bool closed = false;
    size_t open_requests = 0;      // requests started and not yet closed
    size_t max_open_requests = 0;  // the most seen at once
  };
  // Called once per request when it has fully arrived (END_STREAM).
  using Handler = std::function<void(Conn& conn, int32_t stream_id)>;

  // Listens on 127.0.0.1 (an ephemeral port), or on the unix socket `unix_path`.
  TestH2Upstream(uv_loop_t* loop, FakeH2Server::Options options, Handler handler,
                 const std::string& unix_path = "");
  // Listens nowhere: connections come from adopt() (a FakeConnector's peer ends).
  struct NoListener {};
  TestH2Upstream(uv_loop_t* loop, FakeH2Server::Options options, Handler handler, NoListener);
  ~TestH2Upstream();
  TestH2Upstream(const TestH2Upstream&) = delete;
  TestH2Upstream& operator=(const TestH2Upstream&) = delete;

  uint16_t port() const { return port_; }
  // Writes what the connection's server session has to send.
  void flush(Conn& conn);
  // Closes the listener and every connection (call before the loop's last run).
  void close();
  // Closes one connection abruptly (a lost upstream).
  void closeConn(Conn& conn);
  // Serves the connected socket `fd` (the upstream's end) as a new connection.
  void adopt(int fd);

  std::vector<std::unique_ptr<Conn>> conns;

 private:
  static void onConnection(uv_stream_t* server, int status);
  // Adds `conn` (socket accepted or opened) and starts serving it.
  void add(std::unique_ptr<Conn> conn, bool ok);
  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  void serve(Conn& conn);

  uv_loop_t* loop_;
  FakeH2Server::Options options_;
  Handler handler_;
  upstream::UpstreamSocket listener_{};
  bool unix_ = false;
  uint16_t port_ = 0;
  bool closed_ = false;
  bool listening_ = true;
};

// Records what an H2Stream hands its sink.
struct RecordingSink : upstream::ResponseSink {
  upstream::H2Stream* stream = nullptr;  // cleared when the outcome arrives
  bool consume_all = true;               // consumed() every body byte at once
  int status = 0;
  std::map<std::string, std::string> fields;
  std::map<std::string, std::string> trailers;
  std::string body;
  bool complete = false;
  std::optional<upstream::UpstreamError> error;
  std::string detail;
  int events_done = 0;
  int drained = 0;
  int calls_after_outcome = 0;

  bool finished() const { return complete || error.has_value(); }
  void onResponseHead(http::MessageHead& head) override;
  void onResponseBody(const char* data, size_t len) override;
  void onResponseTrailers(const http::MessageHead& t) override;
  void onResponseComplete() override;
  void onUpstreamError(upstream::UpstreamError e, const char* d) override;
  void onUpstreamReplayable(std::string, const char*) override;
  void onUpstreamEventDone() override;
  void onUpstreamDrained() override { ++drained; }
};

// Opens a request for `path` on `pool` for `sink` (GET, or a POST whose body follows when
// !end_stream); sink.stream is set to the stream (nullptr when open() refused).
upstream::H2Stream* openRequest(upstream::H2Pool& pool, RecordingSink& sink,
                                const std::string& path, bool end_stream);

// A Handler: answers 200 with "path|request body" and a grpc-status trailer.
void echo(TestH2Upstream::Conn& conn, int32_t id);

// Runs `loop` until `done()` or `limit_ms` of loop time passed; returns done().
bool runUntil(uv_loop_t* loop, const std::function<bool()>& done, uint64_t limit_ms = 5000);

// A loopback port with nothing listening on it (bound once, then closed).
uint16_t closedPort(uv_loop_t* loop);

}  // namespace proxy::testing
