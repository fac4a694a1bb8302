#include "proxy/app/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <set>

#include "proxy/app/admin_host.h"
#include "proxy/app/sd_notify.h"
#include "proxy/app/system.h"
#include "proxy/app/tls_options.h"
#include "proxy/common/check.h"
#include "proxy/common/log.h"
#include "proxy/tls/ticket_keys.h"
#include "proxy/tls/tls_context.h"

namespace proxy::app {
namespace {

// File events come in bursts (the kubelet's ..data swap is several renames); wait for
// quiet before re-reading.
constexpr uint64_t kDebounceMs = 500;
constexpr uint64_t kProbeIntervalMs = 2000;

bool isInlinePem(const std::string& v) {
  size_t i = v.find_first_not_of(" \t\r\n");
  return i != std::string::npos && v[i] == '-';
}

uint64_t ms(config::Millis d) { return static_cast<uint64_t>(d.count()); }

std::string parentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Server::Server(config::Config config, std::string ready_file)
    : config_(std::move(config)), ready_file_(std::move(ready_file)) {}

Server::~Server() {
  for (int fd : listen_fds_) {
    if (fd >= 0) ::close(fd);
  }
}

int Server::run() {
  start_unix_ = static_cast<int64_t>(std::time(nullptr));
  PROXY_CHECK(uv_loop_init(&loop_) == 0, "uv_loop_init");
  auto initTimer = [this](uv_timer_t* t) {
    uv_timer_init(&loop_, t);
    t->data = this;
  };
  initTimer(&reload_timer_);
  initTimer(&debounce_timer_);
  initTimer(&delay_timer_);
  initTimer(&deadline_timer_);
  initTimer(&probe_timer_);
  uv_async_init(&loop_, &worker_exit_async_, &Server::uvOnAsync);
  worker_exit_async_.data = this;
  for (uv_signal_t* s : {&sigterm_, &sigint_, &sighup_, &sigusr1_}) {
    uv_signal_init(&loop_, s);
    s->data = this;
  }
  uv_signal_start(&sigterm_, &Server::uvOnSignal, SIGTERM);
  uv_signal_start(&sigint_, &Server::uvOnSignal, SIGINT);
  uv_signal_start(&sighup_, &Server::uvOnSignal, SIGHUP);
  uv_signal_start(&sigusr1_, &Server::uvOnSignal, SIGUSR1);

  for (const config::Problem& w : config_.warnings) log::warn("config", {{"warning", w.format()}});

  if (config_.log.access != "off") {
    auto format = config_.log.format == config::LogFormat::kEcs
                      ? downstream::AccessLog::Format::kEcs
                      : downstream::AccessLog::Format::kJson;
    auto al = downstream::AccessLog::open(config_.log.access, format);
    if (!al) {
      log::error("start-up failed", {{"error", al.status().message()}});
      exit_code_ = 1;
      stopping_ = true;
    } else {
      access_log_ = std::move(al).value();
    }
  }

  uint32_t n_workers = config_.server.workers != 0 ? config_.server.workers : usableCpus();
  if (!stopping_) {
    // Bind every socket before anything is served so that a port in use fails fast.
    // The first socket fixes the port when the config asks for port 0.
    config::HostPort addr = config_.server.host;
    for (uint32_t i = 0; i < n_workers; ++i) {
      auto fd = bindListenSocket(addr, i == 0 ? PortSharing::kFirst : PortSharing::kJoin);
      if (!fd) {
        log::error("start-up failed", {{"error", fd.status().message()}});
        exit_code_ = 1;
        stopping_ = true;
        break;
      }
      listen_fds_.push_back(fd.value());
      if (i == 0) {
        auto port = boundPort(fd.value());
        if (port) addr.port = port.value();
        listen_port_ = addr.port;
      }
    }
  }

  if (!stopping_) {
    Status st = startAdmin();
    if (!st) {
      log::error("start-up failed", {{"error", st.message()}});
      exit_code_ = 1;
      stopping_ = true;
    }
  }

  bool tls_ready = true;
  if (!stopping_ && config_.ssl.enabled) {
    ticket_keys_ = tls::TicketKeys::create(config_.ssl.session_ticket_rotation);
    tls_ready = loadTls("start");
    if (!tls_ready && !config_.ssl.wait_for_certificates) {
      exit_code_ = 2;
      stopping_ = true;
    } else if (!tls_ready) {
      waiting_for_certificates_ = true;
      log::warn("waiting for certificates", {{"files", std::to_string(stampTlsFiles().size())}});
    }
    if (!stopping_) {
      watchTlsDirectories();
      if (config_.ssl.reload_interval.count() > 0) {
        uint64_t every = ms(config_.ssl.reload_interval);
        uv_timer_start(&reload_timer_, &Server::uvOnTimer, every, every);
      }
    }
  }

  if (!stopping_ && tls_ready) {
    Status st = startWorkers();
    if (!st) {
      log::error("start-up failed", {{"error", st.message()}});
      exit_code_ = 1;
      stopping_ = true;
    }
  }

  if (!stopping_ && config_.admin.host && config_.admin.ready_requires_upstream) probeUpstream();

  if (stopping_) {
    finishShutdown();
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& w : workers_) w->join();
  workers_.clear();
  if (uv_loop_close(&loop_) != 0) log::warn("control loop closed with open handles");
  log::info("stopped", {{"exit_code", exit_code_}});
  return exit_code_;
}

// ---- TLS: load and reload ----

std::vector<Server::FileStamp> Server::stampTlsFiles() const {
  std::vector<std::string> paths;
  const config::SslConfig& s = config_.ssl;
  if (!isInlinePem(s.certificate)) paths.push_back(s.certificate);
  if (!isInlinePem(s.key)) paths.push_back(s.key);
  if (!s.key_passphrase_path.empty()) paths.push_back(s.key_passphrase_path);
  for (const std::string& ca : s.certificate_authorities) {
    if (!isInlinePem(ca)) paths.push_back(ca);
  }
  std::vector<FileStamp> stamps;
  for (const std::string& p : paths) {
    FileStamp f;
    f.path = p;
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {  // follows symlinks: a ..data swap changes the inode
      f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      f.size = static_cast<int64_t>(st.st_size);
      f.inode = static_cast<uint64_t>(st.st_ino);
    }
    stamps.push_back(f);
  }
  return stamps;
}

bool Server::loadTls(const char* trigger) {
  bool first = tls_ == nullptr;
  if (!first) sdNotify(sdReloadingMessage());
  std::vector<FileStamp> stamps = stampTlsFiles();
  tls::TlsContext::CreateResult r = tls::TlsContext::create(tlsOptions(config_), ticket_keys_);
  tls_stamps_ = stamps;
  for (const tls::Problem& w : r.warnings) {
    log::warn("tls", {{"warning", toConfigProblem(config_, w).format()}});
  }
  if (!r.context) {
    if (!first) ++reload_failures_;  // the load at start-up is not a reload
    for (const tls::Problem& p : r.problems) {
      log::error(first ? "tls configuration invalid"
                       : "certificate reload rejected; old certificates stay",
                 {{"trigger", trigger}, {"problem", toConfigProblem(config_, p).format()}});
    }
    if (!first) sdNotify("READY=1");
    return false;
  }
  tls_ = r.context;
  if (!first) ++reload_successes_;
  last_reload_unix_ = static_cast<int64_t>(std::time(nullptr));
  const tls::CertificateInfo& cert = tls_->serverCertificate();
  log::info(first ? "certificates loaded" : "certificates reloaded",
            {{"trigger", trigger},
             {"subject", cert.subject},
             {"sans", cert.sans},
             {"not_after", cert.not_after}});
  for (auto& w : workers_) w->setTls(tls_);
  if (!first) sdNotify("READY=1");
  if (waiting_for_certificates_ && !stopping_ && !draining_) {
    waiting_for_certificates_ = false;
    Status st = startWorkers();
    if (!st) {
      log::error("start-up failed", {{"error", st.message()}});
      exit_code_ = 1;
      forceStop();
    }
  }
  return true;
}

void Server::reloadIfChanged(const char* trigger) {
  if (stopping_ || !config_.ssl.enabled) return;
  if (stampTlsFiles() == tls_stamps_) return;
  loadTls(trigger);
}

void Server::watchTlsDirectories() {
  std::set<std::string> dirs;
  for (const FileStamp& f : stampTlsFiles()) dirs.insert(parentDir(f.path));
  for (const std::string& d : dirs) {
    auto h = std::make_unique<uv_fs_event_t>();
    uv_fs_event_init(&loop_, h.get());
    h->data = this;
    // A directory watch sees the kubelet's ..data rename; a watch on the file itself
    // would die with the first replaced inode (../shared/reference/deployment.md).
    int rc = uv_fs_event_start(h.get(), &Server::uvOnFsEvent, d.c_str(), 0);
    if (rc < 0) {
      log::warn("cannot watch certificate directory; relying on the periodic re-check",
                {{"dir", d}, {"error", uv_strerror(rc)}});
      uv_close(reinterpret_cast<uv_handle_t*>(h.release()),
               [](uv_handle_t* hh) { delete reinterpret_cast<uv_fs_event_t*>(hh); });
      continue;
    }
    watchers_.push_back(std::move(h));
  }
}

void Server::uvOnFsEvent(uv_fs_event_t* h, const char*, int, int) {
  auto* self = static_cast<Server*>(h->data);
  uv_timer_start(&self->debounce_timer_, &Server::uvOnTimer, kDebounceMs, 0);
}

// ---- workers ----

Status Server::startWorkers() {
  for (size_t i = 0; i < listen_fds_.size(); ++i) {
    auto w = std::make_unique<Worker>(config_, static_cast<uint32_t>(i), connection_count_,
                                      access_log_.get(),
                                      [this]() { uv_async_send(&worker_exit_async_); });
    w->start(listen_fds_[i], tls_);
    listen_fds_[i] = -1;  // the worker owns it now
    workers_.push_back(std::move(w));
  }
  workers_started_ = true;
  std::string host = config::formatHostPort({config_.server.host.host, listen_port_});
  log::info("listening", {{"address", host},
                          {"tls", config_.ssl.enabled},
                          {"workers", static_cast<uint64_t>(workers_.size())},
                          {"upstream", config_.upstream.url}});
  writeReadyFile();
  sdNotify("READY=1");
  return Status::ok();
}

void Server::writeReadyFile() {
  if (ready_file_.empty()) return;
  std::string body =
      "listen=" + config::formatHostPort({config_.server.host.host, listen_port_}) + "\n";
  if (admin_port_ != 0) {
    body += "admin=" + config::formatHostPort({config_.admin.host->host, admin_port_}) + "\n";
  }
  std::string tmp = ready_file_ + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) {
    log::warn("cannot write ready file", {{"path", ready_file_}});
    return;
  }
  std::fputs(body.c_str(), f);
  std::fclose(f);
  std::rename(tmp.c_str(), ready_file_.c_str());
}

// ---- shutdown ----

void Server::uvOnSignal(uv_signal_t* s, int signum) {
  auto* self = static_cast<Server*>(s->data);
  if (signum == SIGUSR1) {
    // logrotate's postrotate sends it after renaming the file; the writer thread reopens.
    log::info("access log reopen requested", {{"signal", "SIGUSR1"}});
    if (self->access_log_) self->access_log_->reopen();
    return;
  }
  if (signum == SIGHUP) {
    log::info("reload requested", {{"signal", "SIGHUP"}});
    if (self->config_.ssl.enabled && !self->stopping_) self->loadTls("SIGHUP");
    return;
  }
  if (self->draining_ || self->stopping_) {
    log::warn("second signal: stopping now");
    self->exit_code_ = 1;
    self->forceStop();
    return;
  }
  log::info("shutdown requested",
            {{"signal", signum == SIGTERM ? "SIGTERM" : "SIGINT"},
             {"shutdown_delay", config::formatDuration(self->config_.server.shutdown_delay)},
             {"shutdown_timeout", config::formatDuration(self->config_.server.shutdown_timeout)}});
  self->beginShutdown();
}

void Server::beginShutdown() {
  draining_ = true;  // /readyz answers 503 from now on
  sdNotify("STOPPING=1");
  if (!workers_started_) {
    finishShutdown();
    return;
  }
  uint64_t delay = ms(config_.server.shutdown_delay);
  uv_timer_start(&deadline_timer_, &Server::uvOnTimer, delay + ms(config_.server.shutdown_timeout),
                 0);
  if (delay > 0) {
    uv_timer_start(&delay_timer_, &Server::uvOnTimer, delay, 0);
  } else {
    beginDrain();
  }
}

void Server::beginDrain() {
  log::info("draining", {{"connections", connection_count_.load()}});
  for (auto& w : workers_) w->drain();
}

void Server::forceStop() {
  stopping_ = true;
  if (workers_.empty()) {
    finishShutdown();
    return;
  }
  for (auto& w : workers_) w->stopNow();
}

void Server::uvOnAsync(uv_async_t* a) { static_cast<Server*>(a->data)->onWorkerExited(); }

void Server::onWorkerExited() {
  for (auto& w : workers_) {
    if (!w->exited()) return;
  }
  finishShutdown();
}

void Server::finishShutdown() {
  stopping_ = true;
  auto closeIfOpen = [](uv_handle_t* h) {
    if (h->loop != nullptr && !uv_is_closing(h)) uv_close(h, nullptr);
  };
  for (uv_timer_t* t :
       {&reload_timer_, &debounce_timer_, &delay_timer_, &deadline_timer_, &probe_timer_})
    closeIfOpen(reinterpret_cast<uv_handle_t*>(t));
  for (uv_signal_t* s : {&sigterm_, &sigint_, &sighup_, &sigusr1_})
    closeIfOpen(reinterpret_cast<uv_handle_t*>(s));
  // Closing the handle restored SIGUSR1's default action, which kills: a logrotate run
  // during the last moments of a drain must not turn a clean exit into a crash.
  std::signal(SIGUSR1, SIG_IGN);
  closeIfOpen(reinterpret_cast<uv_handle_t*>(&worker_exit_async_));
  for (auto& w : watchers_) {
    uv_close(reinterpret_cast<uv_handle_t*>(w.release()),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_fs_event_t*>(h); });
  }
  watchers_.clear();
  stopAdmin();
}

