#include "tests/integration/ops_support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "proxy/certutil/cert_builder.h"

namespace proxy::integration::ops {
namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int msLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

std::string serialHex(const X509* cert) {
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  bssl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return {};
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  return out;
}

std::string commonName(const X509* cert) {
  char buf[256] = {};
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

void writeFileOrFail(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  INFO("writing " << path);
  REQUIRE(out.good());
}

}  // namespace

// ---- certificates ----

struct Pki::Impl {
  certutil::Issued ca;
};

Pki::Pki(const std::string& ca_cn) : impl_(std::make_unique<Impl>()) {
  certutil::CertSpec spec;
  spec.subject = "CN=" + ca_cn + ",O=apm-tls-proxy tests";
  spec.is_ca = true;
  auto ca = certutil::selfSigned(spec, certutil::KeyType::kEcdsaP256);
  INFO((ca ? std::string() : ca.status().message()));
  REQUIRE(ca);
  impl_->ca = std::move(ca).value();
  ca_pem_ = certutil::certToPem(impl_->ca.cert.get());
}

Pki::~Pki() = default;

namespace {
PemPair issueLeaf(const certutil::Issued& ca, const certutil::CertSpec& spec) {
  auto leaf = certutil::issue(spec, certutil::KeyType::kEcdsaP256, ca.cert.get(), ca.key.get());
  INFO((leaf ? std::string() : leaf.status().message()));
  REQUIRE(leaf);
  PemPair out;
  out.cert = certutil::certToPem(leaf.value().cert.get());
  auto key = certutil::keyToPem(leaf.value().key.get());
  REQUIRE(key);
  out.key = key.value();
  out.serial_hex = serialHex(leaf.value().cert.get());
  out.subject_cn = commonName(leaf.value().cert.get());
  return out;
}
}  // namespace

PemPair Pki::server(const std::string& cn) const {
  certutil::CertSpec spec;
  spec.subject = "CN=" + cn;
  spec.server_auth = true;
  spec.dns = {"localhost"};
  spec.ips = {"127.0.0.1"};
  return issueLeaf(impl_->ca, spec);
}

PemPair Pki::client(const std::string& cn, const std::string& dns, const std::string& uri) const {
  certutil::CertSpec spec;
  spec.subject = "CN=" + cn + ",OU=agents";
  spec.client_auth = true;
  if (!dns.empty()) spec.dns = {dns};
  if (!uri.empty()) spec.uris = {uri};
  return issueLeaf(impl_->ca, spec);
}

// ---- SecretDir ----

SecretDir::SecretDir(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  std::filesystem::create_directories(path_, ec);
  REQUIRE_FALSE(ec);
}

void SecretDir::publish(const std::map<std::string, std::string>& files) {
  ++generation_;
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "..2026_01_0%d_12_00_00.%09d", generation_ % 10,
                123456789 + generation_);
  std::string ts = stamp;
  std::string ts_path = file(ts);
  INFO("mkdir " << ts_path);
  REQUIRE(::mkdir(ts_path.c_str(), 0755) == 0);
  for (const auto& [name, content] : files) writeFileOrFail(ts_path + "/" + name, content);

  if (current_.empty()) {
    REQUIRE(::symlink(ts.c_str(), file("..data").c_str()) == 0);
    for (const auto& [name, content] : files) {
      (void)content;
      REQUIRE(::symlink(("..data/" + name).c_str(), file(name).c_str()) == 0);
      names_.push_back(name);
    }
  } else {
    std::string tmp = file("..data_tmp");
    REQUIRE(::symlink(ts.c_str(), tmp.c_str()) == 0);
    REQUIRE(::rename(tmp.c_str(), file("..data").c_str()) == 0);
    std::error_code ec;
    std::filesystem::remove_all(file(current_), ec);
    REQUIRE_FALSE(ec);
  }
  current_ = ts;
}

// ---- TLS client ----

