#include "proxy/uv/flush_queue.h"

#include <algorithm>

#include "proxy/common/check.h"

namespace proxy::uv {

FlushQueue::FlushQueue(uv_loop_t* loop) {
  uv_idle_init(loop, &idle_);
  idle_.data = this;
}

FlushQueue::~FlushQueue() {
  PROXY_CHECK(closed_, "FlushQueue freed with its idle handle open (closeHandle, then run)");
}

// Why an idle handle: the loop calls it after its timers and before it polls again, and
// while one is active that poll does not block. So a flush queued by an I/O callback waits
// only for the rest of that round of I/O (HTTP/2: the answers to many streams that one
// read of the worker's h2c upstream brings leave in one TLS record and one write, not one
// each), and one queued by a timer still goes out in the same iteration.

void FlushQueue::add(Target* target) {
  if (target->queued_ || closed_) return;
  target->queued_ = true;
  if (queued_.empty()) uv_idle_start(&idle_, &FlushQueue::uvOnIdle);
  queued_.push_back(target);
}

void FlushQueue::remove(Target* target) {
  if (!target->queued_) return;
  target->queued_ = false;
  auto it = std::find(queued_.begin(), queued_.end(), target);
  if (it != queued_.end()) {
    queued_.erase(it);
    if (queued_.empty()) uv_idle_stop(&idle_);
  }
  // A target taken out while its pass runs: a nullptr in running_ keeps the indices.
  std::replace(running_.begin(), running_.end(), target, static_cast<Target*>(nullptr));
}

void FlushQueue::closeHandle() {
  if (closed_) return;
  closed_ = true;
  for (Target* t : queued_) t->queued_ = false;
  queued_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
}

void FlushQueue::uvOnIdle(uv_idle_t* handle) { static_cast<FlushQueue*>(handle->data)->onIdle(); }

void FlushQueue::onIdle() {
  // One pass over what was queued when it started; what a flush queues (itself or
  // another connection) waits for the next pass, which the active handle makes come
  // without blocking.
  running_.swap(queued_);
  uv_idle_stop(&idle_);
  for (size_t i = 0; i < running_.size(); ++i) {
    Target* t = running_[i];
    if (t == nullptr) continue;
    t->queued_ = false;
    running_[i] = nullptr;
    t->runQueuedFlush();
  }
  running_.clear();
}

}  // namespace proxy::uv
