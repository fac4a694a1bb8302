#include "proxy/http/head_writer.h"

#include <array>
#include <charconv>

namespace proxy::http {

// RFC 9110 §7.6.1, plus Proxy-Connection and Keep-Alive, which older clients send.
bool isHopByHop(std::string_view name) {
  switch (name.size()) {
    case 2:
      return equalsIgnoreCase(name, "te");
    case 7:
      return equalsIgnoreCase(name, "trailer") || equalsIgnoreCase(name, "upgrade");
    case 10:
      return equalsIgnoreCase(name, "connection") || equalsIgnoreCase(name, "keep-alive");
    case 16:
      return equalsIgnoreCase(name, "proxy-connection");
    case 17:
      return equalsIgnoreCase(name, "transfer-encoding");
    default:
      return false;
  }
}

// Client-address headers a client could spoof (apm-tls.md §3: APM Server trusts
// Forwarded, then X-Real-IP, then the first X-Forwarded-For entry).
bool isForwardingHeader(std::string_view name) {
  return equalsIgnoreCase(name, "x-forwarded-for") || equalsIgnoreCase(name, "forwarded") ||
         equalsIgnoreCase(name, "x-real-ip") || equalsIgnoreCase(name, "x-forwarded-proto") ||
         equalsIgnoreCase(name, "x-forwarded-client-cert");
}

namespace {

void appendUint(std::string& out, uint64_t v, int base = 10) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v, base);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

void appendHeader(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

// The tokens of every Connection header, split once per head so that checking each
// header against them does not re-parse the list (RFC 9110 §7.6.1).
class ConnectionTokens {
 public:
  explicit ConnectionTokens(const MessageHead& head) : head_(head) {
    for (size_t i = 0; i < head.headerCount(); ++i) {
      const MessageHead::Header h = head.header(i);
      if (!equalsIgnoreCase(h.name, "connection")) continue;
      std::string_view list = h.value;
      while (!list.empty()) {
        size_t comma = list.find(',');
        std::string_view token = list.substr(0, comma);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
        while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
          token.remove_prefix(1);
        }
        while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) {
          token.remove_suffix(1);
        }
        if (token.empty()) continue;
        if (count_ == tokens_.size()) {
          overflow_ = true;
          return;
        }
        tokens_[count_++] = token;
      }
    }
  }

  bool has(std::string_view name) const {
    if (overflow_) return head_.connectionHas(name);
    for (size_t i = 0; i < count_; ++i) {
      if (equalsIgnoreCase(tokens_[i], name)) return true;
    }
    return false;
  }

 private:
  const MessageHead& head_;
  std::array<std::string_view, 16> tokens_{};
  size_t count_ = 0;
  bool overflow_ = false;
};

size_t estimateHeadSize(const MessageHead& head) {
  return head.storedBytes() + 4 * head.headerCount() + 160;
}

}  // namespace

BodyFraming writeRequestHead(const MessageHead& request, const ForwardContext& ctx,
                             std::string& out) {
  out.reserve(out.size() + estimateHeadSize(request) + ctx.client_ip.size() +
              ctx.client_cert_header.size());
  out.append(request.methodName());
  out.push_back(' ');
  out.append(request.url());
  out.append(" HTTP/1.1\r\n");

  const ConnectionTokens connection(request);
  bool has_host = false;
  for (size_t i = 0; i < request.headerCount(); ++i) {
    const MessageHead::Header h = request.header(i);
    if (isHopByHop(h.name) || equalsIgnoreCase(h.name, "content-length") ||
        isForwardingHeader(h.name)) {
      continue;
    }
    if (equalsIgnoreCase(h.name, "host")) has_host = true;
    // Host is never dropped for being listed in Connection: the upstream would have to
    // reject the request (RFC 9112 §3.2).
    if (connection.has(h.name) && !equalsIgnoreCase(h.name, "host")) continue;
    appendHeader(out, h.name, h.value);
  }

  // An HTTP/1.0 request may come without Host, but it leaves as HTTP/1.1, which must
  // carry one (RFC 9112 §3.2): the absolute-form target's authority, else an empty value.
  if (!has_host) {
    std::string_view url = request.url();
    std::string_view authority;
    size_t scheme_end = url.find("://");
    if (scheme_end != std::string_view::npos && url[0] != '/') {
      authority = url.substr(scheme_end + 3);
      authority = authority.substr(0, authority.find_first_of("/?#"));
    }
    appendHeader(out, "Host", authority);
  }

  // RFC 9112 §6: framing is per hop; the parser has already decoded the client's.
  BodyFraming framing = BodyFraming::kNone;
  if (request.chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
    framing = BodyFraming::kChunked;
  } else if (request.has_content_length) {
    out.append("Content-Length: ");
    appendUint(out, request.content_length);
    out.append("\r\n");
    framing = BodyFraming::kContentLength;
  }

  if (ctx.client_is_trusted_proxy) {
    // A trusted proxy's list is kept and extended (RFC 7239 §5.2 style ordering).
    bool first = true;
    for (size_t i = 0; i < request.headerCount(); ++i) {
      const MessageHead::Header h = request.header(i);
      if (h.value.empty() || !equalsIgnoreCase(h.name, "x-forwarded-for")) continue;
      out.append(first ? "X-Forwarded-For: " : ", ");
      out.append(h.value);
      first = false;
    }
    if (!ctx.client_ip.empty()) {
      out.append(first ? "X-Forwarded-For: " : ", ");
      out.append(ctx.client_ip);
      first = false;
    }
    if (!first) out.append("\r\n");
  } else if (!ctx.client_ip.empty()) {
    appendHeader(out, "X-Forwarded-For", ctx.client_ip);
  }
  appendHeader(out, "X-Forwarded-Proto", ctx.tls ? "https" : "http");
  if (!ctx.client_cert_header.empty()) {
    appendHeader(out, "X-Forwarded-Client-Cert", ctx.client_cert_header);
  }
  out.append("\r\n");
  return framing;
}

