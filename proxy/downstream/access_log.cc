#include "proxy/downstream/access_log.h"

#include <cstdio>
#include <utility>

#include "proxy/common/log.h"
#include "proxy/http/message.h"

namespace proxy::downstream {
namespace {

void field(std::string& out, const char* key, std::string_view value) {
  out.append(",\"").append(key).append("\":");
  log::appendJsonString(out, value);
}

void number(std::string& out, const char* key, uint64_t value) {
  out.append(",\"").append(key).append("\":").append(std::to_string(value));
}

void seconds(std::string& out, const char* key, double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", value);
  out.append(",\"").append(key).append("\":").append(buf);
}

}  // namespace

Result<std::unique_ptr<AccessLog>> AccessLog::open(const std::string& target, Format format,
                                                   const LogFileWriter::Options& options) {
  auto writer = LogFileWriter::open(target, options);
  if (!writer) return writer.status();
  return std::unique_ptr<AccessLog>(new AccessLog(std::move(writer).value(), format));
}

AccessLog::~AccessLog() = default;

void AccessLog::write(const Entry& e) {
  writer_->append(format_ == Format::kEcs ? formatEcs(e) : format(e));
}

void AccessLog::RequestFacts::capture(const http::MessageHead& head) {
  clear();
  std::string_view v;
  for (std::string_view name : {"user-agent", "traceparent", "elastic-apm-traceparent"}) {
    if (head.find(name, &v)) captureHeader(name, v);
  }
  head_bytes_ = head.wireBytes();
}

void AccessLog::RequestFacts::captureHeader(std::string_view lowercase_name,
                                            std::string_view value) {
  // A User-Agent is kept up to 1 KiB (Elasticsearch's keyword default ignore_above is
  // 1024); a traceparent longer than 512 bytes cannot be one we would accept anyway.
  if (lowercase_name == "user-agent") {
    user_agent_.assign(value.substr(0, 1024));
  } else if (lowercase_name == "traceparent") {
    traceparent_.assign(value.substr(0, 512));
  } else if (lowercase_name == "elastic-apm-traceparent") {
    elastic_traceparent_.assign(value.substr(0, 512));
  }
}

void AccessLog::RequestFacts::fill(Entry& e) const {
  e.user_agent = user_agent_;
  e.traceparent = traceparent_;
  e.elastic_traceparent = elastic_traceparent_;
  e.request_head_bytes = head_bytes_;
}

void AccessLog::RequestFacts::clear() {
  user_agent_.clear();
  traceparent_.clear();
  elastic_traceparent_.clear();
  head_bytes_ = 0;
}

std::string_view AccessLog::httpVersionName(unsigned major, unsigned minor) {
  if (major == 2) return "2";
  if (major == 1) return minor == 0 ? "1.0" : "1.1";
  return {};
}

std::string_view AccessLog::sha256FromXfcc(std::string_view xfcc) {
  constexpr std::string_view kTag = "Hash=";
  constexpr size_t kHexDigits = 64;
  if (xfcc.substr(0, kTag.size()) != kTag || xfcc.size() < kTag.size() + kHexDigits) return {};
  std::string_view hex = xfcc.substr(kTag.size(), kHexDigits);
  if (hex.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos) return {};
  return hex;
}

std::string AccessLog::format(const Entry& e) {
  std::string out;
  out.reserve(384);
  out.append("{\"time\":\"");
  log::appendTimestamp(out);
  out.push_back('"');
  field(out, "client_ip", e.peer_ip);
  number(out, "client_port", e.peer_port);
  if (!e.tls_version.empty()) {
    field(out, "tls_version", e.tls_version);
    field(out, "tls_cipher", e.tls_cipher);
    field(out, "sni", e.sni);
    field(out, "client_subject", e.client_subject);
    field(out, "client_sans", e.client_sans);
  }
  if (!e.http_version.empty()) field(out, "protocol", e.http_version);
  field(out, "method", e.method);
  std::string_view path = e.path;
  size_t q = path.find('?');
  if (q != std::string_view::npos) path = path.substr(0, q);
  field(out, "path", path);
  number(out, "status", static_cast<uint64_t>(e.status));
  number(out, "bytes_in", e.bytes_in);
  number(out, "bytes_out", e.bytes_out);
  seconds(out, "duration_s", e.duration_s);
  if (e.upstream_s >= 0) seconds(out, "upstream_s", e.upstream_s);
  if (e.grpc_status >= 0) number(out, "grpc_status", static_cast<uint64_t>(e.grpc_status));
  if (!e.close_reason.empty()) field(out, "close_reason", e.close_reason);
  out.append("}\n");
  return out;
}

}  // namespace proxy::downstream
