// The forwarding policy for requests that arrive over HTTP/2, and for responses that
// leave over it: the same field rules as http/head_writer's HTTP/1.1 writers
// (http::isHopByHop, http::isForwardingHeader, ours added), expressed as HTTP/2 fields or
// as an HTTP/1.1 head for the upstream pool. Also gRPC's trailers-only answer for a call
// the proxy fails itself. Pure code: no libuv, no nghttp2 session.
#pragma once

#include <string>
#include <string_view>

#include "proxy/http/head_writer.h"
#include "proxy/http/http2/server_session.h"

namespace proxy::http2 {

// The client's authority: :authority, else its Host field, else "".
std::string authorityOf(const RequestHead& head);

// The request's forwarded fields towards an h2c upstream: pseudo-headers first (:scheme
// http, the upstream hop being cleartext), then the end-to-end fields, `te: trailers`
// kept (gRPC needs it, RFC 9113 §8.2.2), then X-Forwarded-For/-Proto/-Client-Cert.
// Takes the strings out of `head`, which is not to be used afterwards.
HeaderFields upstreamRequestFields(RequestHead&& head, const http::ForwardContext& fwd);

// Appends the HTTP/1.1 request head for `head` to `out` (RFC 9113 §8.3.1: request line
// and Host from the pseudo-headers). Framing is per hop (RFC 9112 §6): the client's
// content-length when it sent one, chunked when a body follows without one, and
// Content-Length: 0 for a body-less POST, PUT or PATCH. Returns the framing chosen.
http::BodyFraming writeHttp1Request(const RequestHead& head, const http::ForwardContext& fwd,
                                    std::string& out);
// What writeHttp1Request() writes for `head` plus its body is at most this many bytes;
// http::kUnknownBytes when the body's length is not known (no END_STREAM on the
// HEADERS and no valid content-length).
uint64_t http1RequestBytesBound(const RequestHead& head, const http::ForwardContext& fwd);

// A response head from the upstream as HTTP/2 fields: names lower-case, connection-specific
// fields and those its Connection field names dropped (RFC 9113 §8.2.2), and
// Content-Length dropped when the upstream sent the body chunked.
HeaderFields responseFields(const http::MessageHead& head);
// Trailer fields as HTTP/2 fields (lower-case, hop-by-hop ones dropped).
HeaderFields trailerFields(const http::MessageHead& trailers);

// gRPC status for a failure the proxy answers itself (gRPC's status codes): 4
// DEADLINE_EXCEEDED for the timeouts (408, 504), else 14 UNAVAILABLE, which OTLP
// exporters retry.
const char* grpcStatusFor(int http_status);
// `text` percent-encoded as grpc-message requires ("gRPC over HTTP/2", Responses).
std::string grpcMessage(std::string_view text);

}  // namespace proxy::http2