void Server::uvOnTimer(uv_timer_t* t) {
  auto* self = static_cast<Server*>(t->data);
  if (t == &self->reload_timer_) {
    self->reloadIfChanged("periodic");
  } else if (t == &self->debounce_timer_) {
    self->reloadIfChanged("file change");
  } else if (t == &self->delay_timer_) {
    self->beginDrain();
  } else if (t == &self->deadline_timer_) {
    log::warn("shutdown_timeout reached; closing remaining connections",
              {{"connections", self->connection_count_.load()}});
    self->forceStop();
  } else if (t == &self->probe_timer_) {
    self->probeUpstream();
  }
}

// ---- readiness ----

bool Server::ready(std::string* reason) const {
  if (draining_ || stopping_) {
    *reason = "draining";
    return false;
  }
  if (config_.ssl.enabled && tls_ == nullptr) {
    *reason = "certificates not loaded";
    return false;
  }
  if (!workers_started_) {
    *reason = "not listening";
    return false;
  }
  if (config_.admin.ready_requires_upstream && !upstream_reachable_) {
    *reason = "upstream unreachable";
    return false;
  }
  return true;
}

namespace {
struct Probe {
  Server* server;
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  uv_connect_t req;
};
}  // namespace

void Server::probeUpstream() {
  if (stopping_) return;
  if (!probe_in_flight_) {
    probe_in_flight_ = true;
    auto* p = new Probe{};
    p->server = this;
    p->req.data = p;
    auto onConnect = [](uv_connect_t* req, int status) {
      auto* probe = static_cast<Probe*>(req->data);
      probe->server->upstream_reachable_ = status == 0;
      probe->server->probe_in_flight_ = false;
      uv_close(reinterpret_cast<uv_handle_t*>(&probe->h),
               [](uv_handle_t* h) { delete static_cast<Probe*>(h->data); });
    };
    int rc = 0;
    if (config_.upstream.tcp) {
      uv_tcp_init(&loop_, &p->h.tcp);
      p->h.tcp.data = p;
      sockaddr_storage ss{};
      if (uv_ip4_addr(config_.upstream.tcp->host.c_str(), config_.upstream.tcp->port,
                      reinterpret_cast<sockaddr_in*>(&ss)) != 0 &&
          uv_ip6_addr(config_.upstream.tcp->host.c_str(), config_.upstream.tcp->port,
                      reinterpret_cast<sockaddr_in6*>(&ss)) != 0) {
        // A host name: resolved by the workers; readiness assumes reachable.
        upstream_reachable_ = true;
        rc = -1;
      } else {
        rc = uv_tcp_connect(&p->req, &p->h.tcp, reinterpret_cast<sockaddr*>(&ss), onConnect);
      }
    } else {
      uv_pipe_init(&loop_, &p->h.pipe, 0);
      p->h.pipe.data = p;
      uv_pipe_connect(&p->req, &p->h.pipe, config_.upstream.unix_path.c_str(), onConnect);
    }
    if (rc != 0) {
      probe_in_flight_ = false;
      uv_close(reinterpret_cast<uv_handle_t*>(&p->h),
               [](uv_handle_t* h) { delete static_cast<Probe*>(h->data); });
      if (rc != -1) upstream_reachable_ = false;
    }
  }
  uv_timer_start(&probe_timer_, &Server::uvOnTimer, kProbeIntervalMs, 0);
}

}  // namespace proxy::app
