#include "proxy/app/worker.h"

#include <utility>

#include "proxy/common/check.h"
#include "proxy/common/log.h"
#include "proxy/upstream/h2_pool.h"

namespace proxy::app {
namespace {
constexpr uint64_t kDrainCheckMs = 100;
}

Worker::Worker(const config::Config& config, uint32_t index,
               std::atomic<uint32_t>& connection_count, downstream::AccessLog* access_log,
               std::function<void()> on_exit)
    : config_(config),
      index_(index),
      connection_count_(connection_count),
      access_log_(access_log),
      on_exit_(std::move(on_exit)) {
  // The loop and its async handle exist before the thread starts, so post() is safe
  // from the moment start() returns.
  PROXY_CHECK(uv_loop_init(&loop_) == 0, "uv_loop_init");
  uv_async_init(&loop_, &async_, &Worker::uvOnAsync);
  async_.data = this;
  uv_timer_init(&loop_, &drain_timer_);
  drain_timer_.data = this;
}

Worker::~Worker() { join(); }

void Worker::start(int listen_fd, std::shared_ptr<const tls::TlsContext> tls) {
  thread_ = std::thread(
      [this, listen_fd, tls = std::move(tls)]() mutable { run(listen_fd, std::move(tls)); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::post(Command c, std::shared_ptr<const tls::TlsContext> tls) {
  // Sent under the lock so teardown() cannot close the async handle in between.
  std::lock_guard<std::mutex> lock(mu_);
  if (commands_closed_) return;
  commands_.emplace_back(c, std::move(tls));
  uv_async_send(&async_);
}

void Worker::setTls(std::shared_ptr<const tls::TlsContext> tls) {
  post(Command::kSetTls, std::move(tls));
}
void Worker::drain() { post(Command::kDrain); }
void Worker::stopNow() { post(Command::kStop); }

void Worker::run(int listen_fd, std::shared_ptr<const tls::TlsContext> tls) {
  connector_ = std::make_unique<upstream::ResolvingConnector>(&loop_, config_.upstream);
  pool_ = std::make_unique<upstream::UpstreamPool>(&loop_, config_.upstream, stats_, read_buffer_,
                                                   connector_.get());
  listener_ = std::make_unique<listener::Listener>(&loop_, connection_count_);
  listener_->config = &config_;
  listener_->pool = pool_.get();
  h2_pool_ = std::make_unique<upstream::H2Pool>(&loop_, config_.upstream, stats_, read_buffer_,
                                                connector_.get());
  listener_->h2_pool = h2_pool_.get();
  listener_->stats = &stats_;
  listener_->read_buffer = &read_buffer_;
  listener_->tls = std::move(tls);
  listener_->access_log = access_log_;
  Status st = listener_->start(listen_fd);
  if (!st) {
    log::error("worker cannot listen", {{"worker", index_}, {"error", st.message()}});
    teardown();
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  // Every handle is closed now; connections and the pool were freed in close callbacks.
  listener_.reset();
  h2_pool_.reset();
  pool_.reset();
  connector_.reset();
  int rc = uv_loop_close(&loop_);
  if (rc != 0) log::warn("worker loop closed with open handles", {{"worker", index_}});
  exited_.store(true);
  if (on_exit_) on_exit_();
}

void Worker::uvOnAsync(uv_async_t* a) { static_cast<Worker*>(a->data)->onCommands(); }

void Worker::onCommands() {
  std::vector<std::pair<Command, std::shared_ptr<const tls::TlsContext>>> cmds;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cmds.swap(commands_);
  }
  for (auto& [cmd, tls] : cmds) {
    if (torn_down_) return;
    switch (cmd) {
      case Command::kSetTls:
        listener_->tls = std::move(tls);
        break;
      case Command::kDrain:
        if (!draining_) {
          draining_ = true;
          listener_->stopAccepting();
          listener_->drainAll();
          uv_timer_start(&drain_timer_, &Worker::uvOnDrainCheck, kDrainCheckMs, kDrainCheckMs);
          finishIfDrained();
        }
        break;
      case Command::kStop:
        listener_->closeAll();
        teardown();
        break;
    }
  }
}

void Worker::uvOnDrainCheck(uv_timer_t* t) { static_cast<Worker*>(t->data)->finishIfDrained(); }

void Worker::finishIfDrained() {
  if (!torn_down_ && listener_->connectionCount() == 0) teardown();
}

void Worker::teardown() {
  if (torn_down_) return;
  torn_down_ = true;
  listener_->closeHandles();
  pool_->closeAll();
  h2_pool_->closeAll();
  connector_->close();  // a lookup in flight ends before the loop does
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands_closed_ = true;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

}  // namespace proxy::app
