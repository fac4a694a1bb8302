// uv::FlushQueue on a real libuv loop: a target queued any number of times in one round
// runs once, after the round's I/O callbacks and before the loop would block again; a
// removed target never runs; what a flush queues waits for the next pass.
#include "proxy/uv/flush_queue.h"

#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <functional>

namespace proxy::uv {
namespace {

struct CountingTarget : FlushQueue::Target {
  void runQueuedFlush() override {
    ++runs;
    if (then) then();
  }
  int runs = 0;
  std::function<void()> then;
};

// The loop is initialised before the queue's idle handle (member order).
struct InitLoop {
  InitLoop() { uv_loop_init(&loop); }
  uv_loop_t loop{};
};
struct Loop : InitLoop {
  ~Loop() {
    queue.closeHandle();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
  FlushQueue queue{&loop};
};

// A socketpair whose one end a uv_poll watches; the callback runs `on_readable`.
struct Readable {
  Readable(uv_loop_t* loop, std::function<void()> cb) : on_readable(std::move(cb)) {
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    uv_poll_init(loop, &poll, fds[0]);
    poll.data = this;
    uv_poll_start(&poll, UV_READABLE, [](uv_poll_t* p, int, int) {
      auto* self = static_cast<Readable*>(p->data);
      char buf[16];
      (void)!read(self->fds[0], buf, sizeof buf);
      self->on_readable();
    });
  }
  ~Readable() {
    uv_close(reinterpret_cast<uv_handle_t*>(&poll), nullptr);  // stops watching fds[0] now
    close(fds[0]);
    close(fds[1]);
  }
  void poke() { REQUIRE(write(fds[1], "x", 1) == 1); }
  int fds[2] = {-1, -1};
  uv_poll_t poll{};
  std::function<void()> on_readable;
};

}  // namespace

TEST_CASE("A target queued many times runs once, and the queue then lets the loop end",
          "[unit][uv]") {
  Loop l;
  CountingTarget t;
  l.queue.add(&t);
  l.queue.add(&t);
  l.queue.add(&t);
  CHECK(t.flushQueued());
  CHECK(l.queue.sizeForTest() == 1);
  CHECK(t.runs == 0);  // never inside the call that queued it
  uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK(t.runs == 1);
  CHECK_FALSE(t.flushQueued());
  CHECK(l.queue.sizeForTest() == 0);
  CHECK(uv_loop_alive(&l.loop) == 0);  // the idle handle stopped with the queue empty
}

TEST_CASE("What two I/O callbacks of one round queue for one target runs once, after both",
          "[unit][uv]") {
  Loop l;
  CountingTarget t;
  int callbacks = 0;
  int runs_seen_in_callbacks = 0;
  auto queue_it = [&] {
    ++callbacks;
    runs_seen_in_callbacks += t.runs;
    l.queue.add(&t);
  };
  Readable a(&l.loop, queue_it);
  Readable b(&l.loop, queue_it);
  a.poke();
  b.poke();  // both readable before the loop polls: one round of I/O sees both
  for (int i = 0; i < 10 && t.runs == 0; ++i) uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK(callbacks == 2);
  CHECK(runs_seen_in_callbacks == 0);
  CHECK(t.runs == 1);
  uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK(t.runs == 1);
}

TEST_CASE("A target queued by a timer runs in the same loop iteration", "[unit][uv]") {
  Loop l;
  CountingTarget t;
  struct Fire {
    FlushQueue* queue;
    CountingTarget* target;
  } fire{&l.queue, &t};
  uv_timer_t timer;
  uv_timer_init(&l.loop, &timer);
  timer.data = &fire;
  uv_timer_start(
      &timer,
      [](uv_timer_t* h) {
        auto* f = static_cast<Fire*>(h->data);
        f->queue->add(f->target);
      },
      0, 0);
  // One iteration that never blocks: the due timer fires, then the idle phase runs it.
  uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK(t.runs == 1);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
}

TEST_CASE("A removed target never runs, even when its pass has started", "[unit][uv]") {
  Loop l;
  CountingTarget a, b, c;
  l.queue.add(&a);
  l.queue.add(&b);
  l.queue.add(&c);
  l.queue.remove(&b);
  CHECK_FALSE(b.flushQueued());
  CHECK(l.queue.sizeForTest() == 2);
  a.then = [&] { l.queue.remove(&c); };  // c is freed while the pass is at a
  uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK(a.runs == 1);
  CHECK(b.runs == 0);
  CHECK(c.runs == 0);
  CHECK(uv_loop_alive(&l.loop) == 0);
  l.queue.remove(&c);  // not queued: no-op
}

TEST_CASE("What a flush queues runs on the next pass, not in the same one", "[unit][uv]") {
  Loop l;
  CountingTarget a, b;
  a.then = [&] {
    if (a.runs == 1) {
      l.queue.add(&a);  // itself again
      l.queue.add(&b);  // and another
    }
  };
  l.queue.add(&a);
  uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK(a.runs == 1);
  CHECK(b.runs == 0);
  CHECK(l.queue.sizeForTest() == 2);
  uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK(a.runs == 2);
  CHECK(b.runs == 1);
  CHECK(uv_loop_alive(&l.loop) == 0);
}

TEST_CASE("After closeHandle nothing runs: queued targets and later ones are dropped",
          "[unit][uv]") {
  Loop l;
  CountingTarget queued, later;
  l.queue.add(&queued);
  l.queue.closeHandle();
  CHECK_FALSE(queued.flushQueued());
  l.queue.add(&later);  // never inside add(), and not queued either
  CHECK(later.runs == 0);
  CHECK_FALSE(later.flushQueued());
  uv_run(&l.loop, UV_RUN_DEFAULT);
  CHECK(queued.runs == 0);
  CHECK(later.runs == 0);
}

}  // namespace proxy::uv
