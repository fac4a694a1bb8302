// FlushQueue: connections whose output waits for the end of the loop's current round of
// I/O callbacks, so that what several events produced for one connection leaves in one
// write. The case it is for: an HTTP/2 client connection whose gRPC calls ride the
// worker's one h2c upstream connection gets the answers to many of its streams from one
// upstream read; flushed as each is delivered, every answer costs a TLS record and a
// write() of its own (8 writes of 57 bytes where 1 of 456 does).
//
// A queued target runs from a uv_idle handle, which the loop calls after its timers and
// before it polls again; while the handle is active that poll does not block, so a flush
// queued by a timer callback still goes out in the same iteration. Owned by the worker's
// listener; loop thread only.
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

  // Queues `target` unless it is queued already. After closeHandle() it runs at once.
  void add(Target* target);
  // Takes `target` out of the queue (it will not run). No-op when it is not queued.
  void remove(Target* target);
  // Closes the idle handle; the loop can then finish. Targets still queued are dropped.
  void closeHandle();
  size_t size() const { return queued_.size(); }

 private:
  static void uvOnIdle(uv_idle_t* handle);
  void run();

  uv_idle_t idle_{};
  bool closed_ = false;
  std::vector<Target*> queued_;
  std::vector<Target*> running_;  // the pass in progress; removed targets become nullptr
};

}  // namespace proxy::uv
