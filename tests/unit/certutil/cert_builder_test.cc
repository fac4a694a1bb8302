#include "proxy/certutil/cert_builder.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/unit/certutil/certutil_test_support.h"

namespace {

using proxy::certutil::CertSpec;
using proxy::certutil::Issued;
using proxy::certutil::KeyType;
using proxy::certutil::testing::opensslText;
using proxy::certutil::testing::run;
using proxy::certutil::testing::TempDir;
using proxy::certutil::testing::why;
using proxy::certutil::testing::writeFile;

Issued makeCa(KeyType type = KeyType::kEcdsaP256) {
  CertSpec spec;
  spec.subject = "CN=Test Root CA,O=apm-tls-proxy tests";
  spec.is_ca = true;
  auto ca = proxy::certutil::selfSigned(spec, type);
  INFO(why(ca));
  REQUIRE(ca.isOk());
  return std::move(ca).value();
}

Issued makeIntermediate(const Issued& ca) {
  CertSpec spec;
  spec.subject = "CN=Test Intermediate CA";
  spec.is_ca = true;
  spec.path_len = 0;
  auto inter = proxy::certutil::issue(spec, KeyType::kEcdsaP384, ca.cert.get(), ca.key.get());
  INFO(why(inter));
  REQUIRE(inter.isOk());
  return std::move(inter).value();
}

Issued makeServer(const Issued& issuer, KeyType type = KeyType::kEcdsaP256,
                  int64_t not_before = -300, int64_t not_after = 86400) {
  CertSpec spec;
  spec.subject = "CN=apm.example.com";
  spec.server_auth = true;
  spec.dns = {"apm.example.com", "localhost"};
  spec.ips = {"127.0.0.1", "::1"};
  spec.not_before_offset = not_before;
  spec.not_after_offset = not_after;
  auto leaf = proxy::certutil::issue(spec, type, issuer.cert.get(), issuer.key.get());
  INFO(why(leaf));
  REQUIRE(leaf.isOk());
  return std::move(leaf).value();
}

// X509_verify_cert with `root` trusted and `intermediates` offered by the peer; returns
// X509_V_OK or the verification error.
int verify(X509* leaf, X509* root, const std::vector<X509*>& intermediates,
           int purpose = X509_PURPOSE_SSL_SERVER) {
  bssl::UniquePtr<X509_STORE> store(X509_STORE_new());
  REQUIRE(X509_STORE_add_cert(store.get(), root));
  bssl::UniquePtr<STACK_OF(X509)> chain(sk_X509_new_null());
  for (X509* c : intermediates) REQUIRE(sk_X509_push(chain.get(), c));
  bssl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  REQUIRE(X509_STORE_CTX_init(ctx.get(), store.get(), leaf, chain.get()));
  REQUIRE(X509_STORE_CTX_set_purpose(ctx.get(), purpose));
  int ok = X509_verify_cert(ctx.get());
  int err = X509_STORE_CTX_get_error(ctx.get());
  // The stack does not own the certificates.
  while (sk_X509_num(chain.get()) > 0) sk_X509_pop(chain.get());
  return ok == 1 ? X509_V_OK : err;
}

std::vector<std::string> sanStrings(const X509* cert) {
  std::vector<std::string> out;
  bssl::UniquePtr<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (size_t i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gen = sk_GENERAL_NAME_value(names.get(), i);
    const auto* s = gen->d.ia5;
    std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      static_cast<size_t>(ASN1_STRING_length(s)));
    if (gen->type == GEN_DNS) out.push_back("DNS:" + value);
    if (gen->type == GEN_URI) out.push_back("URI:" + value);
    if (gen->type == GEN_IPADD) out.push_back("IP:" + std::to_string(value.size()) + "bytes");
  }
  return out;
}

std::vector<int> ekuNids(const X509* cert) {
  std::vector<int> out;
  bssl::UniquePtr<EXTENDED_KEY_USAGE> eku(static_cast<EXTENDED_KEY_USAGE*>(
      X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr)));
  if (!eku) return out;
  for (size_t i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
    out.push_back(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.get(), i)));
  }
  return out;
}

std::string writePem(const TempDir& dir, const std::string& name, const X509* cert) {
  std::string path = dir.file(name);
  writeFile(path, proxy::certutil::certToPem(cert));
  return path;
}

}  // namespace

