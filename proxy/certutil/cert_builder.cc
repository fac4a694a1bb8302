#include "proxy/certutil/cert_builder.h"

#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cipher.h>
#include <openssl/digest.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace proxy::certutil {

void EvpPkeyDeleter::operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
void X509Deleter::operator()(X509* x) const { X509_free(x); }

namespace {

// The BoringSSL error queue as one message, emptied so later calls start clean.
std::string drainErrors() {
  std::string out;
  uint32_t code;
  while ((code = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

Status sslError(const std::string& what) {
  std::string detail = drainErrors();
  return Status::error(detail.empty() ? what : what + ": " + detail);
}

// Several BoringSSL getters and writers take non-const pointers although they only read
// (they may fill internal caches, which BoringSSL guards with locks). The const in our
// API states our contract; this is the one place that drops it.
X509* mutableCert(const X509* cert) { return const_cast<X509*>(cert); }
EVP_PKEY* mutableKey(const EVP_PKEY* key) { return const_cast<EVP_PKEY*>(key); }

std::string bioContents(BIO* bio) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!BIO_mem_contents(bio, &data, &len)) return {};
  return std::string(reinterpret_cast<const char*>(data), len);
}

// "CN=a,OU=b,O=c" in RFC 4514 order: the last RDN is the outermost, so entries are added
// from the end (openssl and Elastic's certutil, via Java's X500Principal, agree on this).
Result<bssl::UniquePtr<X509_NAME>> parseName(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string part = text.substr(start, comma - start);
    size_t b = part.find_first_not_of(' ');
    size_t e = part.find_last_not_of(' ');
    part = b == std::string::npos ? std::string() : part.substr(b, e - b + 1);
    size_t eq = part.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == part.size()) {
      return Status::error("invalid distinguished name \"" + text +
                           "\": expected attribute=value pairs such as CN=name,O=org");
    }
    parts.emplace_back(part.substr(0, eq), part.substr(eq + 1));
    start = comma + 1;
  }
  bssl::UniquePtr<X509_NAME> name(X509_NAME_new());
  if (!name) return sslError("X509_NAME_new");
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (!X509_NAME_add_entry_by_txt(name.get(), it->first.c_str(), MBSTRING_UTF8,
                                    reinterpret_cast<const uint8_t*>(it->second.data()),
                                    static_cast<int>(it->second.size()), -1, 0)) {
      drainErrors();
      return Status::error("invalid distinguished name \"" + text + "\": unknown attribute \"" +
                           it->first + "\" (use CN, OU, O, L, ST, C, ...)");
    }
  }
  return name;
}

// RFC 5280 §4.1.2.2: positive, at most 20 octets, unpredictable. 16 random bytes with the
// top bit cleared keep the DER INTEGER at 16 octets without a sign byte.
Status setRandomSerial(X509* cert) {
  uint8_t bytes[16];
  RAND_bytes(bytes, sizeof bytes);
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01 << 6;  // never zero, always full length
  bssl::UniquePtr<BIGNUM> bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!bn) return sslError("BN_bin2bn");
  bssl::UniquePtr<ASN1_INTEGER> serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial || !X509_set_serialNumber(cert, serial.get())) return sslError("serial number");
  return Status::ok();
}

// RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING.
Result<bssl::UniquePtr<ASN1_OCTET_STRING>> keyIdentifier(const X509* cert) {
  const ASN1_BIT_STRING* bits = X509_get0_pubkey_bitstr(cert);
  if (bits == nullptr) return sslError("certificate has no public key");
  uint8_t digest[SHA_DIGEST_LENGTH];
  SHA1(ASN1_STRING_get0_data(bits), static_cast<size_t>(ASN1_STRING_length(bits)), digest);
  bssl::UniquePtr<ASN1_OCTET_STRING> id(ASN1_OCTET_STRING_new());
  if (!id || !ASN1_OCTET_STRING_set(id.get(), digest, sizeof digest)) {
    return sslError("subject key identifier");
  }
  return id;
}

