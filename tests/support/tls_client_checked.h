// The TLS client and its shared settings for test threads: what TlsClient and
// TlsClientContext report as values at setup (options BoringSSL refuses, a refused TCP
// connection) fails the test through Catch2 instead, so a test expecting a handshake to
// fail cannot pass because the client never sent a ClientHello.
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <utility>

#include "tests/support/tls_client.h"

namespace proxy::testsupport {

// TlsClient(port, options) that fails the test when it cannot connect or set up.
class CheckedTlsClient : public TlsClient {
 public:
  CheckedTlsClient(uint16_t port, TlsClientOptions options) : TlsClient(port, std::move(options)) {
    INFO("TLS client setup: " << error());
    REQUIRE(error().empty());
  }
  // A client of a shared context (connects in connect(); errors stay values).
  CheckedTlsClient(uint16_t port, const TlsClientContext& ctx) : TlsClient(port, ctx) {}
};

// TlsClientContext that fails the test when an option cannot be applied.
class CheckedTlsClientContext : public TlsClientContext {
 public:
  explicit CheckedTlsClientContext(const TlsClientOptions& options = {})
      : TlsClientContext(options) {
    INFO("TLS client options: " << error());
    REQUIRE(error().empty());
  }
};

}  // namespace proxy::testsupport
