// Server: the process. Owns the control loop (signals, certificate reload, drain,
// admin endpoint, readiness), the TLS context and ticket keys, the access log, and the
// worker threads that carry traffic. First owner in the data flow; everything else is
// reached through it. Control-loop thread only, except where a method says otherwise.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/app/worker.h"
#include "proxy/config/config.h"
#include "proxy/downstream/access_log.h"

namespace proxy::tls {
class TlsContext;
class TicketKeys;
}  // namespace proxy::tls
namespace proxy::admin {
class AdminServer;
}

namespace proxy::app {

class ServerAdminHost;

class Server {
 public:
  // `ready_file`: where to write "listen=HOST:PORT" (and "admin=HOST:PORT") once serving.
  Server(config::Config config, std::string ready_file);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Runs until shut down. Returns the process exit code: 0 after a clean drain, 1 on a
  // start-up failure or a forced stop, 2 when the TLS files are invalid at start.
  int run();

  // Facts for the admin endpoint (control-loop thread).
  bool ready(std::string* reason) const;
  std::string renderMetrics() const;

 private:
  struct FileStamp {
    std::string path;
    int64_t mtime_ns = 0;
    int64_t size = -1;
    uint64_t inode = 0;
    bool operator==(const FileStamp& o) const {
      return path == o.path && mtime_ns == o.mtime_ns && size == o.size && inode == o.inode;
    }
  };

  bool loadTls(const char* trigger);
  void reloadIfChanged(const char* trigger);
  std::vector<FileStamp> stampTlsFiles() const;
  void watchTlsDirectories();
  Status startWorkers();
  void writeReadyFile();
  void beginShutdown();
  void beginDrain();
  void forceStop();
  void onWorkerExited();
  void finishShutdown();
  void probeUpstream();
  Status startAdmin();
  void stopAdmin();

  static void uvOnSignal(uv_signal_t* s, int signum);
  static void uvOnTimer(uv_timer_t* t);
  static void uvOnFsEvent(uv_fs_event_t* h, const char* filename, int events, int status);
  static void uvOnAsync(uv_async_t* a);

  config::Config config_;
  std::string ready_file_;
  uv_loop_t loop_{};
  uv_signal_t sigterm_{};
  uv_signal_t sigint_{};
  uv_signal_t sighup_{};
  uv_signal_t sigusr1_{};        // reopen the access log (logrotate), as nginx does
  uv_timer_t reload_timer_{};    // periodic re-check of the certificate files
  uv_timer_t debounce_timer_{};  // coalesces bursts of file events
  uv_timer_t delay_timer_{};     // shutdown_delay
  uv_timer_t deadline_timer_{};  // shutdown_timeout
  uv_timer_t probe_timer_{};     // upstream reachability for readiness
  uv_async_t worker_exit_async_{};
  std::vector<std::unique_ptr<uv_fs_event_t>> watchers_;

  std::shared_ptr<tls::TicketKeys> ticket_keys_;
  std::shared_ptr<const tls::TlsContext> tls_;
  std::vector<FileStamp> tls_stamps_;
  std::unique_ptr<downstream::AccessLog> access_log_;
  std::atomic<uint32_t> connection_count_{0};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<int> listen_fds_;
  uint16_t listen_port_ = 0;
  std::unique_ptr<ServerAdminHost> admin_host_;
  std::unique_ptr<admin::AdminServer> admin_;
  uint16_t admin_port_ = 0;

  bool workers_started_ = false;
  bool waiting_for_certificates_ = false;  // [ssl] wait_for_certificates, not loaded yet
  bool draining_ = false;
  bool stopping_ = false;
  bool upstream_reachable_ = false;
  bool probe_in_flight_ = false;
  int exit_code_ = 0;
  uint64_t reload_successes_ = 0;
  uint64_t reload_failures_ = 0;
  int64_t last_reload_unix_ = 0;
  int64_t start_unix_ = 0;
};

}  // namespace proxy::app