Status addExtension(X509* cert, int nid, void* value, bool critical, const char* what) {
  if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_REPLACE) != 1) {
    return sslError(std::string("adding ") + what);
  }
  return Status::ok();
}

Status addGeneralName(GENERAL_NAMES* names, int type, ASN1_STRING* value) {
  bssl::UniquePtr<ASN1_STRING> owned(value);
  bssl::UniquePtr<GENERAL_NAME> gen(GENERAL_NAME_new());
  if (!owned || !gen) return sslError("GENERAL_NAME_new");
  GENERAL_NAME_set0_value(gen.get(), type, owned.release());
  if (!bssl::PushToStack(names, std::move(gen))) return sslError("sk_GENERAL_NAME_push");
  return Status::ok();
}

ASN1_STRING* ia5(const std::string& text) {
  ASN1_IA5STRING* s = ASN1_IA5STRING_new();
  if (s != nullptr && !ASN1_STRING_set(s, text.data(), static_cast<int>(text.size()))) {
    ASN1_IA5STRING_free(s);
    return nullptr;
  }
  return s;
}

bool isPrintableAscii(const std::string& s) {
  for (char c : s) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return !s.empty();
}

Status addSubjectAltNames(X509* cert, const CertSpec& spec) {
  if (spec.dns.empty() && spec.ips.empty() && spec.uris.empty()) return Status::ok();
  bssl::UniquePtr<GENERAL_NAMES> names(sk_GENERAL_NAME_new_null());
  if (!names) return sslError("sk_GENERAL_NAME_new_null");
  for (const std::string& dns : spec.dns) {
    if (!isPrintableAscii(dns)) {
      return Status::error("invalid DNS name \"" + dns + "\" (use the A-label form for IDNs)");
    }
    if (Status s = addGeneralName(names.get(), GEN_DNS, ia5(dns)); !s) return s;
  }
  for (const std::string& ip : spec.ips) {
    ASN1_OCTET_STRING* octets = a2i_IPADDRESS(ip.c_str());
    if (octets == nullptr) {
      drainErrors();
      return Status::error("invalid IP address \"" + ip + "\"");
    }
    if (Status s = addGeneralName(names.get(), GEN_IPADD, octets); !s) return s;
  }
  for (const std::string& uri : spec.uris) {
    if (!isPrintableAscii(uri) || uri.find(':') == std::string::npos) {
      return Status::error("invalid URI \"" + uri + "\" (expected scheme:rest, e.g. spiffe://...)");
    }
    if (Status s = addGeneralName(names.get(), GEN_URI, ia5(uri)); !s) return s;
  }
  // RFC 5280 §4.2.1.6: critical only when the subject is empty, which we never produce.
  return addExtension(cert, NID_subject_alt_name, names.get(), false, "subjectAltName");
}

