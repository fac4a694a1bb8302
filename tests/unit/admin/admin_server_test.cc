#include "proxy/admin/admin_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace proxy::admin {
namespace {

class FakeHost : public AdminHost {
 public:
  bool ready(std::string* reason) override {
    if (!is_ready) *reason = not_ready_reason;
    return is_ready;
  }
  std::string renderMetrics() override { return metrics; }

  bool is_ready = true;
  std::string not_ready_reason = "draining";
  std::string metrics =
      "# HELP apm_tls_proxy_workers W.\n# TYPE apm_tls_proxy_workers gauge\n"
      "apm_tls_proxy_workers 1\n";
};

// A blocking client socket with a 2 s receive timeout, so a server bug fails the test
// instead of hanging it.
int connectTo(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads until EOF, error or timeout.
std::string readAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// An AdminServer on its own loop in this thread; client code runs in a std::thread while
// the loop turns, and stops the loop through an async handle when it is done.
class Harness {
 public:
  explicit Harness(AdminServer::Options options = {}) {
    REQUIRE(uv_loop_init(&loop_) == 0);
    REQUIRE(uv_async_init(&loop_, &done_, [](uv_async_t* a) { uv_stop(a->loop); }) == 0);
    server_ = std::make_unique<AdminServer>(&loop_, host, options);
    sockaddr_in addr{};
    REQUIRE(uv_ip4_addr("127.0.0.1", 0, &addr) == 0);
    Status s = server_->start(*reinterpret_cast<const sockaddr*>(&addr));
    REQUIRE(s.isOk());
    REQUIRE(server_->boundPort() != 0);
  }

  ~Harness() {
    server_->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&done_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    CHECK(server_->closed());
    server_.reset();
    CHECK(uv_loop_close(&loop_) == 0);
  }

  // Runs `client` on a thread while this thread turns the loop.
  void run(const std::function<void()>& client) {
    std::thread t([&] {
      client();
      uv_async_send(&done_);
    });
    uv_run(&loop_, UV_RUN_DEFAULT);
    t.join();
  }

  // Sends `request` on a fresh connection and returns everything the server sent back.
  std::string exchange(const std::string& request) {
    std::string response;
    run([&] {
      int fd = connectTo(port());
      REQUIRE(fd >= 0);
      size_t off = 0;
      while (off < request.size()) {
        ssize_t n = send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      shutdown(fd, SHUT_WR);
      response = readAll(fd);
      ::close(fd);
    });
    return response;
  }

  uint16_t port() const { return server_->boundPort(); }
  AdminServer& server() { return *server_; }

  FakeHost host;

 private:
  uv_loop_t loop_{};
  uv_async_t done_{};
  std::unique_ptr<AdminServer> server_;
};

std::string get(const std::string& target, const std::string& method = "GET") {
  return method + " " + target +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: kube-probe/1.29\r\n\r\n";
}

std::string bodyOf(const std::string& response) {
  auto pos = response.find("\r\n\r\n");
  return pos == std::string::npos ? std::string() : response.substr(pos + 4);
}

bool startsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

TEST_CASE("AdminServer answers /healthz with 200 ok", "[unit][admin]") {
  Harness h;
  std::string r = h.exchange(get("/healthz"));
  CHECK(startsWith(r, "HTTP/1.1 200 OK\r\n"));
  CHECK(r.find("Content-Length: 3\r\n") != std::string::npos);
  CHECK(r.find("Connection: close\r\n") != std::string::npos);
  CHECK(bodyOf(r) == "ok\n");
}

TEST_CASE("AdminServer answers /readyz from its host", "[unit][admin]") {
  Harness h;
  SECTION("ready") {
    std::string r = h.exchange(get("/readyz"));
    CHECK(startsWith(r, "HTTP/1.1 200 OK\r\n"));
    CHECK(bodyOf(r) == "ready\n");
  }
  SECTION("not ready, with the host's reason") {
    h.host.is_ready = false;
    h.host.not_ready_reason = "certificates not loaded";
    std::string r = h.exchange(get("/readyz"));
    CHECK(startsWith(r, "HTTP/1.1 503 Service Unavailable\r\n"));
    CHECK(bodyOf(r) == "certificates not loaded\n");
  }
}

TEST_CASE("AdminServer serves /metrics with the Prometheus content type", "[unit][admin]") {
  Harness h;
  SECTION("GET") {
    std::string r = h.exchange(get("/metrics"));
    CHECK(startsWith(r, "HTTP/1.1 200 OK\r\n"));
    CHECK(r.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") !=
          std::string::npos);
    CHECK(bodyOf(r) == h.host.metrics);
  }
  SECTION("GET with a query string") {
    std::string r = h.exchange(get("/metrics?name[]=x"));
    CHECK(bodyOf(r) == h.host.metrics);
  }
  SECTION("HEAD sends the headers of GET and no body") {
    std::string r = h.exchange(get("/metrics", "HEAD"));
    CHECK(startsWith(r, "HTTP/1.1 200 OK\r\n"));
    CHECK(r.find("Content-Length: " + std::to_string(h.host.metrics.size()) + "\r\n") !=
          std::string::npos);
    CHECK(bodyOf(r).empty());
  }
}

TEST_CASE("AdminServer answers 404 for unknown paths and 405 for other methods", "[unit][admin]") {
  Harness h;
  CHECK(startsWith(h.exchange(get("/")), "HTTP/1.1 404 Not Found\r\n"));
  CHECK(startsWith(h.exchange(get("/healthz/")), "HTTP/1.1 404 Not Found\r\n"));
  std::string r = h.exchange(get("/healthz", "POST"));
  CHECK(startsWith(r, "HTTP/1.1 405 Method Not Allowed\r\n"));
  CHECK(r.find("Allow: GET, HEAD\r\n") != std::string::npos);
}

TEST_CASE("AdminServer rejects malformed and oversized requests", "[unit][admin]") {
  Harness h;
  SECTION("garbage gets 400") {
    CHECK(startsWith(h.exchange("\x16\x03\x01\x02\x00garbage\r\n\r\n"),
                     "HTTP/1.1 400 Bad Request\r\n"));
  }
  SECTION("a head over 8 KiB gets 431") {
    std::string big = "GET /healthz HTTP/1.1\r\nX-Filler: " + std::string(9000, 'a') + "\r\n\r\n";
    CHECK(startsWith(h.exchange(big), "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  }
  SECTION("a head just under the limit is served") {
    std::string head = "GET /healthz HTTP/1.1\r\nX-Filler: ";
    head += std::string(8 * 1024 - head.size() - 4, 'a') + "\r\n\r\n";
    REQUIRE(head.size() == 8 * 1024);
    CHECK(bodyOf(h.exchange(head)) == "ok\n");
  }
}

TEST_CASE("AdminServer closes a silent connection at its deadline", "[unit][admin]") {
  AdminServer::Options options;
  options.connection_timeout = std::chrono::milliseconds(100);
  Harness h(options);
  std::string got = "unset";
  auto elapsed = std::chrono::milliseconds(0);
  h.run([&] {
    int fd = connectTo(h.port());
    REQUIRE(fd >= 0);
    auto start = std::chrono::steady_clock::now();
    got = readAll(fd);  // returns at EOF
    elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    ::close(fd);
  });
  CHECK(got.empty());
  CHECK(elapsed < std::chrono::milliseconds(1000));
}

TEST_CASE("AdminServer accepts and closes connections over max_connections", "[unit][admin]") {
  AdminServer::Options options;
  options.max_connections = 2;
  Harness h(options);
  std::string third = "unset";
  std::string first;
  h.run([&] {
    int a = connectTo(h.port());
    int b = connectTo(h.port());
    int c = connectTo(h.port());
    REQUIRE((a >= 0 && b >= 0 && c >= 0));
    third = readAll(c);  // EOF at once: over the limit
    ::close(c);
    // The first two are still served.
    std::string req = get("/healthz");
    send(a, req.data(), req.size(), MSG_NOSIGNAL);
    first = readAll(a);
    ::close(a);
    ::close(b);
  });
  CHECK(third.empty());
  CHECK(bodyOf(first) == "ok\n");
}

TEST_CASE("AdminServer answers a request that arrives in pieces", "[unit][admin]") {
  Harness h;
  std::string response;
  h.run([&] {
    int fd = connectTo(h.port());
    REQUIRE(fd >= 0);
    for (char c : get("/readyz")) {
      send(fd, &c, 1, MSG_NOSIGNAL);
    }
    response = readAll(fd);
    ::close(fd);
  });
  CHECK(bodyOf(response) == "ready\n");
}

TEST_CASE("AdminServer reports a bind failure as a Status", "[unit][admin]") {
  Harness h;
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    FakeHost host;
    AdminServer second(&loop, host);
    Status s = second.start(config::HostPort{"127.0.0.1", h.port()});
    CHECK_FALSE(s.isOk());
    CHECK(s.message().find("EADDRINUSE") != std::string::npos);
    second.close();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(second.closed());
  }
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("AdminServer binds a configured host and port 0", "[unit][admin]") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    FakeHost host;
    AdminServer server(&loop, host);
    Status s = server.start(config::HostPort{"127.0.0.1", 0});
    INFO(s.message());
    CHECK(s.isOk());
    CHECK(server.boundPort() != 0);
    server.close();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(server.closed());
  }
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace proxy::admin
