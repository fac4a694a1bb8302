#include "proxy/admin/admin_server.h"

#include <llhttp.h>
#include <netdb.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>

#include "proxy/common/check.h"
#include "proxy/common/log.h"

namespace proxy::admin {
namespace {

Status uvError(const std::string& what, int rc) {
  return Status::error(what + ": " + uv_err_name(rc) + " (" + uv_strerror(rc) + ")");
}

std::string formatAddress(const sockaddr& addr) {
  char ip[INET6_ADDRSTRLEN] = {};
  if (addr.sa_family == AF_INET6) {
    const auto* a6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    uv_ip6_name(a6, ip, sizeof(ip));
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(a6->sin6_port));
  }
  const auto* a4 = reinterpret_cast<const sockaddr_in*>(&addr);
  uv_ip4_name(a4, ip, sizeof(ip));
  return std::string(ip) + ":" + std::to_string(ntohs(a4->sin_port));
}

}  // namespace

BuildInfo currentBuildInfo() {
  BuildInfo info;
  info.libuv = uv_version_string();
  return info;
}

// One admin client connection: read one request, answer it, close. Owned by AdminServer
// (connections_); freed in its last close callback. Loop thread only.
class AdminServer::Connection {
 public:
  explicit Connection(AdminServer& server) : server_(server) {}
  ~Connection() { PROXY_CHECK(open_handles_ == 0, "admin connection freed with open handles"); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Accepts the pending connection from the listener; closes it at once when `reject`.
  void start(bool reject);
  // Idempotent; never frees: the last close callback asks the server to erase this.
  void close();
  bool closing() const { return state_ == State::kClosing; }

 private:
  // kReading: parsing the request. kResponding: the response write is in flight.
  // kShuttingDown: our FIN is in flight. kLingering: waiting for the client's EOF so that
  // closing does not reset the connection before the client has read the response.
  enum class State { kReading, kResponding, kShuttingDown, kLingering, kClosing };

  struct WriteOp {
    uv_write_t req{};
    std::string bytes;
    Connection* connection = nullptr;
  };
  struct ShutdownOp {
    uv_shutdown_t req{};
    Connection* connection = nullptr;
  };

  static const llhttp_settings_t& parserSettings();
  static int llOnUrl(llhttp_t* parser, const char* at, size_t length);
  static int llOnHeadersComplete(llhttp_t* parser);
  static int llOnMessageComplete(llhttp_t* parser);
  static void uvOnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void uvOnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void uvOnWrite(uv_write_t* req, int status);
  static void uvOnShutdown(uv_shutdown_t* req, int status);
  static void uvOnTimeout(uv_timer_t* timer);
  static void uvOnClose(uv_handle_t* handle);

  void onRead(ssize_t nread);
  void onWrite(int status);
  void onShutdown(int status);
  void feed(const char* data, size_t length);
  void route();
  void respond(int status, std::string_view reason, std::string_view content_type,
               const std::string& body, std::string_view extra_headers = {});
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&socket_); }

  AdminServer& server_;
  uv_tcp_t socket_{};   // socket_.data = this
  uv_timer_t timer_{};  // timer_.data = this; the connection's whole-life deadline
  int open_handles_ = 0;
  bool counted_ = false;  // counted in server_.serving_
  State state_ = State::kReading;
  llhttp_t parser_{};
  std::string url_;
  size_t head_bytes_ = 0;
  bool headers_complete_ = false;
  bool message_complete_ = false;
  bool head_only_ = false;  // HEAD: headers as for GET, no body
  bool peer_eof_ = false;
  std::array<char, 4096> read_buf_{};
};

const llhttp_settings_t& AdminServer::Connection::parserSettings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_url = &Connection::llOnUrl;
    s.on_headers_complete = &Connection::llOnHeadersComplete;
    s.on_message_complete = &Connection::llOnMessageComplete;
    return s;
  }();
  return settings;
}

int AdminServer::Connection::llOnUrl(llhttp_t* parser, const char* at, size_t length) {
  static_cast<Connection*>(parser->data)->url_.append(at, length);
  return HPE_OK;
}

