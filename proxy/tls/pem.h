// PEM and certificate helpers behind TlsContext: "path or inline PEM" values, the
// certificates and key they hold, and what the summary and expiry warnings print.
// Internal to the tls module. No libuv.
#pragma once

#include <openssl/base.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/common/status.h"
#include "proxy/tls/tls_context.h"

namespace proxy::tls::pem {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// The library's error queue as "reason; reason" (and cleared).
std::string drainErrors();
std::string trim(const std::string& s);
// "0644"-style text of a file mode's permission bits.
std::string modeString(mode_t mode);
// True when a "path or inline PEM" value is the PEM itself.
bool isInlinePem(const std::string& value);
// Inline PEM from a TOML multi-line string is often indented; PEM wants each line flush.
std::string unindent(const std::string& pem);
Result<std::string> readFile(const std::string& path);
// Seconds since the epoch, 0 when the time cannot be read.
int64_t toUnix(const ASN1_TIME* t);
// "2026-01-31T12:00:00Z".
std::string formatTime(int64_t unix_seconds);
// Subject, SANs and validity of `cert`, for messages and the summary.
CertificateInfo infoOf(const X509* cert, const std::string& source);
// Every CERTIFICATE block of `pem`, in order; `error` is set when the input is broken.
std::vector<X509Ptr> parseCertificates(const std::string& pem, std::string& error);
// pem_password_cb reading the passphrase from `userdata` (a const std::string*).
int passphraseCallback(char* buf, int size, int rwflag, void* userdata);

}  // namespace proxy::tls::pem