TlsClientContext::TlsClientContext(const TlsClientOptions& o) : sni_(o.sni) {
  ctx_ = SSL_CTX_new(TLS_method());
  REQUIRE(ctx_ != nullptr);
  if (o.min_version != 0) SSL_CTX_set_min_proto_version(ctx_, o.min_version);
  if (o.max_version != 0) SSL_CTX_set_max_proto_version(ctx_, o.max_version);
  if (!o.ca_pem.empty()) {
    auto ca = certutil::certFromPem(o.ca_pem);
    REQUIRE(ca);
    REQUIRE(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), ca.value().get()) == 1);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    REQUIRE(X509_VERIFY_PARAM_set1_host(SSL_CTX_get0_param(ctx_), "localhost", 9) == 1);
  } else {
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  }
  if (!o.cert_pem.empty()) {
    auto cert = certutil::certFromPem(o.cert_pem);
    REQUIRE(cert);
    auto key = certutil::keyFromPem(o.key_pem);
    REQUIRE(key);
    REQUIRE(SSL_CTX_use_certificate(ctx_, cert.value().get()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey(ctx_, key.value().get()) == 1);
  }
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

TlsClient::TlsClient(uint16_t port, const TlsClientContext& ctx) : port_(port), ctx_(ctx) {}

TlsClient::~TlsClient() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (fd_ >= 0) ::close(fd_);
}

int tcpConnect(uint16_t port, Millis timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (rc != 0 && errno != EINPROGRESS) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  if (rc != 0) {
    pollfd p{fd, POLLOUT, 0};
    int n = 0;
    do {
      n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (n < 0 && errno == EINTR);
    int err = 0;
    socklen_t len = sizeof err;
    if (n <= 0) {
      err = ETIMEDOUT;
    } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      err = errno;
    }
    if (err != 0) {
      ::close(fd);
      errno = err;
      return -1;
    }
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

TlsClient::Io TlsClient::step(int rc) {
  if (rc > 0) return Io::kOk;
  int err = SSL_get_error(ssl_, rc);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return Io::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Io::kClosed;
    case SSL_ERROR_SYSCALL:
      if (rc == 0 || errno == ECONNRESET || errno == EPIPE) {
        error_ = rc == 0 ? "EOF" : std::strerror(errno);
        return Io::kClosed;
      }
      error_ = std::string("syscall: ") + std::strerror(errno);
      return Io::kError;
    default: {
      char buf[256];
      ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
      error_ = buf;
      ERR_clear_error();
      return Io::kError;
    }
  }
}

bool TlsClient::waitFor(Io io, Clock::time_point deadline) {
  pollfd p{fd_, static_cast<short>(io == Io::kWantWrite ? POLLOUT : POLLIN), 0};
  for (;;) {
    int n = ::poll(&p, 1, msLeft(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = "timeout";
      return false;
    }
    return true;
  }
}

bool TlsClient::connect(Millis timeout) {
  auto deadline = Clock::now() + timeout;
  fd_ = tcpConnect(port_, timeout);
  if (fd_ < 0) {
    error_ = std::string("connect: ") + std::strerror(errno);
    return false;
  }
  ssl_ = SSL_new(ctx_.get());
  SSL_set_fd(ssl_, fd_);
  if (!ctx_.sni().empty()) SSL_set_tlsext_host_name(ssl_, ctx_.sni().c_str());
  SSL_set_connect_state(ssl_);
  for (;;) {
    Io io = step(SSL_do_handshake(ssl_));
    if (io == Io::kOk) return true;
    if (io == Io::kClosed || io == Io::kError) {
      if (error_.empty()) error_ = "closed during handshake";
      long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) {
        error_ += std::string(" (verify: ") + X509_verify_cert_error_string(verify) + ")";
      }
      error_ = "handshake: " + error_;
      return false;
    }
    if (!waitFor(io, deadline)) {
      error_ = "handshake: " + error_;
      return false;
    }
  }
}

bool TlsClient::send(std::string_view bytes, Millis timeout) {
  if (ssl_ == nullptr) {
    error_ = "not connected";
    return false;
  }
  auto deadline = Clock::now() + timeout;
  size_t off = 0;
  while (off < bytes.size()) {
    size_t chunk = std::min<size_t>(bytes.size() - off, 16384);
    int rc = SSL_write(ssl_, bytes.data() + off, static_cast<int>(chunk));
    Io io = step(rc);
    if (io == Io::kOk) {
      off += static_cast<size_t>(rc);
      continue;
    }
    if (io == Io::kClosed || io == Io::kError) {
      error_ = "write: " + error_;
      return false;
    }
    if (!waitFor(io, deadline)) {
      error_ = "write: " + error_;
      return false;
    }
  }
  return true;
}

bool TlsClient::readMore(Clock::time_point deadline) {
  if (closed_ || ssl_ == nullptr) return false;
  char buf[16384];
  for (;;) {
    int rc = SSL_read(ssl_, buf, sizeof buf);
    Io io = step(rc);
    if (io == Io::kOk) {
      in_.append(buf, static_cast<size_t>(rc));
      return true;
    }
    if (io == Io::kClosed || io == Io::kError) {
      closed_ = true;
      return false;
    }
    if (!waitFor(io, deadline)) return false;
  }
}

Response TlsClient::readResponse(Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    size_t before = in_.size();
    if (auto r = takeResponse(in_, closed_)) {
      last_response_bytes_ = before - in_.size();
      return *r;
    }
    if (closed_) break;
    if (!readMore(deadline) && !closed_) {
      Response r;
      r.timed_out = true;
      if (error_.empty()) error_ = "timeout";
      return r;
    }
  }
  Response r;
  r.closed = true;
  error_ = "closed before a complete response (" + error_ + "); buffered: " + in_.substr(0, 200);
  return r;
}

