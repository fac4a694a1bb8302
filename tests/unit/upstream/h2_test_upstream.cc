#include "tests/unit/upstream/h2_test_upstream.h"

#include <algorithm>
#include <catch2/catch.hpp>

namespace proxy::testing {
namespace {

struct WriteReq {
  uv_write_t req{};
  std::string data;
};

void onAlloc(uv_handle_t*, size_t suggested, uv_buf_t* buf) {
  buf->base = new char[suggested];
  buf->len = suggested;
}

}  // namespace

TestH2Upstream::TestH2Upstream(uv_loop_t* loop, FakeH2Server::Options options, Handler handler,
                               const std::string& unix_path)
    : loop_(loop), options_(options), handler_(std::move(handler)), unix_(!unix_path.empty()) {
  auto* stream = reinterpret_cast<uv_stream_t*>(&listener_);
  if (unix_) {
    REQUIRE(uv_pipe_init(loop_, &listener_.pipe, 0) == 0);
    REQUIRE(uv_pipe_bind(&listener_.pipe, unix_path.c_str()) == 0);
  } else {
    REQUIRE(uv_tcp_init(loop_, &listener_.tcp) == 0);
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", 0, &addr);
    REQUIRE(uv_tcp_bind(&listener_.tcp, reinterpret_cast<const sockaddr*>(&addr), 0) == 0);
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&listener_.tcp, reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  stream->data = this;
  REQUIRE(uv_listen(stream, 64, &onConnection) == 0);
}

TestH2Upstream::TestH2Upstream(uv_loop_t* loop, FakeH2Server::Options options, Handler handler,
                               NoListener)
    : loop_(loop), options_(options), handler_(std::move(handler)), listening_(false) {}

TestH2Upstream::~TestH2Upstream() { close(); }

void TestH2Upstream::close() {
  if (closed_) return;
  closed_ = true;
  if (listening_) uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
  for (auto& c : conns) closeConn(*c);
}

void TestH2Upstream::closeConn(Conn& conn) {
  if (conn.closed) return;
  conn.closed = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&conn.socket), nullptr);
}

void TestH2Upstream::onConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<TestH2Upstream*>(server->data);
  if (status < 0) return;
  auto conn = std::make_unique<Conn>();
  conn->owner = self;
  conn->index = self->conns.size();
  conn->server = std::make_unique<FakeH2Server>(self->options_);
  if (self->unix_) {
    uv_pipe_init(self->loop_, &conn->socket.pipe, 0);
  } else {
    uv_tcp_init(self->loop_, &conn->socket.tcp);
  }
  auto* stream = reinterpret_cast<uv_stream_t*>(&conn->socket);
  stream->data = conn.get();
  bool ok = uv_accept(server, stream) == 0;
  self->add(std::move(conn), ok);
}

void TestH2Upstream::adopt(int fd) {
  auto conn = std::make_unique<Conn>();
  conn->owner = this;
  conn->index = conns.size();
  conn->server = std::make_unique<FakeH2Server>(options_);
  uv_pipe_init(loop_, &conn->socket.pipe, 0);
  conn->socket.pipe.data = conn.get();
  bool ok = uv_pipe_open(&conn->socket.pipe, fd) == 0;
  add(std::move(conn), ok);
}

void TestH2Upstream::add(std::unique_ptr<Conn> conn, bool ok) {
  auto* stream = reinterpret_cast<uv_stream_t*>(&conn->socket);
  if (!ok) {
    uv_close(reinterpret_cast<uv_handle_t*>(stream), nullptr);
    conn->closed = true;
  } else {
    uv_read_start(stream, &onAlloc, &onRead);
  }
  conns.push_back(std::move(conn));
  flush(*conns.back());  // the server's SETTINGS
}

void TestH2Upstream::onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* conn = static_cast<Conn*>(s->data);
  std::unique_ptr<char[]> owned(buf->base);
  if (nread == 0 || conn->closed) return;
  if (nread < 0 || !conn->server->receive(buf->base, static_cast<size_t>(nread))) {
    conn->owner->closeConn(*conn);
    return;
  }
  conn->owner->serve(*conn);
}

