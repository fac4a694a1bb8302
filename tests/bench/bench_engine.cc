// apm-bench-client's connection engine (bench_engine.h) and the two modes that only open
// connections: handshake and idle.
#include "tests/bench/bench_engine.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "tests/bench/bench_modes.h"

namespace bench {
namespace {

int g_conn_index = -1;

// The whole file ("" when it cannot be read).
std::string readWhole(const std::string& path) {
  std::string out;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    std::fclose(f);
  }
  return out;
}

int onNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* c = static_cast<Conn*>(SSL_get_ex_data(ssl, g_conn_index));
  if (!c) return 0;
  c->got_ticket = true;
  if (!c->keep_session) return 0;
  if (c->session) SSL_SESSION_free(c->session);
  c->session = session;  // we take the reference
  return 1;
}

}  // namespace

Engine::Engine(const Options& o, const TlsClientContext* ctx, AfterHandshake after)
    : o_(o),
      ctx_(ctx != nullptr ? ctx->get() : nullptr),
      after_(after),
      request_(o.h2 ? h2ClientBytes(o.request, ctx != nullptr) : smallRequest(o)) {
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
}

Engine::~Engine() { ::close(epoll_); }

bool Engine::start(Conn& c) {
  c.fd = openSocket(o_, true);
  if (c.fd < 0) return false;
  c.state = Conn::State::kConnecting;
  c.got_ticket = false;
  c.sent = 0;
  c.started = Clock::now();
  c.reader.reset();
  c.h2.reset();
  if (ctx_) {
    c.ssl = SSL_new(ctx_);
    SSL_set_fd(c.ssl, c.fd);
    SSL_set_connect_state(c.ssl);
    SSL_set_tlsext_host_name(c.ssl, "localhost");
    SSL_set_ex_data(c.ssl, g_conn_index, &c);
    if (c.keep_session && c.session) SSL_set_session(c.ssl, c.session);
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
  ev.data.ptr = &c;
  ::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
  return true;
}

void Engine::finish(Conn& c, bool close_notify) {
  if (c.ssl) {
    if (close_notify) SSL_shutdown(c.ssl);
    SSL_free(c.ssl);
    c.ssl = nullptr;
  }
  if (c.fd >= 0) ::close(c.fd);  // also removes it from the epoll set
  c.fd = -1;
}

Engine::Step Engine::drive(Conn& c) {
  for (;;) {
    switch (c.state) {
      case Conn::State::kConnecting: {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) return Step::kError;
        pollfd p{c.fd, POLLOUT, 0};
        if (::poll(&p, 1, 0) != 1) return Step::kWait;
        c.state = c.ssl ? Conn::State::kHandshaking : afterHandshake();
        break;
      }
      case Conn::State::kHandshaking: {
        ERR_clear_error();
        int r = SSL_do_handshake(c.ssl);
        if (r == 1) {
          if (SSL_session_reused(c.ssl)) ++resumed_;
          // TLS 1.2: the server read our Finished before it sent its own.
          c.state =
              SSL_version(c.ssl) == TLS1_3_VERSION ? Conn::State::kWaitTicket : afterHandshake();
          break;
        }
        return wouldBlock(c, r) ? Step::kWait : Step::kError;
      }
      case Conn::State::kWaitTicket: {
        // The server sends its tickets once it has read our Finished, so a ticket proves
        // the proxy has completed the handshake too.
        if (c.got_ticket) {
          c.state = afterHandshake();
          break;
        }
        char buf[4096];
        ERR_clear_error();
        int r = SSL_read(c.ssl, buf, sizeof buf);
        if (r > 0) continue;
        if (c.got_ticket) continue;
        return wouldBlock(c, r) ? Step::kWait : Step::kError;
      }
      case Conn::State::kSending: {
        const char* p = request_.data() + c.sent;
        size_t n = request_.size() - c.sent;
        ssize_t w;
        if (c.ssl) {
          ERR_clear_error();
          int r = SSL_write(c.ssl, p, static_cast<int>(n));
          if (r <= 0) return wouldBlock(c, r) ? Step::kWait : Step::kError;
          w = r;
        } else {
          w = ::send(c.fd, p, n, MSG_NOSIGNAL);
          if (w < 0) return errno == EAGAIN ? Step::kWait : Step::kError;
        }
        c.sent += static_cast<size_t>(w);
        if (c.sent == request_.size()) {
          c.state = o_.request || after_ == AfterHandshake::kHold ? Conn::State::kReading
                                                                  : Conn::State::kDone;
        }
        break;
      }
      case Conn::State::kReading: {
        char buf[16384];
        ssize_t r;
        if (c.ssl) {
          ERR_clear_error();
          int n = SSL_read(c.ssl, buf, sizeof buf);
          if (n <= 0) return wouldBlock(c, n) ? Step::kWait : Step::kError;
          r = n;
        } else {
          r = ::recv(c.fd, buf, sizeof buf, 0);
          if (r < 0) return errno == EAGAIN ? Step::kWait : Step::kError;
          if (r == 0) return Step::kError;
        }
        if (o_.h2) {
          auto res = c.h2.feed(buf, static_cast<size_t>(r));
          if (res == H2ResponseScanner::Result::kError) return Step::kError;
          if (res == H2ResponseScanner::Result::kDone) {
            if (!c.h2.ok()) ++non2xx_;
            c.state = Conn::State::kDone;
          }
          break;
        }
        c.reader.feed(std::string_view(buf, static_cast<size_t>(r)));
        if (c.reader.broken()) return Step::kError;
        if (c.reader.done()) {
          int status = c.reader.response().status;
          if (status < 200 || status >= 300) ++non2xx_;
          c.state = Conn::State::kDone;
        }
        break;
      }
      case Conn::State::kDone:
        return Step::kDone;
    }
  }
}

