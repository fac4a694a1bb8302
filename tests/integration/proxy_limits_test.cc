// Resource limits: server.max_connections holds new clients back instead of refusing
// them, and running out of file descriptors neither crashes the proxy nor makes it spin.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

using namespace proxy::integration;

namespace {

// utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and 15).
long cpuTicks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces; fields after its closing ')' are plain.
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long utime = 0;
  long stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

}  // namespace

TEST_CASE("At max_connections a new client waits in the backlog until a slot frees",
          "[integration][limits]") {
  ProxyConfig config;
  config.server["max_connections"] = "2";
  ProxyStack stack(config);
  auto first = std::make_unique<Client>(stack.proxy.port());
  Client second(stack.proxy.port());
  for (Client* c : {first.get(), &second}) {
    REQUIRE(c->send(httpRequest("POST", "/intake/v2/events", "", "{}\n")));
    REQUIRE(c->readResponse().status == 202);
  }
  // Both stay open (keep-alive). The third connects (the kernel's backlog takes it) but
  // is not served while the proxy is at its limit.
  Client third(stack.proxy.port());
  REQUIRE(third.send(httpRequest("POST", "/intake/v2/events", "", "{}\n")));
  CHECK(third.staysQuiet(Millis{800}));
  first.reset();  // a slot frees
  Response r = third.readResponse(Millis{5000});
  CHECK(r.status == 202);
  // The earlier connection still works alongside it.
  REQUIRE(second.send(httpRequest("GET", "/")));
  CHECK(second.readResponse().status == 200);
}

TEST_CASE("Running out of file descriptors neither crashes the proxy nor makes it spin",
          "[integration][limits]") {
  TempDir dir;
  DemoServer demo(dir);
  ProxyConfig config;
  config.upstreamPort(demo.port());
  config.server["workers"] = "1";
  std::string conf = dir.write("proxy.toml", config.toToml());
  std::string ready = dir.file("proxy.ready");
  // A tight descriptor limit: the proxy itself needs about a dozen.
  Process proxy({"/usr/bin/prlimit", "--nofile=40:40", proxyBinary(), "run", "--config", conf,
                 "--ready-file", ready},
                dir.file("proxy"));
  auto values = waitForReadyFile(proxy, ready);
  uint16_t port = portOf(values["listen"]);

  std::vector<std::unique_ptr<Client>> crowd;
  for (int i = 0; i < 60; ++i) crowd.push_back(std::make_unique<Client>(port));
  // Let the proxy meet the limit, then measure its CPU over a second of that state.
  usleep(300 * 1000);
  long before = cpuTicks(proxy.pid());
  usleep(1000 * 1000);
  long used = cpuTicks(proxy.pid()) - before;
  long hz = sysconf(_SC_CLK_TCK);
  INFO("CPU ticks used in 1 s at the descriptor limit: " << used << " of " << hz);
  CHECK(used < hz / 4);  // not spinning on accept()
  CHECK(proxy.running());
  // Connections beyond the limit are accepted and closed at once with libuv's reserve
  // descriptor, so they do not pile up unanswered in the backlog.
  size_t dropped = 0;
  for (auto& c : crowd) dropped += c->waitClosed(Millis{20}) ? 1 : 0;
  CHECK(dropped > 0);
  CHECK(dropped < crowd.size());

  crowd.clear();  // every client goes away; the proxy recovers
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    Client c(port);
    if (c.send(httpRequest("GET", "/"))) served = c.readResponse(Millis{2000}).status == 200;
    if (!served) usleep(100 * 1000);
  }
  CHECK(served);
  CHECK(proxy.stop() == 0);
}