int AdminServer::Connection::llOnHeadersComplete(llhttp_t* parser) {
  static_cast<Connection*>(parser->data)->headers_complete_ = true;
  return HPE_OK;
}

int AdminServer::Connection::llOnMessageComplete(llhttp_t* parser) {
  static_cast<Connection*>(parser->data)->message_complete_ = true;
  // One request per connection: pausing leaves any pipelined bytes unparsed.
  return HPE_PAUSED;
}

void AdminServer::Connection::start(bool reject) {
  // Both inits fail only on invalid arguments (AF_UNSPEC creates no socket yet).
  PROXY_CHECK(uv_tcp_init(server_.loop_, &socket_) == 0, "uv_tcp_init");
  socket_.data = this;
  ++open_handles_;
  PROXY_CHECK(uv_timer_init(server_.loop_, &timer_) == 0, "uv_timer_init");
  timer_.data = this;
  ++open_handles_;

  int rc = uv_accept(reinterpret_cast<uv_stream_t*>(&server_.listener_), stream());
  if (rc < 0) {
    log::debug("admin_accept_failed", {{"error", uv_err_name(rc)}});
    close();
    return;
  }
  if (reject) {
    log::debug("admin_connection_rejected",
               {{"max_connections", static_cast<uint64_t>(server_.options_.max_connections)}});
    close();
    return;
  }
  counted_ = true;
  ++server_.serving_;
  llhttp_init(&parser_, HTTP_REQUEST, &parserSettings());
  parser_.data = this;
  uv_timer_start(&timer_, &Connection::uvOnTimeout,
                 static_cast<uint64_t>(server_.options_.connection_timeout.count()), 0);
  rc = uv_read_start(stream(), &Connection::uvOnAlloc, &Connection::uvOnRead);
  if (rc < 0) close();
}

void AdminServer::Connection::close() {
  if (closing()) return;
  state_ = State::kClosing;
  if (counted_) {
    counted_ = false;
    --server_.serving_;
  }
  // Closing the socket cancels a pending write or shutdown; their callbacks run (with
  // UV_ECANCELED) before uvOnClose, so the ops they own are freed first.
  uv_close(reinterpret_cast<uv_handle_t*>(&socket_), &Connection::uvOnClose);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Connection::uvOnClose);
}

void AdminServer::Connection::uvOnClose(uv_handle_t* handle) {
  auto* self = static_cast<Connection*>(handle->data);
  if (--self->open_handles_ == 0) self->server_.erase(self);
}

void AdminServer::Connection::uvOnTimeout(uv_timer_t* timer) {
  auto* self = static_cast<Connection*>(timer->data);
  log::debug("admin_connection_timeout");
  self->close();
}

void AdminServer::Connection::uvOnAlloc(uv_handle_t* handle, size_t /*suggested*/, uv_buf_t* buf) {
  // One read is in flight per handle, so a member buffer is never shared.
  auto* self = static_cast<Connection*>(handle->data);
  *buf = uv_buf_init(self->read_buf_.data(), static_cast<unsigned>(self->read_buf_.size()));
}

void AdminServer::Connection::uvOnRead(uv_stream_t* stream, ssize_t nread,
                                       const uv_buf_t* /*buf*/) {
  static_cast<Connection*>(stream->data)->onRead(nread);
}

void AdminServer::Connection::onRead(ssize_t nread) {
  if (closing()) return;
  if (nread > 0) {
    // Bytes after the one request (pipelined or sent while lingering) are discarded.
    if (state_ == State::kReading) feed(read_buf_.data(), static_cast<size_t>(nread));
    return;
  }
  if (nread == 0) return;  // EAGAIN
  if (nread != UV_EOF) {
    close();
    return;
  }
  peer_eof_ = true;
  uv_read_stop(stream());
  // A client that half-closes after its request still gets the answer; one that leaves
  // before finishing it gets nothing. Once our FIN is out, both sides are done.
  if (state_ == State::kReading || state_ == State::kLingering) close();
}

