// CloseReason: why a client connection ended. One value per cause; drives logs,
// metrics and the local response. Add a value rather than overloading one.
#pragma once

#include <cstddef>

namespace proxy::downstream {

enum class CloseReason {
  kDone,             // Connection: close, HTTP/1.0, or a response delimited by close
  kPeerClosed,       // the client closed between requests
  kPeerClosedEarly,  // the client closed inside a request
  kReadError,        // reset or other socket error
  kWriteError,
  kIdleTimeout,       // keep-alive idle (server.idle_timeout)
  kHeaderTimeout,     // request head incomplete (server.request_header_timeout): 408
  kReadTimeout,       // request incomplete (server.read_timeout): 408
  kWriteTimeout,      // the client stopped reading (server.write_timeout)
  kHandshakeTimeout,  // TLS handshake incomplete (server.tls_handshake_timeout)
  kHandshakeFailed,
  kTlsError,        // TLS failure after the handshake
  kBadRequest,      // 400/405/431 answered
  kTlsOnPlainPort,  // a TLS handshake on the plain-HTTP listener: 400 answered
  kUpstreamFailed,  // 502/504 answered
  kUpstreamCut,     // the upstream died mid-response: the client sees a reset
  kDrain,           // graceful shutdown
  kShutdown,        // shutdown deadline reached
};
inline constexpr size_t kCloseReasonCount = static_cast<size_t>(CloseReason::kShutdown) + 1;

const char* toString(CloseReason r);

}  // namespace proxy::downstream