uint64_t requestBytesBound(const MessageHead& request, const ForwardContext& ctx) {
  if (request.chunked) return kUnknownBytes;
  // The head as received, plus what writeRequestHead() may add: a space after each
  // field's colon (a client may send "name:value"), Host (at most the target's
  // authority), the framing line, X-Forwarded-For/-Proto/-Client-Cert.
  uint64_t head = request.wireBytes() + 2 * request.headerCount() + request.url().size() +
                  ctx.client_ip.size() + ctx.client_cert_header.size() + 160;
  uint64_t body = request.has_content_length ? request.content_length : 0;
  return body > kUnknownBytes - head ? kUnknownBytes : head + body;
}

BodyFraming writeResponseHead(const MessageHead& response, const ResponseContext& ctx,
                              std::string& out) {
  out.reserve(out.size() + estimateHeadSize(response));
  out.append("HTTP/1.1 ");
  appendUint(out, static_cast<uint64_t>(response.status));
  out.push_back(' ');
  out.append(response.reason().empty() ? standardReason(response.status) : response.reason());
  out.append("\r\n");

  const bool informational = response.status / 100 == 1;
  // RFC 9110 §8.6: in a response to HEAD, and in a 304, Content-Length describes the
  // representation that was not sent; it is kept as the upstream wrote it.
  const bool informational_length = ctx.request_was_head || response.status == 304;
  const bool no_body = informational || informational_length || response.status == 204;
  const bool client_http11 =
      ctx.client_major > 1 || (ctx.client_major == 1 && ctx.client_minor >= 1);

  const ConnectionTokens connection(response);
  for (size_t i = 0; i < response.headerCount(); ++i) {
    const MessageHead::Header h = response.header(i);
    if (isHopByHop(h.name) || connection.has(h.name)) continue;
    if (equalsIgnoreCase(h.name, "content-length") && !informational_length) continue;
    appendHeader(out, h.name, h.value);
  }
  if (informational) {
    out.append("\r\n");
    return BodyFraming::kNone;
  }

  // RFC 9112 §6.3: re-derive the client-side framing. An HTTP/1.0 client cannot
  // decode chunked, so an unknown length is delimited by closing the connection.
  BodyFraming framing = BodyFraming::kNone;
  if (!no_body) {
    if (response.has_content_length && !response.chunked) {
      out.append("Content-Length: ");
      appendUint(out, response.content_length);
      out.append("\r\n");
      framing = BodyFraming::kContentLength;
    } else if (client_http11) {
      out.append("Transfer-Encoding: chunked\r\n");
      framing = BodyFraming::kChunked;
    } else {
      framing = BodyFraming::kUntilClose;
    }
  }
  if (ctx.close_after || framing == BodyFraming::kUntilClose) {
    out.append("Connection: close\r\n");
  } else if (!client_http11) {
    out.append("Connection: keep-alive\r\n");  // RFC 9112 §9.3: 1.0 persistence is opt-in
  }
  out.append("\r\n");
  return framing;
}

void appendChunkHeader(std::string& out, size_t len) {
  appendUint(out, len, 16);
  out.append("\r\n");
}

std::string_view standardReason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "";
  }
}

std::string localResponse(int status, std::string_view message) {
  std::string body = localResponseBody(message);
  std::string out;
  out.reserve(body.size() + 160);
  out.append("HTTP/1.1 ");
  appendUint(out, static_cast<uint64_t>(status));
  out.push_back(' ');
  out.append(standardReason(status));
  out.append("\r\nContent-Type: application/json\r\nContent-Length: ");
  appendUint(out, body.size());
  out.append("\r\nConnection: close\r\n");
  // RFC 9110 §10.2.3: tell a client refused for want of capacity when to come back.
  if (status == 503) out.append("Retry-After: 1\r\n");
  out.append("\r\n");
  out.append(body);
  return out;
}

std::string localResponseBody(std::string_view message) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string body;
  body.reserve(message.size() + 16);
  body.append("{\"error\":\"");
  // RFC 8259 §7: quote, backslash and control characters must be escaped.
  for (const char ch : message) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        body.append("\\\"");
        break;
      case '\\':
        body.append("\\\\");
        break;
      case '\n':
        body.append("\\n");
        break;
      case '\r':
        body.append("\\r");
        break;
      case '\t':
        body.append("\\t");
        break;
      case '\b':
        body.append("\\b");
        break;
      case '\f':
        body.append("\\f");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          body.append("\\u00");
          body.push_back(kHex[c >> 4]);
          body.push_back(kHex[c & 0xf]);
        } else {
          body.push_back(ch);
        }
    }
  }
  body.append("\"}");
  return body;
}

}  // namespace proxy::http
