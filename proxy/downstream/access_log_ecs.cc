// AccessLog's ECS format: one ecs-logging line per request with ECS 8.x HTTP, URL, source,
// user-agent, TLS and trace fields (see docs/logging.md and tests/fixtures/ecs-fields.json).
#include <cctype>
#include <string>
#include <vector>

#include "proxy/common/ecs_fields.h"
#include "proxy/common/log.h"
#include "proxy/downstream/access_log.h"
#include "proxy/downstream/traceparent.h"

namespace proxy::downstream {
namespace {

using log::appendEcsBool;
using log::appendEcsNumber;
using log::appendEcsString;

// "TLSv1.3" -> "1.3"; BoringSSL calls TLS 1.0 "TLSv1" (ECS tls.version is "1.0").
std::string_view tlsVersionNumber(std::string_view name) {
  constexpr std::string_view kPrefix = "TLSv";
  if (name.substr(0, kPrefix.size()) != kPrefix) return name;
  std::string_view number = name.substr(kPrefix.size());
  return number == "1" ? "1.0" : number;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The CN values of an RFC 2253 subject ("CN=agent\, one,OU=apm+CN=x"): attributes are
// separated by unescaped ',' or '+', and a backslash escapes one character or, followed by
// two hex digits, gives a byte (RFC 2253 §2.4).
std::vector<std::string> commonNames(std::string_view subject) {
  std::vector<std::string> out;
  std::string value;
  bool in_cn = false;
  bool at_start = true;
  for (size_t i = 0; i <= subject.size(); ++i) {
    if (i == subject.size() || subject[i] == ',' || subject[i] == '+') {
      if (in_cn) out.push_back(value);
      value.clear();
      in_cn = false;
      at_start = true;
      continue;
    }
    if (at_start) {
      at_start = false;
      if (subject.substr(i, 3) == "CN=") {
        in_cn = true;
        i += 2;
        continue;
      }
    }
    char c = subject[i];
    if (c == '\\' && i + 1 < subject.size()) {
      int hi = hexValue(subject[i + 1]);
      int lo = i + 2 < subject.size() ? hexValue(subject[i + 2]) : -1;
      if (hi >= 0 && lo >= 0) {
        c = static_cast<char>(hi * 16 + lo);
        i += 2;
      } else {
        c = subject[++i];
      }
    }
    if (in_cn) value.push_back(c);
  }
  return out;
}

uint64_t nanoseconds(double seconds) {
  return seconds <= 0 ? 0 : static_cast<uint64_t>(seconds * 1e9 + 0.5);
}

std::string upperCase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

void appendTls(std::string& out, const AccessLog::Entry& e) {
  appendEcsBool(out, "tls.established", true);
  appendEcsString(out, "tls.version_protocol", "tls");
  appendEcsString(out, "tls.version", tlsVersionNumber(e.tls_version));
  if (!e.tls_cipher.empty()) appendEcsString(out, "tls.cipher", e.tls_cipher);
  appendEcsBool(out, "tls.resumed", e.tls_resumed);
  if (!e.sni.empty()) appendEcsString(out, "tls.client.server_name", e.sni);
  if (!e.client_subject.empty()) {
    appendEcsString(out, "tls.client.x509.subject.distinguished_name", e.client_subject);
    std::vector<std::string> cns = commonNames(e.client_subject);
    if (!cns.empty()) {
      // An array: ECS lists x509 subject fields as "keyword, array".
      out.append(",\"tls.client.x509.subject.common_name\":[");
      for (size_t i = 0; i < cns.size(); ++i) {
        if (i > 0) out.push_back(',');
        log::appendJsonString(out, cns[i]);
      }
      out.push_back(']');
    }
  }
  if (!e.client_cert_sha256.empty()) {
    // ECS's examples write certificate hashes in upper-case hex.
    appendEcsString(out, "tls.client.hash.sha256", upperCase(e.client_cert_sha256));
  }
  if (!e.client_sans.empty()) appendEcsString(out, "apm_tls_proxy.client.sans", e.client_sans);
}

}  // namespace

std::string AccessLog::formatEcs(const Entry& e) {
  std::string_view path = e.path;
  size_t q = path.find('?');
  if (q != std::string_view::npos) path = path.substr(0, q);
  std::string message;
  message.append(e.method).append(" ").append(path).append(" ").append(std::to_string(e.status));

  std::string out;
  out.reserve(768);
  log::appendEcsPrologue(out, "info", message, "access", "apm_tls_proxy.access");
  out.append(R"(,"event.kind":"event","event.category":["web"],"event.type":["access"])");
  // ECS event.outcome for HTTP: a 4xx or 5xx (or no response at all) did not succeed; nor
  // did a gRPC call whose grpc-status is not 0 (OK), whatever its HTTP 200 says.
  const char* outcome = e.status == 0 ? "unknown" : (e.status < 400 ? "success" : "failure");
  if (e.grpc_status > 0) outcome = "failure";
  appendEcsString(out, "event.outcome", outcome);
  appendEcsNumber(out, "event.duration", nanoseconds(e.duration_s));
  if (!e.peer_ip.empty()) {
    appendEcsString(out, "source.ip", e.peer_ip);
    appendEcsNumber(out, "source.port", e.peer_port);
  }
  if (!e.http_version.empty()) appendEcsString(out, "http.version", e.http_version);
  appendEcsString(out, "http.request.method", e.method);
  appendEcsString(out, "url.path", path);
  appendEcsNumber(out, "http.request.bytes", e.bytes_in);
  if (e.request_head_bytes != 0 && e.request_head_bytes <= e.bytes_in) {
    appendEcsNumber(out, "http.request.body.bytes", e.bytes_in - e.request_head_bytes);
  }
  if (e.status != 0) appendEcsNumber(out, "http.response.status_code", e.status);
  appendEcsNumber(out, "http.response.bytes", e.bytes_out);
  if (e.response_head_bytes != 0 && e.response_head_bytes <= e.bytes_out) {
    appendEcsNumber(out, "http.response.body.bytes", e.bytes_out - e.response_head_bytes);
  }
  if (!e.user_agent.empty()) appendEcsString(out, "user_agent.original", e.user_agent);
  if (!e.tls_version.empty()) appendTls(out, e);
  if (auto tc = pickTraceContext(e.traceparent, e.elastic_traceparent)) {
    appendEcsString(out, "trace.id", tc->trace_id);
    appendEcsString(out, "span.id", tc->span_id);
  }
  if (e.upstream_s >= 0) {
    appendEcsNumber(out, "apm_tls_proxy.upstream.duration", nanoseconds(e.upstream_s));
  }
  if (e.grpc_status >= 0) {
    appendEcsNumber(out, "apm_tls_proxy.grpc.status_code", static_cast<uint64_t>(e.grpc_status));
  }
  if (!e.close_reason.empty()) appendEcsString(out, "apm_tls_proxy.close_reason", e.close_reason);
  out.append("}\n");
  return out;
}

}  // namespace proxy::downstream
