// apm-bench-client's upload and download modes: one keep-alive connection (plain, or TLS
// through tests/support's TlsClient) moving large bodies, responses read by its
// Http1Reader without keeping their bodies.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/bench/bench_modes.h"
#include "tests/support/http1_reader.h"
#include "tests/support/tls_client.h"

namespace bench {
namespace {

namespace testsupport = proxy::testsupport;

const testsupport::Http1Reader::Options kCountBody{/*stop_at_interim=*/false,
                                                   /*head_request=*/false,
                                                   /*discard_body=*/true};

// Generous: a transfer of hundreds of MiB through a proxy pinned to a busy CPU.
constexpr testsupport::Millis kTimeout{60000};

// One keep-alive connection: plain, or TLS through tests/support's TlsClient.
class Stream {
 public:
  ~Stream() {
    if (!tls_ && fd_ >= 0) ::close(fd_);  // a TlsClient closes the socket it adopted
  }
  bool open(const Options& o, const testsupport::TlsClientContext* ctx) {
    fd_ = openSocket(o, false);
    if (fd_ < 0) {
      std::fprintf(stderr, "apm-bench-client: connect: %s\n", std::strerror(errno));
      return false;
    }
    if (!ctx) return true;
    tls_ = std::make_unique<testsupport::TlsClient>(testsupport::TlsClient::AdoptFd{fd_}, *ctx);
    if (!tls_->connect(kTimeout)) {
      std::fprintf(stderr, "apm-bench-client: TLS handshake: %s\n", tls_->error().c_str());
      return false;
    }
    return true;
  }
  bool writeAll(const char* p, size_t n) {
    if (tls_) return tls_->send(std::string_view(p, n), kTimeout);
    while (n > 0) {
      ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  std::string cipher() const { return tls_ ? tls_->cipher() : "none"; }
  // Reads one response into `reader` (bodies are counted, not kept); false after a message.
  bool readResponse(testsupport::Http1Reader& reader, std::vector<char>& buf) {
    reader.reset();
    if (tls_) {
      if (tls_->readInto(reader, kTimeout)) return true;
      std::fprintf(stderr, "apm-bench-client: %s\n", tls_->error().c_str());
      return false;
    }
    for (;;) {
      ssize_t r = ::recv(fd_, buf.data(), buf.size(), 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        reader.finish();
        if (reader.done()) return true;
        std::fprintf(stderr, "apm-bench-client: connection closed before the response ended\n");
        return false;
      }
      // Bytes after the end of the response are ignored (the modes never pipeline).
      reader.feed(std::string_view(buf.data(), static_cast<size_t>(r)));
      if (reader.broken()) {
        std::fprintf(stderr, "apm-bench-client: malformed response\n");
        return false;
      }
      if (reader.done()) return true;
    }
  }

 private:
  int fd_ = -1;
  std::unique_ptr<testsupport::TlsClient> tls_;
};

}  // namespace

int runTransfer(const Options& o, const testsupport::TlsClientContext* ctx, bool upload) {
  Stream s;
  if (!s.open(o, ctx)) return 1;
  constexpr size_t kBlock = 1 << 20;
  std::string block(kBlock, 'a');  // no newlines: the demo's line counter stays cheap
  std::vector<char> buf(256 * 1024);
  testsupport::Http1Reader reader(kCountBody);
  uint64_t ok = 0;
  uint64_t non2xx = 0;
  uint64_t body_bytes = 0;
  int last_status = 0;
  Clock::time_point start = Clock::now();
  for (uint64_t i = 0; i < o.requests && !g_stop; ++i) {
    std::string head;
    if (upload) {
      head = "POST " + o.path +
             " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-ndjson\r\n" +
             (o.chunked ? std::string("Transfer-Encoding: chunked\r\n")
                        : "Content-Length: " + std::to_string(o.bytes) + "\r\n") +
             "\r\n";
    } else {
      head =
          "GET / HTTP/1.1\r\nHost: localhost\r\nX-Demo-Behavior: large-response\r\n"
          "X-Demo-Size: " +
          std::to_string(o.bytes) + "\r\n\r\n";
    }
    if (!s.writeAll(head.data(), head.size())) return 1;
    if (upload) {
      uint64_t left = o.bytes;
      while (left > 0) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(left, kBlock));
        if (o.chunked) {
          char size_line[32];
          int len = std::snprintf(size_line, sizeof size_line, "%zx\r\n", n);
          if (!s.writeAll(size_line, static_cast<size_t>(len))) return 1;
        }
        if (!s.writeAll(block.data(), n)) {
          std::fprintf(stderr, "apm-bench-client: write failed after %llu bytes\n",
                       static_cast<unsigned long long>(o.bytes - left));
          return 1;
        }
        if (o.chunked && !s.writeAll("\r\n", 2)) return 1;
        left -= n;
      }
      if (o.chunked && !s.writeAll("0\r\n\r\n", 5)) return 1;
    }
    if (!s.readResponse(reader, buf)) return 1;
    last_status = reader.response().status;
    body_bytes += reader.bodyBytes();
    if (last_status >= 200 && last_status < 300) {
      ++ok;
    } else {
      ++non2xx;
    }
  }
  double secs = secondsSince(start);
  uint64_t moved = upload ? ok * o.bytes : body_bytes;
  std::printf("mode=%s requests=%llu non2xx=%llu bytes=%llu seconds=%.3f status=%d cipher=%s\n",
              o.mode.c_str(), static_cast<unsigned long long>(ok),
              static_cast<unsigned long long>(non2xx), static_cast<unsigned long long>(moved), secs,
              last_status, s.cipher().c_str());
  return non2xx == 0 ? 0 : 1;
}

}  // namespace bench