void TestH2Upstream::serve(Conn& conn) {
  size_t open = 0;
  for (const auto& [id, req] : conn.server->requests) {
    if (!req.closed) ++open;
  }
  conn.max_open_requests = std::max(conn.max_open_requests, open);
  conn.open_requests = open;
  std::vector<int32_t> ready;
  for (const auto& [id, req] : conn.server->requests) {
    bool seen = std::find(conn.answered.begin(), conn.answered.end(), id) != conn.answered.end();
    if (req.ended && !seen) ready.push_back(id);
  }
  for (int32_t id : ready) {
    conn.answered.push_back(id);
    handler_(conn, id);
  }
  flush(conn);
}

void TestH2Upstream::flush(Conn& conn) {
  if (conn.closed) return;
  std::string out = conn.server->takeOutput();
  if (out.empty()) return;
  auto* w = new WriteReq;
  w->data = std::move(out);
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&conn.socket), &b, 1,
                    [](uv_write_t* req, int) { delete reinterpret_cast<WriteReq*>(req); });
  if (rc != 0) delete w;
}

void RecordingSink::onResponseHead(http::MessageHead& head) {
  if (finished()) ++calls_after_outcome;
  if (head.status < 200) return;
  status = head.status;
  for (size_t i = 0; i < head.headerCount(); ++i) {
    fields[std::string(head.header(i).name)] = std::string(head.header(i).value);
  }
}

void RecordingSink::onResponseBody(const char* data, size_t len) {
  if (finished()) ++calls_after_outcome;
  body.append(data, len);
  if (consume_all && stream != nullptr) stream->consumed(len);
}

void RecordingSink::onResponseTrailers(const http::MessageHead& t) {
  for (size_t i = 0; i < t.headerCount(); ++i) {
    trailers[std::string(t.header(i).name)] = std::string(t.header(i).value);
  }
}

void RecordingSink::onResponseComplete() {
  if (finished()) ++calls_after_outcome;
  complete = true;
  stream = nullptr;
}

void RecordingSink::onUpstreamError(upstream::UpstreamError e, const char* d) {
  if (finished()) ++calls_after_outcome;
  error = e;
  detail = d;
  stream = nullptr;
}

void RecordingSink::onUpstreamReplayable(std::string, const char*) {
  FAIL("the h2c upstream retries by itself and never hands a request back");
}

void RecordingSink::onUpstreamEventDone() {
  if (finished()) ++calls_after_outcome;
  ++events_done;
}

upstream::H2Stream* openRequest(upstream::H2Pool& pool, RecordingSink& sink,
                                const std::string& path, bool end_stream) {
  http2::HeaderFields h = {{":method", end_stream ? "GET" : "POST"},
                           {":scheme", "http"},
                           {":authority", "apm"},
                           {":path", path}};
  sink.stream = pool.open(&sink, h, end_stream);
  return sink.stream;
}

void echo(TestH2Upstream::Conn& conn, int32_t id) {
  const FakeH2Server::Request& req = conn.server->requests[id];
  conn.server->sendHead(id, 200, {{"content-type", "application/grpc"}}, false);
  conn.server->sendData(id, req.header(":path") + "|" + req.body, true, {{"grpc-status", "0"}});
}

bool runUntil(uv_loop_t* loop, const std::function<bool()>& done, uint64_t limit_ms) {
  // A repeating timer keeps UV_RUN_ONCE from blocking forever when nothing happens.
  uv_timer_t poll{};
  uv_timer_init(loop, &poll);
  uv_timer_start(
      &poll, [](uv_timer_t*) {}, 5, 5);
  uint64_t deadline = uv_now(loop) + limit_ms;
  while (!done() && uv_now(loop) < deadline) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&poll), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);  // lets the close callback run
  return done();
}

uint16_t closedPort(uv_loop_t* loop) {
  uv_tcp_t t{};
  uv_tcp_init(loop, &t);
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_bind(&t, reinterpret_cast<const sockaddr*>(&addr), 0);
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&t, reinterpret_cast<sockaddr*>(&bound), &len);
  uint16_t port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return port;
}

}  // namespace proxy::testing
