// How the proxy spells a duration for people ("1h", "2m30s", "1s500ms"): the
// form the config file accepts, used by `check`, the start-up log and the TLS summary.
#pragma once

#include <chrono>
#include <string>

namespace proxy {

std::string formatDuration(std::chrono::milliseconds d);

}  // namespace proxy
