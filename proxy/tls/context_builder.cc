// TlsContext::create(): the ContextBuilder turns ServerOptions into one SSL_CTX (chain, key, CAs
// and pins, protocols, ciphers, curves, ALPN, session tickets), collecting every problem
// rather than stopping at the first.
#include <openssl/base64.h>
#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pool.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <cstring>

#include "proxy/common/check.h"
#include "proxy/tls/apm_names.h"
#include "proxy/tls/identity.h"
#include "proxy/tls/pem.h"
#include "proxy/tls/ticket_keys.h"
#include "proxy/tls/tls_context.h"
#include "proxy/tls/tls_session.h"

namespace proxy::tls {

using pem::BioPtr;
using pem::drainErrors;
using pem::formatTime;
using pem::infoOf;
using pem::isInlinePem;
using pem::modeString;
using pem::parseCertificates;
using pem::passphraseCallback;
using pem::PkeyPtr;
using pem::readFile;
using pem::trim;
using pem::unindent;
using pem::X509Ptr;

namespace {

// Debian's (and most distributions') bundle of the system roots. BoringSSL's
// SSL_CTX_set_default_verify_paths looks in OpenSSL's compiled-in directory, which
// Android's build does not share, so the bundle is loaded by path.
constexpr const char* kSystemRootsFile = "/etc/ssl/certs/ca-certificates.crt";
// Finds `proto` among the client's ALPN offers (RFC 7301 §3.1 wire format).
bool alpnOffered(const uint8_t* in, unsigned in_len, std::string_view proto, const uint8_t** out,
                 uint8_t* out_len) {
  for (unsigned i = 0; i < in_len;) {
    unsigned len = in[i];
    if (i + 1 + len > in_len) break;
    if (len == proto.size() && std::memcmp(in + i + 1, proto.data(), len) == 0) {
      *out = in + i + 1;
      *out_len = static_cast<uint8_t>(len);
      return true;
    }
    i += 1 + len;
  }
  return false;
}

int alpnSelect(SSL* /*ssl*/, const uint8_t** out, uint8_t* out_len, const uint8_t* in,
               unsigned in_len, void* arg) {
  // `arg` is non-null when HTTP/2 is on: then h2 wins whenever the client offers it
  // (OpenTelemetry's gRPC exporters offer only h2; curl offers both). A client that
  // offers neither (e.g. an old protocol alone) gets no ALPN extension back rather than
  // a no_application_protocol alert: RFC 7301 §3.2 allows that, and every APM agent
  // falls back to HTTP/1.1 when nothing was selected.
  if (arg != nullptr && alpnOffered(in, in_len, "h2", out, out_len)) return SSL_TLSEXT_ERR_OK;
  if (alpnOffered(in, in_len, "http/1.1", out, out_len)) return SSL_TLSEXT_ERR_OK;
  return SSL_TLSEXT_ERR_NOACK;
}

int ticketKeyCallback(SSL* ssl, uint8_t* key_name, uint8_t* iv, EVP_CIPHER_CTX* cipher,
                      HMAC_CTX* hmac, int encrypt) {
  // The SSL_CTX's ex_data 0 (BoringSSL's reserved app-data slot) is its TlsContext; every
  // TlsSession holds a reference on that context, so it outlives the handshake.
  auto* context = static_cast<TlsContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), 0));
  if (context == nullptr) return encrypt ? -1 : 0;
  return context->ticketKeys()->handleTicket(key_name, iv, cipher, hmac, encrypt);
}

}  // namespace

// Builds one TlsContext, collecting every problem rather than stopping at the first.
struct ContextBuilder {
  explicit ContextBuilder(const ServerOptions& options) : ssl(options) {}
  const ServerOptions& ssl;
  std::shared_ptr<TlsContext> ctx;
  std::vector<Problem> problems;
  std::vector<Problem> warnings;
  std::vector<X509Ptr> chain;  // leaf first
  std::vector<X509Ptr> cas;
  std::string cert_source;  // path or "inline", for messages
  std::string key_source;

  void error(const std::string& key, std::string message) {
    problems.push_back(Problem{key, std::move(message)});
  }
  void warn(const std::string& key, std::string message) {
    warnings.push_back(Problem{key, std::move(message), true});
  }