TEST_CASE("A root, an intermediate and a server leaf form a chain BoringSSL verifies",
          "[unit][certutil]") {
  Issued ca = makeCa();
  Issued inter = makeIntermediate(ca);
  Issued leaf = makeServer(inter);

  CHECK(verify(leaf.cert.get(), ca.cert.get(), {inter.cert.get()}) == X509_V_OK);
  // Without the intermediate the leaf cannot be chained to the root.
  CHECK(verify(leaf.cert.get(), ca.cert.get(), {}) == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  // A server certificate is no client certificate: the EKU is enforced.
  CHECK(verify(leaf.cert.get(), ca.cert.get(), {inter.cert.get()}, X509_PURPOSE_SSL_CLIENT) ==
        X509_V_ERR_INVALID_PURPOSE);
  // The intermediate has pathlen 0, so it cannot sign another CA that signs leaves.
  CertSpec sub;
  sub.subject = "CN=Too Deep CA";
  sub.is_ca = true;
  auto deep = proxy::certutil::issue(sub, KeyType::kEcdsaP256, inter.cert.get(), inter.key.get());
  REQUIRE(deep.isOk());
  Issued deep_leaf = makeServer(deep.value());
  CHECK(verify(deep_leaf.cert.get(), ca.cert.get(), {inter.cert.get(), deep.value().cert.get()}) ==
        X509_V_ERR_PATH_LENGTH_EXCEEDED);

  // Host name and IP checks use the SANs.
  CHECK(X509_check_host(leaf.cert.get(), "apm.example.com", 15, 0, nullptr) == 1);
  CHECK(X509_check_host(leaf.cert.get(), "other.example.com", 17, 0, nullptr) == 0);
  CHECK(X509_check_ip_asc(leaf.cert.get(), "127.0.0.1", 0) == 1);
  CHECK(X509_check_ip_asc(leaf.cert.get(), "::1", 0) == 1);
}

TEST_CASE("Leaves carry the requested SANs, EKUs, key usages and key identifiers",
          "[unit][certutil]") {
  Issued ca = makeCa();
  CertSpec spec;
  spec.subject = "CN=agent-1";
  spec.client_auth = true;
  spec.dns = {"agent.internal"};
  spec.uris = {"spiffe://cluster.local/ns/apm/sa/apm-agent"};
  auto client = proxy::certutil::issue(spec, KeyType::kRsa2048, ca.cert.get(), ca.key.get());
  REQUIRE(client.isOk());
  X509* cert = client.value().cert.get();

  CHECK(sanStrings(cert) ==
        std::vector<std::string>{"DNS:agent.internal",
                                 "URI:spiffe://cluster.local/ns/apm/sa/apm-agent"});
  CHECK(ekuNids(cert) == std::vector<int>{NID_client_auth});
  CHECK(verify(cert, ca.cert.get(), {}, X509_PURPOSE_SSL_CLIENT) == X509_V_OK);
  CHECK((X509_get_key_usage(cert) & (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT)) ==
        (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
  CHECK((X509_get_extension_flags(cert) & EXFLAG_CA) == 0);
  CHECK(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(cert),
                              X509_get0_subject_key_id(ca.cert.get())) == 0);
  CHECK(X509_get0_subject_key_id(cert) != nullptr);

  Issued both = makeServer(ca);
  CHECK(X509_get_key_usage(both.cert.get()) == KU_DIGITAL_SIGNATURE);
  CHECK(ekuNids(both.cert.get()) == std::vector<int>{NID_server_auth});

  CHECK((X509_get_extension_flags(ca.cert.get()) & EXFLAG_CA) != 0);
  CHECK(X509_get_key_usage(ca.cert.get()) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  CHECK(ekuNids(ca.cert.get()).empty());
}

TEST_CASE("Serials are random, positive and 128 bits: signatures use SHA-256", "[unit][certutil]") {
  Issued ca = makeCa();
  Issued a = makeServer(ca);
  Issued b = makeServer(ca);
  const ASN1_INTEGER* sa = X509_get0_serialNumber(a.cert.get());
  const ASN1_INTEGER* sb = X509_get0_serialNumber(b.cert.get());
  CHECK(ASN1_INTEGER_cmp(sa, sb) != 0);
  bssl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(sa, nullptr));
  REQUIRE(bn);
  CHECK(!BN_is_negative(bn.get()));
  CHECK(BN_num_bits(bn.get()) == 127);
  CHECK(X509_get_signature_nid(a.cert.get()) == NID_ecdsa_with_SHA256);

  Issued rsa_ca = makeCa(KeyType::kRsa2048);
  Issued rsa_signed = makeServer(rsa_ca);
  CHECK(X509_get_signature_nid(rsa_signed.cert.get()) == NID_sha256WithRSAEncryption);
}

TEST_CASE("Expired and not-yet-valid certificates fail verification with the right error",
          "[unit][certutil]") {
  Issued ca = makeCa();
  SECTION("expired") {
    Issued leaf = makeServer(ca, KeyType::kEcdsaP256, -2 * 86400, -86400);
    CHECK(verify(leaf.cert.get(), ca.cert.get(), {}) == X509_V_ERR_CERT_HAS_EXPIRED);
  }
  SECTION("not yet valid") {
    Issued leaf = makeServer(ca, KeyType::kEcdsaP256, 86400, 2 * 86400);
    CHECK(verify(leaf.cert.get(), ca.cert.get(), {}) == X509_V_ERR_CERT_NOT_YET_VALID);
  }
  SECTION("valid") {
    Issued leaf = makeServer(ca, KeyType::kEcdsaP256, -60, 60);
    CHECK(verify(leaf.cert.get(), ca.cert.get(), {}) == X509_V_OK);
  }
}

TEST_CASE("Bad specs and mismatched CA keys are refused with a message", "[unit][certutil]") {
  Issued ca = makeCa();
  Issued other = makeCa();
  CertSpec spec;
  spec.server_auth = true;

  auto mismatched =
      proxy::certutil::issue(spec, KeyType::kEcdsaP256, ca.cert.get(), other.key.get());
  REQUIRE(!mismatched.isOk());
  CHECK_THAT(mismatched.status().message(), Catch::Contains("does not match"));

  spec.subject = "apm.example.com";
  auto no_attr = proxy::certutil::selfSigned(spec, KeyType::kEcdsaP256);
  REQUIRE(!no_attr.isOk());
  CHECK_THAT(no_attr.status().message(), Catch::Contains("attribute=value"));

  spec.subject = "XX=foo";
  auto unknown = proxy::certutil::selfSigned(spec, KeyType::kEcdsaP256);
  REQUIRE(!unknown.isOk());
  CHECK_THAT(unknown.status().message(), Catch::Contains("unknown attribute \"XX\""));

  spec.subject = "CN=ok";
  spec.ips = {"300.1.1.1"};
  auto bad_ip = proxy::certutil::selfSigned(spec, KeyType::kEcdsaP256);
  REQUIRE(!bad_ip.isOk());
  CHECK_THAT(bad_ip.status().message(), Catch::Contains("invalid IP address \"300.1.1.1\""));

  spec.ips.clear();
  spec.dns = {"has space"};
  auto bad_dns = proxy::certutil::selfSigned(spec, KeyType::kEcdsaP256);
  REQUIRE(!bad_dns.isOk());
  CHECK_THAT(bad_dns.status().message(), Catch::Contains("invalid DNS name"));
}

TEST_CASE("Every key encoding round-trips through PEM_read_bio_PrivateKey", "[unit][certutil]") {
  KeyType type = GENERATE(KeyType::kEcdsaP256, KeyType::kEcdsaP384, KeyType::kRsa2048,
                          KeyType::kRsa3072, KeyType::kRsa4096);
  bool traditional = GENERATE(false, true);
  std::string passphrase = GENERATE(std::string(), std::string("s3cret pass"));
  CAPTURE(static_cast<int>(type), traditional, passphrase);

  auto key = proxy::certutil::generateKey(type);
  REQUIRE(key.isOk());
  auto pem = traditional ? proxy::certutil::keyToTraditionalPem(key.value().get(), passphrase)
                         : proxy::certutil::keyToPem(key.value().get(), passphrase);
  INFO(why(pem));
  REQUIRE(pem.isOk());
  const std::string& text = pem.value();

  bool rsa = type == KeyType::kRsa2048 || type == KeyType::kRsa3072 || type == KeyType::kRsa4096;
  if (!traditional) {
    CHECK_THAT(text,
               Catch::StartsWith(passphrase.empty() ? "-----BEGIN PRIVATE KEY-----"
                                                    : "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
  } else {
    CHECK_THAT(text, Catch::StartsWith(rsa ? "-----BEGIN RSA PRIVATE KEY-----"
                                           : "-----BEGIN EC PRIVATE KEY-----"));
    if (!passphrase.empty()) {
      CHECK_THAT(text, Catch::Contains("Proc-Type: 4,ENCRYPTED"));
      CHECK_THAT(text, Catch::Contains("DEK-Info: AES-256-CBC,"));
    }
  }

  // BoringSSL's own reader, through a password callback.
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  std::string pass = passphrase;
  auto cb = [](char* buf, int size, int, void* u) {
    const auto* p = static_cast<const std::string*>(u);
    if (p->empty() || p->size() > static_cast<size_t>(size)) return -1;
    p->copy(buf, p->size());
    return static_cast<int>(p->size());
  };
  bssl::UniquePtr<EVP_PKEY> back(PEM_read_bio_PrivateKey(bio.get(), nullptr, cb, &pass));
  REQUIRE(back);
  CHECK(EVP_PKEY_cmp(back.get(), key.value().get()) == 1);

  // Our wrapper: right passphrase, missing one, wrong one.
  auto read = proxy::certutil::keyFromPem(text, passphrase);
  REQUIRE(read.isOk());
  CHECK(EVP_PKEY_cmp(read.value().get(), key.value().get()) == 1);
  if (!passphrase.empty()) {
    auto missing = proxy::certutil::keyFromPem(text);
    REQUIRE(!missing.isOk());
    CHECK_THAT(missing.status().message(), Catch::Contains("no passphrase"));
    auto wrong = proxy::certutil::keyFromPem(text, "wrong");
    REQUIRE(!wrong.isOk());
    CHECK_THAT(wrong.status().message(), Catch::Contains("wrong passphrase"));
  }
}

TEST_CASE("The openssl CLI reads our keys, with the passphrase only when encrypted",
          "[unit][certutil]") {
  TempDir dir;
  auto key = proxy::certutil::generateKey(KeyType::kEcdsaP256);
  REQUIRE(key.isOk());
  auto plain = proxy::certutil::keyToPem(key.value().get());
  auto enc = proxy::certutil::keyToPem(key.value().get(), "hunter2");
  auto legacy = proxy::certutil::keyToTraditionalPem(key.value().get(), "hunter2");
  REQUIRE((plain.isOk() && enc.isOk() && legacy.isOk()));
  writeFile(dir.file("plain.key"), plain.value());
  writeFile(dir.file("enc.key"), enc.value());
  writeFile(dir.file("legacy.key"), legacy.value());

  auto pubOf = [&](const std::string& file, const std::string& pass) {
    std::string cmd = "openssl pkey -pubout -in '" + dir.file(file) + "'";
    if (!pass.empty()) cmd += " -passin pass:" + pass;
    return run(cmd);
  };
  auto expected = pubOf("plain.key", "");
  REQUIRE(expected.exit_code == 0);
  CHECK(pubOf("enc.key", "hunter2").output == expected.output);
  CHECK(pubOf("legacy.key", "hunter2").output == expected.output);
  CHECK(pubOf("enc.key", "wrong").exit_code != 0);
  CHECK(pubOf("legacy.key", "wrong").exit_code != 0);

  // PBES2 with AES-256-CBC, as keyToPem promises.
  auto parsed = run("openssl asn1parse -in '" + dir.file("enc.key") + "'");
  CHECK_THAT(parsed.output, Catch::Contains("PBES2"));
  CHECK_THAT(parsed.output, Catch::Contains("PBKDF2"));
  CHECK_THAT(parsed.output, Catch::Contains("aes-256-cbc"));
}

TEST_CASE("openssl x509 and openssl verify agree with what we minted", "[unit][certutil]") {
  TempDir dir;
  Issued ca = makeCa();
  Issued inter = makeIntermediate(ca);
  Issued leaf = makeServer(inter, KeyType::kRsa2048);
  std::string ca_path = writePem(dir, "ca.crt", ca.cert.get());
  std::string inter_path = writePem(dir, "inter.crt", inter.cert.get());
  std::string leaf_path = writePem(dir, "leaf.crt", leaf.cert.get());

  std::string ca_text = opensslText(ca_path);
  CHECK_THAT(ca_text, Catch::Contains("Version: 3 (0x2)"));
  CHECK_THAT(ca_text, Catch::Contains("X509v3 Basic Constraints: critical"));
  CHECK_THAT(ca_text, Catch::Contains("CA:TRUE"));
  CHECK_THAT(ca_text, Catch::Contains("X509v3 Key Usage: critical"));
  CHECK_THAT(ca_text, Catch::Contains("Certificate Sign, CRL Sign"));
  CHECK_THAT(ca_text, Catch::Contains("Signature Algorithm: ecdsa-with-SHA256"));
  CHECK_THAT(ca_text, Catch::Contains("NIST CURVE: P-256"));
  CHECK_THAT(ca_text, Catch::Contains("X509v3 Subject Key Identifier"));

  std::string inter_text = opensslText(inter_path);
  CHECK_THAT(inter_text, Catch::Contains("CA:TRUE, pathlen:0"));
  CHECK_THAT(inter_text, Catch::Contains("NIST CURVE: P-384"));

  std::string leaf_text = opensslText(leaf_path);
  CHECK_THAT(leaf_text, Catch::Contains("CA:FALSE"));
  CHECK_THAT(leaf_text, Catch::Contains("Digital Signature, Key Encipherment"));
  CHECK_THAT(leaf_text, Catch::Contains("TLS Web Server Authentication"));
  CHECK_THAT(leaf_text, Catch::Contains("DNS:apm.example.com, DNS:localhost, IP Address:127.0.0.1, "
                                        "IP Address:0:0:0:0:0:0:0:1"));
  CHECK_THAT(leaf_text, Catch::Contains("Public-Key: (2048 bit)"));
  CHECK_THAT(leaf_text, Catch::Contains("X509v3 Authority Key Identifier"));

  auto subject = run("openssl x509 -noout -subject -nameopt RFC2253 -in '" + ca_path + "'");
  CHECK_THAT(subject.output, Catch::Contains("subject=CN=Test Root CA,O=apm-tls-proxy tests"));

  auto ok = run("openssl verify -purpose sslserver -CAfile '" + ca_path + "' -untrusted '" +
                inter_path + "' '" + leaf_path + "'");
  INFO(ok.output);
  CHECK(ok.exit_code == 0);
  CHECK_THAT(ok.output, Catch::Contains(": OK"));
  auto no_inter = run("openssl verify -CAfile '" + ca_path + "' '" + leaf_path + "'");
  CHECK(no_inter.exit_code != 0);
}

TEST_CASE("writeNewFile sets the mode exactly and never overwrites", "[unit][certutil]") {
  TempDir dir;
  mode_t old_umask = umask(077);
  proxy::Status written = proxy::certutil::writeNewFile(dir.file("cert.pem"), "first", 0644);
  umask(old_umask);
  REQUIRE(written.isOk());
  CHECK(proxy::certutil::testing::modeOf(dir.file("cert.pem")) == 0644);
  CHECK(proxy::certutil::testing::readFile(dir.file("cert.pem")) == "first");

  proxy::Status again = proxy::certutil::writeNewFile(dir.file("cert.pem"), "second", 0600);
  REQUIRE(!again.isOk());
  CHECK_THAT(again.message(), Catch::Contains("already exists"));
  CHECK(proxy::certutil::testing::readFile(dir.file("cert.pem")) == "first");
  CHECK(proxy::certutil::testing::modeOf(dir.file("cert.pem")) == 0644);

  REQUIRE(proxy::certutil::writeNewFile(dir.file("key.pem"), "k", 0600).isOk());
  CHECK(proxy::certutil::testing::modeOf(dir.file("key.pem")) == 0600);

  proxy::Status no_dir = proxy::certutil::writeNewFile(dir.file("missing/key.pem"), "k", 0600);
  REQUIRE(!no_dir.isOk());
  CHECK_THAT(no_dir.message(), Catch::Contains("No such file or directory"));
}
