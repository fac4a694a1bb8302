// libFuzzer target for client-certificate identity formatting (proxy/tls/identity.h):
// a certificate in, the X-Forwarded-Client-Cert value and the log fields (RFC 2253
// subject, "DNS:a,URI:b" SANs) out.
// The first input byte picks how the rest becomes a certificate:
// - even: the rest is DER, parsed as a peer's certificate would be;
// - odd: the rest is a list of fields (kind byte, length byte, bytes) placed in the
//   subject and the subjectAltName of a certificate signed here, so the fuzzer reaches
//   CR, LF, quotes and commas inside names quickly instead of having to forge ASN.1.
// Properties checked (a failure aborts, and libFuzzer keeps the input):
// - no control byte (CR, LF, NUL, DEL...) in the header value or the log fields;
// - the header value is one XFCC element whose fields are exactly Hash, Subject and one
//   URI= per URI SAN and one DNS= per DNS SAN (nothing a name carries adds a field);
// - xfccValue of raw bytes is header-safe and, when quoted, well quoted.
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "proxy/tls/identity.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using proxy::fuzz::headerSafe;

EVP_PKEY* signingKey() {
  static EVP_PKEY* key = [] {
    uint8_t seed[32] = {1, 2, 3};
    return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, sizeof seed);
  }();
  return key;
}

// ASN.1 string types a subject entry may be written in; BMP and universal strings are
// converted to UTF-8 by the code under test.
constexpr int kNameTypes[] = {V_ASN1_UTF8STRING, V_ASN1_IA5STRING, V_ASN1_PRINTABLESTRING,
                              V_ASN1_T61STRING,  V_ASN1_BMPSTRING, V_ASN1_UNIVERSALSTRING};
constexpr int kNameNids[] = {NID_commonName, NID_organizationalUnitName, NID_organizationName,
                             NID_countryName, NID_serialNumber};

void addSan(GENERAL_NAMES* names, int kind, std::string_view bytes) {
  GENERAL_NAME* gn = GENERAL_NAME_new();
  ASN1_STRING* s = ASN1_STRING_type_new(kind == GEN_IPADD ? V_ASN1_OCTET_STRING : V_ASN1_IA5STRING);
  ASN1_STRING_set(s, bytes.data(), static_cast<int>(bytes.size()));
  gn->type = kind;
  gn->d.ia5 = s;  // the union's members are all ASN1_STRING*
  sk_GENERAL_NAME_push(names, gn);
}

// Builds and signs a certificate from the field list; nullptr when BoringSSL refuses it.
X509* buildCertificate(const uint8_t* data, size_t size) {
  X509* x = X509_new();
  X509_NAME* name = X509_get_subject_name(x);
  GENERAL_NAMES* sans = sk_GENERAL_NAME_new_null();
  size_t i = 0;
  while (i + 2 <= size) {
    uint8_t kind = data[i];
    size_t len = data[i + 1];
    i += 2;
    if (len > size - i) len = size - i;
    std::string_view bytes(reinterpret_cast<const char*>(data + i), len);
    i += len;
    switch (kind % 4) {
      case 0:
      case 1: {
        int nid = kNameNids[(kind / 4) % std::size(kNameNids)];
        int type = kNameTypes[(kind / 32) % std::size(kNameTypes)];
        X509_NAME_add_entry_by_NID(name, nid, type, reinterpret_cast<const uint8_t*>(bytes.data()),
                                   static_cast<int>(bytes.size()), -1, (kind / 4) % 2);
        break;
      }
      case 2:
        addSan(sans, (kind / 4) % 2 ? GEN_URI : GEN_DNS, bytes);
        break;
      default:
        addSan(sans, (kind / 4) % 2 ? GEN_IPADD : GEN_EMAIL, bytes);
        break;
    }
  }
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_set_issuer_name(x, name);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, signingKey());
  if (sk_GENERAL_NAME_num(sans) > 0) X509_add1_ext_i2d(x, NID_subject_alt_name, sans, 0, 0);
  GENERAL_NAMES_free(sans);
  if (!X509_sign(x, signingKey(), nullptr)) {
    X509_free(x);
    return nullptr;
  }
  // Round trip through DER, as a peer's certificate arrives.
  uint8_t* der = nullptr;
  int len = i2d_X509(x, &der);
  X509_free(x);
  if (len <= 0) return nullptr;
  const uint8_t* p = der;
  X509* parsed = d2i_X509(nullptr, &p, len);
  OPENSSL_free(der);
  return parsed;
}

