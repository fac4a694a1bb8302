// [server] workers = 2 against the real binary: one loop per thread, each with its own
// SO_REUSEPORT listener; every request is answered, metrics are summed across workers,
// and (where /proc/PID/task/TID/schedstat exists) both worker threads did work; and a
// second proxy started on the port of a running one fails instead of sharing it.
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "tests/integration/ops_support.h"

namespace proxy::integration::ops {
namespace {

// Nanoseconds each thread of `pid` has spent on a CPU (schedstat); empty when unknown.
std::map<std::string, uint64_t> cpuByThread(pid_t pid) {
  std::map<std::string, uint64_t> out;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(entry.path() / "schedstat");
    uint64_t ns = 0;
    if (in >> ns) out[entry.path().filename().string()] = ns;
  }
  return out;
}

TEST_CASE("Two workers both serve and metrics are summed across them",
          "[integration][ops][workers]") {
  OpsOptions o;
  o.config.server["workers"] = "2";
  OpsStack stack(o);
  const pid_t pid = stack.process().pid();

  auto m = stack.metrics();
  CHECK(metric(m, "apm_tls_proxy_workers") == 2.0);
  // The control loop plus two workers.
  CHECK(threadCount(pid) >= 3);
  CHECK(stack.stderrText().find("workers=2") != std::string::npos);

  auto cpu_before = cpuByThread(pid);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20;
  std::atomic<int> ok{0};
  std::mutex mu;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        TlsClient c(stack.port(), stack.client());
        std::string error;
        if (!c.connect()) {
          error = "connect: " + c.error();
        } else {
          Response r = c.request(httpRequest("POST", "/intake/v2/events", "Connection: close\r\n",
                                             "{\"metadata\":{}}\n"));
          if (r.status == 202) {
            ++ok;
            continue;
          }
          error = "status " + std::to_string(r.status) + " " + c.error();
        }
        std::lock_guard<std::mutex> lock(mu);
        errors.push_back(error);
      }
    });
  }
  for (auto& t : threads) t.join();
  auto cpu_after = cpuByThread(pid);
  for (const auto& e : errors) UNSCOPED_INFO("failed: " << e);
  CHECK(errors.empty());
  CHECK(ok == kThreads * kPerThread);

  std::map<std::string, double> after;
  REQUIRE(eventually(
      [&] {
        after = stack.metrics();
        return metric(after, "apm_tls_proxy_connections_active") == 0.0;
      },
      Millis{5000}));
  CHECK(metric(after, "apm_tls_proxy_connections_accepted_total") == kThreads * kPerThread);
  CHECK(metric(after, "apm_tls_proxy_http_requests_total") == kThreads * kPerThread);
  CHECK(metric(after, "apm_tls_proxy_http_responses_total{code_class=\"2xx\"}") ==
        kThreads * kPerThread);
  CHECK(metric(after, "apm_tls_proxy_tls_handshakes_total{version=\"TLSv1.3\"}") ==
        kThreads * kPerThread);

  // SO_REUSEPORT spreads connections by a hash of the peer address; with 80 connections
  // the chance that one worker got them all is 2^-79. A thread that handled TLS
  // handshakes used well over a millisecond of CPU; the main thread runs the control loop.
  if (cpu_before.empty()) {
    WARN("no /proc/PID/task/TID/schedstat here: not checking that both workers ran");
  } else {
    int busy = 0;
    for (const auto& [tid, ns] : cpu_after) {
      auto it = cpu_before.find(tid);
      uint64_t used = ns - (it == cpu_before.end() ? 0 : it->second);
      UNSCOPED_INFO("thread " << tid << " used " << used / 1000 << " us");
      if (tid == std::to_string(pid)) continue;  // the control loop, not a worker
      if (used > 1000000) ++busy;
    }
    CHECK(busy >= 2);
  }
}

// SO_REUSEPORT lets any process of the same user join a port. A second apm-tls-proxy
// started by mistake (an old unit still running, a hand-started copy with another
// configuration) must fail to start, as APM Server would, and not silently take part of
// the clients: perhaps without the first one's client-certificate checks.
TEST_CASE("A second proxy on the port of a running one refuses to start",
          "[integration][ops][workers]") {
  OpsOptions o;
  o.config.server["workers"] = "2";
  OpsStack stack(o);
  const std::string host = "127.0.0.1:" + std::to_string(stack.port());

  for (const char* workers : {"1", "2"}) {
    INFO("second proxy with workers = " << workers);
    ProxyConfig second;
    second.server["host"] = "\"" + host + "\"";
    second.server["workers"] = workers;
    second.upstreamPort(stack.demo.port());
    std::string path = stack.dir.write("second.toml", second.toToml());
    std::string ready = stack.dir.file("second.ready");
    RunResult r = runToCompletion({proxyBinary(), "run", "--config", path, "--ready-file", ready},
                                  stack.dir, "second");
    INFO(r.out + r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("cannot bind " + host + ": Address already in use") != std::string::npos);
    CHECK(readFile(ready).empty());
  }

  // The first one still owns the port, with both its workers: every connection is its.
  constexpr int kConnections = 20;
  for (int i = 0; i < kConnections; ++i) {
    TlsClient c(stack.port(), stack.client());
    REQUIRE(c.connect());
    Response r = c.request(
        httpRequest("POST", "/intake/v2/events", "Connection: close\r\n", "{\"metadata\":{}}\n"));
    CHECK(r.status == 202);
  }
  auto m = stack.metrics();
  CHECK(metric(m, "apm_tls_proxy_connections_accepted_total") == kConnections);
}

}  // namespace
}  // namespace proxy::integration::ops
