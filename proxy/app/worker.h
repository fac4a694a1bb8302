// Worker: one thread with its own libuv loop, listening socket (SO_REUSEPORT), upstream
// pool, read buffer and stats. Workers share nothing mutable but the connection count
// and the current TLS context pointer they are handed. Owned by the Server, which
// talks to it only through post() (a mutex-guarded queue and a uv_async_t).
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "proxy/common/stats.h"
#include "proxy/config/config.h"
#include "proxy/downstream/access_log.h"
#include "proxy/listener/listener.h"
#include "proxy/upstream/resolving_connector.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/uv/read_buffer.h"

namespace proxy::tls {
class TlsContext;
}

namespace proxy::app {

class Worker {
 public:
  // `on_exit` runs on the worker thread after its loop has finished.
  Worker(const config::Config& config, uint32_t index, std::atomic<uint32_t>& connection_count,
         downstream::AccessLog* access_log, std::function<void()> on_exit);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread, which adopts the bound socket `listen_fd`.
  void start(int listen_fd, std::shared_ptr<const tls::TlsContext> tls);
  // Thread-safe commands.
  void setTls(std::shared_ptr<const tls::TlsContext> tls);  // new handshakes use it
  void drain();    // stop accepting, finish in-flight requests, exit when none remain
  void stopNow();  // close everything at once and exit
  void join();
  bool exited() const { return exited_.load(); }
  const WorkerStats& stats() const { return stats_; }

 private:
  enum class Command { kSetTls, kDrain, kStop };
  void post(Command c, std::shared_ptr<const tls::TlsContext> tls = nullptr);
  void run(int listen_fd, std::shared_ptr<const tls::TlsContext> tls);
  static void uvOnAsync(uv_async_t* a);
  static void uvOnDrainCheck(uv_timer_t* t);
  void onCommands();
  void finishIfDrained();
  void teardown();

  const config::Config& config_;
  uint32_t index_;
  std::atomic<uint32_t>& connection_count_;
  downstream::AccessLog* access_log_;
  std::function<void()> on_exit_;
  WorkerStats stats_;
  std::thread thread_;
  std::atomic<bool> exited_{false};

  // Loop-thread state.
  uv_loop_t loop_{};
  uv_async_t async_{};
  uv_timer_t drain_timer_{};
  uv::ReadBuffer read_buffer_;
  // One resolver and address list for both pools; declared first, so freed after them.
  std::unique_ptr<upstream::ResolvingConnector> connector_;
  std::unique_ptr<upstream::UpstreamPool> pool_;
  std::unique_ptr<upstream::H2Pool> h2_pool_;  // h2c to the upstream, for gRPC calls
  std::unique_ptr<listener::Listener> listener_;
  bool draining_ = false;
  bool torn_down_ = false;

  std::mutex mu_;  // guards commands_ and commands_closed_
  bool commands_closed_ = false;
  std::vector<std::pair<Command, std::shared_ptr<const tls::TlsContext>>> commands_;
};

}  // namespace proxy::app
