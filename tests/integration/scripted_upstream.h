// ScriptedUpstream: a TCP server on 127.0.0.1 (kernel-chosen port) that hands every
// accepted connection to a test's script, each in its own thread, for the faults
// apm-intake-demo cannot produce on cue: a reset right after accept, a stall in the
// middle of a body, a keep-alive connection closed at a chosen moment. Everything is
// bounded: the destructor shuts down every socket and joins every thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace proxy::integration {

class ScriptedUpstream {
 public:
  // Runs once per accepted connection; `index` counts connections from 0. The fd is
  // closed (if the script did not) when the script returns.
  using Script = std::function<void(int fd, size_t index)>;
  explicit ScriptedUpstream(Script script);
  ~ScriptedUpstream();
  ScriptedUpstream(const ScriptedUpstream&) = delete;
  ScriptedUpstream& operator=(const ScriptedUpstream&) = delete;

  uint16_t port() const { return port_; }
  size_t accepted() const { return accepted_.load(); }
  // Set by the destructor; long scripts poll it to end early.
  bool stopping() const { return stopping_.load(); }

  // One HTTP/1.1 request (head and Content-Length or chunked body) from `fd`, with `buf`
  // carrying bytes across calls. "" when the peer closed or `timeout` passed first.
  static std::string readRequest(int fd, std::string& buf,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Writes all of `data` (blocking with a deadline); false on error.
  static bool writeAll(int fd, const std::string& data);
  // Makes the close after the script returns a TCP RST (SO_LINGER 0): call it last.
  static void reset(int fd);
  // Waits until the peer closes or `timeout` passes; true when it closed.
  static bool waitPeerClose(int fd, std::chrono::milliseconds timeout);

 private:
  void acceptLoop();

  Script script_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> accepted_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<int> fds_;  // open connection fds, shut down by the destructor
};

}  // namespace proxy::integration
