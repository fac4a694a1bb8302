// FakeConnector: an UpstreamConnector for pool tests that touches no network. Each connect
// gets one end of a socketpair(AF_UNIX) as its uv_pipe_t; the test holds the other end
// (the "upstream") and decides when and how the connect ends: succeed, refuse, or never
// (the caller's connect timeout). Every attempt is recorded. Test code only.
#pragma once

#include <uv.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "proxy/upstream/upstream_connector.h"

namespace proxy::testing {

class FakeConnector : public upstream::UpstreamConnector {
 public:
  struct Record {
    Client* client = nullptr;    // who asked (the upstream connection)
    Attempt* attempt = nullptr;  // null once reported or abandoned
    int peer_fd = -1;            // the test's end of the pair; -1 once closed
    size_t address = 0;          // the address index it was "dialled" on
    bool reported = false;
    bool abandoned = false;
    bool timed_out = false;
  };

  explicit FakeConnector(uv_loop_t* loop);
  ~FakeConnector() override;
  FakeConnector(const FakeConnector&) = delete;
  FakeConnector& operator=(const FakeConnector&) = delete;

  // Behaviour, set by the test.
  bool auto_succeed = false;         // connects succeed from a zero timer
  std::optional<Status> fail_start;  // connect() itself fails with this
  size_t address_count = 1;          // addresses to rotate through on failures
  // A loopback TCP connection instead of a unix socketpair: a write into a closed peer
  // then succeeds and draws a RST, as with a real upstream.
  bool tcp = false;
  // Called with (attempt index, peer fd) as a connect succeeds; true when the test took
  // the fd over (it closes it then).
  std::function<bool(size_t, int)> on_connected;

  // The connect of attempt `i` succeeds / is refused (its peer end closes), now.
  void succeed(size_t i);
  void refuse(size_t i);
  // Closes the test's end of attempt `i` (the upstream hangs up).
  void closePeer(size_t i);
  // Attempts not yet reported nor abandoned.
  size_t pendingCount() const;
  std::vector<Record> records;

  // UpstreamConnector.
  Status connect(upstream::UpstreamSocket& socket, void* data, Client* client,
                 Attempt& attempt) override;
  void abandon(Attempt& attempt) override;
  void timedOut(Attempt& attempt) override;
  void failedAfterConnect(const Attempt& attempt) override { rotateFrom(attempt.address); }
  size_t addressCount() const override { return address_count; }
  void close() override;

 private:
  static void uvOnTimer(uv_timer_t* t);
  Record* find(Attempt& attempt);
  // Marks attempt `i` reported and returns the client to tell.
  Client* take(size_t i);
  static void loopbackPair(int fds[2]);
  void rotateFrom(size_t address);

  uv_loop_t* loop_;
  uv_timer_t timer_{};  // zero timer for auto_succeed
  bool closed_ = false;
  size_t address_ = 0;  // the next attempt's address
};

// Everything the peer end `fd` has to read now (non-blocking); "" when nothing.
std::string readAvailable(int fd);
// Writes all of `bytes` to `fd` (small test payloads: the socket buffer takes them).
void writeAll(int fd, const std::string& bytes);

}  // namespace proxy::testing