Response TlsClient::request(std::string_view bytes, Millis timeout) {
  if (!send(bytes, timeout)) {
    Response r;
    r.closed = true;
    return r;
  }
  return readResponse(timeout);
}

bool TlsClient::waitClosed(Millis timeout) {
  auto deadline = Clock::now() + timeout;
  while (!closed_) {
    if (!readMore(deadline) && !closed_) return false;
  }
  return true;
}

std::string TlsClient::peerSubjectCn() const {
  bssl::UniquePtr<X509> peer(SSL_get_peer_certificate(ssl_));
  return peer ? commonName(peer.get()) : std::string();
}

std::string TlsClient::peerSerialHex() const {
  bssl::UniquePtr<X509> peer(SSL_get_peer_certificate(ssl_));
  return peer ? serialHex(peer.get()) : std::string();
}

std::string TlsClient::version() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

bool TlsClient::receivedCloseNotify() const {
  return ssl_ != nullptr && (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0;
}

std::string TlsClient::cipher() const {
  const SSL_CIPHER* c = ssl_ ? SSL_get_current_cipher(ssl_) : nullptr;
  return c ? SSL_CIPHER_get_name(c) : "";
}

uint16_t TlsClient::localPort() const {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.sin_port);
}

void requireConnect(TlsClient& c, Millis timeout) {
  bool ok = c.connect(timeout);
  INFO("TLS connect failed: " << c.error());
  REQUIRE(ok);
}

std::optional<Response> takeResponse(std::string& buffer, bool eof) {
  size_t head_end = buffer.find("\r\n\r\n");
  if (head_end == std::string::npos) return std::nullopt;
  Response r;
  std::istringstream head(buffer.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  // "HTTP/1.1 200 OK"
  if (line.size() < 12 || line.compare(0, 5, "HTTP/") != 0) return std::nullopt;
  r.status = std::atoi(line.c_str() + 9);
  r.reason = line.size() > 13 ? line.substr(13) : "";
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    size_t b = value.find_first_not_of(" \t");
    value = b == std::string::npos ? "" : value.substr(b);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    r.headers.emplace_back(line.substr(0, colon), value);
  }
  size_t pos = head_end + 4;
  bool no_body = r.status / 100 == 1 || r.status == 204 || r.status == 304;
  auto te = r.header("Transfer-Encoding");
  auto cl = r.header("Content-Length");
  if (no_body) {
    // nothing
  } else if (te && lower(*te).find("chunked") != std::string::npos) {
    r.chunked = true;
    for (;;) {
      size_t eol = buffer.find("\r\n", pos);
      if (eol == std::string::npos) return std::nullopt;
      size_t size = std::strtoul(buffer.c_str() + pos, nullptr, 16);
      pos = eol + 2;
      if (size == 0) {
        size_t end = buffer.find("\r\n", pos);  // no trailers expected
        if (end == std::string::npos) return std::nullopt;
        pos = end + 2;
        break;
      }
      if (buffer.size() < pos + size + 2) return std::nullopt;
      r.body.append(buffer, pos, size);
      pos += size + 2;
    }
  } else if (cl) {
    size_t n = std::strtoul(cl->c_str(), nullptr, 10);
    if (buffer.size() < pos + n) return std::nullopt;
    r.body = buffer.substr(pos, n);
    pos += n;
  } else {
    if (!eof) return std::nullopt;
    r.body = buffer.substr(pos);
    pos = buffer.size();
  }
  r.complete = true;
  buffer.erase(0, pos);
  return r;
}

