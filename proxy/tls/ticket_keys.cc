#include "proxy/tls/ticket_keys.h"

#include <openssl/cipher.h>
#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>

#include "proxy/common/check.h"

namespace proxy::tls {

std::shared_ptr<TicketKeys> TicketKeys::create(std::chrono::milliseconds rotation) {
  return std::shared_ptr<TicketKeys>(new TicketKeys(rotation));
}

TicketKeys::TicketKeys(std::chrono::milliseconds rotation)
    : rotation_(rotation), current_(makeKey(std::chrono::steady_clock::now())) {}

TicketKeys::Key TicketKeys::makeKey(std::chrono::steady_clock::time_point created) {
  Key key{};
  // RAND_bytes aborts rather than fail in BoringSSL; the check documents the invariant.
  PROXY_CHECK(RAND_bytes(key.name, sizeof key.name) == 1 &&
                  RAND_bytes(key.aes_key, sizeof key.aes_key) == 1 &&
                  RAND_bytes(key.hmac_key, sizeof key.hmac_key) == 1,
              "RAND_bytes failed");
  key.created = created;
  return key;
}

std::chrono::steady_clock::time_point TicketKeys::now() const {
  return std::chrono::steady_clock::now() + clock_offset_;
}

void TicketKeys::rotateIfDueLocked(std::chrono::steady_clock::time_point now) {
  if (rotation_.count() <= 0) return;
  auto age = now - current_.created;
  if (age < rotation_) return;
  // The current key issued tickets until it was replaced, and those tickets live one
  // rotation period: keep it for decryption only while that can still matter.
  if (age < 2 * rotation_) {
    previous_ = current_;
  } else {
    previous_.reset();
  }
  current_ = makeKey(now);
  ++generation_;
}

int TicketKeys::handleTicket(uint8_t* key_name, uint8_t* iv, EVP_CIPHER_CTX* cipher, HMAC_CTX* hmac,
                             int encrypt) {
  // Copy the key out so the lock is not held during the cipher setup.
  Key key;
  bool renew = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto t = now();
    rotateIfDueLocked(t);
    if (encrypt) {
      key = current_;
    } else if (std::memcmp(key_name, current_.name, sizeof current_.name) == 0) {
      key = current_;
    } else if (previous_ && std::memcmp(key_name, previous_->name, sizeof key.name) == 0) {
      key = *previous_;
      renew = true;  // re-issue under the current key so the client rolls forward
    } else {
      return 0;  // unknown or expired key: a full handshake, not an error
    }
  }
  const EVP_CIPHER* aes = EVP_aes_256_cbc();
  if (encrypt) {
    std::memcpy(key_name, key.name, sizeof key.name);
    if (RAND_bytes(iv, EVP_CIPHER_iv_length(aes)) != 1) return -1;
    if (!EVP_EncryptInit_ex(cipher, aes, nullptr, key.aes_key, iv)) return -1;
  } else {
    if (!EVP_DecryptInit_ex(cipher, aes, nullptr, key.aes_key, iv)) return -1;
  }
  if (!HMAC_Init_ex(hmac, key.hmac_key, sizeof key.hmac_key, EVP_sha256(), nullptr)) return -1;
  return encrypt ? 1 : (renew ? 2 : 1);
}

uint32_t TicketKeys::ticketLifetimeSeconds() const {
  constexpr uint32_t kDefault = 7200;  // BoringSSL's SSL_DEFAULT_SESSION_TIMEOUT
  if (rotation_.count() <= 0) return kDefault;
  auto s = std::chrono::duration_cast<std::chrono::seconds>(rotation_).count();
  return s < 1 ? 1 : static_cast<uint32_t>(s);
}

void TicketKeys::advanceClockForTest(std::chrono::milliseconds d) {
  std::lock_guard<std::mutex> lock(mu_);
  clock_offset_ += d;
}

uint64_t TicketKeys::generationForTest() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

}  // namespace proxy::tls
