// Memory stays bounded while bodies stream: a 1 GiB chunked upload through the proxy,
// and an upstream that reads slowly (backpressure must stop the proxy reading from the
// client instead of buffering). Peak RSS is VmHWM from /proc/PID/status.
#include <algorithm>
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace proxy::integration {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kMiB = 1024 * 1024;
constexpr size_t kWrite = 64 * 1024;

// Under AddressSanitizer freed memory sits in a quarantine before reuse, which would
// count as growth; keep the quarantine small and allow for it.
#if defined(__SANITIZE_ADDRESS__)
const std::vector<std::string> kProxyEnv = {"ASAN_OPTIONS=quarantine_size_mb=4:detect_leaks=0"};
constexpr uint64_t kSlackMiB = 8;
#else
const std::vector<std::string> kProxyEnv = {};
constexpr uint64_t kSlackMiB = 0;
#endif

// 64 KiB of NDJSON-looking bytes, a newline every 1024.
std::string payload() {
  std::string out = demoPattern(0, kWrite);
  for (size_t i = 1023; i < out.size(); i += 1024) out[i] = '\n';
  return out;
}

// A proxy in front of the demo, warmed up with one 256 KiB request so that buffers the
// proxy allocates once (per worker, per connection) count in the baseline.
struct Warm {
  TempDir dir;
  DemoServer demo{dir};
  ProxyProcess proxy{dir, ProxyConfig{}.upstreamPort(demo.port()), "proxy", kProxyEnv};
  Memory baseline;
  Warm() {
    Client c(proxy.port());
    REQUIRE(c.send(httpRequest("POST", "/intake/v2/events", "", std::string(256 * 1024, 'w'))));
    Response r = c.readResponse();
    INFO("warm-up: a 256 KiB POST through the proxy got no answer");
    REQUIRE(r.status == 202);
    baseline = readMemory(proxy.process().pid());
  }
};

TEST_CASE("A 1 GiB chunked upload streams through with bounded proxy memory",
          "[integration][streaming]") {
  Warm warm;
  const uint64_t kTotal = 1024 * kMiB;
  std::string frame = "10000\r\n" + payload() + "\r\n";  // one 64 KiB chunk
  Client c(warm.proxy.port());
  auto start = Clock::now();
  REQUIRE(c.send(httpRequest("POST", "/intake/v2/events",
                             "Transfer-Encoding: chunked\r\n"
                             "Content-Type: application/x-ndjson\r\n")));
  uint64_t sent = 0;
  uint64_t peak_kib = warm.baseline.hwm_kib;
  while (sent < kTotal) {
    if (!c.send(frame, Millis{20000})) {
      FAIL("upload stalled or was cut off after " << sent / kMiB << " MiB");
    }
    sent += kWrite;
    if (sent % (64 * kMiB) == 0) {
      peak_kib = std::max(peak_kib, readMemory(warm.proxy.process().pid()).hwm_kib);
      if (Clock::now() - start > Millis{55000}) FAIL("too slow: " << sent / kMiB << " MiB in 55 s");
    }
  }
  REQUIRE(c.send("0\r\n\r\n"));
  Response r = c.readResponse(Millis{20000});
  auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - start);
  CHECK(r.status == 202);

  Memory after = readMemory(warm.proxy.process().pid());
  // The kernel folds per-thread RSS counts in lazily, so a sample taken during the upload
  // can read a little above the final VmHWM: the growth is judged on the larger of them.
  uint64_t growth_kib = std::max(peak_kib, after.hwm_kib) - warm.baseline.hwm_kib;
  INFO("baseline VmHWM " << warm.baseline.hwm_kib << " KiB, after " << after.hwm_kib
                         << " KiB, growth " << growth_kib << " KiB; took " << elapsed.count()
                         << " ms");
  CHECK(growth_kib < (16 + kSlackMiB) * 1024);
  CHECK(elapsed < Millis{60000});

  auto records = warm.demo.waitForRecords(2);
  const Record& big = records.back();
  CHECK(big.complete);
  CHECK(big.body_bytes == kTotal);
  CHECK(big.body_lines == kTotal / 1024);
  CHECK(big.body_head == payload().substr(0, 64));
}

TEST_CASE("A slow upstream reader holds the client back instead of growing the proxy",
          "[integration][streaming][backpressure]") {
  Warm warm;
  const uint64_t kDeclared = 256 * kMiB;  // far more than socket buffers can absorb
  std::string block = payload();
  Client c(warm.proxy.port());
  REQUIRE(c.send("POST /intake/v2/events HTTP/1.1\r\nHost: apm.test\r\nContent-Length: " +
                 std::to_string(kDeclared) + "\r\nX-Demo-Behavior: slow-reader\r\n\r\n"));
  // Push for three seconds. The demo reads about 640 KiB/s, so without backpressure
  // the proxy would swallow everything we send (hundreds of MiB); with it, we are held
  // to what the kernel's socket buffers and the proxy's watermarks allow.
  auto until = Clock::now() + Millis{3000};
  uint64_t sent = 0;
  size_t offset = 0;
  while (Clock::now() < until && sent < kDeclared) {
    size_t n = c.sendSome(std::string_view(block).substr(offset),
                          std::chrono::duration_cast<Millis>(until - Clock::now()));
    if (c.closed()) break;
    sent += n;
    offset = (offset + n) % block.size();
  }
  Memory after = readMemory(warm.proxy.process().pid());
  uint64_t growth_kib = after.hwm_kib - warm.baseline.hwm_kib;
  INFO("sent " << sent / 1024 << " KiB in 3 s; proxy VmHWM grew " << growth_kib << " KiB");
  CHECK_FALSE(c.closed());
  CHECK(sent > kMiB);  // the upload did move, at the upstream's pace
  CHECK(sent < 96 * kMiB);
  CHECK(growth_kib < (16 + kSlackMiB) * 1024);

  // Give up on the upload: the proxy must drop the upstream request and stay healthy.
  c.shutdownWrite();
  Client next(warm.proxy.port());
  REQUIRE(next.send(httpRequest("POST", "/intake/v2/events", "", "{}\n")));
  CHECK(next.readResponse().status == 202);
}

}  // namespace
}  // namespace proxy::integration
