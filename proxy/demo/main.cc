// apm-intake-demo: argv -> Options -> IntakeServer::run(). See docs/intake-demo.md.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "proxy/demo/intake_server.h"

namespace {

const char kUsage[] =
    "usage: apm-intake-demo [--listen HOST:PORT] [--ready-file PATH] [--record FILE] [--quiet]\n"
    "                       [--max-concurrent-streams N]\n"
    "\n"
    "A small plain-HTTP intake server that answers like Elastic APM Server, for demos and\n"
    "tests of apm-tls-proxy: HTTP/1.1 and h2c (HTTP/2 with prior knowledge, OTLP/gRPC\n"
    "Export calls) on one port. Not a real APM Server: it stores nothing.\n"
    "\n"
    "  --listen HOST:PORT  address to listen on (default 127.0.0.1:8201; port 0 = any free)\n"
    "  --ready-file PATH   once listening, write \"listen=HOST:PORT\" to PATH (atomically)\n"
    "  --record FILE       append one JSON line per request (method, target, headers,\n"
    "                      body_bytes, body_lines, first 64 body bytes)\n"
    "  --quiet             no per-request log line on stderr\n"
    "  --max-concurrent-streams N\n"
    "                      h2c SETTINGS_MAX_CONCURRENT_STREAMS (default 100)\n"
    "\n"
    "Test-only request headers: X-Demo-Behavior, X-Demo-Delay, X-Demo-Size; over h2c\n"
    "x-demo-grpc-status, x-demo-delay-ms, x-demo-reset, x-demo-refuse-once, x-demo-goaway,\n"
    "x-demo-echo-size, x-demo-trailer\n"
    "(see docs/intake-demo.md).\n";

}  // namespace

int main(int argc, char** argv) {
  proxy::demo::Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "apm-intake-demo: %s needs a value\n%s", arg.c_str(), kUsage);
        return false;
      }
      *out = argv[++i];
      return true;
    };
    if (arg == "--listen") {
      if (!value(&options.listen)) return 2;
    } else if (arg == "--ready-file") {
      if (!value(&options.ready_file)) return 2;
    } else if (arg == "--record") {
      if (!value(&options.record_file)) return 2;
    } else if (arg == "--max-concurrent-streams") {
      std::string n;
      if (!value(&n)) return 2;
      char* end = nullptr;
      unsigned long parsed = std::strtoul(n.c_str(), &end, 10);
      if (n.empty() || *end != '\0' || parsed > 0x7fffffffUL) {
        std::fprintf(stderr, "apm-intake-demo: bad --max-concurrent-streams \"%s\"\n%s", n.c_str(),
                     kUsage);
        return 2;
      }
      options.max_concurrent_streams = static_cast<uint32_t>(parsed);
    } else if (arg == "--quiet") {
      options.quiet = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "apm-intake-demo: unknown argument \"%s\"\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  proxy::demo::IntakeServer server(std::move(options));
  return server.run();
}
