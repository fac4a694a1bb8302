// FlushQueue: connections whose output waits for the end of the loop's current round of
// I/O callbacks, so that what several events produced for one connection leaves in one
// write (the answers to many HTTP/2 streams that one upstream read brings). Runs them from
// a uv_idle handle. Owned by the worker's Listener; loop thread only. Never runs a target
// inside add().
#pragma once

#include <uv.h>

#include <vector>

namespace proxy::uv {

class FlushQueue {
 public:
  // What can be queued: a connection. It must leave the queue (remove()) before it is
  // freed.
  class Target {
   public:
    virtual ~Target() = default;
    // Called once per queuing; the target may queue itself again from here (it then
    // runs on the next pass).
    virtual void runQueuedFlush() = 0;
    bool flushQueued() const { return queued_; }

   private:
    friend class FlushQueue;
    bool queued_ = false;
  };

  explicit FlushQueue(uv_loop_t* loop);
  ~FlushQueue();
  FlushQueue(const FlushQueue&) = delete;
  FlushQueue& operator=(const FlushQueue&) = delete;

  // Queues `target` unless it is queued already. After closeHandle() it is dropped
  // (by then every connection is closing, and a closing one sends nothing more).
  void add(Target* target);
  // Takes `target` out of the queue (it will not run). No-op when it is not queued.
  void remove(Target* target);
  // Closes the idle handle; the loop can then finish. Targets still queued are dropped.
  void closeHandle();
  size_t sizeForTest() const { return queued_.size(); }

 private:
  static void uvOnIdle(uv_idle_t* handle);
  void onIdle();

  uv_idle_t idle_{};
  bool closed_ = false;
  std::vector<Target*> queued_;
  std::vector<Target*> running_;  // the pass in progress; removed targets become nullptr
};

}  // namespace proxy::uv
