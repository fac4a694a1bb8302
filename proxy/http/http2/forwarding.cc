#include "proxy/http/http2/forwarding.h"

#include <cstdio>

namespace proxy::http2 {
namespace {

std::string lowerCase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// What the forwarding policy does with one field of the client's request: forward it,
// drop it (hop-by-hop, a forwarding field, Host), or join it into X-Forwarded-For (a
// trusted proxy's chain). HTTP/2 keeps `te: trailers` (gRPC needs it, RFC 9113 §8.2.2).
enum class FieldRule { kForward, kDrop, kJoinChain };
FieldRule ruleFor(const HeaderField& f, const http::ForwardContext& fwd, bool to_http2) {
  if (http::isHopByHop(f.name)) {
    return to_http2 && f.name == "te" && f.value == "trailers" ? FieldRule::kForward
                                                               : FieldRule::kDrop;
  }
  if (http::isForwardingHeader(f.name)) {
    return fwd.client_is_trusted_proxy && f.name == "x-forwarded-for" && !f.value.empty()
               ? FieldRule::kJoinChain
               : FieldRule::kDrop;
  }
  // :authority (or this host) travels as Host/:authority.
  return f.name == "host" ? FieldRule::kDrop : FieldRule::kForward;
}

void joinChain(std::string& xff, std::string_view hop) {
  if (!xff.empty()) xff += ", ";
  xff += hop;
}

// Calls `emit(name, value)` for the fields we add: X-Forwarded-For (the trusted chain
// `xff` plus the client), -Proto and -Client-Cert; lower-case names for HTTP/2.
template <class Emit>
void emitOurs(std::string xff, const http::ForwardContext& fwd, bool to_http2, Emit emit) {
  if (!fwd.client_ip.empty()) joinChain(xff, fwd.client_ip);
  if (!xff.empty()) emit(to_http2 ? "x-forwarded-for" : "X-Forwarded-For", std::move(xff));
  emit(to_http2 ? "x-forwarded-proto" : "X-Forwarded-Proto",
       std::string(fwd.tls ? "https" : "http"));
  if (!fwd.client_cert_header.empty()) {
    emit(to_http2 ? "x-forwarded-client-cert" : "X-Forwarded-Client-Cert",
         std::string(fwd.client_cert_header));
  }
}

}  // namespace

std::string authorityOf(const RequestHead& head) {
  if (!head.authority.empty()) return head.authority;
  for (const HeaderField& f : head.headers) {
    if (f.name == "host") return f.value;
  }
  return {};
}

HeaderFields upstreamRequestFields(RequestHead&& head, const http::ForwardContext& fwd) {
  // The head is not used after this: its strings move into the fields instead of being
  // copied (a gRPC call's path and content-type are longer than a short string's room).
  HeaderFields all;
  all.reserve(head.headers.size() + 7);
  all.push_back({":method", std::move(head.method)});
  all.push_back({":scheme", "http"});
  all.push_back({":authority", authorityOf(head)});
  all.push_back({":path", std::move(head.path)});
  std::string xff;
  for (HeaderField& f : head.headers) {
    FieldRule rule = ruleFor(f, fwd, /*to_http2=*/true);
    if (rule == FieldRule::kForward) all.push_back(std::move(f));
    if (rule == FieldRule::kJoinChain) joinChain(xff, f.value);
  }
  emitOurs(std::move(xff), fwd, /*to_http2=*/true, [&](const char* name, std::string value) {
    all.push_back({name, std::move(value)});
  });
  return all;
}

http::BodyFraming writeHttp1Request(const RequestHead& head, const http::ForwardContext& fwd,
                                    std::string& out) {
  out.append(head.method).append(" ").append(head.path).append(" HTTP/1.1\r\n");
  out.append("Host: ").append(authorityOf(head)).append("\r\n");
  http::BodyFraming framing = http::BodyFraming::kNone;
  std::string xff;
  for (const HeaderField& f : head.headers) {
    FieldRule rule = ruleFor(f, fwd, /*to_http2=*/false);
    if (rule == FieldRule::kJoinChain) joinChain(xff, f.value);
    if (rule != FieldRule::kForward) continue;
    if (f.name == "content-length") framing = http::BodyFraming::kContentLength;
    out.append(f.name).append(": ").append(f.value).append("\r\n");
  }
  emitOurs(std::move(xff), fwd, /*to_http2=*/false, [&](const char* name, std::string value) {
    out.append(name).append(": ").append(value).append("\r\n");
  });
  if (framing == http::BodyFraming::kNone) {
    if (!head.end_stream) {
      out.append("Transfer-Encoding: chunked\r\n");
      framing = http::BodyFraming::kChunked;
    } else if (head.method == "POST" || head.method == "PUT" || head.method == "PATCH") {
      out.append("Content-Length: 0\r\n");
      framing = http::BodyFraming::kContentLength;
    }
  }
  out.append("\r\n");
  return framing;
}

uint64_t http1RequestBytesBound(const RequestHead& head, const http::ForwardContext& fwd) {
  uint64_t body = 0;
  uint64_t bytes = head.method.size() + head.path.size() + head.authority.size() +
                   fwd.client_ip.size() + fwd.client_cert_header.size() + 200;
  bool length_known = head.end_stream;
  for (const HeaderField& f : head.headers) {
    bytes += f.name.size() + f.value.size() + 4;
    if (f.name == "content-length" && !head.end_stream) {
      length_known = !f.value.empty() && f.value.size() <= 18 &&
                     f.value.find_first_not_of("0123456789") == std::string::npos;
      body = length_known ? std::stoull(f.value) : 0;
    }
  }
  return length_known ? bytes + body : http::kUnknownBytes;
}

HeaderFields responseFields(const http::MessageHead& head) {
  HeaderFields out;
  out.reserve(head.headerCount());
  for (size_t i = 0; i < head.headerCount(); ++i) {
    http::MessageHead::Header h = head.header(i);
    if (http::isHopByHop(h.name) || head.connectionHas(h.name)) continue;
    if (head.chunked && http::equalsIgnoreCase(h.name, "content-length")) continue;
    out.push_back({lowerCase(h.name), std::string(h.value)});
  }
  return out;
}

HeaderFields trailerFields(const http::MessageHead& trailers) {
  HeaderFields out;
  for (size_t i = 0; i < trailers.headerCount(); ++i) {
    http::MessageHead::Header h = trailers.header(i);
    if (http::isHopByHop(h.name)) continue;
    out.push_back({lowerCase(h.name), std::string(h.value)});
  }
  return out;
}

const char* grpcStatusFor(int http_status) {
  return http_status == 504 || http_status == 408 ? "4" : "14";
}

std::string grpcMessage(std::string_view text) {
  std::string out;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7e || c == '%') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace proxy::http2