void AdminServer::Connection::feed(const char* data, size_t length) {
  const size_t max_head = server_.options_.max_head_bytes;
  while (length > 0) {
    size_t n = length;
    if (!headers_complete_) {
      // Never let llhttp see more than the head budget before the head is complete, so a
      // single large read cannot sneak an oversized head past the limit.
      n = std::min(length, max_head - head_bytes_);
      head_bytes_ += n;
    }
    llhttp_errno_t err = llhttp_execute(&parser_, data, n);
    if (message_complete_) {
      route();
      return;
    }
    if (err != HPE_OK) {
      log::debug("admin_bad_request", {{"error", llhttp_errno_name(err)},
                                       {"reason", llhttp_get_error_reason(&parser_)}});
      respond(400, "Bad Request", "text/plain; charset=utf-8", "bad request\n");
      return;
    }
    if (!headers_complete_ && head_bytes_ >= max_head) {
      respond(431, "Request Header Fields Too Large", "text/plain; charset=utf-8",
              "request header fields too large\n");
      return;
    }
    data += n;
    length -= n;
  }
}

void AdminServer::Connection::route() {
  std::string_view path = url_;
  path = path.substr(0, path.find('?'));
  const auto method = static_cast<llhttp_method_t>(llhttp_get_method(&parser_));
  const bool known = path == "/healthz" || path == "/readyz" || path == "/metrics";
  constexpr std::string_view kText = "text/plain; charset=utf-8";
  if (!known) {
    respond(404, "Not Found", kText, "not found\n");
    return;
  }
  if (method != HTTP_GET && method != HTTP_HEAD) {
    respond(405, "Method Not Allowed", kText, "method not allowed\n", "Allow: GET, HEAD\r\n");
    return;
  }
  head_only_ = method == HTTP_HEAD;
  if (path == "/healthz") {
    // Liveness: answering at all proves the loop turns. Never ask the upstream here, or
    // a down APM Server would get the sidecar restarted (deployment.md, Kubernetes).
    respond(200, "OK", kText, "ok\n");
  } else if (path == "/readyz") {
    std::string reason;
    if (server_.host_.ready(&reason)) {
      respond(200, "OK", kText, "ready\n");
    } else {
      respond(503, "Service Unavailable", kText, (reason.empty() ? "not ready" : reason) + "\n");
    }
  } else {
    respond(200, "OK", kMetricsContentType, server_.host_.renderMetrics());
  }
}

void AdminServer::Connection::respond(int status, std::string_view reason,
                                      std::string_view content_type, const std::string& body,
                                      std::string_view extra_headers) {
  log::debug(
      "admin_request",
      {{"method", llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(&parser_)))},
       {"path", url_},
       {"status", status}});
  std::string out;
  out.reserve(160 + body.size());
  out += "HTTP/1.1 " + std::to_string(status) + " ";
  out += reason;
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size());
  // Probes and scrapes must always see the current state.
  out += "\r\nCache-Control: no-store\r\nConnection: close\r\n";
  out += extra_headers;
  out += "\r\n";
  if (!head_only_) out += body;

  state_ = State::kResponding;
  auto op = std::make_unique<WriteOp>();
  op->bytes = std::move(out);
  op->connection = this;
  op->req.data = op.get();
  uv_buf_t buf = uv_buf_init(op->bytes.data(), static_cast<unsigned>(op->bytes.size()));
  int rc = uv_write(&op->req, stream(), &buf, 1, &Connection::uvOnWrite);
  if (rc < 0) {
    close();
    return;
  }
  op.release();  // adopted back in uvOnWrite
}

void AdminServer::Connection::uvOnWrite(uv_write_t* req, int status) {
  std::unique_ptr<WriteOp> op(static_cast<WriteOp*>(req->data));
  if (status == UV_ECANCELED) return;
  op->connection->onWrite(status);
}

void AdminServer::Connection::onWrite(int status) {
  if (closing()) return;
  if (status < 0) {
    close();
    return;
  }
  // Send FIN and wait for the client's EOF (or the deadline) before closing: closing with
  // unread request bytes would reset the connection and could destroy the response in
  // flight (RFC 9112 §9.6, "tear-down").
  state_ = State::kShuttingDown;
  auto op = std::make_unique<ShutdownOp>();
  op->connection = this;
  op->req.data = op.get();
  int rc = uv_shutdown(&op->req, stream(), &Connection::uvOnShutdown);
  if (rc < 0) {
    close();
    return;
  }
  op.release();  // adopted back in uvOnShutdown
}

