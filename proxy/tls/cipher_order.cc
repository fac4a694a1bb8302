#include "proxy/tls/cipher_order.h"

#include <openssl/aead.h>
#include <openssl/nid.h>

#include <algorithm>
#include <iterator>

namespace proxy::tls {
namespace {

// Go's cipherSuitesPreferenceOrder (crypto/tls/cipher_suites.go) in BoringSSL's names;
// suites this BoringSSL lacks are harmless here (apm_names refuses them first).
constexpr const char* kGoOrder[] = {
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA",
    "AES256-SHA",
    "ECDHE-RSA-DES-CBC3-SHA",
    "DES-CBC3-SHA",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "AES128-SHA256",
};
constexpr size_t kGoDefaults = 10;  // the first ten: forward secret, no 3DES

size_t rankOf(const std::string& suite, bool chacha_first) {
  auto it = std::find(std::begin(kGoOrder), std::end(kGoOrder), suite);
  size_t rank = static_cast<size_t>(it - std::begin(kGoOrder));
  // cipherSuitesPreferenceOrderNoAES: the two ChaCha20 suites moved to the front.
  if (chacha_first) rank = suite.find("CHACHA20") != std::string::npos ? rank - 4 : rank + 2;
  return rank;
}

std::string join(std::vector<std::string> suites, bool chacha_first) {
  std::stable_sort(suites.begin(), suites.end(), [&](const std::string& a, const std::string& b) {
    return rankOf(a, chacha_first) < rankOf(b, chacha_first);
  });
  std::string out;
  for (const auto& s : suites) {
    if (!out.empty()) out += ':';
    out += s;
  }
  return out;
}

bool isAesGcm(const SSL_CIPHER* cipher) {
  int nid = SSL_CIPHER_get_cipher_nid(cipher);
  return nid == NID_aes_128_gcm || nid == NID_aes_256_gcm;
}

// The SSL_CTX ex_data slot that holds its CipherOrder, allocated once per process.
int orderSlot() {
  static const int slot = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return slot;
}

ssl_select_cert_result_t selectOrder(const SSL_CLIENT_HELLO* hello) {
  const auto* order = static_cast<const CipherOrder*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(hello->ssl), orderSlot()));
  if (order == nullptr || order->chacha_first.empty()) return ssl_select_cert_success;
  if (EVP_has_aes_hardware() && clientPrefersAesGcm(hello->cipher_suites, hello->cipher_suites_len))
    return ssl_select_cert_success;
  return SSL_set_strict_cipher_list(hello->ssl, order->chacha_first.c_str()) == 1
             ? ssl_select_cert_success
             : ssl_select_cert_error;
}

}  // namespace

CipherOrder cipherOrder(std::vector<std::string> suites) {
  CipherOrder order;
  order.aes_first = join(suites, false);
  order.chacha_first = join(std::move(suites), true);
  if (order.chacha_first == order.aes_first) order.chacha_first.clear();
  return order;
}

const std::vector<std::string>& goDefaultSuites() {
  static const std::vector<std::string> kDefaults(std::begin(kGoOrder),
                                                  std::begin(kGoOrder) + kGoDefaults);
  return kDefaults;
}

bool clientPrefersAesGcm(const uint8_t* cipher_suites, size_t len) {
  for (size_t i = 0; i + 1 < len; i += 2) {
    uint16_t value = static_cast<uint16_t>(cipher_suites[i] << 8 | cipher_suites[i + 1]);
    const SSL_CIPHER* cipher = SSL_get_cipher_by_value(value);
    if (cipher != nullptr) return isAesGcm(cipher);
  }
  return false;
}

bool applyCipherOrder(SSL_CTX* ctx, const CipherOrder* order) {
  // Strict: fails rather than skipping a name it does not know.
  if (SSL_CTX_set_strict_cipher_list(ctx, order->aes_first.c_str()) != 1) return false;
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  // TLS 1.3 only: BoringSSL has its own TLS 1.3 suites and ignores these lists.
  if (!order->chacha_first.empty() && SSL_CTX_get_min_proto_version(ctx) < TLS1_3_VERSION) {
    if (orderSlot() < 0) return false;
    SSL_CTX_set_ex_data(ctx, orderSlot(), const_cast<CipherOrder*>(order));
    SSL_CTX_set_select_certificate_cb(ctx, selectOrder);
  }
  return true;
}

}  // namespace proxy::tls
