#include "proxy/config/upstream_url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace proxy::config::detail {

bool isLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  uint8_t bytes[4];
  return inet_pton(AF_INET, host.c_str(), bytes) == 1 && bytes[0] == 127;
}

bool isWildcardHost(const std::string& host) { return host == "0.0.0.0" || host == "::"; }
Result<UpstreamTarget> parseUpstreamUrl(const std::string& url) {
  constexpr const char* kHint = "write \"http://HOST:PORT\" or \"unix:/PATH\"";
  std::string lower = url;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  UpstreamTarget target;
  if (lower.rfind("unix:", 0) == 0) {
    target.unix_path = url.substr(5);
    if (target.unix_path.empty())
      return Status::error("empty unix socket path; " + std::string(kHint));
    // sockaddr_un.sun_path holds 108 bytes including the terminating NUL (unix(7)).
    if (target.unix_path.size() > 107) {
      return Status::error("unix socket path is longer than 107 bytes, the limit of sun_path");
    }
    return target;
  }
  if (lower.rfind("https://", 0) == 0) {
    return Status::error(
        "TLS to the upstream is not supported: the proxy terminates TLS and speaks plain "
        "HTTP to an upstream on the same host or pod; use \"http://\" or \"unix:\"");
  }
  if (lower.rfind("http://", 0) != 0) {
    return Status::error("\"" + url + "\": unsupported scheme; " + kHint);
  }
  std::string rest = url.substr(7);
  size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    if (slash + 1 != rest.size()) {
      return Status::error("\"" + url +
                           "\": a path is not supported (requests keep their own path); " + kHint);
    }
    rest.resize(slash);
  }
  if (rest.empty()) return Status::error("\"" + url + "\": missing host; " + kHint);
  // RFC 3986 §3.2.3: an omitted port means the scheme's default, 80 for http.
  bool has_port =
      rest[0] == '[' ? rest.find("]:") != std::string::npos : rest.find(':') != std::string::npos;
  Result<HostPort> hp = parseHostPort(has_port ? rest : rest + ":80");
  if (!hp) return Status::error("\"" + url + "\": " + hp.status().message());
  if (hp.value().port == 0) return Status::error("\"" + url + "\": port 0 cannot be connected to");
  if (isWildcardHost(hp.value().host)) {
    return Status::error("\"" + url + "\": " + hp.value().host +
                         " is a listen address, not one to connect to (use 127.0.0.1)");
  }
  target.tcp = hp.value();
  return target;
}
}  // namespace proxy::config::detail
