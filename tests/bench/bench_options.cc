#include "tests/bench/bench_options.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace bench {

const char kUsage[] =
    "usage: apm-bench-client MODE --connect 127.0.0.1:PORT [options]\n"
    "\n"
    "modes:\n"
    "  handshake  open TLS connections as fast as possible, each closed right after the\n"
    "             handshake (and the server's session ticket); --duration, --concurrency,\n"
    "             --resume (offer the last ticket of the slot: resumed handshakes)\n"
    "  upload     --requests K POSTs of --bytes N each on one keep-alive connection\n"
    "             (Content-Length, or --chunked in 1 MiB chunks); body is discarded upstream\n"
    "  download   --requests K GETs asking apm-intake-demo for --bytes N of response body\n"
    "  idle       open --count N connections (handshake done; --request: one 1 KiB POST\n"
    "             answered), write \"established=N\" to --ready-file, then hold them for\n"
    "             --hold SECONDS or until SIGTERM/SIGINT\n"
    "  rate       open-loop load: --concurrency keep-alive connections send 1 KiB POSTs at\n"
    "             --rate N requests per second in total for --duration seconds, each on a\n"
    "             fixed timetable; latency counts from the scheduled send time, so a late\n"
    "             answer also delays (and is charged to) the requests queued behind it;\n"
    "             prints p50/p90/p99/p99.9/max and the rate achieved\n"
    "\n"
    "options: --tls (handshake mode implies it), --concurrency N (default 64),\n"
    "         --duration SECONDS (default 5), --path /intake/v2/events,\n"
    "         --tls12 (TLS 1.2 only; default TLS 1.3 only), --cert FILE --key FILE (a client\n"
    "         certificate), --h2 (idle mode: ALPN h2, the HTTP/2 preface and, with\n"
    "         --request, one GET / on stream 1)\n";

std::atomic<bool> g_stop{false};

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string sslErrors() {
  std::string out;
  while (uint32_t e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "(no BoringSSL error)" : out;
}

std::string smallRequest(const Options& o) {
  std::string body(1023, 'x');
  body += '\n';
  return "POST " + o.path +
         " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-ndjson\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

int openSocket(const Options& o, bool nonblocking) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(o.port);
  ::inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (rc != 0 && !(nonblocking && errno == EINPROGRESS)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool parseArgs(int argc, char** argv, Options& o) {
  if (argc < 2) return false;
  o.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--tls") {
      o.tls = true;
    } else if (a == "--resume") {
      o.resume = true;
    } else if (a == "--chunked") {
      o.chunked = true;
    } else if (a == "--request") {
      o.request = true;
    } else if (a == "--tls12") {
      o.tls12 = true;
    } else if (a == "--h2") {
      o.h2 = true;
    } else if (a == "--cert" && (v = next())) {
      o.cert_file = v;
    } else if (a == "--key" && (v = next())) {
      o.key_file = v;
    } else if (a == "--connect" && (v = next())) {
      std::string s = v;
      size_t colon = s.rfind(':');
      if (colon == std::string::npos) return false;
      o.host = s.substr(0, colon);
      o.port = static_cast<uint16_t>(std::atoi(s.c_str() + colon + 1));
    } else if (a == "--duration" && (v = next())) {
      o.duration = std::atof(v);
    } else if (a == "--rate" && (v = next())) {
      o.rate = std::atof(v);
    } else if (a == "--hold" && (v = next())) {
      o.hold = std::atof(v);
    } else if (a == "--concurrency" && (v = next())) {
      o.concurrency = std::atoi(v);
    } else if (a == "--bytes" && (v = next())) {
      o.bytes = std::strtoull(v, nullptr, 10);
    } else if (a == "--requests" && (v = next())) {
      o.requests = std::strtoull(v, nullptr, 10);
    } else if (a == "--count" && (v = next())) {
      o.count = std::strtoull(v, nullptr, 10);
    } else if (a == "--ready-file" && (v = next())) {
      o.ready_file = v;
    } else if (a == "--path" && (v = next())) {
      o.path = v;
    } else {
      std::fprintf(stderr, "apm-bench-client: bad argument \"%s\"\n", a.c_str());
      return false;
    }
  }
  if (o.port == 0) return false;
  // The load must stay on this machine: refuse anything but the loopback range.
  if (o.host.compare(0, 4, "127.") != 0) {
    std::fprintf(stderr, "apm-bench-client: only 127.0.0.0/8 targets are allowed\n");
    return false;
  }
  return true;
}

}  // namespace bench
