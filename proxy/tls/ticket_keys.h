// TicketKeys: the session-ticket keys of the whole process. Random keys made at start,
// a new one every ssl.session_ticket_rotation with the previous one kept for
// decryption, so a ticket stays usable for between one and two rotation periods. One
// instance is shared by every worker's TlsContext and survives reloads, so a client
// resumes on any worker and after a certificate reload. No libuv; thread-safe.
#pragma once

#include <openssl/base.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

namespace proxy::tls {

// Created once by Server (or a test) and handed to every TlsContext::create(). Any
// thread may call handleTicket(); rotation happens lazily inside it.
class TicketKeys {
 public:
  // rotation <= 0 means the first key is never replaced.
  static std::shared_ptr<TicketKeys> create(std::chrono::milliseconds rotation);

  // The body of SSL_CTX_set_tlsext_ticket_key_cb (see its contract in ssl.h): encrypt=1
  // writes a key name and IV and keys `cipher`/`hmac` (returns 1, or -1 on error);
  // encrypt=0 looks the name up (returns 1, 2 = "renew: issued under the previous key",
  // or 0 = unknown key, so the client gets a full handshake).
  int handleTicket(uint8_t* key_name, uint8_t* iv, EVP_CIPHER_CTX* cipher, HMAC_CTX* hmac,
                   int encrypt);

  // Seconds a ticket should be offered for: the rotation period (so no ticket outlives
  // the two keys that can open it).
  uint32_t ticketLifetimeSeconds() const;
  std::chrono::milliseconds rotation() const { return rotation_; }
  // Moves this object's clock forward (tests of rotation).
  void advanceClockForTest(std::chrono::milliseconds d);
  // Number of keys made so far (tests).
  uint64_t generationForTest() const;

 private:
  struct Key {
    uint8_t name[16];
    uint8_t aes_key[32];   // AES-256-CBC
    uint8_t hmac_key[32];  // HMAC-SHA256
    std::chrono::steady_clock::time_point created;
  };
  explicit TicketKeys(std::chrono::milliseconds rotation);
  std::chrono::steady_clock::time_point now() const;
  void rotateIfDueLocked(std::chrono::steady_clock::time_point now);
  static Key makeKey(std::chrono::steady_clock::time_point created);

  const std::chrono::milliseconds rotation_;
  mutable std::mutex mu_;
  Key current_;                                // guarded by mu_
  std::optional<Key> previous_;                // guarded by mu_
  uint64_t generation_ = 1;                    // guarded by mu_
  std::chrono::milliseconds clock_offset_{0};  // guarded by mu_
};

}  // namespace proxy::tls