Status addExtensions(X509* cert, const CertSpec& spec, const EVP_PKEY* key,
                     const X509* issuer_cert) {
  // RFC 5280 §4.2.1.9: basicConstraints critical in CAs; critical in leaves too, as the
  // CA/Browser Forum baseline allows, so nobody can mistake a leaf for a CA.
  bssl::UniquePtr<BASIC_CONSTRAINTS> bc(BASIC_CONSTRAINTS_new());
  if (!bc) return sslError("BASIC_CONSTRAINTS_new");
  bc->ca = spec.is_ca ? 0xff : 0;
  if (spec.is_ca && spec.path_len >= 0) {
    bc->pathlen = ASN1_INTEGER_new();
    if (bc->pathlen == nullptr || !ASN1_INTEGER_set(bc->pathlen, spec.path_len)) {
      return sslError("pathlen");
    }
  }
  if (Status s = addExtension(cert, NID_basic_constraints, bc.get(), true, "basicConstraints");
      !s) {
    return s;
  }

  // RFC 5280 §4.2.1.3 bit numbers: digitalSignature(0), keyEncipherment(2), keyCertSign(5),
  // cRLSign(6). keyEncipherment only for RSA, which TLS 1.2 RSA key exchange may use.
  std::vector<int> bits;
  if (spec.is_ca) {
    bits = {5, 6};
  } else if (EVP_PKEY_id(key) == EVP_PKEY_RSA) {
    bits = {0, 2};
  } else {
    bits = {0};
  }
  bssl::UniquePtr<ASN1_BIT_STRING> usage(ASN1_BIT_STRING_new());
  if (!usage) return sslError("ASN1_BIT_STRING_new");
  for (int bit : bits) {
    if (!ASN1_BIT_STRING_set_bit(usage.get(), bit, 1)) return sslError("keyUsage");
  }
  if (Status s = addExtension(cert, NID_key_usage, usage.get(), true, "keyUsage"); !s) return s;

  if (spec.server_auth || spec.client_auth) {
    bssl::UniquePtr<EXTENDED_KEY_USAGE> eku(sk_ASN1_OBJECT_new_null());
    if (!eku) return sslError("sk_ASN1_OBJECT_new_null");
    // OBJ_nid2obj returns static objects; the stack's free function ignores them.
    if ((spec.server_auth && !sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_server_auth))) ||
        (spec.client_auth && !sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_client_auth)))) {
      return sslError("extendedKeyUsage");
    }
    if (Status s = addExtension(cert, NID_ext_key_usage, eku.get(), false, "extendedKeyUsage");
        !s) {
      return s;
    }
  }

  auto ski = keyIdentifier(cert);
  if (!ski) return ski.status();
  if (Status s = addExtension(cert, NID_subject_key_identifier, ski.value().get(), false,
                              "subjectKeyIdentifier");
      !s) {
    return s;
  }

  // The authority key identifier must equal the issuer's subject key identifier (RFC 5280
  // §4.2.1.1). Prefer the one the issuer carries; compute it for issuers without one.
  bssl::UniquePtr<AUTHORITY_KEYID> aki(AUTHORITY_KEYID_new());
  if (!aki) return sslError("AUTHORITY_KEYID_new");
  if (issuer_cert == nullptr) {
    aki->keyid = ski.value().release();
  } else {
    auto* carried = static_cast<ASN1_OCTET_STRING*>(
        X509_get_ext_d2i(issuer_cert, NID_subject_key_identifier, nullptr, nullptr));
    if (carried != nullptr) {
      aki->keyid = carried;
    } else {
      auto computed = keyIdentifier(issuer_cert);
      if (!computed) return computed.status();
      aki->keyid = computed.value().release();
    }
  }
  return addExtension(cert, NID_authority_key_identifier, aki.get(), false,
                      "authorityKeyIdentifier");
}

Result<Issued> build(const CertSpec& spec, KeyType key_type, const X509* issuer_cert,
                     const EVP_PKEY* issuer_key) {
  ERR_clear_error();
  auto key = generateKey(key_type);
  if (!key) return key.status();
  auto subject = parseName(spec.subject);
  if (!subject) return subject.status();

  X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), X509_VERSION_3)) return sslError("X509_new");
  if (Status s = setRandomSerial(cert.get()); !s) return s;
  if (!X509_set_subject_name(cert.get(), subject.value().get())) return sslError("subject");
  X509_NAME* issuer_name =
      issuer_cert == nullptr ? subject.value().get() : X509_get_subject_name(issuer_cert);
  if (!X509_set_issuer_name(cert.get(), issuer_name)) return sslError("issuer");
  // ASN1_TIME_adj picks UTCTime before 2050 and GeneralizedTime after, per RFC 5280
  // §4.1.2.5.
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()),
                       static_cast<long>(spec.not_before_offset)) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(spec.not_after_offset))) {
    return sslError("validity");
  }
  if (!X509_set_pubkey(cert.get(), key.value().get())) return sslError("X509_set_pubkey");
  if (Status s = addSubjectAltNames(cert.get(), spec); !s) return s;
  if (Status s = addExtensions(cert.get(), spec, key.value().get(), issuer_cert); !s) return s;

  EVP_PKEY* signer = issuer_key == nullptr ? key.value().get() : mutableKey(issuer_key);
  if (!X509_sign(cert.get(), signer, EVP_sha256())) return sslError("signing the certificate");
  return Issued{std::move(cert), std::move(key).value()};
}

