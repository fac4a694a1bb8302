#include "tests/integration/tls_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/base64.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace proxy::integration::tls {
namespace {

using Clock = std::chrono::steady_clock;
constexpr Millis kPollInterval{5};

std::string sha256(const uint8_t* data, size_t len) {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(data, len, digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

std::string derOf(X509* cert) {
  uint8_t* der = nullptr;
  int len = i2d_X509(cert, &der);
  REQUIRE(len > 0);
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

BioPtr memBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Every certificate of a PEM text, in order.
std::vector<certutil::X509Ptr> certsFromPem(const std::string& pem) {
  std::vector<certutil::X509Ptr> out;
  BioPtr bio = memBio(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();  // the loop ends on a "no start line" error
  return out;
}

bool startsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

// ---- certificates ----

std::string Minted::certPem() const { return certutil::certToPem(cert.get()); }

std::string Minted::keyPem(const std::string& passphrase) const {
  auto pem = certutil::keyToPem(key.get(), passphrase);
  INFO((pem ? "" : pem.status().message()));
  REQUIRE(pem.isOk());
  return pem.value();
}

std::string Minted::spkiSha256() const {
  uint8_t* der = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert.get()), &der);
  REQUIRE(len > 0);
  std::string digest = sha256(der, static_cast<size_t>(len));
  OPENSSL_free(der);
  std::string b64(((digest.size() + 2) / 3) * 4 + 1, '\0');
  size_t n = EVP_EncodeBlock(reinterpret_cast<uint8_t*>(b64.data()),
                             reinterpret_cast<const uint8_t*>(digest.data()), digest.size());
  b64.resize(n);
  return b64;
}

std::string Minted::derSha256Hex() const {
  std::string der = derOf(cert.get());
  std::string digest = sha256(reinterpret_cast<const uint8_t*>(der.data()), der.size());
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (char c : digest) {
    auto b = static_cast<uint8_t>(c);
    hex += kHex[b >> 4];
    hex += kHex[b & 0xf];
  }
  return hex;
}

Minted mintCa(const std::string& cn, KeyType key_type) {
  CertSpec spec;
  spec.subject = "CN=" + cn;
  spec.is_ca = true;
  auto issued = certutil::selfSigned(spec, key_type);
  INFO((issued ? "" : issued.status().message()));
  REQUIRE(issued.isOk());
  return Minted{std::move(issued.value().cert), std::move(issued.value().key)};
}

Minted mintIssued(const CertSpec& spec, const Minted& issuer, KeyType key_type) {
  auto issued = certutil::issue(spec, key_type, issuer.cert.get(), issuer.key.get());
  INFO((issued ? "" : issued.status().message()));
  REQUIRE(issued.isOk());
  return Minted{std::move(issued.value().cert), std::move(issued.value().key)};
}

CertSpec clientSpec(const std::string& subject) {
  CertSpec spec;
  spec.subject = subject;
  spec.client_auth = true;
  return spec;
}

CertSpec ServerPki::defaultLeafSpec() {
  CertSpec spec;
  spec.subject = "CN=localhost";
  spec.server_auth = true;
  spec.dns = {"localhost"};
  spec.ips = {"127.0.0.1"};
  return spec;
}

namespace {
CertSpec intermediateSpec() {
  CertSpec spec;
  spec.subject = "CN=Test Intermediate CA";
  spec.is_ca = true;
  spec.path_len = 0;
  return spec;
}
}  // namespace

ServerPki::ServerPki(const TempDir& dir, KeyType leaf_key, const CertSpec& leaf_spec)
    : root(mintCa("Test Root CA")),
      intermediate(mintIssued(intermediateSpec(), root)),
      leaf(mintIssued(leaf_spec, intermediate, leaf_key)) {
  root_path = dir.write("root.crt", root.certPem());
  chain_path = dir.write("server.crt", leaf.certPem() + intermediate.certPem());
  key_path = dir.write("server.key", leaf.keyPem());
}

std::string ServerPki::sslLines() const {
  return "certificate = " + quoted(chain_path) + "\nkey = " + quoted(key_path) + "\n";
}

std::pair<std::string, std::string> writePair(const TempDir& dir, const std::string& name,
                                              const Minted& minted) {
  return {dir.write(name + ".crt", minted.certPem()), dir.write(name + ".key", minted.keyPem())};
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string quotedList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + quoted(items[i]);
  return out + "]";
}

// ---- the proxy ----

namespace {
ProxyConfig stackConfig(const TlsStackOptions& options, const ServerPki& pki, uint16_t demo_port) {
  ProxyConfig config;
  config.server = options.server;
  config.upstreamPort(demo_port);
  bool names_files = startsWith(options.ssl, "certificate =") ||
                     options.ssl.find("\ncertificate =") != std::string::npos;
  config.extra = "[ssl]\n" + (names_files ? "" : pki.sslLines()) + options.ssl + "\n" +
                 options.more_tables + "\n[admin]\nhost = \"127.0.0.1:0\"\n";
  return config;
}
}  // namespace

TlsStack::TlsStack(const TlsStackOptions& options, KeyType leaf_key)
    : pki(dir, leaf_key), demo(dir) {
  proxy = std::make_unique<ProxyProcess>(dir, stackConfig(options, pki, demo.port()));
  std::string ready = readFile(dir.file("proxy.ready"));
  auto at = ready.find("admin=");
  INFO("ready file: " << ready);
  REQUIRE(at != std::string::npos);
  auto end = ready.find('\n', at);
  admin_port_ = portOf(ready.substr(at + 6, end == std::string::npos ? end : end - at - 6));
}

ClientOptions TlsStack::clientOptions() const {
  ClientOptions options;
  options.trust_pem = pki.root.certPem();
  return options;
}

std::string TlsStack::expectFailureRecorded(const std::string& reason, double count) {
  std::string line = waitForFailureLog(proxy->process(), reason);
  INFO("proxy stderr:\n" << proxy->process().stderrText());
  CHECK(!line.empty());
  CHECK(waitForHandshakeFailures(admin_port_, reason, count) == count);
  return line;
}

std::string fetchMetrics(uint16_t admin_port) {
  Client client(admin_port);
  if (!client.send(httpRequest("GET", "/metrics"))) return "";
  Response r = client.readResponse(Millis{5000});
  return r.status == 200 ? r.body : "";
}

std::string toolPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t pos = 0;
  while (pos <= dirs.size()) {
    size_t end = dirs.find(':', pos);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(pos, end - pos) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    pos = end + 1;
  }
  FAIL("the test needs '" << name << "' on PATH");
  return "";
}

double metricValue(const std::string& metrics, const std::string& sample) {
  size_t pos = 0;
  while (pos < metrics.size()) {
    size_t end = metrics.find('\n', pos);
    if (end == std::string::npos) end = metrics.size();
    std::string line = metrics.substr(pos, end - pos);
    if (startsWith(line, sample + " "))
      return std::strtod(line.c_str() + sample.size() + 1, nullptr);
    pos = end + 1;
  }
  return -1;
}

double handshakeFailures(uint16_t admin_port, const std::string& reason) {
  return metricValue(fetchMetrics(admin_port),
                     "apm_tls_proxy_tls_handshake_failures_total{reason=\"" + reason + "\"}");
}

double sessionsResumed(uint16_t admin_port) {
  return metricValue(fetchMetrics(admin_port), "apm_tls_proxy_tls_sessions_resumed_total");
}

double waitForHandshakeFailures(uint16_t admin_port, const std::string& reason, double at_least,
                                Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    double value = handshakeFailures(admin_port, reason);
    if (value >= at_least || Clock::now() >= deadline) return value;
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::string waitForFailureLog(Process& proxy, const std::string& reason, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    std::string text = proxy.stderrText();
    size_t pos = 0;
    while ((pos = text.find("msg=\"tls handshake failed\"", pos)) != std::string::npos) {
      size_t begin = text.rfind('\n', pos);
      begin = begin == std::string::npos ? 0 : begin + 1;
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) break;  // a line still being written
      std::string line = text.substr(begin, end - begin);
      if ((line + " ").find(" reason=" + reason + " ") != std::string::npos) return line;
      pos = end;
    }
    if (Clock::now() >= deadline) return "";
    std::this_thread::sleep_for(kPollInterval);
  }
}

// ---- the BoringSSL client ----

TlsClient::TlsClient(uint16_t port, ClientOptions options) : options_(std::move(options)) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd_ >= 0);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(options_.timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((options_.timeout.count() % 1000) * 1000);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  INFO("connect to 127.0.0.1:" << port << ": " << std::strerror(errno));
  REQUIRE(rc == 0);

  ctx_ = SSL_CTX_new(TLS_method());
  REQUIRE(ctx_ != nullptr);
  REQUIRE(SSL_CTX_set_min_proto_version(ctx_, options_.min_version) == 1);
  REQUIRE(SSL_CTX_set_max_proto_version(ctx_, options_.max_version) == 1);
  if (!options_.ciphers.empty()) {
    INFO("client cipher list " << options_.ciphers);
    REQUIRE(SSL_CTX_set_strict_cipher_list(ctx_, options_.ciphers.c_str()) == 1);
  }
  if (!options_.curves.empty()) {
    INFO("client curves " << options_.curves);
    REQUIRE(SSL_CTX_set1_curves_list(ctx_, options_.curves.c_str()) == 1);
  }
  if (!options_.trust_pem.empty()) {
    auto roots = certsFromPem(options_.trust_pem);
    REQUIRE(!roots.empty());
    for (auto& root : roots) REQUIRE(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), root.get()));
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (!options_.verify_ip.empty()) {
      REQUIRE(X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx_), options_.verify_ip.c_str()));
    }
  } else {
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  }
  if (!options_.cert_pem.empty()) {
    auto chain = certsFromPem(options_.cert_pem);
    REQUIRE(!chain.empty());
    REQUIRE(SSL_CTX_use_certificate(ctx_, chain[0].get()) == 1);
    for (size_t i = 1; i < chain.size(); ++i)
      REQUIRE(SSL_CTX_add1_chain_cert(ctx_, chain[i].get()));
    BioPtr bio = memBio(options_.key_pem);
    certutil::PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    REQUIRE(key != nullptr);
    REQUIRE(SSL_CTX_use_PrivateKey(ctx_, key.get()) == 1);
  }
  if (!options_.alpn.empty()) {
    std::string wire;
    for (const auto& proto : options_.alpn) {
      wire += static_cast<char>(proto.size());
      wire += proto;
    }
    REQUIRE(SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const uint8_t*>(wire.data()),
                                    wire.size()) == 0);
  }
  SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_sess_set_new_cb(ctx_, &TlsClient::onNewSession);

  ssl_ = SSL_new(ctx_);
  REQUIRE(ssl_ != nullptr);
  SSL_set_ex_data(ssl_, 0, this);  // index 0 is the application's (SSL_set_app_data)
  if (!options_.sni.empty()) REQUIRE(SSL_set_tlsext_host_name(ssl_, options_.sni.c_str()) == 1);
  if (options_.session) REQUIRE(SSL_set_session(ssl_, options_.session.get()) == 1);
  REQUIRE(SSL_set_fd(ssl_, fd_) == 1);
  SSL_set_connect_state(ssl_);
}

