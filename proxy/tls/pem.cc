#include "proxy/tls/pem.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "proxy/tls/identity.h"

namespace proxy::tls::pem {

// The library's error queue as "reason; reason" (and cleared).
std::string drainErrors() {
  std::string out;
  uint32_t e;
  while ((e = ERR_get_error()) != 0) {
    const char* reason = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += reason ? reason : "unknown error";
  }
  return out;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// "0644"-style text of a file mode's permission bits.
std::string modeString(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

bool isInlinePem(const std::string& value) {
  std::string t = trim(value);
  return !t.empty() && t[0] == '-';
}

// Inline PEM from a TOML multi-line string is often indented; PEM wants each line flush.
std::string unindent(const std::string& pem) {
  std::string out;
  std::istringstream in(pem);
  std::string line;
  while (std::getline(in, line)) {
    out += trim(line);
    out += '\n';
  }
  return out;
}

Result<std::string> readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::error("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status::error("cannot read " + path + ": " + std::strerror(errno));
  return ss.str();
}

int64_t toUnix(const ASN1_TIME* t) {
  // ASN1_TIME_diff from the epoch: portable across BoringSSL versions that lack
  // ASN1_TIME_to_posix.
  ASN1_TIME* epoch = ASN1_TIME_set(nullptr, 0);
  int days = 0, secs = 0;
  int ok = epoch ? ASN1_TIME_diff(&days, &secs, epoch, t) : 0;
  ASN1_TIME_free(epoch);
  return ok ? int64_t{days} * 86400 + secs : 0;
}

std::string formatTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

CertificateInfo infoOf(const X509* cert, const std::string& source) {
  CertificateInfo info;
  info.subject = subjectRfc2253(cert);
  ClientIdentity id = identityOf(cert);
  auto add = [&](const char* tag, const std::vector<std::string>& values) {
    for (const auto& v : values) {
      if (!info.sans.empty()) info.sans += ", ";
      info.sans += tag;
      info.sans += v;
    }
  };
  add("DNS:", id.dns_names);
  add("IP:", id.ip_addresses);
  add("URI:", id.uris);
  info.not_before = toUnix(X509_get0_notBefore(cert));
  info.not_after = toUnix(X509_get0_notAfter(cert));
  info.source = source;
  return info;
}

// Every CERTIFICATE block of `pem`, in order.
std::vector<X509Ptr> parseCertificates(const std::string& pem, std::string& error) {
  std::vector<X509Ptr> certs;
  BioPtr bio(BIO_new_mem_buf(pem.data(), pem.size()));
  ERR_clear_error();
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    certs.push_back(std::move(cert));
  }
  uint32_t e = ERR_peek_last_error();
  if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
    ERR_clear_error();  // the normal end of the input
  } else if (e != 0) {
    error = drainErrors();
  }
  return certs;
}

int passphraseCallback(char* buf, int size, int /*rwflag*/, void* userdata) {
  const auto* pass = static_cast<const std::string*>(userdata);
  if (pass == nullptr || pass->empty() || size <= 0) return 0;
  size_t n = std::min(pass->size(), static_cast<size_t>(size));
  std::memcpy(buf, pass->data(), n);
  return static_cast<int>(n);
}
}  // namespace proxy::tls::pem