std::vector<char> passphraseBytes(const std::string& passphrase) {
  return std::vector<char>(passphrase.begin(), passphrase.end());
}

}  // namespace

Result<PkeyPtr> generateKey(KeyType type) {
  int id = EVP_PKEY_EC;
  int param = NID_X9_62_prime256v1;
  switch (type) {
    case KeyType::kEcdsaP256:
      break;
    case KeyType::kEcdsaP384:
      param = NID_secp384r1;
      break;
    case KeyType::kRsa2048:
      id = EVP_PKEY_RSA;
      param = 2048;
      break;
    case KeyType::kRsa3072:
      id = EVP_PKEY_RSA;
      param = 3072;
      break;
    case KeyType::kRsa4096:
      id = EVP_PKEY_RSA;
      param = 4096;
      break;
  }
  bssl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_id(id, nullptr));
  if (!ctx || !EVP_PKEY_keygen_init(ctx.get())) return sslError("EVP_PKEY_keygen_init");
  int ok = id == EVP_PKEY_EC ? EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx.get(), param)
                             : EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), param);
  if (!ok) return sslError("key parameters");
  EVP_PKEY* raw = nullptr;
  if (!EVP_PKEY_keygen(ctx.get(), &raw)) return sslError("EVP_PKEY_keygen");
  return PkeyPtr(raw);
}

Result<Issued> selfSigned(const CertSpec& spec, KeyType key_type) {
  return build(spec, key_type, nullptr, nullptr);
}

Result<Issued> issue(const CertSpec& spec, KeyType key_type, const X509* issuer_cert,
                     const EVP_PKEY* issuer_key) {
  if (issuer_cert == nullptr || issuer_key == nullptr) {
    return Status::error("issue: issuer certificate and key are required");
  }
  ERR_clear_error();
  if (!X509_check_private_key(mutableCert(issuer_cert), issuer_key)) {
    drainErrors();
    return Status::error("the CA key does not match the CA certificate");
  }
  return build(spec, key_type, issuer_cert, issuer_key);
}

std::string certToPem(const X509* cert) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_X509(bio.get(), mutableCert(cert))) return {};
  return bioContents(bio.get());
}

Result<std::string> keyToPem(const EVP_PKEY* key, const std::string& passphrase) {
  ERR_clear_error();
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio) return sslError("BIO_new");
  // With a cipher, BoringSSL's PKCS8_encrypt (pbe_nid -1) writes PBES2 with PBKDF2
  // (RFC 8018 §6.2), which OpenSSL, Go and Java all read.
  std::vector<char> pass = passphraseBytes(passphrase);
  int ok = passphrase.empty() ? PEM_write_bio_PKCS8PrivateKey(bio.get(), mutableKey(key), nullptr,
                                                              nullptr, 0, nullptr, nullptr)
                              : PEM_write_bio_PKCS8PrivateKey(
                                    bio.get(), mutableKey(key), EVP_aes_256_cbc(), pass.data(),
                                    static_cast<int>(pass.size()), nullptr, nullptr);
  OPENSSL_cleanse(pass.data(), pass.size());
  if (!ok) return sslError("writing the private key");
  return bioContents(bio.get());
}