TlsClient::~TlsClient() {
  if (ssl_ != nullptr) {
    if (error_.empty() && SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);  // close_notify
    SSL_free(ssl_);
  }
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
  ERR_clear_error();
}

int TlsClient::onNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<TlsClient*>(SSL_get_ex_data(ssl, 0));
  self->session_ = SessionPtr(session, SessionDeleter{});
  return 1;  // we took the reference
}

void TlsClient::recordError(int ret, const char* what) {
  int saved_errno = errno;
  int kind = SSL_get_error(ssl_, ret);
  std::string detail;
  switch (kind) {
    case SSL_ERROR_ZERO_RETURN:
      detail = "the server sent close_notify";
      break;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      detail = "timed out after " + std::to_string(options_.timeout.count()) + " ms";
      break;
    case SSL_ERROR_SYSCALL:
      detail = saved_errno == EAGAIN || saved_errno == EWOULDBLOCK
                   ? "timed out after " + std::to_string(options_.timeout.count()) + " ms"
               : saved_errno == 0 ? "the server closed the connection"
                                  : std::string("socket error: ") + std::strerror(saved_errno);
      break;
    default:
      break;
  }
  while (uint32_t e = ERR_get_error()) {
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET &&
        ERR_GET_REASON(e) < SSL_AD_REASON_OFFSET + 256 && alert_ < 0) {
      alert_ = ERR_GET_REASON(e) - SSL_AD_REASON_OFFSET;
    }
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    detail += (detail.empty() ? "" : "; ") + std::string(buf);
  }
  if (error_.empty()) error_ = std::string(what) + ": " + detail;
}

