#include "proxy/downstream/close_reason.h"

namespace proxy::downstream {

const char* toString(CloseReason r) {
  switch (r) {
    case CloseReason::kDone:
      return "done";
    case CloseReason::kPeerClosed:
      return "peer_closed";
    case CloseReason::kPeerClosedEarly:
      return "peer_closed_mid_request";
    case CloseReason::kReadError:
      return "read_error";
    case CloseReason::kWriteError:
      return "write_error";
    case CloseReason::kIdleTimeout:
      return "idle_timeout";
    case CloseReason::kHeaderTimeout:
      return "request_header_timeout";
    case CloseReason::kReadTimeout:
      return "read_timeout";
    case CloseReason::kWriteTimeout:
      return "write_timeout";
    case CloseReason::kHandshakeTimeout:
      return "tls_handshake_timeout";
    case CloseReason::kHandshakeFailed:
      return "tls_handshake_failed";
    case CloseReason::kTlsError:
      return "tls_error";
    case CloseReason::kBadRequest:
      return "bad_request";
    case CloseReason::kTlsOnPlainPort:
      return "tls_on_plain_port";
    case CloseReason::kUpstreamFailed:
      return "upstream_failed";
    case CloseReason::kUpstreamCut:
      return "upstream_cut";
    case CloseReason::kDrain:
      return "drain";
    case CloseReason::kShutdown:
      return "shutdown";
  }
  return "unknown";
}

}  // namespace proxy::downstream
