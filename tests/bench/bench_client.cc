// apm-bench-client: the load generator scripts/bench.sh uses where wrk cannot do the job:
// TLS handshakes per second (full or resumed), large streamed uploads and downloads, and
// thousands of idle connections for the memory figure. Loopback only; every mode is
// bounded in time or count. Prints one "key=value ..." line on stdout; the script turns
// it into figures per CPU-second of the proxy, which it measures itself.
// Not part of the proxy: owns only its own sockets and BoringSSL client objects.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "h2_bytes.h"

namespace {

using Clock = std::chrono::steady_clock;

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
    "\n"
    "options: --tls (handshake mode implies it), --concurrency N (default 64),\n"
    "         --duration SECONDS (default 5), --path /intake/v2/events,\n"
    "         --tls12 (TLS 1.2 only; default TLS 1.3 only), --cert FILE --key FILE (a client\n"
    "         certificate), --h2 (idle mode: ALPN h2, the HTTP/2 preface and, with\n"
    "         --request, one GET / on stream 1)\n";

struct Options {
  std::string mode;
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  bool tls = false;
  bool resume = false;
  bool chunked = false;
  bool request = false;
  bool tls12 = false;
  bool h2 = false;
  std::string cert_file;
  std::string key_file;
  double duration = 5;
  double hold = 60;
  int concurrency = 64;
  uint64_t bytes = 256ull << 20;
  uint64_t requests = 1;
  uint64_t count = 1000;
  std::string ready_file;
  std::string path = "/intake/v2/events";
};

std::atomic<bool> g_stop{false};
void onSignal(int) { g_stop = true; }

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

// The 1 KiB ndjson request every mode that sends "a request" uses.
std::string smallRequest(const Options& o) {
  std::string body(1023, 'x');
  body += '\n';
  return "POST " + o.path +
         " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-ndjson\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Incremental HTTP/1.1 response reader: enough of RFC 9112 for the proxy's answers
// (Content-Length, chunked, 1xx skipped, 204/304 without body). No allocation per body byte.
class ResponseReader {
 public:
  enum class Result { kMore, kDone, kError };

  void reset() {
    state_ = State::kHead;
    line_.clear();
    head_.clear();
    status_ = 0;
    remaining_ = 0;
    body_bytes_ = 0;
  }
  int status() const { return status_; }
  uint64_t bodyBytes() const { return body_bytes_; }
  // Bytes after the end of the response are ignored (callers never pipeline).
  Result feed(const char* p, size_t n) {
    while (n > 0 || state_ == State::kDone) {
      switch (state_) {
        case State::kHead: {
          size_t old = head_.size();
          head_.append(p, n);
          size_t end = head_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
          if (end == std::string::npos) {
            if (head_.size() > 65536) return Result::kError;
            return Result::kMore;
          }
          size_t used = end + 4 - old;
          p += used;
          n -= used;
          head_.resize(end + 4);
          if (!parseHead()) return Result::kError;
          head_.clear();
          break;
        }
        case State::kBody: {
          uint64_t take = std::min<uint64_t>(remaining_, n);
          body_bytes_ += take;
          remaining_ -= take;
          p += take;
          n -= take;
          if (remaining_ == 0) state_ = State::kDone;
          break;
        }
        case State::kChunkSize:
        case State::kChunkCrlf:
        case State::kTrailer: {
          const char* nl = static_cast<const char*>(std::memchr(p, '\n', n));
          size_t take = nl ? static_cast<size_t>(nl - p) + 1 : n;
          line_.append(p, take);
          p += take;
          n -= take;
          if (!nl) {
            if (line_.size() > 4096) return Result::kError;
            break;
          }
          if (!onLine()) return Result::kError;
          line_.clear();
          break;
        }
        case State::kChunkData: {
          uint64_t take = std::min<uint64_t>(remaining_, n);
          body_bytes_ += take;
          remaining_ -= take;
          p += take;
          n -= take;
          if (remaining_ == 0) state_ = State::kChunkCrlf;
          break;
        }
        case State::kDone:
          return Result::kDone;
      }
    }
    return Result::kMore;
  }

 private:
  enum class State { kHead, kBody, kChunkSize, kChunkData, kChunkCrlf, kTrailer, kDone };

  bool parseHead() {
    if (head_.compare(0, 9, "HTTP/1.1 ") != 0 && head_.compare(0, 9, "HTTP/1.0 ") != 0) {
      return false;
    }
    status_ = std::atoi(head_.c_str() + 9);
    if (status_ >= 100 && status_ < 200) {  // 100 Continue: another head follows
      state_ = State::kHead;
      return true;
    }
    bool chunked = false;
    bool has_length = false;
    uint64_t length = 0;
    size_t pos = head_.find("\r\n") + 2;
    while (pos < head_.size()) {
      size_t eol = head_.find("\r\n", pos);
      if (eol == pos) break;
      std::string line = head_.substr(pos, eol - pos);
      pos = eol + 2;
      size_t colon = line.find(':');
      if (colon == std::string::npos) return false;
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t v = line.find_first_not_of(" \t", colon + 1);
      std::string value = v == std::string::npos ? "" : line.substr(v);
      if (name == "content-length") {
        has_length = true;
        length = std::strtoull(value.c_str(), nullptr, 10);
      } else if (name == "transfer-encoding" && value.find("chunked") != std::string::npos) {
        chunked = true;
      }
    }
    if (status_ == 204 || status_ == 304) {
      state_ = State::kDone;
    } else if (chunked) {
      state_ = State::kChunkSize;
    } else if (has_length) {
      remaining_ = length;
      state_ = length == 0 ? State::kDone : State::kBody;
    } else {
      return false;  // read-until-close bodies are not expected from the proxy
    }
    return true;
  }

  bool onLine() {
    switch (state_) {
      case State::kChunkSize: {
        char* end = nullptr;
        remaining_ = std::strtoull(line_.c_str(), &end, 16);
        if (end == line_.c_str()) return false;
        state_ = remaining_ == 0 ? State::kTrailer : State::kChunkData;
        return true;
      }
      case State::kChunkCrlf:
        if (line_ != "\r\n") return false;
        state_ = State::kChunkSize;
        return true;
      case State::kTrailer:
        if (line_ == "\r\n") state_ = State::kDone;
        return true;
      default:
        return false;
    }
  }

  State state_ = State::kHead;
  std::string line_;
  std::string head_;
  int status_ = 0;
  uint64_t remaining_ = 0;
  uint64_t body_bytes_ = 0;
};

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

// The client context: TLS 1.3 only (the figures are TLS 1.3 ones), no certificate-chain
// verification (the proxy's CPU is what we measure; the handshake signature is still
// checked by BoringSSL), tickets delivered to onNewSession.
int g_conn_index = -1;
int onNewSession(SSL* ssl, SSL_SESSION* session);

SSL_CTX* makeClientContext(const Options& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  uint16_t version = o.tls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
  SSL_CTX_set_min_proto_version(ctx, version);
  SSL_CTX_set_max_proto_version(ctx, version);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  static const uint8_t kHttp1[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  static const uint8_t kH2[] = {2, 'h', '2'};
  if (o.h2) {
    SSL_CTX_set_alpn_protos(ctx, kH2, sizeof kH2);
  } else {
    SSL_CTX_set_alpn_protos(ctx, kHttp1, sizeof kHttp1);
  }
  if (!o.cert_file.empty() &&
      (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1)) {
    std::fprintf(stderr, "apm-bench-client: cannot load the client certificate: %s\n",
                 sslErrors().c_str());
    SSL_CTX_free(ctx);
    return nullptr;
  }
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_sess_set_new_cb(ctx, onNewSession);
  g_conn_index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return ctx;
}

// ---- blocking streams: upload and download ----

class Stream {
 public:
  ~Stream() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  bool open(const Options& o, SSL_CTX* ctx) {
    fd_ = openSocket(o, false);
    if (fd_ < 0) {
      std::fprintf(stderr, "apm-bench-client: connect: %s\n", std::strerror(errno));
      return false;
    }
    if (!ctx) return true;
    ssl_ = SSL_new(ctx);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    if (SSL_connect(ssl_) != 1) {
      std::fprintf(stderr, "apm-bench-client: TLS handshake: %s\n", sslErrors().c_str());
      return false;
    }
    return true;
  }
  bool writeAll(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w;
      if (ssl_) {
        w = SSL_write(ssl_, p, static_cast<int>(std::min<size_t>(n, 1 << 30)));
      } else {
        w = ::send(fd_, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
      }
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  // > 0 bytes read, 0 EOF, < 0 error.
  const char* cipher() const {
    const SSL_CIPHER* c = ssl_ ? SSL_get_current_cipher(ssl_) : nullptr;
    return c ? SSL_CIPHER_get_name(c) : "none";
  }
  ssize_t readSome(char* p, size_t n) {
    if (ssl_) {
      int r = SSL_read(ssl_, p, static_cast<int>(n));
      if (r > 0) return r;
      return SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    for (;;) {
      ssize_t r = ::recv(fd_, p, n, 0);
      if (r < 0 && errno == EINTR) continue;
      return r;
    }
  }

 private:
  int fd_ = -1;
  SSL* ssl_ = nullptr;
};

bool readResponse(Stream& s, ResponseReader& reader, std::vector<char>& buf) {
  reader.reset();
  for (;;) {
    ssize_t r = s.readSome(buf.data(), buf.size());
    if (r <= 0) {
      std::fprintf(stderr, "apm-bench-client: connection closed before the response ended\n");
      return false;
    }
    switch (reader.feed(buf.data(), static_cast<size_t>(r))) {
      case ResponseReader::Result::kDone:
        return true;
      case ResponseReader::Result::kError:
        std::fprintf(stderr, "apm-bench-client: malformed response\n");
        return false;
      case ResponseReader::Result::kMore:
        break;
    }
  }
}

int runTransfer(const Options& o, SSL_CTX* ctx, bool upload) {
  Stream s;
  if (!s.open(o, ctx)) return 1;
  constexpr size_t kBlock = 1 << 20;
  std::string block(kBlock, 'a');  // no newlines: the demo's line counter stays cheap
  std::vector<char> buf(256 * 1024);
  ResponseReader reader;
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
    if (!readResponse(s, reader, buf)) return 1;
    last_status = reader.status();
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
              last_status, s.cipher());
  return non2xx == 0 ? 0 : 1;
}

// ---- non-blocking connections: handshake and idle ----

struct Conn {
  enum class State { kConnecting, kHandshaking, kWaitTicket, kSending, kReading, kDone };
  int fd = -1;
  SSL* ssl = nullptr;
  State state = State::kConnecting;
  bool got_ticket = false;
  SSL_SESSION* session = nullptr;  // resume mode: the slot's latest ticket
  bool keep_session = false;
  size_t sent = 0;
  Clock::time_point started;
  ResponseReader reader;
  bench::H2ResponseScanner h2;
};

int onNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* c = static_cast<Conn*>(SSL_get_ex_data(ssl, g_conn_index));
  if (!c) return 0;
  c->got_ticket = true;
  if (!c->keep_session) return 0;
  if (c->session) SSL_SESSION_free(c->session);
  c->session = session;  // we take the reference
  return 1;
}

class Engine {
 public:
  Engine(const Options& o, SSL_CTX* ctx)
      : o_(o),
        ctx_(ctx),
        request_(o.h2 ? bench::h2ClientBytes(o.request, ctx != nullptr) : smallRequest(o)) {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  }
  ~Engine() { ::close(epoll_); }

  // Starts (or restarts) the connection in `c`. False when the socket cannot be opened.
  bool start(Conn& c) {
    c.fd = openSocket(o_, true);
    if (c.fd < 0) return false;
    c.state = Conn::State::kConnecting;
    c.got_ticket = false;
    c.sent = 0;
    c.started = Clock::now();
    c.reader.reset();
    c.h2.reset();
    if (ctx_) {
      c.ssl = SSL_new(ctx_);
      SSL_set_fd(c.ssl, c.fd);
      SSL_set_connect_state(c.ssl);
      SSL_set_tlsext_host_name(c.ssl, "localhost");
      SSL_set_ex_data(c.ssl, g_conn_index, &c);
      if (c.keep_session && c.session) SSL_set_session(c.ssl, c.session);
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.ptr = &c;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
    return true;
  }

  // Frees the connection's socket and SSL; sends close_notify first when asked.
  void finish(Conn& c, bool close_notify) {
    if (c.ssl) {
      if (close_notify) SSL_shutdown(c.ssl);
      SSL_free(c.ssl);
      c.ssl = nullptr;
    }
    if (c.fd >= 0) ::close(c.fd);  // also removes it from the epoll set
    c.fd = -1;
  }

  // Moves `c` forward as far as its socket allows. Returns kDone, or kError on failure,
  // or the current state when it must wait for the socket.
  enum class Step { kWait, kDone, kError };
  Step drive(Conn& c) {
    for (;;) {
      switch (c.state) {
        case Conn::State::kConnecting: {
          int err = 0;
          socklen_t len = sizeof err;
          ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err != 0) return Step::kError;
          pollfd p{c.fd, POLLOUT, 0};
          if (::poll(&p, 1, 0) != 1) return Step::kWait;
          c.state = c.ssl ? Conn::State::kHandshaking : afterHandshake();
          break;
        }
        case Conn::State::kHandshaking: {
          ERR_clear_error();
          int r = SSL_do_handshake(c.ssl);
          if (r == 1) {
            if (SSL_session_reused(c.ssl)) ++resumed_;
            // TLS 1.2: the server read our Finished before it sent its own.
            c.state =
                SSL_version(c.ssl) == TLS1_3_VERSION ? Conn::State::kWaitTicket : afterHandshake();
            break;
          }
          return wouldBlock(c, r) ? Step::kWait : Step::kError;
        }
        case Conn::State::kWaitTicket: {
          // The server sends its tickets once it has read our Finished, so a ticket proves
          // the proxy has completed the handshake too.
          if (c.got_ticket) {
            c.state = afterHandshake();
            break;
          }
          char buf[4096];
          ERR_clear_error();
          int r = SSL_read(c.ssl, buf, sizeof buf);
          if (r > 0) continue;
          if (c.got_ticket) continue;
          return wouldBlock(c, r) ? Step::kWait : Step::kError;
        }
        case Conn::State::kSending: {
          const char* p = request_.data() + c.sent;
          size_t n = request_.size() - c.sent;
          ssize_t w;
          if (c.ssl) {
            ERR_clear_error();
            int r = SSL_write(c.ssl, p, static_cast<int>(n));
            if (r <= 0) return wouldBlock(c, r) ? Step::kWait : Step::kError;
            w = r;
          } else {
            w = ::send(c.fd, p, n, MSG_NOSIGNAL);
            if (w < 0) return errno == EAGAIN ? Step::kWait : Step::kError;
          }
          c.sent += static_cast<size_t>(w);
          if (c.sent == request_.size()) {
            c.state = o_.request ? Conn::State::kReading : Conn::State::kDone;
          }
          break;
        }
        case Conn::State::kReading: {
          char buf[16384];
          ssize_t r;
          if (c.ssl) {
            ERR_clear_error();
            int n = SSL_read(c.ssl, buf, sizeof buf);
            if (n <= 0) return wouldBlock(c, n) ? Step::kWait : Step::kError;
            r = n;
          } else {
            r = ::recv(c.fd, buf, sizeof buf, 0);
            if (r < 0) return errno == EAGAIN ? Step::kWait : Step::kError;
            if (r == 0) return Step::kError;
          }
          if (o_.h2) {
            auto res = c.h2.feed(buf, static_cast<size_t>(r));
            if (res == bench::H2ResponseScanner::Result::kError) return Step::kError;
            if (res == bench::H2ResponseScanner::Result::kDone) {
              if (!c.h2.ok()) ++non2xx_;
              c.state = Conn::State::kDone;
            }
            break;
          }
          auto res = c.reader.feed(buf, static_cast<size_t>(r));
          if (res == ResponseReader::Result::kError) return Step::kError;
          if (res == ResponseReader::Result::kDone) {
            if (c.reader.status() < 200 || c.reader.status() >= 300) ++non2xx_;
            c.state = Conn::State::kDone;
          }
          break;
        }
        case Conn::State::kDone:
          return Step::kDone;
      }
    }
  }

  // Waits up to `ms` for socket events and drives the ready connections; `onStep` gets
  // each connection that finished or failed.
  template <typename F>
  void poll(int ms, F&& onStep) {
    epoll_event events[256];
    int n = ::epoll_wait(epoll_, events, 256, ms);
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Conn*>(events[i].data.ptr);
      if (c->fd < 0 || c->state == Conn::State::kDone) continue;
      Step s = drive(*c);
      if (s != Step::kWait) onStep(*c, s);
    }
  }

  // Connections stuck waiting for a ticket this long are treated as done (a server with
  // session tickets off sends none).
  template <typename F>
  void expireTicketWaits(std::vector<Conn>& conns, F&& onStep) {
    Clock::time_point now = Clock::now();
    for (Conn& c : conns) {
      if (c.fd >= 0 && c.state == Conn::State::kWaitTicket &&
          now - c.started > std::chrono::seconds(2)) {
        ++no_ticket_;
        c.state = afterHandshake();
        Step s = drive(c);
        if (s != Step::kWait) onStep(c, s);
      }
    }
  }

  uint64_t resumed() const { return resumed_; }
  uint64_t noTicket() const { return no_ticket_; }
  uint64_t non2xx() const { return non2xx_; }

 private:
  Conn::State afterHandshake() const {
    return o_.request || o_.h2 ? Conn::State::kSending : Conn::State::kDone;
  }
  bool wouldBlock(Conn& c, int r) {
    int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
    if (++errors_logged_ <= 3) {
      std::fprintf(stderr, "apm-bench-client: TLS error %d: %s\n", e, sslErrors().c_str());
    }
    return false;
  }

  const Options& o_;
  SSL_CTX* ctx_;
  std::string request_;
  int epoll_ = -1;
  uint64_t resumed_ = 0;
  uint64_t no_ticket_ = 0;
  uint64_t non2xx_ = 0;
  int errors_logged_ = 0;
};

int runHandshakes(const Options& o, SSL_CTX* ctx) {
  Engine engine(o, ctx);
  std::vector<Conn> conns(static_cast<size_t>(o.concurrency));
  uint64_t done = 0;
  uint64_t failed = 0;
  Clock::time_point start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(o.duration);
  for (Conn& c : conns) {
    c.keep_session = o.resume;
    if (!engine.start(c)) ++failed;
  }
  auto onStep = [&](Conn& c, Engine::Step s) {
    if (s == Engine::Step::kDone) {
      ++done;
    } else {
      ++failed;
    }
    engine.finish(c, s == Engine::Step::kDone);
    if (Clock::now() < deadline && !g_stop && !engine.start(c)) ++failed;
  };
  for (;;) {
    bool open = false;
    for (const Conn& c : conns) open = open || c.fd >= 0;
    if (!open) break;
    engine.poll(50, onStep);
    engine.expireTicketWaits(conns, onStep);
    if (Clock::now() > deadline + std::chrono::seconds(5)) break;  // stragglers
  }
  double secs = secondsSince(start);
  for (Conn& c : conns) {
    engine.finish(c, false);
    if (c.session) SSL_SESSION_free(c.session);
  }
  std::printf(
      "mode=handshake handshakes=%llu resumed=%llu failed=%llu no_ticket=%llu "
      "seconds=%.3f\n",
      static_cast<unsigned long long>(done), static_cast<unsigned long long>(engine.resumed()),
      static_cast<unsigned long long>(failed), static_cast<unsigned long long>(engine.noTicket()),
      secs);
  return 0;
}

int runIdle(const Options& o, SSL_CTX* ctx) {
  Engine engine(o, ctx);
  std::vector<Conn> conns(o.count);  // never resized: the epoll data points into it
  uint64_t started = 0;
  uint64_t established = 0;
  uint64_t failed = 0;
  int in_flight = 0;
  const int kMaxInFlight = std::max(1, o.concurrency);
  Clock::time_point start = Clock::now();
  auto onStep = [&](Conn& c, Engine::Step s) {
    --in_flight;
    if (s == Engine::Step::kDone) {
      ++established;
    } else {
      ++failed;
      engine.finish(c, false);
    }
  };
  while (!g_stop && established + failed < o.count) {
    while (started < o.count && in_flight < kMaxInFlight) {
      Conn& c = conns[started++];
      if (engine.start(c)) {
        ++in_flight;
      } else {
        ++failed;
      }
    }
    engine.poll(50, onStep);
    engine.expireTicketWaits(conns, onStep);
    if (secondsSince(start) > 120) break;
  }
  double setup = secondsSince(start);
  if (!o.ready_file.empty()) {
    std::string tmp = o.ready_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "established=%llu failed=%llu\n",
                   static_cast<unsigned long long>(established),
                   static_cast<unsigned long long>(failed));
      std::fclose(f);
      std::rename(tmp.c_str(), o.ready_file.c_str());
    }
  }
  Clock::time_point hold_start = Clock::now();
  while (!g_stop && secondsSince(hold_start) < o.hold) ::usleep(20 * 1000);
  // How many did the proxy keep open the whole time? A closed one is readable (EOF).
  uint64_t still_open = 0;
  for (Conn& c : conns) {
    if (c.fd < 0 || c.state != Conn::State::kDone) continue;
    pollfd p{c.fd, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) == 0) ++still_open;
  }
  for (Conn& c : conns) {
    engine.finish(c, false);
    if (c.session) SSL_SESSION_free(c.session);
  }
  std::printf(
      "mode=idle established=%llu failed=%llu still_open=%llu non2xx=%llu "
      "setup_seconds=%.3f\n",
      static_cast<unsigned long long>(established), static_cast<unsigned long long>(failed),
      static_cast<unsigned long long>(still_open), static_cast<unsigned long long>(engine.non2xx()),
      setup);
  return 0;
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

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parseArgs(argc, argv, o)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGTERM, onSignal);
  std::signal(SIGINT, onSignal);
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(nullptr, SSL_CTX_free);
  if (o.tls || o.mode == "handshake") {
    ctx.reset(makeClientContext(o));
    if (!ctx) return 1;
  }
  if (o.mode == "handshake") return runHandshakes(o, ctx.get());
  if (o.mode == "upload") return runTransfer(o, ctx.get(), true);
  if (o.mode == "download") return runTransfer(o, ctx.get(), false);
  if (o.mode == "idle") return runIdle(o, ctx.get());
  std::fputs(kUsage, stderr);
  return 2;
}
