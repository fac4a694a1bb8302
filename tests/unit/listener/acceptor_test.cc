// The Acceptor (the listener's accept loop) over loopback sockets with a fake Sink:
// connections beyond max_connections wait in the backlog and are accepted when a slot
// frees, in this worker or another; descriptor exhaustion (EMFILE) drops the connection
// and the listener accepts again once descriptors are free.
#include "proxy/listener/acceptor.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/unit/listener/acceptor_test_support.h"

namespace proxy::listener {
namespace {

using testing::ClientView;
using testing::FakeSink;
using testing::peek;
using testing::runUntil;

// One worker's accept loop on a shared loop, with the fake sink. Closed by close() or, when
// an assertion ends the test early, by the destructor, so the loop can always finish.
struct Worker {
  Worker(uv_loop_t* loop_in, std::atomic<uint32_t>& count)
      : loop(loop_in), sink(loop_in), acceptor(loop_in, sink, count) {
    sink.setAcceptor(&acceptor);
  }
  ~Worker() { close(); }
  bool start(uint32_t max_connections) {
    int fd = testing::boundSocket(&port);
    return fd >= 0 && acceptor.start(fd, max_connections).ok();
  }
  // Closes everything and runs the loop until the handles are gone (other workers may
  // still hold the loop open, so it cannot simply run to the end). Idempotent.
  bool close() {
    acceptor.closeHandles();
    sink.setAcceptor(nullptr);
    sink.closeAll();
    return runUntil(loop, [&] { return sink.empty(); });
  }
  uv_loop_t* loop;
  FakeSink sink;
  Acceptor acceptor;
  uint16_t port = 0;
};

// Client sockets, closed at the end of the test.
struct Clients {
  ~Clients() {
    for (int fd : fds) ::close(fd);
  }
  int connect(uint16_t port) {
    int fd = testing::newClient();
    REQUIRE(fd >= 0);
    fds.push_back(fd);
    REQUIRE(testing::connectClient(fd, port));
    return fd;
  }
  std::vector<int> fds;
};

struct Loop {
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);  // every handle is closing by now
    CHECK(uv_loop_close(&loop) == 0);
  }
  uv_loop_t loop{};
};

TEST_CASE("Connections beyond max_connections wait in the backlog until one closes",
          "[unit][listener]") {
  Loop l;
  std::atomic<uint32_t> count{0};
  Worker w(&l.loop, count);
  REQUIRE(w.start(2));
  Clients clients;
  int first = clients.connect(w.port);
  int second = clients.connect(w.port);
  REQUIRE(runUntil(&l.loop, [&] {
    return peek(first) == ClientView::kGreeted && peek(second) == ClientView::kGreeted;
  }));
  CHECK(count.load() == 2);

  int third = clients.connect(w.port);
  int fourth = clients.connect(w.port);
  // libuv reports the third and holds it for us; without uv_accept it stops polling the
  // listening socket, so the fourth stays in the kernel's backlog.
  REQUIRE(runUntil(&l.loop, [&] { return w.acceptor.acceptPendingForTest(); }));
  // Give a wrongly accepting listener a moment to show itself.
  runUntil(
      &l.loop, [] { return false; }, 100);
  CHECK(w.sink.accepted == 2);
  CHECK(peek(third) == ClientView::kNothingYet);
  CHECK(peek(fourth) == ClientView::kNothingYet);
  CHECK(count.load() == 2);

  // One closes: its slot goes to the waiting connection at once, then the listener is at
  // capacity again and the fourth goes on waiting.
  w.sink.closeOldest();
  REQUIRE(runUntil(&l.loop, [&] { return peek(third) == ClientView::kGreeted; }));
  REQUIRE(runUntil(&l.loop, [&] { return w.acceptor.acceptPendingForTest(); }));
  CHECK(w.sink.accepted == 3);
  CHECK(peek(fourth) == ClientView::kNothingYet);

  w.sink.closeOldest();
  REQUIRE(runUntil(&l.loop, [&] { return peek(fourth) == ClientView::kGreeted; }));
  CHECK(w.sink.accepted == 4);
  CHECK(w.sink.released == 2);
  CHECK(count.load() == 2);
  CHECK(w.sink.accept_failures == 0);
  CHECK(w.close());
}

TEST_CASE("A slot another worker frees is taken by a worker that waits for one",
          "[unit][listener]") {
  Loop l;
  std::atomic<uint32_t> count{0};  // shared, as across the Server's workers
  Worker a(&l.loop, count);
  Worker b(&l.loop, count);
  REQUIRE(a.start(1));
  REQUIRE(b.start(1));
  Clients clients;
  int to_a = clients.connect(a.port);
  REQUIRE(runUntil(&l.loop, [&] { return peek(to_a) == ClientView::kGreeted; }));
  int to_b = clients.connect(b.port);
  REQUIRE(runUntil(&l.loop, [&] { return b.acceptor.acceptPendingForTest(); }));
  CHECK(peek(to_b) == ClientView::kNothingYet);
  CHECK(b.sink.accepted == 0);

  // b learns of the free slot from its retry timer, not from a's release.
  a.sink.closeOldest();
  REQUIRE(runUntil(&l.loop, [&] { return peek(to_b) == ClientView::kGreeted; }));
  CHECK(b.sink.accepted == 1);
  CHECK_FALSE(b.acceptor.acceptPendingForTest());
  CHECK(count.load() == 1);
  CHECK(a.close());
  CHECK(b.close());
}

