// The server's cipher-suite preference for TLS 1.2 and below, as Go's crypto/tls applies
// it (and so APM Server, whose order no configuration changes): forward-secret AEADs,
// forward-secret CBC, RSA key exchange, 3DES; AES-GCM first unless the client's first
// known suite is not AES-GCM (a client without AES hardware), then ChaCha20-Poly1305.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace proxy::tls {

// Two BoringSSL cipher strings over the same suites, in Go's two orders.
struct CipherOrder {
  std::string aes_first;     // the SSL_CTX's list
  std::string chacha_first;  // for clients that prefer ChaCha20; empty when the same
};

// `suites` (BoringSSL names, any order) in Go's order.
CipherOrder cipherOrder(std::vector<std::string> suites);
// Go's default suites (Go 1.22 dropped RSA key exchange from them, Go 1.23 3DES), what
// APM Server 9.x serves with ssl.cipher_suites empty.
const std::vector<std::string>& goDefaultSuites();
// Go's aesgcmPreferred(): the first suite of the ClientHello's list (RFC 8446 wire form,
// GREASE and unknown values skipped) is an AES-GCM suite.
bool clientPrefersAesGcm(const uint8_t* cipher_suites, size_t len);

// Sets `order->aes_first` on `ctx` with the server's order deciding, and switches a
// connection to `order->chacha_first` when its client does not prefer AES-GCM (or this
// CPU lacks AES instructions). Set the protocol range first; `order` must outlive `ctx`.
// False when BoringSSL refuses the list (the error stays on BoringSSL's queue).
bool applyCipherOrder(SSL_CTX* ctx, const CipherOrder* order);

}  // namespace proxy::tls