Result<std::string> keyToTraditionalPem(const EVP_PKEY* key, const std::string& passphrase) {
  ERR_clear_error();
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio) return sslError("BIO_new");
  std::vector<unsigned char> pass(passphrase.begin(), passphrase.end());
  const EVP_CIPHER* cipher = passphrase.empty() ? nullptr : EVP_aes_256_cbc();
  unsigned char* kstr = passphrase.empty() ? nullptr : pass.data();
  int klen = static_cast<int>(pass.size());
  int ok = 0;
  switch (EVP_PKEY_id(key)) {
    case EVP_PKEY_RSA:
      ok = PEM_write_bio_RSAPrivateKey(bio.get(), EVP_PKEY_get0_RSA(key), cipher, kstr, klen,
                                       nullptr, nullptr);
      break;
    case EVP_PKEY_EC:
      ok = PEM_write_bio_ECPrivateKey(bio.get(), EVP_PKEY_get0_EC_KEY(key), cipher, kstr, klen,
                                      nullptr, nullptr);
      break;
    default:
      return Status::error("traditional PEM supports only RSA and EC keys");
  }
  OPENSSL_cleanse(pass.data(), pass.size());
  if (!ok) return sslError("writing the private key");
  return bioContents(bio.get());
}

Result<X509Ptr> certFromPem(const std::string& pem) {
  ERR_clear_error();
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return sslError("BIO_new_mem_buf");
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return sslError("no PEM certificate found");
  return cert;
}

namespace {

// PEM password callback: hands BoringSSL the passphrase, or fails when there is none so
// that an encrypted key without one is an error rather than a prompt on the terminal.
int passphraseCallback(char* buf, int size, int /*rwflag*/, void* userdata) {
  const auto* pass = static_cast<const std::string*>(userdata);
  if (pass == nullptr || pass->empty() || pass->size() > static_cast<size_t>(size)) return -1;
  std::memcpy(buf, pass->data(), pass->size());
  return static_cast<int>(pass->size());
}

}  // namespace

Result<PkeyPtr> keyFromPem(const std::string& pem, const std::string& passphrase) {
  ERR_clear_error();
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return sslError("BIO_new_mem_buf");
  std::string pass = passphrase;
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, passphraseCallback, &pass));
  if (!key) {
    bool encrypted = pem.find("ENCRYPTED") != std::string::npos;
    if (encrypted && passphrase.empty()) {
      drainErrors();
      return Status::error("the key is encrypted and no passphrase was given");
    }
    if (encrypted) {
      drainErrors();
      return Status::error("cannot decrypt the key: wrong passphrase?");
    }
    return sslError("no PEM private key found");
  }
  return key;
}

std::string describeKey(const EVP_PKEY* key) {
  switch (EVP_PKEY_id(key)) {
    case EVP_PKEY_RSA:
      return "RSA " + std::to_string(EVP_PKEY_bits(key));
    case EVP_PKEY_EC: {
      const EC_GROUP* group = EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(key));
      int nid = group == nullptr ? NID_undef : EC_GROUP_get_curve_name(group);
      if (nid == NID_X9_62_prime256v1) return "ECDSA P-256";
      if (nid == NID_secp384r1) return "ECDSA P-384";
      if (nid == NID_secp521r1) return "ECDSA P-521";
      return "ECDSA " + std::to_string(EVP_PKEY_bits(key)) + "-bit";
    }
    case EVP_PKEY_ED25519:
      return "Ed25519";
    default:
      return "key type " + std::to_string(EVP_PKEY_id(key));
  }
}

Status writeNewFile(const std::string& path, const std::string& contents, unsigned mode) {
  // O_EXCL makes "does not exist yet" and "create" one atomic step, so a file that appears
  // between a check and the write is never clobbered.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  static_cast<mode_t>(mode));
  if (fd < 0) {
    int err = errno;
    if (err == EEXIST) return Status::error(path + " already exists; not overwriting it");
    return Status::error("cannot create " + path + ": " + std::strerror(err));
  }
  auto fail = [&](const char* what) {
    int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return Status::error(std::string(what) + " " + path + ": " + std::strerror(err));
  };
  // The umask applies to open(); fchmod sets exactly the mode asked for.
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) return fail("cannot set the mode of");
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot sync");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return Status::error("cannot write " + path + ": " + std::strerror(err));
  }
  return Status::ok();
}

}  // namespace proxy::certutil
