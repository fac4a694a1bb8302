// apm-bench-client's connection engine: many non-blocking connections (TCP, TLS handshake,
// an optional request, the HTTP/2 preface) driven by one edge-triggered epoll set. The
// handshake, idle and rate modes share it; responses are read by tests/support's
// Http1Reader without keeping their bodies. Owns its epoll descriptor; the connections are
// the caller's (their addresses are the epoll data, so they must not move while open).
#pragma once

#include <openssl/ssl.h>
#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/bench/bench_options.h"
#include "tests/bench/h2_bytes.h"
#include "tests/support/http1_reader.h"
#include "tests/support/tls_client.h"

namespace bench {

// One client connection. Owned by the mode that runs it; the engine opens and frees its
// socket and SSL (start/finish).
struct Conn {
  enum class State { kConnecting, kHandshaking, kWaitTicket, kSending, kReading, kDone };
  int fd = -1;
  SSL* ssl = nullptr;
  State state = State::kConnecting;
  bool got_ticket = false;
  SSL_SESSION* session = nullptr;  // resume mode: the slot's latest ticket
  bool keep_session = false;
  size_t sent = 0;
  Clock::time_point started;
  proxy::testsupport::Http1Reader reader{proxy::testsupport::Http1Reader::Options{
      /*stop_at_interim=*/false, /*head_request=*/false, /*discard_body=*/true}};
  H2ResponseScanner h2;
};

// Drives Conns through their states. One per mode run; loop thread only.
class Engine {
 public:
  enum class Step { kWait, kDone, kError };
  // What a connection does once its handshake (or TCP connect) is done.
  enum class AfterHandshake {
    kPerOptions,  // send the request (or the HTTP/2 preface) if the options ask for one
    kHold,        // stop in kDone: the caller sends requests with sendRequest()
  };

  Engine(const Options& o, const proxy::testsupport::TlsClientContext* ctx,
         AfterHandshake after = AfterHandshake::kPerOptions);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Starts (or restarts) the connection in `c`. False when the socket cannot be opened.
  bool start(Conn& c);
  // Frees the connection's socket and SSL; sends close_notify first when asked.
  void finish(Conn& c, bool close_notify);
  // Moves `c` forward as far as its socket allows: kDone, kError on failure, or kWait when
  // it must wait for the socket.
  Step drive(Conn& c);
  // Sends the 1 KiB request again on an established connection in kDone and drives it;
  // the connection ends in kDone once the whole response has been read.
  Step sendRequest(Conn& c);

  // Waits up to `timeout` for socket events and drives the ready connections; `onStep`
  // gets each connection that finished or failed.
  template <typename F>
  void poll(std::chrono::nanoseconds timeout, F&& onStep) {
    epoll_event events[256];
    int n = wait(events, 256, timeout);
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Conn*>(events[i].data.ptr);
      if (c->fd < 0 || c->state == Conn::State::kDone) continue;
      Step s = drive(*c);
      if (s != Step::kWait) onStep(*c, s);
    }
  }

  // Connections stuck waiting for a ticket this long are treated as done (a server with
  // session tickets off sends none).
  template <typename F>
  void expireTicketWaits(std::vector<Conn>& conns, F&& onStep) {
    Clock::time_point now = Clock::now();
    for (Conn& c : conns) {
      if (c.fd >= 0 && c.state == Conn::State::kWaitTicket &&
          now - c.started > std::chrono::seconds(2)) {
        ++no_ticket_;
        c.state = afterHandshake();
        Step s = drive(c);
        if (s != Step::kWait) onStep(c, s);
      }
    }
  }

  uint64_t resumed() const { return resumed_; }
  uint64_t noTicket() const { return no_ticket_; }
  uint64_t non2xx() const { return non2xx_; }

 private:
  Conn::State afterHandshake() const;
  bool wouldBlock(Conn& c, int r);
  // epoll_pwait2 with a nanosecond timeout; the number of events (0 on timeout or EINTR).
  int wait(epoll_event* events, int max, std::chrono::nanoseconds timeout);

  const Options& o_;
  SSL_CTX* ctx_;
  AfterHandshake after_;
  std::string request_;
  int epoll_ = -1;
  uint64_t resumed_ = 0;
  uint64_t no_ticket_ = 0;
  uint64_t non2xx_ = 0;
  int errors_logged_ = 0;
};

}  // namespace bench
