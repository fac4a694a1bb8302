// upstream.url: "http://host[:port][/]" or "unix:/path", and the host classes the
// checks need (loopback, wildcard). Internal to the config module.
#pragma once

#include <optional>
#include <string>

#include "proxy/common/status.h"
#include "proxy/config/config.h"

namespace proxy::config::detail {

struct UpstreamTarget {
  std::optional<HostPort> tcp;
  std::string unix_path;
};
// "http://host[:port][/]" or "unix:/path". Anything else is refused with the reason.
Result<UpstreamTarget> parseUpstreamUrl(const std::string& url);

// localhost, ::1 or 127.0.0.0/8.
bool isLoopbackHost(const std::string& host);
// 0.0.0.0 or ::, an address to listen on, not to connect to.
bool isWildcardHost(const std::string& host);

}  // namespace proxy::config::detail