// ---- admin ----

Response adminGet(uint16_t admin_port, const std::string& path, Millis timeout) {
  Client c(admin_port, timeout);
  REQUIRE(c.send("GET " + path + " HTTP/1.1\r\nHost: admin\r\n\r\n", timeout));
  return c.readResponse(timeout);
}

uint16_t adminPortFromReadyFile(const TempDir& dir, const std::string& name) {
  std::string text = readFile(dir.file(name + ".ready"));
  for (const std::string& l : lines(text)) {
    if (l.rfind("admin=", 0) == 0) return portOf(l.substr(6));
  }
  FAIL("no admin= line in the ready file: " << text);
  return 0;
}

std::map<std::string, double> parseMetrics(const std::string& text) {
  std::map<std::string, double> out;
  for (const std::string& l : lines(text)) {
    if (l[0] == '#') continue;
    // The value follows the last space outside the label braces.
    size_t brace_end = l.rfind('}');
    size_t space = l.find(' ', brace_end == std::string::npos ? 0 : brace_end);
    if (space == std::string::npos) continue;
    std::string value = l.substr(space + 1);
    size_t more = value.find(' ');  // an optional timestamp
    if (more != std::string::npos) value.resize(more);
    double v = 0;
    if (value == "+Inf") {
      v = HUGE_VAL;
    } else if (value == "-Inf") {
      v = -HUGE_VAL;
    } else {
      v = std::strtod(value.c_str(), nullptr);
    }
    out[l.substr(0, space)] = v;
  }
  return out;
}

std::optional<double> metric(const std::map<std::string, double>& metrics,
                             const std::string& series) {
  auto it = metrics.find(series);
  if (it == metrics.end()) return std::nullopt;
  return it->second;
}

// ---- OpsStack ----

std::string sslTable(const std::string& cert_path, const std::string& key_path,
                     const std::string& more) {
  return "[ssl]\ncertificate = \"" + cert_path + "\"\nkey = \"" + key_path + "\"\n" + more + "\n";
}

OpsStack::OpsStack(OpsOptions o)
    : leaf(pki.server("apm-server")),
      cert_path(dir.write("server.crt", leaf.cert)),
      key_path(dir.write("server.key", leaf.key)),
      demo(dir) {
  ProxyConfig config = o.config;
  config.upstreamPort(o.upstream_port != 0 ? o.upstream_port : demo.port());
  std::string extra;
  if (o.tls) extra += sslTable(cert_path, key_path, o.ssl_extra);
  if (o.admin) extra += "[admin]\nhost = \"127.0.0.1:0\"\n" + o.admin_extra + "\n";
  config.extra = extra + o.extra;
  proxy_ = std::make_unique<ProxyProcess>(dir, config, "proxy", o.proxy_env);
  if (o.admin) admin_port_ = adminPortFromReadyFile(dir);
  TlsClientOptions co;
  co.ca_pem = pki.caPem();
  client_ = std::make_unique<TlsClientContext>(co);
}

std::map<std::string, double> OpsStack::metrics() const {
  Response r = adminGet(admin_port_, "/metrics");
  INFO("GET /metrics: " << r.status << "\n" << r.body);
  REQUIRE(r.status == 200);
  return parseMetrics(r.body);
}

// ---- JSON ----

namespace {

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : t_(text) {}
  std::optional<JsonValue> parse() {
    JsonValue v;
    if (!value(v, 0)) return std::nullopt;
    space();
    if (p_ != t_.size()) return std::nullopt;
    return v;
  }