// Splits an XFCC element into its key=value fields (quoted values unescaped) and counts
// the keys; checks the quoting is well formed and there is a single element.
std::map<std::string, size_t> xfccFields(std::string_view v) {
  std::map<std::string, size_t> keys;
  size_t i = 0;
  while (i < v.size()) {
    size_t eq = v.find('=', i);
    FUZZ_CHECK(eq != std::string_view::npos, "XFCC field without '='");
    std::string key(v.substr(i, eq - i));
    FUZZ_CHECK(key.find_first_of(",;\"") == std::string::npos, "XFCC key holds a separator");
    ++keys[key];
    i = eq + 1;
    if (i < v.size() && v[i] == '"') {
      ++i;
      for (;; ++i) {
        FUZZ_CHECK(i < v.size(), "XFCC quoted value never closes");
        if (v[i] == '\\') {
          ++i;
          FUZZ_CHECK(i < v.size(), "XFCC value ends inside an escape");
          continue;
        }
        if (v[i] == '"') break;
      }
      ++i;
    } else {
      while (i < v.size() && v[i] != ';' && v[i] != ',') {
        FUZZ_CHECK(v[i] != '"' && v[i] != '=', "XFCC bare value holds a quote or '='");
        ++i;
      }
    }
    if (i == v.size()) break;
    FUZZ_CHECK(v[i] == ';', "XFCC holds more than one element (a ',' outside quotes)");
    ++i;
  }
  return keys;
}

void checkXfccValue(std::string_view raw) {
  std::string q = proxy::tls::xfccValue(raw);
  FUZZ_CHECK(headerSafe(q), "xfccValue lets a control byte through");
  std::string field = "K=" + q;
  FUZZ_CHECK(xfccFields(field) == (std::map<std::string, size_t>{{"K", 1}}),
             "xfccValue's result spills into other fields");
}

void checkCertificate(const X509* cert) {
  proxy::tls::ClientIdentity id = proxy::tls::identityOf(cert);
  std::string subject = proxy::tls::subjectRfc2253(cert);
  std::string sans = proxy::tls::sansString(id);
  std::string header = proxy::tls::forwardedClientCert(cert, id);
  FUZZ_CHECK(headerSafe(subject), "the subject log field holds a control byte");
  FUZZ_CHECK(headerSafe(sans), "the SANs log field holds a control byte");
  FUZZ_CHECK(headerSafe(header), "X-Forwarded-Client-Cert holds a control byte");
  if (header.empty()) return;  // no DER encoding: nothing is sent
  std::map<std::string, size_t> expected{{"Hash", 1}, {"Subject", 1}};
  if (!id.uris.empty()) expected["URI"] = id.uris.size();
  if (!id.dns_names.empty()) expected["DNS"] = id.dns_names.size();
  FUZZ_CHECK(
      xfccFields(header) == expected,
      "XFCC fields are not one Hash, one Subject, one URI= per URI SAN, one DNS= per DNS SAN");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  checkXfccValue(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  X509* cert = nullptr;
  if (data[0] % 2 == 0) {
    const uint8_t* p = data + 1;
    cert = d2i_X509(nullptr, &p, static_cast<long>(size - 1));
  } else {
    cert = buildCertificate(data + 1, size - 1);
  }
  if (cert != nullptr) {
    checkCertificate(cert);
    X509_free(cert);
  }
  // BoringSSL's error queue allocates; emptied here, every input frees what it allocated,
  // so libFuzzer's per-input leak check stays quiet (and fast) unless something leaks.
  ERR_clear_error();
  return 0;
}