Engine::Step Engine::sendRequest(Conn& c) {
  c.state = Conn::State::kSending;
  c.sent = 0;
  c.reader.reset();
  return drive(c);
}

Conn::State Engine::afterHandshake() const {
  if (after_ == AfterHandshake::kHold) return Conn::State::kDone;
  return o_.request || o_.h2 ? Conn::State::kSending : Conn::State::kDone;
}

bool Engine::wouldBlock(Conn& c, int r) {
  int e = SSL_get_error(c.ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
  if (++errors_logged_ <= 3) {
    std::fprintf(stderr, "apm-bench-client: TLS error %d: %s\n", e, sslErrors().c_str());
  }
  return false;
}

int Engine::wait(epoll_event* events, int max, std::chrono::nanoseconds timeout) {
  auto ns = std::max<int64_t>(0, timeout.count());
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  int n = ::epoll_pwait2(epoll_, events, max, &ts, nullptr);
  if (n < 0 && errno == ENOSYS) {
    // Kernels before 5.11 lack epoll_pwait2: millisecond waits, rounded up so that a
    // short timeout never becomes a busy loop.
    int64_t ms = std::min<int64_t>((ns + 999999) / 1000000, 1000000);
    n = ::epoll_wait(epoll_, events, max, static_cast<int>(ms));
  }
  return n < 0 ? 0 : n;
}

// The client context: TLS 1.3 only (the figures are TLS 1.3 ones), no certificate-chain
// verification (the proxy's CPU is what we measure; the handshake signature is still
// checked by BoringSSL), tickets delivered to onNewSession.
std::unique_ptr<TlsClientContext> makeClientContext(const Options& o) {
  proxy::testsupport::TlsClientOptions options;
  options.min_version = options.max_version = o.tls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
  options.alpn = {o.h2 ? "h2" : "http/1.1"};
  options.close_notify = false;
  options.timeout = std::chrono::seconds(60);
  std::string error;
  if (!o.cert_file.empty()) {
    options.cert_pem = readWhole(o.cert_file);
    options.key_pem = readWhole(o.key_file);
    if (options.cert_pem.empty() || options.key_pem.empty()) error = "cannot read the files";
  }
  auto ctx = std::make_unique<TlsClientContext>(options);
  if (error.empty()) error = ctx->error();
  if (!error.empty()) {
    std::fprintf(stderr, "apm-bench-client: cannot load the client certificate: %s\n",
                 error.c_str());
    return nullptr;
  }
  // The engine's connections keep their own tickets (Conn, by g_conn_index).
  SSL_CTX_sess_set_new_cb(ctx->get(), onNewSession);
  g_conn_index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return ctx;
}

int runHandshakes(const Options& o, const TlsClientContext* ctx) {
  Engine engine(o, ctx);
  std::vector<Conn> conns(static_cast<size_t>(o.concurrency));
  uint64_t done = 0;
  uint64_t failed = 0;
  Clock::time_point start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(o.duration);
  for (Conn& c : conns) {
    c.keep_session = o.resume;
    if (!engine.start(c)) ++failed;
  }
  auto onStep = [&](Conn& c, Engine::Step s) {
    if (s == Engine::Step::kDone) {
      ++done;
    } else {
      ++failed;
    }
    engine.finish(c, s == Engine::Step::kDone);
    if (Clock::now() < deadline && !g_stop && !engine.start(c)) ++failed;
  };
  for (;;) {
    bool open = false;
    for (const Conn& c : conns) open = open || c.fd >= 0;
    if (!open) break;
    engine.poll(std::chrono::milliseconds(50), onStep);
    engine.expireTicketWaits(conns, onStep);
    if (Clock::now() > deadline + std::chrono::seconds(5)) break;  // stragglers
  }
  double secs = secondsSince(start);
  for (Conn& c : conns) {
    engine.finish(c, false);
    if (c.session) SSL_SESSION_free(c.session);
  }
  std::printf(
      "mode=handshake handshakes=%llu resumed=%llu failed=%llu no_ticket=%llu "
      "seconds=%.3f\n",
      static_cast<unsigned long long>(done), static_cast<unsigned long long>(engine.resumed()),
      static_cast<unsigned long long>(failed), static_cast<unsigned long long>(engine.noTicket()),
      secs);
  return 0;
}

int runIdle(const Options& o, const TlsClientContext* ctx) {
  Engine engine(o, ctx);
  std::vector<Conn> conns(o.count);  // never resized: the epoll data points into it
  uint64_t started = 0;
  uint64_t established = 0;
  uint64_t failed = 0;
  int in_flight = 0;
  const int kMaxInFlight = std::max(1, o.concurrency);
  Clock::time_point start = Clock::now();
  auto onStep = [&](Conn& c, Engine::Step s) {
    --in_flight;
    if (s == Engine::Step::kDone) {
      ++established;
    } else {
      ++failed;
      engine.finish(c, false);
    }
  };
  while (!g_stop && established + failed < o.count) {
    while (started < o.count && in_flight < kMaxInFlight) {
      Conn& c = conns[started++];
      if (engine.start(c)) {
        ++in_flight;
      } else {
        ++failed;
      }
    }
    engine.poll(std::chrono::milliseconds(50), onStep);
    engine.expireTicketWaits(conns, onStep);
    if (secondsSince(start) > 120) break;
  }
  double setup = secondsSince(start);
  if (!o.ready_file.empty()) {
    std::string tmp = o.ready_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "established=%llu failed=%llu\n",
                   static_cast<unsigned long long>(established),
                   static_cast<unsigned long long>(failed));
      std::fclose(f);
      std::rename(tmp.c_str(), o.ready_file.c_str());
    }
  }
  Clock::time_point hold_start = Clock::now();
  while (!g_stop && secondsSince(hold_start) < o.hold) ::usleep(20 * 1000);
  // How many did the proxy keep open the whole time? A closed one is readable (EOF).
  uint64_t still_open = 0;
  for (Conn& c : conns) {
    if (c.fd < 0 || c.state != Conn::State::kDone) continue;
    pollfd p{c.fd, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) == 0) ++still_open;
  }
  for (Conn& c : conns) {
    engine.finish(c, false);
    if (c.session) SSL_SESSION_free(c.session);
  }
  std::printf(
      "mode=idle established=%llu failed=%llu still_open=%llu non2xx=%llu "
      "setup_seconds=%.3f\n",
      static_cast<unsigned long long>(established), static_cast<unsigned long long>(failed),
      static_cast<unsigned long long>(still_open), static_cast<unsigned long long>(engine.non2xx()),
      setup);
  return 0;
}

}  // namespace bench