bool TlsClient::handshake() {
  int ret = SSL_do_handshake(ssl_);
  if (ret == 1) return true;
  recordError(ret, "handshake");
  return false;
}

bool TlsClient::send(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    int ret = SSL_write(ssl_, bytes.data() + off, static_cast<int>(bytes.size() - off));
    if (ret <= 0) {
      recordError(ret, "write");
      return false;
    }
    off += static_cast<size_t>(ret);
  }
  return true;
}

bool TlsClient::readSome(std::string& into) {
  if (eof_) return false;
  char buf[16384];
  int ret = SSL_read(ssl_, buf, sizeof buf);
  if (ret > 0) {
    into.append(buf, static_cast<size_t>(ret));
    return true;
  }
  if (SSL_get_error(ssl_, ret) == SSL_ERROR_ZERO_RETURN) {
    eof_ = true;
    return false;
  }
  recordError(ret, "read");
  eof_ = true;
  return false;
}

Response TlsClient::readResponse() {
  Response r;
  size_t head_end;
  while ((head_end = in_.find("\r\n\r\n")) == std::string::npos) {
    if (!readSome(in_)) {
      r.closed = true;
      return r;
    }
  }
  std::string head = in_.substr(0, head_end);
  in_.erase(0, head_end + 4);
  size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12 || !startsWith(status_line, "HTTP/1.")) return r;
  r.status = std::atoi(status_line.c_str() + 9);
  r.reason = status_line.size() > 13 ? status_line.substr(13) : "";
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(pos, end - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      size_t v = line.find_first_not_of(" \t", colon + 1);
      r.headers.emplace_back(line.substr(0, colon), v == std::string::npos ? "" : line.substr(v));
    }
    pos = end + 2;
  }
  auto te = r.header("Transfer-Encoding");
  auto cl = r.header("Content-Length");
  if (te && te->find("chunked") != std::string::npos) {
    r.chunked = true;
    for (;;) {
      size_t eol;
      while ((eol = in_.find("\r\n")) == std::string::npos) {
        if (!readSome(in_)) return r;
      }
      size_t size = std::strtoul(in_.c_str(), nullptr, 16);
      if (size == 0) {
        while (in_.find("\r\n\r\n", eol) == std::string::npos) {  // trailers, then a blank line
          if (!readSome(in_)) return r;
        }
        in_.clear();
        r.complete = true;
        return r;
      }
      while (in_.size() < eol + 2 + size + 2) {
        if (!readSome(in_)) return r;
      }
      r.body += in_.substr(eol + 2, size);
      in_.erase(0, eol + 2 + size + 2);
    }
  }
  if (cl) {
    size_t want = std::strtoul(cl->c_str(), nullptr, 10);
    while (in_.size() < want) {
      if (!readSome(in_)) return r;
    }
    r.body = in_.substr(0, want);
    in_.erase(0, want);
    r.complete = true;
    return r;
  }
  while (readSome(in_)) {
  }
  r.body = std::move(in_);
  in_.clear();
  r.closed = true;
  r.complete = true;
  return r;
}