  // Reads a "path or inline PEM" value. `source` becomes the path or "inline".
  bool readValue(const std::string& key, const std::string& value, std::string& text,
                 std::string& source, Problem* element_problem = nullptr) {
    if (isInlinePem(value)) {
      text = unindent(value);
      source = "inline";
      return true;
    }
    source = value;
    auto r = readFile(value);
    if (!r) {
      if (element_problem) {
        element_problem->message = r.status().message();
        problems.push_back(*element_problem);
      } else {
        error(key, r.status().message());
      }
      return false;
    }
    text = std::move(r).value();
    ctx->files_.push_back(value);
    return true;
  }

  void loadCertificate() {
    if (trim(ssl.certificate).empty()) {
      error("ssl.certificate", "TLS is enabled but no certificate is set (a file path or PEM)");
      return;
    }
    std::string pem;
    if (!readValue("ssl.certificate", ssl.certificate, pem, cert_source)) return;
    std::string parse_error;
    chain = parseCertificates(pem, parse_error);
    if (!parse_error.empty()) {
      error("ssl.certificate",
            "cannot parse the certificate in " + describe(cert_source) + ": " + parse_error);
      chain.clear();
      return;
    }
    if (chain.empty()) {
      error("ssl.certificate", "no PEM CERTIFICATE block found in " + describe(cert_source));
      return;
    }
    ctx->server_cert_ = infoOf(chain[0].get(), cert_source);
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    const CertificateInfo& info = ctx->server_cert_;
    if (info.not_after < now) {
      warn("ssl.certificate", "the server certificate " + info.subject + " in " +
                                  describe(cert_source) + " expired on " +
                                  formatTime(info.not_after) + "; clients will reject it");
    } else if (info.not_before > now) {
      warn("ssl.certificate", "the server certificate " + info.subject + " in " +
                                  describe(cert_source) + " is not valid before " +
                                  formatTime(info.not_before) + "; clients will reject it");
    }
  }

  static std::string describe(const std::string& source) {
    return source == "inline" ? std::string("the inline PEM value") : source;
  }

  Result<std::string> passphrase() {
    if (!ssl.key_passphrase_path.empty()) {
      if (!ssl.key_passphrase.empty()) {
        warn("ssl.key_passphrase_path",
             "both ssl.key_passphrase and ssl.key_passphrase_path are set; using the file");
      }
      auto r = readFile(ssl.key_passphrase_path);
      if (!r) return r.status();
      ctx->files_.push_back(ssl.key_passphrase_path);
      std::string p = std::move(r).value();
      while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
      return p;
    }
    return ssl.key_passphrase;
  }

  // A key file every local user can read is a key every local user has. Kubernetes
  // mounts Secrets 0644 unless defaultMode says otherwise (deploy/ uses 0440).
  void warnIfWorldReadable() {
    if (isInlinePem(ssl.key)) return;
    struct stat st {};
    if (::stat(ssl.key.c_str(), &st) == 0 && (st.st_mode & S_IROTH) != 0) {
      warn("ssl.key", "the private key file " + ssl.key + " is readable by every user (mode " +
                          modeString(st.st_mode) + "); make it 0600 or 0640");
    }
  }

