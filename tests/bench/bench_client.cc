// apm-bench-client: the load generator scripts/bench.sh uses where wrk cannot do the job:
// TLS handshakes per second (full or resumed), large streamed uploads and downloads,
// thousands of idle connections for the memory figure, and an open-loop request rate for
// latency at the same load. Loopback only; every mode is
// bounded in time or count. Prints one "key=value ..." line on stdout; the script turns
// it into figures per CPU-second of the proxy, which it measures itself.
// Not part of the proxy: owns only its own sockets and BoringSSL client objects.
#include <csignal>
#include <cstdio>
#include <memory>

#include "tests/bench/bench_modes.h"

namespace {
void onSignal(int) { bench::g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  bench::Options o;
  if (!bench::parseArgs(argc, argv, o)) {
    std::fputs(bench::kUsage, stderr);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGTERM, onSignal);
  std::signal(SIGINT, onSignal);
  std::unique_ptr<bench::TlsClientContext> ctx;
  if (o.tls || o.mode == "handshake") {
    ctx = bench::makeClientContext(o);
    if (!ctx) return 1;
  }
  if (o.mode == "handshake") return bench::runHandshakes(o, ctx.get());
  if (o.mode == "upload") return bench::runTransfer(o, ctx.get(), true);
  if (o.mode == "download") return bench::runTransfer(o, ctx.get(), false);
  if (o.mode == "idle") return bench::runIdle(o, ctx.get());
  if (o.mode == "rate") return bench::runRate(o, ctx.get());
  std::fputs(bench::kUsage, stderr);
  return 2;
}
