// AdminServer: the plain-HTTP/1.1 admin endpoint ([admin] host): GET /healthz, /readyz,
// /metrics for the kubelet's probes and Prometheus. Beside the data path, never in it.
// Owns its listening socket and its admin connections; asks its host (AdminHost) for
// readiness and the metrics text. Runs on the Server's main loop thread only.
// Must never depend on the upstream itself: /healthz proves only that the loop turns.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "proxy/admin/metrics.h"
#include "proxy/common/status.h"
#include "proxy/config/config.h"

namespace proxy::admin {

// What the admin server asks the process hosting it. Implemented by Server. Called on
// the loop thread, synchronously, once per request.
class AdminHost {
 public:
  virtual ~AdminHost() = default;
  // True when this proxy should receive traffic. Otherwise sets *reason to a short line
  // without newline ("draining", "certificates not loaded", "upstream unreachable").
  virtual bool ready(std::string* reason) = 0;
  // The /metrics body: usually renderMetrics(snapshot).
  virtual std::string renderMetrics() = 0;
};

// Build facts of this binary for MetricsSnapshot::build (kVersion, BoringSSL, libuv).
BuildInfo currentBuildInfo();

// Owned by Server; loop thread only. Lifetime: construct, start(), ..., close(), then run
// the loop until the close callbacks have run (closed() is true) before destroying it;
// the destructor checks that every handle is closed.
class AdminServer {
 public:
  struct Options {
    size_t max_connections = 64;       // further connections are accepted and closed at once
    size_t max_head_bytes = 8 * 1024;  // request line + headers; larger gets 431
    std::chrono::milliseconds connection_timeout{5000};  // whole life of one connection
  };

  AdminServer(uv_loop_t* loop, AdminHost& host, Options options);
  AdminServer(uv_loop_t* loop, AdminHost& host) : AdminServer(loop, host, Options()) {}
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and listens on `addr` (port 0 picks a free port; see boundAddress()). Call once.
  // On failure the listener is already closing: close() and run the loop as for shutdown.
  Status start(const sockaddr& addr);
  // Resolves `host` (an IP literal or a name such as "localhost"; blocking, fine at
  // start-up) and binds the first address getaddrinfo returns.
  Status start(const config::HostPort& host);

  // The address actually bound (after a successful start()).
  const sockaddr_storage& boundAddress() const { return bound_; }
  // The port actually bound, in host byte order; 0 before start().
  uint16_t boundPort() const;
  // Connections open now (tests).
  size_t connectionCountForTest() const { return connections_.size(); }

  // Stops listening and closes every admin connection. Idempotent; never frees: run the
  // loop afterwards until closed() (Server's shutdown runs it until uv_loop_close() is 0).
  void close();
  // True when no handle of this server is open (never started, or fully closed).
  bool closed() const { return !listener_open_ && connections_.empty(); }

 private:
  class Connection;
  friend class Connection;

  static void uvOnConnection(uv_stream_t* server, int status);
  static void uvOnListenerClose(uv_handle_t* handle);
  void onConnection(int status);
  void erase(Connection* connection);  // from the connection's last close callback

  uv_loop_t* loop_;
  AdminHost& host_;
  Options options_;
  uv_tcp_t listener_{};  // listener_.data = this
  bool listener_open_ = false;
  bool closing_ = false;
  size_t serving_ = 0;  // connections not yet closing, for max_connections
  sockaddr_storage bound_{};
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
};

}  // namespace proxy::admin