  PkeyPtr loadKey() {
    if (trim(ssl.key).empty()) {
      error("ssl.key", "TLS is enabled but no private key is set (a file path or PEM)");
      return nullptr;
    }
    auto pass = passphrase();
    if (!pass) {
      error("ssl.key_passphrase_path", pass.status().message());
      return nullptr;
    }
    std::string pem;
    if (!readValue("ssl.key", ssl.key, pem, key_source)) return nullptr;
    warnIfWorldReadable();
    bool encrypted = pem.find("ENCRYPTED PRIVATE KEY") != std::string::npos ||
                     pem.find("Proc-Type: 4,ENCRYPTED") != std::string::npos;
    if (encrypted && pass.value().empty()) {
      error("ssl.key", "the private key in " + describe(key_source) +
                           " is encrypted; set ssl.key_passphrase or ssl.key_passphrase_path");
      return nullptr;
    }
    BioPtr bio(BIO_new_mem_buf(pem.data(), pem.size()));
    ERR_clear_error();
    // PEM_read_bio_PrivateKey reads PKCS#1, SEC1, PKCS#8, encrypted PKCS#8 and legacy
    // Proc-Type encrypted blocks alike; our callback never prompts on a terminal.
    PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, passphraseCallback,
                                        const_cast<std::string*>(&pass.value())));
    if (!key) {
      uint32_t e = ERR_peek_last_error();
      std::string detail = drainErrors();
      if (encrypted) {
        error("ssl.key", "cannot decrypt the private key in " + describe(key_source) +
                             ": wrong passphrase (" + detail + ")");
      } else if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        error("ssl.key", "no PEM private key block found in " + describe(key_source));
      } else {
        error("ssl.key", "cannot parse the private key in " + describe(key_source) + ": " + detail);
      }
      return nullptr;
    }
    return key;
  }

  void loadCertificateAuthorities() {
    X509_STORE* store = ctx->store_;
    for (size_t i = 0; i < ssl.certificate_authorities.size(); ++i) {
      const std::string& value = ssl.certificate_authorities[i];
      Problem where = listProblem("ssl.certificate_authorities", i, std::string());
      std::string pem, source;
      if (!readValue("", value, pem, source, &where)) continue;
      std::string parse_error;
      auto certs = parseCertificates(pem, parse_error);
      if (!parse_error.empty() || certs.empty()) {
        where.message =
            parse_error.empty()
                ? "no PEM CERTIFICATE block found in " + describe(source)
                : "cannot parse the CA certificate in " + describe(source) + ": " + parse_error;
        problems.push_back(where);
        continue;
      }
      int64_t now = static_cast<int64_t>(std::time(nullptr));
      for (auto& cert : certs) {
        CertificateInfo info = infoOf(cert.get(), source);
        if (info.not_after < now) {
          where.message = "the CA certificate " + info.subject + " in " + describe(source) +
                          " expired on " + formatTime(info.not_after) +
                          "; client certificates issued by it will not verify";
          where.warning = true;
          warnings.push_back(where);
        }
        ctx->cas_.push_back(std::move(info));
        // Adding the same CA twice is harmless; X509_STORE reports it as an error only in
        // old OpenSSL versions.
        X509_STORE_add_cert(store, cert.get());
        ERR_clear_error();
        cas.push_back(std::move(cert));
      }
    }
  }

  // Serves the leaf, then the intermediates from the same file (as APM Server does).
  void useChainAndKey(EVP_PKEY* key) {
    std::vector<CRYPTO_BUFFER*> buffers;
    for (auto& cert : chain) {
      uint8_t* der = nullptr;
      int len = i2d_X509(cert.get(), &der);
      CRYPTO_BUFFER* b =
          len > 0 ? CRYPTO_BUFFER_new(der, static_cast<size_t>(len), nullptr) : nullptr;
      OPENSSL_free(der);
      if (b != nullptr) buffers.push_back(b);
    }
    ERR_clear_error();
    if (buffers.size() != chain.size() ||
        SSL_CTX_set_chain_and_key(ctx->ctx_, buffers.data(), buffers.size(), key, nullptr) != 1) {
      error("ssl.certificate", "cannot use the certificate in " + describe(cert_source) +
                                   " with the private key in " + describe(key_source) + ": " +
                                   drainErrors());
    }
    for (CRYPTO_BUFFER* b : buffers) CRYPTO_BUFFER_free(b);  // the SSL_CTX holds its own
  }

  void configureClientAuth() {
    ClientAuth mode = effectiveClientAuth(ssl);
    ctx->client_auth_ = mode;
    for (size_t i = 0; i < ssl.ca_sha256.size(); ++i) {
      const std::string& pin = ssl.ca_sha256[i];
      std::array<uint8_t, 32> digest{};
      size_t max_len = 0;
      size_t len = 0;
      std::vector<uint8_t> buf;
      bool ok = EVP_DecodedLength(&max_len, pin.size()) == 1;
      if (ok) {
        buf.resize(max_len);
        ok = EVP_DecodeBase64(buf.data(), &len, buf.size(),
                              reinterpret_cast<const uint8_t*>(pin.data()), pin.size()) == 1 &&
             len == digest.size();
      }
      if (!ok) {
        problems.push_back(listProblem(
            "ssl.ca_sha256", i,
            "\"" + pin +
                "\" is not a base64 SHA-256 fingerprint (44 characters, e.g. the output of "
                "`openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl "
                "dgst -sha256 -binary | base64`)"));
        continue;
      }
      std::memcpy(digest.data(), buf.data(), digest.size());
      ctx->pins_.push_back(digest);
    }
    for (auto& p : validateAllowedClients(ssl.allowed_clients)) problems.push_back(std::move(p));

    // The loader already warns about verification_mode = "none", pins or an allow-list
    // with client_authentication = "none" (proxy/config/config.cc crossCheck).
    if (mode == ClientAuth::kNone) return;
    if (mode == ClientAuth::kOptional && !ssl.allowed_clients.empty()) {
      warn("ssl.allowed_clients",
           "client_authentication is \"optional\": clients that send no certificate are "
           "admitted; the allow-list applies only to those that do (use \"required\" to "
           "admit listed clients only)");
    }
    if (ssl.certificate_authorities.empty()) {
      X509_STORE* store = ctx->store_;
      ERR_clear_error();
      if (X509_STORE_load_locations(store, kSystemRootsFile, nullptr) != 1) {
        error("ssl.client_authentication",
              std::string("client authentication is on without ssl.certificate_authorities, "
                          "and the system trust store ") +
                  kSystemRootsFile + " cannot be loaded: " + drainErrors());
        return;
      }
      ctx->system_roots_ = true;
      warn("ssl.client_authentication",
           std::string("client authentication is on but ssl.certificate_authorities is "
                       "empty: client certificates are verified against the system trust "
                       "store (") +
               kSystemRootsFile + "), so any publicly trusted certificate is accepted");
    } else {
      // The CertificateRequest names the acceptable CAs, which lets a client holding
      // several certificates (e.g. a JVM keystore) pick the right one.
      // (DER-encoded names: a buffers-method SSL_CTX takes no X509_NAME.)
      STACK_OF(CRYPTO_BUFFER)* names = sk_CRYPTO_BUFFER_new_null();
      PROXY_CHECK(names != nullptr, "sk_CRYPTO_BUFFER_new_null failed (out of memory)");
      for (auto& ca : cas) {
        uint8_t* der = nullptr;
        int len = i2d_X509_NAME(X509_get_subject_name(ca.get()), &der);
        CRYPTO_BUFFER* name =
            len > 0 ? CRYPTO_BUFFER_new(der, static_cast<size_t>(len), nullptr) : nullptr;
        OPENSSL_free(der);
        if (name && !sk_CRYPTO_BUFFER_push(names, name)) CRYPTO_BUFFER_free(name);
      }
      SSL_CTX_set0_client_CAs(ctx->ctx_, names);
    }
    int verify = SSL_VERIFY_PEER;
    if (mode == ClientAuth::kRequired) verify |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    // Custom verification (tls_session.cc) so that one callback checks the chain, the
    // pins and the allow-list, and picks the alert: a refused client learns why from
    // the TLS alert (access_denied, certificate_expired, unknown_ca...), not an HTTP 403.
    SSL_CTX_set_custom_verify(ctx->ctx_, verify, TlsSession::verifyClientCallback);
    // A ticket carries the client's chain. BoringSSL re-verifies stored chains on
    // resumption only for clients (SSL_CTX_set_reverify_on_resume), so TlsSession checks
    // a resumed chain's dates itself: an expired client certificate cannot ride on an
    // old ticket. The session ID context below keeps tickets from crossing policies.
  }

  // A session may resume only under the same verification policy: the session ID
  // context is a digest of everything that decides who is let in. Two workers (or a
  // reload with the same CAs) compute the same value, so tickets work across them.
  void setSessionIdContext() {
    SHA256_CTX sha;
    SHA256_Init(&sha);
    auto add = [&](const std::string& s) {
      SHA256_Update(&sha, s.data(), s.size());
      SHA256_Update(&sha, "\0", 1);
    };
    add(toString(ctx->client_auth_));
    for (auto& ca : cas) {
      uint8_t* der = nullptr;
      int len = i2d_X509(ca.get(), &der);
      if (len > 0) SHA256_Update(&sha, der, static_cast<size_t>(len));
      OPENSSL_free(der);
    }
    add(ctx->system_roots_ ? "system" : "");
    for (auto& pin : ctx->pins_) SHA256_Update(&sha, pin.data(), pin.size());
    const auto& a = ssl.allowed_clients;
    for (const auto* list :
         {&a.common_names, &a.organizational_units, &a.dns_names, &a.uris, &a.ip_addresses}) {
      for (const auto& s : *list) add(s);
      add("|");
    }
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256_Final(digest, &sha);
    SSL_CTX_set_session_id_context(ctx->ctx_, digest, sizeof digest);
  }

  void build(std::shared_ptr<TicketKeys> ticket_keys) {
    ctx.reset(new TlsContext());
    ctx->options_ = ssl;
    ctx->ticket_keys_ =
        ticket_keys ? std::move(ticket_keys) : TicketKeys::create(ssl.session_ticket_rotation);
    // The buffers method keeps certificates as DER (CRYPTO_BUFFERs), never as parsed X509
    // objects: a client chain costs an idle mTLS connection nothing but a reference into
    // the pool, which holds each distinct certificate once (issue 12: memory per idle
    // mTLS connection). TlsSession parses a chain only while it checks it.
    ctx->pool_ = CRYPTO_BUFFER_POOL_new();
    ctx->store_ = X509_STORE_new();
    ctx->ctx_ = SSL_CTX_new(TLS_with_buffers_method());
    PROXY_CHECK(ctx->pool_ != nullptr && ctx->store_ != nullptr && ctx->ctx_ != nullptr,
                "SSL_CTX_new failed (out of memory)");
    SSL_CTX_set0_buffer_pool(ctx->ctx_, ctx->pool_);
    SSL_CTX_set_ex_data(ctx->ctx_, 0, ctx.get());

    ProtocolRange range = mapProtocols(ssl, problems);
    ctx->min_version_ = range.min_version;
    ctx->max_version_ = range.max_version;
    SSL_CTX_set_min_proto_version(ctx->ctx_, range.min_version);
    SSL_CTX_set_max_proto_version(ctx->ctx_, range.max_version);

    // Never BoringSSL's own default list, which offers RSA key exchange (no forward
    // secrecy) with an RSA certificate: Go's defaults, as APM Server. And the server's
    // order decides, Go's, so a client listing CBC first still gets an AEAD.
    ctx->cipher_order_ = mapCipherSuites(ssl, problems, warnings);
    ERR_clear_error();
    if (!applyCipherOrder(ctx->ctx_, &ctx->cipher_order_)) {
      error("ssl.cipher_suites", "BoringSSL rejected the cipher list \"" +
                                     ctx->cipher_order_.aes_first + "\": " + drainErrors());
    }
    ctx->curve_list_ = mapCurves(ssl, problems);
    if (!ctx->curve_list_.empty()) {
      ERR_clear_error();
      if (!SSL_CTX_set1_curves_list(ctx->ctx_, ctx->curve_list_.c_str())) {
        error("ssl.curve_types",
              "BoringSSL rejected the curve list \"" + ctx->curve_list_ + "\": " + drainErrors());
      }
    }

    loadCertificate();
    PkeyPtr key = loadKey();
    if (key && !chain.empty()) {
      if (X509_check_private_key(chain[0].get(), key.get()) != 1) {
        ERR_clear_error();
        error("ssl.key", "the private key in " + describe(key_source) +
                             " does not match the certificate " + ctx->server_cert_.subject +
                             " in " + describe(cert_source));
      } else {
        useChainAndKey(key.get());
      }
    }

    loadCertificateAuthorities();
    configureClientAuth();
    setSessionIdContext();

    // Any non-null argument means "h2 too"; the callback reads nothing through it.
    static int http2_on = 1;
    SSL_CTX_set_alpn_select_cb(ctx->ctx_, alpnSelect, ssl.http2 ? &http2_on : nullptr);
    ctx->http2_ = ssl.http2;
    // Stateless resumption only. A server-side cache would be per SSL_CTX (so not shared
    // by workers, and lost on reload) and costs memory per session; tickets are neither.
    SSL_CTX_set_session_cache_mode(ctx->ctx_, SSL_SESS_CACHE_OFF);
    if (ssl.session_tickets) {
      SSL_CTX_set_tlsext_ticket_key_cb(ctx->ctx_, ticketKeyCallback);
      uint32_t lifetime = ctx->ticket_keys_->ticketLifetimeSeconds();
      SSL_CTX_set_timeout(ctx->ctx_, lifetime);
      SSL_CTX_set_session_psk_dhe_timeout(ctx->ctx_, lifetime);
      // One TLS 1.3 ticket, not BoringSSL's default two: an agent reconnects one
      // connection at a time, and each ticket costs an encryption per full handshake.
      SSL_CTX_set_num_tickets(ctx->ctx_, 1);
    } else {
      SSL_CTX_set_options(ctx->ctx_, SSL_OP_NO_TICKET);
      // TLS 1.3 NewSessionTicket messages are pointless without tickets.
      SSL_CTX_set_num_tickets(ctx->ctx_, 0);
    }
    // BoringSSL servers never accept renegotiation (ssl.h: "BoringSSL does not support
    // renegotiation as a server"); nothing to switch off. SSL_OP_* compression and
    // SSLv2/3 do not exist in BoringSSL either.
  }
};
TlsContext::CreateResult TlsContext::create(const ServerOptions& options,
                                            std::shared_ptr<TicketKeys> ticket_keys) {
  CreateResult result;
  ContextBuilder b(options);
  b.build(std::move(ticket_keys));
  result.problems = std::move(b.problems);
  result.warnings = std::move(b.warnings);
  if (result.problems.empty()) result.context = std::move(b.ctx);
  return result;
}
}  // namespace proxy::tls
