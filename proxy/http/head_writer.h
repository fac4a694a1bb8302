// Serialises rewritten message heads for the next hop, in one pass over the parsed
// head: hop-by-hop headers dropped (RFC 9110 §7.6.1), framing re-derived per hop
// (RFC 9112 §6), client-address headers replaced (see docs/http.md). Also the chunked
// body encoder and the proxy's own JSON error responses. Pure code: no libuv.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http/message.h"

namespace proxy::http {

// The forwarding policy's field rules, shared by the HTTP/1.1 writers below and the
// HTTP/2 streams: hop-by-hop fields (RFC 9110 §7.6.1, plus Keep-Alive and
// Proxy-Connection) never cross the proxy; client-address fields a client could spoof
// (Forwarded, X-Real-IP, X-Forwarded-*, X-Forwarded-Client-Cert) are replaced by ours.
bool isHopByHop(std::string_view name);
bool isForwardingHeader(std::string_view name);

// What the downstream connection knows about the client, for the forwarded headers.
struct ForwardContext {
  std::string_view client_ip;            // peer address without port ("192.0.2.7", "::1")
  bool client_is_trusted_proxy = false;  // append to X-Forwarded-For instead of replacing
  bool tls = false;                      // X-Forwarded-Proto: https
  // Value for X-Forwarded-Client-Cert; empty = do not send. A client-sent header of
  // that name is always removed.
  std::string_view client_cert_header;
};

// How the request body is framed towards the upstream.
enum class BodyFraming { kNone, kContentLength, kChunked, kUntilClose };

// Appends the upstream-bound request head to `out` (HTTP/1.1 always) and returns how its
// body must be framed. Drops hop-by-hop headers, Forwarded, X-Real-IP,
// X-Forwarded-For (unless trusted: then appended), X-Forwarded-Proto,
// X-Forwarded-Client-Cert; adds X-Forwarded-For, X-Forwarded-Proto and, when given,
// X-Forwarded-Client-Cert. Keeps Host, User-Agent, Origin, Authorization,
// Content-Encoding, Expect and every other end-to-end header unchanged and in order.
BodyFraming writeRequestHead(const MessageHead& request, const ForwardContext& ctx,
                             std::string& out);

// What writeRequestHead() writes for `request` plus its body is at most this many bytes;
// kUnknownBytes when the body's length is not known (chunked). Lets the upstream pool
// know a request fits its replay copy before the head is written.
inline constexpr uint64_t kUnknownBytes = UINT64_MAX;
uint64_t requestBytesBound(const MessageHead& request, const ForwardContext& ctx);

// What the downstream decided about the response it is relaying.
struct ResponseContext {
  uint8_t client_major = 1;  // the client's request version
  uint8_t client_minor = 1;
  bool request_was_head = false;
  bool close_after = false;  // send Connection: close and close after the response
};

// Appends the client-bound response head to `out` and returns the body framing to use
// towards the client. 1xx heads are written as they are (minus hop-by-hop headers).
// A response with no length for an HTTP/1.1 client is re-framed as chunked; for an
// HTTP/1.0 client it is delimited by closing the connection (kUntilClose, and the
// caller must close after it).
BodyFraming writeResponseHead(const MessageHead& response, const ResponseContext& ctx,
                              std::string& out);

// Chunked transfer coding (RFC 9112 §7.1): the size line before `len` bytes of data.
// Appends e.g. "1a2b\r\n". The caller sends the data, then kChunkEnd.
void appendChunkHeader(std::string& out, size_t len);
inline constexpr std::string_view kChunkEnd = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// The RFC 9110 §15 reason phrase for `status` ("Bad Gateway"), or "" when unknown.
std::string_view standardReason(int status);

// A complete response made by the proxy itself: status line, Content-Type:
// application/json, Content-Length, Connection: close, and {"error":"<message>"}.
// `status` is one of 400, 405, 408, 413, 431, 500, 502, 503, 504.
std::string localResponse(int status, std::string_view message);
// Just the JSON body of such a response: {"error":"<message>"}, escaped per RFC 8259.
std::string localResponseBody(std::string_view message);

}  // namespace proxy::http