void AdminServer::Connection::uvOnShutdown(uv_shutdown_t* req, int status) {
  std::unique_ptr<ShutdownOp> op(static_cast<ShutdownOp*>(req->data));
  if (status == UV_ECANCELED) return;
  op->connection->onShutdown(status);
}

void AdminServer::Connection::onShutdown(int status) {
  if (closing()) return;
  if (status < 0 || peer_eof_) {
    close();
    return;
  }
  state_ = State::kLingering;
}

AdminServer::AdminServer(uv_loop_t* loop, AdminHost& host, Options options)
    : loop_(loop), host_(host), options_(options) {
  PROXY_CHECK(options_.max_head_bytes > 0, "admin max_head_bytes must be positive");
}

AdminServer::~AdminServer() {
  PROXY_CHECK(closed(), "AdminServer destroyed with open handles; close() and run the loop");
}

Status AdminServer::start(const sockaddr& addr) {
  PROXY_CHECK(!listener_open_ && !closing_, "AdminServer::start called twice");
  const std::string where = "admin listener " + formatAddress(addr);
  PROXY_CHECK(uv_tcp_init(loop_, &listener_) == 0, "uv_tcp_init");
  listener_.data = this;
  listener_open_ = true;
  // libuv reports EADDRINUSE from uv_listen rather than uv_tcp_bind, so check both.
  int rc = uv_tcp_bind(&listener_, &addr, 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 128, &AdminServer::uvOnConnection);
  }
  if (rc < 0) {
    close();
    return uvError("bind " + where, rc);
  }
  int len = sizeof(bound_);
  rc = uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound_), &len);
  if (rc < 0) {
    close();
    return uvError("getsockname " + where, rc);
  }
  log::info("admin_listening",
            {{"address", formatAddress(*reinterpret_cast<const sockaddr*>(&bound_))}});
  return Status::ok();
}

Status AdminServer::start(const config::HostPort& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  uv_getaddrinfo_t req{};
  const std::string port = std::to_string(host.port);
  // A null callback makes uv_getaddrinfo synchronous.
  int rc = uv_getaddrinfo(loop_, &req, nullptr, host.host.c_str(), port.c_str(), &hints);
  if (rc < 0) return uvError("admin host " + host.host + ": cannot resolve", rc);
  if (req.addrinfo == nullptr) return Status::error("admin host " + host.host + ": no address");
  sockaddr_storage addr{};
  std::memcpy(&addr, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
  uv_freeaddrinfo(req.addrinfo);
  return start(*reinterpret_cast<const sockaddr*>(&addr));
}

uint16_t AdminServer::boundPort() const {
  if (bound_.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&bound_)->sin6_port);
  }
  if (bound_.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&bound_)->sin_port);
  }
  return 0;
}

void AdminServer::close() {
  if (closing_) return;
  closing_ = true;
  if (listener_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), &AdminServer::uvOnListenerClose);
  }
  // close() never erases synchronously, so iterating the map is safe.
  for (auto& entry : connections_) entry.second->close();
}

void AdminServer::uvOnListenerClose(uv_handle_t* handle) {
  static_cast<AdminServer*>(handle->data)->listener_open_ = false;
}

void AdminServer::uvOnConnection(uv_stream_t* server, int status) {
  static_cast<AdminServer*>(server->data)->onConnection(status);
}

void AdminServer::onConnection(int status) {
  if (status < 0) {
    log::warn("admin_accept_failed", {{"error", uv_err_name(status)}});
    return;
  }
  if (closing_) return;
  auto connection = std::make_unique<Connection>(*this);
  Connection* raw = connection.get();
  connections_.emplace(raw, std::move(connection));
  raw->start(serving_ >= options_.max_connections);
}

void AdminServer::erase(Connection* connection) { connections_.erase(connection); }

}  // namespace proxy::admin