 private:
  void space() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r'))
      ++p_;
  }
  bool literal(std::string_view word) {
    if (t_.substr(p_, word.size()) != word) return false;
    p_ += word.size();
    return true;
  }
  bool str(std::string& out) {
    if (p_ >= t_.size() || t_[p_] != '"') return false;
    ++p_;
    while (p_ < t_.size()) {
      char c = t_[p_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (p_ >= t_.size()) return false;
      char e = t_[p_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          if (p_ + 4 > t_.size()) return false;
          unsigned cp = 0;
          for (int i = 0; i < 4; ++i) {
            char h = t_[p_++];
            cp <<= 4;
            if (h >= '0' && h <= '9') {
              cp |= static_cast<unsigned>(h - '0');
            } else if (h >= 'a' && h <= 'f') {
              cp |= static_cast<unsigned>(h - 'a' + 10);
            } else if (h >= 'A' && h <= 'F') {
              cp |= static_cast<unsigned>(h - 'A' + 10);
            } else {
              return false;
            }
          }
          if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
          } else {
            out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
          }
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }
  bool value(JsonValue& v, int depth) {
    if (depth > 32) return false;
    space();
    if (p_ >= t_.size()) return false;
    char c = t_[p_];
    if (c == '{') {
      v.type = JsonValue::Type::kObject;
      ++p_;
      space();
      if (p_ < t_.size() && t_[p_] == '}') {
        ++p_;
        return true;
      }
      for (;;) {
        space();
        std::string key;
        if (!str(key)) return false;
        space();
        if (p_ >= t_.size() || t_[p_] != ':') return false;
        ++p_;
        JsonValue member;
        if (!value(member, depth + 1)) return false;
        v.object.emplace_back(std::move(key), std::move(member));
        space();
        if (p_ < t_.size() && t_[p_] == ',') {
          ++p_;
          continue;
        }
        if (p_ < t_.size() && t_[p_] == '}') {
          ++p_;
          return true;
        }
        return false;
      }
    }
    if (c == '[') {
      v.type = JsonValue::Type::kArray;
      ++p_;
      space();
      if (p_ < t_.size() && t_[p_] == ']') {
        ++p_;
        return true;
      }
      for (;;) {
        JsonValue item;
        if (!value(item, depth + 1)) return false;
        v.array.push_back(std::move(item));
        space();
        if (p_ < t_.size() && t_[p_] == ',') {
          ++p_;
          continue;
        }
        if (p_ < t_.size() && t_[p_] == ']') {
          ++p_;
          return true;
        }
        return false;
      }
    }
    if (c == '"') {
      v.type = JsonValue::Type::kString;
      return str(v.string);
    }
    if (literal("true")) {
      v.type = JsonValue::Type::kBool;
      v.boolean = true;
      return true;
    }
    if (literal("false")) {
      v.type = JsonValue::Type::kBool;
      return true;
    }
    if (literal("null")) return true;
    size_t start = p_;
    if (p_ < t_.size() && t_[p_] == '-') ++p_;
    while (p_ < t_.size() && (std::isdigit(static_cast<unsigned char>(t_[p_])) || t_[p_] == '.' ||
                              t_[p_] == 'e' || t_[p_] == 'E' || t_[p_] == '+' || t_[p_] == '-'))
      ++p_;
    if (p_ == start) return false;
    std::string num(t_.substr(start, p_ - start));
    char* end = nullptr;
    v.type = JsonValue::Type::kNumber;
    v.number = std::strtod(num.c_str(), &end);
    return end == num.c_str() + num.size();
  }

  std::string_view t_;
  size_t p_ = 0;
};

}  // namespace

bool JsonValue::has(const std::string& key) const {
  for (const auto& [k, v] : object) {
    if (k == key) return true;
  }
  return false;
}

const JsonValue& JsonValue::get(const std::string& key) const {
  static const JsonValue kNull;
  for (const auto& [k, v] : object) {
    if (k == key) return v;
  }
  return kNull;
}

std::optional<JsonValue> parseJson(std::string_view text) { return JsonParser(text).parse(); }

// ---- misc ----

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

size_t countOf(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos;
       p = haystack.find(needle, p + needle.size()))
    ++n;
  return n;
}

size_t threadCount(pid_t pid) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    (void)entry;
    ++n;
  }
  return n;
}

}  // namespace proxy::integration::ops
