#include "proxy/downstream/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "proxy/common/log.h"

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

Result<std::unique_ptr<AccessLog>> AccessLog::open(const std::string& target) {
  if (target == "stderr") return std::unique_ptr<AccessLog>(new AccessLog(2, false));
  int fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Status::error("cannot open access log " + target + ": " + std::strerror(errno));
  }
  return std::unique_ptr<AccessLog>(new AccessLog(fd, true));
}

AccessLog::~AccessLog() {
  if (owned_) ::close(fd_);
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
  if (!e.close_reason.empty()) field(out, "close_reason", e.close_reason);
  out.append("}\n");
  return out;
}

void AccessLog::write(const Entry& e) {
  std::string line = format(e);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace proxy::downstream