Response TlsClient::exchange(const std::string& request) {
  if (!handshake() || !send(request)) return Response{};
  return readResponse();
}

bool TlsClient::staysOpen(Millis duration) {
  pollfd p{fd_, POLLIN, 0};
  auto deadline = Clock::now() + duration;
  for (;;) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) return true;
    int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) return true;
    // Readable: post-handshake messages (TLS 1.3 tickets) are fine, anything else is not.
    int flags = ::fcntl(fd_, F_GETFL);
    ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
    char byte;
    int ret = SSL_read(ssl_, &byte, 1);
    int kind = SSL_get_error(ssl_, ret);
    ::fcntl(fd_, F_SETFL, flags);
    if (ret > 0) {
      in_.push_back(byte);
      return false;
    }
    if (kind != SSL_ERROR_WANT_READ) {
      recordError(ret, "read");
      eof_ = true;
      return false;
    }
  }
}

uint16_t TlsClient::version() const { return SSL_version(ssl_); }
std::string TlsClient::versionName() const { return SSL_get_version(ssl_); }

std::string TlsClient::cipher() const {
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
  return c ? SSL_CIPHER_get_name(c) : "";
}

std::string TlsClient::alpn() const {
  const uint8_t* data = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string TlsClient::curve() const {
  const char* name = SSL_get_curve_name(SSL_get_curve_id(ssl_));
  return name ? name : "";
}

size_t TlsClient::peerChainLength() const {
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl_);
  return chain ? sk_X509_num(chain) : 0;
}

long TlsClient::verifyResult() const { return SSL_get_verify_result(ssl_); }
bool TlsClient::sessionReused() const { return SSL_session_reused(ssl_) == 1; }

std::string TlsClient::alertName() const {
  return alert_ < 0 ? "(none)" : SSL_alert_desc_string_long(alert_);
}

}  // namespace proxy::integration::tls