TEST_CASE("max_connections = 0 accepts without a limit and stopAccepting stops",
          "[unit][listener]") {
  Loop l;
  std::atomic<uint32_t> count{0};
  Worker w(&l.loop, count);
  REQUIRE(w.start(0));
  Clients clients;
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) fds.push_back(clients.connect(w.port));
  REQUIRE(runUntil(&l.loop, [&] { return w.sink.accepted == 20; }));
  CHECK_FALSE(w.acceptor.acceptPendingForTest());
  CHECK(count.load() == 20);

  w.acceptor.stopAccepting();
  CHECK_FALSE(w.acceptor.listeningForTest());
  runUntil(
      &l.loop, [] { return false; }, 20);  // lets the listening socket close
  int late = testing::newClient();
  REQUIRE(late >= 0);
  clients.fds.push_back(late);
  CHECK_FALSE(testing::connectClient(late, w.port));  // refused: nothing listens
  // Established connections go on.
  CHECK(w.sink.open() == 20);
  CHECK(w.close());
}

// ---- descriptor exhaustion, in a child process whose RLIMIT_NOFILE is lowered ----

// The lowest limit under which exactly `free_wanted` descriptors are free.
rlim_t limitLeaving(int free_wanted) {
  int free_seen = 0;
  for (int fd = 0;; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      if (free_seen == free_wanted) return static_cast<rlim_t>(fd);
      ++free_seen;
    }
  }
}

// Runs in the child: returns "key=value ..." facts for the parent to check.
std::string exhaustDescriptors(uv_loop_t* loop) {
  std::atomic<uint32_t> count{0};
  Worker w(loop, count);
  if (!w.start(0)) return "error=start";
  // Every client socket exists before the limit is lowered; connect() needs no new one.
  std::vector<int> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(testing::newClient());
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = limitLeaving(3);
  if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return "error=setrlimit";

  std::string facts;
  auto fact = [&](const char* key, long value) {
    facts += std::string(key) + "=" + std::to_string(value) + " ";
  };
  for (int i = 0; i < 3; ++i) testing::connectClient(clients[i], w.port);
  bool three = runUntil(loop, [&] { return w.sink.accepted == 3; });
  fact("accepted_before", w.sink.accepted);
  fact("three_greeted", three && peek(clients[2]) == ClientView::kGreeted);

  // No descriptor left: libuv accepts the fourth with its reserve descriptor and closes it.
  testing::connectClient(clients[3], w.port);
  bool dropped = runUntil(loop, [&] { return peek(clients[3]) == ClientView::kClosed; });
  fact("fourth_dropped", dropped);
  fact("accepted_while_exhausted", w.sink.accepted);

  // A descriptor frees: the next connection is accepted by the same listener.
  w.sink.closeOldest();
  runUntil(loop, [&] { return w.sink.released == 1; });
  testing::connectClient(clients[4], w.port);
  bool fifth = runUntil(loop, [&] { return peek(clients[4]) == ClientView::kGreeted; });
  fact("fifth_greeted", fifth);
  fact("accepted_after", w.sink.accepted);
  fact("listening", w.acceptor.listeningForTest());

  fact("closed", w.close());
  return facts;
}

TEST_CASE("Out of descriptors, the listener drops the connection and accepts again later",
          "[unit][listener]") {
  int out[2];
  REQUIRE(::pipe(out) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(out[0]);
    ::alarm(30);  // the child never outlives a stuck scenario
    uv_loop_t loop{};
    uv_loop_init(&loop);
    std::string facts = exhaustDescriptors(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    facts += uv_loop_close(&loop) == 0 ? "loop_closed=1 " : "loop_closed=0 ";
    ssize_t n = ::write(out[1], facts.data(), facts.size());
    ::_exit(n == static_cast<ssize_t>(facts.size()) ? 0 : 1);
  }
  ::close(out[1]);
  std::string facts;
  char buf[256];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) facts.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO("child reported: " << facts);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(facts.find("error=") == std::string::npos);
  CHECK(facts.find("accepted_before=3 ") != std::string::npos);
  CHECK(facts.find("three_greeted=1 ") != std::string::npos);
  CHECK(facts.find("fourth_dropped=1 ") != std::string::npos);
  CHECK(facts.find("accepted_while_exhausted=3 ") != std::string::npos);
  CHECK(facts.find("fifth_greeted=1 ") != std::string::npos);
  CHECK(facts.find("accepted_after=4 ") != std::string::npos);
  CHECK(facts.find("listening=1 ") != std::string::npos);
  CHECK(facts.find("closed=1 ") != std::string::npos);
  CHECK(facts.find("loop_closed=1 ") != std::string::npos);
}

}  // namespace
}  // namespace proxy::listener
